"""Run chunks of sweep points on a local process pool and yield their rows as chunks finish.

Workers are started once (``forkserver`` where the platform has it, else ``spawn``: never ``fork``, which
is unsafe once threads exist) and reused for every chunk, so imports are paid once per worker.
``workers=0`` runs in the calling process (no pool; for debugging and for profiling one worker's cost).

Stopping. Workers, the forkserver and the resource tracker are started with SIGINT and SIGTERM blocked
(and workers ignore both), so a signal sent to the whole process group (Ctrl-C in a terminal, ``timeout
-s INT``) reaches only the parent, which alone decides how the sweep ends (see
:mod:`sim.sweep.interrupts`). When the caller stops early (an exception, a signal) the pool is aborted,
not drained: queued chunks are cancelled (``shutdown(wait=False, cancel_futures=True)``) and every worker
is killed (SIGKILL) and reaped, so nothing waits for a chunk in flight. A worker also exits by itself as soon as
the parent is gone, even after ``kill -9``: it holds the read end of a pipe whose only write end is the
parent's, and a thread in the worker exits the process when that pipe reports end of file.

Why ``ProcessPoolExecutor`` and not ``multiprocessing.Pool``: the executor notices a worker that died
(``BrokenProcessPool``: the chunk becomes error rows and a fresh pool takes the rest), where
``Pool`` waits forever for the lost task; ``Pool.terminate()``'s one advantage, killing the workers, is
done here by hand on the executor's processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sim.sweep.interrupts import StopSignals, signals_blocked
from sim.sweep.rows import PointFn, error_message, error_row, run_chunk
from sim.sweep.spec import Point

#: seconds to wait for a killed worker to be reaped
REAP_TIMEOUT_S = 2.0


def _exit_when_parent_gone(lifeline: Any) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()  # nothing is ever sent: it raises EOFError when the parent's end closes
    os._exit(1)


def _init_worker(lifeline: Any) -> None:
    """Worker initializer: leave SIGINT/SIGTERM to the parent; exit when the parent's lifeline closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_when_parent_gone, args=(lifeline,), name="sweep-lifeline", daemon=True).start()


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def abort_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started, kill every worker (SIGKILL: they ignore SIGTERM) and reap them, then
    wait for the executor's manager thread to finish its cleanup. Without that wait the interpreter's exit
    hook (``concurrent.futures.process._python_exit``) can write to the manager's wake-up pipe while the
    manager is closing it, and Python prints an ``OSError: [Errno 9] Bad file descriptor`` traceback under
    the sweep's one-line interrupt message (CPython 3.11's ``_ThreadWakeup`` checks, then writes, unlocked)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # gone after shutdown()
    manager = getattr(pool, "_executor_manager_thread", None)  # set to None by shutdown()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.join(REAP_TIMEOUT_S)
    if manager is not None:
        manager.join(REAP_TIMEOUT_S)


class LocalBackend:
    """A process pool of ``workers`` processes (0: run inline)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lifeline: tuple[Any, Any] | None = None

    def _start(self) -> None:
        ctx = _context()
        if self._lifeline is None:
            self._lifeline = ctx.Pipe(duplex=False)  # (read end for the workers, write end kept here)
        with signals_blocked():  # the resource tracker starts here: it must not see the group's signals
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(self._lifeline[0],))

    def __enter__(self) -> LocalBackend:
        if self.workers > 0:
            self._start()
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                if exc_type is None:
                    try:
                        pool.shutdown(wait=True)
                    except BaseException:  # a signal while draining: abort instead
                        abort_pool(pool)
                        raise
                else:
                    abort_pool(pool)
        finally:
            if self._lifeline is not None:
                for end in self._lifeline:
                    end.close()  # any worker still alive exits
                self._lifeline = None

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
                    self._start()
                assert self._pool is not None
                # submit may start the forkserver and a worker: they start with SIGINT/SIGTERM blocked, and
                # a signal meanwhile waits until submit returns (else a worker could start unknown to the pool)
                with StopSignals() as guard, guard.hold(), signals_blocked():
                    future = self._pool.submit(run_chunk, fn, chunk)
                running[future] = (count, chunk)
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
                        abort_pool(self._pool)
                        self._pool = None
                yield rows
            top_up()


__all__ = ["LocalBackend", "abort_pool"]
