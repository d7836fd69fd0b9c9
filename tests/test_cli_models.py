"""``dnnsim models``, ``show-model`` and ``profile``: fields, formats, error exits."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest

from sim.cli import main
from workloads.zoo import get_model

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "models" / "tiny-cnn.yaml")


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_models_json(capsys):
    rows = _json(capsys, ["models", "--format", "json"])
    assert list(rows[0])[:4] == ["name", "layers", "params", "fwd_flops_per_sample"]
    by = {r["name"]: r for r in rows}
    assert by["alexnet"]["params"] == 60_965_224  # BVLC AlexNet, see test_workloads_zoo
    assert by["resnet50"]["layers"] == len(get_model("resnet50").layers)


def test_models_csv_and_table(capsys):
    assert main(["models", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["name"] for r in rows} >= {"alexnet", "vgg16", "resnet50", "alexnet-torchvision"}
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split()[:4] == ["name", "layers", "params", "fwd_flops_per_sample"]


def test_show_model_alexnet(capsys):
    rows = _json(capsys, ["show-model", "alexnet", "--format", "json"])
    assert list(rows[0])[:7] == ["layer", "kind", "in_shape", "out_shape", "params", "fwd_flops_per_sample",
                                 "out_elems_per_sample"]
    assert rows[0]["in_shape"] == "3x227x227" and rows[0]["out_shape"] == "96x55x55"
    assert rows[0]["out_elems_per_sample"] == 96 * 55 * 55
    assert sum(r["params"] for r in rows) == 60_965_224
    assert math.fsum(r["fwd_flops_per_sample"] for r in rows) == pytest.approx(
        get_model("alexnet").fwd_flops_per_sample, rel=1e-12)


def test_show_model_file(capsys):
    rows = _json(capsys, ["show-model", EXAMPLE, "--format", "json"])
    assert rows[-1]["out_shape"] == "10" and any(r["inputs"] == "bn2,relu1" for r in rows)


@pytest.mark.parametrize("argv, prefix", [
    (["show-model", "nope"], "error: model:"),
    (["show-model", "missing.yaml"], "error: model:"),
    (["profile", "--model", "nope", "--batch", "1", "-o", "x.csv"], "error: model:"),
    (["profile", "--model", "alexnet", "--batch", "0,x", "-o", "x.csv"], "error: batch:"),
])
def test_errors_exit_2(capsys, argv, prefix):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(prefix)


def test_show_model_bad_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput_shape: [3, 8, 8]\ndataset_size: 4\nlayers:\n"
                   "  - {kind: conv, name: c, out_channels: 4, kernel: 11}\n")
    assert main(["show-model", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: layer c:") and "kernel 11" in err[0]


def test_profile_without_torch(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError, installed or not
    out = tmp_path / "p.csv"
    out.write_text("keep me\n")
    assert main(["profile", "--model", "alexnet", "--batch", "1,8", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    # dnnsim is installed from its repository, so the hint must not be `pip install 'dnnsim[torch]'`
    assert err == ("error: torch: PyTorch is not installed; pip install torch, or pip install '.[torch]' in a "
                   "dnnsim checkout")
    assert out.read_text() == "keep me\n"  # untouched on error


def test_profile_with_torch(torch, tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["profile", "--model", EXAMPLE, "--batch", "1,4", "--warmup", "0", "--repeats", "1",
                 "-o", str(out), "--format", "json"]) == 0
    rows = list(csv.DictReader(out.open()))
    from workloads.compute import make_compute_model
    from workloads.loader import load_model

    model = load_model(EXAMPLE)
    model_layers = [layer.name for layer in model.layers]
    assert [r["layer"] for r in rows] == [name for name in model_layers for _ in (1, 4)]
    assert all(float(r["fwd_s"]) > 0 and float(r["bwd_s"]) > 0 for r in rows)
    c = make_compute_model(f"profile:{out}", model)
    assert c.time(model.layers[0], "fwd", 4) == float(rows[1]["fwd_s"])
    assert len(json.loads(capsys.readouterr().out)) == len(rows)
