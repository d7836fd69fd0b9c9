"""Reduce-scatter algorithms. ``nbytes`` = bytes of the input vector; each rank ends with its n/p block
reduced over all ranks.

Closed forms (Thakur, Rabenseifner & Gropp 2005, §4.3; Chan et al. 2007, "Collective communication:
theory, practice, and experience", on the duality of all-gather and reduce-scatter), reduction
arithmetic not charged:

* ``ring`` — any p: (p-1)(α + n/(p·bw)); one phase of p-1 steps;
* ``recursive_halving`` — power-of-two p only: log2 p·α + (p-1)/p·n/bw;
* ``bruck`` — any p: ⌈log2 p⌉·α + (p-1)/p·n/bw; Bruck's all-gather run backwards (its dual);
* ``paper`` — the paper states no reduce-scatter cost of its own; we use half of its all-reduce cost,
  α⌈log2 p⌉ + β(p-1)/p·n, realised by the same phases as ``bruck`` (valid for every p).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.collectives import patterns as pat
from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, ceil_log2, floor_log2


@dataclass(frozen=True)
class RingReduceScatter(CollectiveAlgorithm):
    """Ring reduce-scatter, any p: p-1 steps, each rank passes a partial block of n/p to its right."""

    op: str = "reduce_scatter"
    name: str = "ring"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.ring(pat.flat(p), n / p, p - 1)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return (p - 1) * (a + n / (p * bw))


@dataclass(frozen=True)
class RecursiveHalvingReduceScatter(CollectiveAlgorithm):
    """Recursive-halving reduce-scatter (n/2, n/4, ..., n/p); power-of-two p only."""

    op: str = "reduce_scatter"
    name: str = "recursive_halving"
    power_of_two: ClassVar[bool] = True

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.recursive_halving_reduce_scatter(pat.flat(p), n)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return floor_log2(p) * a + (p - 1) / p * n / bw


@dataclass(frozen=True)
class BruckReduceScatter(CollectiveAlgorithm):
    """Dissemination (reverse-Bruck) reduce-scatter, any p: ⌈log2 p⌉ steps, (p-1)/p·n bytes per rank."""

    op: str = "reduce_scatter"
    name: str = "bruck"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return pat.bruck_reduce_scatter(pat.flat(p), n / p)

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return ceil_log2(p) * a + (p - 1) / p * n / bw


@dataclass(frozen=True)
class PaperReduceScatter(BruckReduceScatter):
    """Half of the paper's all-reduce: α⌈log2 p⌉ + β(p-1)/p·n, as reverse-Bruck phases; any p."""

    name: str = "paper"
