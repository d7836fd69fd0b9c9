"""What the phases of every collective algorithm move: bytes per rank, who hears from whom, the one-send /
one-receive-per-step rule, and the phase arrays' types. Expected volumes are the textbook ones (Thakur,
Rabenseifner & Gropp 2005; Chan et al. 2007), written out per test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.collectives import OPS, algorithms_for, bytes_received_per_rank, bytes_sent_per_rank, get_algorithm

PS = [2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 64]
N = 6.0e6
PAIRS = [(op, name) for op in OPS for name in algorithms_for(op)]
POW2_ONLY = {("allgather", "recursive_doubling"), ("reduce_scatter", "recursive_halving")}


def pow2(p: int) -> bool:
    return p & (p - 1) == 0


def cases(op, name):
    if op == "send":  # a send's group is (sender, receiver)
        return [2]
    return [p for p in PS if (op, name) not in POW2_ONLY or pow2(p)]


def heard(phases, p: int) -> np.ndarray:
    """heard[i, j]: information from rank j can have reached rank i through the phases, in time order
    (each step, a destination learns everything its source knew before the step)."""
    know = np.eye(p, dtype=bool)
    for ph in phases:
        for _ in range(ph.steps):
            new = know.copy()
            for s, d in zip(ph.src.tolist(), ph.dst.tolist(), strict=True):
                new[d] |= know[s]
            know = new
    return know


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_phase_arrays_well_formed(op, name):
    algo = get_algorithm(op, name)
    for p in cases(op, name):
        for ph in algo.phases(p, N):
            assert ph.src.dtype == np.int64 and ph.dst.dtype == np.int64 and ph.nbytes.dtype == np.float64
            assert len(ph.src) == len(ph.dst) == len(ph.nbytes) > 0
            assert ph.steps >= 1
            assert (ph.src >= 0).all() and (ph.src < p).all() and (ph.dst >= 0).all() and (ph.dst < p).all()
            assert (ph.src != ph.dst).all()
            assert (ph.nbytes >= 0).all()
            assert not ph.src.flags.writeable and not ph.nbytes.flags.writeable  # phases are cached/shared
            if op != "halo":  # one send and one receive per rank per step
                assert len(np.unique(ph.src)) == len(ph.src)
                assert len(np.unique(ph.dst)) == len(ph.dst)


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_bytes_sent_equal_bytes_received(op, name):
    algo = get_algorithm(op, name)
    for p in cases(op, name):
        phases = algo.phases(p, N)
        sent, recv = bytes_sent_per_rank(phases, p), bytes_received_per_rank(phases, p)
        assert sent.sum() == pytest.approx(recv.sum(), rel=1e-12)
        manual = np.zeros(p)
        for ph in phases:
            for s, b in zip(ph.src.tolist(), ph.nbytes.tolist(), strict=True):
                manual[s] += b * ph.steps
        np.testing.assert_allclose(sent, manual, rtol=1e-12)


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_information_reaches_whom_it_must(op, name):
    algo = get_algorithm(op, name)
    for p in cases(op, name):
        if p > 31:
            continue
        h = heard(algo.phases(p, N), p)
        if op in ("allgather", "reduce_scatter", "allreduce", "alltoall"):
            assert h.all(), f"{name} {op} p={p}: some rank never hears from some other"
        elif op == "broadcast":
            assert h[:, 0].all()  # everyone hears from the root
        elif op == "reduce":
            assert h[0].all()  # the root hears from everyone
        elif op == "send":
            assert h[1, 0] and not h[0, 1]  # the receiver hears from the sender, not the other way


@pytest.mark.parametrize("name", ["ring", "recursive_doubling", "bruck", "paper"])
def test_allgather_volume(name):
    for p in cases("allgather", name):
        phases = get_algorithm("allgather", name).phases(p, N)
        # each rank receives the p-1 blocks of n/p it lacks, and sends as much
        np.testing.assert_allclose(bytes_received_per_rank(phases, p), (p - 1) / p * N, rtol=1e-12)
        np.testing.assert_allclose(bytes_sent_per_rank(phases, p), (p - 1) / p * N, rtol=1e-12)


@pytest.mark.parametrize("name", ["ring", "recursive_halving", "bruck", "paper"])
def test_reduce_scatter_volume(name):
    for p in cases("reduce_scatter", name):
        phases = get_algorithm("reduce_scatter", name).phases(p, N)
        np.testing.assert_allclose(bytes_sent_per_rank(phases, p), (p - 1) / p * N, rtol=1e-12)
        np.testing.assert_allclose(bytes_received_per_rank(phases, p), (p - 1) / p * N, rtol=1e-12)


@pytest.mark.parametrize("name", ["ring", "paper"])
def test_allreduce_volume_bandwidth_optimal(name):
    for p in PS:
        phases = get_algorithm("allreduce", name).phases(p, N)
        np.testing.assert_allclose(bytes_sent_per_rank(phases, p), 2 * (p - 1) / p * N, rtol=1e-12)


def test_allreduce_volumes_of_fold_tree_and_hierarchical():
    for p in PS:
        q = 2 ** int(math.floor(math.log2(p)))
        r = p - q
        sent = bytes_sent_per_rank(get_algorithm("allreduce", "recursive_doubling").phases(p, N), p)
        # 2r ranks fold (one send each of n), the q survivors send n per doubling step
        assert sent.sum() == pytest.approx(2 * r * N + q * math.log2(q) * N, rel=1e-12)
        for name in ("rabenseifner", "rabenseifner_far"):
            sent = bytes_sent_per_rank(get_algorithm("allreduce", name).phases(p, N), p)
            assert sent.sum() == pytest.approx(2 * r * N + q * 2 * (q - 1) / q * N, rel=1e-12)
        sent = bytes_sent_per_rank(get_algorithm("allreduce", "tree").phases(p, N), p)
        # every non-root sends its partial once (reduce) and every non-root receives once (broadcast)
        assert sent.sum() == pytest.approx(2 * (p - 1) * N, rel=1e-12)
    for p, L in ((12, 3), (12, 4), (64, 8), (16, 16), (16, 1)):
        m = p // L
        sent = bytes_sent_per_rank(get_algorithm("allreduce", "hierarchical").phases(p, N, local_size=L), p)
        np.testing.assert_allclose(sent, 2 * (L - 1) / L * N + 2 * (m - 1) / m * (N / L), rtol=1e-12)


def test_hierarchical_keeps_intra_traffic_in_nodes():
    p, L = 24, 4
    phases = get_algorithm("allreduce", "hierarchical").phases(p, N, local_size=L)
    intra = [ph for ph in phases if (ph.src // L == ph.dst // L).all()]
    inter = [ph for ph in phases if (ph.src % L == ph.dst % L).all() and (ph.src // L != ph.dst // L).all()]
    assert len(intra) == 2 and len(inter) == 2
    for ph in inter:  # the n/L shard over m = p/L nodes: blocks of n/p
        np.testing.assert_allclose(ph.nbytes, N / p)


@pytest.mark.parametrize("op", ["broadcast", "reduce"])
def test_rooted_volume(op):
    for p in PS:
        phases = get_algorithm(op, "tree").phases(p, N)
        side = bytes_received_per_rank if op == "broadcast" else bytes_sent_per_rank
        want = np.full(p, N)
        want[0] = 0.0  # the root neither receives (broadcast) nor sends (reduce)
        np.testing.assert_allclose(side(phases, p), want)


@pytest.mark.parametrize("name", ["direct", "paper"])
def test_alltoall_direct_every_pair_once(name):
    for p in PS:
        pair = np.zeros((p, p))
        for ph in get_algorithm("alltoall", name).phases(p, N):
            assert ph.steps == 1
            np.add.at(pair, (ph.src, ph.dst), ph.nbytes)
        want = np.full((p, p), N / p)
        np.fill_diagonal(want, 0.0)
        np.testing.assert_allclose(pair, want)


def test_alltoall_bruck_power_of_two_volume():
    # Thakur et al. 2005 §4.6: Bruck's all-to-all sends n/2 per step for power-of-two p
    for p in (2, 4, 8, 16, 64):
        phases = get_algorithm("alltoall", "bruck").phases(p, N)
        for ph in phases:
            np.testing.assert_allclose(ph.nbytes, N / 2)


def test_halo_neighbours_1d_and_2d():
    halo = get_algorithm("halo", "paper")
    (ph,) = halo.phases(5, 10.0)  # chain 0-1-2-3-4, not periodic
    assert sorted(zip(ph.src.tolist(), ph.dst.tolist(), strict=True)) == \
        [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]
    np.testing.assert_allclose(bytes_sent_per_rank([ph], 5), [10, 20, 20, 20, 10])
    (ph,) = halo.phases(12, 10.0, dims=(3, 4))  # rows of 4, row-major
    pairs = set(zip(ph.src.tolist(), ph.dst.tolist(), strict=True))
    assert {d for s, d in pairs if s == 0} == {1, 4}
    assert {d for s, d in pairs if s == 5} == {1, 4, 6, 9}
    assert {d for s, d in pairs if s == 11} == {7, 10}
    # 2 * (horizontal 3*3 + vertical 2*4) transfers
    assert len(pairs) == len(ph.src) == 2 * (3 * 3 + 2 * 4)
    assert halo.phases(1, 10.0) == [] and halo.cost_s(1, 10.0, 1e-6, 1e9) == 0.0


def test_p1_is_free_for_every_algorithm():
    for op, name in PAIRS:
        algo = get_algorithm(op, name)
        assert algo.phases(1, N) == []
        assert algo.cost_s(1, N, 1e-6, 1e9) == 0.0
