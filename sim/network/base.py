"""The interface every network model implements, and the factory that builds one by name.

A :class:`NetworkModel` is built once per topology (routes and link tables are precomputed by its
:class:`~topologies.routing.Router`) and knows where each rank runs (``placement[r]`` = host index of rank
``r``). For each simulation run the engine opens a :class:`Session` on a SimPy environment; the session's
:meth:`Session.collective` returns an event that triggers when a collective of a group ends. Collective
algorithms (``sim.collectives``) are described once as phases of transfers; models only differ in how they
time them:

* ``analytic`` — the algorithm's closed form ``cost_s`` with α = ``router.alpha_s`` and 1/β =
  ``router.bandwidth_Bps``; no topology, no contention;
* ``flow`` — each phase as one batch of fluid flows, max-min fair on every directed link
  (:mod:`sim.network.flow`);
* ``step`` — every step of every phase with its true per-rank dependencies (:mod:`sim.network.step`).

Models register themselves by name with the :func:`register_model` class decorator; :mod:`sim.network`
imports every model module, so :func:`make_network` knows them all and this module imports none of them.
Algorithms declare the placement facts they need as keywords (``placement_facts``: ``local_size``, the
ranks per node of a node-aligned group; ``dims``, the neighbour grid), which :meth:`NetworkModel.algo_kwargs`
fills in without knowing algorithm names; an algorithm that declares ``flat_algorithm`` runs that one
when the placement gives its group no multi-rank nodes (:meth:`NetworkModel.effective_algorithm`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import simpy

from sim.errors import UserError
from topologies.routing import Router

if TYPE_CHECKING:
    import networkx as nx

#: network model classes by name, in registration order (filled by :func:`register_model`)
REGISTRY: dict[str, type[NetworkModel]] = {}
#: at most this many entries in a model's per-group memo (a bound on memory over very long sweeps)
MAX_MEMO = 65536

_M = TypeVar("_M", bound="type[NetworkModel]")


def register_model(cls: _M) -> _M:
    """Class decorator: make the network model ``cls`` buildable by :func:`make_network` under
    ``cls.name``. A second class under a taken name is a programming error (ValueError)."""
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__qualname__} must set a class attribute 'name' to register")
    if REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"network model {name!r} is registered twice ({REGISTRY[name].__qualname__}, "
                         f"{cls.__qualname__})")
    REGISTRY[name] = cls
    return cls


def model_names() -> tuple[str, ...]:
    """Names of the registered network models, in registration order."""
    return tuple(REGISTRY)


def pattern_key(group: tuple[int, ...], src: Any, dst: Any) -> tuple[tuple, np.ndarray, np.ndarray]:
    """The cache key of the transfers ``src -> dst`` (local ranks) of ``group``, and both as int arrays."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    return (group, src.tobytes(), dst.tobytes()), src, dst


@lru_cache(maxsize=1024)
def get_algo(op: str, algorithm: str):
    """The collective algorithm object (cached); raises UserError for unknown names."""
    from sim.collectives import get_algorithm

    return get_algorithm(op, algorithm)


def _freeze(kw: dict) -> tuple:
    return tuple(sorted(kw.items()))


@lru_cache(maxsize=4096)
def _single_phases(op: str, algorithm: str, p: int, nbytes: float, kw: tuple) -> tuple:
    algo = get_algo(op, algorithm)
    algo.check(p)
    return tuple(algo.phases(p, nbytes, **dict(kw)))


@lru_cache(maxsize=4096)
def cached_phases(op: str, algorithm: str, p: int, nbytes: float, kw: tuple, count: int = 1) -> tuple:
    """The algorithm's phases (cached per size, keyword arguments and ``count``): with ``count`` > 1, those
    of ``count`` copies run back to back (:func:`sim.collectives.base.repeat_phases`: every phase's
    ``steps`` × ``count``). Every model takes its phases from here, so ``flow``, ``step``, the bytes sent
    and the link bytes all see the repetition."""
    from sim.collectives.base import repeat_phases

    return tuple(repeat_phases(_single_phases(op, algorithm, p, nbytes, kw), count))


@lru_cache(maxsize=4096)
def cached_cost(op: str, algorithm: str, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float,
                kw: tuple, count: int = 1) -> float:
    """The algorithm's closed-form seconds (cached), × ``count`` for ``count`` copies back to back."""
    from sim.collectives.base import check_count

    algo = get_algo(op, algorithm)
    algo.check(p)
    cost = float(algo.cost_s(p, nbytes, alpha_s, bandwidth_Bps, **dict(kw)))
    return cost if check_count(count) == 1 else count * cost


@lru_cache(maxsize=4096)
def cached_bytes_sent(op: str, algorithm: str, p: int, nbytes: float, kw: tuple, count: int = 1) -> np.ndarray:
    """Bytes each local rank sends over all phases (``src`` weighted by ``nbytes × steps``; ``count``
    copies: × ``count``)."""
    from sim.collectives.base import payload_bytes

    out = np.zeros(p)
    for ph in cached_phases(op, algorithm, p, nbytes, kw, count):
        out += np.bincount(np.asarray(ph.src, dtype=np.int64),
                           weights=np.asarray(payload_bytes(ph), float) * ph.steps, minlength=p)
    out.flags.writeable = False
    return out


class Session(ABC):
    """One simulation run of a network model on a SimPy environment."""

    def __init__(self, model: NetworkModel, env: simpy.Environment) -> None:
        self.model = model
        self.env = env

    @abstractmethod
    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> simpy.Event:
        """Start the collective (``count`` copies back to back, :func:`cached_phases`) now; the event
        triggers when its last transfer has arrived."""

    def attach_meter(self, meter: Any) -> None:
        """Measure link utilisation with ``meter`` (:class:`sim.network.linkmeter.LinkMeter`); only models
        that move bytes over links can."""
        raise UserError("links", f"the {self.model.name!r} network model has no links to measure",
                        "network flow or step")


class NetworkModel(ABC):
    """A network model bound to a topology and a placement of ranks on hosts.

    Parameters
    ----------
    graph : networkx.Graph
        A topology from :func:`topologies.build_topology`.
    placement : sequence of int, optional
        ``placement[r]`` is the host index of rank ``r``; default: rank r on host r.
    ecmp : bool
        Multipath routing where the topology's rule supports it.
    """

    name = "base"
    #: at most this many routed patterns / link-byte tables are cached (a bound on memory for long sweeps)
    max_cached = 65536

    def __init__(self, graph: nx.Graph, placement: Sequence[int] | None = None, ecmp: bool = False) -> None:
        self.graph = graph
        self.router = Router(graph, ecmp=ecmp)
        self._patterns: dict[tuple, tuple] = {}
        self._link_bytes: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._kwargs: dict[tuple, tuple] = {}  # algo_kwargs per (op, algorithm, group, halo_dims)
        self.alpha_s = float(self.router.alpha_s)
        self.bandwidth_Bps = float(self.router.bandwidth_Bps)
        n = self.router.n_hosts
        if placement is None:
            self.placement = np.arange(n, dtype=np.int64)
        else:
            self.placement = np.asarray(placement, dtype=np.int64)
            if len(self.placement) and (self.placement.min() < 0 or self.placement.max() >= n):
                raise UserError("placement", f"host indices must be in 0..{n - 1}", f"{n} hosts in the topology")
        self.gpus_per_node = graph.graph.get("gpus_per_node")

    def check_ranks(self, n_ranks: int) -> None:
        """Raise UserError when ``n_ranks`` ranks do not fit the topology (or the placement)."""
        if n_ranks > self.router.n_hosts:
            raise UserError("procs", f"{n_ranks} exceeds the topology's {self.router.n_hosts} hosts",
                            f"procs <= {self.router.n_hosts}, or a larger topology")
        if n_ranks > len(self.placement):
            raise UserError("placement", f"places {len(self.placement)} ranks, not {n_ranks}",
                            "one host index per rank")

    def hosts_of(self, group: Sequence[int]) -> np.ndarray:
        """Host index of each member of ``group``."""
        return self.placement[np.asarray(group, dtype=np.int64)]

    def algo_kwargs(self, op: str, algorithm: str, group: Sequence[int], halo_dims: tuple[int, ...] = ()) -> tuple:
        """Keyword arguments of the algorithm for this group, frozen (hashable): one per placement fact the
        algorithm declares (its ``placement_facts``, none by default).

        ``fabric`` is the topology's ``graph["fabric"]`` (link classes of a ``hier`` topology and its
        ``nccl`` parameters, a hashable tuple of pairs) where it has one. ``dims`` is the group's neighbour
        grid (``halo_dims``, ``(p,)`` by default). ``local_size`` is
        given only on a topology with ``gpus_per_node`` (``hier``): the group's members per node L when the
        group is node-aligned (consecutive blocks of L members, each block on a node of its own; a group
        inside one node has L = p), else 1 (every member treated as its own node); elsewhere the
        algorithm's default (one node). Memoized per (op, algorithm,
        group, halo_dims): the engine asks for each collective it starts several times (algorithm, bytes,
        schedule), and the same groups recur every micro-batch.
        """
        key = (op, algorithm, tuple(group), tuple(halo_dims))
        hit = self._kwargs.get(key)
        if hit is not None:
            return hit
        kw: dict = {}
        for fact in getattr(get_algo(op, algorithm), "placement_facts", ()):
            if fact == "dims":
                kw["dims"] = tuple(int(d) for d in halo_dims) if halo_dims else (len(group),)
            elif fact == "local_size":
                if self.gpus_per_node:
                    kw["local_size"] = self.local_size(group)
            elif fact == "fabric":
                if self.graph.graph.get("fabric"):
                    kw["fabric"] = self.graph.graph["fabric"]
            else:
                raise ValueError(f"{op} {algorithm} needs placement fact {fact!r}, which no network model gives")
        frozen = _freeze(kw)
        if len(self._kwargs) < MAX_MEMO:
            self._kwargs[key] = frozen
        return frozen

    def algorithm_fallback(self, op: str, algorithm: str, group: Sequence[int]) -> tuple[str, str] | None:
        """``(algorithm that runs, why)`` when ``algorithm`` needs multi-rank nodes (it declares
        ``flat_algorithm``) and this placement gives its group none, so its schedule is the flat one;
        None when it runs as asked (and for groups of one rank, which send nothing)."""
        algo = get_algo(op, algorithm)
        flat = getattr(algo, "flat_algorithm", None)
        if flat is None or len(group) < 2 or "local_size" not in getattr(algo, "placement_facts", ()):
            return None
        g = self.gpus_per_node
        if not g or g <= 1:
            return flat, "the topology has no multi-GPU nodes" + (f" (gpus_per_node={g})" if g else "")
        if self.local_size(group) == 1:
            return flat, (f"a group of {len(group)} ranks (first {list(group[:4])}) is not node-aligned (the same "
                          f"number, at least 2, of its members on each node of {g} GPUs, in node order)")
        return None

    def effective_algorithm(self, op: str, algorithm: str, group: Sequence[int]) -> str:
        """The algorithm that runs for ``group``: ``algorithm``, or the flat one it falls back to
        (:meth:`algorithm_fallback`); the records' ``algorithm`` column."""
        fallback = self.algorithm_fallback(op, algorithm, group)
        return algorithm if fallback is None else fallback[0]

    def local_size(self, group: Sequence[int]) -> int:
        """Members per node L when the group is node-aligned on a multi-GPU-node topology (consecutive
        blocks of L members, each block on a node of its own: a group inside one node has L = p), else 1."""
        g = self.gpus_per_node
        p = len(group)
        if not g or g <= 1 or p < 2:
            return 1
        nodes = self.hosts_of(group) // int(g)
        L = int(np.count_nonzero(nodes == nodes[0]))
        if L < 2 or p % L:
            return 1
        blocks = nodes.reshape(p // L, L)
        if (blocks == blocks[:, :1]).all() and len(np.unique(blocks[:, 0])) == p // L:
            return L
        return 1

    def bytes_sent(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> np.ndarray:
        """Bytes each member of ``group`` sends in the collective (``count`` copies), in group order."""
        kw = self.algo_kwargs(op, algorithm, group, halo_dims)
        return cached_bytes_sent(op, algorithm, len(group), float(nbytes), kw, count)

    def link_bytes(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The directed links the collective's routed phases (``count`` copies) cross and the bytes each
        carries in total (every byte of a transfer crosses each link of its route once): ``(links, bytes)``;
        cached. These are the bytes the network times (``Phase.nbytes``: under ``nccl`` the data over the
        protocol's and the link class's efficiency, what the link is busy with), so that they equal the
        integral of the links' loads (:mod:`sim.network.linkmeter`); :meth:`bytes_sent` counts the data."""
        group = tuple(group)
        kw = self.algo_kwargs(op, algorithm, group, halo_dims)
        key = (op, algorithm, group, float(nbytes), kw, count)
        hit = self._link_bytes.get(key)
        if hit is not None:
            return hit
        links, weights = [], []
        for ph in cached_phases(op, algorithm, len(group), float(nbytes), kw, count):
            inc_flow, inc_link, _lat = self.pattern(group, ph.src, ph.dst)
            per_flow = np.broadcast_to(np.asarray(ph.nbytes, dtype=np.float64), (len(ph.src),)) * ph.steps
            links.append(inc_link)
            weights.append(per_flow[inc_flow])
        if links:
            link_ids, inv = np.unique(np.concatenate(links), return_inverse=True)
            hit = (link_ids, np.bincount(inv, weights=np.concatenate(weights), minlength=len(link_ids)))
        else:
            hit = (np.zeros(0, dtype=np.int64), np.zeros(0))
        if len(self._link_bytes) < self.max_cached:
            self._link_bytes[key] = hit
        return hit

    def pattern(self, group: tuple[int, ...], src: np.ndarray, dst: np.ndarray) -> tuple:
        """Incidence and one-step path latency of the transfers ``src -> dst`` (local ranks) of ``group``.

        Cached per (group, pattern), whatever the size: collectives of many sizes on the same groups
        (one per layer) route their pairs once.
        """
        key, src, dst = pattern_key(group, src, dst)
        hit = self._patterns.get(key)
        if hit is not None:
            return hit
        hosts = self.hosts_of(group)
        inc_flow, inc_link = self.router.incidence(hosts[src], hosts[dst])
        lat_link = self.router.latency_s[inc_link] if len(inc_link) else np.zeros(0)
        lat = np.bincount(inc_flow, weights=lat_link, minlength=len(src))
        hit = (inc_flow, inc_link, lat)
        if len(self._patterns) < self.max_cached:
            self._patterns[key] = hit
        return hit

    @abstractmethod
    def session(self, env: simpy.Environment) -> Session:
        """Fresh per-run state on ``env``."""


def make_network(name: str, graph: nx.Graph, placement: Sequence[int] | None = None,
                 ecmp: bool = False) -> NetworkModel:
    """Build the registered network model ``name`` (``analytic``, ``flow`` or ``step``) on ``graph``.

    Examples
    --------
    >>> from topologies import build_topology
    >>> net = make_network("flow", build_topology("ideal:latency=2us,bandwidth=1GB/s", 4))
    >>> net.name, net.alpha_s, net.bandwidth_Bps
    ('flow', 2e-06, 1000000000.0)
    """
    key = str(name).strip().lower()
    if key not in REGISTRY:
        raise UserError("network", f"unknown network model {name!r}", "|".join(REGISTRY))
    return REGISTRY[key](graph, placement=placement, ecmp=ecmp)
