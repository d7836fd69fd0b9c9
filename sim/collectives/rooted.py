"""Broadcast and reduce from/to local rank 0. ``nbytes`` = bytes of the vector.

* ``tree`` — binomial tree, any p: ⌈log2 p⌉(α + n/bw) (Thakur, Rabenseifner & Gropp 2005, §4.2 and §4.5,
  short-message algorithms; the whole vector each step).
* ``paper`` — the paper (Gholami et al. 2018) gives no broadcast or reduce cost; we use the binomial tree (same phases).

A reduce is the dual of a broadcast (Chan et al. 2007, §4): the binomial reduce is the binomial broadcast
run backwards, so each reduce here is the :class:`Dual` of the broadcast of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.collectives import patterns as pat
from sim.collectives.algorithm import CollectiveAlgorithm, Dual
from sim.collectives.base import Phase, ceil_log2


@dataclass(frozen=True)
class TreeBroadcast(CollectiveAlgorithm):
    """Binomial-tree broadcast from rank 0; any p."""

    op: str = "broadcast"
    name: str = "tree"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.binomial_broadcast(pat.flat(p), n)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return ceil_log2(p) * (a + n / bw)


@dataclass(frozen=True)
class PaperBroadcast(TreeBroadcast):
    """The paper has no broadcast cost: the binomial tree."""

    name: str = "paper"


#: the reduce algorithms (binomial-tree reduce to rank 0, any p), in registry order
REDUCE: tuple[Dual, ...] = (
    Dual("reduce", "tree", TreeBroadcast()),
    Dual("reduce", "paper", PaperBroadcast()),
)
