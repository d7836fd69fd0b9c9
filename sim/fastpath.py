"""The analytic fast path: time one representative rank by closed forms instead of simulating every rank.

Under ``network=analytic`` a collective costs its algorithm's closed form (``cost_s``) whatever else is
running, and every rank of a strategy's program runs the same steps on groups of the same size. So all
ranks arrive at every collective at the same time and finish it together: the iteration is the schedule
of one rank. This module runs that schedule with a two-stream scheduler: an op starts when its stream is
free and its deps have ended (the engine's own rule, :func:`sim.engine.rules.ready_s`); a collective
lasts ``cost_s(p, nbytes, α, 1/β)``, computed by the analytic network model's own cached function with
the same keywords. It emits records for rank 0 only, built by the engine's row builders
(:mod:`sim.engine.records`, same columns), with the algorithm that ran as the engine reports it.
``events`` is the number of steps it processed (not SimPy events). Tests hold it equal to the full
engine in analytic mode. Where ranks are not alike
(``hierarchical`` all-reduce on groups only some of which are node-aligned, :func:`is_symmetric`), the
caller runs the engine instead.

``bytes_sent`` of a collective is the mean over its members of the bytes each sends in the algorithm's
phases, so that it is the same for every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.engine.records import collective_row, compute_row, records_frame
from sim.engine.rules import ready_s
from sim.grid import Grid
from sim.strategies.steps import Step, group_size

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FastResult:
    """Records of the representative rank, the iteration time, and the steps processed."""

    records: pd.DataFrame
    makespan_s: float
    events: int


def _groups_of(grid: Grid, kind: str) -> tuple[tuple[int, ...], ...]:
    """Every group of ``kind`` (``model``, ``batch``, ``all``, or a conv-grid kind: :meth:`Grid.groups`)."""
    return grid.groups(kind)


def _group_of(grid: Grid, kind: str, rank: int = 0) -> tuple[int, ...]:
    """The group of ``kind`` that ``rank`` belongs to (the grid column or row of its position)."""
    if kind == "conv_model" and grid.conv is not None:
        return _group_of(grid.conv, "model", rank)
    if kind == "conv_batch" and grid.conv is not None:
        return _group_of(grid.conv, "batch", rank)
    if kind == "all":
        return grid.all_ranks()
    if kind in ("model", "batch"):
        i, j = grid.position(rank)
        if kind == "model":
            return tuple(grid.rank(k, j) for k in range(grid.pr))
        return tuple(grid.rank(i, k) for k in range(grid.pc))
    return next(g for g in _groups_of(grid, kind) if rank in g)


def is_symmetric(steps: list[Step], grid: Grid, network: Any) -> bool:
    """False when an algorithm's placement keywords (:meth:`~sim.network.base.NetworkModel.algo_kwargs`)
    differ between the groups of one kind (``hierarchical`` on groups of which only some are
    node-aligned): then ranks are not alike and the fast path does not apply."""
    from sim.network.base import get_algo

    seen = set()
    for step in steps:
        key = (step.op, step.algorithm, step.group)
        if step.kind != "collective" or key in seen:
            continue
        seen.add(key)
        if not getattr(get_algo(step.op, step.algorithm), "placement_facts", ()):
            continue  # no placement keywords: the same (none) for every group
        if len({network.algo_kwargs(step.op, step.algorithm, g) for g in _groups_of(grid, step.group)}) > 1:
            return False
    return True


def check_algorithms(steps: list[Step], pr: int, pc: int, grid: Grid | None = None) -> None:
    """Let each algorithm reject its group sizes (``check(p)`` raises a UserError); ``grid`` sizes the
    conv-grid group kinds when there is a conv grid."""
    from sim.network.base import get_algo

    seen = set()
    for step in steps:
        if step.kind == "collective":
            size = grid.group_size(step.group) if grid is not None else group_size(step.group, pr, pc)
            key = (step.op, step.algorithm, size)
            if key not in seen:
                seen.add(key)
                get_algo(step.op, step.algorithm).check(key[2])


def run_fast(steps: list[Step], grid: Grid, network: Any,
             collective_s: Callable[[Step, Grid], float] | None = None) -> FastResult:
    """Schedule ``steps`` on rank 0 with the closed-form costs of the ``analytic`` ``network`` (the same
    cached costs, keywords and bytes the analytic network model gives the engine).

    ``collective_s(step, grid)``, when given, prices each collective instead of the closed form (the
    routed screen of ``dnnsim best``, :class:`sim.screen.RoutedScreen`); records, algorithms and bytes
    still come from ``network``. The schedule is then a screen, not the engine's result."""
    from sim.network.base import cached_cost

    check_algorithms(steps, grid.pr, grid.pc, grid if grid.conv is not None else None)
    kinds = ("model", "batch", "all") + (("conv_model", "conv_batch", "conv_fc") if grid.conv is not None else ())
    groups = {kind: _group_of(grid, kind) for kind in kinds}
    alpha_s, bandwidth_Bps = network.alpha_s, network.bandwidth_Bps
    free = {"compute": 0.0, "comm": 0.0}
    ends: list[float] = []
    rows: list[tuple] = []
    for s, step in enumerate(steps):
        start = ready_s(free.get(step.stream, 0.0), ends, step.deps)
        if step.kind == "compute":
            end = start + step.seconds
            rows.append(compute_row(0, s, step, start, end))
        else:
            group = groups[step.group]
            p, nbytes = len(group), float(step.nbytes)
            if collective_s is None:
                kw = network.algo_kwargs(step.op, step.algorithm, group)
                end = start + cached_cost(step.op, step.algorithm, p, nbytes, alpha_s, bandwidth_Bps, kw)
            else:
                end = start + collective_s(step, grid)
            sent = float(network.bytes_sent(step.op, step.algorithm, group, nbytes).sum()) / p
            rows.append(collective_row(0, step, f"{s}:{step.layer}:{step.op}:{step.group}0", p,
                                       network.effective_algorithm(step.op, step.algorithm, group),
                                       start, start, end, sent))
        free[step.stream] = end
        ends.append(end)
    records = records_frame(rows)
    makespan = max(ends) if ends else 0.0
    return FastResult(records, makespan, len(steps))
