"""Builders: node, edge and degree counts against closed forms, diameters, connectivity, metadata."""

from __future__ import annotations

import networkx as nx
import pytest

from sim.errors import UserError
from topologies import fattree, ideal, leaf_spine, materialize_full_mesh, star


def _count(G, kind):
    return sum(1 for _, k in G.nodes(data="kind") if k == kind)


def _host_diameter(G):
    hosts = G.graph["hosts"]
    return max(max(nx.single_source_shortest_path_length(G, h)[t] for t in hosts) for h in hosts)


PAPER_BW, PAPER_LAT = 6 * 2**30, 2e-6  # the builders' defaults: Cori's 1/β = 6 GiB/s, α = 2 µs (Gholami et al.)


def _check_common(G, n_hosts, bandwidth_Bps=PAPER_BW, latency_s=PAPER_LAT):
    assert G.graph["hosts"] == tuple(range(n_hosts))
    assert all(G.nodes[h]["kind"] == "host" for h in G.graph["hosts"])
    for _, _, d in G.edges(data=True):
        assert (d["bandwidth_Bps"], d["latency_s"]) == (bandwidth_Bps, latency_s)
    if G.number_of_edges():
        assert nx.is_connected(G)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_ideal_is_an_implicit_full_mesh(n):
    G = ideal(n, bandwidth_Bps=3e9, latency_s=4e-6)
    _check_common(G, n, 3e9, 4e-6)
    assert G.number_of_edges() == 0 and G.graph["kind"] == "ideal" and G.graph["routing"] == "full_mesh"
    assert G.graph["full_mesh"] == {"bandwidth_Bps": 3e9, "latency_s": 4e-6}
    H = materialize_full_mesh(G)
    assert nx.is_isomorphic(H, nx.complete_graph(n))
    assert sorted(H.edges) == sorted(nx.complete_graph(n).edges)
    assert G.graph["bisection_Bps"] == (n // 2) * ((n + 1) // 2) * 3e9


@pytest.mark.parametrize("n", [1, 2, 9, 100])
def test_star_counts(n):
    G = star(n, bandwidth_Bps=1e9, latency_s=1e-6)
    _check_common(G, n, 1e9, 1e-6)
    assert _count(G, "switch") == 1 and G.number_of_edges() == n and G.degree["s0"] == n
    assert all(G.degree[h] == 1 for h in range(n))
    if n > 1:
        assert _host_diameter(G) == G.graph["diameter_hops"] == 2
        assert G.graph["alpha_s"] == 2 * 1e-6


@pytest.mark.parametrize("k", [2, 4, 6, 8])
def test_fattree_closed_forms(k):
    G = fattree(k)
    n = k**3 // 4
    _check_common(G, n)
    assert _count(G, "host") == n
    assert _count(G, "switch") == 5 * k**2 // 4
    assert G.number_of_edges() == 3 * k**3 // 4
    # every switch has radix k except the cores/aggs of k=2 corner case, which also have k ports
    assert all(G.degree[s] == k for s, kind in G.nodes(data="kind") if kind == "switch" and not s.startswith("core"))
    assert all(G.degree[f"core{c}"] == k for c in range((k // 2) ** 2))
    assert _host_diameter(G) == G.graph["diameter_hops"] == 6
    assert G.graph["bisection_Bps"] == n / 2 * G.graph["bandwidth_Bps"]


def test_fattree_rejects_odd_k():
    with pytest.raises(UserError, match="topology.k"):
        fattree(5)


@pytest.mark.parametrize(("n", "k", "R"), [(64, 8, 2), (64, 8, 1), (20, 8, 4), (5, 8, 8), (96, 16, 2)])
def test_leaf_spine_closed_forms(n, k, R):
    G = leaf_spine(n, k=k, oversubscription=R)
    _check_common(G, n)
    leaves, spines = -(-n // k), k // R
    assert _count(G, "switch") == leaves + spines
    assert G.number_of_edges() == n + leaves * spines
    assert all(G.degree[f"spine{s}"] == leaves for s in range(spines))
    # uplink capacity per leaf = k * bw / R: the oversubscription R of k host links
    bw = G.graph["bandwidth_Bps"]
    up = sum(G.edges["leaf0", f"spine{s}"]["bandwidth_Bps"] for s in range(spines))
    assert up == pytest.approx(k * bw / R)
    assert _host_diameter(G) == G.graph["diameter_hops"] == (4 if leaves > 1 else 2)


def test_leaf_spine_bad_oversubscription():
    with pytest.raises(UserError, match="oversubscription"):
        leaf_spine(16, k=8, oversubscription=3)
    with pytest.raises(UserError, match="oversubscription"):
        leaf_spine(16, k=8, oversubscription=0.5)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_host_counts(bad):
    with pytest.raises(UserError, match="topology.hosts"):
        star(bad)


def test_bad_link_parameters():
    with pytest.raises(UserError, match="topology.bandwidth"):
        ideal(4, bandwidth_Bps=0)
    with pytest.raises(UserError, match="topology.latency"):
        star(4, latency_s=-1e-6)
