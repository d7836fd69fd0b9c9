"""The analytic model equals Gholami et al. (SPAA 2018) Eqs. 3, 4, 7, 8 and 9, written out here from the layer shapes.

Machine of the paper: α = 2 µs, 1/β = 6 GiB/s per 4-byte word (β = 4 / 6 GiB/s seconds per word), fp32.
Every equation is evaluated independently from the zoo's layer shapes (tests/paper_formulas.py); ``simulate``
runs the strategy with ``network=analytic, compute=none``. Two forms of the ΔX term of model-parallel layers:

* *as printed* (Eqs. 3, 8): ``3 Σ_i (α⌈log Pr⌉ + β B/Pc (Pr−1)/Pr d_i)`` over every weight layer; dnnsim
  reproduces it with ``paper_dx=True`` (ΔX sized d_i, first layer included) — the documented adjustment;
* *true size* (dnnsim's default): the forward all-gather of d_i plus a ΔX all-reduce of d_{i−1} for
  every layer but the first: ``Σ_i T_ag(d_i) + Σ_{i>1} 2 T_ag(d_{i−1})``.

Redistribution (Eq. 6) is outside Eqs. 3–9; where a layout change charges it, the tests compare
``iteration_s - redistribute_s`` with the equation and check ``redistribute_s`` against Eq. 6 separately.
"""

from __future__ import annotations

import pytest
from paper_formulas import TOPO, dw_all, eq3_printed, eq4, eq8_printed, eq8_true, halo_terms, t_ag, weights

from sim.api import simulate
from workloads.zoo import get_model

ALPHA = 2e-6
BW = 6 * 2**30
REL = 1e-9


def run(model, **kw):
    cfg = {"model": model, "topology": TOPO, "network": "analytic", "compute": "none", "dtype_bytes": 4}
    paper_dx = kw.pop("paper_dx", False)
    cfg.update(kw)
    return simulate(cfg, paper_dx=paper_dx).summary.iloc[0]


@pytest.mark.parametrize("name, B, P", [("alexnet", 2048, 512), ("alexnet", 512, 128), ("vgg16", 256, 64)])
def test_eq4_pure_batch(name, B, P):
    s = run(name, batch=B, procs=P, strategy="batch")
    assert s["iteration_s"] == pytest.approx(eq4(get_model(name), P), rel=REL)
    assert s["model_comm_s"] == 0 and s["domain_comm_s"] == 0 and s["redistribute_s"] == 0


def test_paper_scenario_batch_comm_per_epoch_is_44_s():
    """AlexNet, B=2048, P=512 (grid 1x512), N=1.2M: 2 Σ_i (α⌈log2 512⌉ + (511/512)·4·|W_i|/(6 GiB/s))
    per iteration, times N/B = 585.9 iterations: ≈ 44.4 s of batch communication per epoch."""
    model = get_model("alexnet")
    assert sum(w.params for w in weights(model)) == 60_965_224
    per_iter = 2 * sum(ALPHA * 9 + (511 / 512) * 4 * w.params / BW for w in weights(model))
    per_epoch = per_iter * 1.2e6 / 2048
    assert per_epoch == pytest.approx(44.4, abs=0.05)
    s = run("alexnet", batch=2048, procs=512, strategy="batch", dataset_size=1_200_000)
    assert s["epoch_s"] == pytest.approx(per_epoch, rel=REL)
    assert s["batch_comm_s"] * 1.2e6 / 2048 == pytest.approx(per_epoch, rel=REL)


@pytest.mark.parametrize("name, B, P", [("alexnet", 2048, 64), ("alexnet", 256, 16), ("vgg16", 128, 64)])
def test_eq3_pure_model(name, B, P):
    model = get_model(name)
    s = run(name, batch=B, procs=P, strategy="model", paper_dx=True)
    assert s["iteration_s"] == pytest.approx(eq3_printed(weights(model), B, P), rel=REL)
    s = run(name, batch=B, procs=P, strategy="model")
    assert s["iteration_s"] == pytest.approx(eq8_true(weights(model), B, P, 1), rel=REL)
    assert s["batch_comm_s"] == 0


@pytest.mark.parametrize("name, B, grid", [("alexnet", 2048, (16, 32)), ("alexnet", 2048, (4, 128)),
                                          ("alexnet", 2048, (64, 8)), ("alexnet", 512, (2, 64)),
                                          ("vgg16", 256, (8, 8)), ("vgg16", 512, (4, 32))])
def test_eq8_integrated(name, B, grid):
    pr, pc = grid
    ws = weights(get_model(name))
    s = run(name, batch=B, procs=pr * pc, strategy="integrated", grid=f"{pr}x{pc}", paper_dx=True)
    assert s["iteration_s"] == pytest.approx(eq8_printed(ws, B, pr, pc), rel=REL)
    s = run(name, batch=B, procs=pr * pc, strategy="integrated", grid=f"{pr}x{pc}")
    assert s["iteration_s"] == pytest.approx(eq8_true(ws, B, pr, pc), rel=REL)
    batch_part = sum(2 * t_ag(pc, w.params / pr) for w in ws)
    assert s["batch_comm_s"] == pytest.approx(batch_part, rel=REL)
    assert s["model_comm_s"] == pytest.approx(eq8_true(ws, B, pr, pc) - batch_part, rel=REL)


@pytest.mark.parametrize("name, B, P", [("alexnet", 512, 32), ("alexnet", 2048, 64)])
def test_eq8_limits_are_eq3_and_eq4(name, B, P):
    ws = weights(get_model(name))
    s1 = run(name, batch=B, procs=P, strategy="integrated", grid=f"1x{P}")
    assert s1["iteration_s"] == pytest.approx(eq4(get_model(name), P), rel=REL)
    assert s1["model_comm_s"] == 0
    s1 = run(name, batch=B, procs=P, strategy="integrated", grid=f"1x{P}", paper_dx=True)
    assert s1["iteration_s"] == pytest.approx(eq4(get_model(name), P), rel=REL)  # no ΔX term on 1xP
    sP = run(name, batch=B, procs=P, strategy="integrated", grid=f"{P}x1", paper_dx=True)
    assert sP["iteration_s"] == pytest.approx(eq3_printed(ws, B, P), rel=REL)
    assert sP["batch_comm_s"] == 0


@pytest.mark.parametrize("name, B, P", [("alexnet", 256, 8), ("alexnet", 512, 4), ("vgg16", 64, 4)])
def test_eq7_pure_domain(name, B, P):
    """Eq. 7 with fully connected layers batch-parallel (domain's default fc): halos over the conv layers,
    ΔW of every layer over all P; plus the domain -> batch redistribution of fc6's input (Eq. 6, forward and
    backward), reported apart."""
    model = get_model(name)
    ws = weights(model)
    convs = [w for w in ws if w.kind == "conv"]
    fc_first = next(w for w in ws if w.kind == "fc")
    s = run(name, batch=B, procs=P, strategy="domain")
    eq7 = halo_terms(convs, B, 1) + dw_all(ws, P)
    assert s["iteration_s"] - s["redistribute_s"] == pytest.approx(eq7, rel=REL)
    assert s["redistribute_s"] == pytest.approx(2 * t_ag(P, B * fc_first.in_elems_per_sample), rel=REL)
    assert s["domain_comm_s"] == pytest.approx(halo_terms(convs, B, 1), rel=REL)


@pytest.mark.parametrize("name, B, grid", [("alexnet", 512, (8, 64)), ("alexnet", 2048, (4, 128)),
                                          ("alexnet", 512, (8, 512)), ("vgg16", 256, (4, 16))])
def test_eq9_domain_plus_model(name, B, grid):
    """Eq. 9: conv layers domain-parallel (halo in Pr groups on B/Pc samples, ΔW over all P), fc layers as
    Eq. 8; plus one Eq. 6 all-gather of fc6's input (domain -> model, forward only)."""
    pr, pc = grid
    P = pr * pc
    ws = weights(get_model(name))
    convs = [w for w in ws if w.kind == "conv"]
    fcs = [w for w in ws if w.kind == "fc"]
    for paper_dx, fc_part in ((True, eq8_printed(fcs, B, pr, pc)),
                              (False, eq8_true(fcs, B, pr, pc, first_is_first=False))):
        s = run(name, batch=B, procs=P, strategy="integrated", grid=f"{pr}x{pc}", conv="domain", fc="model",
                paper_dx=paper_dx)
        eq9 = halo_terms(convs, B, pc) + dw_all(convs, P) + fc_part
        assert s["iteration_s"] - s["redistribute_s"] == pytest.approx(eq9, rel=REL)
        assert s["redistribute_s"] == pytest.approx(t_ag(pr, B / pc * fcs[0].in_elems_per_sample), rel=REL)


@pytest.mark.parametrize("B, grid", [(2048, (16, 32)), (2048, (4, 128))])
def test_conv_batch_fc_grid_variant(B, grid):
    """The paper's variant: conv layers pure batch over all P, fc layers on the Pr x Pc grid (Eq. 8 terms),
    plus the batch -> model redistribution of fc6's input (Eq. 6)."""
    pr, pc = grid
    P = pr * pc
    ws = weights(get_model("alexnet"))
    convs = [w for w in ws if w.kind == "conv"]
    fcs = [w for w in ws if w.kind == "fc"]
    s = run("alexnet", batch=B, procs=P, strategy="integrated", grid=f"{pr}x{pc}", conv="batch", fc="model")
    expect = dw_all(convs, P) + eq8_true(fcs, B, pr, pc, first_is_first=False)
    assert s["iteration_s"] - s["redistribute_s"] == pytest.approx(expect, rel=REL)
    assert s["redistribute_s"] == pytest.approx(t_ag(pr, B / pc * fcs[0].in_elems_per_sample), rel=REL)
