"""Routed screen costs for ``dnnsim best``: each collective priced on its groups' actual routes and links.

The ``analytic`` network prices every collective with one α-β pair (the largest path latency and the
slowest host link), which on a two-level topology (``hier``: NVLink inside a node, NICs between nodes)
prices intra-node traffic at NIC speed. :class:`RoutedScreen` instead runs the algorithm's phases
(:func:`sim.network.base.cached_phases`) on the topology's routes (:meth:`FlowNetwork.pattern
<sim.network.flow.FlowNetwork.pattern>`: per-transfer link incidence and path latency):

* per phase, each transfer's rate is the minimum over its links of ``capacity / n``, ``n`` the number of
  this phase's transfers on that link, and its time is ``steps × (nbytes / rate + path latency)``;
* a phase costs its slowest transfer; the collective costs the sum over its phases;
* a step of the strategy costs the maximum of that over every group of its kind (every model group, or
  every batch group), so the symmetric fast-path schedule of rank 0 (:func:`sim.fastpath.run_fast`)
  stays valid as a screen where groups differ (node-aligned or not, near or far).

Equal sharing is max-min fair sharing's first level, so for a single collective without contention
(and transfers of one phase that are equally sized) this is what the ``flow`` model gives; it ignores
contention between groups (concurrent groups sharing links) and between overlapping collectives. On
``ideal`` (one switch, equal links) it equals the closed form wherever the algorithm's phases and its
closed form agree. Costs are cached per (grid, group kind, op, algorithm, size); per-transfer rates per
(group, transfer pattern), whatever the size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.network.base import cached_phases, pattern_key

if TYPE_CHECKING:
    from sim.grid import Grid
    from sim.network.flow import FlowNetwork
    from sim.strategies.steps import Step


def groups_of(grid: Grid, kind: str) -> tuple[tuple[int, ...], ...]:
    """Every group of ``kind`` (``model``, ``batch`` or ``all``) on ``grid``."""
    if kind == "model":
        return grid.model_groups()
    if kind == "batch":
        return grid.batch_groups()
    return (grid.all_ranks(),)


class RoutedScreen:
    """Collective costs on routed groups (module docstring), for the fast path's ``collective_s`` hook.

    ``network`` is a :class:`~sim.network.flow.FlowNetwork` on the topology (its router, placement of
    ranks on hosts and algorithm keywords are used; nothing is simulated).

    Examples
    --------
    A ring all-reduce of 8 MiB on 4 hosts of an ideal network costs 2(p−1)(α + n/(p·bw)):

    >>> from sim.network import make_network
    >>> from topologies.basic import ideal
    >>> screen = RoutedScreen(make_network("flow", ideal(4, bandwidth_Bps=2**30, latency_s=1e-6)))
    >>> t = screen.group_s("allreduce", "ring", (0, 1, 2, 3), 8 * 2**20)
    >>> abs(t / (2 * 3 * (1e-6 + 8 * 2**20 / (4 * 2**30))) - 1) < 1e-12
    True
    """

    def __init__(self, network: FlowNetwork) -> None:
        self.network = network
        self._costs: dict[tuple, float] = {}
        self._rates: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def _rate_latency(self, group: tuple[int, ...], src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per transfer of one phase's step: equal-share rate (B/s; inf off the network) and path latency."""
        key, src, dst = pattern_key(group, src, dst)
        hit = self._rates.get(key)
        if hit is not None:
            return hit
        inc_flow, inc_link, lat = self.network.pattern(group, src, dst)
        rate = np.full(len(src), np.inf)
        if len(inc_link):
            capacity = self.network.router.capacity_Bps  # read after routing: full meshes grow on use
            users = np.bincount(inc_link, minlength=len(capacity))
            np.minimum.at(rate, inc_flow, capacity[inc_link] / users[inc_link])
        hit = (rate, np.asarray(lat, dtype=np.float64))
        self._rates[key] = hit
        return hit

    def group_s(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float) -> float:
        """Seconds of one collective on one group, alone on the network (module docstring)."""
        if len(group) < 2:
            return 0.0
        kw = self.network.algo_kwargs(op, algorithm, group)
        total = 0.0
        for ph in cached_phases(op, algorithm, len(group), float(nbytes), kw):
            rate, lat = self._rate_latency(group, ph.src, ph.dst)
            if len(rate) == 0:
                continue
            nb = np.broadcast_to(np.asarray(ph.nbytes, dtype=np.float64), rate.shape)
            total += float((int(ph.steps) * (nb / rate + lat)).max())
        return total

    def collective_s(self, step: Step, grid: Grid) -> float:
        """Seconds of ``step`` (a collective): the maximum of :meth:`group_s` over the groups of its kind."""
        key = (grid.pr, grid.pc, grid.placement, step.group, step.op, step.algorithm, float(step.nbytes))
        hit = self._costs.get(key)
        if hit is None:
            hit = max(self.group_s(step.op, step.algorithm, g, step.nbytes) for g in groups_of(grid, step.group))
            self._costs[key] = hit
        return hit
