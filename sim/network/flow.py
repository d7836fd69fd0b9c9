"""The ``flow`` network model: each phase of a collective is one batch of fluid flows.

A collective runs its algorithm's phases one after another; a phase starts all its transfers at once as
flows on their routed paths and ends when the last one has arrived (:mod:`sim.network.fluid`: max-min
fair sharing of every directed link among all active flows of all concurrent collectives, latency paid
after the bytes). A phase with ``steps = k`` (a ring's p − 1 steps) stands for k lockstep repetitions: its
flows carry ``k × nbytes`` and pay ``k`` path latencies, so events grow with phases, not steps. On an
uncontended network with equal links this equals the closed form; with contention each step of the
pattern is assumed to meet the same sharing (exact when the contention lasts the whole phase).

The phases' flow-link incidence and path latencies of each (group, collective) are computed once per model
and reused across runs.

Examples
--------
A ring all-reduce of 8 MiB on 4 hosts of an ideal network takes 2(p-1)(α + n/(p·bw)):

>>> import simpy
>>> from topologies.basic import ideal
>>> net = FlowNetwork(ideal(4, bandwidth_Bps=2**30, latency_s=1e-6))
>>> env = simpy.Environment()
>>> done = net.session(env).collective("allreduce", "ring", (0, 1, 2, 3), 8 * 2**20)
>>> env.run(); abs(env.now / (2 * 3 * (1e-6 + 8 * 2**20 / (4 * 2**30))) - 1) < 1e-12
True
"""

from __future__ import annotations

from functools import partial

import numpy as np
import simpy

from sim.network.base import Session, cached_phases, register_model
from sim.network.fluidmodel import FluidNetwork, FluidSession


class FlowSession(FluidSession):
    """One run: every phase of every collective as a batch of flows on the run's fluid core."""

    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = ()) -> simpy.Event:
        plan = self.model.plan(op, algorithm, tuple(group), float(nbytes), tuple(halo_dims))
        done = self.env.event()
        if not plan:
            done.succeed()
            return done
        self._phase(plan, done, 0, None)
        return done

    def _phase(self, plan: tuple, done: simpy.Event, i: int, _event: simpy.Event | None) -> None:
        inc_flow, inc_link, nbytes, lat = plan[i]
        if i + 1 == len(plan):
            self.core.add(inc_flow, inc_link, nbytes, lat, event=done)
        else:
            self.core.add(inc_flow, inc_link, nbytes, lat, callback=partial(self._phase, plan, done, i + 1))


@register_model
class FlowNetwork(FluidNetwork):
    """Fluid flows per phase, max-min fair sharing of links (SimGrid-like)."""

    name = "flow"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._patterns: dict[tuple, tuple] = {}

    def build_plan(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float, kw: tuple) -> tuple:
        """Per phase: ``(inc_flow, inc_link, bytes, latency)`` of its flows, for this group."""
        out = []
        for ph in cached_phases(op, algorithm, len(group), nbytes, kw):
            inc_flow, inc_link, lat = self.pattern(group, ph.src, ph.dst)
            nb = np.broadcast_to(np.asarray(ph.nbytes, dtype=np.float64), lat.shape) * ph.steps
            out.append((inc_flow, inc_link, np.ascontiguousarray(nb), lat * ph.steps))
        return tuple(out)

    def pattern(self, group: tuple[int, ...], src: np.ndarray, dst: np.ndarray) -> tuple:
        """Incidence and one-step path latency of the transfers ``src -> dst`` (local ranks) of ``group``.

        Cached per (group, pattern), whatever the size: collectives of many sizes on the same groups
        (one per layer) route their pairs once.
        """
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        key = (group, src.tobytes(), dst.tobytes())
        hit = self._patterns.get(key)
        if hit is not None:
            return hit
        hosts = self.hosts_of(group)
        inc_flow, inc_link = self.router.incidence(hosts[src], hosts[dst])
        lat_link = self.router.latency_s[inc_link] if len(inc_link) else np.zeros(0)
        lat = np.bincount(inc_flow, weights=lat_link, minlength=len(src))
        hit = (inc_flow, inc_link, lat)
        if len(self._patterns) < self.max_plans:
            self._patterns[key] = hit
        return hit

    def session(self, env: simpy.Environment) -> Session:
        return FlowSession(self, env)
