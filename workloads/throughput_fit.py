"""Fit one efficiency curve's ``max`` to measured one-GPU training throughputs (``dnnsim calibrate throughput``).

Benchmark suites publish whole-model numbers — samples/s at a few batch sizes — not per-layer times, so
the per-layer fit of :mod:`workloads.compute_fit` cannot use them. One parameter can still be fitted: the
``max`` of one kernel class's curve (``conv``, ``matmul`` or ``memory``; docs/compute.md), its ``half_s``
kept. A run at batch ``b`` is one training iteration on one device, the sum over the model's layers of
their forward and backward roofline times (:class:`workloads.roofline.RooflineCompute`, as ``simulate``
charges one rank); ``max`` minimizes ``Σ (t_predicted / t_measured − 1)²`` over the runs.

The search scans ``max`` on a grid over (0, 1] and refines the best grid point by golden-section search
inside its neighbours (the predicted time only falls as ``max`` grows, so the loss has one valley in
practice). A best ``max`` at 1 means the runs were faster than the device's peak allows at this precision
(measured elsewhere, or the wrong precision or layout); one at the grid's floor means the class barely
matters to the runs. Both are a :class:`~sim.errors.UserError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import UserError
from workloads.device_specs import DeviceSpec
from workloads.efficiency import Curve, Efficiency, kernel_class
from workloads.layer import Model
from workloads.precision import Precision
from workloads.roofline import RooflineCompute

#: the classes whose ``max`` can be fitted
CLASSES: tuple[str, ...] = ("conv", "matmul", "memory")
#: the coarse scan of ``max`` before the golden-section refinement
GRID = np.linspace(0.01, 1.0, 100)


@dataclass(frozen=True)
class Run:
    """One measured run: ``samples_per_s`` training samples per second at ``batch`` samples per iteration."""

    batch: int
    samples_per_s: float


@dataclass(frozen=True)
class ThroughputFit:
    """The fitted curve of ``cls`` and, per run, the predicted samples/s and ``predicted / measured − 1``."""

    cls: str
    curve: Curve
    predicted_per_s: tuple[float, ...]
    residuals: tuple[float, ...]


def with_class_max(efficiency: Efficiency, cls: str, tensor: bool, value: float) -> Efficiency:
    """``efficiency`` with the ``max`` of class ``cls`` (in its tensor or simt set) set to ``value``."""
    if cls == "memory":
        return replace(efficiency, memory=replace(efficiency.memory, max=value))
    key = "tensor" if tensor else "simt"
    curves = tuple((k, replace(c, max=value) if k == cls else c) for k, c in getattr(efficiency, key))
    return replace(efficiency, **{key: curves})


def iteration_s(model: Model, device: DeviceSpec, precision: Precision, memory_format: str, batch: float) -> float:
    """One training iteration of ``model`` on one ``device``: Σ forward + backward roofline seconds."""
    roof = RooflineCompute(device, precision.word_bytes, precision.peak, memory_format)
    return sum(roof.time(layer, "fwd", batch) + roof.time(layer, "bwd", batch) for layer in model.layers)


def fit_class_max(model: Model, runs: list[Run], device: DeviceSpec, precision: Precision, memory_format: str,
                  cls: str) -> ThroughputFit:
    """Fit the ``max`` of ``cls``'s curve on ``device`` to ``runs`` of ``model`` (module docstring).

    Raises
    ------
    UserError
        ``fit`` for a class not in :data:`CLASSES` or one the model has no layer of; ``device`` for a device
        without efficiency curves; ``runs`` for no runs, or runs the class cannot explain (best ``max`` at a
        bound of the search).
    """
    if cls not in CLASSES:
        raise UserError("fit", f"{cls!r} is not a kernel class", ", ".join(CLASSES))
    if not any(kernel_class(layer.kind) == cls for layer in model.layers):
        raise UserError("fit", f"model {model.name!r} has no {cls} layer", "a class the model's layers use")
    if device.efficiency is None:
        raise UserError("device", f"device {device.name!r} has no efficiency curves (it gives b_half)",
                        "a device file with an efficiency: block")
    if not runs:
        raise UserError("runs", "no runs", "at least one row: batch, samples_per_s")
    tensor = device.peak(precision.peak)[1]
    base = device.efficiency
    batches = sorted({r.batch for r in runs})

    def times(value: float) -> dict[int, float]:
        dev = replace(device, efficiency=with_class_max(base, cls, tensor, value))
        return {b: iteration_s(model, dev, precision, memory_format, b) for b in batches}

    def loss(value: float) -> float:
        t = times(value)
        return sum((t[r.batch] * r.samples_per_s / r.batch - 1.0) ** 2 for r in runs)

    scan = [loss(v) for v in GRID]
    i = int(np.argmin(scan))
    if i == len(GRID) - 1:
        raise UserError("runs", f"the runs are faster than {device.name!r} allows at {precision.name} even with "
                        f"{cls} max 1 (the device's peak)", "runs measured on this device, precision and layout")
    if i == 0:
        raise UserError("runs", f"the runs are slower than {cls} max {GRID[0]:g} explains on {device.name!r}",
                        "runs whose time this class carries (another --fit class, or the right device)")
    lo, hi = GRID[i - 1], GRID[i + 1]
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(a), loss(b)
    while hi - lo > 1e-6:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(b)
    best = float((lo + hi) / 2)
    t = times(best)
    predicted = tuple(r.batch / t[r.batch] for r in runs)
    curve = with_class_max(base, cls, tensor, best)
    fitted = curve.memory if cls == "memory" else curve.curve(cls, tensor)
    return ThroughputFit(cls, fitted, predicted, tuple(p / r.samples_per_s - 1.0 for p, r in zip(predicted, runs, strict=True)))
