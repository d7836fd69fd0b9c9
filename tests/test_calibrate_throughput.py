"""``dnnsim calibrate throughput``: one curve's max fitted to measured one-GPU training throughputs.

The round trips generate runs with the whole simulator (``simulate`` on one rank, an independent path from
the fit's own sum of layer times) on a device whose curve is known, and recover it from a different start.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sim.api import simulate
from sim.cli import main
from workloads.device_specs import device_path, load_device
from workloads.precision import get_precision
from workloads.throughput_fit import Run, fit_class_max
from workloads.zoo import get_model

BATCHES = (32, 128, 512)


def _device_file(tmp_path: Path, base: str, set_key: str, cls: str, value: float) -> Path:
    """``base``'s device file with one curve's max set to ``value``, written under ``tmp_path``."""
    data = yaml.safe_load(device_path(base).read_text())
    data["name"] = f"{base}-known"
    data.pop("aliases", None)
    if cls == "memory":
        data["efficiency"]["memory"]["max"] = value
    else:
        data["efficiency"][set_key][cls]["max"] = value
    out = tmp_path / f"{base}-known.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _runs(device_file: Path, precision: str, memory_format: str) -> list[Run]:
    out = []
    for b in BATCHES:
        r = simulate({"model": "resnet50", "batch": b, "procs": 1, "compute": f"roofline:{device_file}",
                      "precision": precision, "memory_format": memory_format})
        out.append(Run(b, b / float(r.summary["iteration_s"].iloc[0])))
    return out


@pytest.mark.parametrize("base,precision,memory_format,set_key,cls,value", [
    ("h100", "amp", "nhwc", "tensor", "conv", 0.4),      # the shipped h100 starts at 0.283
    ("a100", "tf32", "nchw", "tensor", "conv", 0.35),    # through NCHW's transposes; a100 starts at 0.573
    ("v100", "fp32", "nchw", "simt", "conv", 0.6),       # no tensor cores: the simt set; v100 starts at 0.776
    ("v100", "amp", "nhwc", "memory", "memory", 0.7),    # the memory curve; v100 starts at 0.833
])
def test_round_trip_recovers_a_known_max(tmp_path, base, precision, memory_format, set_key, cls, value):
    runs = _runs(_device_file(tmp_path, base, set_key, cls, value), precision, memory_format)
    fit = fit_class_max(get_model("resnet50"), runs, load_device(base), get_precision(precision), memory_format, cls)
    assert fit.curve.max == pytest.approx(value, abs=1e-5)
    assert max(abs(e) for e in fit.residuals) < 1e-6


def test_cli_writes_a_device_that_reproduces_its_predictions(tmp_path, capsys):
    runs = _runs(_device_file(tmp_path, "h100", "tensor", "conv", 0.4), "amp", "nhwc")
    csv = tmp_path / "runs.csv"
    csv.write_text("# known runs\nbatch,samples_per_s\n" + "".join(f"{r.batch},{r.samples_per_s!r}\n" for r in runs))
    out = tmp_path / "fit.yaml"
    assert main(["calibrate", "throughput", str(csv), "--model", "resnet50", "--device", "h100", "--precision",
                 "amp", "--memory-format", "nhwc", "--fit", "conv", "-o", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in rows] == list(BATCHES)
    fitted = yaml.safe_load(out.read_text())
    assert fitted["name"] == "h100-fit"
    assert fitted["efficiency"]["tensor"]["conv"]["max"] == pytest.approx(0.4, abs=1e-5)
    assert "calibrate throughput" in fitted["sources"]["efficiency.tensor.conv"]
    for row in rows:  # what it printed is what the written device simulates
        r = simulate({"model": "resnet50", "batch": row["batch"], "procs": 1, "compute": f"roofline:{out}",
                      "precision": "amp", "memory_format": "nhwc"})
        assert row["batch"] / float(r.summary["iteration_s"].iloc[0]) == pytest.approx(row["predicted_per_s"],
                                                                                      rel=1e-9)


@pytest.mark.parametrize("content,args,message", [
    ("batch,rate\n64,100\n", [], "error: runs: ", ),
    ("batch,samples_per_s\n64,-1\n", [], "row 1: batch 64, samples_per_s -1"),
    ("batch,samples_per_s\n64.5,100\n", [], "a positive integer batch"),
    ("batch,samples_per_s\n", [], "has no rows"),
    ("batch,samples_per_s\n256,90000\n", [], "faster than 'h100' allows"),
    ("batch,samples_per_s\n256,1000\n", ["--fit", "matmul2"], "error: fit: 'matmul2' is not a kernel class"),
    ("batch,samples_per_s\n8,10\n", ["--model", "gpt3-125m"], "error: fit: model 'gpt3-125m' has no conv layer"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, content, args, message):
    csv = tmp_path / "runs.csv"
    csv.write_text(content)
    argv = ["calibrate", "throughput", str(csv), "--model", "resnet50", "--device", "h100", "--fit", "conv",
            "-o", str(tmp_path / "out.yaml")]
    for flag, value in zip(args[::2], args[1::2], strict=True):
        argv[argv.index(flag) + 1] = value
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.yaml").exists()


def test_runs_file_may_be_hand_written(tmp_path, capsys):
    # comments and spaces after the commas, as a table copied by hand
    csv = tmp_path / "runs.csv"
    csv.write_text("# two runs\nbatch, samples_per_s\n128, 3377.58\n512, 4199.03\n")
    assert main(["calibrate", "throughput", str(csv), "--model", "resnet50", "--device", "h100", "--precision",
                 "amp", "--memory-format", "nhwc", "--fit", "conv", "-o", str(tmp_path / "f.yaml"),
                 "--format", "json"]) == 0
    assert [r["batch"] for r in json.loads(capsys.readouterr().out)] == [128, 512]
