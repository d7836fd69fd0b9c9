"""Model-parallel layers (the paper's Eqs. 3 and 8): W_i split by rows over the Pr ranks of a model group.

Per iteration, for a weight layer i on a Pr x Pc grid (words, times ``dtype_bytes`` for bytes):

* forward: all-gather of Y_i, ``d_i x B/Pc``, over the model group (category ``model``);
* backward: all-reduce of ΔX_i, ``d_{i-1} x B/Pc``, over the model group (category ``model``), except for
  the first weight layer (no ΔX needed) — or ``d_i x B/Pc`` for every layer with ``paper_dx``, as printed;
* backward: all-reduce of ΔW_i / Pr, ``|W_i| / Pr``, over the batch group of Pc ranks (category ``batch``).

With uneven splits (Pc not dividing B, Pr not dividing the rows) and a real algorithm, the sizes are
those of the critical column and padded row blocks (:mod:`sim.strategies.common`); under ``paper`` the
formulas above with B/Pc and 1/Pr real.

Other layers in a model region run on the replicated activations: no communication (parameters of
their own, such as batch-norm's, are all-reduced over the batch group, whole).
"""

from __future__ import annotations

from sim.strategies.common import Context, Gradient, compute_step
from sim.strategies.layout import LayerPlan, critical_share, is_split
from sim.strategies.steps import Step
from workloads.layer import Layer


def gathered_per_sample(layer: Layer, ctx: Context) -> int:
    """Words per sample of the forward all-gather: ``d_i``, or Pr padded blocks of ⌈rows/Pr⌉ rows when
    Pr does not divide the rows and a real algorithm runs (:meth:`Context.padded_rows`)."""
    rows = layer.out_shape[0]
    padded = ctx.padded_rows(rows, "allgather")
    if padded == rows:
        return layer.out_elems_per_sample
    return layer.out_elems_per_sample // rows * int(padded)


def shard_params(layer: Layer, ctx: Context) -> float:
    """Words of ΔW_i on one rank of a model group: ``|W_i| / Pr``, or its ⌈rows/Pr⌉ rows when Pr does
    not divide the rows and a real algorithm runs (:meth:`Context.padded_rows`)."""
    rows = layer.out_shape[0]
    padded = ctx.padded_rows(rows, "allreduce")
    if padded == rows:
        return layer.params / ctx.pr
    return layer.params * critical_share(rows, ctx.pr) / rows


def forward(plan: LayerPlan, ctx: Context, seconds: float) -> list[Step]:
    layer = plan.layer
    steps = [compute_step(layer.name, "fwd", seconds)]
    if is_split(layer):
        words = ctx.column_words(gathered_per_sample(layer, ctx), "allgather")
        steps += ctx.collective("allgather", "model", words, "model", layer.name, "fwd")
    return steps


def backward(plan: LayerPlan, ctx: Context, seconds: float) -> tuple[list[Step], int, Gradient | None]:
    layer = plan.layer
    steps = [compute_step(layer.name, "bwd", seconds)]
    if not is_split(layer):
        grad = Gradient(layer.name, "batch", layer.params * ctx.dtype_bytes) if layer.params and ctx.pc > 1 else None
        return steps, 0, grad
    if ctx.paper_dx:
        steps += ctx.collective("allreduce", "model", ctx.column_words(layer.out_elems_per_sample, "allreduce"),
                                "model", layer.name, "bwd")
    elif not plan.first_weight:
        steps += ctx.collective("allreduce", "model", ctx.column_words(layer.in_elems_per_sample, "allreduce"),
                                "model", layer.name, "bwd")
    grad = Gradient(layer.name, "batch", shard_params(layer, ctx) * ctx.dtype_bytes) if ctx.pc > 1 else None
    return steps, 0, grad
