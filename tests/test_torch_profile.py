"""``workloads/torch_profile.py`` and ``dnnsim profile`` with PyTorch (CI installs the CPU build).

Each zoo layer rebuilt as a torch module must hold the layer's parameters and produce its output shape:
torch counts the parameters and runs the forward pass, so the zoo's hand-written shapes are checked by an
independent implementation, and the modules of a model add up to its published parameter count. Then the
CLI end to end: ``dnnsim profile`` writes the CSV, and ``dnnsim run --compute profile:FILE`` charges what
that CSV says.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main
from workloads.torch_profile import _input_shapes, layer_module
from workloads.zoo import get_model


@pytest.mark.parametrize("name, published", [
    ("alexnet", 60_965_224),  # BVLC AlexNet (see test_workloads_zoo)
    ("alexnet-torchvision", 61_100_840),  # torchvision model card
    ("resnet50", 25_557_032),  # torchvision model card
])
def test_modules_have_the_layers_params_and_shapes(torch, name, published):
    model = get_model(name)
    total = 0
    with torch.no_grad():
        for layer in model.layers:
            module = layer_module(layer).eval()
            n = sum(p.numel() for p in module.parameters())
            assert n == layer.params, layer.name
            total += n
            xs = [torch.zeros((1, *shape)) for shape in _input_shapes(layer, model)]
            assert tuple(module(*xs).shape) == (1, *layer.out_shape), layer.name
    assert total == published


def _dnnsim(*argv: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the CI machine's cores are shared
    return subprocess.run([sys.executable, "-m", "sim", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_profile_then_run_on_it(torch, tmp_path, monkeypatch, capsys):
    """``dnnsim profile --model alexnet --batch 1,2 --device cpu -o x.csv``, then ``dnnsim run --compute
    profile:x.csv``: the default run (pure batch, B = 256 on P = 16) computes 16 samples per rank, past the
    profile's largest batch 2, where times scale linearly: compute_s = 8 * Σ_layers (fwd_s + bwd_s at b = 2)."""
    done = _dnnsim("profile", "--model", "alexnet", "--batch", "1,2", "--device", "cpu", "--warmup", "0",
                   "--repeats", "1", "-o", "x.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "x.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["layer", "kind", "batch", "fwd_s", "bwd_s", "device", "precision", "memory_format"]
    assert {(r["precision"], r["memory_format"]) for r in rows} == {("fp32", "nchw")}
    names = [layer.name for layer in get_model("alexnet").layers]
    assert [(r["layer"], r["batch"]) for r in rows] == [(n, b) for n in names for b in ("1", "2")]
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--compute", "profile:x.csv", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["batch"], summary["procs"], summary["strategy"]) == (256, 16, "batch")
    expected = 8 * sum(float(r["fwd_s"]) + float(r["bwd_s"]) for r in rows if r["batch"] == "2")
    assert summary["compute_s"] == pytest.approx(expected, rel=1e-12)


def test_cli_profile_cuda_without_gpu(torch, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the no-CUDA error cannot be exercised")
    out = tmp_path / "x.csv"
    assert main(["profile", "--model", "alexnet", "--batch", "1", "--device", "cuda", "-o", str(out)]) == 2
    assert capsys.readouterr().err == ("error: device: CUDA was asked for but torch sees no GPU; "
                                       "--device cpu, or a machine with CUDA\n")
    assert not out.exists()


def test_profile_in_channels_last_covers_every_layer(torch):
    """``--memory-format nhwc`` measures the same layers (4-d tensors and conv weights in channels_last)."""
    from sim.errors import UserError
    from workloads.torch_profile import profile_model

    model = get_model("alexnet")
    rows = profile_model(model, [1], warmup=0, repeats=1, memory_format="nhwc")
    assert [r["layer"] for r in rows] == [layer.name for layer in model.layers]
    assert all(r["fwd_s"] > 0 and r["bwd_s"] > 0 for r in rows)
    with pytest.raises(UserError, match="memory_format"):
        profile_model(model, [1], memory_format="nhcw")


TINY_CNN = str(Path(__file__).parent.parent / "examples" / "models" / "tiny-cnn.yaml")


def test_profile_records_its_precision_and_calibrate_reads_it(torch, tmp_path, capsys):
    """``dnnsim profile --precision bf16`` runs the layers in bfloat16 and writes precision and memory_format
    columns; ``calibrate compute`` then fits at bf16 without being told, and refuses a contradicting flag."""
    profile = tmp_path / "p.csv"
    assert main(["profile", "--model", TINY_CNN, "--batch", "1,4", "--precision", "bf16", "--memory-format", "nhwc",
                 "--warmup", "0", "--repeats", "1", "-o", str(profile), "--format", "csv"]) == 0
    with profile.open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["precision"], r["memory_format"]) for r in rows} == {("bf16", "nhwc")}
    # one unwarmed repeat of microsecond layers on a CPU is noise, which a line fit may not survive: the
    # calibration below gets the A100's own roofline times at bf16/nhwc, slowed 3x (a fit of 1/3 the curve)
    from workloads.device_specs import load_device
    from workloads.loader import load_model
    from workloads.roofline import RooflineCompute

    a100 = RooflineCompute(load_device("a100"), 2, "bf16", "nhwc")
    layers = {layer.name: layer for layer in load_model(TINY_CNN).layers}
    for r in rows:
        layer, b = layers[r["layer"]], int(r["batch"])
        r["fwd_s"], r["bwd_s"] = (repr(3 * a100.time(layer, phase, b)) for phase in ("fwd", "bwd"))
    with profile.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    out = tmp_path / "fit.yaml"
    # the CPU's timings against the A100's peaks: a fit far below 1, which is what the test needs (bf16 peak)
    assert main(["calibrate", "compute", str(profile), "--model", TINY_CNN, "--device", "a100", "-o", str(out)]) == 0
    import yaml

    assert "(tiny-cnn, bf16, nhwc)" in yaml.safe_load(out.read_text())["sources"]["efficiency.memory"]
    capsys.readouterr()
    assert main(["calibrate", "compute", str(profile), "--model", TINY_CNN, "--device", "a100", "--precision", "fp32",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: precision: --precision fp32 contradicts the profile, measured in bf16")
    assert err.count("\n") == 1


def test_profile_leaves_torchs_tf32_switches_as_they_were(torch):
    from workloads.loader import load_model
    from workloads.torch_profile import profile_model

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    for precision in ("fp32", "tf32"):
        profile_model(load_model(TINY_CNN), [1], warmup=0, repeats=1, precision=precision)
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_profile_layer_that_cannot_run_is_one_line(torch, monkeypatch, tmp_path, capsys):
    """A layer torch cannot run in the asked precision on the device: one ``error: precision: ...`` line."""
    import workloads.torch_profile as tp

    class Refuses(torch.nn.Module):
        def forward(self, *xs):
            raise RuntimeError('"some_kernel" not implemented for \'BFloat16\'')

    monkeypatch.setattr(tp, "layer_module", lambda layer: Refuses())
    assert main(["profile", "--model", TINY_CNN, "--batch", "1", "--precision", "bf16", "--warmup", "0",
                 "--repeats", "1", "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: precision: layer 'conv1' (conv) does not run in bf16 on cpu") and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()
