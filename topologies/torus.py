"""Direct networks: ``ring`` and the d-dimensional ``torus``, routed dimension by dimension.

Each host is a router with one full-duplex link per direction per dimension and can send on all of them
at once. Host h has coordinates ``numpy.unravel_index(h, dims)`` (C order: the last dimension varies
fastest) and node attribute ``coord``. A dimension of size 2 has one link between its two positions
(the +1 and -1 neighbours coincide and the graph is simple), so it contributes n/2 links instead of n;
a dimension of size 1 has no links.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def _strides(dims: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for size in reversed(dims):
        strides.append(acc)
        acc *= size
    return strides[::-1]


def torus(dims: Sequence[int], bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
          latency_s: float = DEFAULT_LATENCY_S, _kind: str = "torus") -> nx.Graph:
    """A torus of any number of dimensions (a k-ary n-cube when all sizes are equal).

    Parameters
    ----------
    dims : sequence of int
        Size of each dimension, each >= 1.
    bandwidth_Bps, latency_s : float
        Bandwidth (per direction) and latency of every link.

    Returns
    -------
    networkx.Graph
        n = ∏ dims hosts, no switches; links = Σ_i (n if d_i >= 3, n/2 if d_i = 2, 0 if d_i = 1);
        degree of a host = Σ_i (2 if d_i >= 3, 1 if d_i = 2). Diameter Σ_i ⌊d_i/2⌋ hops, α = diameter ·
        latency. Bisection (largest size M): 2·(n/M)·bandwidth for even M >= 4, (n/2)·bandwidth for
        M = 2 (only the rings of the largest dimension are cut); for odd M it is computed. Routing ``"dor"``.

    Examples
    --------
    >>> G = torus((4, 4, 4))
    >>> G.number_of_nodes(), G.number_of_edges(), G.degree[0]
    (64, 192, 6)
    >>> torus((2, 3)).number_of_edges()  # 6/2 links in the size-2 dimension + 6 in the size-3 one
    9
    """
    if isinstance(dims, int) or not dims:
        raise UserError("topology.dims", f"{dims!r} is not a list of sizes", "sizes like 8x8x8")
    dims = tuple(check_positive_int(d, "topology.dims") for d in dims)
    bw = check_positive(bandwidth_Bps, "topology.bandwidth")
    lat = check_positive(latency_s, "topology.latency", allow_zero=True)
    n = math.prod(dims)
    biggest = max(dims)
    diameter = sum(d // 2 for d in dims)
    G = new_graph(_kind, "dor", n, dims=dims, alpha_s=diameter * lat, bandwidth_Bps=bw, diameter_hops=diameter)
    if biggest == 1:
        G.graph["bisection_Bps"] = 0.0
    elif biggest == 2:
        G.graph["bisection_Bps"] = (n / 2) * bw
    elif biggest % 2 == 0:
        G.graph["bisection_Bps"] = 2 * (n / biggest) * bw
    strides = _strides(dims)
    coords = [tuple((h // s) % d for s, d in zip(strides, dims, strict=True)) for h in range(n)]
    nx.set_node_attributes(G, dict(enumerate(coords)), "coord")
    for i, (size, stride) in enumerate(zip(dims, strides, strict=True)):
        if size == 1:
            continue
        pairs = []
        for h in range(n):
            c = coords[h][i]
            if size == 2 and c == 1:
                continue
            pairs.append((h, h + ((c + 1) % size - c) * stride))
        add_links(G, pairs, bw, lat)
    return G


def ring(n_hosts: int, bandwidth_Bps: float = DEFAULT_BANDWIDTH_BPS,
         latency_s: float = DEFAULT_LATENCY_S) -> nx.Graph:
    """Hosts in a ring: the one-dimensional torus ``torus((n_hosts,))`` with kind ``"ring"``.

    n links for n >= 3 (1 for n = 2, none for n = 1); diameter ⌊n/2⌋ hops; bisection 2·bandwidth for
    even n >= 4.

    Examples
    --------
    >>> G = ring(8)
    >>> G.number_of_edges(), sorted(G.adj[0]), G.graph["diameter_hops"]
    (8, [1, 7], 4)
    """
    n = check_positive_int(n_hosts, "topology.hosts")
    return torus((n,), bandwidth_Bps, latency_s, _kind="ring")


def torus_distance(dims: Sequence[int], a: int, b: int) -> int:
    """Hops between hosts a and b: Σ_i min(|a_i - b_i|, d_i - |a_i - b_i|)."""
    total = 0
    for s, d in zip(_strides(dims), dims, strict=True):
        delta = abs((a // s) % d - (b // s) % d)
        total += min(delta, d - delta)
    return total


def dor_path(G: nx.Graph, src: int, dst: int, ecmp_hash: int | None = None) -> list[int]:
    """Hosts on the dimension-order route: dimension 0 first, each the shorter way round (ties: +).

    Examples
    --------
    >>> dor_path(torus((4, 4)), 0, 10)   # (0,0) -> (2,2): tie in both dimensions, go +
    [0, 4, 8, 9, 10]
    >>> dor_path(ring(5), 0, 3)          # 3 steps forward or 2 back: back
    [0, 4, 3]
    """
    dims = G.graph["dims"]
    path = [src]
    here = src
    for s, d in zip(_strides(dims), dims, strict=True):
        a, b = (here // s) % d, (dst // s) % d
        fwd = (b - a) % d
        step, count = (1, fwd) if fwd <= d - fwd else (-1, d - fwd)
        for _ in range(count):
            a_next = (a + step) % d
            here += (a_next - a) * s
            a = a_next
            path.append(here)
    return path
