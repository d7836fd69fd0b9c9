"""Print a table of records as ``table`` (aligned text for people), ``json`` (one object or a list) or ``csv``.

Every command that accepts ``--format`` prints through :func:`emit`, so the three formats carry the same
fields in the same order. ``json`` and ``csv`` keep SI base units and full precision (what scripts read);
``table`` is for reading: each value is shown in the unit its column name carries (``*_s`` as ``1.23 ms``,
``*bytes*`` as ``436.1 MiB``, ``*_Bps`` as ``2.87 GB/s``, FLOPs and parameter counts with decimal prefixes,
integers with thousands separators), and a table wider than the terminal (100 columns when there is none) is
wrapped into blocks of columns, each repeating the first column so rows stay identifiable. ``vertical``
tables (one record) print one ``field value`` line per field.

pandas is not imported here: a DataFrame is read through its ``to_dict``, so ``dnnsim --help`` and the
commands that print plain records stay fast.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import click

from sim.errors import UserError
from sim.units import format_bytes, format_count, format_rate, format_time

FORMATS = ("table", "json", "csv")

#: width used when the output is not a terminal
DEFAULT_WIDTH = 100

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="Output format: aligned table with units, JSON (one object, or a list of objects; SI units), or "
         "CSV (SI units).",
)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()  # numpy scalar
    return value


def _jsonable(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


def _rows(records: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of a DataFrame (duck-typed) or a sequence of dicts."""
    if hasattr(records, "to_dict") and hasattr(records, "columns"):
        columns = [str(c) for c in records.columns]
        return columns, [{str(k): _plain(v) for k, v in row.items()} for row in records.to_dict(orient="records")]
    rows = [{str(k): _plain(v) for k, v in row.items()} for row in records]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns, rows


def _is_bytes(column: str) -> bool:
    return (column.endswith("bytes") or column.startswith("bytes")) and column != "dtype_bytes"


def format_cell(column: str, value: Any) -> str:
    """``value`` of ``column`` as shown in a table: in the unit the column's name carries."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    if column.endswith("_per_s"):  # a rate (tokens_per_s), not a time
        return f"{format_count(float(value))}/s"
    if column.endswith("_s"):
        return format_time(float(value))
    if column.endswith("_Bps"):
        return format_rate(float(value))
    if _is_bytes(column):
        return format_bytes(float(value))
    if isinstance(value, int) or float(value).is_integer() or "flops" in column or column == "params":
        return format_count(float(value))
    return f"{value:.4g}" if 1e-4 <= abs(value) < 1e6 or value == 0 else format_count(float(value))


def _width() -> int:
    return max(40, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def _numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None and v == v]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def format_table(columns: Sequence[str], rows: Sequence[dict[str, Any]], width: int | None = None) -> str:
    """Rows as aligned text, wrapped into column blocks no wider than ``width``; numbers right-aligned."""
    if not rows:
        return "(no rows)"
    width = _width() if width is None else width
    cells = {c: [format_cell(c, r.get(c)) for r in rows] for c in columns}
    right = {c: _numeric([r.get(c) for r in rows]) for c in columns}
    col_w = {c: max(len(c), *(len(x) for x in cells[c])) for c in columns}

    def render(block: list[str]) -> list[str]:
        def line(texts: list[str]) -> str:
            return "  ".join(t.rjust(col_w[c]) if right[c] else t.ljust(col_w[c])
                             for c, t in zip(block, texts, strict=True)).rstrip()

        return [line(list(block))] + [line([cells[c][i] for c in block]) for i in range(len(rows))]

    key, rest = columns[0], list(columns[1:])
    blocks: list[list[str]] = []
    current = [key]
    used = col_w[key]
    for c in rest:
        if len(current) > 1 and used + 2 + col_w[c] > width:
            blocks.append(current)
            current, used = [key], col_w[key]
        current.append(c)
        used += 2 + col_w[c]
    blocks.append(current)
    return "\n\n".join("\n".join(render(b)) for b in blocks)


def format_vertical(columns: Sequence[str], row: dict[str, Any]) -> str:
    """One record as ``field  value`` lines (values in their columns' units)."""
    w = max(len(c) for c in columns)
    return "\n".join(f"{c.ljust(w)}  {format_cell(c, row.get(c))}".rstrip() for c in columns)


def emit(records: Any, fmt: str = "table", single: bool = False, stream: Any = None,
         vertical: bool = False) -> None:
    """Write ``records`` to ``stream`` (stdout) in format ``fmt``.

    Parameters
    ----------
    records : DataFrame or sequence of dict
        One row per record, columns in the order to print.
    fmt : {"table", "json", "csv"}
    single : bool
        With ``json``, print one object instead of a list (the record must be alone).
    vertical : bool
        With ``table`` and one record, print one ``field value`` line per field.
    """
    columns, rows = _rows(records)
    out = stream if stream is not None else sys.stdout
    if fmt == "json":
        payload: Any = [{k: _jsonable(row.get(k)) for k in columns} for row in rows]
        if single and len(rows) == 1:
            payload = payload[0]
        out.write(json.dumps(payload, indent=2) + "\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v
                             for v in (row.get(c) for c in columns)])
        out.write(buf.getvalue())
    elif fmt == "table":
        if vertical and len(rows) == 1:
            out.write(format_vertical(columns, rows[0]) + "\n")
        else:
            out.write(format_table(columns, rows) + "\n")
    else:  # pragma: no cover - click.Choice guards this
        raise ValueError(fmt)


#: the columns ``--links`` prints (links.csv has every column of :data:`sim.network.linkmeter.LINK_COLUMNS`)
LINK_TABLE = ["src", "dst", "bytes", "busy_frac", "mean_util", "peak_util", "top_collectives"]


def links_option(func):
    return click.option(
        "--links", "links_top", type=click.IntRange(min=1), is_flag=False, flag_value=10, default=None,
        help="Measure every directed link (flow and step networks) and print the N busiest (default 10): "
             "bytes, busy fraction, mean and peak utilisation, the collectives that loaded it.")(func)


def print_links(table, fmt: str, title: str = "busiest links") -> None:
    """The busiest links after a command's table output (``--links`` needs ``--format table``)."""
    if fmt != "table":
        raise UserError("links", f"--links prints a table, not {fmt}",
                        "--format table (dnnsim run --out DIR also writes links.csv)")
    sys.stdout.write(f"\n{title}\n")
    emit(table[LINK_TABLE], "table")
