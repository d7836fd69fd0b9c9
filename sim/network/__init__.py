"""Network models: how long the transfers of collectives take on a topology.

``make_network(name, graph, placement=None, ecmp=False)`` builds ``analytic``, ``flow`` or ``step``
(:mod:`sim.network.base`); the engine opens ``model.session(env)`` per run and calls
``session.collective(op, algorithm, group, nbytes, halo_dims) -> simpy.Event``. Modules:

* :mod:`~sim.network.base` — interface, factory, cached phases/costs/bytes, algorithm keywords;
* :mod:`~sim.network.analytic` — closed forms, no contention;
* :mod:`~sim.network.maxmin` — vectorized max-min fair rates (progressive filling);
* :mod:`~sim.network.fluid` — the fluid core: flows, re-rating on start/finish, latency after bytes;
* :mod:`~sim.network.flow` — one batch of flows per phase (steps folded into one flow);
* :mod:`~sim.network.step` — every step, per-rank dependencies, one flow per transfer.
"""

from sim.network.base import MODELS, NetworkModel, Session, make_network

__all__ = ["MODELS", "NetworkModel", "Session", "make_network"]
