"""The engine's records: their columns, the one function per kind that builds a row, and the result.

Shared by the SimPy engine (:mod:`sim.engine.run`) and the analytic fast path (:mod:`sim.fastpath`), so
both produce the same frame from the same facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: columns of :attr:`EngineResult.records`, in order. ``algorithm`` is the algorithm that ran: the one the
#: collective asked for, or the flat algorithm it fell back to on this placement (``hierarchical`` on a
#: topology without multi-GPU nodes, or on a group that is not node-aligned, runs ``ring``; see
#: :meth:`sim.network.base.NetworkModel.effective_algorithm`)
RECORD_COLUMNS = ["rank", "stream", "kind", "op", "algorithm", "layer", "phase", "category", "key",
                  "group_size", "arrive_s", "start_s", "end_s", "bytes_sent"]


def compute_row(rank: int, index: int, op: Any, start_s: float, end_s: float) -> tuple:
    """The record of compute op ``index`` of ``rank`` (it arrives and starts at ``start_s``); ``op`` is a
    :class:`~sim.program.Compute` or a compute :class:`~sim.strategies.steps.Step`; a Compute standing for a
    collective timed ahead (``comm`` set) is recorded as that collective."""
    comm = getattr(op, "comm", "")
    if comm:
        return (rank, op.stream, "collective", comm, op.algorithm, op.layer, op.phase, op.category, str(index),
                op.group_size, start_s, start_s, end_s, op.bytes_sent)
    return (rank, op.stream, "compute", "", "", op.layer, op.phase, "compute", str(index), 1,
            start_s, start_s, end_s, 0.0)


def collective_row(rank: int, op: Any, key: str, group_size: int, algorithm_ran: str, arrive_s: float,
                   start_s: float, end_s: float, bytes_sent: float) -> tuple:
    """The record of ``rank``'s part in collective ``op`` (a :class:`~sim.program.Collective` or a
    collective :class:`~sim.strategies.steps.Step`; ``key`` and ``group_size`` are given because a step
    has no members)."""
    return (rank, op.stream, "collective", op.op, algorithm_ran, op.layer, op.phase, op.category, key,
            group_size, arrive_s, start_s, end_s, bytes_sent)


def records_frame(rows: Sequence[tuple]) -> Any:
    """The records frame (pandas) of ``rows`` (built by :func:`compute_row` and :func:`collective_row`)."""
    import pandas as pd  # not on the path of `dnnsim collective`, which needs only the makespan

    return pd.DataFrame.from_records(rows, columns=RECORD_COLUMNS)


@dataclass(frozen=True)
class EngineResult:
    """What one engine run produced.

    Attributes
    ----------
    rows : list of tuple
        One record per rank per operation (:data:`RECORD_COLUMNS`), ranks in order, operations in list order.
    events : int
        SimPy events processed.
    makespan_s : float
        The latest ``end_s`` (0 for an empty program).
    wall_s : float
        Wall-clock seconds of the run (build, run and collect).
    meter : LinkMeter or None
        The link meter the run fed (:mod:`sim.network.linkmeter`), when one was given.
    records : pandas.DataFrame
        The rows as a frame (built on first use): ``arrive_s`` is when the rank reached the operation (its
        stream and deps were done), ``start_s`` when it started (a collective: when its last member
        arrived), ``end_s`` when it ended; ``bytes_sent`` the rank's bytes in it. A ``send`` starts when
        its sender arrives: the sender's ``start_s`` is its arrival, the receiver's the later of its own
        arrival and the sender's, so that the receiver's ``start_s - arrive_s`` is the time it waited for
        the sender and ``end_s - start_s`` the time it then waited for the data (0 when the data had
        arrived before it did); ``bytes_sent`` is ``nbytes`` (× ``count``) for the sender, 0 for the
        receiver.
    """

    rows: list
    events: int
    makespan_s: float
    wall_s: float
    meter: Any = None
    _frame: list = field(default_factory=list, repr=False, compare=False)

    @property
    def records(self) -> Any:
        if not self._frame:
            self._frame.append(records_frame(self.rows))
        return self._frame[0]
