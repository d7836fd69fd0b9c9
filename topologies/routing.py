"""Deterministic routes between hosts as arrays of directed-link ids, cached.

:class:`Router` numbers the directed links of a topology (a full-duplex edge is two directed links, ids
``2e`` for the edge's stored direction and ``2e + 1`` for the reverse, in ``G.edges`` order) and answers
``route(src, dst)`` with the ids along the path between two host *indices*. The rule comes from
``G.graph["routing"]``:

``"full_mesh"``
    ``ideal`` graphs: each ordered host pair is its own directed link, numbered on first use — so
    ``n_links``, ``capacity_Bps`` and ``latency_s`` grow as pairs are routed: read them after routing.
``"dmodk"``
    fat-trees (:func:`topologies.fattree.dmodk_path`): up-port chosen from the destination index.
``"dor"``
    rings and tori (:func:`topologies.torus.dor_path`): dimension order, the shorter way round.
``"minimal"``
    dragonfly (:func:`topologies.dragonfly.minimal_path`): local, global, local.
``"hier"``
    multi-GPU nodes (:func:`topologies.hier.hier_path`): NVSwitch inside a node, NICs and fabric between.
``"shortest"`` (default)
    fewest hops, then least latency, ties broken by sorted node order (hosts by number, then switches by
    name). Every node may forward. A host with a single link is routed through its switch, so trees
    (one Dijkstra per destination switch, computed lazily and cached) are needed only between attachment
    nodes. Routes are symmetric: the route from b to a is the route from a to b reversed.

With ``ecmp=True``, multipath rules choose among their equal-cost paths by a hash of
``(src, dst, seed)``: ``dmodk`` draws its up-ports from the hash; ``shortest`` picks, at every hop, one of
the neighbours on an equal-cost shortest path. ``dor``, ``minimal``, ``hier`` and ``full_mesh`` have one
path per pair and ignore ``ecmp``.

Examples
--------
>>> from topologies.basic import star
>>> r = Router(star(4))
>>> r.route(0, 3).tolist(), r.n_links, r.path_latency_s(0, 3)
([0, 7], 8, 4e-06)
>>> r.link_endpoints(7)
('s0', 3)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import networkx as nx
import numpy as np

from sim.errors import UserError
from topologies._graph import node_key
from topologies.dragonfly import minimal_path
from topologies.fattree import dmodk_path
from topologies.hier import hier_path
from topologies.torus import dor_path

_M64 = (1 << 64) - 1
_TREE_CACHE = 512  # per-destination trees kept (LRU); routes themselves are always cached

PathRule = Callable[[nx.Graph, int, int, "int | None"], list]


def _rules() -> dict[str, tuple[PathRule, bool]]:
    """Routing rule name -> (node-path function, whether it uses the ECMP hash)."""
    return {"dmodk": (dmodk_path, True), "dor": (dor_path, False), "minimal": (minimal_path, False),
            "hier": (hier_path, False)}


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fixed, platform-independent 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def ecmp_hash(src: int, dst: int, seed: int) -> int:
    """The deterministic 64-bit hash of a (src, dst, seed) flow used for ECMP choices."""
    return _mix(_mix(_mix(seed & _M64) ^ src) ^ dst)


def _validate(G: nx.Graph) -> tuple:
    if not isinstance(G, nx.Graph) or G.is_directed() or G.is_multigraph():
        raise UserError("topology", f"{type(G).__name__} is not an undirected simple networkx.Graph",
                        "a networkx.Graph from a topologies builder or from_file")
    hosts = G.graph.get("hosts")
    if hosts is None:
        hosts = tuple(sorted((n for n, k in G.nodes(data="kind") if k == "host"), key=node_key))
    hosts = tuple(hosts)
    if not hosts:
        raise UserError("topology", "the graph has no hosts", "nodes with kind='host'")
    missing = [h for h in hosts if h not in G]
    if missing:
        raise UserError("topology.hosts", f"hosts {missing[:3]} are not nodes of the graph",
                        "hosts that are nodes with kind='host'")
    for u, v, d in G.edges(data=True):
        bw, lat = d.get("bandwidth_Bps"), d.get("latency_s")
        if not isinstance(bw, (int, float)) or not bw > 0 or bw == float("inf"):
            raise UserError("topology.bandwidth", f"link {u}-{v} has bandwidth {bw!r}", "a finite bandwidth > 0")
        if not isinstance(lat, (int, float)) or not lat >= 0 or lat == float("inf"):
            raise UserError("topology.latency", f"link {u}-{v} has latency {lat!r}", "a finite latency >= 0")
    return hosts


class Router:
    """Routes between the hosts of a topology graph, as int64 arrays of directed-link ids.

    Parameters
    ----------
    graph : networkx.Graph
        A topology from a builder, :func:`topologies.build_topology` or :func:`topologies.from_file`.
    ecmp : bool
        Spread pairs over equal-cost paths by a hash of (src, dst, seed) where the rule has several.
    seed : int
        Seed of the ECMP hash.

    Attributes
    ----------
    hosts : tuple
        Host nodes in order; host index r is ``hosts[r]``.
    n_hosts : int
    n_links : int
        Directed links numbered so far (all of them, except for full meshes, which grow on use).
    capacity_Bps, latency_s : numpy.ndarray
        float64 arrays of length ``n_links``: capacity and latency of each directed link.
    alpha_s : float
        α of the analytic model: the largest host-to-host path latency.
    bandwidth_Bps : float
        1/β of the analytic model: the smallest bandwidth of a host's link.
    """

    def __init__(self, graph: nx.Graph, ecmp: bool = False, seed: int = 0) -> None:
        self.graph = graph
        self.hosts = _validate(graph)
        self.n_hosts = len(self.hosts)
        self.ecmp = bool(ecmp)
        self.seed = int(seed)
        self.rule = graph.graph.get("routing", "shortest")
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self._mesh = graph.graph.get("full_mesh") if self.rule == "full_mesh" else None
        rules = _rules()
        if self._mesh is None and self.rule != "shortest" and self.rule not in rules:
            raise UserError("topology.routing", f"unknown routing rule {self.rule!r}",
                            ", ".join(["shortest", "full_mesh", *sorted(rules)]))
        self._path_rule = rules.get(self.rule)
        self._ends: list[tuple[Hashable, Hashable]] = []
        self._lid: dict[tuple[Hashable, Hashable], int] = {}
        if self._mesh is not None:
            self._cap: list[float] = []
            self._lat: list[float] = []
            self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        else:
            edges = list(graph.edges(data=True))
            for e, (u, v, _) in enumerate(edges):
                self._lid[(u, v)] = 2 * e
                self._lid[(v, u)] = 2 * e + 1
                self._ends.extend(((u, v), (v, u)))
            bw = np.array([d["bandwidth_Bps"] for _, _, d in edges], dtype=np.float64)
            lat = np.array([d["latency_s"] for _, _, d in edges], dtype=np.float64)
            self._arrays = (np.repeat(bw, 2), np.repeat(lat, 2))
        if self.rule == "shortest" and self._mesh is None:
            self._init_shortest()

    # ------------------------------------------------------------------ link table
    @property
    def n_links(self) -> int:
        return len(self._ends)

    def _link_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None or len(self._arrays[0]) != len(self._ends):
            self._arrays = (np.array(self._cap, dtype=np.float64), np.array(self._lat, dtype=np.float64))
        return self._arrays

    @property
    def capacity_Bps(self) -> np.ndarray:
        return self._link_arrays()[0]

    @property
    def latency_s(self) -> np.ndarray:
        return self._link_arrays()[1]

    def link_endpoints(self, link_id: int) -> tuple:
        """The ``(u, v)`` nodes of directed link ``link_id`` (traffic flows from u to v)."""
        return self._ends[link_id]

    def link_id(self, u: Hashable, v: Hashable) -> int:
        """The id of the directed link from node ``u`` to node ``v`` (KeyError if there is none)."""
        if self._mesh is not None:
            return self._mesh_link(u, v)
        return self._lid[(u, v)]

    def _mesh_link(self, u: Hashable, v: Hashable) -> int:
        lid = self._lid.get((u, v))
        if lid is None:
            lid = len(self._ends)
            self._lid[(u, v)] = lid
            self._ends.append((u, v))
            self._cap.append(self._mesh["bandwidth_Bps"])
            self._lat.append(self._mesh["latency_s"])
        return lid

    # ------------------------------------------------------------------ routes
    def route(self, src: int, dst: int) -> np.ndarray:
        """Directed-link ids from host index ``src`` to host index ``dst`` (empty if equal); cached, read-only."""
        key = (src, dst)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if not (0 <= src < self.n_hosts and 0 <= dst < self.n_hosts):
            raise UserError("route", f"host index ({src}, {dst}) out of range", f"0 <= index < {self.n_hosts}")
        if src == dst:
            ids: list[int] = []
        elif self._mesh is not None:
            ids = [self._mesh_link(self.hosts[src], self.hosts[dst])]
        else:
            path = self.node_path(src, dst)
            lid = self._lid
            ids = [lid[(path[i], path[i + 1])] for i in range(len(path) - 1)]
        arr = np.array(ids, dtype=np.int64)
        arr.flags.writeable = False
        self._cache[key] = arr
        return arr

    def routes(self, src: Sequence[int] | np.ndarray, dst: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """``route`` for each pair ``(src[i], dst[i])``."""
        s_list, d_list = np.asarray(src).tolist(), np.asarray(dst).tolist()
        if len(s_list) != len(d_list):
            raise UserError("routes", f"{len(s_list)} sources but {len(d_list)} destinations", "equal lengths")
        route = self.route
        return [route(int(s), int(d)) for s, d in zip(s_list, d_list, strict=True)]

    def incidence(self, src: Sequence[int] | np.ndarray,
                  dst: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow-link incidence of the pairs: ``(flow_index, link_id)`` int64 arrays, one entry per hop.

        Examples
        --------
        >>> from topologies.basic import star
        >>> f, l = Router(star(3)).incidence([0, 1], [1, 2])
        >>> f.tolist(), l.tolist()
        ([0, 0, 1, 1], [0, 3, 2, 5])
        """
        paths = self.routes(src, dst)
        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        flows = np.repeat(np.arange(len(paths), dtype=np.int64), lengths)
        links = np.concatenate(paths) if paths else np.zeros(0, dtype=np.int64)
        return flows, links.astype(np.int64, copy=False)

    def path_latency_s(self, src: int, dst: int) -> float:
        """Sum of the link latencies on the route from host index ``src`` to ``dst``."""
        ids = self.route(src, dst)
        return float(self.latency_s[ids].sum()) if len(ids) else 0.0

    def node_path(self, src: int, dst: int) -> list:
        """The nodes on the route from host index ``src`` to host index ``dst``."""
        if self._mesh is not None:
            return [self.hosts[src]] if src == dst else [self.hosts[src], self.hosts[dst]]
        h = ecmp_hash(src, dst, self.seed) if self.ecmp else None
        if self._path_rule is not None:
            fn, uses_hash = self._path_rule
            return fn(self.graph, src, dst, h if uses_hash else None)
        return self._shortest_path(src, dst, h)

    # ------------------------------------------------------------------ shortest
    def _init_shortest(self) -> None:
        G = self.graph
        nodes = sorted(G.nodes, key=node_key)
        self._nodes = nodes
        self._rank = {n: i for i, n in enumerate(nodes)}
        rank = self._rank
        # adjacency by rank, neighbours in rank order, with link latency
        self._adj = [sorted((rank[w], float(G.edges[n, w]["latency_s"])) for w in G.adj[n]) for n in nodes]
        att, first = [], []
        for hnode in self.hosts:
            nbrs = list(G.adj[hnode])
            if len(nbrs) == 1:
                att.append(rank[nbrs[0]])
                first.append(True)
            else:
                att.append(rank[hnode])
                first.append(False)
        self._att = att
        self._att_hop = first
        self._trees: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()

    def _tree(self, root: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hops, latency, next hop) of every node toward ``root`` (node ranks); Dijkstra on (hops, latency)."""
        tree = self._trees.get(root)
        if tree is not None:
            self._trees.move_to_end(root)
            return tree
        n = len(self._nodes)
        hops = [n + 1] * n
        lat = [float("inf")] * n
        nxt = [-1] * n
        hops[root], lat[root], nxt[root] = 0, 0.0, root
        done = [False] * n
        heap = [(0, 0.0, root)]
        adj = self._adj
        while heap:
            h, lu, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = True
            for w, lw in adj[u]:
                if done[w]:
                    continue
                ch, cl = h + 1, lu + lw
                if ch < hops[w] or (ch == hops[w] and (cl < lat[w] or (cl == lat[w] and u < nxt[w]))):
                    hops[w], lat[w], nxt[w] = ch, cl, u
                    heapq.heappush(heap, (ch, cl, w))
        tree = (np.array(hops), np.array(lat), np.array(nxt))
        if done.count(True) != n:
            unreached = [self._nodes[i] for i in range(n) if not done[i]][:3]
            raise UserError("topology", f"the graph is disconnected (nodes {unreached} unreachable)",
                            "a connected graph")
        self._trees[root] = tree
        if len(self._trees) > _TREE_CACHE:
            self._trees.popitem(last=False)
        return tree

    def _walk(self, a: int, b: int, h: int | None) -> list[int]:
        """Node ranks from ``a`` to ``b`` along b's tree; with ECMP, hash among equal-cost next hops."""
        if a == b:
            return [a]
        hops, lat, nxt = self._tree(b)
        path = [a]
        u, step = a, 0
        while u != b:
            if h is None:
                u = int(nxt[u])
            else:
                cands = [w for w, lw in self._adj[u]
                         if hops[w] == hops[u] - 1 and abs(lat[w] + lw - lat[u]) <= 1e-12 * max(lat[u], 1e-300)]
                u = cands[_mix(h + step) % len(cands)]
                step += 1
            path.append(u)
        return path

    def _shortest_path(self, src: int, dst: int, h: int | None) -> list:
        a, b = self._att[src], self._att[dst]
        # symmetric: b -> a is the route a -> b reversed (pairs in rank order)
        core = self._walk(b, a, None)[::-1] if h is None and a > b else self._walk(a, b, h)
        nodes = self._nodes
        path = [nodes[i] for i in core]
        if self._att_hop[src]:
            path.insert(0, self.hosts[src])
        if self._att_hop[dst]:
            path.append(self.hosts[dst])
        return path

    # ------------------------------------------------------------------ α-β parameters
    @property
    def bandwidth_Bps(self) -> float:
        value = self.graph.graph.get("bandwidth_Bps")
        if value is not None:
            return float(value)
        if self._mesh is not None:
            return float(self._mesh["bandwidth_Bps"])
        G = self.graph
        return float(min(G.edges[h, w]["bandwidth_Bps"] for h in self.hosts for w in G.adj[h]))

    @property
    def alpha_s(self) -> float:
        value = self.graph.graph.get("alpha_s")
        if value is not None:
            return float(value)
        if self._mesh is not None:
            return float(self._mesh["latency_s"]) if self.n_hosts > 1 else 0.0
        if not hasattr(self, "_alpha"):
            self._alpha = self._compute_alpha()
        return self._alpha

    def _compute_alpha(self) -> float:
        if self.n_hosts < 2:
            return 0.0
        if self.rule != "shortest":
            return max(self.path_latency_s(s, d) for s in range(self.n_hosts) for d in range(self.n_hosts))
        G = self.graph
        # path latency = host link + tree latency between attachments + host link
        hl = np.array([float(G.edges[hn, self._nodes[a]]["latency_s"]) if hop else 0.0
                       for hn, a, hop in zip(self.hosts, self._att, self._att_hop, strict=True)])
        att = np.array(self._att)
        roots = sorted(set(self._att))
        best = 0.0
        top = {r: np.sort(hl[att == r])[::-1] for r in roots}
        for r in roots:
            _, lat, _ = self._tree(r)
            for q in roots:
                if q == r:
                    if len(top[r]) >= 2:
                        best = max(best, top[r][0] + top[r][1] + 0.0)
                else:
                    best = max(best, top[q][0] + lat[q] + top[r][0])
        return float(best)
