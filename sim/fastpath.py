"""The analytic fast path: time one representative rank by closed forms instead of simulating every rank.

Under ``network=analytic`` a collective costs its algorithm's closed form (``cost_s``) whatever else is
running, and every rank of a strategy's program runs the same steps on groups of the same size. So all
ranks arrive at every collective at the same time and finish it together: the iteration is the schedule
of one rank. This module runs that schedule with a two-stream scheduler (an op starts when its stream is
free and its deps have ended; a collective lasts ``cost_s(p, nbytes, α, 1/β)``, computed by the analytic
network model's own cached function with the same keywords), the same rules as :mod:`sim.engine`, and
emits engine-shaped records for rank 0 only. ``events`` is the number of steps it processed (not SimPy
events). Tests hold it equal to the full engine in analytic mode. Where ranks are not alike
(``hierarchical`` all-reduce on groups only some of which are node-aligned, :func:`is_symmetric`), the
caller runs the engine instead.

``bytes_sent`` of a collective is the mean over its members of the bytes each sends in the algorithm's
phases, so that it is the same for every rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.grid import Grid
from sim.strategies.steps import Step, group_size

RECORD_COLUMNS = ["rank", "stream", "kind", "op", "algorithm", "layer", "phase", "category", "key",
                  "group_size", "arrive_s", "start_s", "end_s", "bytes_sent"]


@dataclass(frozen=True)
class FastResult:
    """Records of the representative rank, the iteration time, and the steps processed."""

    records: pd.DataFrame
    makespan_s: float
    events: int


def _group_of(grid: Grid, kind: str, rank: int = 0) -> tuple[int, ...]:
    """The group of ``kind`` that ``rank`` belongs to."""
    if kind == "model":
        groups = grid.model_groups()
    elif kind == "batch":
        groups = grid.batch_groups()
    else:
        return grid.all_ranks()
    return next(g for g in groups if rank in g)


def is_symmetric(steps: list[Step], grid: Grid, network: Any) -> bool:
    """False when an algorithm's keywords differ between the groups of one kind (``hierarchical`` on
    groups of which only some are node-aligned): then the fast path does not apply."""
    for kind in {step.group for step in steps if step.kind == "collective" and step.algorithm == "hierarchical"}:
        groups = (grid.model_groups() if kind == "model" else grid.batch_groups() if kind == "batch"
                  else (grid.all_ranks(),))
        if len({network.local_size(g) for g in groups}) > 1:
            return False
    return True


def check_algorithms(steps: list[Step], pr: int, pc: int) -> None:
    """Let each algorithm reject its group sizes (``check(p)`` raises a UserError)."""
    from sim.network.base import get_algo

    seen = set()
    for step in steps:
        if step.kind == "collective":
            key = (step.op, step.algorithm, group_size(step.group, pr, pc))
            if key not in seen:
                seen.add(key)
                get_algo(step.op, step.algorithm).check(key[2])


def run_fast(steps: list[Step], grid: Grid, network: Any) -> FastResult:
    """Schedule ``steps`` on rank 0 with the closed-form costs of the ``analytic`` ``network`` (the same
    cached costs, keywords and bytes the analytic network model gives the engine)."""
    from sim.network.base import cached_cost

    check_algorithms(steps, grid.pr, grid.pc)
    groups = {kind: _group_of(grid, kind) for kind in ("model", "batch", "all")}
    alpha_s, bandwidth_Bps = network.alpha_s, network.bandwidth_Bps
    free = {"compute": 0.0, "comm": 0.0}
    ends: list[float] = []
    rows: list[tuple] = []
    for s, step in enumerate(steps):
        ready = free.get(step.stream, 0.0)
        for d in step.deps:
            ready = max(ready, ends[d])
        if step.kind == "compute":
            end = ready + step.seconds
            rows.append((0, step.stream, "compute", "", "", step.layer, step.phase, "compute", f"{s}",
                         1, ready, ready, end, 0.0))
        else:
            group = groups[step.group]
            p = len(group)
            dims = (p,) if step.op == "halo" else ()
            kw = network.algo_kwargs(step.op, step.algorithm, group, dims)
            end = ready + cached_cost(step.op, step.algorithm, p, float(step.nbytes), alpha_s, bandwidth_Bps, kw)
            sent = float(network.bytes_sent(step.op, step.algorithm, group, float(step.nbytes), dims).sum()) / p
            rows.append((0, step.stream, "collective", step.op, step.algorithm, step.layer, step.phase,
                         step.category, f"{s}:{step.layer}:{step.op}:{step.group}0", p, ready, ready, end, sent))
        free[step.stream] = end
        ends.append(end)
    records = pd.DataFrame.from_records(rows, columns=RECORD_COLUMNS)
    makespan = max(ends) if ends else 0.0
    return FastResult(records, makespan, len(steps))
