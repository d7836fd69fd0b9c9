"""Dragonfly (Kim, Dally, Scott, Abts, ISCA 2008): groups of all-to-all routers, all-to-all between groups.

p hosts per router, a routers per group (linked all-to-all by local links), h global links per router,
g = a·h + 1 groups, so every pair of groups is joined by exactly one global link. Global ports use the
"absolute" arrangement: port j (0 <= j < a·h) of group i, on router ``j div h``, leads to group j if j < i,
else j + 1. Router r is node ``"r{group}.{index}"``; host x sits on router ``x div p`` (group
``x div (p·a)``). Minimal routing (local, global, local) is unique and symmetric.
"""

from __future__ import annotations

from itertools import combinations

import networkx as nx

from topologies._graph import (
    DEFAULT_BANDWIDTH_BPS,
    DEFAULT_LATENCY_S,
    add_links,
    check_positive,
    check_positive_int,
    new_graph,
)


def _port_router(group: int, target: int, h: int) -> int:
    """Index (within ``group``) of the router holding the global link to ``target``."""
    return (target if target < group else target - 1) // h


def dragonfly(p: int, a: int, h: int, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
              latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """A canonical dragonfly with all-to-all local and global links.

    Parameters
    ----------
    p, a, h : int
        Hosts per router, routers per group, global links per router (all >= 1).
    bandwidth_Bps, latency_s : float
        Bandwidth (per direction) and latency of every link (host, local and global).

    Returns
    -------
    networkx.Graph
        With g = a·h + 1: n = p·a·g hosts, a·g switches, links = n + g·a(a-1)/2 + g(g-1)/2; router degree
        p + (a-1) + h. The longest minimal route has 5 hops (host, local, global, local, host; 3 when
        a = 1), α = that many latencies. Routing ``"minimal"``.

    Examples
    --------
    >>> G = dragonfly(2, 4, 2)            # g = 9 groups
    >>> G.number_of_nodes() - 72, G.number_of_edges() == 72 + 9 * 6 + 36
    (36, True)
    """
    p = check_positive_int(p, "topology.p")
    a = check_positive_int(a, "topology.a")
    h = check_positive_int(h, "topology.h")
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    g = a * h + 1
    n = p * a * g
    hops = 5 if a > 1 else 3
    G = new_graph("dragonfly", "minimal", n, dragonfly={"p": p, "a": a, "h": h, "g": g},
                  alpha_s=hops * lat, bandwidth_Bps=bw, diameter_hops=hops)
    routers = [f"r{grp}.{i}" for grp in range(g) for i in range(a)]
    G.add_nodes_from(routers, kind="switch")
    add_links(G, ((x, routers[x // p]) for x in range(n)), bw, lat)
    add_links(G, ((f"r{grp}.{i}", f"r{grp}.{j}") for grp in range(g) for i, j in combinations(range(a), 2)),
              bw, lat)
    add_links(G, ((f"r{s}.{_port_router(s, t, h)}", f"r{t}.{_port_router(t, s, h)}")
                  for s, t in combinations(range(g), 2)), bw, lat)
    return G


def minimal_path(G: nx.Graph, src: int, dst: int, ecmp_hash: int | None = None) -> list:
    """Nodes on the minimal route: to the router holding the global link, across it, then to dst's router.

    Examples
    --------
    >>> G = dragonfly(1, 2, 1)  # 3 groups of 2 routers; group 0's link to group 2 is on router 1
    >>> minimal_path(G, 0, 5)
    [0, 'r0.0', 'r0.1', 'r2.0', 'r2.1', 5]
    """
    meta = G.graph["dragonfly"]
    p, a, h = meta["p"], meta["a"], meta["h"]
    rs, rd = src // p, dst // p
    gs, gd = rs // a, rd // a
    path: list = [src, f"r{gs}.{rs % a}"]
    if gs != gd:
        out, into = _port_router(gs, gd, h), _port_router(gd, gs, h)
        if out != rs % a:
            path.append(f"r{gs}.{out}")
        path.append(f"r{gd}.{into}")
    last = f"r{gd}.{rd % a}"
    if path[-1] != last:
        path.append(last)
    path.append(dst)
    return path
