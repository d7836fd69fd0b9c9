"""Draw a topology to PNG, SVG or PDF with matplotlib: hosts and switches in different colours.

Layouts: switched networks in layers by hop distance from the hosts (hosts at the bottom, then edge,
aggregation and core switches, as a fat-tree is usually drawn); rings on a circle; tori by coordinates
(a 3-D torus as its 2-D slices side by side); an implicit full mesh on a circle, with its links drawn up to
64 hosts. The file is written atomically (a temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import networkx as nx

from sim.errors import UserError

FORMATS = (".png", ".svg", ".pdf")
MAX_NODES = 5000
HOST_COLOUR, SWITCH_COLOUR = "#4C72B0", "#DD8452"


def _layout(G: nx.Graph) -> tuple[nx.Graph, dict]:
    hosts = G.graph["hosts"]
    if "full_mesh" in G.graph:
        from topologies.basic import materialize_full_mesh

        H = materialize_full_mesh(G) if len(hosts) <= 64 else G
        return H, nx.circular_layout(hosts)
    if G.graph.get("kind") == "ring":
        return G, nx.circular_layout(hosts)
    if "dims" in G.graph:
        dims = G.graph["dims"]
        pos = {}
        for h, c in G.nodes(data="coord"):
            c = tuple(c) + (0,) * (3 - len(c))
            y = c[0] if len(dims) > 1 else 0
            x = c[1] if len(dims) > 1 else c[0]
            x += c[2] * ((dims[1] if len(dims) > 1 else dims[0]) + 1) if len(dims) > 2 else 0
            pos[h] = (float(x), float(-y))
        return G, pos
    dist = nx.multi_source_dijkstra_path_length(G, set(hosts), weight=None)
    layers: dict[int, list] = {}
    for n in G.nodes:  # builders add switches in their natural order (pod by pod, group by group)
        layers.setdefault(dist.get(n, 0), []).append(n)
    widest = max(len(v) for v in layers.values())
    pos = {}
    for depth, members in layers.items():
        for i, n in enumerate(members):
            pos[n] = ((i + 0.5) * widest / len(members), float(depth) * max(1.0, widest / 8))
    return G, pos


def _wraps(G: nx.Graph) -> list:
    """Torus and ring links that wrap around (drawn as arcs so they do not hide the others)."""
    if "dims" not in G.graph or G.graph.get("kind") == "ring":
        return []
    return [(u, v) for u, v in G.edges if sum(abs(a - b) for a, b in zip(G.nodes[u]["coord"], G.nodes[v]["coord"],
                                                                        strict=True)) > 1]


def draw_topology(G: nx.Graph, path: str | Path, title: str | None = None) -> Path:
    """Draw ``G`` to ``path`` (format from the suffix: .png, .svg or .pdf) and return the path."""
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError("draw", f"unknown image type {path.suffix!r} in {str(path)!r}", ".png, .svg or .pdf")
    if not path.parent.exists():
        raise UserError("draw", f"folder {str(path.parent)!r} does not exist", "a path in an existing folder")
    if G.number_of_nodes() > MAX_NODES:
        raise UserError("draw", f"{G.number_of_nodes()} nodes are too many to draw", f"at most {MAX_NODES} nodes")
    H, pos = _layout(G.copy())
    n = H.number_of_nodes()
    size = max(6.0, min(30.0, 0.25 * n ** 0.75 + 4))
    fig = Figure(figsize=(size, size * 0.7))
    ax = fig.add_subplot()
    node_size = max(8.0, min(300.0, 3000.0 / max(n, 1)))
    colours = [SWITCH_COLOUR if H.nodes[v].get("kind") == "switch" else HOST_COLOUR for v in H.nodes]
    wraps = _wraps(H)
    straight = [e for e in H.edges if e not in set(wraps)]
    nx.draw_networkx_edges(H, pos, edgelist=straight, ax=ax, width=0.5, alpha=0.5)
    if wraps:
        nx.draw_networkx_edges(H, pos, edgelist=wraps, ax=ax, width=0.5, alpha=0.35, arrows=True,
                               arrowstyle="-", connectionstyle="arc3,rad=0.25")
    nx.draw_networkx_nodes(H, pos, ax=ax, node_color=colours, node_size=node_size,
                           node_shape="o", linewidths=0)
    if n <= 80:
        nx.draw_networkx_labels(H, pos, ax=ax, font_size=6)
    ax.set_title(title or G.graph.get("kind", "topology"))
    ax.set_axis_off()
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], marker="o", ls="", color=HOST_COLOUR, label="host"),
                       Line2D([], [], marker="o", ls="", color=SWITCH_COLOUR, label="switch")], loc="best")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", format=path.suffix.lower()[1:])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
