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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache

import networkx as nx
import numpy as np
import simpy

from sim.errors import UserError
from topologies.routing import Router

MODELS = ("analytic", "flow", "step")


@lru_cache(maxsize=1024)
def get_algo(op: str, algorithm: str):
    """The collective algorithm object (cached); raises UserError for unknown names."""
    from sim.collectives import get_algorithm

    return get_algorithm(op, algorithm)


def _freeze(kw: dict) -> tuple:
    return tuple(sorted(kw.items()))


@lru_cache(maxsize=4096)
def cached_phases(op: str, algorithm: str, p: int, nbytes: float, kw: tuple) -> tuple:
    """The algorithm's phases (cached per size and keyword arguments)."""
    algo = get_algo(op, algorithm)
    algo.check(p)
    return tuple(algo.phases(p, nbytes, **dict(kw)))


@lru_cache(maxsize=4096)
def cached_cost(op: str, algorithm: str, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float,
                kw: tuple) -> float:
    """The algorithm's closed-form seconds (cached)."""
    algo = get_algo(op, algorithm)
    algo.check(p)
    return float(algo.cost_s(p, nbytes, alpha_s, bandwidth_Bps, **dict(kw)))


@lru_cache(maxsize=4096)
def cached_bytes_sent(op: str, algorithm: str, p: int, nbytes: float, kw: tuple) -> np.ndarray:
    """Bytes each local rank sends over all phases (``src`` weighted by ``nbytes × steps``)."""
    out = np.zeros(p)
    for ph in cached_phases(op, algorithm, p, nbytes, kw):
        out += np.bincount(np.asarray(ph.src, dtype=np.int64), weights=np.asarray(ph.nbytes, float) * ph.steps,
                           minlength=p)
    out.flags.writeable = False
    return out


class Session(ABC):
    """One simulation run of a network model on a SimPy environment."""

    def __init__(self, model: NetworkModel, env: simpy.Environment) -> None:
        self.model = model
        self.env = env

    @abstractmethod
    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = ()) -> simpy.Event:
        """Start the collective now; the event triggers when its last transfer has arrived."""


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

    def __init__(self, graph: nx.Graph, placement: Sequence[int] | None = None, ecmp: bool = False) -> None:
        self.graph = graph
        self.router = Router(graph, ecmp=ecmp)
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
        """Keyword arguments of the algorithm for this group, frozen (hashable).

        ``halo`` gets ``dims`` (the group's neighbour grid, ``(p,)`` by default). ``hierarchical`` gets
        ``local_size`` only on a topology with ``gpus_per_node`` (``hier``): the GPUs per node when the
        group is node-aligned (consecutive members fill whole nodes, one node after another), else 1
        (every member treated as its own node); elsewhere the algorithm's default (one node).
        """
        kw: dict = {}
        p = len(group)
        if op == "halo":
            kw["dims"] = tuple(int(d) for d in halo_dims) if halo_dims else (p,)
        if algorithm == "hierarchical" and self.gpus_per_node:
            kw["local_size"] = self.local_size(group)
        return _freeze(kw)

    def local_size(self, group: Sequence[int]) -> int:
        """Members per node when the group is node-aligned on a multi-GPU-node topology, else 1."""
        g = self.gpus_per_node
        p = len(group)
        if not g or g <= 1 or p % g:
            return 1
        nodes = self.hosts_of(group) // int(g)
        blocks = nodes.reshape(p // g, g)
        if (blocks == blocks[:, :1]).all() and len(np.unique(blocks[:, 0])) == p // g:
            return int(g)
        return 1

    def bytes_sent(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = ()) -> np.ndarray:
        """Bytes each member of ``group`` sends in the collective, in group order."""
        kw = self.algo_kwargs(op, algorithm, group, halo_dims)
        return cached_bytes_sent(op, algorithm, len(group), float(nbytes), kw)

    @abstractmethod
    def session(self, env: simpy.Environment) -> Session:
        """Fresh per-run state on ``env``."""


def make_network(name: str, graph: nx.Graph, placement: Sequence[int] | None = None,
                 ecmp: bool = False) -> NetworkModel:
    """Build the network model ``name`` (``analytic``, ``flow`` or ``step``) on ``graph``.

    Examples
    --------
    >>> from topologies import build_topology
    >>> net = make_network("flow", build_topology("ideal:latency=2us,bandwidth=1GB/s", 4))
    >>> net.name, net.alpha_s, net.bandwidth_Bps
    ('flow', 2e-06, 1000000000.0)
    """
    from sim.network.analytic import AnalyticNetwork
    from sim.network.flow import FlowNetwork
    from sim.network.step import StepNetwork

    classes = {"analytic": AnalyticNetwork, "flow": FlowNetwork, "step": StepNetwork}
    key = str(name).strip().lower()
    if key not in classes:
        raise UserError("network", f"unknown network model {name!r}", "|".join(MODELS))
    return classes[key](graph, placement=placement, ecmp=ecmp)
