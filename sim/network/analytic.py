"""The ``analytic`` network model: each collective costs its algorithm's closed form, nothing else.

α is the topology's ``router.alpha_s`` (the largest host-to-host path latency) and 1/β its
``router.bandwidth_Bps`` (the smallest host-link bandwidth), × ``count`` for an op that stands for
``count`` copies. Concurrent collectives do not slow each other.
One SimPy timeout per collective.
"""

from __future__ import annotations

import simpy

from sim.network.base import NetworkModel, Session, cached_cost, register_model


class AnalyticSession(Session):
    """Closed-form timing of collectives."""

    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> simpy.Event:
        m = self.model
        kw = m.algo_kwargs(op, algorithm, group, halo_dims)
        cost = cached_cost(op, algorithm, len(group), float(nbytes), m.alpha_s, m.bandwidth_Bps, kw, count)
        return self.env.timeout(cost)


@register_model
class AnalyticNetwork(NetworkModel):
    """Closed-form α-β costs, no topology and no contention."""

    name = "analytic"

    def session(self, env: simpy.Environment) -> Session:
        return AnalyticSession(self, env)
