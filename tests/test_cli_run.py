"""dnnsim run: formats, --out (all or nothing), flags over YAML over defaults, every error path exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from paper_formulas import eq8_true, weights

from sim.cli import main
from sim.config import load_config
from workloads.zoo import get_model

BASE = ["run", "--model", "alexnet", "--batch", "64", "--procs", "8"]


def test_run_json(capsys):
    assert main([*BASE, "--strategy", "integrated", "--grid", "2x4", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["pr"], row["pc"], row["strategy"], row["conv"], row["fc"]) == (2, 4, "integrated", "model", "model")
    # compute none (the default): Eq. 8 of Gholami et al. 2018 with true ΔX sizes, B = 64 on 2 x 4
    expected = eq8_true(weights(get_model("alexnet")), 64, 2, 4)
    assert row["iteration_s"] == pytest.approx(expected, rel=1e-9)
    assert row["epoch_s"] == pytest.approx(expected * 1.2e6 / 64, rel=1e-9)  # N = 1.2M


def test_run_table_and_csv(capsys):
    assert main([*BASE, "--conv", "batch", "--fc", "batch"]) == 0
    out = capsys.readouterr().out
    assert "iteration_s" in out and "conv1" in out and "fc8" in out
    assert main([*BASE, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("model,batch,procs,strategy,pr,pc")


def test_flags_override_yaml_and_set_overrides_flags(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: alexnet\nbatch: 128\nprocs: 4\nstrategy: integrated\ngrid: 2x2\n")
    assert main(["run", str(cfg), "--procs", "8", "--grid", "2x4", "--set", "batch=64", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["batch"], row["procs"], row["pr"], row["pc"]) == (64, 8, 2, 4)


def test_out_writes_four_files(tmp_path, capsys):
    out = tmp_path / "res"
    assert main([*BASE, "--overlap", "--compute", "paper-knl", "--out", str(out), "--format", "json"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "critical_path.csv", "layers.csv", "summary.csv", "timeline.png", "trace.json"]
    cfg = load_config(str(out / "config.yaml"))
    assert (cfg.batch, cfg.procs, cfg.overlap, cfg.grid) == (64, 8, True, "1x8")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_out_overwrite_replaces_only_its_files(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main([*BASE, "--out", str(out), "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "keep me" and (out / "summary.csv").exists()


def test_out_into_an_existing_empty_directory(tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()  # as `mkdir -p` in a batch script leaves it
    assert main([*BASE, "--out", str(out)]) == 0
    assert (out / "summary.csv").exists()


@pytest.mark.parametrize("args, text", [
    (["--strategy", "pipeline"], "strategy"),
    (["--strategy", "integrated", "--grid", "3x3"], "grid"),
    (["--strategy", "integrated", "--grid", "2x2x2"], "grid"),
    (["--batch", "2"], "procs=8 exceeds batch=2"),
    (["--batch", "12", "--set", "uneven=reject"], "not a multiple of procs"),
    (["--batch", "4", "--strategy", "integrated", "--grid", "1x8", "--conv", "model"], "Pc=8 exceeds batch=4"),
    (["--procs", "128", "--batch", "128", "--strategy", "model"], "exceeds the 96 output rows"),
    (["--procs", "16", "--batch", "16", "--strategy", "domain", "--fc", "model"], "image rows"),
    (["--procs", "32", "--topology", "fattree:k=4"], "procs"),
    (["--topology", "ideal:bandwidth=fast"], "bandwidth"),
    (["--model", "nosuchnet"], "model"),
    (["--network", "quantum"], "network"),
    (["--collectives", "nosuchalg"], "collectives"),
    (["--compute", "abacus"], "compute"),
    (["--set", "colour=blue"], "colour"),
    (["--set", "batch"], "set"),
    (["--batch", "many"], "batch"),
    (["--dtype-bytes", "0"], "dtype_bytes"),
    (["--placement", "diagonal"], "placement"),
    (["--strategy", "batch", "--conv", "domain"], "conv"),
])
def test_errors_exit_2_with_one_line(args, text, capsys, tmp_path):
    out = tmp_path / "never"
    assert main([*BASE, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and text in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_yaml_exits_2_and_leaves_existing_outputs(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch: [64\n")
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.csv").write_text("old")
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert (out / "summary.csv").read_text() == "old" and sorted(p.name for p in out.iterdir()) == ["summary.csv"]
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2


# ------------------------------------------------------------------ refused input, as a user's shell sees it
REPO = Path(__file__).resolve().parent.parent


def _dnnsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m sim ARGS`` in a fresh process (this checkout first on PYTHONPATH)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess, *texts: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for text in texts:
        assert text in proc.stderr, proc.stderr


@pytest.mark.parametrize("text", ["", "# batch: 512\n# procs: 8\n"])
def test_empty_or_comment_only_files_are_refused_by_run_and_sweep(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    _one_line_error(_dnnsim("run", "empty.yaml", "--out", "res", cwd=tmp_path), "error: config:", "empty.yaml",
                    "is empty")
    _one_line_error(_dnnsim("sweep", "empty.yaml", "--out", "r.csv", cwd=tmp_path), "error: sweep:",
                    "empty.yaml", "is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.yaml"]  # nothing written


def test_a_sweep_file_given_to_run_says_to_use_sweep(tmp_path):
    sweep = REPO / "examples" / "sweeps" / "quick.yaml"
    _one_line_error(_dnnsim("run", str(sweep), cwd=tmp_path), "error: config:", "is a sweep file",
                    f"dnnsim sweep {sweep}")


def test_run_out_refuses_an_existing_non_empty_directory(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.csv").write_text("old results")
    args = ["run", "--batch", "64", "--procs", "8", "--out", "res", "--format", "csv"]
    _one_line_error(_dnnsim(*args, cwd=tmp_path), "error: out:", "'res' exists and is not empty", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]
    assert (out / "summary.csv").read_text() == "old results"  # untouched
    proc = _dnnsim(*args, "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (out / "summary.csv").read_text() == proc.stdout  # the printed row is the written row
