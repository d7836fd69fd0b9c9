"""Draw a topology to PNG, SVG or PDF with matplotlib: hosts and switches in different colours, and
optionally each link coloured by the load a run put on it (``links.csv`` of ``dnnsim run --out``).

Layouts: switched networks in layers by hop distance from the hosts (hosts at the bottom, then edge,
aggregation and core switches, as a fat-tree is usually drawn); rings on a circle; tori by coordinates
(a 3-D torus as its 2-D slices side by side); an implicit full mesh on a circle, with its links drawn up to
64 hosts. The file is written atomically (a temporary file in the same folder, then renamed), with the
permissions the umask allows.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def read_link_load(path: str | Path) -> dict[tuple[str, str], float]:
    """``{(src, dst): mean_util}`` from a ``links.csv`` written by ``dnnsim run --out`` (node names as text)."""
    from sim.csvfile import read_csv_file

    frame = read_csv_file(path, "load", "links", "a links.csv written by dnnsim run --out (flow or step)")
    missing = [c for c in ("src", "dst", "mean_util") if c not in frame.columns]
    if missing:
        raise UserError("load", f"{str(path)!r} lacks column(s) {', '.join(missing)}",
                        "a links.csv written by dnnsim run --out (columns src, dst, mean_util)")
    return {(str(u), str(v)): float(x) for u, v, x in zip(frame["src"], frame["dst"], frame["mean_util"],
                                                          strict=True)}


def draw_topology(G: nx.Graph, path: str | Path, title: str | None = None,
                  load: Mapping[tuple[str, str], float] | None = None) -> Path:
    """Draw ``G`` to ``path`` (format from the suffix: .png, .svg or .pdf) and return the path.

    ``load`` maps directed links ``(src, dst)`` (node names as text) to their mean utilisation; each drawn
    link is then coloured by the larger of its two directions (links of the map not in ``G`` are refused).
    """
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
    style: dict = {"width": 0.5, "alpha": 0.5}
    if load is not None:
        names = {str(v) for v in H.nodes}
        unknown = [f"{u}->{v}" for u, v in load if u not in names or v not in names]
        if unknown:
            raise UserError("load", f"link {unknown[0]} is not in this topology",
                            "the links.csv of a run on the same topology and procs")
        from matplotlib import colormaps
        from matplotlib.colors import Normalize

        norm, cmap = Normalize(0.0, 1.0), colormaps["plasma_r"]

        def edge_style(edges: list) -> dict:
            util = [max(load.get((str(u), str(v)), 0.0), load.get((str(v), str(u)), 0.0)) for u, v in edges]
            return {"edge_color": [cmap(norm(x)) for x in util], "width": [0.6 + 3.0 * x for x in util],
                    "alpha": 0.9}

        from matplotlib.cm import ScalarMappable

        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6,
                     label="mean link utilisation (busier direction)")
    nx.draw_networkx_edges(H, pos, edgelist=straight, ax=ax,
                           **(edge_style(straight) if load is not None else style))
    if wraps:
        nx.draw_networkx_edges(H, pos, edgelist=wraps, ax=ax, arrows=True, arrowstyle="-",
                               connectionstyle="arc3,rad=0.25",
                               **(edge_style(wraps) if load is not None else {"width": 0.5, "alpha": 0.35}))
    nx.draw_networkx_nodes(H, pos, ax=ax, node_color=colours, node_size=node_size,
                           node_shape="o", linewidths=0)
    if n <= 80:
        nx.draw_networkx_labels(H, pos, ax=ax, font_size=6)
    ax.set_title(title or G.graph.get("kind", "topology"))
    ax.set_axis_off()
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], marker="o", ls="", color=HOST_COLOUR, label="host"),
                       Line2D([], [], marker="o", ls="", color=SWITCH_COLOUR, label="switch")], loc="best")
    from sim.plots.common import save_figure

    save_figure(fig, path)
    return path
