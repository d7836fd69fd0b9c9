"""``hierarchical`` all-reduce without multi-GPU nodes for its group is a flat ring, and every path says so.

On a topology without ``gpus_per_node``, or on a group that is not node-aligned (12 ranks on dgx-a100's
8-GPU nodes, or one GPU per node), the two-level schedule collapses to one ring. ``dnnsim collective``
refuses to time it under the name ``hierarchical`` (a one-line UserError, exit 2); strategy runs still run
it (a grid may have such groups) and report ``ring`` in the records' ``algorithm`` column, for the fast
path and the engine alike. Node-aligned groups keep ``hierarchical``.
"""

from __future__ import annotations

import pytest

from sim.api import simulate
from sim.cli import main
from sim.errors import UserError
from sim.network import make_network
from topologies import build_topology

HIER = ["collective", "--op", "allreduce", "--algorithm", "hierarchical", "--bytes", "1MiB"]


@pytest.mark.parametrize("argv, words", [
    (HIER + ["--procs", "12", "--topology", "dgx-a100"], "not node-aligned"),  # 8 + 4 GPUs
    (HIER + ["--procs", "32", "--topology", "dgx-a100", "--grid", "4x8", "--along", "pr",
             "--placement", "col-major"], "not node-aligned"),  # each group: one GPU on each of 4 nodes
    (HIER + ["--procs", "8"], "no multi-GPU nodes"),  # the default ideal network has no nodes
])
def test_dnnsim_collective_refuses_a_hierarchical_that_would_be_a_ring(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: algorithm: hierarchical allreduce would run a flat ring") and words in err
    assert err.count("\n") == 1, err


def test_dnnsim_collective_runs_node_aligned_hierarchical(capsys):
    assert main(HIER + ["--procs", "16", "--topology", "dgx-a100", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert row.startswith("allreduce,hierarchical,16,")


def test_network_reports_the_algorithm_that_runs():
    dgx = make_network("analytic", build_topology("dgx-a100", 16))
    assert dgx.effective_algorithm("allreduce", "hierarchical", tuple(range(16))) == "hierarchical"
    assert dgx.effective_algorithm("allreduce", "hierarchical", tuple(range(12))) == "ring"
    assert dgx.effective_algorithm("allreduce", "hierarchical", (0, 8)) == "ring"  # one GPU per node
    # the same number of GPUs (at least 2) on each node, in node order, is node-aligned
    assert [dgx.local_size(g) for g in [(0, 1, 8, 9), (0, 1, 2, 3), tuple(range(16)), (0, 1, 2, 8), (1, 0, 8, 9),
                                        (0, 8, 1, 9), (4,)]] == [2, 4, 8, 1, 2, 1, 1]
    assert dgx.effective_algorithm("allreduce", "hierarchical", (0, 1, 8, 9)) == "hierarchical"
    assert dgx.effective_algorithm("allreduce", "hierarchical", (5,)) == "hierarchical"  # sends nothing
    assert dgx.effective_algorithm("allreduce", "ring", tuple(range(12))) == "ring"
    ideal = make_network("analytic", build_topology("ideal", 8))
    assert ideal.effective_algorithm("allreduce", "hierarchical", tuple(range(8))) == "ring"
    with pytest.raises(UserError):
        ideal.effective_algorithm("allreduce", "qsort", (0, 1))


BATCH12 = {"model": "alexnet", "batch": 96, "procs": 12, "strategy": "batch", "topology": "dgx-a100",
           "network": "analytic", "compute": "paper-knl"}


@pytest.mark.parametrize("engine", ["fast", "full"])
def test_strategy_records_name_the_ring_that_ran(engine):
    hier = simulate(dict(BATCH12, collectives="allreduce=hierarchical"), engine=engine)
    ring = simulate(dict(BATCH12, collectives="allreduce=ring"), engine=engine)
    ran = hier.records.loc[hier.records["op"] == "allreduce", "algorithm"]
    assert len(ran) and set(ran) == {"ring"}
    # with no multi-rank node, hierarchical's closed form 2(L-1)(α + n/(L·bw)) + 2(m-1)(α + n/(p·bw)) at L = 1
    # is ring's 2(p-1)(α + n/(p·bw)): the same iteration
    assert hier.iteration_s == ring.iteration_s
    # the run's own settings still say what was asked for
    assert hier.summary["collectives"].iloc[0] == "allreduce=hierarchical"


def test_strategy_records_keep_hierarchical_on_whole_nodes():
    res = simulate(dict(BATCH12, procs=16, batch=128, collectives="allreduce=hierarchical"))
    ran = res.records.loc[res.records["op"] == "allreduce", "algorithm"]
    assert len(ran) and set(ran) == {"hierarchical"}
