"""Load a topology from a YAML or GraphML file, validated.

YAML layout (bandwidths and latencies take units, parsed by :mod:`sim.units`)::

    name: two-switches            # optional
    defaults: {bandwidth: 100Gbit/s, latency: 1us}   # optional, for edges that omit them
    hosts: [h0, h1, h2, h3]       # in order: rank r runs on the r-th host
    switches: [s0, s1]
    edges:
      - [h0, s0]                  # uses the defaults
      - {u: h2, v: s1, bandwidth: 50GB/s, latency: 500ns}
      - [s0, s1, 200Gbit/s, 2us]

Instead of ``hosts``/``switches``, ``nodes`` may list ``{name: ..., kind: host|switch}``.
GraphML: nodes need a ``kind`` attribute, edges ``bandwidth_Bps`` and ``latency_s`` (numbers, SI) or
``bandwidth`` and ``latency`` (strings with units); hosts are taken in file order. Loaded graphs are
routed ``"shortest"``; their α and β are computed by the :class:`~topologies.routing.Router`. A latency of
0 is allowed, a negative one is not; a bandwidth must be > 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from sim.errors import UserError
from sim.units import parse_rate, parse_time
from sim.yamlfile import read_yaml_mapping

_KINDS = ("host", "switch")


def _link(attrs: dict[str, Any], defaults: dict[str, Any], where: str) -> dict[str, float]:
    bw = attrs.get("bandwidth_Bps", attrs.get("bandwidth", defaults.get("bandwidth")))
    lat = attrs.get("latency_s", attrs.get("latency", defaults.get("latency")))
    if bw is None:
        raise UserError("topology.bandwidth", f"{where} has no bandwidth", "bandwidth on the edge or in defaults")
    if lat is None:
        raise UserError("topology.latency", f"{where} has no latency", "latency on the edge or in defaults")
    return {"bandwidth_Bps": parse_rate(bw, f"topology.bandwidth ({where})"),
            "latency_s": parse_time(lat, f"topology.latency ({where})")}


def _from_yaml(path: Path) -> nx.Graph:
    data = read_yaml_mapping(path, "topology", "a topology YAML file: a mapping with hosts, switches (or nodes), edges")
    G = nx.Graph(kind="file", routing="shortest", name=str(data.get("name", path.stem)))
    defaults = data.get("defaults") or {}
    hosts: list[Any] = []
    nodes = [{"name": h, "kind": "host"} for h in data.get("hosts") or []]
    nodes += [{"name": s, "kind": "switch"} for s in data.get("switches") or []]
    nodes += list(data.get("nodes") or [])
    for item in nodes:
        if not isinstance(item, dict) or "name" not in item:
            raise UserError("topology.nodes", f"node entry {item!r} has no name", "{name: ..., kind: host|switch}")
        name, kind = item["name"], item.get("kind")
        if kind not in _KINDS:
            raise UserError("topology.nodes", f"node {name!r} has kind {kind!r}", "kind: host or switch")
        if name in G:
            raise UserError("topology.nodes", f"node {name!r} listed twice", "each node once")
        G.add_node(name, kind=kind)
        if kind == "host":
            hosts.append(name)
    for i, item in enumerate(data.get("edges") or []):
        if isinstance(item, dict):
            u, v = item.get("u", item.get("source")), item.get("v", item.get("target"))
            attrs = item
        elif isinstance(item, (list, tuple)) and 2 <= len(item) <= 4:
            u, v = item[0], item[1]
            attrs = dict(zip(("bandwidth", "latency"), item[2:], strict=False))
        else:
            raise UserError("topology.edges", f"edge {i} {item!r} is malformed", "[u, v], [u, v, bw, lat] or {u:, v:}")
        where = f"edge {u}-{v}"
        for end in (u, v):
            if end not in G:
                raise UserError("topology.edges", f"{where} names unknown node {end!r}", "nodes listed in hosts/switches/nodes")
        if u == v or G.has_edge(u, v):
            raise UserError("topology.edges", f"{where} is a self-loop or listed twice", "one edge per node pair")
        G.add_edge(u, v, **_link(attrs, defaults, where))
    G.graph["hosts"] = tuple(hosts)
    return G


def _from_graphml(path: Path) -> nx.Graph:
    try:
        raw = nx.read_graphml(path)
    except Exception as exc:  # networkx raises several parser errors
        raise UserError("topology", f"cannot read GraphML {path}: {exc}", "a valid GraphML file") from None
    if raw.is_directed() or raw.is_multigraph():
        raise UserError("topology", f"{path} is a directed or multi-graph", "an undirected simple graph "
                        "(edgedefault=\"undirected\"); every edge is one full-duplex link")
    G = nx.Graph(kind="file", routing="shortest", name=raw.graph.get("name", path.stem))
    hosts = []
    for name, attrs in raw.nodes(data=True):
        kind = attrs.get("kind")
        if kind not in _KINDS:
            raise UserError("topology.nodes", f"node {name!r} has kind {kind!r}", "kind: host or switch")
        G.add_node(name, kind=kind)
        if kind == "host":
            hosts.append(name)
    for u, v, attrs in raw.edges(data=True):
        if u == v:
            raise UserError("topology.edges", f"edge {u}-{v} is a self-loop", "edges between distinct nodes")
        G.add_edge(u, v, **_link(attrs, {}, f"edge {u}-{v}"))
    G.graph["hosts"] = tuple(hosts)
    return G


def from_file(path: str | Path) -> nx.Graph:
    """Read a topology from ``.yaml``/``.yml`` or ``.graphml`` and validate it.

    Raises
    ------
    UserError
        Missing file, malformed content, unknown node kind, no hosts, missing or bad bandwidth/latency,
        or a disconnected graph.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("topology", f"file {str(path)!r} not found", "an existing .yaml/.yml/.graphml file")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        G = _from_yaml(path)
    elif suffix == ".graphml":
        G = _from_graphml(path)
    else:
        raise UserError("topology", f"unknown file type {suffix!r}", ".yaml, .yml or .graphml")
    if not G.graph["hosts"]:
        raise UserError("topology", f"{path} has no hosts", "at least one node with kind host")
    if not nx.is_connected(G):
        parts = nx.number_connected_components(G)
        raise UserError("topology", f"{path} is disconnected ({parts} components)", "a connected graph")
    return G
