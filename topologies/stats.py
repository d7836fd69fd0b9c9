"""Size and capacity of a topology: hosts, switches, links, diameter (hops) and bisection bandwidth.

Closed forms from the builders (``G.graph["diameter_hops"]``, ``G.graph["bisection_Bps"]``) are used where
set. Otherwise the diameter is the longest host-to-host route in hops (for ``shortest`` routing, the graph
distance, by BFS from every host), and the bisection is the minimum cut between the first and second half
of the hosts in order (``networkx.minimum_cut_value`` on the graph with both directions of a link of
capacity ``bandwidth_Bps``), computed for graphs up to :data:`MAX_CUT_NODES` nodes and NaN above.
Bisection is in bytes/s in one direction across the cut.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

MAX_CUT_NODES = 4000


def count_links(G: nx.Graph) -> int:
    """Full-duplex links: n(n-1)/2 for an implicit full mesh, else the edges."""
    if "full_mesh" in G.graph:
        n = len(G.graph["hosts"])
        return n * (n - 1) // 2
    return G.number_of_edges()


def _hosts(G: nx.Graph) -> tuple:
    from topologies.routing import Router

    return G.graph.get("hosts") or Router(G).hosts


def diameter_hops(G: nx.Graph) -> int:
    """Longest host-to-host route in hops (closed form when the builder gave one)."""
    if "diameter_hops" in G.graph:
        return int(G.graph["diameter_hops"])
    hosts = _hosts(G)
    if len(hosts) < 2:
        return 0
    if G.graph.get("routing", "shortest") == "shortest":
        best = 0
        for h in hosts:
            dist = nx.single_source_shortest_path_length(G, h)
            best = max(best, max(dist[t] for t in hosts))
        return best
    from topologies.routing import Router

    r = Router(G)
    return max(len(r.route(s, d)) for s in range(len(hosts)) for d in range(len(hosts)))


def bisection_Bps(G: nx.Graph) -> float:
    """Bandwidth across the cut between the first and the second half of the hosts (closed form if set)."""
    if "bisection_Bps" in G.graph:
        return float(G.graph["bisection_Bps"])
    hosts = _hosts(G)
    if len(hosts) < 2:
        return 0.0
    if G.number_of_nodes() > MAX_CUT_NODES:
        return math.nan
    D = nx.DiGraph()
    for u, v, bw in G.edges(data="bandwidth_Bps"):
        D.add_edge(u, v, capacity=bw)
        D.add_edge(v, u, capacity=bw)
    src, dst = ("__cut_source__",), ("__cut_sink__",)
    half = len(hosts) // 2
    D.add_edges_from((src, h) for h in hosts[:half])  # no capacity attribute: infinite
    D.add_edges_from((h, dst) for h in hosts[half:])
    return float(nx.minimum_cut_value(D, src, dst))


def topology_stats(G: nx.Graph) -> dict[str, Any]:
    """``hosts, switches, links, diameter_hops, bisection_Bps`` of a topology graph.

    Examples
    --------
    >>> from topologies.fattree import fattree
    >>> s = topology_stats(fattree(4))
    >>> s["hosts"], s["switches"], s["links"], s["diameter_hops"]
    (16, 20, 48, 6)
    """
    hosts = _hosts(G)
    switches = sum(1 for _, k in G.nodes(data="kind") if k == "switch")
    return {"hosts": len(hosts), "switches": switches, "links": count_links(G),
            "diameter_hops": diameter_hops(G), "bisection_Bps": bisection_Bps(G)}
