"""Scaling plot: time (``iteration_s`` or ``epoch_s``) against processes on log-log axes, one line per
strategy (or any ``hue`` column), with the ideal-scaling line.

Where several rows share a line and an x value (e.g. every grid of one P), the line goes through the
fastest of them, and that row's grid is written next to the marker. Scaling mode: ``strong`` (one B for
every P; ideal ``t0·P0/P``), ``weak`` (B/P the same for every row; ideal flat at ``t0``), detected from
the ``batch`` and ``procs`` columns unless given; ``none`` draws no ideal line. The ideal line starts at
the fastest time at the smallest x.
"""

from __future__ import annotations

import textwrap

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
    fig = Figure(figsize=(7.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    groups = best.groupby(hue, sort=True) if hue else [(None, best)]
    annotate = {"pr", "pc"} <= set(best.columns)
    labels: dict[tuple[float, str], float] = {}
    for name, group in groups:
        xs, ys = group[x].to_numpy(float), group[y].to_numpy(float)
        ax.plot(xs, ys, marker="o", label=short(name) if hue else y)
        if annotate:  # the grid of each point (a grid shared by lines at one x is written once)
            for xv, yv, text in zip(xs, ys, grid_labels(group), strict=True):
                labels.setdefault((xv, text), yv)
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
    wrapped = "\n".join(textwrap.wrap(fixed, 90))
    ax.set_title(title or f"{kind}: {label(y)} vs {label(x)}" + (f"\n{wrapped}" if fixed else ""), fontsize=10)
    _place_labels(fig, ax, labels)
    return fig


def _place_labels(fig: Figure, ax, labels: dict[tuple[float, str], float], gap_pt: float = 10.0) -> None:
    """Write each label right of its marker; labels of one x are stacked at least ``gap_pt`` apart so that
    none overlaps another (markers of several lines at one x can be arbitrarily close)."""
    ax.autoscale_view()
    to_pt = 72.0 / fig.dpi
    by_x: dict[float, list[tuple[float, str, float]]] = {}
    for (xv, text), yv in labels.items():
        y_pt = ax.transData.transform((xv, yv))[1] * to_pt
        by_x.setdefault(xv, []).append((y_pt, text, yv))
    for xv, items in by_x.items():
        items.sort()
        placed: list[float] = []
        for y_pt, _text, _yv in items:
            placed.append(max(y_pt, placed[-1] + gap_pt) if placed else y_pt)
        shift = (sum(p - y for p, (y, _, _) in zip(placed, items, strict=True)) / len(items))
        for (y_pt, text, yv), p in zip(items, placed, strict=True):
            ax.annotate(text, (xv, yv), textcoords="offset points", xytext=(5, p - shift - y_pt - 3),
                        fontsize=7, alpha=0.8)


__all__ = ["MODES", "best_per_x", "detect_mode", "scaling_figure"]
