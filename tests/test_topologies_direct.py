"""Rings, tori, dragonflies and multi-GPU nodes: closed-form sizes and their routing rules."""

from __future__ import annotations

import math
from itertools import combinations

import networkx as nx
import numpy as np
import pytest

from sim.errors import UserError
from topologies import Router, dragonfly, hier, ring, torus
from topologies.torus import torus_distance


def _links_formula(dims):
    n = math.prod(dims)
    return sum(n if d >= 3 else n // 2 if d == 2 else 0 for d in dims)


@pytest.mark.parametrize("dims", [(4, 4, 4), (8,), (2, 3), (3, 5, 2), (1, 6), (2, 2, 2), (1,), (4, 6)])
def test_torus_closed_forms(dims):
    G = torus(dims)
    n = math.prod(dims)
    assert G.number_of_nodes() == n and G.graph["hosts"] == tuple(range(n))
    assert all(k == "host" for _, k in G.nodes(data="kind"))
    assert G.number_of_edges() == _links_formula(dims)
    degree = sum(2 if d >= 3 else 1 if d == 2 else 0 for d in dims)
    assert all(deg == degree for _, deg in G.degree)
    assert G.graph["diameter_hops"] == sum(d // 2 for d in dims)
    if n > 1:
        assert nx.is_connected(G) and nx.diameter(G) == G.graph["diameter_hops"]


def test_torus_4x4x4_is_64_hosts_192_links():
    G = torus((4, 4, 4))
    assert (G.number_of_nodes(), G.number_of_edges()) == (64, 192)


def test_torus_bisection_closed_form_equals_min_cut():
    # even largest dimension M: 2 (n / M) links cross a cut through the middle of dimension 0 when it is the largest
    for dims in [(4, 4), (6, 3), (4, 2, 2)]:
        G = torus(dims, bandwidth_Bps=1.0)
        n, M = math.prod(dims), max(dims)
        assert G.graph["bisection_Bps"] == 2 * (n / M)
        half = set(range(n // 2))
        cut = sum(1 for u, v in G.edges if (u in half) != (v in half))
        assert cut == 2 * (n / M)


@pytest.mark.parametrize("dims", [(4, 4, 4), (5, 3), (6,), (2, 4), (7, 1, 2)])
def test_dor_route_length_is_torus_distance(dims):
    r = Router(torus(dims))
    n = math.prod(dims)
    for s in range(n):
        for d in range(n):
            # distance formula: sum over dimensions of min(|a_i - b_i|, d_i - |a_i - b_i|)
            assert len(r.route(s, d)) == torus_distance(dims, s, d)


def test_dor_goes_dimension_by_dimension():
    G = torus((4, 4))
    r = Router(G)
    ids = r.route(0, 6)  # (0,0) -> (1,2): dimension 0 first (+1), then dimension 1 (tie of 2: positive)
    nodes = [r.link_endpoints(int(i))[0] for i in ids] + [6]
    assert nodes == [0, 4, 5, 6]


def test_ring_counts_and_shorter_way():
    for n in (1, 2, 3, 8, 9):
        G = ring(n)
        assert G.number_of_edges() == (n if n >= 3 else n - 1)
        assert G.graph["kind"] == "ring"
    r = Router(ring(9))
    assert len(r.route(0, 5)) == 4 and len(r.route(0, 4)) == 4  # 9 - 5 and 4
    assert r.link_endpoints(int(r.route(0, 5)[0])) == (0, 8)


@pytest.mark.parametrize(("p", "a", "h"), [(1, 2, 1), (2, 4, 2), (4, 8, 4), (3, 1, 2)])
def test_dragonfly_closed_forms(p, a, h):
    G = dragonfly(p, a, h)
    g = a * h + 1
    n = p * a * g
    assert G.graph["hosts"] == tuple(range(n))
    assert sum(1 for _, k in G.nodes(data="kind") if k == "switch") == a * g
    assert G.number_of_edges() == n + g * a * (a - 1) // 2 + g * (g - 1) // 2
    routers = [v for v, k in G.nodes(data="kind") if k == "switch"]
    assert all(G.degree[r] == p + (a - 1) + h for r in routers)
    assert nx.is_connected(G)
    # exactly one global link between every pair of groups
    pairs = {tuple(sorted((int(u[1:].split(".")[0]), int(v[1:].split(".")[0]))))
             for u, v in G.edges if isinstance(u, str) and isinstance(v, str)}
    assert {x for x in pairs if x[0] != x[1]} == set(combinations(range(g), 2))


def test_dragonfly_minimal_routes():
    p, a, h = 2, 4, 2
    G = dragonfly(p, a, h)
    r = Router(G)
    n = len(G.graph["hosts"])
    lengths = []
    for s in range(0, n, 5):
        for d in range(n):
            ids = r.route(s, d)
            # minimal: at most one global hop, so at most host + local + global + local + host = 5 links
            assert len(ids) <= 5
            assert np.array_equal(r.route(d, s), (ids ^ 1)[::-1])  # symmetric rule
            lengths.append(len(ids))
            ends = [r.link_endpoints(int(i)) for i in ids]
            globals_ = sum(1 for u, v in ends if isinstance(u, str) and isinstance(v, str)
                           and u.split(".")[0] != v.split(".")[0])
            assert globals_ == (0 if s // (p * a) == d // (p * a) else 1)
    assert max(lengths) == G.graph["diameter_hops"] == 5


@pytest.mark.parametrize(("nodes", "g", "m"), [(2, 8, None), (3, 8, 2), (1, 4, None), (4, 6, 3)])
def test_hier_closed_forms(nodes, g, m):
    G = hier(nodes, g, 450e9, 50e9, nics_per_node=m)
    m_ = g if m is None else m
    n = nodes * g
    assert G.graph["hosts"] == tuple(range(n)) and G.graph["gpus_per_node"] == g
    assert all(G.nodes[h]["node_id"] == h // g for h in range(n))
    switches = nodes + ((1 + (nodes * m_ if m_ < g else 0)) if nodes > 1 else 0)
    assert sum(1 for _, k in G.nodes(data="kind") if k == "switch") == switches
    links = n + ((n + (nodes * m_ if m_ < g else 0)) if nodes > 1 else 0)
    assert G.number_of_edges() == links
    assert nx.is_connected(G)


def test_hier_routes_intra_by_nvswitch_and_inter_by_nic():
    G = hier(2, 4, 400.0, 50.0, intra_latency_s=1.0, inter_latency_s=3.0)
    r = Router(G)
    assert [r.link_endpoints(int(i)) for i in r.route(0, 3)] == [(0, "nvs0"), ("nvs0", 3)]
    assert [r.link_endpoints(int(i)) for i in r.route(1, 6)] == [(1, "fabric"), ("fabric", 6)]
    assert r.alpha_s == 6.0 == max(r.path_latency_s(s, d) for s in range(8) for d in range(8))
    assert r.bandwidth_Bps == 50.0


def test_hier_bisection_closed_form_equals_min_cut():
    from topologies.stats import bisection_Bps
    for m in (4, 2):
        G = hier(4, 4, 400.0, 50.0, nics_per_node=m)
        closed = G.graph.pop("bisection_Bps")
        assert closed == (4 / 2) * m * 50.0
        assert bisection_Bps(G) == pytest.approx(closed)


def test_hier_nics_must_divide_gpus():
    with pytest.raises(UserError, match="nics_per_node"):
        hier(2, 8, 1e9, 1e9, nics_per_node=3)


@pytest.mark.parametrize("bad", [(), (4, 0), 4])
def test_torus_bad_dims(bad):
    with pytest.raises(UserError, match="dims"):
        torus(bad)
