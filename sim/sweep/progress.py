"""A rich progress bar for sweeps (and ``dnnsim validate``) on stderr: done, failed, remaining and rate.

Disabled (a no-op) when ``enabled`` is false or stderr is not a terminal, so tests and redirected runs
print nothing but the final report.
"""

from __future__ import annotations

import sys
from typing import Any


class SweepProgress:
    """Context manager counting finished points; ``advance(ok)`` after each row."""

    def __init__(self, total: int, enabled: bool = True, stream: Any = None, label: str = "sweep") -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        self._on = bool(enabled) and total > 0 and bool(getattr(self._stream, "isatty", lambda: False)())
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if self._on:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}  remaining {task.fields[remaining]}"),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                console=Console(file=self._stream), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, failed=0, remaining=self.total,
                                                 rate="")
        return self

    def advance(self, ok: bool) -> None:
        """Count one finished point (``ok`` false: it failed)."""
        self.done += 1
        self.failed += 0 if ok else 1
        if self._progress is not None:
            task = self._progress.tasks[0]
            speed = task.speed
            rate = f"{speed * 60:.0f} pts/min" if speed else ""
            self._progress.update(self._task, advance=1, failed=self.failed, remaining=self.total - self.done,
                                  rate=rate)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = ["SweepProgress"]
