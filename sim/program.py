"""The program IR: what each simulated rank executes, as plain frozen values.

A :class:`Program` holds one list of operations per rank. An operation is a :class:`Compute` (a span of
local work, its duration already known) or a :class:`Collective` (a group operation that moves bytes over
the network: all-gather, reduce-scatter, all-reduce, broadcast, reduce, all-to-all, halo exchange, or a
point-to-point ``send`` between two ranks).

Ordering rules the engine follows:

* each operation runs on a *stream* of its rank (``"compute"`` or ``"comm"``); operations on one stream
  run in list order, one at a time;
* an operation also waits for the operations whose list indices are in its ``deps`` (same rank);
* a collective starts when every rank of its ``group`` has reached the operation with the same ``key``
  (a rendezvous), and ends for all of them when the last of its transfers has arrived;
* a ``send`` (group ``(sender, receiver)``) starts when its *sender* arrives, without waiting for the
  receiver (whose receive is posted in advance, as with Megatron's batched isend/irecv, so pipeline
  schedules cannot deadlock on it); the sender's op ends when the transfer has arrived, the receiver's
  at the later of its own arrival and that moment.

With every operation on one stream and no ``deps`` a rank runs strictly in order (no overlap); putting
gradient all-reduces on ``"comm"`` with deps on the backward compute that produced them gives overlap.
Strategies (``sim.strategies``) build programs; the engine (``sim.engine``) runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: collective operations and what ``nbytes`` means for each (docs/cli.md, ``dnnsim collective --bytes``)
COLLECTIVE_OPS: dict[str, str] = {
    "allgather": "bytes of the gathered result vector on each rank",
    "reduce_scatter": "bytes of the input vector on each rank",
    "allreduce": "bytes of the vector reduced on each rank",
    "broadcast": "bytes of the broadcast vector",
    "reduce": "bytes of the vector reduced",
    "alltoall": "bytes each rank sends in total (nbytes / p to each peer)",
    "halo": "bytes sent to each neighbour",
    "send": "bytes sent from group[0] to group[1]",
}

#: how communication is accounted (the paper's split of the epoch time)
CATEGORIES = ("batch", "model", "domain", "redistribute", "pipeline", "other")

#: ``comm2`` is a second communication stream (another communicator), e.g. ring attention beside gradient reductions
STREAMS = ("compute", "comm", "comm2")


@dataclass(frozen=True, slots=True)
class Compute:
    """Local work of known duration on one rank — or communication timed before the run.

    With ``comm`` set (a collective op name) the span is that collective, timed ahead on the network model
    because its group's links carry nothing else and every member runs the same program (the symmetric
    reduction of :mod:`sim.llm.run`: one rank per tensor-parallel group is simulated, its TP collectives
    inside the node taking their solo time). The engine runs it like a compute; its record is a collective
    (``kind``, ``op``, ``algorithm``, ``category``, ``group_size``, ``bytes_sent`` from these fields).
    """

    seconds: float
    layer: str = ""
    phase: str = ""  # "fwd", "bwd", "opt", ...
    stream: str = "compute"
    deps: tuple[int, ...] = ()
    comm: str = ""
    algorithm: str = ""
    category: str = "compute"
    group_size: int = 1
    bytes_sent: float = 0.0


@dataclass(frozen=True, slots=True)
class Collective:
    """One rank's part in a group operation.

    Every member of ``group`` holds a Collective with the same ``key``, ``op``, ``group``, ``nbytes`` and
    ``algorithm`` (strategies usually share one instance among the members).

    Attributes
    ----------
    op : str
        One of :data:`COLLECTIVE_OPS`.
    group : tuple of int
        Global ranks taking part, in group order (ring order, halo neighbour order).
    nbytes : float
        Size as defined per op in :data:`COLLECTIVE_OPS`.
    algorithm : str
        Algorithm name understood by ``sim.collectives`` (``"paper"``, ``"ring"``, ...).
    key : str
        Unique name of this collective instance within the program (rendezvous key).
    halo_dims : tuple of int
        For ``op == "halo"``: the shape of the neighbour grid the group is laid out on, row-major
        (``(p,)`` for a 1-D chain, ``(py, px)`` for 2-D). Empty means 1-D over the whole group.
    category : str
        One of :data:`CATEGORIES`, for the batch / model / domain split of communication time.
    count : int
        How many identical collectives, run back to back by the same group, this op stands for (>= 1;
        e.g. the 2·L tensor-parallel all-reduces of L transformer layers, separated only by compute on
        the same stream). The network runs every phase of one copy with its ``steps`` multiplied by
        ``count`` (each phase repeated ``count`` times in lockstep): on an uncontended network that takes
        the time of ``count`` copies in sequence, Σ count·steps·(α + max n/β), and moves ``count`` times
        the bytes. Computes between the copies are not modelled (put them before or after the op).
    """

    op: str
    group: tuple[int, ...]
    nbytes: float
    algorithm: str = "paper"
    key: str = ""
    layer: str = ""
    phase: str = ""
    category: str = "other"
    halo_dims: tuple[int, ...] = ()
    stream: str = "compute"
    deps: tuple[int, ...] = ()
    count: int = 1


Op = Compute | Collective


@dataclass(frozen=True)
class Program:
    """Per-rank operation lists, ``ops[r]`` for rank ``r``."""

    ops: tuple[tuple[Op, ...], ...]
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def n_ranks(self) -> int:
        return len(self.ops)
