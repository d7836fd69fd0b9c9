"""Timeline (Gantt) plot of one run: the spans of each rank's compute and communication streams, coloured
by category (computation, batch, model, domain communication, redistribution), from ``Result.records``.

One lane per (rank, stream), at most ``max_ranks`` ranks (evenly sampled with the first, the last and the
critical rank, as the Chrome trace does). The time axis is in s, ms or µs, whichever reads best.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.plots.common import require

COLORS = {"compute": "#7f9cc8", "batch": "#75b27a", "model": "#f0a35e", "domain": "#d9706b",
          "redistribute": "#a58bc9", "pipeline": "#5a5a5a"}
NAMES = {"compute": "computation", "batch": "batch communication", "model": "model communication",
         "domain": "domain communication", "redistribute": "redistribution (Eq. 6)", "pipeline": "pipeline sends"}
#: the same categories as a transformer's 4-D grid names them
NAMES_4D = {**NAMES, "batch": "data-parallel (DP)", "model": "tensor-parallel (TP)", "domain": "context-parallel (CP)"}


def _time_unit(span_s: float) -> tuple[float, str]:
    if span_s >= 1.0:
        return 1.0, "s"
    if span_s >= 1e-3:
        return 1e3, "ms"
    return 1e6, "µs"


def timeline_figure(run: Any, max_ranks: int = 8, title: str | None = None, ranks: list[int] | None = None,
                    label: Any = None, names: dict[str, str] | None = None) -> Figure:
    """The timeline of ``run`` (a :class:`sim.api.Result`, or its ``records`` DataFrame): at most
    ``max_ranks`` ranks or the given ``ranks``, lanes named ``rank R stream`` or ``label(R) stream``,
    categories named by ``names`` (default :data:`NAMES`)."""
    from sim.results import critical_rank, sample_ranks

    records: pd.DataFrame = getattr(run, "records", run)
    require(records, ["rank", "stream", "category", "start_s", "end_s"], "records")
    names = names or NAMES
    if ranks is None:
        ranks = sample_ranks(sorted(int(r) for r in records["rank"].unique()), max_ranks, critical_rank(records))
    data = records[records["rank"].isin(ranks)]
    scale, unit = _time_unit(float(data["end_s"].max()) if len(data) else 0.0)
    lanes = [(r, s) for r in ranks
             for s in sorted(data.loc[data["rank"] == r, "stream"].unique(), key=lambda s: (s != "compute", s))]
    fig = Figure(figsize=(9.0, max(2.2, 0.45 * len(lanes) + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    for y, (rank, stream) in enumerate(lanes):
        lane = data[(data["rank"] == rank) & (data["stream"] == stream)]
        spans = list(zip(lane["start_s"] * scale, (lane["end_s"] - lane["start_s"]) * scale, strict=True))
        colors = [COLORS.get(c, "#999999") for c in lane["category"]]
        ax.broken_barh(spans, (y - 0.4, 0.8), facecolors=colors, edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(lanes)), [f"{label(r) if label else f'rank {r}'} {s}" for r, s in lanes], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit})")
    ax.grid(True, axis="x", alpha=0.3)
    present = [c for c in COLORS if c in set(data["category"])]
    fig.legend([Patch(color=COLORS[c]) for c in present], [names[c] for c in present], fontsize=8,
               loc="outside lower center", ncols=max(len(present), 1))
    shown = f"{len(ranks)} of {records['rank'].nunique()} ranks" if len(records) else "no records"
    ax.set_title(title or f"One training iteration, per rank and stream ({shown})", fontsize=10)
    return fig


__all__ = ["COLORS", "timeline_figure"]
