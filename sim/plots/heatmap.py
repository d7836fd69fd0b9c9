"""Grid heat map: time (``iteration_s`` by default) over the process grids Pr x Pc (rows) and one more
column (``x``: a topology, a batch size, ...), each cell annotated, the best grid of each column boxed.

Rows are ordered by P then Pr. A cell is the fastest row with that grid and x value (several strategies
or other varied columns collapse to their best). The default ``x`` is the first of topology, batch,
procs, network, compute, model, placement, collectives, overlap that varies; colours are on a log scale
when the times span more than a factor of 10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim.plots.common import grid_labels, label, require, short, varying

X_CANDIDATES = ("topology", "batch", "procs", "network", "compute", "model", "placement", "collectives", "overlap")


def grid_table(frame: pd.DataFrame, x: str | None = None, y: str = "iteration_s",
               source: str = "results") -> pd.DataFrame:
    """The heat map's values: index ``PrxPc`` (by P, then Pr), one column per ``x`` value (min ``y``)."""
    require(frame, ["pr", "pc", y], source)
    if x is not None:
        require(frame, [x], source)
    data = frame.assign(grid=grid_labels(frame), _p=frame["pr"] * frame["pc"], _x=frame[x] if x else "all rows")
    table = data.pivot_table(index=["_p", "pr", "grid"], columns="_x", values=y, aggfunc="min", sort=True)
    table.index = table.index.get_level_values("grid")
    table.columns.name = x or ""
    return table


def default_x(frame: pd.DataFrame) -> str | None:
    found = varying(frame, X_CANDIDATES)
    return found[0] if found else None


def grid_figure(frame: pd.DataFrame, x: str | None = None, y: str = "iteration_s", title: str | None = None,
                source: str = "results") -> Figure:
    """The heat map of the ok rows in ``frame`` (see the module docstring)."""
    x = x or default_x(frame)
    table = grid_table(frame, x, y, source)
    values = table.to_numpy(float)
    finite = values[np.isfinite(values)]
    lo, hi = float(finite.min()), float(finite.max())
    norm = LogNorm(lo, hi) if lo > 0 and hi / lo > 10 else Normalize(lo, hi if hi > lo else lo + 1)
    nrows, ncols = values.shape
    fig = Figure(figsize=(max(4.5, 1.5 * ncols + 2.5), max(3.0, 0.42 * nrows + 1.8)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis_r", norm=norm, aspect="auto")
    for i in range(nrows):
        for j in range(ncols):
            if np.isfinite(values[i, j]):
                shade = norm(values[i, j])
                ax.text(j, i, f"{values[i, j]:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if shade > 0.6 else "black")
    for j in range(ncols):
        column = values[:, j]
        if np.isfinite(column).any():
            i = int(np.nanargmin(column))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(ncols), [short(c, 30) for c in table.columns], rotation=30 if ncols > 1 else 0,
                  ha="right" if ncols > 1 else "center", fontsize=8)
    ax.set_yticks(range(nrows), list(table.index), fontsize=8)
    ax.set_xlabel(label(x) if x else "")
    ax.set_ylabel("grid Pr x Pc")
    fig.colorbar(image, ax=ax, label=label(y))
    ax.set_title(title or f"{label(y)} by grid" + (f" and {label(x)}" if x else "") + " (red: best per column)",
                 fontsize=10)
    return fig


__all__ = ["X_CANDIDATES", "default_x", "grid_figure", "grid_table"]
