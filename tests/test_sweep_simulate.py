"""Sweeps of the real ``sim.simulate`` (analytic network): the CLI end to end, rows equal to direct
``simulate`` calls, the same values on 1 or 2 workers and on Dask, SIGINT then ``--resume``."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.api import simulate
from sim.cli import main
from sim.sweep import expand, load_results, load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "examples" / "sweeps" / "quick.yaml"
VARIES = ["wall_s"]  # the measured seconds of each run: the only column allowed to differ


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=VARIES).set_index("point_id").sort_index()


@pytest.fixture(scope="module")
def quick_two_workers(tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "quick.csv"
    assert main(["sweep", str(QUICK), "--out", str(out), "--workers", "2", "--format", "json"]) == 0
    return out


def test_cli_writes_24_ok_rows(quick_two_workers, capsys):
    frame = pd.read_csv(quick_two_workers)
    assert len(frame) == 24 and frame["point_id"].is_unique
    assert set(frame["status"]) == {"ok"}, frame.loc[frame["status"] != "ok", "error"].tolist()
    assert (frame["pr"] * frame["pc"] == frame["procs"]).all()


def test_rows_equal_direct_simulate(quick_two_workers):
    frame = pd.read_csv(quick_two_workers).set_index("point_id")
    for point in expand(load_sweep(QUICK))[::5]:
        direct = simulate(point.config).summary.iloc[0]
        row = frame.loc[point.point_id]
        for col in direct.index.drop("wall_s"):  # every summary field; floats round-trip bit for bit
            assert row[col] == direct[col] or (pd.isna(row[col]) and pd.isna(direct[col])), col


def test_same_values_one_worker_and_dask(quick_two_workers, tmp_path):
    distributed = pytest.importorskip("distributed")
    one = tmp_path / "one.csv"
    run_sweep(QUICK, one, workers=1)
    pd.testing.assert_frame_equal(_frame(one), _frame(quick_two_workers), check_exact=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask_out = tmp_path / "dask.csv"
        assert main(["sweep", str(QUICK), "--out", str(dask_out), "--scheduler", cluster.scheduler_address]) == 0
    pd.testing.assert_frame_equal(_frame(dask_out), _frame(quick_two_workers), check_exact=True)


def test_bad_points_are_error_rows_and_the_rest_finish(tmp_path):
    sweep = tmp_path / "bad.yaml"
    # 3x5 does not factor 16 (rejected when the sweep is expanded); 32x1 needs Pr <= 13 image rows of
    # AlexNet's last convolutions under conv=domain (rejected by simulate); 4x4 and 2x8 run.
    sweep.write_text("base: {model: alexnet, batch: 256, procs: 16, strategy: integrated, conv: domain}\n"
                     "vary: {grid: [4x4, 3x5, 16x1, 2x8]}\n")
    out = tmp_path / "r.csv"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "2", "--sort"]) == 0
    rows = {r["grid"]: r for r in csv.DictReader(out.open())}
    assert rows["3x5"]["status"] == "error" and rows["3x5"]["error"].startswith("grid: 3x5 = 15 does not equal")
    assert rows["16x1"]["status"] == "error" and "image rows" in rows["16x1"]["error"]
    assert rows["4x4"]["status"] == rows["2x8"]["status"] == "ok"
    ok = load_results(out, ok_only=True)  # integer columns come back as integers once error rows are gone
    assert list(ok["grid"]) == ["4x4", "2x8"] and ok["pr"].dtype.kind == "i" and list(ok["pr"]) == [4, 2]


def test_sigint_then_resume_gives_the_uninterrupted_rows(quick_two_workers, tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(QUICK.read_text().replace("batch: [256, 512]", "batch: [256, 512, 1024, 2048, 4096]")
                   .replace("procs: [4, 8, 16]", "procs: [4, 8, 16, 32, 64, 128]"))
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "sim", "sweep", str(big), "--out", str(out), "--workers", "1", "--chunksize", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and out.read_bytes().endswith(b"\n")
    partial = len(pd.read_csv(out))
    total = len(expand(load_sweep(big)))
    assert 3 <= partial < total
    assert main(["sweep", str(big), "--out", str(out), "--resume", "--workers", "2"]) == 0
    frame = _frame(out)
    assert len(frame) == total and frame.index.is_unique
    # the 24 quick points are among them, with the values of the uninterrupted quick sweep
    quick = _frame(quick_two_workers)
    pd.testing.assert_frame_equal(frame.loc[quick.index], quick, check_exact=True, check_dtype=False)
