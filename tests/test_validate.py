"""dnnsim validate: the runner on a small fixture with an independently computed row, bad input, the shipped table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sim.calibrate.nccltests import read_files
from sim.cli import main
from sim.units import parse_bytes
from sim.validate import DEFAULT_ROWS, load_rows, run_rows, summarize

FIXTURE = """
rows:
  - id: ring8
    kind: collective
    setting: {op: allreduce, procs: 8, bytes: 64MiB, topology: "ideal:latency=0us,bandwidth=10GB/s",
              algorithm: ring, network: analytic}
    measured: {value: 5, unit: busbw_GB/s}
    source: "fixture"
  - id: gap
    kind: throughput
    missing: "something dnnsim lacks"
    source: "fixture"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rows.yaml"
    path.write_text(text)
    return path


def test_ring_row_matches_closed_form(tmp_path):
    # ring all-reduce with zero latency on a full mesh of 10 GB/s links: time = 2 (p-1)/p * n / B
    # (Thakur, Rabenseifner & Gropp 2005), so busbw = n / time * 2 (p-1)/p = B = 10 GB/s exactly
    results = run_rows(load_rows(_write(tmp_path, FIXTURE)))
    ring = results[0]
    assert math.isclose(ring["predicted"], 10.0, rel_tol=1e-9)
    assert math.isclose(ring["error"], 10.0 / 5 - 1, rel_tol=1e-9)
    assert results[1]["predicted"] is None and results[1]["setting"].startswith("missing: ")
    s = summarize(results)
    assert (s["rows"], s["missing"], s["worst"]) == (1, 1, "ring8")
    assert math.isclose(s["median_abs_error"], 1.0, rel_tol=1e-9)


def test_cli_formats(tmp_path, capsys):
    path = _write(tmp_path, FIXTURE)
    assert main(["validate", "--rows", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["ring8", "gap"]
    assert main(["validate", "--rows", str(path)]) == 0
    out = capsys.readouterr().out
    assert "median |error| 100.0 %" in out and "gap  missing: something dnnsim lacks" in out


@pytest.mark.parametrize("text, field", [
    ("rows: []\n", "rows"),
    ("rows:\n  - id: x\n    kind: bogus\n    source: s\n    missing: m\n", "rows[x]"),
    ("rows:\n  - id: x\n    kind: throughput\n    source: s\n", "rows[x]"),
    ("rows:\n  - id: x\n    kind: scaling\n    source: s\n    setting: {procs: 2, batch: 4}\n"
     "    measured: {value: 1.9, unit: samples/s}\n", "rows[x]"),
    ("rows:\n  - {id: x, kind: throughput, missing: m}\n", "rows[x]"),
    (FIXTURE + FIXTURE.split("rows:\n")[1], "rows[ring8]"),
    ("rows: [unclosed\n", "rows"),
])
def test_malformed_rows_file(tmp_path, capsys, text, field):
    assert main(["validate", "--rows", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}: ") and err.count("\n") == 1


def test_unknown_id(tmp_path, capsys):
    assert main(["validate", "--rows", str(_write(tmp_path, FIXTURE)), "--only", "ring8,nope"]) == 2
    assert capsys.readouterr().err == ("error: only: unknown row id 'nope'; "
                                       "ids of the rows file (dnnsim validate lists them)\n")


def test_shipped_table_parses_and_cites():
    rows = load_rows(DEFAULT_ROWS)
    assert len(rows) >= 25
    assert all(row["source"].strip() for row in rows)
    run = [row for row in rows if "missing" not in row]
    assert {row["kind"] for row in run} == {"collective", "throughput", "scaling", "training"}
    # published figures copied into the table, checked against their sources' text:
    # A3 Mega 8 GiB out-of-place busbw (tests/data/nccl-tests/h100-a3mega-2x8-all_reduce.txt) and
    # DeepLearningExamples ResNet-50 v1.5 PyTorch README, DGX A100 1 GPU TF32 938 img/s
    by_id = {row["id"]: row for row in rows}
    data = Path(__file__).parent / "data" / "nccl-tests" / "h100-a3mega-2x8-all_reduce.txt"
    line = next(ln for ln in data.read_text().splitlines() if ln.strip().startswith("8589934592"))
    assert by_id["a3mega-allreduce-8GiB"]["measured"]["value"] == float(line.split()[7])
    assert by_id["a100-resnet50-tf32-1gpu"]["measured"]["value"] == 938
    # every A3 Mega all-gather row is its file's out-of-place busbw at that size, 1 MiB and up
    for source in ("gke", "dstack"):
        (table,) = read_files([data.with_name(f"h100-a3mega-2x8-all_gather-{source}.txt")], op="allgather")
        rows_here = {row["setting"]["bytes"]: row["measured"]["value"] for row in rows
                     if row["id"].startswith(f"a3mega-allgather-{source}-")}
        from_file = {r.size_bytes: r.busbw_Bps / 1e9 for r in table.rows if r.size_bytes >= 2**20}
        assert {parse_bytes(b): v for b, v in rows_here.items()} == from_file


SCALING_BAD = """
  - id: odd
    kind: scaling
    setting: {model: alexnet, procs: 4, batch: 6, compute: "paper-knl", network: analytic}
    measured: {value: 3.5, unit: speedup}
    source: "fixture"
"""


def test_workers_give_the_same_results_in_the_rows_order(tmp_path):
    """Rows on a pool of two worker processes: the same numbers, in the file's order."""
    text = FIXTURE + FIXTURE.split("rows:\n", 1)[1].replace("id: ring8", "id: ring8b").replace("id: gap", "id: gap2")
    rows = load_rows(_write(tmp_path, text))
    assert run_rows(rows, workers=2) == run_rows(rows)


def test_a_row_failing_on_a_worker_is_its_one_line_error(tmp_path, capsys):
    """batch 6 on 4 ranks is no per-rank batch: the same one-line error, naming the row, in this process
    and on the pool (the other rows still run there)."""
    path = _write(tmp_path, FIXTURE + SCALING_BAD)
    errs = []
    for workers in ("1", "2"):
        assert main(["validate", "--rows", str(path), "--workers", workers]) == 2
        errs.append(capsys.readouterr().err)
    assert errs[0] == errs[1] == ("error: rows[odd]: batch 6 is not a multiple of procs 4; "
                                  "batch = procs x the per-rank batch\n")
