"""All-to-all algorithms. ``nbytes`` = bytes each rank sends in total, n/p to each rank (itself included,
which costs nothing).

* ``direct`` — pairwise exchange, any p: in step s = 1..p-1 rank r sends n/p to (r + s) mod p;
  (p-1)(α + n/(p·bw)) (Thakur, Rabenseifner & Gropp 2005, §4.6, long messages). Each step has its own
  pattern, so it is p-1 phases of one step each (a phase repeats one pattern; contention depends on it).
* ``bruck`` — Bruck et al. 1997, any p: step k = 0..⌈log2 p⌉-1, rank r sends to (r + 2^k) mod p the
  c_k blocks whose index j ∈ 1..p-1 has bit k set: ⌈log2 p⌉·α + Σ_k c_k·n/(p·bw), with
  c_k = ⌊p / 2^(k+1)⌋·2^k + max(0, p mod 2^(k+1) − 2^k) (for a power of two: log2 p·(α + n/(2·bw))).
* ``paper`` — the paper gives no all-to-all cost (docs/paper-model.md): ``direct``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, ceil_log2, make_phase


def bruck_blocks(p: int, k: int) -> int:
    """c_k: how many of the indices 1..p-1 have bit k set (blocks sent in Bruck step k)."""
    d = 1 << k
    return (p // (2 * d)) * d + max(0, p % (2 * d) - d)


@dataclass(frozen=True)
class DirectAlltoall(CollectiveAlgorithm):
    """Pairwise-exchange all-to-all, any p: p-1 one-step phases of n/p per rank."""

    op: str = "alltoall"
    name: str = "direct"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        # one shared source array and byte array; step s's destinations are a view of the doubled ranks
        r = make_phase(np.arange(p), np.arange(p), n / p)
        twice = np.concatenate([r.src, r.src])
        twice.flags.writeable = False
        return [Phase(r.src, twice[s:s + p], r.nbytes, 1) for s in range(1, p)]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return (p - 1) * (a + n / (p * bw))


@dataclass(frozen=True)
class PaperAlltoall(DirectAlltoall):
    """The paper gives no all-to-all cost: pairwise exchange."""

    name: str = "paper"


@dataclass(frozen=True)
class BruckAlltoall(CollectiveAlgorithm):
    """Bruck's all-to-all, any p: ⌈log2 p⌉ steps, fewer messages, more bytes."""

    op: str = "alltoall"
    name: str = "bruck"

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        r = np.arange(p, dtype=np.int64)
        return [make_phase(r, (r + (1 << k)) % p, bruck_blocks(p, k) * n / p) for k in range(ceil_log2(p))]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        blocks = sum(bruck_blocks(p, k) for k in range(ceil_log2(p)))
        return ceil_log2(p) * a + blocks * n / (p * bw)
