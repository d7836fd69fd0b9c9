"""Broadcast and reduce from/to local rank 0. ``nbytes`` = bytes of the vector.

* ``tree`` — binomial tree, any p: ⌈log2 p⌉(α + n/bw) (Thakur, Rabenseifner & Gropp 2005, §4.2 and §4.5,
  short-message algorithms; the whole vector each step).
* ``paper`` — the paper gives no broadcast or reduce cost; we use the binomial tree (same phases).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.collectives import patterns as pat
from sim.collectives.algorithm import CollectiveAlgorithm
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
    """The paper gives no broadcast cost: the binomial tree."""

    name: str = "paper"


@dataclass(frozen=True)
class TreeReduce(CollectiveAlgorithm):
    """Binomial-tree reduce to rank 0; any p."""

    op: str = "reduce"
    name: str = "tree"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.binomial_reduce(pat.flat(p), n)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return ceil_log2(p) * (a + n / bw)


@dataclass(frozen=True)
class PaperReduce(TreeReduce):
    """The paper gives no reduce cost: the binomial tree."""

    name: str = "paper"
