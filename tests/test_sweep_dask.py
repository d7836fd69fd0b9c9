"""The Dask backend: the same sweep on an in-process LocalCluster gives the same rows as the local pool."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_sweep import QUICK, toy_point

from sim.cli import main
from sim.errors import UserError
from sim.sweep import run_sweep

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
