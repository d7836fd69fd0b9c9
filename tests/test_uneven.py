"""Uneven splits (B not a multiple of Pc or P, rows or image height not a multiple of Pr) against hand
calculations.

The rule (sim.strategies.layout, sim.strategies.common): the critical rank holds the larger share,
⌈n/p⌉, as ``torch.chunk`` splits and as ``DistributedSampler(drop_last=False)`` pads (every rank gets
⌈N/P⌉ samples, torch/utils/data/distributed.py). Compute uses the critical rank's ⌈B/Pc⌉ samples and
⌈rows/Pr⌉ or ⌈H/Pr⌉ share; under ``--collectives paper`` message sizes keep the paper's formulas with
B/Pc real; with a real algorithm every block is padded to the largest one.

Machine: the paper's α = 2 µs, 6 GiB/s, fp32 (4-byte words). Closed forms written out here:
paper all-gather α⌈log p⌉ + β (p−1)/p n and all-reduce twice that (the paper's Bruck costs); ring
all-gather (p−1)(α + n/(p·bw)) and ring all-reduce 2(p−1)(α + n/(p·bw)) (n in bytes).
"""

from __future__ import annotations

import math

import pytest

from sim.api import simulate
from sim.cli import main
from sim.grid import Grid
from sim.memory import memory_breakdown
from sim.strategies import plan_layers, plan_run
from sim.strategies.common import Context
from workloads.zoo import get_model

ALPHA = 2e-6
BW = 6 * 2**30
BETA = 4 / BW  # seconds per 4-byte word
W = 4
REL = 1e-12
TOPO = "ideal:latency=2us,bandwidth=6GiB/s"


def lg(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def paper_ag(p: int, words: float) -> float:
    return ALPHA * lg(p) + BETA * (p - 1) / p * words if p > 1 else 0.0


def ring_ag(p: int, nbytes: float) -> float:
    return (p - 1) * (ALPHA + nbytes / (p * BW)) if p > 1 else 0.0


def ring_ar(p: int, nbytes: float) -> float:
    return 2 * (p - 1) * (ALPHA + nbytes / (p * BW)) if p > 1 else 0.0


def layer(model, name):
    return next(lay for lay in model.layers if lay.name == name)


def run(**kw):
    cfg = {"model": "alexnet", "topology": TOPO, "network": "analytic", "compute": "none"}
    cfg.update(kw)
    return simulate(cfg).summary.iloc[0]


# ------------------------------------------------------------------ batch: B = 100 on P = 24
def test_batch_100_on_24_ranks_computes_5_samples():
    # ⌈100/24⌉ = 5: 100 = 4 ranks x 5 + 20 ranks x 4, as torch.chunk splits; DistributedSampler's
    # num_samples = ceil(100 / 24) = 5 too
    plans = plan_layers(get_model("alexnet"), "batch", "batch", 100, 1, 24)
    assert {p.local_batch for p in plans} == {5.0}
    assert {p.shard for p in plans} == {1.0}


def test_batch_100_on_24_ranks_times_as_120_and_epoch_is_n_over_b():
    # compute at 5 samples per rank is what B = 120 = 24 x 5 gives evenly, and the ΔW all-reduce does not
    # depend on B: the iteration is the same; the epoch is still N/B = 1.2e6/100 iterations
    uneven = run(batch=100, procs=24, compute="paper-knl")
    even = run(batch=120, procs=24, compute="paper-knl")
    assert uneven["compute_s"] == even["compute_s"] > 0
    assert uneven["iteration_s"] == even["iteration_s"]
    assert uneven["epoch_s"] == pytest.approx(uneven["iteration_s"] * 1_200_000 / 100, rel=REL)
    # communication only: Eq. 4, 2 Σ (α⌈log P⌉ + β (P−1)/P |W_i|), independent of B
    ws = [lay for lay in get_model("alexnet").layers if lay.kind in ("conv", "fc")]
    eq4 = 2 * sum(ALPHA * lg(24) + BETA * 23 / 24 * w.params for w in ws)
    assert run(batch=100, procs=24)["iteration_s"] == pytest.approx(eq4, rel=REL)


# ------------------------------------------------------------------ integrated 3 x 8, conv batch, fc model
FC = (("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000))  # name, d_in, rows (= d_out)
CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def test_integrated_3x8_shares_and_compute_calls():
    # fc6 4096 rows over Pr = 3: 1366/1365/1365, fc8 1000 rows: 334/333/333; B = 100 over Pc = 8: 13 or 12;
    # conv batch over all 24: 5 or 4
    calls = {}

    def record(lay, phase, local_batch, shard=1.0):
        calls[(lay.name, phase)] = (local_batch, shard)
        return 0.0

    plan_run(get_model("alexnet"), "batch", "model", 100, Grid(3, 8), W, {}, record)
    assert calls[("fc6", "fwd")] == (13, 1366 / 4096) == calls[("fc6", "bwd")]
    assert calls[("fc7", "fwd")] == (13, 1366 / 4096)
    assert calls[("fc8", "bwd")] == (13, 334 / 1000)
    assert calls[("relu6", "fwd")] == (13, 1.0)
    assert calls[("conv1", "fwd")] == (5, 1.0) == calls[("pool5", "bwd")]
    assert all(float(b).is_integer() for b, _ in calls.values())


def test_integrated_3x8_paper_costs_with_real_b_over_pc():
    # --collectives paper, analytic: Eq. 8 for the fc layers with B/Pc = 12.5 and |W|/Pr real, Eq. 4 over
    # P = 24 for the batch-parallel convolutions; Eq. 6 redistribution in front of fc6 (batch -> model,
    # forward only: the gradient's way back is a local selection): one all-gather of d_5 x B/Pc = 9216 x 12.5
    # words over Pr = 3
    model = get_model("alexnet")
    bpc, pr, pc = 100 / 8, 3, 8
    want = sum(2 * (ALPHA * lg(24) + BETA * 23 / 24 * layer(model, c).params) for c in CONVS)
    for name, d_in, rows in FC:
        params = layer(model, name).params
        want += paper_ag(pr, bpc * rows) + 2 * paper_ag(pr, bpc * d_in) + 2 * paper_ag(pc, params / pr)
    redistribute = paper_ag(pr, bpc * 9216)
    got = run(batch=100, procs=24, strategy="integrated", grid="3x8", conv="batch", fc="model")
    assert got["redistribute_s"] == pytest.approx(redistribute, rel=REL)
    assert got["iteration_s"] - got["redistribute_s"] == pytest.approx(want, rel=REL)


def test_integrated_3x8_ring_pads_to_the_largest_block():
    # ring: every column carries ⌈100/8⌉ = 13 samples; the fc all-gather moves 3 blocks of ⌈rows/3⌉ rows;
    # the ΔW shard all-reduced over Pc = 8 is ⌈rows/3⌉ rows of d_in + 1 params; ΔX is d_in x 13
    model = get_model("alexnet")
    b, pr, pc = 13, 3, 8
    want = sum(ring_ar(24, layer(model, c).params * W) for c in CONVS)
    for name, d_in, rows in FC:
        k = math.ceil(rows / pr)
        assert layer(model, name).params == rows * (d_in + 1)
        want += ring_ag(pr, pr * k * b * W) + ring_ar(pr, d_in * b * W) + ring_ar(pc, k * (d_in + 1) * W)
    redistribute = ring_ag(pr, 9216 * b * W)  # forward only, as above
    got = run(batch=100, procs=24, strategy="integrated", grid="3x8", conv="batch", fc="model", collectives="ring")
    assert got["redistribute_s"] == pytest.approx(redistribute, rel=REL)
    assert got["iteration_s"] == pytest.approx(want + redistribute, rel=REL)


def test_integrated_3x8_full_engine_agrees_with_the_fast_path():
    cfg = {"model": "alexnet", "batch": 100, "procs": 24, "strategy": "integrated", "grid": "3x8", "conv": "batch",
           "fc": "model", "collectives": "ring", "compute": "paper-knl"}
    fast = simulate(cfg, engine="fast").summary["iteration_s"].iloc[0]
    full = simulate(cfg, engine="full").summary["iteration_s"].iloc[0]
    assert full == pytest.approx(fast, rel=1e-12)


# ------------------------------------------------------------------ domain: 55-row conv1 output over 2
def test_domain_55_rows_over_2_gives_28():
    plans = {p.layer.name: p for p in plan_layers(get_model("alexnet"), "domain", "batch", 64, 2, 1)}
    # output heights 55 -> 28, 27 -> 14, 13 -> 7, 6 -> 3 rows on the critical rank
    assert plans["conv1"].shard == 28 / 55
    assert plans["pool1"].shard == plans["conv2"].shard == 14 / 27
    assert plans["conv3"].shard == plans["conv5"].shard == 7 / 13
    assert plans["pool5"].shard == 3 / 6
    assert plans["conv1"].local_batch == 64


def test_domain_55_rows_compute_is_28_of_55():
    # paper-knl splits a layer's time by FLOPs and scales it linearly by the shard (workloads/paper_knl.py):
    # conv1's forward on 28 of 55 rows takes 28/55 of the same 64 samples on one process
    def conv1_fwd(**kw):
        res = simulate({"model": "alexnet", "batch": 64, "compute": "paper-knl", **kw})
        return float(res.layers.set_index("layer").loc["conv1", "fwd_compute_s"])

    one = conv1_fwd(procs=1, strategy="batch")
    two = conv1_fwd(procs=2, strategy="domain")
    assert two == pytest.approx(one * 28 / 55, rel=REL)


def test_domain_halo_with_uneven_batch():
    # integrated 2 x 8, conv domain, B = 100: conv1's forward halo is ⌊11/2⌋ = 5 input rows of 227 x 3 per
    # sample; paper: x B/Pc = 12.5, direct (a real algorithm): x ⌈100/8⌉ = 13
    model = get_model("alexnet")
    for algorithms, samples in (({}, 12.5), ({"halo": "direct"}, 13)):
        steps = plan_run(model, "domain", "model", 100, Grid(2, 8), W, algorithms, lambda *a: 0.0).steps
        halo = next(s for s in steps if s.op == "halo" and s.layer == "conv1" and s.phase == "fwd")
        assert halo.nbytes == samples * 227 * 3 * 5 * W


# ------------------------------------------------------------------ memory of the critical rank
def test_memory_of_the_critical_rank():
    # 3 x 8, conv batch, fc model, B = 100: the fc layers hold ⌈rows/3⌉ rows of d_in + 1 params; activations:
    # convolutions 5 samples, fc layers 13 samples (replicated along the model group)
    model = get_model("alexnet")
    parts = memory_breakdown(plan_layers(model, "batch", "model", 100, 3, 8), W, 3)
    weights = sum(layer(model, c).params for c in CONVS)
    weights += sum(math.ceil(rows / 3) * (d_in + 1) for _, d_in, rows in FC)
    assert parts["weights"] == pytest.approx(weights * W, rel=REL)
    acts = 0
    for lay in model.layers:
        samples = 13 if lay.name in ("fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8") else 5
        acts += lay.out_elems_per_sample * samples
    acts += 3 * 227 * 227 * 5  # the input
    assert parts["activations"] == pytest.approx(acts * W, rel=REL)


# ------------------------------------------------------------------ even splits unchanged
@pytest.mark.parametrize("B, pr, pc", [(256, 4, 4), (96, 3, 8), (64, 1, 16), (120, 5, 3)])
def test_even_splits_are_the_plain_quotients(B, pr, pc):
    # when everything divides, the shares are exactly B/P, B/Pc, 1/Pr (bit for bit) and the sizes d x B/Pc
    toy_rows = 60  # divisible by every Pr above
    from workloads.layer import Layer, Model

    c1 = Layer("c1", "conv", (3, 60, 60), (toy_rows, 60, 60), (3, 3), (1, 1), (1, 1), 1, toy_rows * 28)
    f1 = Layer("f1", "fc", (toy_rows, 60, 60), (toy_rows,), params=toy_rows * (toy_rows * 3600 + 1))
    model = Model("even", (3, 60, 60), (c1, f1), 1000)
    for conv, fc in (("batch", "model"), ("model", "model"), ("domain", "batch")):
        for plan in plan_layers(model, conv, fc, B, pr, pc):
            if plan.mode == "batch":
                assert (plan.local_batch, plan.shard) == (B / (pr * pc), 1.0)
            else:
                assert plan.local_batch == B / pc and plan.shard == 1.0 / pr
    ctx = Context(B, pr, pc, W, {"allgather": "ring", "allreduce": "ring"})
    assert ctx.column_words(12345, "allgather") == 12345 * B / pc
    assert ctx.padded_rows(toy_rows, "allgather") == toy_rows


# ------------------------------------------------------------------ uneven: reject
def test_reject_mode_refuses_an_fc_grid_not_dividing_the_rows(capsys):
    args = ["run", "--model", "alexnet", "--batch", "96", "--procs", "24", "--strategy", "integrated",
            "--grid", "3x8", "--conv", "batch", "--fc", "model"]
    assert main([*args, "--set", "uneven=reject"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("error: grid: Pr=3 does not divide the 4096 output rows of W of layer 'fc6'")
    assert main([*args, "--format", "json"]) == 0  # allowed by default


def test_reject_mode_refuses_uneven_batch_and_unknown_values():
    from sim.errors import UserError

    with pytest.raises(UserError, match="not a multiple of procs=24"):
        simulate({"batch": 100, "procs": 24, "uneven": "reject"})
    with pytest.raises(UserError) as info:
        simulate({"batch": 100, "procs": 24, "uneven": "sometimes"})
    assert info.value.field == "uneven"
