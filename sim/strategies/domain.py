"""Domain-parallel convolutions (the paper's Eqs. 7 and 9): each image split along its height over the Pr
ranks of a model group, B/Pc samples per grid column, all of W on every rank.

Per iteration, for a convolution with input X_C x X_H x X_W, output Y_C x Y_H x Y_W and kernel k_h x k_w
(words, times ``dtype_bytes`` for bytes; halo sizes are what each rank sends to each neighbour):

* forward: halo exchange of ⌊k_h/2⌋ input rows, ``B/Pc · X_W · X_C · ⌊k_h/2⌋``, with both neighbours in
  the model group (category ``domain``), before the compute;
* backward: halo exchange of ⌊k_w/2⌋ output-gradient rows, ``B/Pc · Y_W · Y_C · ⌊k_w/2⌋`` (Eq. 9 as
  printed; the same as ⌊k_h/2⌋ for the square kernels of AlexNet and VGG), before the compute; every
  domain layer has it, the first one included, as Eqs. 7 and 9 sum it over all domain layers;
* backward: ΔW_i, ``|W_i|`` words, all-reduced over all P ranks (category ``batch``).

With B not a multiple of Pc, B/Pc is real under ``paper`` and the critical column's ⌈B/Pc⌉ with a real
halo algorithm (:mod:`sim.strategies.common`); the halo is ⌊k/2⌋ rows however unevenly H is split.
1 x 1 kernels have no halo. Layers without weights in a domain region (pooling, activations) work on their
slab locally: no communication (the halo a pooling window may need is not charged, as in the paper).
"""

from __future__ import annotations

from sim.strategies.common import Context, Gradient, compute_step
from sim.strategies.layout import LayerPlan
from sim.strategies.steps import Step


def halo_words(plan: LayerPlan, ctx: Context, phase: str) -> float:
    """Words sent to each neighbour by the forward (``fwd``) or backward (``bwd``) halo of a conv layer."""
    layer = plan.layer
    kh, kw = layer.kernel
    if phase == "fwd":
        channels, _, width = layer.in_shape
        rows = kh // 2
    else:
        channels, _, width = layer.out_shape
        rows = kw // 2
    return ctx.column_batch("halo") * width * channels * rows


def forward(plan: LayerPlan, ctx: Context, seconds: float) -> list[Step]:
    layer = plan.layer
    steps: list[Step] = []
    if layer.kind == "conv":
        steps += ctx.collective("halo", "model", halo_words(plan, ctx, "fwd"), "domain", layer.name, "fwd")
    steps.append(compute_step(layer.name, "fwd", seconds))
    return steps


def backward(plan: LayerPlan, ctx: Context, seconds: float) -> tuple[list[Step], int, Gradient | None]:
    layer = plan.layer
    steps: list[Step] = []
    if layer.kind == "conv":
        steps += ctx.collective("halo", "model", halo_words(plan, ctx, "bwd"), "domain", layer.name, "bwd")
    compute_index = len(steps)
    steps.append(compute_step(layer.name, "bwd", seconds))
    grad = Gradient(layer.name, "all", layer.params * ctx.dtype_bytes) if layer.has_weights and ctx.procs > 1 else None
    return steps, compute_index, grad
