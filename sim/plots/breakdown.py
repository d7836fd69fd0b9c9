"""Breakdown plot (the paper's figures): per grid Pr x Pc, a stacked bar of computation, model/domain
communication and batch communication; the best bar marked with its speedup over pure batch (1 x P).

Transformer rows (``strategy`` 4d, a sweep of TP × CP × PP × DP layouts) are labelled by their layout
(``TP4·PP2·DP4``); their model/domain part is TP + CP communication, batch is DP, and two parts are added:
pipeline communication (``pp_comm_s``) and the pipeline bubble (``bubble_s``, idle time), so that without
overlap a bar adds up to the iteration; pure data parallelism (TP = CP = PP = 1) stands for pure batch.

Bars are per epoch (``y="epoch_s"``, the paper's unit: each part times N/B) or per iteration
(``y="iteration_s"``). Model/domain communication is ``model_comm_s + domain_comm_s`` plus
``redistribute_s`` (the Eq. 6 layout changes) where the CSV has it. One panel per combination of the
``facet`` columns (default: those of model, batch, procs, topology, network, compute, placement, overlap,
dtype_bytes, collectives that vary). Where a panel has several rows for one grid (several strategies or
layer modes), the bar shows the fastest. "Best" is the lowest ``iteration_s``; the speedup is the 1 x P
bar's time over the best one's. Parts are summed, not overlapped: with ``overlap`` a bar can stand taller
than the iteration, whose time is marked by a black tick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.errors import UserError
from sim.plots.common import four_d_rows, grid_labels, label, require, short, varying

FACETS = ("model", "batch", "procs", "topology", "network", "compute", "placement", "overlap", "dtype_bytes",
          "collectives")
PARTS = (("computation", "#7f9cc8"), ("model/domain communication", "#f0a35e"), ("batch communication", "#75b27a"))
#: the parts a 4d (transformer) row adds
PIPELINE_PARTS = (("pipeline communication", "#b48cc8"), ("pipeline bubble", "#d9d9d9"))
MAX_PANELS = 12


def breakdown_table(frame: pd.DataFrame, y: str = "epoch_s", source: str = "results") -> pd.DataFrame:
    """One row per (facet values, grid): ``grid, computation, model/domain communication, batch
    communication, total`` in the unit of ``y`` (the fastest row per grid; see the module docstring)."""
    parts = ["compute_s", "model_comm_s", "domain_comm_s", "batch_comm_s", "iteration_s", "pr", "pc"]
    require(frame, parts + ([y] if y != "iteration_s" else []), source)
    if y not in ("epoch_s", "iteration_s"):
        raise UserError("y", f"{y!r} cannot be split into parts", "epoch_s or iteration_s for --kind breakdown")
    scale = frame[y] / frame["iteration_s"] if y == "epoch_s" else pd.Series(1.0, index=frame.index)
    redistribute = frame["redistribute_s"].fillna(0.0) if "redistribute_s" in frame.columns else 0.0
    four_d = four_d_rows(frame)
    pure = frame["pr"] == 1
    if four_d.any():
        require(frame, ["tp", "cp", "pp", "pp_comm_s", "bubble_s"], source)
        pure = pure.where(~four_d, (frame["tp"] == 1) & (frame["cp"] == 1) & (frame["pp"] == 1))
    out = pd.DataFrame({
        "grid": grid_labels(frame), "pr": frame["pr"].astype(int), "pc": frame["pc"].astype(int),
        "pure_batch": pure.astype(bool),
        PARTS[0][0]: frame["compute_s"] * scale,
        PARTS[1][0]: (frame["model_comm_s"] + frame["domain_comm_s"] + redistribute) * scale,
        PARTS[2][0]: frame["batch_comm_s"] * scale,
        "total": frame["iteration_s"] * scale, "iteration_s": frame["iteration_s"],
    }, index=frame.index)
    if four_d.any():
        for (part, _), column in zip(PIPELINE_PARTS, ("pp_comm_s", "bubble_s"), strict=True):
            out[part] = frame[column].where(four_d, 0.0).fillna(0.0) * scale
    return out


def _panels(frame: pd.DataFrame, facet: Sequence[str] | None, source: str) -> list[tuple[str, pd.DataFrame]]:
    keys = list(facet) if facet is not None else varying(frame, FACETS)
    require(frame, keys, source)
    if not keys:
        return [("", frame)]
    out = []
    for values, group in frame.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        out.append((", ".join(f"{k}={short(v, 28)}" for k, v in zip(keys, values, strict=True)), group))
    return out


def breakdown_figure(frame: pd.DataFrame, y: str = "epoch_s", facet: Sequence[str] | None = None,
                     title: str | None = None, source: str = "results") -> Figure:
    """The breakdown plot of the ok rows in ``frame`` (see the module docstring)."""
    breakdown_table(frame, y, source)  # checks the columns once, naming the file
    panels = _panels(frame, facet, source)
    if len(panels) > MAX_PANELS:
        raise UserError("facet", f"{len(panels)} panels (more than {MAX_PANELS})",
                        "fewer distinct values in the results, or --facet with fewer columns")
    ncols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    widest = max(len(g) for _, g in panels)
    fig = Figure(figsize=(max(5.0, 0.55 * widest + 2.0) * ncols, 3.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (name, group) in zip(axes, panels, strict=False):
        _draw_panel(ax, group, y, name)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(names), fontsize=8)
    unit = "per epoch" if y == "epoch_s" else "per iteration"
    if four_d_rows(frame).all():
        default = f"Time {unit} by layout (TP: model, CP: domain, PP: pipeline, DP: batch)"
    else:
        default = f"Time {unit} by process grid Pr x Pc (Pr: model/domain, Pc: batch)"
    fig.suptitle(title or default, fontsize=11)
    return fig


def _draw_panel(ax, group: pd.DataFrame, y: str, name: str) -> None:
    table = breakdown_table(group, y)
    table = table.loc[table.groupby("grid", sort=False)["iteration_s"].idxmin().to_numpy()]
    table = table.sort_values(["pr", "pc"], kind="stable").reset_index(drop=True)
    xs = np.arange(len(table))
    bottom = np.zeros(len(table))
    for part, color in PARTS + (PIPELINE_PARTS if PIPELINE_PARTS[0][0] in table.columns else ()):
        values = table[part].to_numpy(float)
        ax.bar(xs, values, bottom=bottom, color=color, label=part, width=0.7)
        bottom += values
    if not np.allclose(bottom, table["total"].to_numpy(float), rtol=1e-9, atol=0):
        ax.scatter(xs, table["total"], marker="_", s=300, color="black", zorder=3, label="iteration (overlapped)")
    best = int(table["iteration_s"].to_numpy().argmin())
    ax.bar(xs[best], bottom[best], width=0.7, fill=False, edgecolor="black", linewidth=2.0)
    batch_only = table.index[table["pure_batch"]]
    text = f"best {table['grid'][best]}"
    if len(batch_only) and batch_only[0] == best:
        text += " (pure batch)"
    elif len(batch_only):
        speedup = float(table["iteration_s"][batch_only[0]] / table["iteration_s"][best])
        text += f"\n{speedup:.2f}x vs {table['grid'][batch_only[0]]}"
    ax.annotate(text, (xs[best], bottom[best]), textcoords="offset points", xytext=(0, 4), ha="center",
                va="bottom", fontsize=8, fontweight="bold")
    ax.set_ylim(0, max(bottom.max(), float(table["total"].max())) * 1.25)
    ax.set_xticks(xs, table["grid"], rotation=45 if len(xs) > 6 else 0, fontsize=8)
    ax.set_xlabel("layout" if four_d_rows(group).all() else "grid Pr x Pc")
    ax.set_ylabel(label(y))
    ax.set_title(name, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)


__all__ = ["FACETS", "MAX_PANELS", "PARTS", "PIPELINE_PARTS", "breakdown_figure", "breakdown_table"]
