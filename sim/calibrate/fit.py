"""Fit the per-call latency and bus bandwidth of each link class to nccl-tests tables.

The model fitted is nccl-tests' own "algbw vs size" reading of a collective, one per link class c::

    t(S) = α_c + S · f_op(n) / (η_c · B_c)

``S`` the size column (bytes), ``f_op(n)`` nccl-tests' bus factor (busbw / algbw: ``2(n-1)/n`` for
all-reduce, ``(n-1)/n`` for all-gather, reduce-scatter and all-to-all, 1 for broadcast and reduce), ``α_c``
the base latency of one call, ``η_c · B_c`` the bus bandwidth reached on that class: ``B_c`` the
class's reference (nominal) bandwidth and ``η_c`` its bus efficiency. A table's class is ``intra`` when
its ranks are on one host and ``inter`` when on several (from the file's ``#  Rank ... on HOST`` lines,
or as the caller says). All rows of one class, over every file, are fitted together by least squares on
the relative error ``(t_fit - t)/t`` (every size weighs the same, as on nccl-tests' log-scale plots),
with α_c >= 0. ``η_c`` is only known when ``B_c`` is given; the bus bandwidth is always.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.calibrate.nccltests import Table
from sim.errors import UserError

LINK_CLASSES = ("intra", "inter")


@dataclass(frozen=True)
class ClassFit:
    """The fit of one link class: ``alpha_s``, ``bus_Bps`` (= η·B), ``efficiency`` (None without B)."""

    link_class: str
    alpha_s: float
    bus_Bps: float
    reference_Bps: float | None
    efficiency: float | None
    ranks: int
    rows: int
    rms_rel_error: float
    max_rel_error: float

    def time_s(self, size_bytes: float, bus_factor: float) -> float:
        """The fitted time of one call (module docstring)."""
        return self.alpha_s + size_bytes * bus_factor / self.bus_Bps


@dataclass(frozen=True)
class Residual:
    """One measured row against the fit."""

    source: str
    op: str
    ranks: int
    link_class: str
    size_bytes: int
    measured_s: float
    fitted_s: float

    @property
    def rel_error(self) -> float:
        return (self.fitted_s - self.measured_s) / self.measured_s


def link_class(table: Table, default: str | None) -> str:
    """``intra`` (one host), ``inter`` (several), or ``default`` when the file lists no hosts."""
    if table.hosts is not None:
        return "intra" if table.hosts == 1 else "inter"
    if default is None:
        raise UserError("link-class", f"{table.source} line {table.line}: the file lists no devices, so its "
                                      "link class is unknown", "--link-class intra or inter")
    return default


def _solve(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(α, 1/bandwidth) minimising Σ((α + x c - t)/t)², α >= 0, c > 0."""
    design = np.column_stack([1.0 / t, x / t])
    (alpha, slope), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    if alpha < 0:  # the constrained optimum lies on α = 0
        alpha = 0.0
        slope = float(np.sum(x / t) / np.sum((x / t) ** 2))
    if not slope > 0:
        raise UserError("nccl-tests", "the fit found no positive bandwidth (times do not grow with size)",
                        "tables whose time grows with size, e.g. up to at least 64MiB")
    return float(alpha), float(slope)


def fit_tables(tables: list[Table], default_class: str | None = None, min_bytes: float = 0.0,
               reference_Bps: dict[str, float] | None = None) -> tuple[dict[str, ClassFit], list[Residual]]:
    """Fit every link class present in ``tables`` (rows of at least ``min_bytes``); the residuals of
    every fitted row, by class, then in file order."""
    reference_Bps = reference_Bps or {}
    by_class: dict[str, list[tuple[Table, list]]] = {}
    for table in tables:
        rows = [row for row in table.rows if row.size_bytes >= min_bytes]
        if rows:
            by_class.setdefault(link_class(table, default_class), []).append((table, rows))
    if not by_class:
        raise UserError("min-bytes", f"no row of at least {min_bytes:g} bytes", "a smaller --min-bytes")
    fits: dict[str, ClassFit] = {}
    residuals: list[Residual] = []
    for cls, entries in by_class.items():
        x = np.array([row.size_bytes * table.bus_factor for table, rows in entries for row in rows])
        t = np.array([row.time_s for table, rows in entries for row in rows])
        if len(t) < 2:
            raise UserError("nccl-tests", f"link class {cls} has {len(t)} row to fit", "at least two sizes")
        alpha, slope = _solve(x, t)
        rel = (alpha + x * slope - t) / t
        ref = reference_Bps.get(cls)
        bus = 1.0 / slope
        fits[cls] = ClassFit(cls, alpha, bus, ref, None if ref is None else bus / ref,
                             max(table.ranks for table, _ in entries), len(t),
                             float(np.sqrt(np.mean(rel**2))), float(np.max(np.abs(rel))))
        for table, rows in entries:
            for row in rows:
                residuals.append(Residual(table.source, table.op, table.ranks, cls, row.size_bytes, row.time_s,
                                          fits[cls].time_s(row.size_bytes, table.bus_factor)))
    return fits, residuals
