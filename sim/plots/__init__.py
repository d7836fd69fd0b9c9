"""Plots of sweep results: ``scaling`` (time vs P, log-log, ideal line), ``breakdown`` (the paper's stacked
bars per grid) and ``grid`` (heat map over grids and one more column); and of one run: ``timeline``.

Each ``*_figure`` takes a DataFrame of ok rows and returns a :class:`matplotlib.figure.Figure`;
:func:`plot_results` reads a results CSV, draws one kind and saves it atomically (PNG, SVG or PDF by
extension) — the whole of ``dnnsim plot``.

Examples
--------
>>> from sim.plots import plot_results                                         # doctest: +SKIP
>>> plot_results("results.csv", "breakdown", "breakdown.png")                   # doctest: +SKIP
{'kind': 'breakdown', 'out': 'breakdown.png', 'rows': 24}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import UserError
from sim.plots.breakdown import breakdown_figure, breakdown_table
from sim.plots.common import ok_rows, read_results, save_figure
from sim.plots.heatmap import grid_figure, grid_table
from sim.plots.scaling import scaling_figure
from sim.plots.timeline import timeline_figure

KINDS = ("scaling", "breakdown", "grid")


def make_figure(frame: Any, kind: str, *, x: str | None = None, y: str | None = None, hue: str | None = None,
                mode: str = "auto", facet: list[str] | None = None, title: str | None = None,
                source: str = "results") -> Any:
    """Draw ``kind`` from the ok rows of ``frame`` (see each kind's module for the options it reads)."""
    if kind == "scaling":
        return scaling_figure(frame, x=x or "procs", y=y or "iteration_s", hue=hue or "strategy", mode=mode,
                              title=title, source=source)
    if kind == "breakdown":
        return breakdown_figure(frame, y=y or ("epoch_s" if "epoch_s" in frame.columns else "iteration_s"),
                                facet=facet, title=title, source=source)
    if kind == "grid":
        return grid_figure(frame, x=x, y=y or "iteration_s", title=title, source=source)
    raise UserError("kind", f"unknown plot kind {kind!r}", ", ".join(KINDS))


def plot_results(results: str | Path, kind: str, out: str | Path, **options: Any) -> dict[str, Any]:
    """Read the results CSV, draw ``kind`` from its ok rows and save it to ``out``; returns
    ``{"kind", "out", "rows"}`` (rows: the ok rows plotted from)."""
    frame, name = read_results(results)
    if kind not in KINDS:
        raise UserError("kind", f"unknown plot kind {kind!r}", ", ".join(KINDS))
    fig = make_figure(frame, kind, source=name, **options)
    save_figure(fig, out)
    return {"kind": kind, "out": str(out), "rows": len(frame)}


__all__ = ["KINDS", "breakdown_figure", "breakdown_table", "grid_figure", "grid_table", "make_figure", "ok_rows",
           "plot_results", "read_results", "save_figure", "scaling_figure", "timeline_figure"]
