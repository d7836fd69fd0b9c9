"""Sweep files, expansion, hashing, the CSV sink, resume and the local runner.

Runner mechanics (row counts, resume, interruption, error rows) use ``toy_point``, a module-level point
function with a closed form, so these tests do not depend on the engine; the value checks against the
real ``sim.simulate`` are in tests/test_sweep_simulate.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

from sim.cli import main
from sim.errors import UserError
from sim.sweep import (
    SweepInterrupted,
    SweepSpec,
    canonical_hash,
    chunk_points,
    columns,
    expand,
    load_results,
    load_sweep,
    run_sweep,
)
from sim.sweep.csvsink import open_sink

QUICK = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "quick.yaml"


def toy_point(config: dict) -> dict:
    """A closed-form stand-in for simulate: ring all-reduce of 1 MB per sample over P (alpha=1us, 1 GB/s)."""
    p, b = config["procs"], config["batch"]
    if config.get("grid") == "2x2" and b == 512:
        raise RuntimeError("toy failure\nsecond line")
    comm = 2 * (p - 1) * 1e-6 + 2 * (p - 1) / p * 1e6 / 1e9
    return {"iteration_s": comm + b / p * 1e-3, "batch_comm_s": comm, "compute_s": b / p * 1e-3}


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ spec
def test_quick_has_24_points_and_grid_all_factors_procs():
    points = expand(load_sweep(QUICK))
    assert len(points) == 24  # B in {256, 512} x (3 + 4 + 5 grids of P = 4, 8, 16)
    for p in points:
        pr, pc = map(int, p.config["grid"].split("x"))
        assert pr * pc == p.config["procs"] and p.error is None
    assert len({p.point_id for p in points}) == 24


def test_zip_moves_together_and_vary_is_cartesian():
    spec = SweepSpec.from_dict({"base": {"strategy": "batch"}, "vary": {"model": ["alexnet", "vgg16"]},
                                "zip": [{"batch": [512, 2048, 8192], "procs": [128, 512, 2048]}]})
    got = [(p.config["model"], p.config["batch"], p.config["procs"]) for p in expand(spec)]
    assert got == [(m, b, p) for m in ("alexnet", "vgg16") for b, p in ((512, 128), (2048, 512), (8192, 2048))]


def test_point_id_is_sha256_of_canonical_resolved_json():
    (point,) = expand(SweepSpec.from_dict({"base": {"procs": 8, "batch": 64}}))
    text = json.dumps(point.config, sort_keys=True, separators=(",", ":"))
    assert point.point_id == hashlib.sha256(text.encode()).hexdigest()[:16]
    # the default grid spelled out is the same run, so the same id
    (same,) = expand(SweepSpec.from_dict({"base": {"procs": 8, "batch": 64, "grid": "1x8"}}))
    assert same.point_id == point.point_id
    assert canonical_hash({"a": 1, "b": 2}) == canonical_hash({"b": 2, "a": 1})


@pytest.mark.parametrize("text, field", [
    ("base: {procs: [1, 2}\n", "sweep"),
    ("base: {bogus: 1}\n", "base.bogus"),
    ("vary: {procs: []}\n", "vary.procs"),
    ("nonsense: 1\n", "sweep"),
    ("zip: [{batch: [1, 2], procs: [1]}]\n", "zip[0]"),
    ("vary: {procs: [4]}\nzip: [{procs: [8]}]\n", "zip[0].procs"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, text, field):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(UserError) as info:
        load_sweep(bad)
    assert info.value.field == field
    assert main(["sweep", str(bad), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}:") and err.count("\n") == 1
    assert not (tmp_path / "r.csv").exists()


def test_chunks_cover_every_point_once():
    points = expand(load_sweep(QUICK))
    chunks = chunk_points(points, slots=2)
    assert [p for c in chunks for p in c] == points
    assert all(1 <= len(c) <= 32 for c in chunks)
    assert [len(c) for c in chunk_points(points, 2, chunksize=5)] == [5, 5, 5, 5, 4]


# ------------------------------------------------------------------------------------------ runner
def test_two_workers_write_24_rows_with_aligned_header(tmp_path):
    out = tmp_path / "r.csv"
    report = run_sweep(QUICK, out, workers=2, point_fn=toy_point, chunksize=3)
    rows = _rows(out)
    assert len(rows) == 24 and report.ok + report.failed == 24
    assert list(rows[0]) == columns()
    assert len({r["point_id"] for r in rows}) == 24
    for r in rows:
        if r["status"] == "ok":
            p = int(r["procs"])
            comm = 2 * (p - 1) * 1e-6 + 2 * (p - 1) / p * 1e6 / 1e9
            assert float(r["batch_comm_s"]) == comm  # written with repr: read back bit for bit


def test_failing_points_are_recorded_and_the_rest_finish(tmp_path):
    out = tmp_path / "r.csv"
    sweep = {"base": {"strategy": "integrated", "batch": 512}, "vary": {"grid": ["2x2", "3x5", "1x4", "4x1"]},
             "zip": [{"procs": [4]}]}
    report = run_sweep(sweep, out, workers=2, point_fn=toy_point)
    rows = {r["grid"]: r for r in _rows(out)}
    assert report.ok == 2 and report.failed == 2
    assert rows["3x5"]["status"] == "error" and "does not equal procs=4" in rows["3x5"]["error"]
    assert rows["2x2"]["error"] == "RuntimeError: toy failure second line"  # one line
    assert rows["1x4"]["status"] == rows["4x1"]["status"] == "ok"
    assert rows["3x5"]["iteration_s"] == ""


def test_interrupt_then_resume_gives_every_row_once_and_same_values(tmp_path):
    full = tmp_path / "full.csv"
    run_sweep(QUICK, full, workers=0, point_fn=toy_point)
    out = tmp_path / "part.csv"
    seen = []

    def stop_after_7(row):
        seen.append(row)
        if len(seen) == 7:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as info:
        run_sweep(QUICK, out, workers=2, point_fn=toy_point, chunksize=2, on_row=stop_after_7)
    assert info.value.report.ok + info.value.report.failed == 7
    assert len(_rows(out)) == 7 and out.read_bytes().endswith(b"\n")
    report = run_sweep(QUICK, out, workers=2, point_fn=toy_point, resume=True)
    assert report.skipped == 7 and report.ok + report.failed == 17
    rows = _rows(out)
    assert len(rows) == 24 and len({r["point_id"] for r in rows}) == 24
    key = lambda r: r["point_id"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(_rows(full), key=key)
    # resuming a finished sweep runs nothing and writes nothing
    again = run_sweep(QUICK, out, workers=2, point_fn=toy_point, resume=True)
    assert again.skipped == 24 and again.ok + again.failed == 0 and len(_rows(out)) == 24


def test_resume_drops_a_partial_last_line(tmp_path):
    out = tmp_path / "r.csv"
    run_sweep(QUICK, out, workers=0, point_fn=toy_point)
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:10]) + lines[10][:20])  # header + 9 rows + a cut line
    report = run_sweep(QUICK, out, workers=0, point_fn=toy_point, resume=True)
    assert report.skipped == 9 and len(_rows(out)) == 24


def test_existing_out_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("x\n")
    with pytest.raises(UserError, match="already exists"):
        run_sweep(QUICK, out, workers=0, point_fn=toy_point)
    with pytest.raises(UserError, match="not written by this sweep"):
        run_sweep(QUICK, out, workers=0, point_fn=toy_point, resume=True)
    report = run_sweep(QUICK, out, workers=0, point_fn=toy_point, overwrite=True)
    # toy_point fails exactly on grid 2x2 with batch 512 (see above); every other point of QUICK is ok
    configs = [p.config for p in expand(load_sweep(QUICK))]
    failing = sum(1 for c in configs if c.get("grid") == "2x2" and c["batch"] == 512)
    assert (report.ok, report.failed) == (len(configs) - failing, failing) and failing > 0
    with pytest.raises(UserError, match="does not exist"):
        open_sink(tmp_path / "no" / "r.csv", columns())


def test_sorted_output_is_in_sweep_order(tmp_path):
    out = tmp_path / "r.csv"
    run_sweep(QUICK, out, workers=2, point_fn=toy_point, chunksize=1, sort=True)
    assert [r["point_id"] for r in _rows(out)] == [p.point_id for p in expand(load_sweep(QUICK))]
    frame = load_results(out, ok_only=True)
    assert len(frame) == 23 and set(frame["status"]) == {"ok"}  # toy_point fails only 2x2 (P=4) at B=512


def test_negative_workers_rejected(tmp_path):
    assert main(["sweep", str(QUICK), "--out", str(tmp_path / "r.csv"), "--workers", "-1"]) == 2


def test_progress_bar_counts_done_failed_remaining():
    import io

    from sim.sweep.progress import SweepProgress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    with SweepProgress(5, stream=stream) as bar:
        for i in range(5):
            bar.advance(ok=i != 2)
    final = stream.getvalue().rsplit("\r", 1)[-1]
    assert "5/5" in final and "failed 1" in final and "remaining 0" in final and "pts/min" in final
    quiet = io.StringIO()  # not a terminal: nothing printed
    with SweepProgress(5, stream=quiet) as bar:
        bar.advance(ok=True)
    assert quiet.getvalue() == ""


def test_scheduler_without_dask_installed_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dnnsim[dask] were not installed
    assert main(["sweep", str(QUICK), "--out", str(tmp_path / "r.csv"), "--scheduler", "tcp://h:8786"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scheduler: dask.distributed is not installed;") and "pip install 'dask[distributed]'" in err
    assert not (tmp_path / "r.csv").exists()
