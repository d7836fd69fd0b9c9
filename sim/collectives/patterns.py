"""Communication patterns the algorithms are built from, vectorized over many groups at once.

Every function takes ``groups``, an int array of shape ``(g, q)``: ``g`` groups of ``q`` local ranks each
(row ``i`` lists the ranks of group ``i`` in pattern order). The pattern runs on positions ``0..q-1`` of
every row at the same time, so one :class:`~sim.collectives.base.Phase` holds the transfers of all groups
(the hierarchical all-reduce runs L rings, one per node, in one phase). :func:`flat` gives the one-group
matrix of a whole communicator. Work is one numpy call per step, never a Python loop per rank.

Only gather-type patterns (all-gather, broadcast) are written here; a reduce-type pattern is the *dual*
of one (:func:`dual`): the same steps in reverse order with every transfer turned round, the same byte
counts, copies becoming sums (Chan, Heimlich, Purkayastha & van de Geijn 2007, "Collective communication:
theory, practice, and experience", §4, on the duality of all-gather/reduce-scatter and broadcast/reduce).
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



def recursive_doubling_allgather(groups: np.ndarray, block: float) -> list[Phase]:
    """All-gather by recursive doubling (q a power of two): step k = 0..log2 q - 1 swaps the 2^k blocks
    gathered so far with position i XOR 2^k — distance doubling *and* vector doubling, so the largest
    message (q/2 blocks) travels the farthest.

    This is MPICH's stand-alone ``MPI_Allgather`` (``allgather_intra_recursive_doubling.c``: ``mask = 1``
    upwards; Thakur, Rabenseifner & Gropp 2005, §4.1), whose doubling keeps every rank's blocks contiguous
    in rank order. Its dual (:func:`dual`) is MPICH's ``MPI_Reduce_scatter`` by recursive halving
    (``reduce_scatter_intra_recursive_halving.c``: ``mask = pof2/2`` downwards, n/2 first).
    """
    q = groups.shape[1]
    pos = np.arange(q)
    return [_phase(groups, pos, pos ^ (1 << k), (1 << k) * block) for k in range(floor_log2(q))]


def distance_halving_allgather(groups: np.ndarray, block: float) -> list[Phase]:
    """All-gather by recursive vector doubling with distance *halving* (q a power of two): step
    k = 0..log2 q - 1 swaps the 2^k blocks gathered so far with position i XOR q/2^(k+1), so the largest
    message (q/2 blocks) travels the shortest distance.

    This is the all-gather half of Rabenseifner's all-reduce as MPICH and Open MPI run it (MPICH
    ``allreduce_intra_reduce_scatter_allgather.c``: the all-gather loop runs ``mask`` from pof2/2 down to 1;
    Open MPI ``coll_base_allreduce.c``, ``ompi_coll_base_allreduce_intra_redscat_allgather``, step 3:
    "recursive vector doubling and distance halving"). Its dual is their reduce-scatter half: recursive
    vector halving with distance doubling (``mask = 1`` upwards, n/2 to the neighbour first). Rank i ends
    the reduce-scatter with the block whose index is i bit-reversed, which the all-gather undoes.
    """
    q = groups.shape[1]
    pos = np.arange(q)
    L = floor_log2(q)
    return [_phase(groups, pos, pos ^ (q >> (k + 1)), (1 << k) * block) for k in range(L)]



def recursive_doubling_allreduce(groups: np.ndarray, nbytes: float) -> list[Phase]:
    """All-reduce by recursive doubling (q a power of two): step k swaps the whole vector with i XOR 2^k.

    Distance doubling, as MPICH's ``allreduce_intra_recursive_doubling.c`` (``mask = 1`` upwards) and Open
    MPI's ``ompi_coll_base_allreduce_intra_recursivedoubling``; every message is the whole vector.
    """
    q = groups.shape[1]
    pos = np.arange(q)
    return [_phase(groups, pos, pos ^ (1 << k), nbytes) for k in range(floor_log2(q))]



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


def _sorted_phase(src: np.ndarray, dst: np.ndarray, nbytes: np.ndarray, steps: int) -> Phase:
    """A phase with its transfers in ascending ``src`` order (stable), the order the patterns here use."""
    order = np.argsort(src, kind="stable")
    return make_phase(src[order], dst[order], nbytes[order], steps)


def dual(phases: list[Phase]) -> list[Phase]:
    """The dual (transpose) of a pattern: the phases in reverse order, every transfer turned round.

    The dual of an all-gather is a reduce-scatter and the dual of a broadcast is a reduce (and back): a
    block that a gather copies from s to d is, in the dual, a partial sum that d sends to s, in the
    mirrored step (Chan et al. 2007, §4). Byte counts, steps and hence the uncontended time are those of
    the original; which links are loaded in which step is reversed. Transfers are listed by sender.

    Examples
    --------
    >>> bcast = binomial_broadcast(flat(4), 8.0)          # 0 -> 2, then 0 -> 1 and 2 -> 3
    >>> [(ph.src.tolist(), ph.dst.tolist()) for ph in dual(bcast)]
    [([1, 3], [0, 2]), ([2], [0])]
    """
    return [_sorted_phase(ph.dst, ph.src, ph.nbytes, ph.steps) for ph in reversed(phases)]


def mirror(phases: list[Phase], q: int) -> list[Phase]:
    """``phases`` with every local rank r renamed q - 1 - r (a reflection of the group).

    The dual of a ring that passes to the right is a ring that passes to the left; mirroring turns it back
    into the right-passing ring that MPI libraries use for both (Open MPI's ring all-gather and ring
    reduce-scatter both send to rank + 1), transfer for transfer.
    """
    return [_sorted_phase(q - 1 - ph.src, q - 1 - ph.dst, ph.nbytes, ph.steps) for ph in phases]


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
