"""Read nccl-tests output as nccl-tests prints it: one :class:`Table` per result table.

Accepted (docs/calibrate.md): the output of ``all_reduce_perf``, ``all_gather_perf``,
``reduce_scatter_perf``, ``broadcast_perf``, ``reduce_perf``, ``alltoall_perf`` (and rccl-tests, which
prints the same), single and multi-node; old (``... redop time algbw busbw error ...``) and new
(``... redop root time algbw busbw #wrong ...``) headers; lines prefixed by a rank tag such as ``" 0: "``
(``srun --label``) or ``"[0] "``; log lines interleaved with the rows; copies whose ``#`` marks were lost
(pasted into Markdown); and ``dnnsim collective``'s own table. A table starts at its header line
(``#  size  count  type ...``) and ends at its ``# Avg bus bandwidth`` line; its rows are the data lines in
between, less the 0-byte rows nccl-tests prints for sizes under one element per rank. The columns are found by name in
the header (the first ``time``/``algbw``/``busbw``: the out-of-place measurement).

Per table: the collective (``op``) from the last ``<name>_perf`` or ``# dnnsim collective: <op>`` seen
before it; the ranks from the ``#  Rank  N ... on HOST device`` lines (or ``N ranks`` in dnnsim's
header, or else from busbw/algbw, which nccl-tests computes from the rank count); the hosts from those
same lines (None when the file does not list devices).

Anything else is refused as one :class:`~sim.errors.UserError`: no table, a header without rows, a table
cut off before its ``# Avg bus bandwidth`` line, a row with the wrong number of fields or a field that is
not a number, sizes not increasing, a time <= 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import UserError

#: nccl-tests binary name -> dnnsim op
PERF_OPS = {"all_reduce": "allreduce", "all_gather": "allgather", "reduce_scatter": "reduce_scatter",
            "broadcast": "broadcast", "reduce": "reduce", "alltoall": "alltoall"}

#: busbw / algbw as nccl-tests computes it (its doc/PERFORMANCE.md), as a function of the ranks n
BUS_FACTORS = {"allreduce": lambda n: 2 * (n - 1) / n, "allgather": lambda n: (n - 1) / n,
               "reduce_scatter": lambda n: (n - 1) / n, "alltoall": lambda n: (n - 1) / n,
               "broadcast": lambda n: 1.0, "reduce": lambda n: 1.0}

_TAG = re.compile(r"^\s*(?:\d+:|\[\d+\])\s?")
_PERF = re.compile(r"\b(all_reduce|all_gather|reduce_scatter|broadcast|reduce|alltoall)_perf\b")
_DNNSIM = re.compile(r"^#\s*dnnsim collective:\s*(\w+),.*?(\d+) ranks")
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s.*?\bon\s+(\S+)\s+device\b")
_AVG = re.compile(r"^#?\s*Avg bus bandwidth\s*:")

ALLOWED = ("nccl-tests output as printed: a header line '#  size  count  type ... time  algbw  busbw ...', "
           "data rows, and '# Avg bus bandwidth' (docs/calibrate.md)")


@dataclass(frozen=True)
class Row:
    """One measured size: ``size_bytes`` and the out-of-place ``time_s``, ``algbw_Bps``, ``busbw_Bps``."""

    size_bytes: int
    time_s: float
    algbw_Bps: float
    busbw_Bps: float


@dataclass
class Table:
    """One nccl-tests result table."""

    source: str
    line: int
    op: str | None
    ranks: int | None
    hosts: int | None
    rows: list[Row] = field(default_factory=list)

    @property
    def bus_factor(self) -> float:
        """busbw / algbw of this op at this rank count (nccl-tests' doc/PERFORMANCE.md)."""
        return BUS_FACTORS[self.op](self.ranks)


def _fail(where: str, problem: str) -> UserError:
    return UserError("nccl-tests", f"{where}: {problem}", ALLOWED)


def _number(text: str, where: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _fail(where, f"{what} {text!r} is not a number") from None


def parse_text(text: str, source: str = "<text>", op: str | None = None) -> list[Table]:
    """The tables of one nccl-tests output (module docstring); ``op`` overrides the collective found in
    the text. Raises :class:`UserError` for malformed or truncated input."""
    tables: list[Table] = []
    current: Table | None = None
    columns: dict[str, int] = {}
    width = 0
    seen_op: str | None = None
    ranks: dict[int, str] = {}
    dnnsim_ranks: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source} line {number}"
        line = _TAG.sub("", raw, count=1).rstrip()
        perf = _PERF.search(line)
        if perf:
            seen_op = PERF_OPS[perf.group(1)]
        m = _DNNSIM.match(line)
        if m:
            seen_op, dnnsim_ranks = m.group(1), int(m.group(2))
        m = _RANK.match(line)
        if m:
            ranks[int(m.group(1))] = m.group(2)
        stripped = line.lstrip("#").split()
        if stripped[:2] == ["size", "count"] and "time" in stripped:
            if current is not None:
                raise _fail(where, f"a new table starts before the table of line {current.line} ended "
                                   "with '# Avg bus bandwidth' (truncated output?)")
            columns = {}
            for i, name in enumerate(stripped):
                columns.setdefault(name, i)
            missing = [name for name in ("size", "time", "algbw", "busbw") if name not in columns]
            if missing:
                raise _fail(where, f"header without column(s) {', '.join(missing)}")
            width = len(stripped)
            n_ranks = len(ranks) if ranks else dnnsim_ranks
            hosts = len(set(ranks.values())) if ranks else None
            current = Table(source, number, op or seen_op, n_ranks, hosts)
            ranks, dnnsim_ranks = {}, None
            continue
        if current is None:
            continue
        if _AVG.match(line):
            if not current.rows:
                raise _fail(where, f"the table of line {current.line} has no data rows")
            tables.append(current)
            current = None
            continue
        fields = line.split()
        if line.startswith("#") or not fields or not fields[0].isdigit():
            continue  # units line, comments, interleaved log lines
        if len(fields) != width:
            raise _fail(where, f"data row has {len(fields)} fields, the header {width} (truncated or "
                               f"malformed row {line.strip()!r})")
        size = _number(fields[columns["size"]], where, "size")
        time_us = _number(fields[columns["time"]], where, "time")
        algbw = _number(fields[columns["algbw"]], where, "algbw")
        busbw = _number(fields[columns["busbw"]], where, "busbw")
        if size == 0:
            continue  # nccl-tests prints 0-byte rows for sizes below one element per rank: an empty call
        if time_us <= 0:
            raise _fail(where, f"time {time_us} us is not > 0")
        if current.rows and size <= current.rows[-1].size_bytes:
            raise _fail(where, f"size {int(size)} does not increase")
        current.rows.append(Row(int(size), time_us * 1e-6, algbw * 1e9, busbw * 1e9))
    if current is not None:
        raise _fail(source, f"the table of line {current.line} ends without '# Avg bus bandwidth' "
                            "(truncated output?)")
    if not tables:
        raise _fail(source, "no nccl-tests table found")
    for table in tables:
        _complete(table)
    return tables


def _complete(table: Table) -> None:
    """Fill in the op check and the rank count (from busbw/algbw when the file lists no devices)."""
    where = f"{table.source} line {table.line}"
    if table.op is None:
        raise UserError("op", f"{where}: no collective named before the table (no '<op>_perf')",
                        "--op allreduce|allgather|reduce_scatter|broadcast|reduce|alltoall")
    if table.op not in BUS_FACTORS:
        raise UserError("op", f"{where}: unknown collective {table.op!r}", ", ".join(BUS_FACTORS))
    if table.ranks is None:
        table.ranks = _ranks_from_ratio(table, where)


def _ranks_from_ratio(table: Table, where: str) -> int:
    """n from busbw/algbw of the row with the largest algbw (most digits): 2(n-1)/n or (n-1)/n."""
    row = max(table.rows, key=lambda r: r.algbw_Bps)
    if table.op in ("broadcast", "reduce") or row.algbw_Bps <= 0:
        raise UserError("ranks", f"{where}: the file lists no devices and the rank count cannot be read "
                                 f"from busbw/algbw of {table.op}", "a file with its '#  Rank ...' lines")
    ratio = row.busbw_Bps / row.algbw_Bps
    scale = 2.0 if table.op == "allreduce" else 1.0
    if ratio >= scale:
        raise UserError("ranks", f"{where}: busbw/algbw = {ratio:.4f} fits no rank count",
                        "a file with its '#  Rank ...' lines")
    return max(2, round(scale / (scale - ratio)))


def read_files(paths: list[str | Path] | tuple[str | Path, ...], op: str | None = None) -> list[Table]:
    """The tables of every file, in order (:func:`parse_text`)."""
    out: list[Table] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise UserError("file", f"{str(p)!r} does not exist", "an nccl-tests output file")
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UserError("file", f"cannot read {str(p)!r} ({type(exc).__name__})", "a readable file") from None
        out += parse_text(text, p.name, op)
    return out
