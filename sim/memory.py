"""Memory per rank of one training configuration, in bytes (the replication the paper discusses but does
not compute; docs/paper-model.md).

For momentum SGD a rank holds, at ``dtype_bytes`` per word:

* weights, gradients and momentum (3 copies) of its share of each weight layer: ``|W_i| / Pr`` for
  model-parallel layers, all of ``|W_i|`` for batch- and domain-parallel layers (W replicated);
* stored activations for the backward pass: the model input and every layer's output, for the rank's
  local batch and share: batch mode ``B/P x d_i``; model mode ``B/Pc x d_i`` (the all-gathered Y is
  replicated over the model group, it is the next layer's X); domain mode ``B/Pc x d_i / Pr``.

With a separate conv grid, Pr is the conv grid's for the layers on it (``conv_pr``).
With uneven splits these are the critical rank's (:mod:`sim.strategies.layout`): ⌈B/P⌉ or ⌈B/Pc⌉
samples (``local_batch``), ⌈rows/Pr⌉ of a model layer's rows, ⌈H/Pr⌉ of a domain layer's image rows
(``shard``); the padding frameworks add to communication buffers is not counted.

With a precision (:mod:`workloads.precision`) the parameters are held at its bytes: working weights,
gradients, an fp32 master copy (``amp``, ``fp8``: reported as ``master``) and the optimizer state
(``momentum``); activations at its word (``dtype_bytes``). For ``fp32`` this is the three copies at 4
bytes, bit for bit as without a precision.

Workspace, communication buffers and framework overheads are not counted.
"""

from __future__ import annotations

from typing import Protocol

from sim.strategies.layout import LayerPlan, critical_share, is_split


class StateBytes(Protocol):
    """Bytes per parameter held (a :class:`workloads.precision.Precision`)."""

    weight_bytes: int
    grad_bytes: int
    master_bytes: int
    optimizer_bytes: int

#: weights + gradients + momentum
STATE_COPIES = 3


def _activation_share(plan: LayerPlan, pr: int) -> float:
    return plan.shard if plan.mode == "domain" else 1.0


def memory_breakdown(plans: list[LayerPlan], dtype_bytes: int, pr: int, conv_pr: int | None = None,
                     precision: StateBytes | None = None) -> dict[str, float]:
    """Bytes per rank: ``weights``, ``gradients``, ``momentum``, ``activations`` and ``total`` (and ``master``
    with a ``precision``; without one every parameter copy is ``dtype_bytes``)."""
    def pr_of(plan: LayerPlan) -> int:
        return conv_pr if plan.on_conv_grid and conv_pr is not None else pr

    weights = 0.0
    for plan in plans:
        if plan.layer.has_weights:
            split = plan.mode == "model" and is_split(plan.layer)
            if split:
                rows = plan.layer.out_shape[0]
                weights += plan.layer.params * critical_share(rows, pr_of(plan)) / rows
            else:
                weights += plan.layer.params
    acts = 0.0
    if plans:
        first = plans[0]
        in_shape = first.layer.in_shape
        p0 = pr_of(first)
        share = (critical_share(in_shape[1], p0) / in_shape[1] if first.mode == "domain" and len(in_shape) == 3
                 else _activation_share(first, p0))
        acts += first.layer.in_elems_per_sample * first.local_batch * share
    for plan in plans:
        acts += plan.layer.out_elems_per_sample * plan.local_batch * _activation_share(plan, pr_of(plan))
    if precision is None:
        out = {"weights": weights * dtype_bytes, "gradients": weights * dtype_bytes,
               "momentum": weights * dtype_bytes, "activations": acts * dtype_bytes}
        out["total"] = out["weights"] * STATE_COPIES + out["activations"]
        return out
    out = {"weights": weights * precision.weight_bytes, "gradients": weights * precision.grad_bytes,
           "momentum": weights * precision.optimizer_bytes, "master": weights * precision.master_bytes,
           "activations": acts * dtype_bytes}
    out["total"] = out["weights"] + out["gradients"] + out["momentum"] + out["master"] + out["activations"]
    return out


def memory_per_rank_bytes(plans: list[LayerPlan], dtype_bytes: int, pr: int, conv_pr: int | None = None,
                          precision: StateBytes | None = None) -> float:
    """Total bytes per rank (see the module docstring)."""
    return memory_breakdown(plans, dtype_bytes, pr, conv_pr, precision)["total"]
