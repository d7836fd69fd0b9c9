"""The Dask backend: the same sweep on an in-process LocalCluster gives the same rows as the local pool; a
worker process killed mid-sweep costs nothing: its chunks are rescheduled and every point is written once."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest
from test_sweep import QUICK, toy_point

from sim.cli import main
from sim.errors import UserError
from sim.sweep import SweepInterrupted, run_sweep

distributed = pytest.importorskip("distributed")


def _by_id(path: Path) -> dict[str, dict]:
    with path.open(newline="") as fh:
        return {r["point_id"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as c:
        yield c


def test_dask_address_gives_same_rows_as_local_pool(tmp_path, cluster):
    local = tmp_path / "local.csv"
    remote = tmp_path / "dask.csv"
    run_sweep(QUICK, local, workers=2, point_fn=toy_point)
    report = run_sweep(QUICK, remote, scheduler=cluster.scheduler_address, point_fn=toy_point, chunksize=4)
    assert report.backend == "dask" and report.ok + report.failed == 24
    assert _by_id(remote) == _by_id(local)


def test_dask_client_and_resume(tmp_path, cluster):
    out = tmp_path / "r.csv"
    with distributed.Client(cluster) as client:
        first = run_sweep({"base": {"batch": 256}, "vary": {"procs": [4, 8]}}, out, scheduler=client,
                          point_fn=toy_point)
        second = run_sweep(QUICK, out, scheduler=client, point_fn=toy_point, resume=True, overwrite=False)
        assert client.status == "running"  # a client passed in stays open
    assert first.ok == 2 and second.skipped == 0 and len(_by_id(out)) == 26


def test_unreachable_scheduler_is_a_user_error(tmp_path, capsys):
    with pytest.raises(UserError, match="cannot connect"):
        from sim.sweep.dask_backend import DaskBackend

        with DaskBackend("tcp://127.0.0.1:1", workers=1, connect_timeout_s=1):
            pass
    assert main(["sweep", str(QUICK), "--out", str(tmp_path / "r.csv"), "--scheduler", "nonsense://x"]) == 2
    assert capsys.readouterr().err.startswith("error: scheduler:")
    assert not (tmp_path / "r.csv").exists()


def slow_toy_point(config: dict) -> dict:
    """``toy_point`` after 50 ms, so a worker is busy with a chunk when it is killed."""
    time.sleep(0.05)
    return toy_point(config)


@pytest.fixture(scope="module")
def process_cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def _kill_a_worker(client) -> int:
    pid = sorted(client.run(os.getpid).values())[0]
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("interrupt", [False, True], ids=["runs-through", "interrupted-then-resumed"])
def test_killed_worker_every_point_once(tmp_path, process_cluster, interrupt):
    """SIGKILL one worker process when the first row arrives (both workers are busy then): dask reschedules
    its chunks and each point is written exactly once, with the values of a plain in-process run; also when
    the sweep is then interrupted and resumed."""
    reference = tmp_path / "reference.csv"
    run_sweep(QUICK, reference, workers=0, point_fn=toy_point)
    out = tmp_path / "r.csv"
    seen: list[dict] = []
    killed: list[int] = []

    with distributed.Client(process_cluster) as client:
        def kill_then_maybe_stop(row):
            seen.append(row)
            if len(seen) == 1:
                killed.append(_kill_a_worker(client))
            if interrupt and len(seen) == 12:
                raise KeyboardInterrupt

        if interrupt:
            with pytest.raises(SweepInterrupted):
                run_sweep(QUICK, out, scheduler=client, point_fn=slow_toy_point, chunksize=2,
                          on_row=kill_then_maybe_stop)
            assert len(_by_id(out)) == 12
            report = run_sweep(QUICK, out, scheduler=client, point_fn=slow_toy_point, chunksize=2, resume=True)
            assert report.skipped == 12 and report.ok + report.failed == 12
        else:
            report = run_sweep(QUICK, out, scheduler=client, point_fn=slow_toy_point, chunksize=2,
                               on_row=kill_then_maybe_stop)
            assert report.ok + report.failed == 24
        assert killed and killed[0] not in client.run(os.getpid).values()  # it did die (the nanny restarts it)
    with out.open(newline="") as fh:
        ids = [r["point_id"] for r in csv.DictReader(fh)]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert _by_id(out) == _by_id(reference)  # no "worker failed" rows: the killed worker's chunks ran elsewhere
