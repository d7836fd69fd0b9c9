"""Helpers shared by the topology builders: graph metadata, links, parameter checks, node order.

Every builder returns a :class:`networkx.Graph` whose nodes carry ``kind`` (``"host"`` or ``"switch"``)
and whose edges carry ``bandwidth_Bps`` and ``latency_s``; an edge is one full-duplex link (one capacity
per direction). Hosts are the integers ``0..n-1`` in the topology's order, switches are strings.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable

import networkx as nx

from sim.errors import UserError

#: the defaults of the paper's machine (NERSC Cori KNL, docs/paper-model.md: alpha = 2 us, 1/beta = 6 GiB/s)
DEFAULT_BANDWIDTH_BPS = 6.0 * 2**30
DEFAULT_LATENCY_S = 2e-6


def node_key(node: Hashable) -> tuple:
    """Sort key that orders hosts (integers) first, by number, then every other node by its string."""
    if isinstance(node, int) and not isinstance(node, bool):
        return (0, node, "")
    return (1, 0, str(node))


def check_positive_int(value: object, field: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` or a :class:`UserError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < minimum:
        raise UserError(field, f"{value!r} is not an integer >= {minimum}", f"an integer >= {minimum}")
    return int(value)


def check_positive(value: object, field: str, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``) or a :class:`UserError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(field, f"{value!r} is not a finite number {bound}", f"a finite number {bound}")
    return float(value)


def new_graph(kind: str, routing: str, n_hosts: int, **graph_attrs: object) -> nx.Graph:
    """An empty topology with hosts ``0..n_hosts-1`` and the graph attributes every builder sets."""
    G = nx.Graph(kind=kind, routing=routing, hosts=tuple(range(n_hosts)), **graph_attrs)
    G.add_nodes_from(range(n_hosts), kind="host")
    return G


def add_links(G: nx.Graph, pairs: Iterable[tuple[Hashable, Hashable]], bandwidth_Bps: float,
              latency_s: float) -> None:
    """Add full-duplex links with one bandwidth and latency."""
    G.add_edges_from(pairs, bandwidth_Bps=bandwidth_Bps, latency_s=latency_s)
