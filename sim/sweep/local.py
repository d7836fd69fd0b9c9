"""Run chunks of sweep points on a local process pool and yield their rows as chunks finish.

Workers are started once (``forkserver`` where the platform has it, else ``spawn``: never ``fork``, which
is unsafe once threads exist) and reused for every chunk, so imports are paid once per worker. Workers
ignore SIGINT: Ctrl-C reaches only the parent, which stops taking results, cancels what has not started
and shuts the pool down. ``workers=0`` runs in the calling process (no pool; for debugging and for
profiling one worker's cost).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sim.sweep.rows import PointFn, error_message, error_row, run_chunk
from sim.sweep.spec import Point


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class LocalBackend:
    """A process pool of ``workers`` processes (0: run inline)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalBackend:
        if self.workers > 0:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_ignore_sigint)
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def slots(self) -> int:
        return max(self.workers, 1)

    def results(self, fn: PointFn, chunks: list[list[Point]]) -> Iterator[list[dict[str, Any]]]:
        """Rows of each chunk, in completion order. At most ``2 x workers`` chunks are queued at once, so
        an interrupted sweep leaves little to cancel."""
        if self._pool is None:
            for chunk in chunks:
                yield run_chunk(fn, chunk)
            return
        todo = iter(chunks)
        running: dict[Future, tuple[int, list[Point]]] = {}
        count = 0

        def top_up() -> None:
            nonlocal count
            while len(running) < 2 * self.workers:
                chunk = next(todo, None)
                if chunk is None:
                    return
                if self._pool is None:  # the pool broke: start a fresh one
                    self.__enter__()
                running[self._pool.submit(run_chunk, fn, chunk)] = (count, chunk)
                count += 1

        top_up()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f][0]):
                _, chunk = running.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool as exc:  # a worker died (out of memory, a crash)
                    rows = [error_row(p, "worker failed: " + error_message(exc)) for p in chunk]
                    if self._pool is not None:
                        self._pool.shutdown(wait=False, cancel_futures=True)
                        self._pool = None
                yield rows
            top_up()


__all__ = ["LocalBackend"]
