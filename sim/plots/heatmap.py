"""Grid heat map: time (``iteration_s`` by default) over the process grids Pr x Pc (rows) and one more
column (``x``: a topology, a batch size, ...), each cell annotated, the best grid of each column boxed.
Transformer rows (4d) are labelled by their layout (``TP4·PP2·DP4``) and grouped by ``procs``.

Rows are ordered by P then Pr. A cell is the fastest row with that grid and x value (several strategies
or other varied columns collapse to their best). The default ``x`` is the first of topology, batch,
procs, network, compute, model, placement, collectives, overlap that varies; colours are on a log scale
when the times span more than a factor of 10.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim.plots.common import four_d_rows, grid_labels, label, require, short, varying

X_CANDIDATES = ("topology", "batch", "procs", "network", "compute", "model", "placement", "collectives", "overlap")


def grid_table(frame: pd.DataFrame, x: str | None = None, y: str = "iteration_s",
               source: str = "results") -> pd.DataFrame:
    """The heat map's values: index ``PrxPc`` (by P, then Pr), one column per ``x`` value (min ``y``)."""
    require(frame, ["pr", "pc", y], source)
    if x is not None:
        require(frame, [x], source)
    data = frame.assign(grid=grid_labels(frame), _p=_procs(frame), _x=frame[x] if x else "all rows")
    table = data.pivot_table(index=["_p", "pr", "grid"], columns="_x", values=y, aggfunc="min", sort=True)
    table.index = table.index.get_level_values("grid")
    table.columns.name = x or ""
    return table


def _procs(frame: pd.DataFrame) -> pd.Series:
    """Each row's process count: Pr x Pc, or ``procs`` where the CSV has it (a transformer layout's Pr x Pc
    leaves the pipeline out)."""
    return frame["procs"] if "procs" in frame.columns else frame["pr"] * frame["pc"]


def default_x(frame: pd.DataFrame) -> str | None:
    found = varying(frame, X_CANDIDATES)
    return found[0] if found else None


def _wrap(value: object, width: int = 18) -> str:
    """A column label on several lines, broken after ``:`` and ``,`` (topology specs), never cut short."""
    text = short(value, 200)
    if len(text) <= width:
        return text
    parts = re.split(r"(?<=[:,])", text)
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _panel(fig: Figure, ax, table: pd.DataFrame, norm, x: str | None, panel_title: str) -> object:
    """Draw one heat map of ``table`` on ``ax`` (cells annotated, the best of each column boxed)."""
    values = table.to_numpy(float)
    nrows, ncols = values.shape
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
    if x:
        ax.set_xticks(range(ncols), [_wrap(c) for c in table.columns], fontsize=8)
    else:
        ax.set_xticks([])
    ax.set_yticks(range(nrows), list(table.index), fontsize=8)
    ax.set_xlabel(label(x) if x else "")
    ax.set_title(panel_title, fontsize=9)
    return image


def grid_figure(frame: pd.DataFrame, x: str | None = None, y: str = "iteration_s", title: str | None = None,
                source: str = "results") -> Figure:
    """The heat map of the ok rows in ``frame`` (see the module docstring): one panel per process count P
    (grids of different P are not comparable cells), colours on one scale across panels."""
    x = x or default_x(frame)
    table = grid_table(frame, x, y, source)
    finite = table.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    lo, hi = float(finite.min()), float(finite.max())
    norm = LogNorm(lo, hi) if lo > 0 and hi / lo > 10 else Normalize(lo, hi if hi > lo else lo + 1)
    procs = sorted({int(p) for p in _procs(frame).dropna()})
    x_panel = None if x == "procs" and len(procs) > 1 else x  # each panel is one P already
    panels = []
    for p in procs:
        part = grid_table(frame[_procs(frame) == p], x_panel, y, source).dropna(axis=1, how="all")
        panels.append((p, part))
    per_row = min(len(panels), 4)
    n_rows = -(-len(panels) // per_row)
    cell_rows = max(len(t) for _, t in panels)
    cell_cols = max(t.shape[1] for _, t in panels)
    width = per_row * max(2.6, 1.3 * cell_cols + 1.6) + 1.4
    height = n_rows * max(2.6, 0.42 * cell_rows + 1.6) + 0.8
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(n_rows, per_row, squeeze=False)
    image = None
    for k, (p, part) in enumerate(panels):
        ax = axes[k // per_row][k % per_row]
        image = _panel(fig, ax, part, norm, x_panel, f"P = {p}" if len(panels) > 1 else "")
        if k % per_row == 0:
            ax.set_ylabel("layout" if four_d_rows(frame).all() else "grid Pr x Pc")
    for k in range(len(panels), n_rows * per_row):
        axes[k // per_row][k % per_row].set_visible(False)
    fig.colorbar(image, ax=axes.ravel().tolist(), label=label(y))
    best = "best per column" if x_panel else "best per P"
    fig.suptitle(title or f"{label(y)} by grid" + (f" and {label(x_panel)}" if x_panel else "")
                 + f" (red: {best})", fontsize=10)
    return fig


__all__ = ["X_CANDIDATES", "default_x", "grid_figure", "grid_table"]
