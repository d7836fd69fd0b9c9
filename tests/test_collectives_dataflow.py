"""Block-level data flow of the collective algorithms: every transfer carries exactly the blocks that are new
to its receiver, and every rank ends with what the collective promises.

The simulation here is independent of the algorithms' code. A gather-type pattern is replayed step by step
on a boolean matrix ``know[r, j]`` (rank r holds block j): in each step a transfer s → d carries the blocks
s held before the step that d did not, and its byte count must be exactly that many blocks (no waste, no
shortfall). A reduce-type pattern (reduce-scatter, reduce) is checked through duality (Chan et al. 2007,
"Collective communication: theory, practice, and experience", §4): reversing the order of its steps and
the direction of every transfer must give a valid gather-type pattern with the same byte counts.
All-to-all (Bruck et al. 1997) is replayed with its own routing rule: in step k every rank forwards the
blocks whose remaining distance to their destination has bit k set.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.collectives import Phase, get_algorithm

PS = [2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 64]
POW2 = [p for p in PS if p & (p - 1) == 0]
N = 7.5e6


def transpose(phases: list[Phase]) -> list[Phase]:
    """The dual pattern: steps in reverse order, every transfer reversed."""
    return [Phase(ph.dst, ph.src, ph.nbytes, ph.steps) for ph in reversed(phases)]


def replay_gather(phases: list[Phase], know: np.ndarray, block: float) -> np.ndarray:
    """Replay ``phases`` from ``know`` (p × blocks, bool); assert each transfer moves exactly its new blocks.

    Returns the final ``know``.
    """
    know = know.copy()
    for ph in phases:
        src, dst, nbytes = ph.src.tolist(), ph.dst.tolist(), ph.nbytes.tolist()
        for _ in range(ph.steps):
            before = know.copy()
            for s, d, b in zip(src, dst, nbytes, strict=True):
                new = before[s] & ~before[d]
                assert new.sum() * block == pytest.approx(b, rel=1e-12, abs=1e-9), \
                    f"transfer {s}->{d} of {b} bytes, but {int(new.sum())} new blocks of {block}"
                know[d] |= new
    return know


def gathers_all(phases: list[Phase], p: int, block: float) -> bool:
    """``phases`` is an all-gather of p blocks of ``block`` bytes (rank r starts with block r)."""
    return bool(replay_gather(phases, np.eye(p, dtype=bool), block).all())


@pytest.mark.parametrize("name", ["ring", "recursive_doubling", "bruck", "paper"])
def test_allgather_moves_each_block_once_to_everyone(name):
    algo = get_algorithm("allgather", name)
    for p in POW2 if name == "recursive_doubling" else PS:
        assert gathers_all(algo.phases(p, N), p, N / p), f"{name} p={p}"


@pytest.mark.parametrize("name", ["ring", "recursive_halving", "bruck", "paper"])
def test_reduce_scatter_is_the_dual_of_an_allgather(name):
    algo = get_algorithm("reduce_scatter", name)
    for p in POW2 if name == "recursive_halving" else PS:
        assert gathers_all(transpose(algo.phases(p, N)), p, N / p), f"{name} p={p}"


@pytest.mark.parametrize(("name", "ps", "rs_phases"), [
    ("ring", PS, lambda p: 1),
    ("paper", PS, lambda p: math.ceil(math.log2(p))),
    ("rabenseifner", POW2, lambda p: int(math.log2(p))),
    ("rabenseifner_far", POW2, lambda p: int(math.log2(p))),
])
def test_allreduce_is_reduce_scatter_then_allgather(name, ps, rs_phases):
    algo = get_algorithm("allreduce", name)
    for p in ps:
        phases = algo.phases(p, N)
        k = rs_phases(p)
        assert gathers_all(transpose(phases[:k]), p, N / p), f"{name} p={p}: reduce-scatter half"
        assert gathers_all(phases[k:], p, N / p), f"{name} p={p}: all-gather half"


@pytest.mark.parametrize("name", ["rabenseifner", "rabenseifner_far"])
def test_rabenseifner_step_order(name):
    """MPICH's allreduce_intra_reduce_scatter_allgather.c: the reduce-scatter loop runs ``mask = 1, 2, 4,
    ...`` and rank i sends pof2/(2·mask) of the pof2 blocks to i XOR mask; the all-gather loop runs mask
    back down from pof2/2 (Open MPI's redscat_allgather does the same). ``rabenseifner_far`` pairs the
    same sizes with the distances reversed (MPICH's stand-alone recursive-halving reduce-scatter, mask =
    pof2/2 downwards, then recursive-doubling all-gather, mask = 1 upwards)."""
    algo = get_algorithm("allreduce", name)
    for p in POW2:
        L = int(math.log2(p))
        phases = algo.phases(p, N)
        assert len(phases) == 2 * L
        ranks = np.arange(p)
        for k in range(L):
            mask = p >> (k + 1) if name == "rabenseifner_far" else 1 << k
            blocks = p // (2 << k)  # n/2, n/4, ..., n/p
            for ph in (phases[k], phases[2 * L - 1 - k]):  # the reduce-scatter step and its mirror
                np.testing.assert_array_equal(ph.src, ranks)
                np.testing.assert_array_equal(ph.dst, ranks ^ mask)
                np.testing.assert_array_equal(ph.nbytes, blocks * N / p)


def test_recursive_doubling_allreduce_exchanges_whole_vectors():
    # power of two: the partial sums form an all-gather of the p contributions, each message the full n
    algo = get_algorithm("allreduce", "recursive_doubling")
    for p in POW2:
        phases = algo.phases(p, N)
        know = np.eye(p, dtype=bool)
        for ph in phases:
            np.testing.assert_array_equal(ph.nbytes, N)
            before = know.copy()
            for s, d in zip(ph.src.tolist(), ph.dst.tolist(), strict=True):
                assert not (before[s] & before[d]).any()  # partners hold disjoint sets of contributions
                know[d] |= before[s]
        assert know.all()


@pytest.mark.parametrize("p", PS)
def test_broadcast_and_reduce_trees(p):
    # one block (the vector): a sender must already hold it and the receiver must not
    start = np.zeros((p, 1), dtype=bool)
    start[0] = True
    for name in ("tree", "paper"):
        assert replay_gather(get_algorithm("broadcast", name).phases(p, N), start, N).all()
        assert replay_gather(transpose(get_algorithm("reduce", name).phases(p, N)), start, N).all()


@pytest.mark.parametrize(("p", "L"), [(4, 2), (8, 4), (12, 3), (12, 4), (16, 1), (16, 16), (24, 4)])
def test_hierarchical_levels(p, L):
    phases = get_algorithm("allreduce", "hierarchical").phases(p, N, local_size=L)
    node = np.arange(p) // L
    same_node = node[:, None] == node[None, :]
    same_local = (np.arange(p) % L)[:, None] == (np.arange(p) % L)[None, :]
    eye = np.eye(p, dtype=bool)
    # phases: intra RS (blocks n/L), inter RS + inter AG among the m = p/L ranks of one local index on the
    # n/L shard (blocks n/p), intra AG; the p-way ring with L ∈ {1, p} has empty levels
    intra = [ph for ph in phases if same_node[ph.src, ph.dst].all()]
    inter = [ph for ph in phases if not same_node[ph.src, ph.dst].any()]
    assert len(intra) + len(inter) == len(phases)
    assert len(intra) == (2 if L > 1 else 0) and len(inter) == (2 if p > L else 0)
    if intra:
        assert (replay_gather(transpose(intra[:1]), eye, N / L) == same_node).all()
        assert (replay_gather(intra[1:], eye, N / L) == same_node).all()
    if inter:
        assert (replay_gather(transpose(inter[:1]), eye, N / p) == same_local).all()
        assert (replay_gather(inter[1:], eye, N / p) == same_local).all()


@pytest.mark.parametrize("p", PS)
def test_alltoall_bruck_routing(p):
    """Bruck et al. 1997: block (origin o, destination t) starts at o; in step k the rank holding it forwards
    it by 2^k when bit k of its remaining distance (t - o) mod p is set. Each step's message must carry
    exactly the blocks so routed, n/p bytes each, and every block must end at its destination."""
    phases = get_algorithm("alltoall", "bruck").phases(p, N)
    o, t = np.divmod(np.arange(p * p), p)
    keep = o != t
    o, t = o[keep], t[keep]
    at = o.copy()
    dist = (t - o) % p
    assert len(phases) == math.ceil(math.log2(p))
    for k, ph in enumerate(phases):
        move = (dist >> k) & 1 == 1
        counts = np.bincount(at[move], minlength=p)
        sent = dict(zip(ph.src.tolist(), zip(ph.dst.tolist(), ph.nbytes.tolist(), strict=True), strict=True))
        for r in range(p):
            d, b = sent.get(r, ((r + (1 << k)) % p, 0.0))
            assert d == (r + (1 << k)) % p
            assert counts[r] * N / p == pytest.approx(b, rel=1e-12, abs=1e-9)
        at = np.where(move, (at + (1 << k)) % p, at)
    np.testing.assert_array_equal(at, t)
