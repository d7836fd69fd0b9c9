"""Print a table of records as ``table`` (aligned text), ``json`` (one object or a list) or ``csv``.

Every command that accepts ``--format`` prints through :func:`emit`, so the three formats carry the same
fields in the same order.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import click
import pandas as pd

FORMATS = ("table", "json", "csv")

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="Output format: aligned table, JSON (one object, or a list of objects), or CSV.",
)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


def emit(records: pd.DataFrame | Sequence[dict[str, Any]], fmt: str = "table", single: bool = False,
         stream: Any = None) -> None:
    """Write ``records`` to ``stream`` (stdout) in format ``fmt``.

    Parameters
    ----------
    records : DataFrame or list of dict
        One row per record, columns in the order to print.
    fmt : {"table", "json", "csv"}
    single : bool
        With ``json``, print one object instead of a list (the record must be alone).
    """
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    out = stream if stream is not None else sys.stdout
    if fmt == "json":
        rows = [{k: _jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        payload: Any = rows[0] if single and len(rows) == 1 else rows
        out.write(json.dumps(payload, indent=2) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, lineterminator="\n")
        out.write(buf.getvalue())
    elif fmt == "table":
        text = frame.to_string(index=False, float_format=lambda x: f"{x:.6g}") if len(frame) else "(no rows)"
        out.write(text + "\n")
    else:  # pragma: no cover - click.Choice guards this
        raise ValueError(fmt)
