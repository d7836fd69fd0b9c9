"""Run chunks of sweep points on a Dask cluster and stream their rows back as they finish.

``scheduler`` is a scheduler address (``tcp://host:8786``), ``"local"`` (start a ``LocalCluster`` here with
one single-threaded worker process per slot), or a ready ``dask.distributed.Client`` (the caller keeps it
open). Dask is imported only here and only when used; without it, a :class:`~sim.errors.UserError` says
to install ``dask[distributed]`` (the ``dask`` extra of a dnnsim checkout). Every worker must be able to import ``sim`` (dnnsim installed in the
workers' environment). Chunks are submitted with ``pure=False`` and collected with
``distributed.as_completed``; a chunk whose worker died is recorded as error rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

from sim.errors import UserError
from sim.sweep.interrupts import signals_blocked
from sim.sweep.rows import PointFn, error_message, error_row, run_chunk
from sim.sweep.spec import Point


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UserError("scheduler", "dask.distributed is not installed",
                        "pip install 'dask[distributed]' (or pip install '.[dask]' in a dnnsim checkout), or leave "
                        "--scheduler out for the local process pool") from None
    return distributed


def _kill_worker_processes(cluster: Any) -> None:
    """SIGKILL the worker processes of a LocalCluster of ours, so an interrupted sweep does not wait for
    their chunks (the nannies would give each one 4 s); anything else is left alone."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        if hasattr(nanny, "close_gracefully"):
            nanny.close_gracefully(reason="sweep interrupted")  # so it does not restart the worker
        process = getattr(getattr(nanny, "process", None), "process", None)  # Nanny -> WorkerProcess -> AsyncProcess
        pid = getattr(process, "pid", None)
        if isinstance(pid, int) and pid > 0:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class DaskBackend:
    """Points on a Dask cluster (see the module docstring for ``scheduler``)."""

    name = "dask"

    def __init__(self, scheduler: Any, workers: int, connect_timeout_s: float = 10.0) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None
        self._cluster: Any = None  # a LocalCluster started here
        self._owned: list[Any] = []

    def __enter__(self) -> DaskBackend:
        distributed = _distributed()
        if isinstance(self.scheduler, distributed.Client):
            self._client = self.scheduler
            return self
        if self.scheduler == "local":
            # its event-loop thread and worker processes inherit SIGINT/SIGTERM blocked: a signal sent to
            # the process group reaches only this process, which stops the sweep (sim.sweep.interrupts)
            with signals_blocked():
                cluster = distributed.LocalCluster(n_workers=max(self.workers, 1), threads_per_worker=1,
                                                   processes=True, dashboard_address=None)
            self._cluster = cluster
            self._owned.append(cluster)
            self._client = distributed.Client(cluster)
        else:
            try:
                self._client = distributed.Client(str(self.scheduler), timeout=self.connect_timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserError("scheduler", f"cannot connect to {str(self.scheduler)!r} ({error_message(exc)})",
                                "the address of a running dask scheduler, e.g. tcp://host:8786, or local") from None
        self._owned.insert(0, self._client)
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None and self._cluster is not None:
            _kill_worker_processes(self._cluster)
        for thing in self._owned:
            thing.close()
        self._owned = []
        self._cluster = None
        self._client = None

    @property
    def slots(self) -> int:
        try:
            threads = sum(self._client.nthreads().values())
        except Exception:  # the scheduler may not answer; chunking only needs a rough figure
            threads = 0
        return max(threads, 1)

    def results(self, fn: PointFn, chunks: list[list[Point]]) -> Iterator[list[dict[str, Any]]]:
        """Rows of each chunk in completion order; unfinished chunks are cancelled when the caller stops."""
        distributed = _distributed()
        futures = {}
        for chunk in chunks:
            futures[self._client.submit(run_chunk, fn, chunk, pure=False)] = chunk
        try:
            for future in distributed.as_completed(futures):
                chunk = futures.pop(future)
                try:
                    rows = future.result()
                except Exception as exc:  # the worker died or the task was lost
                    rows = [error_row(p, "worker failed: " + error_message(exc)) for p in chunk]
                yield rows
        finally:
            if futures:
                self._client.cancel(list(futures))


__all__ = ["DaskBackend"]
