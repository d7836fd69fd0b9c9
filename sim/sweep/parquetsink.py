"""Sweep results as Parquet (``--out results.parquet``), as safe to interrupt and resume as the CSV.

A Parquet file is readable only once its footer is written, so rows cannot be appended to it one at a
time the way CSV lines are, and a sweep killed with ``kill -9`` would lose everything written since the
last footer. The sink therefore streams rows into a *journal* beside the file (``.NAME.journal.csv``,
the crash-safe CSV sink of :mod:`sim.sweep.csvsink`: one whole line per write, torn tails cut on resume)
and, when the sweep ends — completed, failed or stopped by Ctrl-C/SIGTERM — converts the journal into the
Parquet file (row groups of :data:`ROW_GROUP_ROWS` rows, written to a temporary file and moved in place)
and removes the journal. Resuming reads the journal when one is left (a ``kill -9``), else the rows of the
existing Parquet file, and goes on appending; every point is written exactly once either way.

Needs pyarrow (``pip install pyarrow``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.errors import UserError
from sim.sweep.csvsink import CsvSink, _umask, open_sink

#: rows per Parquet row group
ROW_GROUP_ROWS = 4096


def journal_of(path: Path) -> Path:
    """The journal beside the Parquet file ``path``."""
    return path.with_name(f".{path.name}.journal.csv")


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".parquet"


def read_parquet_frame(path: str | Path) -> Any:
    """The rows of a results Parquet file (pyarrow required); a one-line error when it cannot be read."""
    import pandas as pd

    from sim.parquet import require_pyarrow

    require_pyarrow()
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise UserError("results", f"{str(path)!r} is not a readable Parquet file ({type(exc).__name__})",
                        "a .parquet file written by dnnsim sweep") from None


class ParquetSink(CsvSink):
    """Rows go to the journal (:class:`CsvSink`); :meth:`close` turns the journal into the Parquet file."""

    def __init__(self, path: Path, journal: Path, header: Sequence[str]) -> None:
        super().__init__(journal, header)
        self.parquet_path = path
        self.order: Sequence[str] | None = None  #: point ids in sweep order, to sort the rows on close

    def close(self) -> None:
        if self._fd < 0:
            return
        super().close()
        write_parquet_from_journal(self.path, self.parquet_path, self.header, self.order)


def write_parquet_from_journal(journal: Path, path: Path, header: Sequence[str],
                               order: Sequence[str] | None = None) -> None:
    """Convert the journal to ``path`` (atomically), then remove the journal."""
    import pandas as pd

    frame = pd.read_csv(journal, dtype={"point_id": str})
    frame = frame.reindex(columns=list(header))
    if order is not None:
        rank = {pid: i for i, pid in enumerate(order)}
        frame = frame.iloc[sorted(range(len(frame)), key=lambda i: rank.get(frame["point_id"].iloc[i], len(rank)))]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frame.to_parquet(tmp, index=False, row_group_size=ROW_GROUP_ROWS)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    journal.unlink()


def open_parquet_sink(path: str | Path, header: Sequence[str], resume: bool = False,
                      overwrite: bool = False) -> tuple[ParquetSink, set[str]]:
    """Open (or create) a Parquet results file; returns the sink and the point ids already in it (the
    rules of :func:`sim.sweep.csvsink.open_sink`: an existing file needs ``resume`` or ``overwrite``)."""
    from sim.parquet import require_pyarrow

    require_pyarrow()
    p = Path(path)
    journal = journal_of(p)
    if resume and not journal.exists() and p.exists():
        frame = read_parquet_frame(p)
        missing = [c for c in header if c not in frame.columns]
        if missing or len(frame.columns) != len(header):
            detail = f"columns {', '.join(missing[:3])} missing" if missing else "its columns differ"
            raise UserError("out", f"{str(p)!r} was not written by this sweep version ({detail})",
                            "a results file from dnnsim sweep, or a new --out file")
        frame[list(header)].to_csv(journal, index=False, lineterminator="\n")
    elif not resume and (p.exists() or journal.exists()):
        if not overwrite:
            raise UserError("out", f"{str(p)!r} already exists", "--resume to continue that sweep, "
                                                                 "--overwrite to start again, or a new file")
        journal.unlink(missing_ok=True)
    csv_sink, done = open_sink(journal, header, resume=resume and journal.exists(), overwrite=True)
    csv_sink.close()
    return ParquetSink(p, journal, header), done


__all__ = ["ROW_GROUP_ROWS", "ParquetSink", "is_parquet", "journal_of", "open_parquet_sink", "read_parquet_frame",
           "write_parquet_from_journal"]
