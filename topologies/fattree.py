"""Fat-trees: the k-ary three-level fat-tree and the two-level leaf/spine, routed by d-mod-k.

Routing follows InfiniBand's ftree routing and SimGrid's fat-tree model: a packet climbs only as high as
needed, choosing its up-port from the *destination* index, then descends on the unique down path.

* Leaf/spine (``levels=2``): k hosts per leaf, S spines; host p sits on leaf ``p // k``; traffic to host d
  climbs to spine ``d mod S``.
* k-ary three-level tree (``levels=3``): edge switches have k/2 up-ports, aggregation switches k/2 up-ports.
  The up-port at level l is ``(d div (k/2)^(l-1)) mod (k/2)`` (Zahavi's d-mod-k for XGFT): the edge switch
  picks aggregation switch ``d mod k/2``, which picks its core ``(d div k/2) mod k/2``. So the k/2 hosts of
  an edge switch arrive through k/2 distinct aggregation switches, and each core-to-pod link carries one
  destination: a permutation routes without two destinations sharing a down link.

With ``ecmp`` the same up-ports are drawn from a hash of (src, dst, seed) instead (see
:class:`~topologies.routing.Router`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import networkx as nx

from sim.errors import UserError
from topologies._graph import (
    DEFAULT_BANDWIDTH_BPS,
    DEFAULT_LATENCY_S,
    add_links,
    check_positive,
    check_positive_int,
    new_graph,
)


def fattree(k: int, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
            latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """The k-ary three-level fat-tree of Al-Fares et al. (SIGCOMM 2008), non-blocking.

    k pods, each with k/2 edge switches (``"edge{pod}.{i}"``) of k/2 hosts and k/2 aggregation
    switches (``"agg{pod}.{i}"``); (k/2)² core switches (``"core{c}"``), core c linked to aggregation
    switch ``c div k/2`` of every pod. Host h is in pod ``h div (k/2)²`` on edge switch
    ``(h div k/2) mod k/2``. All links have the same bandwidth and latency.

    Parameters
    ----------
    k : int
        Switch radix, even, >= 2.
    bandwidth_Bps, latency_s : float
        Bandwidth (per direction) and latency of every link.

    Returns
    -------
    networkx.Graph
        Closed forms: k³/4 hosts, 5k²/4 switches, 3k³/4 links; diameter 6 hops; α = 6·latency;
        full bisection n/2 · bandwidth. Routing ``"dmodk"``.

    Examples
    --------
    >>> G = fattree(4)
    >>> sum(1 for _, a in G.nodes(data="kind") if a == "host"), G.number_of_edges()
    (16, 48)
    >>> sum(1 for _, a in G.nodes(data="kind") if a == "switch") == 5 * 4**2 // 4
    True
    """
    k = check_positive_int(k, "topology.k", minimum=2)
    if k % 2:
        raise UserError("topology.k", f"k={k} is odd", "an even switch radix k >= 2 (k=4 gives 16 hosts)")
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    half = k // 2
    n = k * half * half
    G = new_graph("fattree", "dmodk", n, fattree={"levels": 3, "k": k},
                  alpha_s=6 * lat, bandwidth_Bps=bw, diameter_hops=6, bisection_Bps=(n / 2) * bw)
    edges = [f"edge{p}.{i}" for p in range(k) for i in range(half)]
    aggs = [f"agg{p}.{i}" for p in range(k) for i in range(half)]
    cores = [f"core{c}" for c in range(half * half)]
    G.add_nodes_from(edges + aggs + cores, kind="switch")
    add_links(G, ((h, f"edge{h // (half * half)}.{(h // half) % half}") for h in range(n)), bw, lat)
    add_links(G, ((f"edge{p}.{i}", f"agg{p}.{a}") for p in range(k) for i in range(half) for a in range(half)),
              bw, lat)
    add_links(G, ((f"agg{p}.{c // half}", f"core{c}") for p in range(k) for c in range(half * half)), bw, lat)
    return G


def leaf_spine(n_hosts: int, k: int, oversubscription: float = 1.0,
               bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS, latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """Two-level leaf/spine fat-tree with k hosts per leaf and an R:1 oversubscription.

    ``S = k / R`` spines (``"spine{s}"``), ``L = ⌈n/k⌉`` leaves (``"leaf{l}"``), each leaf linked to every
    spine; host p on leaf ``p div k``. All links have the same bandwidth b, so a leaf's uplink capacity is
    S·b = k·b/R against k·b of host links.

    Parameters
    ----------
    n_hosts : int
        Number of hosts, >= 1 (the last leaf may be partly filled).
    k : int
        Hosts per leaf, >= 1.
    oversubscription : float
        R >= 1 with k / R a whole number of spines.
    bandwidth_Bps, latency_s : float
        Bandwidth (per direction) and latency of every link.

    Returns
    -------
    networkx.Graph
        Closed forms: n hosts, L + S switches, n + L·S links; diameter 4 hops (2 with one leaf);
        α = diameter·latency; bisection (L/2)·S·b = n/2 · b/R when the hosts fill an even number of
        leaves (otherwise computed by :func:`~topologies.stats.topology_stats`). Routing ``"dmodk"``:
        traffic to host d climbs to spine ``d mod S``.

    Examples
    --------
    >>> G = leaf_spine(32, k=8, oversubscription=2)
    >>> G.number_of_edges() == 32 + 4 * 4, G.degree["spine0"], G.degree["leaf0"]
    (True, 4, 12)
    """
    n = check_positive_int(n_hosts, "topology.hosts")
    k = check_positive_int(k, "topology.k")
    r = check_positive(oversubscription, "topology.oversubscription")
    spines = k / r
    if r < 1 or abs(spines - round(spines)) > 1e-9 or round(spines) < 1:
        raise UserError("topology.oversubscription", f"R={r:g} with k={k} gives {spines:g} spines",
                        "R >= 1 such that k/R is a whole number of spines (e.g. k=8 with R=1, 2, 4 or 8)")
    s = int(round(spines))
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    leaves = math.ceil(n / k)
    diameter = 4 if leaves > 1 else (2 if n > 1 else 0)
    if leaves == 1:
        bisection: float | None = (n // 2) * bw
    elif n % (2 * k) == 0:
        bisection = (leaves / 2) * s * bw
    else:
        bisection = None
    G = new_graph("fattree", "dmodk", n, fattree={"levels": 2, "k": k, "spines": s, "oversubscription": r},
                  alpha_s=diameter * lat, bandwidth_Bps=bw, diameter_hops=diameter)
    if bisection is not None:
        G.graph["bisection_Bps"] = bisection
    G.add_nodes_from([f"leaf{i}" for i in range(leaves)] + [f"spine{j}" for j in range(s)], kind="switch")
    add_links(G, ((h, f"leaf{h // k}") for h in range(n)), bw, lat)
    add_links(G, ((f"leaf{i}", f"spine{j}") for i in range(leaves) for j in range(s)), bw, lat)
    return G


def dmodk_path(G: nx.Graph, src: int, dst: int, ecmp_hash: int | None = None) -> list[Hashable]:
    """Nodes on the d-mod-k route from host ``src`` to host ``dst`` (both host indices).

    ``ecmp_hash``, when given, replaces each up-port choice by ``(ecmp_hash >> 16·level) mod ports``.

    Examples
    --------
    >>> dmodk_path(leaf_spine(16, k=4, oversubscription=2), 1, 7)   # spine 7 mod 2 = 1
    [1, 'leaf0', 'spine1', 'leaf1', 7]
    >>> dmodk_path(fattree(4), 0, 15)  # agg 15 mod 2 = 1, core 1*2 + (15 div 2) mod 2 = 3
    [0, 'edge0.0', 'agg0.1', 'core3', 'agg3.1', 'edge3.1', 15]
    """
    meta = G.graph["fattree"]
    k = meta["k"]
    if meta["levels"] == 2:
        ls, ld = src // k, dst // k
        if ls == ld:
            return [src, f"leaf{ls}", dst]
        s = meta["spines"]
        spine = dst % s if ecmp_hash is None else ecmp_hash % s
        return [src, f"leaf{ls}", f"spine{spine}", f"leaf{ld}", dst]
    half = k // 2
    ps, pd = src // (half * half), dst // (half * half)
    es, ed = (src // half) % half, (dst // half) % half
    edge_s, edge_d = f"edge{ps}.{es}", f"edge{pd}.{ed}"
    if ps == pd and es == ed:
        return [src, edge_s, dst]
    if ecmp_hash is None:
        up1, up2 = dst % half, (dst // half) % half
    else:
        up1, up2 = ecmp_hash % half, (ecmp_hash >> 16) % half
    if ps == pd:
        return [src, edge_s, f"agg{ps}.{up1}", edge_d, dst]
    return [src, edge_s, f"agg{ps}.{up1}", f"core{up1 * half + up2}", f"agg{pd}.{up1}", edge_d, dst]
