"""Run a sweep: expand it, skip what the CSV already holds, run the rest on a backend, stream rows to the CSV.

:func:`run_sweep` is the whole of ``dnnsim sweep`` as a Python call. Rows are appended in completion order
as each chunk of points finishes, so an interrupted sweep loses only the chunks in flight; ``resume``
skips every point whose ``point_id`` is already in the file. The first SIGINT or SIGTERM stops the sweep
(the pool is aborted, :class:`SweepInterrupted` says which signal), later ones are ignored until then.
Values do not depend on the backend or the
number of workers (each point is a pure function of its resolved config; only ``wall_s``, the measured
seconds of the run, varies); ``sort=True`` rewrites the finished file in sweep order, otherwise sort by
``point_id`` to compare two files.

Examples
--------
>>> from sim.sweep import run_sweep                         # doctest: +SKIP
>>> report = run_sweep("examples/sweeps/grids.yaml", "grids.csv", workers=2)   # doctest: +SKIP
>>> report.ok, report.failed                                # doctest: +SKIP
(24, 0)
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.errors import UserError
from sim.sweep.csvsink import open_sink, rewrite_sorted
from sim.sweep.interrupts import StopSignals
from sim.sweep.parquetsink import ParquetSink, is_parquet, open_parquet_sink, read_parquet_frame
from sim.sweep.progress import SweepProgress
from sim.sweep.rows import PointFn, columns, extra_columns, simulate_point
from sim.sweep.spec import Point, SweepSpec, expand, load_sweep, resolve_point


@dataclass
class SweepReport:
    """What a sweep did: points in the sweep, skipped (already in the CSV), ok and failed rows written."""

    out: str
    points: int
    skipped: int
    ok: int
    failed: int
    wall_s: float
    points_per_min: float
    backend: str
    workers: int
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SweepInterrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM (or an interrupt raised by ``on_row``) stopped the sweep; ``report`` says what was
    written, ``signum`` which signal stopped it (SIGINT for a plain ``KeyboardInterrupt``)."""

    def __init__(self, report: SweepReport, signum: int = signal.SIGINT) -> None:
        super().__init__(f"sweep interrupted after {report.ok + report.failed} rows; resume to finish")
        self.report = report
        self.signum = int(signum)


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def sweep_points(sweep: SweepSpec | str | Path | dict | Sequence[dict]) -> list[Point]:
    """The points of a sweep given as a spec, a sweep file, a sweep dict, or a list of raw config dicts."""
    if isinstance(sweep, SweepSpec):
        return expand(sweep)
    if isinstance(sweep, (str, Path)):
        return expand(load_sweep(sweep))
    if isinstance(sweep, dict):
        return expand(SweepSpec.from_dict(sweep))
    points, seen = [], set()
    for raw in sweep:
        if not isinstance(raw, dict):
            raise UserError("sweep", f"{raw!r} is not a config dict", "a list of run config dicts")
        point = resolve_point(dict(raw))
        if point.point_id not in seen:
            seen.add(point.point_id)
            points.append(point)
    return points


def chunk_points(points: list[Point], slots: int, chunksize: int | None = None) -> list[list[Point]]:
    """Split into chunks: ``chunksize`` each, or about 8 chunks per slot, 1 to 32 points each."""
    if not points:
        return []
    size = chunksize or max(1, min(32, math.ceil(len(points) / (8 * max(slots, 1)))))
    return [points[i:i + size] for i in range(0, len(points), size)]


def _backend(scheduler: Any, workers: int) -> Any:
    if scheduler is None:
        from sim.sweep.local import LocalBackend

        return LocalBackend(workers)
    from sim.sweep.dask_backend import DaskBackend

    return DaskBackend(scheduler, workers)


def run_sweep(sweep: SweepSpec | str | Path | dict | Sequence[dict], out: str | Path, *,
              workers: int | None = None, scheduler: Any = None, resume: bool = False, overwrite: bool = False,
              point_fn: PointFn | None = None, chunksize: int | None = None, sort: bool = False,
              progress: bool = False, on_row: Callable[[dict[str, Any]], None] | None = None) -> SweepReport:
    """Run every point of ``sweep`` and append one row per point to the CSV ``out`` (or, for a ``.parquet``
    name, to a Parquet file through a crash-safe journal: :mod:`sim.sweep.parquetsink`).

    Parameters
    ----------
    sweep : SweepSpec, path, dict or list of dict
        A sweep spec, a sweep YAML file, a sweep mapping (``base``/``vary``/``zip``), or the run configs.
    out : path
        The results CSV (header: :func:`sim.sweep.rows.columns`).
    workers : int, optional
        Local pool size (default: the cores available; 0 runs in this process); with ``scheduler="local"``,
        the LocalCluster's worker processes.
    scheduler : str or dask.distributed.Client, optional
        Run on Dask: a scheduler address, ``"local"``, or a client (see :mod:`sim.sweep.dask_backend`).
    resume : bool
        Continue ``out``: skip points already in it.
    overwrite : bool
        Replace an existing ``out``.
    point_fn : callable, optional
        ``config dict -> summary dict`` (default :func:`sim.sweep.rows.simulate_point`); must be picklable
        (a module-level function) for process pools and Dask.
    chunksize : int, optional
        Points per task (default: about 8 tasks per worker, at most 32 points each).
    sort : bool
        When the sweep completes, rewrite ``out`` in sweep order.
    progress : bool
        Show a progress bar (done, failed, remaining, rate) on stderr.
    on_row : callable, optional
        Called with each row after it is written (tests use it to interrupt a sweep).

    Raises
    ------
    UserError
        A bad sweep, an existing ``out`` without ``resume``/``overwrite``, a bad scheduler.
    SweepInterrupted
        (a KeyboardInterrupt) after the backend is shut down; the CSV holds every row finished before it.
    """
    start = time.perf_counter()
    n_workers = default_workers() if workers is None else int(workers)
    if n_workers < 0:
        raise UserError("workers", f"{n_workers} is negative", "an integer >= 0 (0: run in this process)")
    points = sweep_points(sweep)
    fn = point_fn or simulate_point
    counts = {"ok": 0, "error": 0}
    interrupted = False
    skipped = 0
    backend = _backend(scheduler, n_workers)
    guard = StopSignals()
    try:
        # the first SIGINT/SIGTERM raises KeyboardInterrupt here once, later ones cannot disturb the shutdown;
        # the backend before the sink: a scheduler that cannot be reached leaves no results file behind
        with guard, backend:
            opener = open_parquet_sink if is_parquet(out) else open_sink
            sink, done = opener(out, columns(extra_columns(points)), resume=resume, overwrite=overwrite)
            todo = [p for p in points if p.point_id not in done]
            skipped = len(points) - len(todo)
            with sink, SweepProgress(len(todo), enabled=progress) as bar:
                # invalid points are recorded at once, without a round trip to a worker
                for p in [p for p in todo if p.error is not None]:
                    _record(sink, bar, counts, on_row, guard, {**p.config, "status": "error",
                                                               "error": p.error, "point_id": p.point_id})
                runnable = [p for p in todo if p.error is None]
                for rows in backend.results(fn, chunk_points(runnable, backend.slots, chunksize)):
                    for row in rows:
                        _record(sink, bar, counts, on_row, guard, row)
                if sort and isinstance(sink, ParquetSink):  # sorted as the journal becomes the Parquet file
                    sink.order = [p.point_id for p in points]
    except Exception as exc:
        if guard.signum is None:
            raise
        # a signal came first: what broke on the way down (a worker killed by a signal sent to the whole
        # process group, the forkserver gone) is part of stopping, not an error of the sweep
        interrupted = True
        report = _report(out, points, skipped, counts, start, backend, n_workers, interrupted)
        raise SweepInterrupted(report, guard.signum) from exc
    except KeyboardInterrupt as exc:
        interrupted = True
        report = _report(out, points, skipped, counts, start, backend, n_workers, interrupted)
        raise SweepInterrupted(report, guard.signum or signal.SIGINT) from exc
    report = _report(out, points, skipped, counts, start, backend, n_workers, interrupted)
    if sort and not is_parquet(out):
        rewrite_sorted(out, [p.point_id for p in points])
    return report


def _report(out: Any, points: list, skipped: int, counts: dict[str, int], start: float, backend: Any,
            workers: int, interrupted: bool) -> SweepReport:
    wall = time.perf_counter() - start
    done = counts["ok"] + counts["error"]
    return SweepReport(str(out), len(points), skipped, counts["ok"], counts["error"], wall,
                       60.0 * done / wall if wall > 0 else 0.0, backend.name, workers, interrupted)


def _record(sink: Any, bar: SweepProgress, counts: dict[str, int], on_row: Callable | None, guard: StopSignals,
            row: dict[str, Any]) -> None:
    if guard.signum is not None:  # a signal came and its KeyboardInterrupt was swallowed on the way: still stop
        raise KeyboardInterrupt
    with guard.hold():  # a signal cannot separate the row from its count
        sink.write(row)
        counts["ok" if row["status"] == "ok" else "error"] += 1
    bar.advance(row["status"] == "ok")
    if on_row is not None:
        on_row(row)


#: integer columns of a results CSV (error rows leave them empty, so pandas reads floats)
INT_COLUMNS = ("batch", "procs", "pr", "pc", "dtype_bytes", "dataset_size", "events", "seed")


def load_results(path: str | Path, ok_only: bool = False) -> Any:
    """A results CSV or Parquet file as a pandas DataFrame (``ok_only``: the rows with ``status == "ok"``,
    with the integer columns :data:`INT_COLUMNS` as integers)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UserError("results", f"file {str(p)!r} does not exist", "a CSV or Parquet file written by dnnsim sweep")
    frame = read_parquet_frame(p) if is_parquet(p) else pd.read_csv(p)
    if ok_only and "status" in frame.columns:
        frame = frame[frame["status"] == "ok"].reset_index(drop=True)
        for column in INT_COLUMNS:  # read as floats when error rows left them empty
            if column in frame.columns and frame[column].notna().all() and frame[column].dtype.kind == "f":
                frame[column] = frame[column].astype("int64")
    return frame


__all__ = ["SweepInterrupted", "SweepReport", "chunk_points", "default_workers", "load_results", "run_sweep", "sweep_points"]
