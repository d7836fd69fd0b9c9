"""dnnsim best: every candidate ranked; the winner is what an exhaustive enumeration of the formulas gives."""

from __future__ import annotations

import json

import pytest
from paper_formulas import ALPHA, dw_all, eq4, eq8_true, fc_model_cost, halo_terms, t_ag, weights

from sim.best import candidates, rank_best
from sim.cli import main
from sim.config import make_config
from workloads.zoo import get_model

ALEXNET = get_model("alexnet")
WS = weights(ALEXNET)
CONVS = [w for w in WS if w.kind == "conv"]
FCS = [w for w in WS if w.kind == "fc"]


def cost(strategy, pr, pc, conv, fc, B):
    """Iteration time (compute none, the paper's network) of one candidate, from the equations of
    tests/paper_formulas.py and the AlexNet layer shapes; ``conv``/``fc`` are the layer modes."""
    P = pr * pc
    if strategy == "batch":
        return eq4(ALEXNET, P)  # Eq. 4
    if fc == "model":
        return fc_model_cost(ALEXNET, B, pr, pc, conv)  # Eqs. 8 and 9 (+ Eq. 6 into the fc layers)
    fc6_in = B / pc * FCS[0].in_elems_per_sample
    if conv == "domain":  # Eq. 7 on B/Pc samples: halos in Pr groups, every ΔW over all P; Eq. 6 fwd and bwd
        return halo_terms(CONVS, B, pc) + dw_all(WS, P) + 2 * t_ag(pr, fc6_in)
    # conv model, fc batch: Eq. 8 over the convolutions, fc ΔW over all P, and the Eq. 6 all-gather of
    # fc6's input gradient back to the Pr ranks of a column (backward only: forward the conv5 output is
    # already gathered)
    return eq8_true(CONVS, B, pr, pc) + dw_all(FCS, P) + t_ag(pr, fc6_in)


def _modes(row):
    return row["strategy"], int(row["pr"]), int(row["pc"]), row["conv"], row["fc"]


def one_grid(table):
    """The rows with one grid for every layer (separate conv grids are tested in test_conv_grid.py)."""
    return table[(table["conv_pr"] == table["pr"]) & (table["conv_pc"] == table["pc"])].reset_index(drop=True)


def test_best_model_model_equals_exhaustive_eq8():
    B, P = 256, 64
    table = rank_best(make_config({"batch": B, "procs": P, "strategy": "integrated", "conv": "model", "fc": "model"}))
    # one grid for every layer (Eq. 8); candidates with a separate conv grid are tested in test_conv_grid.py
    table = table[(table["conv_pr"] == table["pr"]) & (table["conv_pc"] == table["pc"])]
    grids = [(pr, P // pr) for pr in range(2, P + 1) if P % pr == 0 and pr <= 96]  # Pr <= conv1's 96 filters
    costs = {g: eq8_true(WS, B, *g) for g in grids}
    best = min(costs, key=costs.get)
    top = table.iloc[0]
    assert (top["pr"], top["pc"]) == best == (4, 16)
    assert top["iteration_s"] == pytest.approx(costs[best], rel=1e-9)
    assert len(table) == len(grids)
    got = dict(zip(table["pr"], table["iteration_s"], strict=True))
    assert sorted(got) == [g[0] for g in grids]
    for g in grids:
        assert got[g[0]] == pytest.approx(costs[g], rel=1e-9)


def test_best_fc_model_every_conv_mode_equals_eq8_eq9():
    """fc model-parallel, conv free: every grid with conv in (batch, model, domain), each timed by the
    written-out equations. Domain needs Pr <= 13 (the 13 rows of conv3-5's output), so Pr = 16..64
    have no domain row; 64x1 keeps only pure model."""
    B, P = 256, 64
    table = rank_best(make_config({"batch": B, "procs": P, "strategy": "integrated", "fc": "model"}))
    table = one_grid(table)
    expected = {("model", 64, 1, "model", "model"): None}
    for pr in (2, 4, 8, 16, 32):
        for conv in ("batch", "model", "domain"):
            if conv != "domain" or pr <= 13:
                expected[("integrated", pr, P // pr, conv, "model")] = None
    for key in expected:
        expected[key] = cost(key[0], key[1], key[2], key[3], key[4], B)
    got = {_modes(row): row["iteration_s"] for _, row in table.iterrows()}
    assert set(got) == set(expected)
    for key, seconds in expected.items():
        assert got[key] == pytest.approx(seconds, rel=1e-9), key
    assert _modes(table.iloc[0]) == min(expected, key=expected.get) == ("integrated", 32, 2, "batch", "model")


def test_best_all_variants_equal_the_equations():
    """B = 64, P = 8, no restriction: the 14 candidates of the four grids, each timed by the equations,
    ranked by them; the winner is domain conv + model fc on 8x1."""
    B, P = 64, 8
    table = rank_best(make_config({"batch": B, "procs": P}), conv_grids=False)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert (table["screen_iteration_s"] == table["iteration_s"]).all()  # analytic: the screen is the result
    expected = {("batch", 1, 8, "batch", "batch"): 0.0, ("model", 8, 1, "model", "model"): 0.0,
                ("domain", 8, 1, "domain", "batch"): 0.0, ("domain", 8, 1, "domain", "model"): 0.0}
    for pr in (2, 4):
        for conv, fc in [("batch", "model"), ("model", "batch"), ("model", "model"), ("domain", "batch"),
                         ("domain", "model")]:
            expected[("integrated", pr, P // pr, conv, fc)] = 0.0
    expected = {key: cost(key[0], key[1], key[2], key[3], key[4], B) for key in expected}
    rows = [_modes(row) for _, row in table.iterrows()]
    assert sorted(rows) == sorted(expected)
    for key, seconds in zip(rows, table["iteration_s"], strict=True):
        assert seconds == pytest.approx(expected[key], rel=1e-9), key
    assert rows == sorted(expected, key=expected.get)  # ranked by the equations (no two are tied)
    assert rows[0] == ("domain", 8, 1, "domain", "model")


def test_candidates_enumeration():
    base = make_config({"procs": 4})
    got = [(c["strategy"], c["grid"], c["conv"], c["fc"], c["conv_grid"]) for c in candidates(base, has_conv=True)]
    assert got == [("batch", "1x4", None, None, None),
                   ("integrated", "2x2", "batch", "model", None), ("integrated", "2x2", "model", "batch", None),
                   ("integrated", "2x2", "model", "model", None), ("integrated", "2x2", "domain", "batch", None),
                   ("integrated", "2x2", "domain", "model", None),
                   ("model", "4x1", None, None, None), ("domain", "4x1", None, "batch", None),
                   ("domain", "4x1", None, "model", None),
                   # a separate conv grid Pr_c x Pc_c for every Pr_c < Pr dividing the fc grid's Pr
                   ("integrated", "2x2", "model", "model", "1x4"), ("integrated", "2x2", "domain", "model", "1x4"),
                   ("integrated", "4x1", "model", "model", "1x4"), ("integrated", "4x1", "model", "model", "2x2"),
                   ("integrated", "4x1", "domain", "model", "1x4"), ("integrated", "4x1", "domain", "model", "2x2")]


@pytest.mark.parametrize("exact_up_to", [32, 0])  # all 14 re-timed; or the routed screen's top 2
def test_best_retimes_top_k_on_flow(exact_up_to):
    table = rank_best(make_config({"batch": 64, "procs": 8, "network": "flow",
                                   "topology": "star:bandwidth=6GiB/s,latency=1us"}), top=2,
                      exact_up_to=exact_up_to, conv_grids=False)
    assert len(table) == 3  # the top 2, then the pure-batch row (always listed)
    assert (table["network"] == "flow").all()
    # the two best by the equations (test_best_all_variants_equal_the_equations), then retimed on the star
    # (α = two 1 µs hops = 2 µs, 6 GiB/s host links): Bruck's all-gathers and all-reduces send one message
    # per rank per step, so nothing contends and 4x2 costs its equation; on 8x1 domain each rank's halo
    # goes to its two neighbours over its one host link, so every halo's β term counts twice
    top, second, batch = (_modes(row) for _, row in table.iterrows())
    assert top == ("domain", 8, 1, "domain", "model") and second == ("integrated", 4, 2, "batch", "model")
    assert batch == ("batch", 1, 8, "batch", "batch") and table["rank"].iloc[2] > 2
    halo_beta = halo_terms(CONVS, 64, 1) - ALPHA * sum(1 for c in CONVS for k in c.kernel if k // 2)
    want = [cost(*top, B=64) + halo_beta, cost(*second, B=64), cost(*batch, B=64)]  # batch: Eq. 4, one group
    assert list(table["iteration_s"]) == pytest.approx(want, rel=1e-9)
    # the routed screen sees the halo's shared host link too (each group alone on the star: exact)
    assert list(table["screen_iteration_s"]) == pytest.approx(want, rel=1e-9)
    assert list(table["speedup_vs_batch"]) == pytest.approx([want[2] / w for w in want], rel=1e-9)


def test_cli_best(capsys):
    assert main(["best", "--batch", "64", "--procs", "8", "--top", "3", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows][:3] == [1, 2, 3]  # then the pure-batch row, if it ranks below
    assert main(["best", "--batch", "64", "--procs", "8"]) == 0
    assert "screen_iteration_s" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--top", "0"], ["--grid", "2x4"], ["--strategy", "batch"],
                                  ["--batch", "3", "--procs", "4096", "--conv", "batch", "--fc", "batch"]])
def test_cli_best_errors(args, capsys):
    assert main(["best", "--batch", "64", "--procs", "8", *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1
