"""dnnsim best: every candidate ranked; the winner is what an exhaustive enumeration of the formulas gives."""

from __future__ import annotations

import json
import math

import pytest

from sim.api import simulate
from sim.best import candidates, rank_best
from sim.cli import main
from sim.config import make_config
from sim.errors import UserError
from workloads.zoo import get_model

ALPHA, BW = 2e-6, 6 * 2**30
BETA = 4 / BW


def t_ag(p, words):
    return ALPHA * math.ceil(math.log2(p)) + BETA * (p - 1) / p * words if p > 1 else 0.0


def eq8_true(B, pr, pc):
    """Eq. 8 with the true ΔX sizes (see test_paper_equations.py), AlexNet layer shapes."""
    ws = [w for w in get_model("alexnet").layers if w.kind in ("conv", "fc")]
    total = 0.0
    for k, w in enumerate(ws):
        total += t_ag(pr, B / pc * w.out_elems_per_sample) + 2 * t_ag(pc, w.params / pr)
        if k:
            total += 2 * t_ag(pr, B / pc * w.in_elems_per_sample)
    return total


def test_best_model_model_equals_exhaustive_eq8():
    B, P = 256, 64
    table = rank_best(make_config({"batch": B, "procs": P, "strategy": "integrated", "conv": "model", "fc": "model"}))
    # one grid for every layer (Eq. 8); candidates with a separate conv grid are tested in test_conv_grid.py
    table = table[(table["conv_pr"] == table["pr"]) & (table["conv_pc"] == table["pc"])]
    grids = [(pr, P // pr) for pr in range(2, P + 1) if P % pr == 0 and pr <= 96]
    costs = {g: eq8_true(B, *g) for g in grids}
    best = min(costs, key=costs.get)
    top = table.iloc[0]
    assert (top["pr"], top["pc"]) == best
    assert top["iteration_s"] == pytest.approx(costs[best], rel=1e-9)
    assert len(table) == len(grids)
    got = dict(zip(table["pr"], table["iteration_s"], strict=True))
    assert sorted(got) == [g[0] for g in grids]
    for g in grids:
        assert got[g[0]] == pytest.approx(costs[g], rel=1e-9)


def test_best_all_variants_matches_simulate_of_each_candidate():
    base = make_config({"batch": 64, "procs": 8})
    table = rank_best(base)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert list(table["iteration_s"]) == sorted(table["iteration_s"])
    assert (table["analytic_iteration_s"] == table["iteration_s"]).all()
    seen = set()
    for over in candidates(base, has_conv=True):
        try:
            seen.add((over["strategy"], over["grid"], over["conv"], over["fc"], simulate({**base.model_dump(), **over}).iteration_s))
        except UserError:  # candidates the config checks reject
            continue
    assert len(table) == len(seen)
    assert table["iteration_s"].iloc[0] == pytest.approx(min(s[-1] for s in seen), rel=1e-12)
    strategies = set(table["strategy"])  # AlexNet's 13-row conv3-5 allow domain up to Pr = 13
    assert {"batch", "model", "domain", "integrated"} <= strategies


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


def test_best_retimes_top_k_on_flow():
    table = rank_best(make_config({"batch": 64, "procs": 8, "network": "flow",
                                   "topology": "star:bandwidth=6GiB/s,latency=1us"}), top=2)
    assert len(table) == 2
    assert (table["iteration_s"] >= table["analytic_iteration_s"] * (1 - 1e-9)).all()
    assert (table["network"] == "flow").all()


def test_cli_best(capsys):
    assert main(["best", "--batch", "64", "--procs", "8", "--top", "3", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert main(["best", "--batch", "64", "--procs", "8"]) == 0
    assert "analytic_iteration_s" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--top", "0"], ["--grid", "2x4"], ["--strategy", "batch"],
                                  ["--batch", "3", "--procs", "4096", "--conv", "batch", "--fc", "batch"]])
def test_cli_best_errors(args, capsys):
    assert main(["best", "--batch", "64", "--procs", "8", *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1
