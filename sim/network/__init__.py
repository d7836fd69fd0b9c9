"""Network models: how long the transfers of collectives take on a topology.

``make_network(name, graph, placement=None, ecmp=False)`` builds ``analytic``, ``flow`` or ``step``
(see :mod:`sim.network.base`); the engine opens a session per run and asks it for collective events.
"""

from sim.network.base import MODELS, NetworkModel, Session, make_network

__all__ = ["MODELS", "NetworkModel", "Session", "make_network"]
