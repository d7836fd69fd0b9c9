"""Turn (model, config, grid) into the steps every rank runs, and into a :class:`~sim.program.Program`.

Order of one SGD iteration: the forward pass layer by layer (an Eq. 6 redistribution in front of a layer
where the layout changes, see :mod:`sim.strategies.layout`), then the backward pass in reverse layer
order (the redistribution of the gradient after the layer's backward). Compute seconds come from the
compute model with the layer's local batch and shard.

ΔW all-reduces
    Without overlap, each weight layer's ΔW all-reduce runs on the compute stream right after its
    backward compute and ΔX all-reduce: everything is blocking, as in the paper's sums. With ``overlap``
    they run on the ``comm`` stream, bucketed like PyTorch DDP: gradients are added to a bucket in
    backward (reverse layer) order; a bucket is closed when it holds at least 25 MiB
    (``bucket_cap_mb=25``; DDP's smaller first bucket is not modelled) or when the next gradient is
    all-reduced over a different group (batch-mode layers over all P, model-mode layers over their grid
    row); a bucket's all-reduce waits for the backward compute of the last layer added to it. Forward
    all-gathers, ΔX all-reduces, halos and redistributions stay blocking on the compute stream.
    Bucketing is a choice of its own (``bucket_bytes``): given without overlap, the same buckets are
    all-reduced blocking on the compute stream, where the bucket closes (frameworks bucket even when
    nothing overlaps); not given, overlap buckets by 25 MiB and no overlap all-reduces every layer alone.

Host overhead
    A fixed per-iteration host cost (optimizer step, data loading) is one compute step, layer and phase
    ``host``, at the end of the iteration after every ΔW all-reduce (the optimizer needs them); it is
    added only when it is > 0, so the default program is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.grid import Grid
from sim.program import Program
from sim.strategies import batch as batch_mode
from sim.strategies import domain as domain_mode
from sim.strategies import model as model_mode
from sim.strategies.common import Context, Gradient
from sim.strategies.layout import LayerPlan, plan_layers
from sim.strategies.steps import Step, materialize
from workloads.layer import Model

#: PyTorch DistributedDataParallel's default bucket_cap_mb, in bytes
BUCKET_BYTES = 25 * 2**20

_MODES = {"batch": batch_mode, "model": model_mode, "domain": domain_mode}


@dataclass
class RunPlan:
    """The result of planning one run: layer plans, rank-independent steps, the grid."""

    plans: list[LayerPlan]
    steps: list[Step]
    grid: Grid
    meta: dict = field(default_factory=dict)

    def program(self) -> Program:
        """The full per-rank :class:`Program` (every rank, real groups)."""
        return materialize(self.steps, self.grid, self.meta)


class _Buckets:
    """DDP-style gradient buckets on the comm stream."""

    def __init__(self, ctx: Context, cap_bytes: float) -> None:
        self.ctx, self.cap = ctx, cap_bytes
        self.group: str | None = None
        self.nbytes = 0.0
        self.layers: list[str] = []
        self.dep = -1

    def add(self, grad: Gradient, compute_index: int, steps: list[Step], ctx: Context | None = None,
            blocking: bool = False) -> None:
        """Add ``grad``, whose layer was built with ``ctx`` (default: the bucket's), closing the open
        bucket first if that gradient is all-reduced over another group."""
        ctx = ctx or self.ctx
        if self.group is not None and (grad.group != self.group or ctx.prefix != self.ctx.prefix):
            self.flush(steps, blocking)
        self.ctx = ctx
        self.group = grad.group
        self.nbytes += grad.nbytes
        self.layers.append(grad.layer)
        self.dep = compute_index
        if self.nbytes >= self.cap:
            self.flush(steps, blocking)

    def flush(self, steps: list[Step], blocking: bool = False) -> None:
        """All-reduce the open bucket: on the comm stream after its last layer's backward, or (``blocking``)
        on the compute stream in program order."""
        if self.group is None:
            return
        name = self.layers[0] if len(self.layers) == 1 else f"{self.layers[0]}..{self.layers[-1]}"
        if blocking:
            steps += self.ctx.collective("allreduce", self.group, self.nbytes / self.ctx.dtype_bytes, "batch",
                                         name, "bwd")
        else:
            steps += self.ctx.collective("allreduce", self.group, self.nbytes / self.ctx.dtype_bytes, "batch",
                                         name, "bwd", stream="comm", deps=(self.dep,))
        self.group, self.nbytes, self.layers, self.dep = None, 0.0, [], -1


def build_steps(model: Model, plans: list[LayerPlan], ctx: Context, compute_time, overlap: bool = False,
                bucket_bytes: float | None = None, conv_ctx: Context | None = None,
                host_overhead_s: float = 0.0) -> list[Step]:
    """Steps of one iteration.

    Parameters
    ----------
    bucket_bytes : float, optional
        ΔW bucket size; None: :data:`BUCKET_BYTES` with ``overlap``, one all-reduce per layer without.
    host_overhead_s : float
        Fixed host seconds per iteration, one ``host`` compute step at the end (none when 0).
    compute_time : callable
        ``compute_time(layer, phase, local_batch, shard) -> seconds`` (a compute model's ``time``).
    conv_ctx : Context, optional
        The context of the layers on a separate conv grid (``plan.on_conv_grid``).
    """
    def ctx_of(plan: LayerPlan) -> Context:
        return conv_ctx if plan.on_conv_grid and conv_ctx is not None else ctx

    steps: list[Step] = []
    for plan in plans:
        layer = plan.layer
        if plan.redistribute_fwd:
            steps += ctx.collective("allgather", plan.redistribute_group,
                                    ctx.column_words(layer.in_elems_per_sample, "allgather"),
                                    "redistribute", layer.name, "fwd")
        seconds = compute_time(layer, "fwd", plan.local_batch, plan.shard)
        steps += _MODES[plan.mode].forward(plan, ctx_of(plan), seconds)
    bucketed = overlap or bucket_bytes is not None
    buckets = _Buckets(ctx, BUCKET_BYTES if bucket_bytes is None else bucket_bytes)
    blocking = not overlap
    for plan in reversed(plans):
        layer = plan.layer
        seconds = compute_time(layer, "bwd", plan.local_batch, plan.shard)
        layer_ctx = ctx_of(plan)
        layer_steps, compute_offset, grad = _MODES[plan.mode].backward(plan, layer_ctx, seconds)
        compute_index = len(steps) + compute_offset
        steps += layer_steps
        if grad is not None:
            if bucketed:
                buckets.add(grad, compute_index, steps, layer_ctx, blocking)
            else:
                steps += layer_ctx.collective("allreduce", grad.group, grad.nbytes / ctx.dtype_bytes, "batch",
                                              layer.name, "bwd")
        if plan.redistribute_bwd:
            steps += ctx.collective("allgather", "model", ctx.column_words(layer.in_elems_per_sample, "allgather"),
                                    "redistribute", layer.name, "bwd")
    buckets.flush(steps, blocking)
    if host_overhead_s > 0:
        comm = tuple(i for i, step in enumerate(steps) if step.stream == "comm")
        steps.append(Step("compute", "host", "host", seconds=float(host_overhead_s), deps=comm))
    return steps


def plan_run(model: Model, conv_mode: str, fc_mode: str, batch: int, grid: Grid, dtype_bytes: int,
             algorithms: dict[str, str], compute_time, overlap: bool = False, paper_dx: bool = False,
             meta: dict | None = None, bucket_bytes: float | None = None,
             host_overhead_s: float = 0.0) -> RunPlan:
    """Plan one iteration of ``model`` on ``grid`` (see the module docstring); a ``grid.conv`` puts the
    convolutions on that grid."""
    conv = grid.conv
    ctx = Context(batch, grid.pr, grid.pc, dtype_bytes, dict(algorithms), paper_dx,
                  conv_pr=0 if conv is None else conv.pr)
    conv_ctx = None if conv is None else Context(batch, conv.pr, conv.pc, dtype_bytes, dict(algorithms), paper_dx,
                                                 prefix="conv_")
    conv_dims = None if conv is None else (conv.pr, conv.pc)
    plans = plan_layers(model, conv_mode, fc_mode, batch, grid.pr, grid.pc, conv_grid=conv_dims)
    steps = build_steps(model, plans, ctx, compute_time, overlap, bucket_bytes=bucket_bytes, conv_ctx=conv_ctx,
                        host_overhead_s=host_overhead_s)
    return RunPlan(plans, steps, grid, dict(meta or {}))
