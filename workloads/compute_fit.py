"""Fit a device's efficiency curves to measured per-layer times (``dnnsim calibrate compute``).

The roofline with work-keyed efficiency (:mod:`workloads.roofline`, :mod:`workloads.efficiency`) times a
forward call as ``(w + half_s) / max`` of its class, with ``w`` the call's work in seconds at the ceiling
(FLOPs at the precision's peak, bytes at memory bandwidth), and backward as twice forward. So every
measured row (layer, batch) gives one point ``(w, t)`` with ``t = (fwd_s + bwd_s) / 3`` (one forward's
worth) on a straight line ``t = w / max + half_s / max``:

1. ``memory``: the rows of memory-bound layers (every kind but conv, fc, attention), ``w = bytes /
   mem_bandwidth``; least squares gives the line, hence ``max`` and ``half_s``.
2. ``conv`` and ``matmul``: the rows of that class that are slower than the fitted memory curve predicts
   for their bytes (compute-bound; a memory-bound row carries no information about compute), ``w =
   flops / peak``; least squares again.

A profile measured with NCHW activations (``memory_format="nchw"``, PyTorch's default) at a tensor-core
precision includes cuDNN's layout transposes in every convolution's time; they are charged as the roofline
charges them (:mod:`workloads.roofline`: ``t_memory`` of one read and one write of the input and output)
with the fitted memory curve, and taken off each convolution row before its line is fitted, so that a
run of the fitted device in the same layout adds them back exactly once.

A negative intercept (``half_s < 0``) is refitted through the origin (``half_s = 0``). A class with fewer
than two distinct points keeps the base device's curve (reported as ``kept``). A fitted ``max`` above 1
means the layers ran faster than the peak: the profile was not measured on this device at this
precision, and :class:`~sim.errors.UserError` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import UserError
from workloads.device_specs import DeviceSpec
from workloads.efficiency import COMPUTE_CLASSES, Curve, Efficiency, kernel_class
from workloads.layer import Model
from workloads.precision import Precision
from workloads.roofline import transpose_bytes

#: a compute-bound row is slower than the memory curve by more than this fraction
COMPUTE_BOUND_MARGIN = 1e-6


@dataclass(frozen=True)
class ClassFit:
    """The fit of one kernel class: its curve, how it was obtained, and the residuals over its rows."""

    cls: str
    curve: Curve | None
    status: str  #: "fitted", "kept" (base device's curve) or "absent" (no curve at all)
    rows: int  #: rows of this class in the profile
    used: int  #: rows the line was fitted to
    rms_rel_residual: float  #: sqrt(mean((predicted / measured - 1)^2)) over every row of the class


def _line(ws: list[float], ts: list[float]) -> tuple[float, float] | None:
    """``(max, half_s)`` of the least-squares line ``t = w / max + half_s / max``; None if underdetermined."""
    if len(set(ws)) < 2:
        return None
    w, t = np.asarray(ws), np.asarray(ts)
    slope, intercept = np.polyfit(w, t, 1)
    if intercept < 0:
        slope, intercept = float(np.dot(w, t) / np.dot(w, w)), 0.0
    if slope <= 0:
        return None
    return float(1.0 / slope), float(intercept / slope)


def _points(model: Model, table: dict, device: DeviceSpec, precision: Precision, peak: float, transposes: bool):
    """One ``(class, w_compute, w_memory, t, w_transpose)`` per measured (layer, batch); ``w_transpose`` is
    the work of a convolution's layout transposes (0 unless ``transposes``)."""
    out = []
    for layer in model.layers:
        batches, fwd, bwd = table[layer.name]
        for b, f, g in zip(batches, fwd, bwd, strict=True):
            flops = layer.fwd_flops_per_sample * b
            nbytes = precision.word_bytes * (layer.params + (layer.in_elems_per_sample + layer.out_elems_per_sample) * b)
            moved = transpose_bytes(layer, precision.word_bytes, b) if transposes else 0.0
            bandwidth = device.mem_bandwidth_Bps
            out.append((kernel_class(layer.kind), flops / peak, nbytes / bandwidth, (f + g) / 3.0, moved / bandwidth))
    return out


def _transpose_s(memory: Curve, w_transpose: float) -> float:
    return memory.achieved_s(w_transpose) if w_transpose else 0.0


def _check_max(cls: str, fitted: tuple[float, float]) -> Curve:
    peak_fraction, half_s = fitted
    if peak_fraction > 1.0:
        raise UserError("profile", f"the {cls} layers ran at {peak_fraction:.3g} x the device's peak",
                        "a profile measured on this device at this precision (--device, --precision)")
    return Curve(peak_fraction, half_s)


def fit_efficiency(model: Model, table: dict, device: DeviceSpec, precision: Precision,
                   memory_format: str = "nchw") -> tuple[Efficiency, list[ClassFit]]:
    """Fit ``device``'s curves (memory, and conv/matmul of the precision's set) to the profile ``table``.

    Parameters
    ----------
    model : Model
        The profiled model; every layer must be in ``table``.
    table : dict
        :func:`workloads.profiled.read_profile`'s layer -> (batches, fwd seconds, bwd seconds).
    device : DeviceSpec
        The device measured (peaks and bandwidth; its curves are kept where the profile cannot replace them).
    precision : Precision
        The precision measured (its peak and word bytes).
    memory_format : str
        The layout the profile ran in: ``nchw`` (its convolutions include cuDNN's transposes when the
        precision runs on tensor cores) or ``nhwc``.

    Returns
    -------
    (Efficiency, list of ClassFit)
        The device's new curves, and one fit report per class (memory first).

    Raises
    ------
    UserError
        ``profile`` field: layers of the model missing from the profile, no memory-bound rows to fit,
        or a fitted efficiency above 1.
    """
    absent = [layer.name for layer in model.layers if layer.name not in table]
    if absent:
        shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise UserError("profile", f"no rows for layer(s) {shown} of {model.name}",
                        f"a profile of every layer of {model.name} (dnnsim profile --model {model.name})")
    peak, tensor = device.peak(precision.peak)
    points = _points(model, table, device, precision, peak, tensor and memory_format == "nchw")
    mem_rows = [(wm, t) for cls, _, wm, t, _ in points if cls == "memory"]
    fitted = _line([wm for wm, _ in mem_rows], [t for _, t in mem_rows])
    if fitted is None:
        raise UserError("profile", f"{len(mem_rows)} memory-bound row(s) at distinct sizes, too few to fit",
                        "a profile with memory-bound layers (pool, norm, act, ...) at two or more batch sizes")
    memory = _check_max("memory", fitted)
    base = device.efficiency
    curves: dict[str, Curve] = {}
    reports = []
    for cls in COMPUTE_CLASSES:
        rows = [(wc, wm, t - _transpose_s(memory, wt)) for c, wc, wm, t, wt in points if c == cls]
        bound = [(wc, t) for wc, wm, t in rows if t > memory.achieved_s(wm) * (1 + COMPUTE_BOUND_MARGIN)]
        line = _line([wc for wc, _ in bound], [t for _, t in bound])
        if line is not None:
            curves[cls], status = _check_max(cls, line), "fitted"
        elif base is not None and cls in dict(base.tensor if tensor else base.simt):
            curves[cls], status = base.curve(cls, tensor), "kept"
        else:
            status = "absent"
        reports.append((cls, status, len(rows), len(bound)))
    kept = {} if base is None else dict(base.simt if tensor else base.tensor)
    table_new = tuple((cls, curves[cls]) for cls in COMPUTE_CLASSES if cls in curves)
    efficiency = Efficiency(tensor=table_new if tensor else tuple(kept.items()),
                            simt=tuple(kept.items()) if tensor else table_new, memory=memory)
    if not efficiency.tensor and not efficiency.simt:
        raise UserError("profile", "no conv, fc or attention layer is compute-bound in the profile",
                        "a profile with compute-bound layers at two or more batch sizes, or a --device with curves")
    fits = [_report("memory", memory, "fitted", len(mem_rows), len(mem_rows), points, efficiency, tensor)]
    for cls, status, n_rows, n_used in reports:
        fits.append(_report(cls, curves.get(cls), status, n_rows, n_used, points, efficiency, tensor))
    return efficiency, fits


def _predict(cls: str, wc: float, wm: float, wt: float, efficiency: Efficiency, tensor: bool) -> float:
    t_mem = efficiency.memory.achieved_s(wm)
    if cls == "memory":
        return t_mem
    return max(efficiency.curve(cls, tensor).achieved_s(wc), t_mem) + _transpose_s(efficiency.memory, wt)


def _report(cls: str, curve: Curve | None, status: str, n_rows: int, n_used: int, points, efficiency: Efficiency,
            tensor: bool) -> ClassFit:
    errs = [(_predict(c, wc, wm, wt, efficiency, tensor) / t - 1.0) ** 2 for c, wc, wm, t, wt in points
            if c == cls and t > 0 and curve is not None]
    rms = math.sqrt(sum(errs) / len(errs)) if errs else float("nan")
    return ClassFit(cls, curve, status, n_rows, n_used, rms)


def fitted_device(device: DeviceSpec, efficiency: Efficiency, name: str) -> DeviceSpec:
    """``device`` with the fitted curves and a new name (its ``b_half``, if any, dropped)."""
    return replace(device, name=name, efficiency=efficiency, b_half=None)
