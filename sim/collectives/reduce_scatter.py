"""Reduce-scatter algorithms, each the dual of an all-gather. ``nbytes`` = bytes of the input vector; each
rank ends with its n/p block reduced over all ranks.

A reduce-scatter is an all-gather run backwards (Chan et al. 2007, "Collective communication: theory,
practice, and experience", §4, duality): the steps in reverse order, every transfer turned round, copies
becoming sums, the same bytes per step. So every algorithm here is a :class:`Dual` of one in
:mod:`sim.collectives.allgather`, with its closed form (Thakur, Rabenseifner & Gropp 2005, §4.3;
reduction arithmetic not charged):

* ``ring`` — any p: (p-1)(α + n/(p·bw)); the dual of the ring all-gather, mirrored so that it passes to
  the right as MPI libraries' ring reduce-scatter does (one phase of p-1 steps);
* ``recursive_halving`` — power-of-two p only: log2 p·α + (p-1)/p·n/bw; the dual of recursive doubling:
  n/2 to the rank p/2 away first, then n/4 at p/4, ..., as MPICH's
  ``reduce_scatter_intra_recursive_halving.c`` (``mask = pof2/2`` downwards, results in rank order).
  MPICH also runs it on other p by folding the extra ranks (whole vectors in, n/p blocks back); that fold
  is not modelled here: other p are rejected (use ring, bruck or paper);
* ``bruck`` — any p: ⌈log2 p⌉·α + (p-1)/p·n/bw; the dual of Bruck's all-gather (dissemination);
* ``paper`` — the paper (Gholami et al. 2018) states no reduce-scatter cost of its own; we use half of its all-reduce cost,
  α⌈log2 p⌉ + β(p-1)/p·n: the dual of the ``paper`` all-gather (Bruck), valid for every p.
"""

from __future__ import annotations

from sim.collectives.algorithm import Dual
from sim.collectives.allgather import (
    BruckAllgather,
    PaperAllgather,
    RecursiveDoublingAllgather,
    RingAllgather,
)

#: the reduce-scatter algorithms, in registry order
REDUCE_SCATTER: tuple[Dual, ...] = (
    Dual("reduce_scatter", "ring", RingAllgather(), mirror=True),
    Dual("reduce_scatter", "recursive_halving", RecursiveDoublingAllgather()),
    Dual("reduce_scatter", "bruck", BruckAllgather()),
    Dual("reduce_scatter", "paper", PaperAllgather()),
)
