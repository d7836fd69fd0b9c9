"""Turn the first SIGINT or SIGTERM into one ``KeyboardInterrupt`` and make every later one harmless.

A sweep must stop once, cleanly, however the signals come: Ctrl-C pressed twice, ``timeout -s INT``
(which signals the process and then its process group), ``kill -TERM``. :class:`StopSignals` installs a
handler for SIGINT and SIGTERM that records the first signal and raises ``KeyboardInterrupt`` in the main
thread; later signals are only counted, so they cannot interrupt the shutdown that the first one started.
Inside :meth:`StopSignals.hold` (writing one CSV row) the interrupt waits until the block ends, so a row
is never cut in two by the handler.

Guards nest: a guard entered while another is installed leaves the handlers alone and answers with the
outer guard's state (``dnnsim sweep`` holds one for the whole command, :func:`~sim.sweep.runner.run_sweep`
one for the sweep). Outside the main thread, where Python cannot install handlers, a guard does nothing.
With ``restore=False`` a guard that caught a signal keeps ignoring signals after it exits (a command that
is about to exit with 128 + signal must not be killed on its way out); otherwise the previous handlers
come back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: the signals that stop a sweep
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: the first SIGINT/SIGTERM raises ``KeyboardInterrupt`` once; ``signum`` says which."""

    def __init__(self, restore: bool = True) -> None:
        self.restore = restore
        self._signum: int | None = None
        self.received = 0
        self._holding = 0
        self._pending = False
        self._outer: StopSignals | None = None
        self._saved: dict[int, Any] = {}

    @property
    def signum(self) -> int | None:
        """The first stop signal received (None: none yet)."""
        return self._outer.signum if self._outer is not None else self._signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self._signum is not None:
            return  # a second signal: the first one's shutdown is under way
        self._signum = signum
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt(self._name())

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        current = signal.getsignal(signal.SIGINT)
        outer = getattr(current, "__self__", None)
        if isinstance(outer, StopSignals):
            self._outer = outer
            return self
        for sig in STOP_SIGNALS:
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        saved, self._saved = self._saved, {}
        if self._signum is not None and not self.restore:
            for sig in saved:
                signal.signal(sig, signal.SIG_IGN)
            return
        for sig, handler in saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A block the first signal does not cut short: its ``KeyboardInterrupt`` comes when the block ends
        (also when the block fails meanwhile: a signal sent to the whole group may break what the block
        was doing, e.g. kill the forkserver a worker is being started from)."""
        if self._outer is not None:
            with self._outer.hold():
                yield
            return
        self._holding += 1
        error: Exception | None = None
        try:
            yield
        except Exception as exc:
            error = exc
        finally:
            self._holding -= 1
        if self._pending and not self._holding:
            self._pending = False
            raise KeyboardInterrupt(self._name()) from error
        if error is not None:
            raise error

    def _name(self) -> str:
        return signal.Signals(self._signum or signal.SIGINT).name


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block (where the platform can).

    Processes started meanwhile (the forkserver, the resource tracker, workers) inherit the blocked mask
    through fork and exec, so a signal sent to the whole process group can never reach them, not even
    while they start, before they could ignore it. A signal sent to this process meanwhile is not lost:
    it is delivered when the block ends (or, if another thread took it, its Python handler runs as usual).
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


__all__ = ["STOP_SIGNALS", "StopSignals", "signals_blocked"]
