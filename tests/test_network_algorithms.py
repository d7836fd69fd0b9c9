"""Every registered collective algorithm, simulated by ``flow`` and ``step``, equals its closed form.

On ``ideal`` (one private link per ordered host pair) and on ``star`` with equal links (α = the two-link
path latency, 1/β the host-link bandwidth) no transfer of these algorithms shares a directed link with
another at the same time, so the simulated time must equal ``cost_s`` (no contention). The
exception is the halo exchange on ``star``, where a rank's two (or four) neighbour sends share its one
host link: that contention is checked against a hand-computed time.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.collectives import algorithms_for, bytes_received_per_rank, get_algorithm
from sim.errors import UserError
from sim.network import make_network
from sim.program import COLLECTIVE_OPS
from topologies.basic import ideal, star
from topologies.hier import hier

MiB = 2**20
CASES = [(op, alg) for op in COLLECTIVE_OPS for alg in algorithms_for(op)]


def run_one(model, op, alg, p, nbytes, halo_dims=()):
    env = simpy.Environment()
    session = model.session(env)
    ev = session.collective(op, alg, tuple(range(p)), float(nbytes), halo_dims)
    out = []
    ev.callbacks.append(lambda _e: out.append(env.now))
    env.run()
    return out[0], session


def sizes_for(op, alg):
    out = []
    for p in (2, 3, 4, 6, 8):
        try:
            get_algorithm(op, alg).check(p)
        except UserError:
            continue
        out.append(p)
    return out


@pytest.mark.parametrize("network", ["flow", "step"])
@pytest.mark.parametrize("op, alg", CASES)
def test_equals_closed_form_on_ideal(op, alg, network):
    alpha, bw, n = 2e-6, 6 * 2**30, 3 * MiB
    for p in sizes_for(op, alg):
        model = make_network(network, ideal(p, bandwidth_Bps=bw, latency_s=alpha))
        t, session = run_one(model, op, alg, p, n)
        kw = dict(model.algo_kwargs(op, alg, tuple(range(p))))
        assert t == pytest.approx(get_algorithm(op, alg).cost_s(p, n, alpha, bw, **kw), rel=1e-9), p


@pytest.mark.parametrize("network", ["flow", "step"])
@pytest.mark.parametrize("op, alg", [c for c in CASES if c[0] != "halo"])
def test_equals_closed_form_on_star(op, alg, network):
    lat, bw, n = 1e-6, 12.5e9, 3 * MiB
    for p in sizes_for(op, alg):
        model = make_network(network, star(p, bandwidth_Bps=bw, latency_s=lat))
        t, _ = run_one(model, op, alg, p, n)
        assert t == pytest.approx(get_algorithm(op, alg).cost_s(p, n, 2 * lat, bw), rel=1e-9), p


@pytest.mark.parametrize("network", ["flow", "step"])
def test_halo_on_star_shares_the_host_link(network):
    lat, bw, n = 1e-6, 1e9, 2 * MiB
    # 1-D chain of 4: the two middle ranks send n to each of two neighbours through one host link -> bw/2
    # each; their inbound links also carry two flows. Time: path latency + 2n / bw (vs 2 lat + n/bw alone).
    model = make_network(network, star(4, bandwidth_Bps=bw, latency_s=lat))
    t, _ = run_one(model, "halo", "direct", 4, n)
    assert t == pytest.approx(2 * lat + 2 * n / bw, rel=1e-12)
    # 2-D 3x3 grid: the centre rank sends to 4 neighbours at once -> bw/4 each; the limit is 4n / bw
    model = make_network(network, star(9, bandwidth_Bps=bw, latency_s=lat))
    t, _ = run_one(model, "halo", "direct", 9, n, (3, 3))
    assert t == pytest.approx(2 * lat + 4 * n / bw, rel=1e-12)
    # the analytic model prices the exchange without contention
    t, _ = run_one(make_network("analytic", star(9, bandwidth_Bps=bw, latency_s=lat)), "halo", "direct", 9, n, (3, 3))
    assert t == pytest.approx(2 * lat + n / bw, rel=1e-12)


def test_ring_allreduce_formula_by_hand():
    p, alpha, bw, n = 8, 2e-6, 6 * 2**30, 64 * MiB
    for network in ("analytic", "flow", "step"):
        t, _ = run_one(make_network(network, ideal(p, bandwidth_Bps=bw, latency_s=alpha)), "allreduce", "ring", p, n)
        assert t == pytest.approx(2 * (p - 1) * (alpha + n / (p * bw)), rel=1e-9)


@pytest.mark.parametrize("op, alg", CASES)
def test_bytes_sent_equal_bytes_received_and_delivered(op, alg):
    p = sizes_for(op, alg)[-1]
    n = 5 * MiB
    model = make_network("flow", star(p))
    _, session = run_one(model, op, alg, p, n)
    sent = model.bytes_sent(op, alg, tuple(range(p)), n)
    kw = dict(model.algo_kwargs(op, alg, tuple(range(p))))
    received = bytes_received_per_rank(get_algorithm(op, alg).phases(p, n, **kw), p)
    assert sent.sum() == pytest.approx(np.sum(received), rel=1e-12)
    assert session.core.bytes_delivered == pytest.approx(sent.sum(), rel=1e-12)


def test_hierarchical_gets_gpus_per_node_when_node_aligned():
    G = hier(n_nodes=2, gpus_per_node=4, intra_Bps=450e9, inter_Bps=50e9)
    model = make_network("flow", G)
    assert dict(model.algo_kwargs("allreduce", "hierarchical", tuple(range(8)))) == {"local_size": 4}
    # a group that straddles nodes unevenly is not node-aligned: every member is its own node
    assert dict(model.algo_kwargs("allreduce", "hierarchical", (0, 1, 4, 5, 2, 3))) == {"local_size": 1}
    assert dict(model.algo_kwargs("allreduce", "ring", tuple(range(8)))) == {}
    assert dict(make_network("flow", ideal(8)).algo_kwargs("allreduce", "hierarchical", tuple(range(8)))) == {}
