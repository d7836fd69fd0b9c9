"""Communication patterns the algorithms are built from, vectorized over many groups at once.

Every function takes ``groups``, an int array of shape ``(g, q)``: ``g`` groups of ``q`` local ranks each
(row ``i`` lists the ranks of group ``i`` in pattern order). The pattern runs on positions ``0..q-1`` of
every row at the same time, so one :class:`~sim.collectives.base.Phase` holds the transfers of all groups
(the hierarchical all-reduce runs L rings, one per node, in one phase). :func:`flat` gives the one-group
matrix of a whole communicator. Work is one numpy call per step, never a Python loop per rank.
"""

from __future__ import annotations

import numpy as np

from sim.collectives.base import Phase, ceil_log2, floor_log2, make_phase


def flat(p: int) -> np.ndarray:
    """The ``(1, p)`` matrix of one group holding ranks ``0..p-1`` in order."""
    return np.arange(p, dtype=np.int64)[None, :]


def _phase(groups: np.ndarray, src_pos: np.ndarray, dst_pos: np.ndarray, nbytes, steps: int = 1) -> Phase:
    src = groups[:, src_pos].ravel()
    dst = groups[:, dst_pos].ravel()
    return make_phase(src, dst, nbytes, steps)


def ring(groups: np.ndarray, chunk: float, steps: int) -> list[Phase]:
    """Position i sends ``chunk`` bytes to i+1 (mod q), ``steps`` times: one phase (a ring RS or AG)."""
    q = groups.shape[1]
    if q < 2 or steps < 1:
        return []
    pos = np.arange(q)
    return [_phase(groups, pos, (pos + 1) % q, chunk, steps)]


def bruck_allgather(groups: np.ndarray, block: float) -> list[Phase]:
    """Bruck et al. (1997) all-gather of q blocks of ``block`` bytes, any q.

    Step k = 0..⌈log2 q⌉-1: position i sends the ``min(2^k, q - 2^k)`` blocks it holds to i - 2^k (mod q).
    The blocks sent add up to q - 1 per position.
    """
    q = groups.shape[1]
    pos = np.arange(q)
    out = []
    for k in range(ceil_log2(q)):
        d = 1 << k
        out.append(_phase(groups, pos, (pos - d) % q, min(d, q - d) * block))
    return out


def bruck_reduce_scatter(groups: np.ndarray, block: float) -> list[Phase]:
    """Reduce-scatter into q blocks of ``block`` bytes, any q: Bruck's all-gather run backwards.

    A reduce-scatter is the dual (transpose) of an all-gather: reverse the order of the steps and the
    direction of every transfer, and copies become sums (Chan et al. 2007, §4 "duality"). Step
    k = ⌈log2 q⌉-1..0: position i sends ``min(2^k, q - 2^k)`` partially reduced blocks to i + 2^k (mod q).
    """
    q = groups.shape[1]
    pos = np.arange(q)
    out = []
    for k in reversed(range(ceil_log2(q))):
        d = 1 << k
        out.append(_phase(groups, pos, (pos + d) % q, min(d, q - d) * block))
    return out


def recursive_doubling_allgather(groups: np.ndarray, block: float) -> list[Phase]:
    """All-gather by recursive doubling (q a power of two): step k swaps 2^k blocks with position i XOR 2^k."""
    q = groups.shape[1]
    pos = np.arange(q)
    return [_phase(groups, pos, pos ^ (1 << k), (1 << k) * block) for k in range(floor_log2(q))]


def recursive_halving_reduce_scatter(groups: np.ndarray, nbytes: float) -> list[Phase]:
    """Reduce-scatter by recursive halving (q a power of two) of an ``nbytes`` vector.

    Step k: distance d = q / 2^(k+1); position i sends the half of its current part that i XOR d keeps,
    ``nbytes · d / q`` bytes (n/2, n/4, ..., n/q).
    """
    q = groups.shape[1]
    pos = np.arange(q)
    out = []
    for k in range(floor_log2(q)):
        d = q >> (k + 1)
        out.append(_phase(groups, pos, pos ^ d, nbytes * d / q))
    return out


def recursive_doubling_allreduce(groups: np.ndarray, nbytes: float) -> list[Phase]:
    """All-reduce by recursive doubling (q a power of two): step k swaps the whole vector with i XOR 2^k."""
    q = groups.shape[1]
    pos = np.arange(q)
    return [_phase(groups, pos, pos ^ (1 << k), nbytes) for k in range(floor_log2(q))]


def binomial_reduce(groups: np.ndarray, nbytes: float) -> list[Phase]:
    """Binomial-tree reduce to position 0, any q: step k = 0..⌈log2 q⌉-1, positions i ≡ 2^k (mod 2^(k+1))
    send their partial result (``nbytes``) to i - 2^k."""
    q = groups.shape[1]
    out = []
    for k in range(ceil_log2(q)):
        d = 1 << k
        src = np.arange(d, q, 2 * d)
        out.append(_phase(groups, src, src - d, nbytes))
    return out


def binomial_broadcast(groups: np.ndarray, nbytes: float) -> list[Phase]:
    """Binomial-tree broadcast from position 0, any q: step k = ⌈log2 q⌉-1..0, positions i ≡ 0
    (mod 2^(k+1)) with i + 2^k < q send the vector to i + 2^k."""
    q = groups.shape[1]
    out = []
    for k in reversed(range(ceil_log2(q))):
        d = 1 << k
        src = np.arange(0, q - d, 2 * d)
        out.append(_phase(groups, src, src + d, nbytes))
    return out


def fold(p: int, nbytes: float) -> tuple[Phase, np.ndarray, Phase]:
    """MPICH's fold of a non-power-of-two group onto its largest power of two p' (Thakur et al. 2005, §4.4).

    With r = p - p': before, each even rank i < 2r sends its whole vector to i + 1, which reduces; the
    survivors (odd ranks < 2r, and every rank ≥ 2r, p' in all) run the power-of-two algorithm; after,
    each odd rank i < 2r sends the result to i - 1.

    Returns
    -------
    pre : Phase
    survivors : ndarray of int, shape (1, p')
        The ranks that take part in the power-of-two algorithm, as a :func:`flat`-style group matrix.
    post : Phase
    """
    r = p - (1 << floor_log2(p))
    even = np.arange(0, 2 * r, 2)
    survivors = np.concatenate([even + 1, np.arange(2 * r, p)])[None, :]
    return make_phase(even, even + 1, nbytes), survivors, make_phase(even + 1, even, nbytes)
