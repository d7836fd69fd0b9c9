"""Measured compute: per-layer forward and backward seconds from a profile CSV (``dnnsim profile``).

The CSV has the columns ``layer, batch, fwd_s, bwd_s`` (others are ignored), one row per layer and
measured batch size; ``dnnsim profile`` also writes ``precision`` and ``memory_format``, which
:func:`profile_settings` reads back for ``dnnsim calibrate compute``. A layer's time at a local batch is interpolated log-log between the measured batches
and extrapolated linearly in the batch (constant time per sample) outside them
(:func:`workloads.interp.loglog_interp`), then multiplied by ``shard``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sim.errors import UserError
from workloads.interp import loglog_interp
from workloads.layer import Layer, Model

COLUMNS = ("layer", "batch", "fwd_s", "bwd_s")


def read_profile(path: str | Path) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Read and validate a profile CSV.

    Returns
    -------
    dict
        layer name -> (batches ascending, fwd seconds, bwd seconds).

    Raises
    ------
    UserError
        ``compute`` field: missing file, unreadable CSV, missing columns, non-positive batch, negative or
        non-finite time, a (layer, batch) pair measured twice.
    """
    from sim.csvfile import read_csv_file

    path = Path(path)
    frame = read_csv_file(path, "compute", "profile", f"profile:FILE, a CSV with columns {', '.join(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError("compute", f"profile {str(path)!r} lacks column(s) {', '.join(missing)}",
                        f"a CSV with columns {', '.join(COLUMNS)}")
    if frame.empty:
        raise UserError("compute", f"profile {str(path)!r} has no rows", "one row per layer and batch")
    table: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for name, rows in frame.groupby("layer", sort=False):
        try:
            b = pd.to_numeric(rows["batch"]).astype(float).tolist()
            f = pd.to_numeric(rows["fwd_s"]).astype(float).tolist()
            g = pd.to_numeric(rows["bwd_s"]).astype(float).tolist()
        except (ValueError, TypeError):
            raise UserError("compute", f"profile row of layer {name!r} has a non-numeric batch or time",
                            "numbers in batch, fwd_s, bwd_s") from None
        if any(not math.isfinite(x) or x <= 0 for x in b):
            raise UserError("compute", f"layer {name!r} has a batch that is not > 0", "batch sizes > 0")
        if any(not math.isfinite(x) or x < 0 for x in f + g):
            raise UserError("compute", f"layer {name!r} has a negative or missing time", "seconds >= 0")
        if len(set(b)) != len(b):
            raise UserError("compute", f"layer {name!r} is measured twice at one batch", "one row per layer and batch")
        order = sorted(range(len(b)), key=b.__getitem__)
        table[str(name)] = ([b[i] for i in order], [f[i] for i in order], [g[i] for i in order])
    return table


#: the measurement settings ``dnnsim profile`` records per row
SETTING_COLUMNS = ("precision", "memory_format")


def profile_settings(path: str | Path) -> dict[str, str]:
    """The ``precision`` and ``memory_format`` a profile records (absent columns are left out).

    Raises
    ------
    UserError
        ``profile`` field when a column holds more than one value (one profile, one setting).
    """
    from sim.csvfile import read_csv_file

    frame = read_csv_file(Path(path), "profile", "profile", "a CSV written by dnnsim profile")
    out: dict[str, str] = {}
    for column in SETTING_COLUMNS:
        if column in frame.columns:
            values = sorted(set(frame[column].dropna().astype(str)))
            if len(values) > 1:
                raise UserError("profile", f"{str(path)!r} mixes {column} values {', '.join(values)}",
                                f"one {column} per profile (run dnnsim profile once per setting)")
            if values:
                out[column] = values[0]
    return out


class ProfileCompute:
    """Times interpolated from a measured profile (module docstring).

    Parameters
    ----------
    path : str or Path
        The CSV.
    model : Model, optional
        If given, every layer of it must be in the profile (checked now rather than mid-run).
    """

    def __init__(self, path: str | Path, model: Model | None = None) -> None:
        self.path = str(path)
        self.name = f"profile:{self.path}"
        self.table = read_profile(path)
        if model is not None:
            absent = [layer.name for layer in model.layers if layer.name not in self.table]
            if absent:
                shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
                raise UserError("compute", f"profile {self.path!r} has no rows for layer(s) {shown} of {model.name}",
                                f"a profile of {model.name} (dnnsim profile --model {model.name})")

    def time(self, layer: Layer, phase: str, local_batch: float, shard: float = 1.0) -> float:
        """Seconds for ``phase`` ("fwd"/"bwd") of ``layer`` at ``local_batch`` samples, fraction ``shard``."""
        if phase not in ("fwd", "bwd"):
            raise UserError("phase", f"{phase!r} is not a phase", "fwd or bwd")
        if layer.name not in self.table:
            raise UserError("compute", f"profile {self.path!r} has no rows for layer {layer.name!r}",
                            f"layers {', '.join(list(self.table)[:5])} ...")
        if local_batch <= 0:
            return 0.0
        batches, fwd, bwd = self.table[layer.name]
        return loglog_interp(batches, fwd if phase == "fwd" else bwd, local_batch) * shard
