"""Model files: the shipped example loads, shapes chain, and every mistake is a one-line UserError."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.errors import UserError
from workloads.loader import load_model
from workloads.zoo import get_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "models" / "tiny-cnn.yaml"


def test_example_loads():
    m = load_model(EXAMPLE)
    by = {layer.name: layer for layer in m.layers}
    assert m.name == "tiny-cnn" and m.input_shape == (3, 32, 32) and m.dataset_size == 50000
    assert by["res"].inputs == ("bn2", "relu1") and by["res"].out_shape == (16, 32, 32)
    assert by["fc1"].in_shape == (2048,)  # 32 channels x 8 x 8 after two 2x2 pools
    # params written out: conv1 3*9*16+16, bn1 32, conv2 16*9*16 (no bias), bn2 32, conv3 16*9*32+32,
    # fc1 2048*64+64, fc2 64*10+10
    assert m.params == (3 * 9 * 16 + 16) + 32 + 16 * 9 * 16 + 32 + (16 * 9 * 32 + 32) + (2048 * 64 + 64) + 650


def test_name_goes_to_zoo():
    assert load_model("vgg16") == get_model("vgg16")


def _write(tmp_path, data) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


BASE = {"name": "t", "input_shape": [3, 8, 8], "dataset_size": 10}


@pytest.mark.parametrize("layers, field, words", [
    ([{"kind": "warp"}], "model.layers[0]", "unknown"),
    ([{"kind": "conv", "name": "c", "kernel": 3}], "layer c", "missing"),
    ([{"kind": "conv", "name": "c", "kernel": 3, "out_channels": 4, "dilation": 2}], "layer c", "unknown key"),
    ([{"kind": "conv", "name": "c", "kernel": 9, "out_channels": 4}], "layer c", "larger"),
    ([{"kind": "conv", "name": "c", "kernel": 3, "out_channels": -4}], "layer c", "positive"),
    ([{"kind": "fc", "name": "f", "in_features": 100, "out_features": 4}], "layer f", "in_features"),
    ([{"kind": "act", "name": "a"}, {"kind": "act", "name": "a"}], "layer a", "twice"),
    ([{"kind": "act", "name": "a"}, {"kind": "add", "name": "s", "inputs": ["a", "zz"]}], "model.layers", "zz"),
    ([{"kind": "flatten"}, {"kind": "conv", "name": "c", "kernel": 1, "out_channels": 2}], "layer c", "(C, H, W)"),
    ([{"kind": "conv", "name": "c", "kernel": 1, "out_channels": 2, "bias": "no"}], "layer c", "true or false"),
    ([{"kind": "pool", "name": "p", "kernel": 2, "op": "median"}], "layer p", "median"),
    ([{"kind": "act", "name": "a", "inputs": ["x", "y"]}], "layer a", "one input"),
])
def test_bad_layers(tmp_path, layers, field, words):
    with pytest.raises(UserError) as exc:
        load_model(_write(tmp_path, {**BASE, "layers": layers}))
    assert exc.value.field == field and words in str(exc.value)


@pytest.mark.parametrize("data, field", [
    ("name: [unclosed", "model"),
    ("- just a list", "model"),
    ({"input_shape": [3, 8, 8], "layers": [{"kind": "act"}]}, "model.dataset_size"),
    ({**BASE, "layers": []}, "model.layers"),
    ({**BASE, "input_shape": [3, 0, 8], "layers": [{"kind": "act"}]}, "model.input_shape"),
    ({**BASE, "colour": "red", "layers": [{"kind": "act"}]}, "model"),
])
def test_bad_files(tmp_path, data, field):
    with pytest.raises(UserError) as exc:
        load_model(_write(tmp_path, data))
    assert exc.value.field == field


def test_missing_file():
    with pytest.raises(UserError, match="does not exist"):
        load_model("no/such/model.yaml")
