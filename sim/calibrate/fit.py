"""Fit the ``nccl`` collective model's own parameters to nccl-tests tables, by running that model.

The parameters are the ones ``--collectives nccl`` reads from a topology's ``nccl:`` block (docs/nccl.md):

* ``base_latency_us`` — the per-call latency added to NCCL's own ``baseLat``/``hwLat`` prediction;
* ``bus_efficiency.nvlink`` — bytes / e on every transfer inside a node;
* ``bus_efficiency.nic`` — bytes / e on every transfer across nodes.

Everything else the model reads (GPUs and NICs per node, link bandwidths and latencies, GPU generation,
CPU vendor, NVLS, LL128, channels) comes from the reference machine (:mod:`sim.calibrate.reference`) and is
not fitted. For every measured row (op, ranks, size) the prediction is the model's time
(:meth:`sim.collectives.nccl.NcclCollective.cost_s`: NCCL's algorithm/protocol choice, the multi-channel
phases, the switched-fabric closed form, which ``--network flow`` reproduces on a ``hier`` topology), on
the reference with the candidate parameters. The fit minimises ``Σ (t_model / t_measured − 1)²`` (every
size weighs the same, as on nccl-tests' log-scale plots) subject to ``base_latency_us >= 0`` and
``0 < e <= 1`` (or only some of them, the others held at the reference's values): projected Gauss-Newton in ``(base_latency_us, 1/e_nvlink, 1/e_nic)``, in which the
model is piecewise linear, with a forward-difference Jacobian and step halving. A parameter no row
depends on (e.g. ``nic`` with single-node tables only) is held at the reference's value and reported as
such. Deterministic: same tables and reference, same numbers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from sim.calibrate.nccltests import Table
from sim.calibrate.reference import Reference
from sim.errors import UserError

#: the fitted parameters: name in the ``nccl:`` block, flat key of :func:`topologies.hier.nccl_params`
PARAMS: tuple[tuple[str, str], ...] = (("base_latency_us", "base_latency_us"),
                                       ("bus_efficiency.nvlink", "eff_nvlink"),
                                       ("bus_efficiency.nic", "eff_nic"))
#: the ops the nccl model times (sim.collectives.nccl_tuning.OPS)
MODEL_OPS = ("allreduce", "allgather", "reduce_scatter")


@dataclass(frozen=True)
class ParamFit:
    """One parameter: its ``nccl:`` name, the fitted ``value``, the reference's ``start`` and ``status``
    (``fitted``, ``at bound``, ``held`` (not asked for) or ``held (no row depends on it)``)."""

    name: str
    key: str
    value: float
    start: float
    status: str


@dataclass(frozen=True)
class Residual:
    """One measured row against the fitted model."""

    source: str
    op: str
    ranks: int
    nodes: int
    size_bytes: int
    algo: str
    proto: str
    measured_s: float
    fitted_s: float

    @property
    def link_class(self) -> str:
        """``intra`` (one node) or ``inter`` (several)."""
        return "intra" if self.nodes == 1 else "inter"

    @property
    def rel_error(self) -> float:
        return (self.fitted_s - self.measured_s) / self.measured_s


@dataclass(frozen=True)
class NcclFit:
    """The fit: parameters, residuals, and the reference it is relative to."""

    reference: Reference
    params: tuple[ParamFit, ...]
    residuals: tuple[Residual, ...]

    def nccl_values(self) -> dict[str, float]:
        """Flat keys (``base_latency_us``, ``eff_nvlink``, ``eff_nic``) -> fitted value. A fitted (not held)
        base latency is one value for every call, so it also sets ``base_latency_nvlink_us`` (calls inside
        one node); a held one leaves the reference's per-class values alone."""
        out = {p.key: p.value for p in self.params}
        base = next(p for p in self.params if p.key == "base_latency_us")
        if not base.status.startswith("held"):
            out["base_latency_nvlink_us"] = base.value
        return out

    def stats(self) -> dict[str, dict[str, float]]:
        """Per link class (and ``all``): rows, rms and max |relative error|."""
        out: dict[str, dict[str, float]] = {}
        for cls in ("intra", "inter", "all"):
            rel = np.array([r.rel_error for r in self.residuals if cls in ("all", r.link_class)])
            if len(rel):
                out[cls] = {"rows": int(len(rel)), "rms_rel_error": float(np.sqrt(np.mean(rel**2))),
                            "max_rel_error": float(np.max(np.abs(rel)))}
        return out


@dataclass(frozen=True)
class _Point:
    source: str
    op: str
    ranks: int
    nodes: int
    local_size: int
    size_bytes: int
    time_s: float


def _points(tables: list[Table], ref: Reference, min_bytes: float) -> list[_Point]:
    g = ref.gpus_per_node
    points: list[_Point] = []
    for table in tables:
        where = f"{table.source} line {table.line}"
        if table.op not in MODEL_OPS:
            raise UserError("op", f"{where}: the nccl model does not time {table.op!r}", ", ".join(MODEL_OPS))
        p = int(table.ranks)
        if p < 2:
            raise UserError("nccl-tests", f"{where}: {p} rank sends nothing", "tables of at least 2 ranks")
        if p % g or (table.hosts is not None and p != table.hosts * g):
            hosts = "" if table.hosts is None else f" on {table.hosts} host(s)"
            raise UserError("reference", f"{where}: {p} ranks{hosts} do not fill whole nodes of the reference's "
                                         f"{g} GPUs", f"a reference with gpus_per_node matching the table, e.g. "
                                                      f"{ref.label.split(':')[0]}:gpus_per_node="
                                                      f"{p if table.hosts in (None, 1) else p // table.hosts}")
        for row in table.rows:
            if row.size_bytes >= min_bytes and row.size_bytes > 0:
                points.append(_Point(table.source, table.op, p, p // g, g, row.size_bytes, row.time_s))
    if len(points) < 2:
        raise UserError("min-bytes", f"{len(points)} row(s) of at least {min_bytes:g} bytes to fit",
                        "at least two rows: a smaller --min-bytes or more sizes")
    return points


def model_time_s(ref: Reference, op: str, ranks: int, size_bytes: float, values: dict[str, float]) -> float:
    """The nccl model's time of one call on the reference with ``values`` (flat keys) in its ``nccl:`` block."""
    from sim.collectives.nccl import NCCL

    g = ref.gpus_per_node
    fabric = ref.fabric(ranks, values)
    return NCCL[op].cost_s(int(ranks), float(size_bytes), 0.0, 1.0, local_size=g, fabric=fabric)


class _Model:
    """t(x) for every point, x = (base_latency_us, 1/e_nvlink, 1/e_nic); fabrics cached per rank count."""

    def __init__(self, ref: Reference, points: list[_Point]) -> None:
        self.ref, self.points = ref, points
        self.t = np.array([pt.time_s for pt in points])
        self._fabrics = {p: ref.fabric(p) for p in sorted({pt.ranks for pt in points})}
        self.base_free = True   # False once the fit holds base_latency_us: the reference's classes stay

    def values(self, x: np.ndarray) -> dict[str, float]:
        # a fitted per-call latency is one value for every call of the tables, inside a node or across
        # (topofile writes it as one value too)
        base = {"base_latency_us": float(x[0]), "base_latency_nvlink_us": float(x[0])} if self.base_free else {}
        return {**base, "eff_nvlink": float(1.0 / x[1]), "eff_nic": float(1.0 / x[2])}

    def times(self, x: np.ndarray) -> np.ndarray:
        from sim.collectives.nccl import NCCL

        vals = self.values(x)
        out = np.empty(len(self.points))
        for i, pt in enumerate(self.points):
            fabric = {**self._fabrics[pt.ranks], **vals}
            out[i] = NCCL[pt.op].cost_s(pt.ranks, float(pt.size_bytes), 0.0, 1.0, local_size=pt.local_size,
                                        fabric=fabric)
        return out

    def residuals(self, x: np.ndarray) -> np.ndarray:
        return self.times(x) / self.t - 1.0

    def choice(self, pt: _Point, x: np.ndarray) -> tuple[str, str]:
        from sim.collectives.nccl import NCCL

        plan = NCCL[pt.op].plan(pt.ranks, float(pt.size_bytes), pt.local_size,
                                {**self._fabrics[pt.ranks], **self.values(x)})
        return plan.algo, plan.proto


_LOWER = np.array([0.0, 1.0, 1.0])  # base latency >= 0 us; 1/e >= 1 (e <= 1)


def _jacobian(model: _Model, x: np.ndarray, r: np.ndarray, free: np.ndarray) -> np.ndarray:
    J = np.zeros((len(r), len(x)))
    for j in np.flatnonzero(free):
        h = 1e-6 * max(1.0, abs(x[j]))
        xh = x.copy()
        xh[j] += h
        J[:, j] = (model.residuals(xh) - r) / h
    return J


def _bounded_step(J: np.ndarray, r: np.ndarray, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """argmin ||r + J dx|| with x + dx >= lower, over the free parameters: every choice of which free
    parameters sit on their bound, the best feasible one (3 parameters: at most 8 small solves)."""
    idx = list(np.flatnonzero(free))
    best, best_cost = np.zeros_like(x), float(r @ r)
    for k in range(len(idx) + 1):
        for pinned in itertools.combinations(idx, k):
            dx = np.zeros_like(x)
            for j in pinned:
                dx[j] = _LOWER[j] - x[j]
            rest = [j for j in idx if j not in pinned]
            if rest:
                sol, *_ = np.linalg.lstsq(J[:, rest], -(r + J @ dx), rcond=None)
                dx[rest] = sol
            if np.any(x + dx < _LOWER - 1e-12):
                continue
            lin = r + J @ dx
            cost = float(lin @ lin)
            if cost < best_cost - 1e-18:
                best, best_cost = dx, cost
    return best


def fit_nccl(tables: list[Table], ref: Reference, min_bytes: float = 0.0,
             only: tuple[str, ...] | None = None) -> NcclFit:
    """Fit ``base_latency_us``, ``bus_efficiency.nvlink`` and ``.nic`` (or only the names in ``only``;
    the others held at the reference's values) to every row of ``tables`` of at least ``min_bytes``
    (module docstring)."""
    names = [name for name, _ in PARAMS]
    for name in only or ():
        if name not in names:
            raise UserError("fit", f"unknown parameter {name!r}", ", ".join(names))
    points = _points(tables, ref, min_bytes)
    model = _Model(ref, points)
    start = ref.nccl_start()
    x0 = np.array([start["base_latency_us"], 1.0 / start["eff_nvlink"], 1.0 / start["eff_nic"]])
    # start off the kink at 0 (a zero base latency can hide under the path latency) and off e = 1
    x = np.maximum(x0, np.array([10.0, 1.05, 1.05]))
    r = model.residuals(x)
    free = np.ones(3, dtype=bool)
    J = _jacobian(model, x, r, free)
    held = ~np.any(J != 0, axis=0)
    if only:
        held |= np.array([name not in only for name in names])
    free &= ~held
    model.base_free = not held[0]
    x[held] = x0[held]
    r = model.residuals(x)
    cost = float(r @ r)
    for _ in range(200):
        if not free.any():
            break
        J = _jacobian(model, x, r, free)
        dx = _bounded_step(J, r, x, free)
        step, moved = 1.0, False
        while step > 1e-10:
            xn = np.maximum(x + step * dx, _LOWER)
            rn = model.residuals(xn)
            cn = float(rn @ rn)
            if cn < cost:
                moved = np.max(np.abs(xn - x) / np.maximum(1.0, np.abs(x))) > 1e-13
                x, r, cost = xn, rn, cn
                break
            step /= 2
        if not moved or cost < 1e-30:
            break
    if not math.isfinite(cost):
        raise UserError("nccl-tests", "the fit did not converge", "tables whose time grows with size")
    params = []
    for j, (name, key) in enumerate(PARAMS):
        start_v = start[key]
        value = start_v if held[j] else float(x[j]) if j == 0 else float(1.0 / x[j])
        status = ("held" if only and name not in only else "held (no row depends on it)") if held[j] else "at bound" if x[j] <= _LOWER[j] else "fitted"
        params.append(ParamFit(name, key, value, start_v, status))
    fitted = model.times(x)
    residuals = []
    for pt, t_fit in zip(points, fitted, strict=True):
        algo, proto = model.choice(pt, x)
        residuals.append(Residual(pt.source, pt.op, pt.ranks, pt.nodes, pt.size_bytes, algo, proto, pt.time_s,
                                  float(t_fit)))
    return NcclFit(ref, tuple(params), tuple(residuals))
