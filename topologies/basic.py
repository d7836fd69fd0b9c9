"""Single-hop topologies: ``ideal`` (every host pair linked, the paper's α-β world) and ``star``.

``ideal`` does not materialize its n(n-1)/2 links: the graph holds the hosts and
``G.graph["full_mesh"] = {"bandwidth_Bps": ..., "latency_s": ...}``; the :class:`~topologies.routing.Router`
treats every ordered host pair as its own directed link. :func:`materialize_full_mesh` builds the edges
for small n.
"""

from __future__ import annotations

import networkx as nx

from topologies._graph import (
    DEFAULT_BANDWIDTH_BPS,
    DEFAULT_LATENCY_S,
    add_links,
    check_positive,
    check_positive_int,
    new_graph,
)


def ideal(n_hosts: int, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
          latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """Every pair of hosts linked directly by its own full-duplex link (implicit full mesh).

    Parameters
    ----------
    n_hosts : int
        Number of hosts, >= 1.
    bandwidth_Bps : float
        Bandwidth of each link, per direction (default 6 GiB/s, the paper's 1/β for Cori).
    latency_s : float
        Latency of each link (default 2 µs, the paper's α).

    Returns
    -------
    networkx.Graph
        ``n_hosts`` host nodes and no edges; ``G.graph["full_mesh"]`` holds the link parameters.
        Closed forms: links = n(n-1)/2, diameter = 1 hop (0 for n = 1), α = ``latency_s``,
        bisection = ⌊n/2⌋·⌈n/2⌉·bandwidth (every pair across the cut has its own link).

    Examples
    --------
    >>> G = ideal(4, bandwidth_Bps=1e9, latency_s=1e-6)
    >>> G.number_of_nodes(), G.number_of_edges(), G.graph["full_mesh"]["bandwidth_Bps"]
    (4, 0, 1000000000.0)
    >>> materialize_full_mesh(G).number_of_edges()
    6
    """
    n = check_positive_int(n_hosts, "topology.hosts")
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    return new_graph(
        "ideal", "full_mesh", n,
        full_mesh={"bandwidth_Bps": bw, "latency_s": lat},
        alpha_s=lat if n > 1 else 0.0,
        bandwidth_Bps=bw,
        diameter_hops=1 if n > 1 else 0,
        bisection_Bps=(n // 2) * ((n + 1) // 2) * bw,
    )


def materialize_full_mesh(G: nx.Graph) -> nx.Graph:
    """A copy of an ``ideal`` graph with its n(n-1)/2 links as real edges (for small n).

    The result is an ordinary graph routed by ``"shortest"`` (every host pair is one hop apart).

    Examples
    --------
    >>> H = materialize_full_mesh(ideal(5))
    >>> H.number_of_edges() == 5 * 4 // 2, H.graph["routing"]
    (True, 'shortest')
    """
    mesh = G.graph["full_mesh"]
    H = G.copy()
    del H.graph["full_mesh"]
    H.graph["routing"] = "shortest"
    hosts = H.graph["hosts"]
    add_links(H, ((hosts[i], hosts[j]) for i in range(len(hosts)) for j in range(i + 1, len(hosts))),
              mesh["bandwidth_Bps"], mesh["latency_s"])
    return H


def star(n_hosts: int, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
         latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """One non-blocking switch ``"s0"``; each host has one full-duplex link to it.

    Parameters
    ----------
    n_hosts : int
        Number of hosts, >= 1.
    bandwidth_Bps, latency_s : float
        Bandwidth (per direction) and latency of each host link.

    Returns
    -------
    networkx.Graph
        n hosts, 1 switch, n links. Closed forms: diameter = 2 hops (host-switch-host; 0 for n = 1),
        α = 2·latency, bisection = ⌊n/2⌋·bandwidth (the host links of the smaller half).

    Examples
    --------
    >>> G = star(8)
    >>> G.number_of_nodes(), G.number_of_edges(), G.degree["s0"]
    (9, 8, 8)
    """
    n = check_positive_int(n_hosts, "topology.hosts")
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    G = new_graph("star", "shortest", n, alpha_s=2 * lat if n > 1 else 0.0, bandwidth_Bps=bw,
                  diameter_hops=2 if n > 1 else 0, bisection_Bps=(n // 2) * bw)
    G.add_node("s0", kind="switch")
    add_links(G, ((h, "s0") for h in range(n)), bw, lat)
    return G
