"""The analytic fast path: time one representative rank by closed forms instead of simulating every rank.

Under ``network=analytic`` a collective costs its algorithm's closed form (``cost_s``) whatever else is
running, and every rank of a strategy's program runs the same steps on groups of the same size. So all
ranks arrive at every collective at the same time and finish it together: the iteration is the schedule
of one rank. This module runs that schedule with a two-stream scheduler (an op starts when its stream is
free and its deps have ended; a collective lasts ``cost_s(p, nbytes, α, 1/β)``), the same rules as
:mod:`sim.engine`, and emits engine-shaped records for rank 0 only. ``events`` is the number of steps it
processed. Tests hold it equal to the full engine in analytic mode.

``bytes_sent`` of a collective is the mean over its members of the bytes each sends in the algorithm's
phases (total bytes of the phases / p), so that it is the same for every rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from sim.strategies.steps import Step, group_size

RECORD_COLUMNS = ["rank", "stream", "kind", "op", "algorithm", "layer", "phase", "category", "key",
                  "group_size", "arrive_s", "start_s", "end_s", "bytes_sent"]


@dataclass(frozen=True)
class FastResult:
    """Records of the representative rank, the iteration time, and the steps processed."""

    records: pd.DataFrame
    makespan_s: float
    events: int


@lru_cache(maxsize=4096)
def _algorithm(op: str, name: str):
    from sim.collectives import get_algorithm

    return get_algorithm(op, name)


@lru_cache(maxsize=65536)
def collective_cost(op: str, name: str, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
    """Closed-form seconds of one collective (cached)."""
    return float(_algorithm(op, name).cost_s(p, nbytes, alpha_s, bandwidth_Bps))


@lru_cache(maxsize=65536)
def mean_bytes_sent(op: str, name: str, p: int, nbytes: float) -> float:
    """Mean bytes a member sends in the algorithm's phases (total over the group / p)."""
    total = 0.0
    for phase in _algorithm(op, name).phases(p, nbytes):
        total += float(np.sum(phase.nbytes)) * phase.steps
    return total / p


def check_algorithms(steps: list[Step], pr: int, pc: int) -> None:
    """Let each algorithm reject its group sizes (``check(p)`` raises a UserError)."""
    seen = set()
    for step in steps:
        if step.kind == "collective":
            key = (step.op, step.algorithm, group_size(step.group, pr, pc))
            if key not in seen:
                seen.add(key)
                _algorithm(step.op, step.algorithm).check(key[2])


def run_fast(steps: list[Step], pr: int, pc: int, alpha_s: float, bandwidth_Bps: float,
             with_bytes: bool = True) -> FastResult:
    """Schedule ``steps`` on one rank (rank 0) with closed-form collective costs."""
    check_algorithms(steps, pr, pc)
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
            p = group_size(step.group, pr, pc)
            end = ready + collective_cost(step.op, step.algorithm, p, step.nbytes, alpha_s, bandwidth_Bps)
            sent = mean_bytes_sent(step.op, step.algorithm, p, step.nbytes) if with_bytes else math.nan
            rows.append((0, step.stream, "collective", step.op, step.algorithm, step.layer, step.phase,
                         step.category, f"{s}:{step.layer}:{step.op}:{step.group}0", p, ready, ready, end, sent))
        free[step.stream] = end
        ends.append(end)
    records = pd.DataFrame.from_records(rows, columns=RECORD_COLUMNS)
    makespan = max(ends) if ends else 0.0
    return FastResult(records, makespan, len(steps))
