"""Network models: how long the transfers of collectives take on a topology.

``make_network(name, graph, placement=None, ecmp=False)`` builds ``analytic``, ``flow`` or ``step``
(:mod:`sim.network.base`): each model module registers its class by name, and importing this package
imports them all, so every model is registered before anyone can ask for one. The engine opens ``model.session(env)`` per run and calls
``session.collective(op, algorithm, group, nbytes, halo_dims, count) -> simpy.Event`` (``count``
copies of the collective back to back: :func:`~sim.network.base.cached_phases`). Modules:

* :mod:`~sim.network.base` — interface, registry and factory, cached phases/costs/bytes, algorithm keywords;
* :mod:`~sim.network.analytic` — closed forms, no contention;
* :mod:`~sim.network.maxmin` — vectorized max-min fair rates (progressive filling);
* :mod:`~sim.network.fluid` — the fluid core: flows, re-rating on start/finish, latency after bytes;
* :mod:`~sim.network.flow` — one batch of flows per phase (steps folded into one flow);
* :mod:`~sim.network.step` — every step, per-rank dependencies, one flow per transfer.
"""

from sim.network import analytic, flow, step  # noqa: F401  (each registers its model)
from sim.network.base import NetworkModel, Session, make_network, model_names

#: the registered network models' names
MODELS: tuple[str, ...] = model_names()

__all__ = ["MODELS", "NetworkModel", "Session", "make_network", "model_names"]
