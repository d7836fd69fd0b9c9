"""Rabenseifner's all-reduce on contended networks: the order of its steps, derived by hand.

MPICH (``allreduce_intra_reduce_scatter_allgather.c``) and Open MPI (``coll_base_allreduce.c``,
``ompi_coll_base_allreduce_intra_redscat_allgather``) run the reduce-scatter half by recursive vector
halving with distance *doubling* — step k exchanges n/2^(k+1) bytes with the rank XOR 2^k — and the
all-gather half in the reverse order (Thakur, Rabenseifner & Gropp 2005, §4.4). That is ``rabenseifner``.
``rabenseifner_far`` runs the same steps with the distances reversed: n/2^(k+1) bytes to the rank XOR
p/2^(k+1). On uncontended links both cost the closed form (tests/test_network_algorithms.py); here the
expected times of both, under ``flow`` and ``step``, are derived from the link bandwidth b, the per-link
latency λ and the routes, step by step, for a power-of-two group of p = 2^L ranks on consecutive hosts.

Ring (``ring`` kind, p hosts, full-duplex links, shortest route, a tie of p/2 hops goes forward): in an
XOR exchange at distance d, the ranks of each block [2dm, 2dm + 2d) pair up across its middle; the d
forward flows (from 2dm .. 2dm+d-1) all cross the link 2dm+d-1 → 2dm+d and no link carries more, and so
do the d backward ones in the other direction (for d = p/2 all p flows go forward, d on every link). So
every flow gets b/d and the step costs d·λ + d·m/b for messages of m bytes.

Leaf/spine (``fattree:k=K,oversubscription=R``: K hosts per leaf, S = K/R spines, host h on leaf h div K,
d-mod-k routing): an exchange at distance d < K stays in the leaf (2 hops, one flow per host link):
2λ + m/b. At d ≥ K every host of a leaf sends to another leaf; its K flows go up the S uplinks, K/S = R
on each (their destinations are K consecutive hosts, spread evenly mod S), and come down likewise: R
flows share each uplink, 4 hops: 4λ + R·m/b.

The reduce-scatter's step k and the all-gather's step L-1-k move the same bytes over the same distance,
so an all-reduce costs twice its reduce-scatter half.
"""

from __future__ import annotations

import pytest

from sim.collectives import get_algorithm
from sim.engine import simulate_collective

MiB = 2**20
N = 64 * MiB
B = 10e9  # bytes/s per link and direction
LAT = 1e-6  # s per link


def steps(p: int, far: bool) -> list[tuple[int, float]]:
    """(XOR distance, message bytes) of the reduce-scatter half's steps: n/2, n/4, ..., n/p."""
    L = p.bit_length() - 1
    return [((p >> (k + 1)) if far else (1 << k), N / 2 ** (k + 1)) for k in range(L)]


def ring_time(p: int, far: bool) -> float:
    """2 × Σ_steps d·(λ + m/b)."""
    return 2 * sum(d * (LAT + m / B) for d, m in steps(p, far))


def leaf_spine_time(p: int, far: bool, k: int, r: int) -> float:
    """2 × Σ_steps (2λ + m/b if d < k else 4λ + R·m/b)."""
    return 2 * sum(2 * LAT + m / B if d < k else 4 * LAT + r * m / B for d, m in steps(p, far))


def sim(alg: str, p: int, topology: str, network: str, **kw) -> float:
    return simulate_collective("allreduce", alg, p, N, topology, network, **kw)["time_s"]


RING = f"ring:bandwidth={B},latency={LAT}"


@pytest.mark.parametrize("network", ["flow", "step"])
@pytest.mark.parametrize("p", [4, 8, 16])
def test_ring(network, p):
    mpi, far = ring_time(p, far=False), ring_time(p, far=True)
    # closed forms of the two sums: (p-1)λ + L·n/(2b) and (p-1)λ + (p²-1)/(3p)·n/b per half
    L = p.bit_length() - 1
    assert mpi == pytest.approx(2 * ((p - 1) * LAT + L * N / (2 * B)), rel=1e-12)
    assert far == pytest.approx(2 * ((p - 1) * LAT + (p * p - 1) / (3 * p) * N / B), rel=1e-12)
    assert sim("rabenseifner", p, RING, network) == pytest.approx(mpi, rel=1e-9)
    assert sim("rabenseifner_far", p, RING, network) == pytest.approx(far, rel=1e-9)


@pytest.mark.parametrize("network", ["flow", "step"])
def test_ring_row_major_groups(network):
    # 32 hosts, grid 16x2, the two model groups (row-major: hosts 0-15 and 16-31) at once: every route
    # of a group stays on its own half of the ring (at most 8 hops of 32), so each runs as on a 16-ring
    for alg, far in (("rabenseifner", False), ("rabenseifner_far", True)):
        t = sim(alg, 32, RING, network, grid="16x2", along="pr")
        assert t == pytest.approx(ring_time(16, far), rel=1e-9)


@pytest.mark.parametrize("network", ["flow", "step"])
@pytest.mark.parametrize(("p", "k", "grid"), [(16, 4, None), (32, 8, None), (32, 4, "16x2")])
def test_leaf_spine_4_to_1(network, p, k, grid):
    r = 4
    spec = f"fattree:k={k},oversubscription={r},bandwidth={B},latency={LAT}"
    group = p if grid is None else 16  # row-major model groups: 16 consecutive hosts, 4 whole leaves each
    mpi, far = leaf_spine_time(group, False, k, r), leaf_spine_time(group, True, k, r)
    kw = {} if grid is None else {"grid": grid, "along": "pr"}
    assert sim("rabenseifner", p, spec, network, **kw) == pytest.approx(mpi, rel=1e-9)
    assert sim("rabenseifner_far", p, spec, network, **kw) == pytest.approx(far, rel=1e-9)
    if (p, k) == (16, 4):
        # written out: the n/2 and n/4 steps stay in the leaf in MPI order and cross the 4:1 uplinks in
        # the far order; the n/8 and n/16 steps the other way round
        assert mpi == pytest.approx(2 * (2 * (2 * LAT) + 2 * (4 * LAT) + (N / 2 + N / 4 + 4 * N / 8 + 4 * N / 16) / B))
        assert far == pytest.approx(2 * (2 * (4 * LAT) + 2 * (2 * LAT) + (4 * N / 2 + 4 * N / 4 + N / 8 + N / 16) / B))


@pytest.mark.parametrize("network", ["flow", "step"])
def test_leaf_spine_strided_groups_every_step_crosses(network):
    # grid 4x8 on 32 hosts, k=4, R=4: the 4 batch groups (row-major placement: ranks i, i+4, ..., i+28)
    # have one member per leaf, so every step of both orders crosses the uplinks, which the 4 hosts of a
    # leaf (one per group) share: 4λ + 4·m/b per step, and the order no longer matters
    spec = f"fattree:k=4,oversubscription=4,bandwidth={B},latency={LAT}"
    want = 2 * sum(4 * LAT + 4 * m / B for _, m in steps(8, far=False))
    for alg in ("rabenseifner", "rabenseifner_far"):
        assert sim(alg, 32, spec, network, grid="4x8", along="pc") == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("network", ["flow", "step"])
def test_uncontended_star_is_the_closed_form_for_both_orders(network):
    # star: each host link carries one flow per direction in every XOR step, whatever its distance
    p = 16
    for alg in ("rabenseifner", "rabenseifner_far"):
        t = sim(alg, p, f"star:bandwidth={B},latency={LAT}", network)
        assert t == pytest.approx(get_algorithm("allreduce", alg).cost_s(p, N, 2 * LAT, B), rel=1e-9)
        assert t == pytest.approx(2 * (p.bit_length() - 1) * 2 * LAT + 2 * (p - 1) / p * N / B, rel=1e-9)
