"""All-reduce algorithms. ``nbytes`` = bytes of the vector reduced on each rank.

Closed forms with α = per-message latency and bw = link bandwidth, reduction arithmetic not charged
(Thakur, Rabenseifner & Gropp 2005, §4.4; docs/paper-model.md). p' = 2^⌊log2 p⌋.

* ``ring`` — any p: 2(p-1)(α + n/(p·bw)); ring reduce-scatter then ring all-gather, two phases of p-1 steps.
* ``recursive_doubling`` — any p: ⌊log2 p⌋(α + n/bw) for a power of two; otherwise MPICH's fold of the
  r = p - p' extra ranks adds one full-vector step before and one after: (⌊log2 p⌋ + 2)(α + n/bw).
* ``rabenseifner`` — any p: reduce-scatter by recursive vector halving with distance *doubling*, then
  all-gather by recursive vector doubling with distance *halving*, as MPICH
  (``allreduce_intra_reduce_scatter_allgather.c``) and Open MPI
  (``coll_base_allreduce.c``, ``ompi_coll_base_allreduce_intra_redscat_allgather``) run it; Thakur,
  Rabenseifner & Gropp 2005, §4.4: 2·log2 p'·α + 2(p'-1)/p'·n/bw; a non-power-of-two p adds MPICH's
  full-vector fold, 2(α + n/bw). (MPICH folds with whole vectors, as here; Open MPI's and Rabenseifner's
  half-vector fold is not modelled.) The n/2 messages go to the neighbour, the n/p ones p/2 away.
* ``rabenseifner_far`` — the same steps in the other order: distance halving in the reduce-scatter (n/2
  to the rank p/2 away first) and doubling in the all-gather, i.e. MPICH's stand-alone recursive-halving
  ``MPI_Reduce_scatter`` followed by its recursive-doubling ``MPI_Allgather`` (what a code that composes
  the all-reduce from those two calls, as sharded data parallelism does, sends). Same closed form; on
  uncontended links the two orders cost the same, on rings, tori and oversubscribed trees the far order
  pushes the largest messages over the most (and most shared) links.
* ``tree`` — any p: binomial reduce to rank 0 then binomial broadcast, 2⌈log2 p⌉(α + n/bw).
* ``hierarchical`` — needs ``local_size`` L dividing p (ranks of a node are L consecutive local ranks;
  ``None`` means L = p, one node): ring reduce-scatter inside every node (n/L blocks), ring all-reduce of
  the n/L shard among the m = p/L ranks with the same local index, ring all-gather inside every node:
  2(L-1)(α + n/(L·bw)) + 2(m-1)(α + n/(p·bw)). With one α and bw (this closed form) L = 1 and L = p both
  reduce to ``ring``; the gain shows on networks with faster links inside a node.
* ``paper`` — the paper's 2(α⌈log2 p⌉ + β(p-1)/p·n), any p: reverse-Bruck reduce-scatter then Bruck
  all-gather (see ``reduce_scatter.bruck`` and ``allgather.bruck``).

Every reduce-scatter half here (and the reduce of ``tree``) is built as the dual of its all-gather
(broadcast) half, :func:`~sim.collectives.patterns.dual`, as the reduce-scatter and reduce ops are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sim.collectives import patterns as pat
from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, ceil_log2, floor_log2, is_power_of_two
from sim.errors import UserError


def _remap(phases: list[Phase], members: np.ndarray) -> list[Phase]:
    """Phases over positions of ``members`` (a ``(1, q)`` matrix), rewritten as local ranks."""
    ranks = members.ravel()
    return [Phase(_ro(ranks[ph.src]), _ro(ranks[ph.dst]), ph.nbytes, ph.steps) for ph in phases]


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class RingAllreduce(CollectiveAlgorithm):
    """Ring all-reduce, any p: ring reduce-scatter + ring all-gather, each one phase of p-1 steps of n/p."""

    op: str = "allreduce"
    name: str = "ring"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        g = pat.flat(p)
        return pat.ring(g, n / p, p - 1) + pat.ring(g, n / p, p - 1)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return 2 * (p - 1) * (a + n / (p * bw))


@dataclass(frozen=True)
class RecursiveDoublingAllreduce(CollectiveAlgorithm):
    """Recursive-doubling all-reduce (whole vector each step); any p, non-powers of two by MPICH's fold."""

    op: str = "allreduce"
    name: str = "recursive_doubling"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        if is_power_of_two(p):
            return pat.recursive_doubling_allreduce(pat.flat(p), n)
        pre, survivors, post = pat.fold(p, n)
        core = pat.recursive_doubling_allreduce(pat.flat(survivors.shape[1]), n)
        return [pre, *_remap(core, survivors), post]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        extra = 0 if is_power_of_two(p) else 2
        return (floor_log2(p) + extra) * (a + n / bw)


@dataclass(frozen=True)
class RabenseifnerAllreduce(CollectiveAlgorithm):
    """Rabenseifner's all-reduce: a reduce-scatter by recursive vector halving, then its dual, an all-gather
    by recursive vector doubling; any p, non-powers of two by MPICH's fold.

    ``far = False`` (``rabenseifner``): MPICH's and Open MPI's order — the reduce-scatter doubles the
    distance (n/2 to the rank 1 away, n/4 to 2 away, ...), the all-gather halves it, so the largest
    messages travel the shortest distance (:func:`~sim.collectives.patterns.distance_halving_allgather`).
    ``far = True`` (``rabenseifner_far``): the halving reduce-scatter and doubling all-gather of MPICH's
    stand-alone ``MPI_Reduce_scatter``/``MPI_Allgather`` (n/2 to the rank p/2 away first), what an
    all-reduce composed of those two calls sends; the largest messages travel the farthest.
    """

    op: str = "allreduce"
    name: str = "rabenseifner"
    far: bool = False

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        q = 1 << floor_log2(p)
        gather = pat.recursive_doubling_allgather if self.far else pat.distance_halving_allgather
        allgather = gather(pat.flat(q), n / q)
        core = pat.dual(allgather) + allgather
        if q == p:
            return core
        pre, survivors, post = pat.fold(p, n)
        return [pre, *_remap(core, survivors), post]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        q = 1 << floor_log2(p)
        core = 2 * floor_log2(q) * a + 2 * (q - 1) / q * n / bw
        return core if q == p else core + 2 * (a + n / bw)


@dataclass(frozen=True)
class TreeAllreduce(CollectiveAlgorithm):
    """Binomial-tree reduce to rank 0 then binomial-tree broadcast; any p."""

    op: str = "allreduce"
    name: str = "tree"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        g = pat.flat(p)
        broadcast = pat.binomial_broadcast(g, n)
        return pat.dual(broadcast) + broadcast

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return 2 * ceil_log2(p) * (a + n / bw)


@dataclass(frozen=True)
class HierarchicalAllreduce(CollectiveAlgorithm):
    """Two-level all-reduce: intra-node ring RS, inter-node ring AR of n/L, intra-node ring AG.

    ``local_size`` L (ranks per node) must divide p; ``None`` means one node (L = p).
    """

    op: str = "allreduce"
    name: str = "hierarchical"
    #: placement facts the network model passes as keywords; without multi-rank nodes it is a flat ring
    placement_facts: ClassVar[tuple[str, ...]] = ("local_size",)
    flat_algorithm: ClassVar[str] = "ring"

    @staticmethod
    def _local(p: int, local_size: int | None) -> int:
        return p if local_size is None else int(local_size)

    def _check(self, p, local_size, dims) -> None:
        if local_size is None:
            return
        ok = (isinstance(local_size, (int, np.integer)) and not isinstance(local_size, bool)
              and local_size >= 1 and p % local_size == 0)
        if not ok:
            raise UserError("local_size", f"{local_size!r} ranks per node does not divide p={p}",
                            "a positive divisor of the group size (GPUs per node)")

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        L = self._local(p, local_size)
        nodes = np.arange(p, dtype=np.int64).reshape(p // L, L)
        intra = pat.ring(nodes, n / L, L - 1)
        inter = pat.ring(nodes.T, n / p, p // L - 1)
        return intra + inter + inter + intra

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        L = self._local(p, local_size)
        m = p // L
        return 2 * (L - 1) * (a + n / (L * bw)) + 2 * (m - 1) * (a + n / (p * bw))


@dataclass(frozen=True)
class PaperAllreduce(CollectiveAlgorithm):
    """The paper's all-reduce 2(α⌈log2 p⌉ + β(p-1)/p·n): reverse-Bruck RS + Bruck AG; any p."""

    op: str = "allreduce"
    name: str = "paper"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        g = pat.flat(p)
        allgather = pat.bruck_allgather(g, n / p)
        return pat.dual(allgather) + allgather

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return 2 * (ceil_log2(p) * a + (p - 1) / p * n / bw)
