"""All-gather algorithms. ``nbytes`` = bytes of the gathered result on each rank; each rank owns n/p.

Closed forms with α = per-message latency and bw = link bandwidth (Thakur, Rabenseifner & Gropp 2005,
"Optimization of collective communication operations in MPICH", §4.1; Bruck et al. 1997):

* ``ring`` — any p: (p-1)(α + n/(p·bw)); one phase of p-1 steps;
* ``recursive_doubling`` — power-of-two p only: log2 p·α + (p-1)/p·n/bw;
* ``bruck`` — any p: ⌈log2 p⌉·α + (p-1)/p·n/bw (the last step sends the p - 2^k blocks still missing);
* ``paper`` — the paper's all-gather cost α⌈log2 p⌉ + β(p-1)/p·n, which it attributes to Bruck's
  algorithm: the same phases as ``bruck``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.collectives import patterns as pat
from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, ceil_log2, floor_log2


@dataclass(frozen=True)
class RingAllgather(CollectiveAlgorithm):
    """Ring all-gather, any p: p-1 steps, each rank passes n/p bytes to its right neighbour."""

    op: str = "allgather"
    name: str = "ring"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.ring(pat.flat(p), n / p, p - 1)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return (p - 1) * (a + n / (p * bw))


@dataclass(frozen=True)
class RecursiveDoublingAllgather(CollectiveAlgorithm):
    """Recursive-doubling all-gather; power-of-two p only (others are rejected)."""

    op: str = "allgather"
    name: str = "recursive_doubling"
    power_of_two: ClassVar[bool] = True

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.recursive_doubling_allgather(pat.flat(p), n / p)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return floor_log2(p) * a + (p - 1) / p * n / bw


@dataclass(frozen=True)
class BruckAllgather(CollectiveAlgorithm):
    """Bruck's all-gather, any p: ⌈log2 p⌉ steps, step k sends min(2^k, p-2^k) blocks of n/p."""

    op: str = "allgather"
    name: str = "bruck"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.bruck_allgather(pat.flat(p), n / p)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return ceil_log2(p) * a + (p - 1) / p * n / bw


@dataclass(frozen=True)
class PaperAllgather(BruckAllgather):
    """The paper's all-gather: α⌈log2 p⌉ + β(p-1)/p·n, realised as Bruck's algorithm; any p."""

    name: str = "paper"
