"""Gholami et al. (SPAA 2018) cost equations written out from layer shapes, for the tests to compare with.

Machine of the paper: α = 2 µs, 1/β = 6 GiB/s per 4-byte word (β = 4 / 6 GiB/s seconds per word), fp32.
Nothing here calls dnnsim's strategies or networks: only the zoo's layer shapes (whose sizes
tests/test_workloads_zoo.py pins to published totals) go in. Two forms of the ΔX term of model-parallel
layers:

* *as printed* (Eqs. 3, 8): ``3 Σ_i (α⌈log Pr⌉ + β B/Pc (Pr−1)/Pr d_i)`` over every weight layer;
* *true size* (dnnsim's default): the forward all-gather of d_i plus a ΔX all-reduce of d_{i−1} for
  every layer but the first: ``Σ_i T_ag(d_i) + Σ_{i>1} 2 T_ag(d_{i−1})``.
"""

from __future__ import annotations

import math

ALPHA = 2e-6
BW = 6 * 2**30
BETA = 4 / BW  # seconds per 4-byte word
TOPO = "ideal:latency=2us,bandwidth=6GiB/s"


def lg(p: int) -> int:
    return math.ceil(math.log2(p)) if p > 1 else 0


def weights(model):
    return [layer for layer in model.layers if layer.kind in ("conv", "fc")]


def t_ag(p: int, words: float) -> float:
    """All-gather of ``words`` (the gathered result) over p ranks: α⌈log p⌉ + β (p−1)/p n."""
    return ALPHA * lg(p) + BETA * (p - 1) / p * words if p > 1 else 0.0


def eq4(model, P):
    """Eq. 4: 2 Σ_i (α⌈log P⌉ + β (P−1)/P |W_i|)."""
    return 2 * sum(ALPHA * lg(P) + BETA * (P - 1) / P * w.params for w in weights(model))


def eq3_printed(ws, B, P):
    """Eq. 3 as printed: 3 Σ_i (α⌈log P⌉ + β B (P−1)/P d_i)."""
    return 3 * sum(ALPHA * lg(P) + BETA * B * (P - 1) / P * w.out_elems_per_sample for w in ws)


def eq8_printed(ws, B, pr, pc):
    """Eq. 8 as printed: 3 Σ (α⌈log Pr⌉ + β B/Pc (Pr−1)/Pr d_i) + 2 Σ (α⌈log Pc⌉ + β (Pc−1)/Pc |W_i|/Pr)."""
    model_part = 3 * sum(ALPHA * lg(pr) + BETA * B / pc * (pr - 1) / pr * w.out_elems_per_sample for w in ws)
    batch_part = 2 * sum(ALPHA * lg(pc) + BETA * (pc - 1) / pc * w.params / pr for w in ws)
    return model_part + batch_part


def eq8_true(ws, B, pr, pc, first_is_first=True):
    """Eq. 8 with true ΔX sizes: all-gather of d_i, all-reduce of d_{i−1} except for the network's first
    layer, and the ΔW all-reduce of Eq. 8."""
    total = 0.0
    for k, w in enumerate(ws):
        total += t_ag(pr, B / pc * w.out_elems_per_sample)
        if not (k == 0 and first_is_first):
            total += 2 * t_ag(pr, B / pc * w.in_elems_per_sample)
        total += 2 * t_ag(pc, w.params / pr)
    return total


def halo_terms(convs, B, pc):
    """Σ (α + β B/Pc X_W X_C ⌊k_h/2⌋) + Σ (α + β B/Pc Y_W Y_C ⌊k_w/2⌋), no term for ⌊k/2⌋ = 0."""
    total = 0.0
    for c in convs:
        kh, kw = c.kernel
        if kh // 2:
            total += ALPHA + BETA * B / pc * c.in_shape[2] * c.in_shape[0] * (kh // 2)
        if kw // 2:
            total += ALPHA + BETA * B / pc * c.out_shape[2] * c.out_shape[0] * (kw // 2)
    return total


def dw_all(ws, P):
    """2 Σ (α⌈log P⌉ + β (P−1)/P |W_i|): ΔW all-reduced over all P."""
    return sum(2 * t_ag(P, w.params) for w in ws)


def fc_model_cost(model, B, pr, pc, conv):
    """Iteration time of a network whose fully connected layers are model-parallel on a Pr x Pc grid and
    whose convolutions are ``conv`` ∈ {model, domain, batch} (compute none):

    * conv model: Eq. 8 over every weight layer (true ΔX sizes);
    * conv domain: Eq. 9 — halos in Pr groups on B/Pc samples, conv ΔW over all P, fc layers as Eq. 8
      (their first one is not the network's first) — plus one Eq. 6 all-gather of fc6's input over Pr;
    * conv batch: conv ΔW over all P, fc layers as Eq. 8, plus the same Eq. 6 all-gather.
    """
    ws = weights(model)
    if conv == "model":
        return eq8_true(ws, B, pr, pc)
    convs = [w for w in ws if w.kind == "conv"]
    fcs = [w for w in ws if w.kind == "fc"]
    P = pr * pc
    total = dw_all(convs, P) + eq8_true(fcs, B, pr, pc, first_is_first=False)
    total += t_ag(pr, B / pc * fcs[0].in_elems_per_sample)
    if conv == "domain":
        total += halo_terms(convs, B, pc)
    return total
