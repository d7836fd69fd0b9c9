"""Every collective algorithm: its closed form equals (1) the formula written here and (2) an independent
evaluation of its own phases on the uncontended ``ideal`` network, where one step of a phase costs
α + max(bytes of a transfer)/bw and a phase with k steps costs k times that.

Formulas: Thakur, Rabenseifner & Gropp 2005 (MPICH), Bruck et al. 1997, Gholami et al. 2018 (SPAA).
"""

from __future__ import annotations

import math

import pytest

from sim.collectives import ALGORITHMS, OPS, algorithms_for, get_algorithm, ideal_time_s

PS = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 64]
ALPHA, BW = 2e-6, 6e9  # Gholami et al. 2018: Cori, α = 2 µs, 1/β = 6 GB/s
SIZES = [0.0, 1.0, 4096.0, 1e6, 123456789.0]


def lg(p: int) -> int:
    """⌈log2 p⌉"""
    return math.ceil(math.log2(p))


def pow2(p: int) -> bool:
    return p & (p - 1) == 0


def fl(p: int) -> int:
    """⌊log2 p⌋"""
    return int(math.floor(math.log2(p)))


def bruck_alltoall_bytes(p: int, n: float) -> float:
    # Bruck et al. 1997: the block for relative rank j travels once per set bit of j
    return sum(bin(j).count("1") for j in range(1, p)) * n / p


# α = a, bw = b; every formula written out from its source
FORMULAS = {
    ("allgather", "ring"): lambda p, n, a, b: (p - 1) * (a + n / (p * b)),
    ("allgather", "recursive_doubling"): lambda p, n, a, b: math.log2(p) * a + (p - 1) / p * n / b,
    ("allgather", "bruck"): lambda p, n, a, b: lg(p) * a + (p - 1) / p * n / b,
    ("allgather", "paper"): lambda p, n, a, b: a * lg(p) + (1 / b) * (p - 1) / p * n,  # Gholami et al. 2018
    ("reduce_scatter", "ring"): lambda p, n, a, b: (p - 1) * (a + n / (p * b)),
    ("reduce_scatter", "recursive_halving"): lambda p, n, a, b: math.log2(p) * a + (p - 1) / p * n / b,
    ("reduce_scatter", "bruck"): lambda p, n, a, b: lg(p) * a + (p - 1) / p * n / b,
    ("reduce_scatter", "paper"): lambda p, n, a, b: 0.5 * 2 * (a * lg(p) + (1 / b) * (p - 1) / p * n),
    ("allreduce", "ring"): lambda p, n, a, b: 2 * (p - 1) * (a + n / (p * b)),
    ("allreduce", "recursive_doubling"): lambda p, n, a, b: (
        math.log2(p) * (a + n / b) if pow2(p) else (fl(p) + 2) * (a + n / b)),
    ("allreduce", "rabenseifner"): lambda p, n, a, b: (
        2 * math.log2(p) * a + 2 * (p - 1) / p * n / b if pow2(p)
        else 2 * (a + n / b) + 2 * fl(p) * a + 2 * (2 ** fl(p) - 1) / 2 ** fl(p) * n / b),
    # the same steps in the other order: the same closed form (Thakur et al. 2005, §4.4)
    ("allreduce", "rabenseifner_far"): lambda p, n, a, b: (
        2 * math.log2(p) * a + 2 * (p - 1) / p * n / b if pow2(p)
        else 2 * (a + n / b) + 2 * fl(p) * a + 2 * (2 ** fl(p) - 1) / 2 ** fl(p) * n / b),
    ("allreduce", "tree"): lambda p, n, a, b: 2 * lg(p) * (a + n / b),
    ("allreduce", "hierarchical"): lambda p, n, a, b: 2 * (p - 1) * (a + n / (p * b)),  # L = p: one ring
    ("allreduce", "paper"): lambda p, n, a, b: 2 * (a * lg(p) + (1 / b) * (p - 1) / p * n),  # Gholami et al. 2018
    ("broadcast", "tree"): lambda p, n, a, b: lg(p) * (a + n / b),
    ("broadcast", "paper"): lambda p, n, a, b: lg(p) * (a + n / b),
    ("reduce", "tree"): lambda p, n, a, b: lg(p) * (a + n / b),
    ("reduce", "paper"): lambda p, n, a, b: lg(p) * (a + n / b),
    ("alltoall", "direct"): lambda p, n, a, b: (p - 1) * (a + n / (p * b)),
    ("alltoall", "paper"): lambda p, n, a, b: (p - 1) * (a + n / (p * b)),
    ("alltoall", "bruck"): lambda p, n, a, b: lg(p) * a + bruck_alltoall_bytes(p, n) / b,
    ("halo", "direct"): lambda p, n, a, b: a + n / b,  # Gholami et al. 2018: α + βh per exchange
    ("halo", "paper"): lambda p, n, a, b: a + n / b,
    ("send", "direct"): lambda p, n, a, b: a + n / b,  # one message of n bytes
    ("send", "paper"): lambda p, n, a, b: a + n / b,
}

POW2_ONLY = {("allgather", "recursive_doubling"), ("reduce_scatter", "recursive_halving")}
PAIRS = [(op, name) for op in OPS for name in algorithms_for(op)]


def evaluate(phases, alpha_s: float, bandwidth_Bps: float) -> float:
    """Reference evaluator, plain Python: Σ over phases of steps × (α + largest transfer / bw)."""
    total = 0.0
    for ph in phases:
        sizes = [float(x) for x in ph.nbytes]
        if sizes:
            total += ph.steps * (alpha_s + max(sizes) / bandwidth_Bps)
    return total


def supported(op: str, name: str):
    if op == "send":  # a send's group is (sender, receiver)
        return [1, 2]
    return [p for p in PS if (op, name) not in POW2_ONLY or pow2(p)]


def test_every_algorithm_has_a_formula():
    assert set(FORMULAS) == set(PAIRS)
    assert all("paper" in ALGORITHMS[op] for op in OPS)


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_cost_equals_formula_and_phases(op, name):
    algo = get_algorithm(op, name)
    for p in supported(op, name):
        for n in SIZES:
            cost = algo.cost_s(p, n, ALPHA, BW)
            phases = algo.phases(p, n)
            if p == 1:
                assert cost == 0.0 and phases == []
                continue
            assert cost == pytest.approx(FORMULAS[op, name](p, n, ALPHA, BW), rel=1e-12, abs=0)
            assert cost == pytest.approx(evaluate(phases, ALPHA, BW), rel=1e-12, abs=0)
            assert cost == pytest.approx(ideal_time_s(phases, ALPHA, BW), rel=1e-12, abs=0)


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_other_alpha_and_bandwidth(op, name):
    algo = get_algorithm(op, name)
    for p in (2, 8, 12):
        if p not in supported(op, name):
            continue
        for a, b in ((0.0, 1.0), (1e-3, 1e12), (5e-7, 25e9)):
            n = 3e7
            assert algo.cost_s(p, n, a, b) == pytest.approx(FORMULAS[op, name](p, n, a, b), rel=1e-12)
            assert algo.cost_s(p, n, a, b) == pytest.approx(evaluate(algo.phases(p, n), a, b), rel=1e-12)


@pytest.mark.parametrize("p", [2, 4, 6, 12, 16, 64])
def test_hierarchical_every_local_size(p):
    algo = get_algorithm("allreduce", "hierarchical")
    n = 8e6
    for L in [d for d in range(1, p + 1) if p % d == 0]:
        m = p // L
        # intra-node ring RS + AG over L (n/L blocks), inter-node ring AR over m ranks of the n/L shard
        want = 2 * (L - 1) * (ALPHA + n / (L * BW)) + 2 * (m - 1) * (ALPHA + (n / L) / (m * BW))
        got = algo.cost_s(p, n, ALPHA, BW, local_size=L)
        assert got == pytest.approx(want, rel=1e-12)
        assert got == pytest.approx(evaluate(algo.phases(p, n, local_size=L), ALPHA, BW), rel=1e-12)
        # with one bw, every L moves what one flat ring moves (α = 0); L = 1 and L = p are the flat ring
        flat = get_algorithm("allreduce", "ring")
        assert algo.cost_s(p, n, 0.0, BW, local_size=L) == pytest.approx(flat.cost_s(p, n, 0.0, BW), rel=1e-12)
        if L in (1, p):
            assert got == pytest.approx(flat.cost_s(p, n, ALPHA, BW), rel=1e-12)


@pytest.mark.parametrize("dims", [(12,), (3, 4), (4, 3), (1, 12), (2, 2, 3)])
def test_halo_grid_costs_one_step(dims):
    for name in ("direct", "paper"):
        algo = get_algorithm("halo", name)
        p = math.prod(dims)
        cost = algo.cost_s(p, 1e5, ALPHA, BW, dims=dims)
        assert cost == pytest.approx(ALPHA + 1e5 / BW, rel=1e-12)
        assert cost == pytest.approx(evaluate(algo.phases(p, 1e5, dims=dims), ALPHA, BW), rel=1e-12)


def test_paper_allreduce_is_twice_paper_allgather():
    # Gholami et al. 2018: all-reduce 2(α⌈log2 p⌉ + β(p−1)/p n) = 2 × all-gather cost; reduce-scatter = half
    for p in PS[1:]:
        ag = get_algorithm("allgather", "paper").cost_s(p, 1e6, ALPHA, BW)
        rs = get_algorithm("reduce_scatter", "paper").cost_s(p, 1e6, ALPHA, BW)
        ar = get_algorithm("allreduce", "paper").cost_s(p, 1e6, ALPHA, BW)
        assert ar == pytest.approx(2 * ag, rel=1e-12)
        assert rs == pytest.approx(ag, rel=1e-12)


def test_event_counts():
    """Rings are one phase of p-1 steps (events do not grow with p); log-step algorithms ⌈log2 p⌉ phases."""
    p, n = 64, 1e6
    for op in ("allgather", "reduce_scatter"):
        (ph,) = get_algorithm(op, "ring").phases(p, n)
        assert ph.steps == p - 1 and len(ph.src) == p
        assert len(get_algorithm(op, "bruck").phases(p, n)) == lg(p)
    assert [ph.steps for ph in get_algorithm("allreduce", "ring").phases(p, n)] == [p - 1, p - 1]
    assert len(get_algorithm("allreduce", "paper").phases(31, n)) == 2 * lg(31)
    assert len(get_algorithm("allreduce", "recursive_doubling").phases(12, n)) == fl(12) + 2
    assert len(get_algorithm("allreduce", "rabenseifner").phases(12, n)) == 2 * fl(12) + 2
    assert len(get_algorithm("allreduce", "rabenseifner_far").phases(12, n)) == 2 * fl(12) + 2
    assert [ph.steps for ph in get_algorithm("allreduce", "hierarchical").phases(64, n, local_size=8)] == \
        [7, 7, 7, 7]
    assert len(get_algorithm("alltoall", "direct").phases(p, n)) == p - 1
    assert len(get_algorithm("halo", "paper").phases(p, n)) == 1


def test_p4096_builds():
    """Phases of every algorithm build at p = 4096 (vectorized; timed in bench/, not here)."""
    for op, name in PAIRS:
        if op == "send":  # two ranks, whatever the machine
            continue
        phases = get_algorithm(op, name).phases(4096, 1e6)
        assert phases and all(ph.src.max() < 4096 for ph in phases)
