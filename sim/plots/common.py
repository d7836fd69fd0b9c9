"""Shared plumbing of the plots: reading a results CSV, checking columns, axis labels, atomic saving.

Plots are drawn on :class:`matplotlib.figure.Figure` objects made directly (no ``pyplot``: no global
state, no GUI backend), so they work the same in scripts, the CLI and notebooks (where a ``Figure``
displays itself).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import UserError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

#: axis labels with units for the columns people plot
LABELS = {
    "procs": "processes P", "batch": "minibatch size B", "pr": "Pr (model/domain)", "pc": "Pc (batch)",
    "iteration_s": "iteration time (s)", "epoch_s": "epoch time (s)", "compute_s": "computation per iteration (s)",
    "comm_s": "communication per iteration (s)", "exposed_comm_s": "exposed communication per iteration (s)",
    "batch_comm_s": "batch communication per iteration (s)", "model_comm_s": "model communication per iteration (s)",
    "domain_comm_s": "domain communication per iteration (s)", "bytes_sent_per_rank": "bytes sent per rank (B)",
    "memory_per_rank_bytes": "memory per rank (B)", "wall_s": "simulator wall time (s)",
    "topology": "topology", "network": "network model", "compute": "compute model", "strategy": "strategy",
}


def label(column: str) -> str:
    """Axis label of ``column`` with its unit (``foo_s`` -> ``foo (s)``, ``foo_bytes`` -> ``foo (B)``)."""
    if column in LABELS:
        return LABELS[column]
    if column.endswith("_s"):
        return f"{column[:-2].replace('_', ' ')} (s)"
    if column.endswith("_bytes"):
        return f"{column[:-6].replace('_', ' ')} (B)"
    return column.replace("_", " ")


def require(frame: pd.DataFrame, needed: Iterable[str], source: str) -> None:
    """Raise ``UserError(<column>, "missing from <source>", ...)`` for the first needed column absent."""
    for column in needed:
        if column not in frame.columns:
            have = ", ".join(list(frame.columns)[:8]) + (", ..." if len(frame.columns) > 8 else "")
            raise UserError(column, f"missing from {source}",
                            f"a results CSV from dnnsim sweep with a {column} column (it has: {have or 'none'})")


def read_results(path: str | Path) -> tuple[pd.DataFrame, str]:
    """The ok rows of a results CSV (all rows when it has no ``status`` column) and its file name."""
    from sim.csvfile import read_csv_file
    from sim.sweep.parquetsink import is_parquet, read_parquet_frame

    p = Path(path)
    if is_parquet(p):
        if not p.is_file():
            raise UserError("results", f"results file {str(p)!r} does not exist", "a file written by dnnsim sweep")
        frame = read_parquet_frame(p)
    else:
        frame = read_csv_file(p, "results", "results", "a CSV (or .parquet) written by dnnsim sweep")
    return ok_rows(frame, p.name), p.name


def ok_rows(frame: pd.DataFrame, source: str = "results") -> pd.DataFrame:
    """Rows with ``status == "ok"`` (every row without a status column); error when none is left."""
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    if frame.empty:
        raise UserError("status", f"no ok rows in {source}", "a results CSV with at least one status=ok row")
    return frame.reset_index(drop=True)


def varying(frame: pd.DataFrame, candidates: Sequence[str]) -> list[str]:
    """The candidate columns present in ``frame`` that take more than one value."""
    return [c for c in candidates if c in frame.columns and frame[c].nunique(dropna=False) > 1]


def constants(frame: pd.DataFrame, candidates: Sequence[str]) -> dict[str, Any]:
    """The candidate columns that hold one value, with it (for titles)."""
    return {c: frame[c].iloc[0] for c in candidates if c in frame.columns and frame[c].nunique(dropna=False) == 1}


def four_d_rows(frame: pd.DataFrame) -> pd.Series:
    """Which rows are transformer layouts on the TP × CP × PP × DP grid (``strategy`` 4d)."""
    return frame["strategy"] == "4d" if "strategy" in frame.columns else pd.Series(False, index=frame.index)


def grid_labels(frame: pd.DataFrame) -> pd.Series:
    """``"PrxPc"`` of each row; a 4d row (whose ``pr x pc`` leaves the pipeline out) names its layout instead:
    the dimensions above 1 in the order TP, CP, PP, DP, e.g. ``"TP4·PP2·DP4"`` (``"DP1"`` on one process)."""
    grid = frame["pr"].astype(int).astype(str) + "x" + frame["pc"].astype(int).astype(str)
    dims = ("tp", "cp", "pp", "dp")
    four_d = four_d_rows(frame)
    if not four_d.any() or not set(dims) <= set(frame.columns):
        return grid
    layouts = frame.loc[four_d, list(dims)].apply(
        lambda row: "·".join(f"{k.upper()}{int(row[k])}" for k in dims if int(row[k]) > 1) or "DP1", axis=1)
    return grid.where(~four_d, layouts)


def short(value: Any, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from the extension: .png, .svg, .pdf) atomically: a temporary file
    in the same directory is moved in place, so a failure leaves any existing file untouched."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise UserError("output", f"{str(p)!r} has no known image extension", "a file ending in .png, .svg or .pdf")
    if not p.resolve().parent.is_dir():
        raise UserError("output", f"directory {str(p.resolve().parent)!r} does not exist",
                        "a path in an existing directory")
    fd, tmp = tempfile.mkstemp(dir=p.resolve().parent, prefix=f".{p.name}.", suffix=p.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


__all__ = ["FORMATS", "LABELS", "constants", "four_d_rows", "grid_labels", "label", "ok_rows", "read_results", "require",
           "save_figure", "short", "varying"]
