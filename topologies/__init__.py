"""Where a job runs: topology builders (networkx graphs), specs and presets, routing, statistics.

Builders return a :class:`networkx.Graph` with ``kind`` = ``"host"``/``"switch"`` on nodes and
``bandwidth_Bps``/``latency_s`` on edges (each edge one full-duplex link); :func:`build_topology` turns a
spec string into one, and :class:`Router` routes between its hosts.
"""

from topologies.basic import ideal, materialize_full_mesh, star
from topologies.fattree import fattree, leaf_spine
from topologies.routing import Router
from topologies.spec import build_topology, describe_kinds, list_presets

__all__ = ["Router", "build_topology", "describe_kinds", "fattree", "ideal", "leaf_spine", "list_presets",
           "materialize_full_mesh", "star"]
