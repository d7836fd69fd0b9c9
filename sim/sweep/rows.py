"""Evaluate sweep points into CSV rows: the fixed column list, the default point function, error capture.

A *point function* takes a resolved run config (a dict of every :class:`~sim.config.RunConfig` field) and
returns the run's summary as a dict; the default, :func:`simulate_point`, is ``sim.simulate(config)``'s
one summary row. Runners call :func:`run_chunk` in a worker (a process, or a Dask worker) on a list of
points; it never raises: a point that raises anything is returned as an error row.

Row layout (:func:`columns`): the config columns (RunConfig's fields), then ``run``'s summary fields
(:data:`sim.results.SUMMARY_FIELDS`) not already named, then ``status`` (``ok``/``error``), ``error``
(the one-line message, empty when ok) and ``point_id``. In an ok row the summary's values win where the
names coincide (``model`` is the model's name, ``compute`` the compute model's, ``conv``/``fc`` the
layer modes used) and ``grid`` is the grid used, ``PrxPc``. An error row carries its config columns and
leaves every result column empty (NaN when read by pandas). Values are plain Python scalars, so floats
are written with ``repr`` and read back bit for bit.

A point of a ``select: best`` sweep (:mod:`sim.sweep.spec`) is evaluated by :func:`best_point` instead
of the point function: ``dnnsim best`` on its config, keeping the best row; its sweep's header adds
:data:`BEST_COLUMNS` (:func:`extra_columns`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sim.errors import UserError
from sim.sweep.spec import CONFIG_KEYS, Point

STATUS_COLUMNS = ("status", "error", "point_id")
#: the columns a ``select: best`` sweep adds: the winner's screen estimate and its gain over pure batch
BEST_COLUMNS = ("screen_iteration_s", "speedup_vs_batch")
PointFn = Callable[[dict[str, Any]], dict[str, Any]]


def result_columns() -> list[str]:
    """``run``'s summary fields (in the order docs/cli.md documents)."""
    from sim.results import SUMMARY_FIELDS

    return list(SUMMARY_FIELDS)


def columns(extra: Sequence[str] = ()) -> list[str]:
    """The CSV header: config columns, result columns, ``extra``, then status, error, point_id."""
    out = list(CONFIG_KEYS)
    for name in [*result_columns(), *extra]:
        if name not in out and name not in STATUS_COLUMNS:
            out.append(name)
    return out + list(STATUS_COLUMNS)


def simulate_point(config: dict[str, Any]) -> dict[str, Any]:
    """The default point function: the summary of ``sim.simulate(config)`` as a dict.

    It runs the same steps as :func:`sim.api.simulate` (config, setup, plan, run) but skips building the
    per-layer table, which a sweep does not keep (about half the time of an analytic run); the summary is
    the same, ``wall_s`` being the seconds of these steps.
    """
    import time

    from sim.api import load_setup, make_config, run_config

    start = time.perf_counter()
    cfg = make_config(config)
    result = run_config(cfg, load_setup(cfg), with_layers=False)
    row = result.summary.iloc[0].to_dict()
    row["wall_s"] = time.perf_counter() - start
    return row


def best_point(config: dict[str, Any]) -> dict[str, Any]:
    """The best row of :func:`sim.best.rank_best` on ``config`` (``strategy``/``grid`` ignored,
    ``conv``/``fc`` restricting), as a dict without ``rank``; ``wall_s`` is the whole search's seconds."""
    import time

    from sim.api import make_config
    from sim.best import rank_best

    start = time.perf_counter()
    cfg = make_config({**config, "strategy": "integrated", "grid": None})
    row = rank_best(cfg).iloc[0].to_dict()
    del row["rank"]
    row["wall_s"] = time.perf_counter() - start
    return row


def extra_columns(points: Sequence[Point]) -> tuple[str, ...]:
    """Columns beyond :func:`columns`' defaults that these points' rows fill: :data:`BEST_COLUMNS` when
    any point is a ``select: best`` point."""
    return BEST_COLUMNS if any(p.select == "best" for p in points) else ()


def error_message(exc: BaseException) -> str:
    """One line: a :class:`UserError`'s own text, else ``TypeName: message`` (first line)."""
    if isinstance(exc, UserError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split()) or type(exc).__name__


def _native(value: Any) -> Any:
    """numpy scalars -> Python scalars (so the csv module writes ``repr`` of a float, not ``np.float64(..)``)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, tuple, dict)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def ok_row(point: Point, summary: dict[str, Any]) -> dict[str, Any]:
    """The row of a point that ran."""
    row = dict(point.config)
    row.update({str(k): _native(v) for k, v in summary.items()})
    if row.get("pr") is not None and row.get("pc") is not None:
        row["grid"] = f"{row['pr']}x{row['pc']}"
    row.update(status="ok", error="", point_id=point.point_id)
    return row


def error_row(point: Point, message: str) -> dict[str, Any]:
    """The row of a point that failed (config columns only)."""
    row = dict(point.config)
    row.update(status="error", error=message, point_id=point.point_id)
    return row


def run_point(fn: PointFn, point: Point) -> dict[str, Any]:
    """Evaluate one point (``fn``, or :func:`best_point` for a ``select: best`` point); any exception
    becomes an error row."""
    if point.error is not None:
        return error_row(point, point.error)
    try:
        summary = (best_point if point.select == "best" else fn)(dict(point.config))
    except Exception as exc:  # a failing point is recorded, the sweep goes on
        return error_row(point, error_message(exc))
    return ok_row(point, summary)


def run_chunk(fn: PointFn, points: list[Point]) -> list[dict[str, Any]]:
    """Evaluate a chunk of points in order (what a worker runs); never raises for a point's failure."""
    return [run_point(fn, p) for p in points]


__all__ = ["BEST_COLUMNS", "STATUS_COLUMNS", "PointFn", "best_point", "columns", "error_message", "error_row",
           "extra_columns", "ok_row", "result_columns",
           "run_chunk", "run_point", "simulate_point"]
