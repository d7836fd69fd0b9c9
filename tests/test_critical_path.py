"""The critical path: a chain of records that tiles [0, iteration] exactly, found without re-simulating."""

from __future__ import annotations

import math

import pytest

from sim.critical_path import critical_path, critical_split
from sim.engine import run_program
from sim.network import make_network
from sim.program import Collective, Compute, Program
from topologies import build_topology


def _run(program: Program, procs: int):
    net = make_network("flow", build_topology("ideal:latency=1us,bandwidth=1GB/s", procs))
    return run_program(program, net)


def test_a_collective_waits_for_the_straggler_and_the_path_moves_to_it():
    # rank 1 computes 3 s, rank 0 1 s; then a 2-rank ring all-reduce of 1 MB: (α + n/2/bw)·2
    ar = Collective("allreduce", (0, 1), 1e6, "ring", key="ar")
    prog = Program(((Compute(1.0, "a"), ar), (Compute(3.0, "b"), ar)))
    res = _run(prog, 2)
    path = critical_path(res.records, prog.ops)
    comm = 2 * (1e-6 + 0.5e6 / 1e9)
    assert path[["rank", "kind", "waiting_for"]].values.tolist() == [
        [1, "compute", "start"], [0, "collective", "straggler rank 1"]]
    assert path["duration_s"].tolist() == pytest.approx([3.0, comm], rel=1e-12)
    assert critical_split(path) == pytest.approx(
        {"critical_compute_s": 0.0, "critical_comm_s": comm, "critical_wait_s": 3.0}, rel=1e-12)


def test_overlap_the_path_follows_the_dependency_that_ends_last():
    # comm stream: an all-reduce that depends on compute op 0 (2 s); compute stream goes on for 0.5 s more
    ar = Collective("allreduce", (0,), 4e6, "ring", key="ar", stream="comm", deps=(0,))
    prog = Program(((Compute(2.0, "bwd1"), Compute(0.5, "bwd2"), ar),))
    res = _run(prog, 1)
    path = critical_path(res.records, prog.ops)
    # a 1-rank all-reduce moves nothing: it ends when it starts, at 2 s; compute ends at 2.5 s
    assert path["layer"].tolist() == ["bwd1", "bwd2"]
    assert path["waiting_for"].tolist() == ["start", "stream"]
    assert path["duration_s"].sum() == pytest.approx(res.makespan_s, rel=1e-15)


@pytest.mark.parametrize("cfg", [
    {"strategy": "batch", "procs": 8, "overlap": True},
    {"strategy": "batch", "procs": 8, "overlap": False},
    {"strategy": "integrated", "procs": 8, "grid": "4x2", "conv": "domain", "fc": "model"},
    {"strategy": "integrated", "procs": 16, "grid": "4x4", "conv": "batch", "fc": "model",
     "topology": "fattree:k=4,oversubscription=2"},
])
def test_the_path_tiles_the_iteration_exactly(cfg):
    from sim.api import simulate

    config = {"model": "alexnet", "batch": 64, "network": "flow", "compute": "paper-knl", **cfg}
    result = simulate(config)
    path = critical_path(result.records, result.plan.program().ops)
    assert path["start_s"].iloc[0] == 0.0
    assert (path["end_s"].iloc[:-1].to_numpy() == path["start_s"].iloc[1:].to_numpy()).all()
    assert path["end_s"].iloc[-1] == result.iteration_s
    assert math.isclose(path["duration_s"].sum(), result.iteration_s, rel_tol=1e-12)
    split = critical_split(path)
    assert math.isclose(sum(split.values()), result.iteration_s, rel_tol=1e-12)
