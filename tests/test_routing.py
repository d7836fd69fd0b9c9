"""Router: link numbering, d-mod-k choices, symmetry, ECMP determinism, full-mesh link ids, α and β."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sim.errors import UserError
from topologies import Router, build_topology, fattree, ideal, leaf_spine, star


def _hosts_path(r: Router, s: int, d: int) -> list:
    """Nodes visited by route(s, d), rebuilt from the link endpoints."""
    ids = r.route(s, d)
    nodes = [r.link_endpoints(int(i))[0] for i in ids] + [r.link_endpoints(int(ids[-1]))[1]]
    return nodes


def test_link_table_is_two_directed_links_per_edge():
    G = star(5, bandwidth_Bps=1e9, latency_s=1e-6)
    r = Router(G)
    assert r.n_links == 2 * G.number_of_edges()
    assert r.capacity_Bps.dtype == np.float64 and np.all(r.capacity_Bps == 1e9)
    assert np.all(r.latency_s == 1e-6)
    for lid in range(r.n_links):
        u, v = r.link_endpoints(lid)
        assert G.has_edge(u, v)
        assert r.link_endpoints(lid ^ 1) == (v, u)  # the reverse direction is the partner id


def test_route_is_a_connected_path_between_the_hosts():
    G = fattree(4)
    r = Router(G)
    for s in range(16):
        for d in range(16):
            ids = r.route(s, d)
            assert ids.dtype == np.int64
            if s == d:
                assert len(ids) == 0
                continue
            nodes = _hosts_path(r, s, d)
            assert nodes[0] == s and nodes[-1] == d
            for a in range(len(ids) - 1):
                assert r.link_endpoints(int(ids[a]))[1] == r.link_endpoints(int(ids[a + 1]))[0]
            # hop counts: same edge switch 2, same pod 4, otherwise 6
            same_edge, same_pod = s // 2 == d // 2, s // 4 == d // 4
            assert len(ids) == (2 if same_edge else 4 if same_pod else 6)


def test_route_is_cached_and_read_only():
    r = Router(fattree(4))
    a = r.route(0, 9)
    assert r.route(0, 9) is a
    with pytest.raises(ValueError):
        a[0] = 1


def test_leaf_spine_dmodk_climbs_to_spine_d_mod_s():
    # the leaf-spine routing rule: host p on leaf p // k; traffic to host d climbs to spine d mod S, S = k / R
    k, R, n = 8, 2, 64
    S = k // R
    r = Router(leaf_spine(n, k=k, oversubscription=R))
    for s in range(0, n, 3):
        for d in range(n):
            nodes = _hosts_path(r, s, d) if s != d else [s]
            if s // k == d // k:
                assert len(nodes) == (3 if s != d else 1)
            else:
                assert nodes == [s, f"leaf{s // k}", f"spine{d % S}", f"leaf{d // k}", d]


def test_fattree_dmodk_up_ports():
    # Zahavi d-mod-k: edge -> agg (d mod k/2), agg -> core (d div k/2) mod k/2 of that agg's group
    k = 6
    half = k // 2
    r = Router(fattree(k))
    n = k**3 // 4
    for s in (0, 5, 20):
        for d in range(n):
            if s // (half * half) == d // (half * half):
                continue
            nodes = _hosts_path(r, s, d)
            agg = d % half
            core = agg * half + (d // half) % half
            assert nodes[2] == f"agg{s // (half * half)}.{agg}"
            assert nodes[3] == f"core{core}"


def test_dmodk_permutation_uses_each_core_down_link_once():
    # consequence of d-mod-k on a k-ary fat-tree: a shift permutation has no shared down link
    k = 4
    n = k**3 // 4
    r = Router(fattree(k))
    shift = n // 2  # every pair crosses pods
    links = np.concatenate(r.routes(np.arange(n), (np.arange(n) + shift) % n))
    assert len(np.unique(links)) == len(links)


def test_shortest_routes_are_symmetric():
    G = nx.random_regular_graph(3, 12, seed=1)
    H = nx.Graph(kind="custom", routing="shortest")
    for u in G.nodes:
        H.add_node(f"sw{u:02d}", kind="switch")
        H.add_node(u, kind="host")
        H.add_edge(u, f"sw{u:02d}", bandwidth_Bps=1e9, latency_s=1e-6)
    for u, v in G.edges:
        H.add_edge(f"sw{u:02d}", f"sw{v:02d}", bandwidth_Bps=1e9, latency_s=1e-6)
    r = Router(H)
    for s in range(12):
        for d in range(12):
            fwd, back = r.route(s, d), r.route(d, s)
            assert np.array_equal(back, (fwd ^ 1)[::-1])  # reverse links, reverse order
            hops = nx.shortest_path_length(H, s, d)
            assert len(fwd) == hops


def test_shortest_prefers_lower_latency_among_equal_hops():
    H = nx.Graph(routing="shortest")
    H.add_nodes_from([0, 1], kind="host")
    H.add_nodes_from(["a", "b"], kind="switch")
    H.add_edge(0, "a", bandwidth_Bps=1.0, latency_s=5.0)
    H.add_edge("a", 1, bandwidth_Bps=1.0, latency_s=5.0)
    H.add_edge(0, "b", bandwidth_Bps=1.0, latency_s=1.0)
    H.add_edge("b", 1, bandwidth_Bps=1.0, latency_s=1.0)
    r = Router(H)
    assert r.path_latency_s(0, 1) == 2.0
    assert r.alpha_s == 2.0  # computed: largest host-to-host path latency
    assert r.bandwidth_Bps == 1.0


def test_ecmp_is_deterministic_and_spreads():
    G = leaf_spine(64, k=8)
    a, b = Router(G, ecmp=True, seed=3), Router(G, ecmp=True, seed=3)
    spines_a = [_hosts_path(a, 0, d)[2] for d in range(8, 64)]
    spines_b = [_hosts_path(b, 0, d)[2] for d in range(8, 64)]
    assert spines_a == spines_b
    assert len(set(spines_a)) > 1
    c = Router(G, ecmp=True, seed=4)
    assert [_hosts_path(c, 0, d)[2] for d in range(8, 64)] != spines_a


def test_ecmp_shortest_stays_on_shortest_paths():
    G = fattree(4)
    G.graph["routing"] = "shortest"
    r = Router(G, ecmp=True, seed=7)
    for s, d in [(0, 15), (3, 9), (1, 2)]:
        assert len(r.route(s, d)) == nx.shortest_path_length(G, s, d)


def test_full_mesh_link_ids_are_assigned_on_first_use():
    r = Router(ideal(1000, bandwidth_Bps=2e9, latency_s=3e-6))
    assert r.n_links == 0 and len(r.capacity_Bps) == 0
    assert r.route(5, 7).tolist() == [0]
    assert r.route(7, 5).tolist() == [1]  # each ordered pair is its own directed link
    assert r.route(5, 7).tolist() == [0]
    assert r.n_links == 2
    assert r.capacity_Bps.tolist() == [2e9, 2e9] and r.latency_s.tolist() == [3e-6, 3e-6]
    assert r.link_endpoints(1) == (7, 5)
    assert r.alpha_s == 3e-6 and r.bandwidth_Bps == 2e9


def test_alpha_and_bandwidth_from_builders():
    # α = largest host-to-host path latency; β^-1 = smallest host-link bandwidth
    assert Router(star(4, 5e9, 1e-6)).alpha_s == 2e-6
    assert Router(fattree(4, 5e9, 1e-6)).alpha_s == pytest.approx(6e-6)
    r = Router(fattree(4, 5e9, 1e-6))
    assert max(r.path_latency_s(s, d) for s in range(16) for d in range(16)) == pytest.approx(r.alpha_s)
    assert r.bandwidth_Bps == 5e9


def test_incidence_matches_routes():
    r = Router(fattree(4))
    src, dst = np.arange(16), (np.arange(16) + 1) % 16
    flows, links = r.incidence(src, dst)
    paths = r.routes(src, dst)
    assert links.tolist() == np.concatenate(paths).tolist()
    assert np.bincount(flows).tolist() == [len(p) for p in paths]


def test_route_index_out_of_range():
    with pytest.raises(UserError, match="route"):
        Router(star(3)).route(0, 3)


def test_bad_graphs_are_user_errors():
    H = nx.Graph()
    H.add_node(0, kind="switch")
    with pytest.raises(UserError, match="no hosts"):
        Router(H)
    H = nx.Graph()
    H.add_nodes_from([0, 1], kind="host")
    H.add_edge(0, 1, bandwidth_Bps=0.0, latency_s=1e-6)
    with pytest.raises(UserError, match="bandwidth"):
        Router(H)
    H.add_edge(0, 1, bandwidth_Bps=1.0, latency_s=-1.0)
    with pytest.raises(UserError, match="latency"):
        Router(H)
    H = nx.Graph(routing="nope")
    H.add_node(0, kind="host")
    with pytest.raises(UserError, match="routing"):
        Router(H)


def test_build_topology_graph_works_with_router():
    r = Router(build_topology("fattree:k=4"))
    assert r.n_hosts == 16 and r.n_links == 96
