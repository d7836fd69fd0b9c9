"""Batch-parallel layers (the paper's Eq. 4): B/P samples per rank, all of W everywhere.

Forward: local compute, no communication. Backward: local compute, then ΔW_i (``|W_i|`` words, biases
included) all-reduced over all P ranks (category ``batch``).
"""

from __future__ import annotations

from sim.strategies.common import Context, Gradient, compute_step
from sim.strategies.layout import LayerPlan
from sim.strategies.steps import Step


def forward(plan: LayerPlan, ctx: Context, seconds: float) -> list[Step]:
    return [compute_step(plan.layer.name, "fwd", seconds)]


def backward(plan: LayerPlan, ctx: Context, seconds: float) -> tuple[list[Step], int, Gradient | None]:
    """Steps, index of the backward compute among them, and the ΔW to all-reduce."""
    layer = plan.layer
    grad = Gradient(layer.name, "all", layer.params * ctx.dtype_bytes) if layer.has_weights and ctx.procs > 1 else None
    return [compute_step(layer.name, "bwd", seconds)], 0, grad
