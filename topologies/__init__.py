"""Where a job runs: topology builders (networkx graphs), specs and presets, routing, statistics.

Builders return a :class:`networkx.Graph` with ``kind`` = ``"host"``/``"switch"`` on nodes and
``bandwidth_Bps``/``latency_s`` on edges (each edge one full-duplex link); :func:`build_topology` turns a
spec string into one, :class:`Router` routes between its hosts, :func:`topology_stats` sizes it.
"""

from topologies.basic import ideal, materialize_full_mesh, star
from topologies.dragonfly import dragonfly
from topologies.fattree import fattree, leaf_spine
from topologies.fileio import from_file
from topologies.hier import hier
from topologies.routing import Router
from topologies.spec import build_topology, describe_kinds, list_presets, load_preset
from topologies.stats import topology_stats
from topologies.torus import ring, torus

__all__ = ["Router", "build_topology", "describe_kinds", "dragonfly", "fattree", "from_file", "hier", "ideal",
           "leaf_spine", "list_presets", "load_preset", "materialize_full_mesh", "ring", "star",
           "topology_stats", "torus"]
