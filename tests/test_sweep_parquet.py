"""Sweeps written as Parquet: the same rows as the CSV, resumable after an interrupt and after ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import QUICK, toy_point

from sim.errors import UserError
from sim.sweep import load_results, run_sweep
from sim.sweep.parquetsink import ROW_GROUP_ROWS, journal_of

pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[1]


def _frame(path: Path) -> pd.DataFrame:
    frame = load_results(path).drop(columns="wall_s").sort_values("point_id").reset_index(drop=True)
    return frame


def test_parquet_rows_equal_the_csv_rows(tmp_path):
    run_sweep(QUICK, tmp_path / "r.csv", workers=0, point_fn=toy_point)
    report = run_sweep(QUICK, tmp_path / "r.parquet", workers=0, point_fn=toy_point)
    assert report.points == 24 and not journal_of(tmp_path / "r.parquet").exists()
    csv_rows, pq_rows = _frame(tmp_path / "r.csv"), _frame(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(csv_rows, pq_rows, check_dtype=False)
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert meta.num_rows == 24 and meta.num_row_groups == -(-24 // ROW_GROUP_ROWS)


def test_existing_file_needs_resume_or_overwrite_and_resume_skips_done_points(tmp_path):
    out = tmp_path / "r.parquet"
    run_sweep(QUICK, out, workers=0, point_fn=toy_point)
    with pytest.raises(UserError, match="already exists"):
        run_sweep(QUICK, out, workers=0, point_fn=toy_point)
    again = run_sweep(QUICK, out, workers=0, point_fn=toy_point, resume=True)
    assert (again.skipped, again.ok + again.failed) == (24, 0)
    assert len(load_results(out)) == 24
    run_sweep(QUICK, out, workers=0, point_fn=toy_point, overwrite=True, sort=True)
    assert len(load_results(out)) == 24


def test_interrupted_sweep_leaves_a_valid_file_and_resume_finishes_it(tmp_path):
    out = tmp_path / "r.parquet"
    seen = []

    def stop_after_five(row: dict) -> None:
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(QUICK, out, workers=0, point_fn=toy_point, on_row=stop_after_five)
    assert len(load_results(out)) == 5 and not journal_of(out).exists()
    run_sweep(QUICK, out, workers=0, point_fn=toy_point, resume=True)
    rows = load_results(out)
    assert len(rows) == 24 and rows["point_id"].is_unique


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 of a process group")
def test_kill_9_then_resume_writes_every_point_once(tmp_path):
    slow = tmp_path / "slow.yaml"
    slow.write_text("base: {model: vgg16, strategy: integrated, grid: all, network: flow, compute: none,\n"
                    "       topology: \"fattree:k=8,oversubscription=4\"}\n"
                    "vary: {batch: [256, 512], procs: [16, 32, 64]}\n")
    out = tmp_path / "r.parquet"
    cmd = [sys.executable, "-m", "sim", "sweep", str(slow), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    journal = journal_of(out)
    deadline = time.monotonic() + 120
    while not journal.exists() or journal.read_bytes().count(b"\n") < 3:
        assert proc.poll() is None, "the sweep ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert journal.exists() and not out.exists()  # killed: the journal holds the rows, no Parquet yet
    done = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = load_results(out)
    points = 2 * sum(len([g for g in range(1, p + 1) if p % g == 0]) for p in (16, 32, 64))
    assert len(rows) == points and rows["point_id"].is_unique and not journal.exists()


def test_result_to_parquet_round_trips_every_table(tmp_path):
    from sim.api import simulate

    r = simulate({"model": "alexnet", "batch": 64, "procs": 8, "network": "flow", "strategy": "integrated",
                  "grid": "2x4", "topology": "fattree:k=4,oversubscription=2"}, links=True)
    r.to_parquet(tmp_path / "pq")
    names = sorted(p.name for p in (tmp_path / "pq").iterdir())
    assert names == ["critical_path.parquet", "layers.parquet", "links.parquet", "records.parquet",
                     "summary.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pq" / "records.parquet"), r.records,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pq" / "critical_path.parquet"),
                                  r.critical_path(), check_dtype=False)
    assert pd.read_parquet(tmp_path / "pq" / "links.parquet")["bytes"].sum() == r.links()["bytes"].sum()
    with pytest.raises(UserError, match="not empty"):
        r.to_parquet(tmp_path / "pq")


def test_plot_reads_a_parquet_sweep(tmp_path):
    from sim.cli import main

    run_sweep(QUICK, tmp_path / "r.parquet", workers=0)  # real simulated points (analytic: quick)
    assert main(["plot", str(tmp_path / "r.parquet"), "--kind", "scaling", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
