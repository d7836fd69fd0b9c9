"""``select: best`` sweeps: each point of the other axes records the best strategy/grid/modes of dnnsim best."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.api import simulate
from sim.best import candidates
from sim.config import make_config
from sim.errors import UserError
from sim.sweep import run_sweep
from sim.sweep.runner import load_results
from sim.sweep.spec import SweepSpec, expand

SPEC = {"select": "best", "base": {"model": "alexnet", "batch": 64}, "vary": {"procs": [4, 8]}}


def exhaustive_min(cfg: dict) -> tuple[float, tuple, float]:
    """Fastest candidate by ``simulate`` of each (independent of rank_best), and pure batch's time."""
    base = make_config({**cfg, "strategy": "integrated"})
    times = {}
    for over in candidates(base, has_conv=True):
        try:
            r = simulate({**base.model_dump(), **over})
        except UserError:
            continue
        s = r.summary.iloc[0]
        times[(s["strategy"], f"{s['pr']}x{s['pc']}", s["conv"], s["fc"], s["conv_pr"], s["conv_pc"])] = \
            r.iteration_s
    key = min(times, key=lambda k: times[k])  # ties: the first in enumeration order, as best keeps
    return times[key], key, times[("batch", f"1x{base.procs}", "batch", "batch", 1, base.procs)]


def test_best_sweep_rows_are_the_exhaustive_best(tmp_path):
    out = tmp_path / "best.csv"
    report = run_sweep(SPEC, out, workers=0)
    assert (report.points, report.ok, report.failed) == (2, 2, 0)
    frame = load_results(out, ok_only=True)
    assert list(frame["procs"]) == [4, 8]
    for _, row in frame.iterrows():
        best_s, key, batch_s = exhaustive_min({"batch": 64, "procs": int(row["procs"])})
        assert row["iteration_s"] == best_s  # bit for bit: floats round-trip through the CSV
        assert (row["strategy"], row["grid"], row["conv"], row["fc"], row["conv_pr"], row["conv_pc"]) == key
        assert row["speedup_vs_batch"] == pytest.approx(batch_s / best_s, rel=1e-15)


def test_best_sweep_resume_errors_and_workers(tmp_path):
    spec = {**SPEC, "vary": {"procs": [4, 8]}, "zip": [{"conv": [None, "batch"], "fc": [None, "batch"]}]}
    out = tmp_path / "a.csv"
    report = run_sweep(spec, out, workers=0)
    # conv=fc=batch restricts the search to pure batch (Pc = procs <= batch = 64 fits), so it is their best
    assert report.failed == 0 and report.ok == 4
    frame = load_results(out, ok_only=True)
    assert set(frame[frame["conv"] == "batch"]["strategy"]) == {"batch"}
    again = run_sweep(spec, out, workers=0, resume=True)
    assert (again.skipped, again.ok) == (4, 0)
    pooled = tmp_path / "b.csv"
    run_sweep(spec, pooled, workers=2, sort=True)
    a, b = pd.read_csv(out).drop(columns="wall_s"), pd.read_csv(pooled).drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)


def test_best_sweep_error_row(tmp_path):
    # conv=fc=batch: only pure batch, which needs Pc = procs <= batch: 8 > 4 fits nothing
    spec = {"select": "best", "base": {"batch": 4, "procs": 8, "conv": "batch", "fc": "batch"}}
    out = tmp_path / "err.csv"
    report = run_sweep(spec, out, workers=0)
    assert (report.ok, report.failed) == (0, 1)
    row = pd.read_csv(out).iloc[0]
    assert row["status"] == "error" and row["error"].startswith("procs: no grid")


def test_best_columns_only_in_best_sweeps(tmp_path):
    run_sweep(SPEC, tmp_path / "best.csv", workers=0)
    run_sweep({k: v for k, v in SPEC.items() if k != "select"}, tmp_path / "all.csv", workers=0)
    assert "speedup_vs_batch" in pd.read_csv(tmp_path / "best.csv").columns
    assert "speedup_vs_batch" not in pd.read_csv(tmp_path / "all.csv").columns


def test_best_point_ids_differ_from_ordinary_points():
    best = expand(SweepSpec.from_dict({"select": "best", "base": {"batch": 64, "procs": 8}}))
    plain = expand(SweepSpec.from_dict({"base": {"batch": 64, "procs": 8, "strategy": "integrated"}}))
    assert best[0].select == "best" and plain[0].select == "all"
    assert best[0].point_id != plain[0].point_id
    assert best[0].config["grid"] is None and best[0].config["strategy"] == "integrated"


@pytest.mark.parametrize("data,field", [
    ({"select": "fastest"}, "select"),
    ({"select": "best", "base": {"grid": "all"}}, "base.grid"),
    ({"select": "best", "vary": {"strategy": ["batch", "model"]}}, "vary.strategy"),
    ({"select": "best", "zip": [{"grid": ["2x4"], "procs": [8]}]}, "zip[0].grid"),
])
def test_best_sweep_spec_errors(data, field):
    with pytest.raises(UserError) as info:
        SweepSpec.from_dict(data)
    assert info.value.field == field
