"""Scaling plot: time (``iteration_s`` or ``epoch_s``) against processes on log-log axes, one line per
strategy (or any ``hue`` column), with the ideal-scaling line.

Where several rows share a line and an x value (e.g. every grid of one P), the line goes through the
fastest of them, and that row's grid is written next to the marker. Scaling mode: ``strong`` (one B for
every P; ideal ``t0·P0/P``), ``weak`` (B/P the same for every row; ideal flat at ``t0``), detected from
the ``batch`` and ``procs`` columns unless given; ``none`` draws no ideal line. The ideal line starts at
the fastest time at the smallest x.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from sim.errors import UserError
from sim.plots.common import constants, grid_labels, label, require, short

MODES = ("auto", "strong", "weak", "none")
TITLE_KEYS = ("model", "batch", "topology", "network", "compute")


def detect_mode(frame: pd.DataFrame, x: str) -> str:
    """``strong`` when every row has the same batch, ``weak`` when batch/procs is the same for all and batch
    varies, else ``none``."""
    if x != "procs" or "batch" not in frame.columns:
        return "none"
    if frame["batch"].nunique() == 1:
        return "strong"
    if (frame["batch"] / frame["procs"]).nunique() == 1:
        return "weak"
    return "none"


def best_per_x(frame: pd.DataFrame, x: str, y: str, hue: str | None) -> pd.DataFrame:
    """The fastest row (min ``y``) per (hue, x), sorted by hue then x (ties: the first row)."""
    keys = [hue, x] if hue else [x]
    idx = frame.groupby(keys, sort=True, dropna=False)[y].idxmin()
    return frame.loc[idx.to_numpy()].sort_values(keys, kind="stable")


def scaling_figure(frame: pd.DataFrame, x: str = "procs", y: str = "iteration_s", hue: str | None = "strategy",
                   mode: str = "auto", title: str | None = None, source: str = "results") -> Figure:
    """The scaling plot of the ok rows in ``frame`` (see the module docstring)."""
    if mode not in MODES:
        raise UserError("mode", f"unknown scaling mode {mode!r}", ", ".join(MODES))
    require(frame, [x, y] + ([hue] if hue else []), source)
    if mode == "auto":
        mode = detect_mode(frame, x)
    data = frame[frame[y] > 0]
    if data.empty:
        raise UserError(y, f"no positive values in {source}", "rows with a positive time to plot on log axes")
    best = best_per_x(data, x, y, hue)
    fig = Figure(figsize=(7.0, 4.8))
    ax = fig.add_subplot()
    groups = best.groupby(hue, sort=True) if hue else [(None, best)]
    annotate = {"pr", "pc"} <= set(best.columns)
    written: set[tuple[float, str]] = set()
    for k, (name, group) in enumerate(groups):
        xs, ys = group[x].to_numpy(float), group[y].to_numpy(float)
        ax.plot(xs, ys, marker="o", label=short(name) if hue else y)
        if annotate:  # the grid of each point; lines alternate above/below so close labels do not collide
            for xv, yv, text in zip(xs, ys, grid_labels(group), strict=True):
                if (xv, text) not in written:
                    written.add((xv, text))
                    ax.annotate(text, (xv, yv), textcoords="offset points", xytext=(4, 4 if k % 2 == 0 else -11),
                                fontsize=7, alpha=0.75)
    xs_all = np.sort(best[x].unique().astype(float))
    x0 = xs_all[0]
    t0 = float(best.loc[best[x] == x0, y].min())
    if mode == "strong":
        ax.plot(xs_all, t0 * x0 / xs_all, "k--", lw=1, label="ideal (t·P0/P)")
    elif mode == "weak":
        ax.plot(xs_all, np.full_like(xs_all, t0), "k--", lw=1, label="ideal (flat)")
    ax.set_xscale("log", base=2 if x == "procs" else 10)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(FixedLocator(xs_all))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{v:g}" for v in xs_all])
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title=hue, fontsize=8)
    fixed = ", ".join(f"{k}={short(v, 36)}" for k, v in constants(frame, TITLE_KEYS).items())
    kind = {"strong": "Strong scaling", "weak": "Weak scaling"}.get(mode, "Scaling")
    ax.set_title(title or f"{kind}: {label(y)} vs {label(x)}" + (f"\n{fixed}" if fixed else ""), fontsize=10)
    return fig


__all__ = ["MODES", "best_per_x", "detect_mode", "scaling_figure"]
