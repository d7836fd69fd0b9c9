"""Network models on hand-built phase lists: closed forms, contention by hand, conservation, monotonicity.

These tests drive a model's session directly on a SimPy environment (no engine), with small local
algorithms registered under names starting with ``t_`` so that every expected time is a formula written
here. Tests of the real algorithm registry are in ``test_network_algorithms.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.network.base as netbase
from sim.collectives.base import Phase
from sim.errors import UserError
from sim.network import make_network
from topologies._graph import add_links, new_graph
from topologies.basic import ideal, star
from topologies.fattree import leaf_spine

MiB = 2**20


class TRing:
    """Ring all-reduce: reduce-scatter then all-gather, each p-1 steps of n/p to the right neighbour."""

    op, name = "allreduce", "t_ring"

    def check(self, p):
        pass

    def phases(self, p, nbytes, **kw):
        if p == 1:
            return []
        src = np.arange(p)
        ph = Phase(src, (src + 1) % p, np.full(p, nbytes / p), p - 1)
        return [ph, ph]

    def cost_s(self, p, nbytes, alpha_s, bandwidth_Bps, **kw):
        return 2 * (p - 1) * (alpha_s + nbytes / (p * bandwidth_Bps))


class TSend:
    """Member 0 sends n bytes to member 1 (a two-rank group)."""

    op, name = "broadcast", "t_send"

    def check(self, p):
        if p != 2:
            raise UserError("procs", f"{p}", "2")

    def phases(self, p, nbytes, **kw):
        return [Phase(np.array([0]), np.array([1]), np.array([float(nbytes)]), 1)]

    def cost_s(self, p, nbytes, alpha_s, bandwidth_Bps, **kw):
        return alpha_s + nbytes / bandwidth_Bps


class TChain:
    """Binomial-tree broadcast: in step s, members i < 2^s send n to i + 2^s (log2 p phases)."""

    op, name = "broadcast", "t_tree"

    def check(self, p):
        pass

    def phases(self, p, nbytes, **kw):
        out, d = [], 1
        while d < p:
            src = np.arange(min(d, p - d))
            out.append(Phase(src, src + d, np.full(len(src), float(nbytes)), 1))
            d *= 2
        return out

    def cost_s(self, p, nbytes, alpha_s, bandwidth_Bps, **kw):
        return int(np.ceil(np.log2(p))) * (alpha_s + nbytes / bandwidth_Bps) if p > 1 else 0.0


FAKES = {a.name: a for a in (TRing(), TSend(), TChain())}


@pytest.fixture(autouse=True)
def fake_algorithms(monkeypatch):
    real = netbase.get_algo

    def lookup(op, name):
        return FAKES[name] if name in FAKES else real(op, name)

    monkeypatch.setattr(netbase, "get_algo", lookup)


def run(model, collectives):
    """Start every collective at time 0 on one session; return each one's end time and the session."""
    env = simpy.Environment()
    session = model.session(env)
    ends = [None] * len(collectives)
    for i, (op, alg, group, nbytes) in enumerate(collectives):
        ev = session.collective(op, alg, tuple(group), float(nbytes))
        ev.callbacks.append(lambda _e, i=i: ends.__setitem__(i, env.now))
    env.run()
    return ends, session


# ---------------------------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("network", ["analytic", "flow", "step"])
@pytest.mark.parametrize("p", [2, 3, 8, 16])
def test_ring_allreduce_equals_formula_on_ideal(network, p):
    alpha, bw, n = 2e-6, 6 * 2**30, 64 * MiB
    model = make_network(network, ideal(p, bandwidth_Bps=bw, latency_s=alpha))
    (t,), _ = run(model, [("allreduce", "t_ring", range(p), n)])
    assert t == pytest.approx(2 * (p - 1) * (alpha + n / (p * bw)), rel=1e-9)


@pytest.mark.parametrize("network", ["flow", "step"])
@pytest.mark.parametrize("p", [2, 5, 8])
def test_ring_and_tree_on_star_use_the_two_link_path_latency(network, p):
    lat, bw, n = 1e-6, 12.5e9, 3 * MiB
    model = make_network(network, star(p, bandwidth_Bps=bw, latency_s=lat))
    assert model.alpha_s == pytest.approx(2 * lat)
    (t_ring, ), _ = run(model, [("allreduce", "t_ring", range(p), n)])
    assert t_ring == pytest.approx(2 * (p - 1) * (2 * lat + n / (p * bw)), rel=1e-9)
    (t_tree, ), _ = run(model, [("broadcast", "t_tree", range(p), n)])
    assert t_tree == pytest.approx(int(np.ceil(np.log2(p))) * (2 * lat + n / bw), rel=1e-9)


def test_group_of_one_takes_no_time():
    model = make_network("flow", ideal(4))
    (t,), _ = run(model, [("allreduce", "t_ring", [2], MiB)])
    assert t == 0.0


# ---------------------------------------------------------------------------------------------- contention
def dumbbell(lat, bw):
    """Hosts 0, 1 on switch a; hosts 2, 3 on switch b; one a-b link: every link bw, lat."""
    G = new_graph("custom", "shortest", 4)
    G.add_nodes_from(["a", "b"], kind="switch")
    add_links(G, [(0, "a"), (1, "a"), (2, "b"), (3, "b"), ("a", "b")], bw, lat)
    return G


@pytest.mark.parametrize("network", ["flow", "step"])
def test_two_flows_on_one_link_get_half_each(network):
    lat, bw, n = 1e-6, 1e9, 8e6
    model = make_network(network, dumbbell(lat, bw))
    ends, _ = run(model, [("broadcast", "t_send", (0, 2), n), ("broadcast", "t_send", (1, 3), n)])
    # both cross a->b for the whole transfer at bw/2; three links of latency
    assert ends == pytest.approx([3 * lat + n / (bw / 2)] * 2, rel=1e-12)
    # opposite directions of a full-duplex link do not share
    ends, _ = run(model, [("broadcast", "t_send", (0, 2), n), ("broadcast", "t_send", (3, 1), n)])
    assert ends == pytest.approx([3 * lat + n / bw] * 2, rel=1e-12)


def test_short_flow_leaves_and_the_long_one_speeds_up():
    lat, bw = 0.0, 1e9
    model = make_network("flow", dumbbell(lat, bw))
    ends, session = run(model, [("broadcast", "t_send", (0, 2), 1e6), ("broadcast", "t_send", (1, 3), 3e6)])
    # both at bw/2 until the short one is done at 1e6/(bw/2); then the long one has 3e6 - 1e6 left at bw
    t1 = 1e6 / (bw / 2)
    assert ends == pytest.approx([t1, t1 + (3e6 - 1e6) / bw], rel=1e-12)
    assert session.core.reratings == 2


@pytest.mark.parametrize("groups, shared", [(2, 1), (4, 2)])
def test_oversubscribed_leaf_spine_by_hand(groups, shared):
    # leaf/spine, k = 4 hosts per leaf, 2:1 -> S = 2 spines; pairs (i, 4 + i) send leaf0 -> leaf1.
    # d-mod-k: traffic to host d climbs to spine d mod 2, so destinations 4, 6 share the leaf0->spine0 link
    # and 5, 7 share leaf0->spine1: with 2 groups (d = 4, 5) each flow is alone; with 4, two per uplink.
    lat, bw, n = 1e-6, 1e9, 4e6
    G = leaf_spine(8, k=4, oversubscription=2, bandwidth_Bps=bw, latency_s=lat)
    model = make_network("flow", G)
    ends, _ = run(model, [("broadcast", "t_send", (i, 4 + i), n) for i in range(groups)])
    assert ends == pytest.approx([4 * lat + n / (bw / shared)] * groups, rel=1e-12)


def test_concurrent_groups_never_beat_running_alone():
    G = leaf_spine(16, k=4, oversubscription=2, bandwidth_Bps=1e9, latency_s=1e-6)
    model = make_network("flow", G)
    groups = [tuple(range(j, 16, 4)) for j in range(4)]  # each ring spans all four leaves
    together, _ = run(model, [("allreduce", "t_ring", g, 8 * MiB) for g in groups])
    for g, t in zip(groups, together, strict=True):
        (alone,), _ = run(model, [("allreduce", "t_ring", g, 8 * MiB)])
        assert t >= alone * (1 - 1e-12)
        # and never faster than the closed form with this ring's path latency (4 hops) and host bandwidth
        assert alone >= TRing().cost_s(4, 8 * MiB, 4e-6, 1e9) * (1 - 1e-12)


# ---------------------------------------------------------------------------------------------- conservation
@pytest.mark.parametrize("network", ["flow", "step"])
def test_bytes_delivered_equal_bytes_sent(network):
    p, n = 6, 6 * MiB
    model = make_network(network, star(p))
    _, session = run(model, [("allreduce", "t_ring", range(p), n), ("broadcast", "t_tree", range(p), n)])
    sent = model.bytes_sent("allreduce", "t_ring", tuple(range(p)), n).sum()
    sent += model.bytes_sent("broadcast", "t_tree", tuple(range(p)), n).sum()
    # ring: 2 (p-1) chunks of n/p per rank; binomial tree: p - 1 sends of n
    assert sent == pytest.approx(p * 2 * (p - 1) * n / p + (p - 1) * n, rel=1e-12)
    assert session.core.bytes_delivered == pytest.approx(sent, rel=1e-12)


# ---------------------------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(p=st.integers(2, 6), bw=st.floats(1e8, 1e11), lat=st.floats(0.0, 1e-4),
       more_bw=st.floats(1.0, 10.0), less_lat=st.floats(0.0, 1.0), network=st.sampled_from(["flow", "step"]),
       alg=st.sampled_from(["t_ring", "t_tree"]))
def test_alone_more_bandwidth_or_less_latency_never_slows(p, bw, lat, more_bw, less_lat, network, alg):
    """One collective with no other traffic: every transfer meets only its own collective's flows, which all
    speed up together, so a faster network never slows it. (With other traffic it can: see below.)"""
    op = "allreduce" if alg == "t_ring" else "broadcast"
    colls = [(op, alg, tuple(range(0, 2 * p, 2)), MiB)]
    G = leaf_spine(2 * p, k=p, oversubscription=1, bandwidth_Bps=bw, latency_s=lat)
    (t0,), _ = run(make_network(network, G), colls)
    for faster_bw, faster_lat in ((bw * more_bw, lat), (bw, lat * less_lat), (bw * more_bw, lat * less_lat)):
        faster = leaf_spine(2 * p, k=p, oversubscription=1, bandwidth_Bps=faster_bw, latency_s=faster_lat)
        (t1,), _ = run(make_network(network, faster), colls)
        assert t1 <= t0 * (1 + 1e-9)  # float noise of summed event times


def _two_rings_sharing_host7(model, delay_s, n):
    """Ring all-reduce (t_ring) on ranks 0..7 at time 0 and on ranks 8..15 ``delay_s`` later (session level)."""
    env = simpy.Environment()
    session = model.session(env)
    ends = [None, None]

    def start(i, group):
        ev = session.collective("allreduce", "t_ring", group, float(n))
        ev.callbacks.append(lambda _e: ends.__setitem__(i, env.now))

    start(0, tuple(range(8)))
    env.timeout(delay_s).callbacks.append(lambda _e: start(1, tuple(range(8, 16))))
    env.run()
    return ends, session


@pytest.mark.parametrize("network", ["flow", "step"])
def test_less_latency_can_slow_concurrent_collectives(network):
    """A true counterexample to "less latency never slows": two 8-rank ring all-reduces (14 steps each) on a
    star, rank 15 placed on host 7 so both rings cross host 7's two links; chunk time c = 100 µs.

    Path latency 2·50 µs = c: a step lasts 2c (bytes, then latency); ring B starts 3c after A, while A's
    chunks are in flight, so each ring sends while the other pays latency: no contention, B ends at
    3c + 14·2c = 31c. Path latency 2·37.5 µs = 0.75c: a step lasts 1.75c, A's step 2 starts 3.5c, in the
    middle of B's first chunk: they now contend and B ends later, although every link got faster."""
    c, p = 100e-6, 8
    n = c * 1e9 * p  # chunk n/p sent at 1 GB/s in c
    placement = list(range(15)) + [7]
    slow = make_network(network, star(16, bandwidth_Bps=1e9, latency_s=c / 2), placement=placement)
    fast = make_network(network, star(16, bandwidth_Bps=1e9, latency_s=0.375 * c), placement=placement)
    (_, b_slow), _ = _two_rings_sharing_host7(slow, 3 * c, n)
    (_, b_fast), _ = _two_rings_sharing_host7(fast, 3 * c, n)
    assert b_slow == pytest.approx(31 * c, rel=1e-12)
    assert b_fast > b_slow * (1 + 1e-3)


def test_a_fold_splits_while_overlapped_and_folds_again_after():
    """A 16-rank ring all-reduce (two phases of 15 steps, step = c + L with c = L = 50 µs) meets one 2-step-long
    transfer on host 7's downlink from 2.5 steps on: ``flow`` splits the phase at the step where the
    transfer starts, runs step by step while it lasts and folds the rest again; times equal ``step``."""
    c, p = 50e-6, 16
    n = c * 1e9 * p
    placement = list(range(17))
    G = star(17, bandwidth_Bps=1e9, latency_s=c / 2)
    ends = {}
    for network in ("flow", "step"):
        model = make_network(network, G, placement=placement)
        env = simpy.Environment()
        session = model.session(env)
        a = session.collective("allreduce", "t_ring", tuple(range(p)), n)
        a.callbacks.append(lambda _e, k=network, env=env: ends.__setitem__((k, "ring"), env.now))

        def send(_e, session=session, env=env, k=network):
            ev = session.collective("broadcast", "t_send", (16, 7), 2 * c * 1e9)  # 2c of bytes alone
            ev.callbacks.append(lambda _e: ends.__setitem__((k, "send"), env.now))

        env.timeout(2.5 * 2 * c).callbacks.append(send)
        env.run()
        if network == "flow":
            splits = session.core.splits
    assert ends["flow", "ring"] == pytest.approx(ends["step", "ring"], rel=1e-12)
    assert ends["flow", "send"] == pytest.approx(ends["step", "send"], rel=1e-12)
    # the transfer overlaps at most 4 steps of 2c: one split when it starts, one per overlapped step
    assert 1 <= splits <= 5


def test_bytes_delivered_equal_bytes_sent_when_folds_split():
    c = 100e-6
    n = c * 1e9 * 8
    model = make_network("flow", star(16, bandwidth_Bps=1e9, latency_s=c / 2), placement=list(range(15)) + [7])
    _, session = _two_rings_sharing_host7(model, 0.5 * 2 * c, n)
    assert session.core.splits > 0
    # two ring all-reduces: each rank sends 2 (p-1) chunks of n/p
    assert session.core.bytes_delivered == pytest.approx(2 * 8 * 2 * 7 * n / 8, rel=1e-12)


def test_runs_are_bit_identical():
    G = leaf_spine(16, k=4, oversubscription=2, bandwidth_Bps=1e9, latency_s=1e-6)
    colls = [("allreduce", "t_ring", tuple(range(j, 16, 4)), 3 * MiB) for j in range(4)]
    for network in ("flow", "step"):
        a, _ = run(make_network(network, G), colls)
        b, _ = run(make_network(network, G), colls)
        assert a == b


# ---------------------------------------------------------------------------------------------- factory
def test_factory_errors():
    with pytest.raises(UserError, match="analytic|flow|step"):
        make_network("packet", ideal(4))
    model = make_network("flow", ideal(4))
    with pytest.raises(UserError, match="procs: 5 exceeds the topology's 4 hosts"):
        model.check_ranks(5)
    with pytest.raises(UserError, match="placement"):
        make_network("flow", ideal(4), placement=[0, 1, 7])


def test_placement_maps_ranks_to_hosts():
    lat, bw, n = 1e-6, 1e9, 8e6
    # ranks 0, 1 placed on hosts 0 and 2, ranks 2, 3 on hosts 1 and 3: both sends cross a->b
    model = make_network("flow", dumbbell(lat, bw), placement=[0, 2, 1, 3])
    ends, _ = run(model, [("broadcast", "t_send", (0, 1), n), ("broadcast", "t_send", (2, 3), n)])
    assert ends == pytest.approx([3 * lat + n / (bw / 2)] * 2, rel=1e-12)


def test_placement_shorter_than_the_program():
    model = make_network("flow", ideal(4), placement=[0, 1])
    with pytest.raises(UserError, match="placement: places 2 ranks, not 3"):
        model.check_ranks(3)


def test_ecmp_reaches_the_router_and_stays_deterministic():
    G = leaf_spine(8, k=4, oversubscription=2, bandwidth_Bps=1e9, latency_s=1e-6)
    plain, spread = make_network("flow", G), make_network("flow", G, ecmp=True)
    assert not plain.router.ecmp and spread.router.ecmp
    colls = [("broadcast", "t_send", (i, 4 + i), 4e6) for i in range(4)]
    a, _ = run(spread, colls)
    b, _ = run(make_network("flow", G, ecmp=True), colls)
    assert a == b
    # whatever the hash picks, two spines carry four flows: no flow is slower than sharing with all four,
    # none faster than alone
    for t in a:
        assert 4e-6 + 4e6 / 1e9 * (1 - 1e-12) <= t <= 4e-6 + 4e6 / (1e9 / 4) * (1 + 1e-12)


def reference_fluid(paths, nbytes, latency, capacity):
    """Independent fluid simulation: plain Python, full max-min recomputation at every finish.

    All flows start at 0; returns each flow's arrival time (send end + latency).
    """
    rem = dict(enumerate(nbytes))
    t, arrive = 0.0, [0.0] * len(nbytes)
    while rem:
        # progressive filling, one link at a time
        rate, left = {}, {link: capacity[link] for f in rem for link in paths[f]}
        while len(rate) < len(rem):
            share = {}
            for link, cap in left.items():
                users = [f for f in rem if f not in rate and link in paths[f]]
                if users:
                    share[link] = cap / len(users)
            link = min(share, key=lambda k: (share[k], k))
            level = share[link]
            for f in [f for f in rem if f not in rate and link in paths[f]]:
                rate[f] = level
                for other in paths[f]:
                    left[other] -= level
        dt = min(rem[f] / rate[f] for f in rem)
        t += dt
        for f in list(rem):
            rem[f] -= rate[f] * dt
            if rem[f] <= 1e-9 * nbytes[f]:
                arrive[f] = t + latency[f]
                del rem[f]
    return arrive


@settings(max_examples=20, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.floats(1e5, 1e7)), min_size=1, max_size=10))
def test_flow_core_matches_an_independent_fluid_simulation(pairs):
    pairs = [(a, b, n) for a, b, n in pairs if a != b]
    if not pairs:
        return
    G = leaf_spine(12, k=4, oversubscription=2, bandwidth_Bps=1e9, latency_s=1e-6)
    model = make_network("flow", G, placement=[h for a, b, _ in pairs for h in (a, b)])
    ends, _ = run(model, [("broadcast", "t_send", (2 * i, 2 * i + 1), n) for i, (_, _, n) in enumerate(pairs)])
    router = model.router
    paths = [set(router.route(a, b).tolist()) for a, b, _ in pairs]
    latency = [router.path_latency_s(a, b) for a, b, _ in pairs]
    expected = reference_fluid(paths, [n for _, _, n in pairs], latency, router.capacity_Bps.tolist())
    assert ends == pytest.approx(expected, rel=1e-9)
