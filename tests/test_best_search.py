"""dnnsim best never misses the best on small lists; the routed screen is exact for a lone collective."""

from __future__ import annotations

import json
import math

import pytest
import simpy

from sim.api import simulate
from sim.best import candidates, rank_best
from sim.cli import main
from sim.config import make_config
from sim.errors import UserError
from sim.network import make_network
from sim.screen import RoutedScreen
from topologies import build_topology
from topologies.basic import ideal

KEYS = ["strategy", "pr", "pc", "conv", "fc"]
CONV_GRID = ["conv_pr", "conv_pc"]  # a conv grid of its own, where the candidates enumerate one


def key_of(row) -> tuple:
    """The candidate a summary row is: strategy, grid, modes (and conv grid where there is one)."""
    return tuple(row[k] for k in KEYS + [k for k in CONV_GRID if k in row.index])


def exhaustive(base):
    """``simulate`` of every candidate the config checks accept: {(strategy, pr, pc, conv, fc): seconds}."""
    out = {}
    for over in candidates(base, has_conv=True):
        try:
            r = simulate({**base.model_dump(), **over})
        except UserError:
            continue
        out[key_of(r.summary.iloc[0])] = r.iteration_s
    return out


# ------------------------------------------------------------------ the screen alone
@pytest.mark.parametrize("spec,n", [("hier:nodes=2,gpus_per_node=4", 8), ("fattree:k=4", 16),
                                    ("fattree:k=4,oversubscription=2", 16), ("torus:dims=4x4", 16)])
@pytest.mark.parametrize("op,alg", [("allreduce", "ring"), ("allreduce", "paper"), ("allreduce", "hierarchical"),
                                    ("allgather", "ring"), ("allgather", "bruck"), ("alltoall", "direct"),
                                    ("reduce_scatter", "ring")])
@pytest.mark.parametrize("group", [tuple(range(8)), (0, 2, 5, 7), (1, 6, 3)])
def test_screen_equals_flow_for_a_lone_collective(spec, n, op, alg, group):
    """One collective alone on the network: equal sharing per phase is what flow's max-min gives."""
    net = make_network("flow", build_topology(spec, n))
    env = simpy.Environment()
    net.session(env).collective(op, alg, group, 3e6)
    env.run()
    assert RoutedScreen(net).group_s(op, alg, group, 3e6) == pytest.approx(env.now, rel=1e-9)


def test_screen_on_ideal_is_the_ring_closed_form():
    alpha, bw, n, p = 1e-6, 2.0**30, 8 * 2**20, 8
    screen = RoutedScreen(make_network("flow", ideal(p, bandwidth_Bps=bw, latency_s=alpha)))
    # ring all-reduce: 2(p-1) steps of α + n/(p·bw) (Thakur, Rabenseifner & Gropp 2005, Sec. 4)
    assert screen.group_s("allreduce", "ring", tuple(range(p)), n) == pytest.approx(
        2 * (p - 1) * (alpha + n / (p * bw)), rel=1e-12)


def test_screen_takes_the_slowest_group_of_a_kind():
    """hier, 2 nodes x 4 GPUs, grid 2x4 row-major: model groups (0,1), (2,3), ... stay in a node; batch
    groups (0,2,4,6), (1,3,5,7) cross it: each kind is priced on its own links."""
    from sim.grid import Grid
    from sim.strategies.steps import Step

    net = make_network("flow", build_topology("hier:nodes=2,gpus_per_node=4,intra=100GB/s,inter=10GB/s,"
                                              "intra_latency=0,inter_latency=0", 8))
    screen = RoutedScreen(net)
    grid = Grid(2, 4, "row-major")  # model groups (0,1), (2,3), ... all inside a node; batch groups span nodes
    step = Step("collective", "fc", "bwd", op="allreduce", group="batch", nbytes=4e6, algorithm="ring")
    intra = Step("collective", "fc", "bwd", op="allreduce", group="model", nbytes=4e6, algorithm="ring")
    # ring on a batch group (0,2,4,6): 2 hops of 4 cross the node boundary at 10 GB/s, bottleneck:
    # 2(p-1) steps of n/(p·bw) with bw = the NIC's 10 GB/s
    assert screen.collective_s(step, grid) == pytest.approx(2 * 3 * 4e6 / (4 * 10e9), rel=1e-12)
    # a model group (0,1) stays on NVLink: 2(p-1) n/(p·100 GB/s)
    assert screen.collective_s(intra, grid) == pytest.approx(2 * 1 * 4e6 / (2 * 100e9), rel=1e-12)


# ------------------------------------------------------------------ best == exhaustive run
@pytest.mark.parametrize("topology", ["hier:nodes=2,gpus_per_node=4", "fattree:k=4,oversubscription=2",
                                      "torus:dims=2x4"])
def test_best_on_small_lists_equals_exhaustive_run(topology):
    base = make_config({"batch": 32, "procs": 8, "network": "flow", "topology": topology})
    runs = exhaustive(base)
    table = rank_best(base)
    assert len(table) == len(runs)  # every candidate re-timed and listed
    got = {key_of(row): row["iteration_s"] for _, row in table.iterrows()}
    assert got == runs  # bit for bit what dnnsim run gives for each candidate
    assert table["iteration_s"].iloc[0] == min(runs.values())
    assert list(table["iteration_s"]) == sorted(table["iteration_s"])


def test_issue_dgx_h100_example():
    """The issue: P=16, B=64, AlexNet, flow on dgx-h100; `dnnsim run` finds 8x2 model/model best (1.099 ms),
    which the single α-β screen ranked 6th of 17."""
    base = make_config({"batch": 64, "procs": 16, "network": "flow", "topology": "dgx-h100"})
    best = simulate({**base.model_dump(), "strategy": "integrated", "grid": "8x2", "conv": "model", "fc": "model"})
    assert best.iteration_s == pytest.approx(1.099e-3, abs=0.5e-6)
    # the issue's enumeration (one grid for every layer): 17 candidates
    old = rank_best(base.model_copy(update={"network": "analytic"}), conv_grids=False)
    old_rank = old[(old["strategy"] == "integrated") & (old["pr"] == 8) & (old["conv"] == "model")
                   & (old["fc"] == "model")]["rank"].min()
    assert (old_rank, len(old)) == (6, 17)  # the single α-β screen does not see it
    for exact_up_to in (32, 0):  # everything re-timed; or only the routed screen's top 1
        top = rank_best(base, top=1, exact_up_to=exact_up_to, conv_grids=False).iloc[0]
        assert tuple(top[k] for k in KEYS) == ("integrated", 8, 2, "model", "model")
        assert top["iteration_s"] == best.iteration_s
    # with separate conv grids searched too, the winner is at least as fast
    assert rank_best(base, top=1).iloc[0]["iteration_s"] <= best.iteration_s


# ------------------------------------------------------------------ analytic unchanged, batch row, speedup
def test_analytic_best_is_bit_identical_to_run():
    base = make_config({"batch": 64, "procs": 8})
    table = rank_best(base)
    runs = exhaustive(base)
    assert {key_of(row): row["iteration_s"] for _, row in table.iterrows()} == runs
    assert (table["screen_iteration_s"] == table["iteration_s"]).all()


def test_pure_batch_row_always_listed_with_speedup():
    base = make_config({"batch": 64, "procs": 16, "network": "flow", "topology": "dgx-h100"})
    batch_s = simulate({**base.model_dump(), "strategy": "batch"}).iteration_s
    table = rank_best(base, top=2)
    assert list(table["rank"][:2]) == [1, 2]
    assert len(table) == 3 and table["strategy"].iloc[2] == "batch" and table["rank"].iloc[2] > 2
    assert table["speedup_vs_batch"].iloc[2] == 1.0
    for _, row in table.iterrows():
        assert row["speedup_vs_batch"] == pytest.approx(batch_s / row["iteration_s"], rel=1e-15)
    cols = list(table.columns)
    assert cols.index("screen_iteration_s") + 1 == cols.index("iteration_s") == cols.index("speedup_vs_batch") - 1


def test_restricted_modes_still_get_speedup_from_pure_batch():
    base = make_config({"batch": 64, "procs": 8, "strategy": "integrated", "conv": "model", "fc": "model"})
    batch_s = simulate({"batch": 64, "procs": 8}).iteration_s
    table = rank_best(base)
    assert "batch" not in set(table["strategy"])  # excluded by --conv/--fc: a reference only
    assert (table["speedup_vs_batch"] == batch_s / table["iteration_s"]).all()


def test_no_pure_batch_gives_nan_speedup():
    table = rank_best(make_config({"batch": 4, "procs": 8}))  # Pc = 8 > B = 4: batch does not fit
    assert "batch" not in set(table["strategy"])
    assert table["speedup_vs_batch"].map(math.isnan).all()


def test_above_exact_up_to_retimes_top_k_and_batch():
    base = make_config({"batch": 64, "procs": 8, "network": "flow", "topology": "star:bandwidth=6GiB/s,latency=1us"})
    table = rank_best(base, top=2, exact_up_to=0)
    retimed = table[table["network"] == "flow"]
    assert len(retimed) == len(table) in (2, 3)
    assert "batch" in set(table["strategy"])


def test_cli_best_exact_up_to(capsys):
    assert main(["best", "--batch", "64", "--procs", "8", "--network", "flow", "--topology", "star",
                 "--exact-up-to", "0", "--top", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["rank"] == 1 and "speedup_vs_batch" in rows[0] and "screen_iteration_s" in rows[0]
    assert main(["best", "--batch", "64", "--procs", "8", "--exact-up-to", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: exact_up_to:")
    assert main(["best", "--help"]) == 0
    assert "exhaustive" in capsys.readouterr().out


def test_analytic_iteration_s_is_kept_and_is_each_candidates_closed_form():
    # the column best has always had: the analytic network's time of the row's candidate, whatever network
    # the ranking uses; here checked against dnnsim run under network analytic for every row
    base = make_config({"batch": 32, "procs": 8, "network": "flow", "topology": "fattree:k=4,oversubscription=2"})
    table = rank_best(base, conv_grids=False)
    cols = list(table.columns)
    assert cols.index("analytic_iteration_s") + 1 == cols.index("screen_iteration_s")
    for _, row in table.iterrows():
        cfg = {**base.model_dump(), "network": "analytic", "strategy": row["strategy"],
               "grid": f"{row['pr']}x{row['pc']}", "conv": row["conv"], "fc": row["fc"]}
        if row["strategy"] == "batch":
            cfg.update(conv=None, fc=None)
        assert row["analytic_iteration_s"] == simulate(cfg).iteration_s
