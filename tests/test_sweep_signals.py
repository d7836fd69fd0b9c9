"""A real ``dnnsim sweep`` stopped by signals and by ``kill -9``: it ends, leaves no process behind, and its
CSV holds whole, valid rows that ``--resume`` completes with every point exactly once.

Each sweep runs as a subprocess in its own session, so its process group holds exactly the sweep, its
forkserver, its resource tracker and its workers; "nothing left behind" means no live process in that
group. The only timing in these tests is a generous limit on how long a stopped sweep may take to exit
(a hang is what is tested), never a measured duration.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sweep import QUICK, toy_point

from sim.sweep import columns, expand, load_sweep, run_sweep

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the process group")

ROOT = Path(__file__).resolve().parents[1]
EXIT_LIMIT_S = 10.0  # a stopped sweep that has not exited by then hangs

# VGG-16 over an oversubscribed fat-tree in the flow model: a few points per second on two workers, so the
# sweep (104 points) is still running when the signal comes.
SLOW = """\
base: {model: vgg16, strategy: integrated, grid: all, network: flow, compute: none,
       topology: "fattree:k=8,oversubscription=4"}
vary: {batch: [256, 512, 1024, 2048], procs: [16, 32, 64, 128]}
"""


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            pids.append(int(entry))
    return pids


def _wait_group_empty(pgid: int) -> list[int]:
    deadline = time.monotonic() + EXIT_LIMIT_S
    while (left := _group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_lines(proc: subprocess.Popen, path: Path, lines: int) -> None:
    """Until ``path`` has ``lines`` newlines (the sweep is under way), or fail if the sweep ends first."""
    deadline = time.monotonic() + 120
    while not path.exists() or path.read_bytes().count(b"\n") < lines:
        assert proc.poll() is None, f"the sweep ended before it was stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, "the sweep did not start"
        time.sleep(0.02)


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=EXIT_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the sweep did not exit after being stopped (it hangs)")


def _check_csv(path: Path, points: dict[str, object]) -> list[dict[str, str]]:
    """Header, whole lines, every row one of the sweep's points (at most once) with a status."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-200:]
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == columns()
        rows = list(reader)
    header = columns()
    out = []
    for fields in rows:
        assert len(fields) == len(header), fields
        row = dict(zip(header, fields, strict=True))
        assert row["point_id"] in points
        if row["status"] == "ok":
            assert float(row["iteration_s"]) > 0
        else:
            assert row["status"] == "error" and row["error"], row
        out.append(row)
    ids = [r["point_id"] for r in out]
    assert len(ids) == len(set(ids)), "a point was written twice"
    return out


# (what is sent, to whom) — `timeout -s INT` signals the process and then its group; users press Ctrl-C twice
SENDS = [
    [("pid", signal.SIGINT)],
    [("pid", signal.SIGINT), ("pid", signal.SIGINT)],
    [("pid", signal.SIGINT), ("group", signal.SIGINT)],
    [("group", signal.SIGINT)],
    [("group", signal.SIGINT), ("group", signal.SIGINT)],
    [("pid", signal.SIGTERM)],
    [("group", signal.SIGTERM)],
    [("pid", signal.SIGTERM), ("pid", signal.SIGTERM)],
    [("pid", signal.SIGINT), ("pid", signal.SIGTERM)],
    [("group", signal.SIGTERM), ("group", signal.SIGINT)],
]


def test_signals_end_a_real_sweep_every_time(tmp_path):
    sweep = tmp_path / "slow.yaml"
    sweep.write_text(SLOW)
    points = {p.point_id: p for p in expand(load_sweep(sweep))}
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "sim", "sweep", str(sweep), "--out", str(out), "--workers", "2", "--overwrite"]
    for i, sends in enumerate(SENDS):
        out.unlink(missing_ok=True)
        proc = _start(cmd)
        # the header is written once the signal guard is up; the delays put the signal at different stages
        # (workers starting, importing, simulating)
        _wait_lines(proc, out, 1)
        time.sleep(0.15 * (i % 5))
        for target, sig in sends:
            if target == "pid":
                os.kill(proc.pid, sig)
            else:
                os.killpg(proc.pid, sig)
            time.sleep(0.02)
        _, err = _stop(proc)
        expected = 128 + sends[0][1]  # the first signal decides: 130 for SIGINT, 143 for SIGTERM
        assert proc.returncode == expected, (i, sends, proc.returncode, err)
        assert err.startswith("error: interrupted after") and "--resume" in err and err.count("\n") == 1, err
        assert _wait_group_empty(proc.pid) == [], f"processes left behind after {sends}"
        _check_csv(out, points)


def test_kill_9_then_resume_writes_every_point_once(tmp_path):
    """kill -9 of the sweep while rows stream in (many small chunks): the workers exit by themselves, the
    file holds whole lines, and ``--resume`` finishes it with the rows of an uninterrupted sweep."""
    sweep = tmp_path / "big.yaml"
    # 5 batches x 33 grids of P = 4 ... 128 = 165 analytic points (fast: rows arrive many per second)
    sweep.write_text(QUICK.read_text().replace("batch: [256, 512]", "batch: [256, 512, 1024, 2048, 4096]")
                     .replace("procs: [4, 8, 16]", "procs: [4, 8, 16, 32, 64, 128]"))
    points = {p.point_id: p for p in expand(load_sweep(sweep))}
    assert len(points) == 165
    out = tmp_path / "r.csv"
    proc = _start([sys.executable, "-m", "sim", "sweep", str(sweep), "--out", str(out), "--workers", "2",
                   "--chunksize", "1"])
    _wait_lines(proc, out, 12)
    os.kill(proc.pid, signal.SIGKILL)
    _stop(proc)
    assert proc.returncode == -signal.SIGKILL
    assert _wait_group_empty(proc.pid) == [], "workers outlived a killed sweep"
    first = _check_csv(out, points)
    assert 11 <= len(first) < 165
    resumed = _start([sys.executable, "-m", "sim", "sweep", str(sweep), "--out", str(out), "--workers", "2",
                      "--resume"])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    rows = _check_csv(out, points)
    assert sorted(r["point_id"] for r in rows) == sorted(points)
    # the rows of the killed run are untouched: the file starts with them, byte for byte
    assert [r["point_id"] for r in rows[:len(first)]] == [r["point_id"] for r in first]


@pytest.mark.parametrize("tail", ["cut inside the last row", "cut right after a comma", "NUL bytes",
                                  "half a row then a newline", "half a row, newline, half a row",
                                  "only the header", "header cut short"])
def test_resume_repairs_a_torn_tail_and_writes_every_point_once(tmp_path, tail):
    full = tmp_path / "full.csv"
    run_sweep(QUICK, full, workers=0, point_fn=toy_point)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    row = lines[10]
    torn = {
        "cut inside the last row": b"".join(lines[:10]) + row[:len(row) // 2],
        "cut right after a comma": b"".join(lines[:10]) + row[:row.index(b",") + 1],
        "NUL bytes": b"".join(lines[:10]) + b"\0" * 300,  # a file extended but never written (power loss)
        "half a row then a newline": b"".join(lines[:10]) + row[:len(row) // 2] + b"\n",
        "half a row, newline, half a row": b"".join(lines[:10]) + row[:40] + b"\n" + lines[11][:30],
        "only the header": lines[0],
        "header cut short": lines[0][:25],
    }[tail]
    kept_rows = 0 if tail.startswith(("only", "header")) else 9
    out = tmp_path / "r.csv"
    out.write_bytes(torn)
    report = run_sweep(QUICK, out, workers=0, point_fn=toy_point, resume=True)
    assert report.skipped == kept_rows and report.ok + report.failed == 24 - kept_rows
    key = lambda r: r["point_id"]  # noqa: E731
    with out.open(newline="") as fh, full.open(newline="") as ref:
        got, want = list(csv.DictReader(fh)), list(csv.DictReader(ref))
    assert len(got) == 24 and sorted(got, key=key) == sorted(want, key=key)


def test_a_second_signal_cannot_interrupt_the_shutdown(tmp_path):
    """In process: SIGINT twice from ``on_row`` (the second while the first one's shutdown runs) ends in
    one SweepInterrupted, with the rows written so far whole and the default handler back afterwards."""
    from sim.sweep import SweepInterrupted

    out = tmp_path / "r.csv"
    seen = []

    def signal_twice(row):
        seen.append(row)
        if len(seen) == 5:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(QUICK, out, workers=2, point_fn=toy_point, chunksize=1, on_row=signal_twice)
    assert info.value.signum == signal.SIGINT and info.value.report.interrupted
    assert signal.getsignal(signal.SIGINT) is before
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == info.value.report.ok + info.value.report.failed >= 5
    assert out.read_bytes().endswith(b"\n")


def test_sigterm_in_process_is_reported_as_sigterm(tmp_path):
    from sim.sweep import SweepInterrupted

    out = tmp_path / "r.csv"
    seen = []

    def term_at_3(row):
        seen.append(row)
        if len(seen) == 3:
            signal.raise_signal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(QUICK, out, workers=0, point_fn=toy_point, on_row=term_at_3)
    assert info.value.signum == signal.SIGTERM and info.value.report.ok + info.value.report.failed == 3
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigint_to_the_group_ends_a_dask_local_sweep(tmp_path):
    """``--scheduler local``: the LocalCluster's worker processes are killed, not drained; none is left."""
    pytest.importorskip("distributed")
    sweep = tmp_path / "slow.yaml"
    sweep.write_text(SLOW)
    points = {p.point_id: p for p in expand(load_sweep(sweep))}
    out = tmp_path / "r.csv"
    proc = _start([sys.executable, "-m", "sim", "sweep", str(sweep), "--out", str(out), "--scheduler", "local",
                   "--workers", "2"])
    _wait_lines(proc, out, 1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = _stop(proc)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted after"), err  # dask may log before it
    assert _wait_group_empty(proc.pid) == [], "dask worker processes left behind"
    _check_csv(out, points)
