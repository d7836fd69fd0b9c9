"""Stream sweep rows into a CSV file, one whole line per ``write`` system call, and read them back to resume.

The header is fixed when the file is created (the union of every column a row can have), so rows appended
later always align. Each row is encoded to one line and written with a single ``os.write`` on a file opened
``O_APPEND`` and unbuffered (nothing waits in a buffer to be flushed): when the sweep is interrupted
(Ctrl-C, SIGTERM, ``kill -9``), the file ends with whole lines only, since the kernel finishes a write to a
regular file even when the writer is killed. If a line was ever cut short anyway (power loss, a full
disk), :func:`open_sink` drops the torn tail before resuming: a last line without its newline, and any
last lines that do not parse as a whole row (the header's number of fields, a 16-hex-digit ``point_id``,
status ``ok`` or ``error``).

* a new file: the header is written to a temporary file which is then moved in place;
* an existing file without ``resume``: refused (``overwrite`` replaces it);
* ``resume``: the header must match; the ``point_id`` of every row already there is returned so the
  runner skips those points (no row is ever written twice).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.errors import UserError


def encode_row(row: dict[str, Any], header: Sequence[str]) -> bytes:
    """One CSV line (with its newline) of ``row`` in ``header`` order; missing or None -> empty field."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if row.get(c) is None else row.get(c) for c in header])
    return buf.getvalue().encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _header_line(header: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(header)
    return buf.getvalue()


_POINT_ID = re.compile(r"[0-9a-f]{16}")


def whole_row(line: bytes, header: Sequence[str]) -> bool:
    """Whether ``line`` (one line with its newline) is a complete row of ``header``: the right number of
    fields, a ``point_id`` of 16 hex digits and a ``status`` of ``ok`` or ``error``."""
    try:
        records = list(csv.reader(io.StringIO(line.decode(), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return False
    if len(records) != 1 or len(records[0]) != len(header):
        return False
    fields = dict(zip(header, records[0], strict=True))
    return bool(_POINT_ID.fullmatch(fields.get("point_id", ""))) and fields.get("status") in ("ok", "error")


def drop_torn_tail(path: Path, header: Sequence[str]) -> int:
    """Cut a torn end off ``path``: a last line without its newline, then every last line that is not
    :func:`whole_row` (the header line is kept). Returns the number of bytes removed."""
    data = path.read_bytes()
    keep = len(data) if data.endswith(b"\n") else data.rfind(b"\n") + 1
    header_end = data.find(b"\n") + 1  # 0: not even a whole header line
    while header_end and keep > header_end:
        start = data.rfind(b"\n", 0, keep - 1) + 1
        if whole_row(data[start:keep], header):
            break
        keep = start
    if keep < len(data):
        with path.open("rb+") as fh:
            fh.truncate(keep)
    return len(data) - keep


def read_done(path: Path, header: Sequence[str]) -> set[str]:
    """The ``point_id`` of every row in an existing results file (header checked against ``header``)."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        found = next(reader, None)
        if found is None:
            return set()
        if list(found) != list(header):
            missing = [c for c in header if c not in found]
            detail = f"columns {', '.join(missing[:3])} missing" if missing else "its columns differ"
            raise UserError("out", f"{str(path)!r} was not written by this sweep version ({detail})",
                            "a results CSV from dnnsim sweep, or a new --out file")
        col = list(found).index("point_id")
        return {r[col] for r in reader if len(r) > col}


class CsvSink:
    """An append-only results file; use :func:`open_sink` to create one."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self.header = list(header)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.rows_written = 0

    def write(self, row: dict[str, Any]) -> None:
        """Append one row as one whole line (one system call; nothing is buffered)."""
        _write_all(self._fd, encode_row(row, self.header))
        self.rows_written += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sink(path: str | Path, header: Sequence[str], resume: bool = False,
              overwrite: bool = False) -> tuple[CsvSink, set[str]]:
    """Open (or create) the results file; returns the sink and the point ids already in it.

    Raises
    ------
    UserError
        ``out`` exists and neither ``resume`` nor ``overwrite`` is set; its header does not match; its
        directory does not exist.
    """
    p = Path(path)
    if p.exists() and p.is_dir():
        raise UserError("out", f"{str(p)!r} is a directory", "a CSV file path")
    if not p.resolve().parent.is_dir():
        raise UserError("out", f"directory {str(p.resolve().parent)!r} does not exist",
                        "a path in an existing directory")
    done: set[str] = set()
    if p.exists() and resume:
        drop_torn_tail(p, header)
        done = read_done(p, header)
        if p.stat().st_size == 0:
            _atomic_text(p, _header_line(header))
    elif p.exists() and not overwrite:
        raise UserError("out", f"{str(p)!r} already exists", "--resume to continue that sweep, "
                                                             "--overwrite to start again, or a new file")
    else:
        _atomic_text(p, _header_line(header))
    return CsvSink(p, header), done


def rewrite_sorted(path: str | Path, order: Sequence[str]) -> None:
    """Rewrite the results file with its rows in ``order`` of ``point_id`` (others last, as they were);
    atomically (a temporary file moved in place)."""
    p = Path(path)
    with p.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    col = header.index("point_id")
    rank = {pid: i for i, pid in enumerate(order)}
    rows.sort(key=lambda r: rank.get(r[col], len(rank)))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _atomic_text(p, buf.getvalue())


__all__ = ["CsvSink", "drop_torn_tail", "encode_row", "open_sink", "read_done", "rewrite_sorted", "whole_row"]
