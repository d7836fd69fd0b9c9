"""Achieved efficiency of one kernel call as a function of its work (the ``efficiency:`` block of a device).

A layer belongs to one kernel class (:func:`kernel_class`): ``conv`` (convolutions), ``matmul`` (fully
connected layers and attention's score/context products) or ``memory`` (everything else: elementwise,
pool, norm, softmax, embedding gathers, ...). The work of one call is expressed as the seconds it would
take at the ceiling: ``w = flops / peak`` for ``conv``/``matmul`` (peak of the precision), ``w = bytes /
mem_bandwidth`` for memory traffic. A class's :class:`Curve` gives the fraction of the ceiling reached::

    efficiency(w) = max * w / (w + half_s)          (max at large work, max/2 at w = half_s)

so the achieved time is linear in the work, ``w / efficiency(w) = (w + half_s) / max``: ``half_s / max``
is a per-call cost (launch, tail of the last wave) and ``1 / max`` the slow-down of a long call. Because
``w`` is the work of the rank's own call, a layer split over Pr ranks (model or domain parallel) runs at
the efficiency of its smaller share, and a transformer's sample (a whole sequence) counts by its FLOPs,
not as one sample.

A device file gives one curve per class for the tensor-core precisions (``tensor``) and for the others
(``simt``), and one ``memory`` curve::

    efficiency:
      tensor: {matmul: {max: 0.748, half_s: 14us}, conv: {max: 0.748, half_s: 14us}}
      simt:   {matmul: {max: 0.775, half_s: 43us}, conv: {max: 0.775, half_s: 43us}}
      memory: {max: 0.833, half_s: 5us}

``half_s`` takes a time with units (``sim.units.parse_time``) or seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import UserError
from sim.units import parse_time

#: kernel classes with a compute curve
COMPUTE_CLASSES = ("conv", "matmul")
#: the curve sets of a device: tensor-core precisions, other precisions
CURVE_SETS = ("tensor", "simt")
#: layer kinds timed as matrix products
MATMUL_KINDS = ("fc", "attention")


def kernel_class(kind: str) -> str:
    """``conv``, ``matmul`` or ``memory`` for a layer kind (module docstring)."""
    if kind == "conv":
        return "conv"
    if kind in MATMUL_KINDS:
        return "matmul"
    return "memory"


@dataclass(frozen=True)
class Curve:
    """``efficiency(w) = max * w / (w + half_s)`` for a call of ``w`` seconds at the ceiling."""

    max: float
    half_s: float

    def efficiency(self, work_s: float) -> float:
        """Fraction of the ceiling reached by a call of ``work_s`` seconds at the ceiling."""
        return self.max * work_s / (work_s + self.half_s)

    def achieved_s(self, work_s: float) -> float:
        """Seconds the call takes: ``(work_s + half_s) / max``."""
        return (work_s + self.half_s) / self.max

    def as_yaml(self) -> dict[str, float]:
        """The mapping a device file holds for this curve (``half_s`` in seconds)."""
        return {"max": self.max, "half_s": self.half_s}


@dataclass(frozen=True)
class Efficiency:
    """The curves of one device: ``tensor`` and ``simt`` (class -> Curve) and ``memory``."""

    tensor: tuple[tuple[str, Curve], ...]
    simt: tuple[tuple[str, Curve], ...]
    memory: Curve

    def curve(self, cls: str, tensor_core: bool) -> Curve:
        """The curve of kernel class ``cls`` (``memory`` or a compute class) at a tensor-core precision or not."""
        if cls == "memory":
            return self.memory
        table = dict(self.tensor if tensor_core else self.simt)
        if cls not in table:
            which = "tensor" if tensor_core else "simt"
            raise UserError(f"device.efficiency.{which}", f"has no {cls} curve", ", ".join(COMPUTE_CLASSES))
        return table[cls]

    def as_yaml(self) -> dict[str, Any]:
        """The ``efficiency:`` mapping of a device file."""
        out: dict[str, Any] = {}
        for which in CURVE_SETS:
            table = getattr(self, which)
            if table:
                out[which] = {cls: curve.as_yaml() for cls, curve in table}
        out["memory"] = self.memory.as_yaml()
        return out


def parse_curve(data: Any, field: str) -> Curve:
    """A :class:`Curve` from ``{max: 0 < x <= 1, half_s: time >= 0}``; UserError naming ``field`` otherwise."""
    allowed = "a mapping {max: a fraction in (0, 1], half_s: a time >= 0 such as 10us}"
    if not isinstance(data, dict) or set(data) - {"max", "half_s"} or not {"max", "half_s"} <= set(data):
        raise UserError(field, f"{data!r} is not an efficiency curve", allowed)
    peak = data["max"]
    if isinstance(peak, bool) or not isinstance(peak, (int, float)) or not 0 < peak <= 1:
        raise UserError(f"{field}.max", f"{peak!r} is not a fraction in (0, 1]", allowed)
    return Curve(float(peak), parse_time(data["half_s"], f"{field}.half_s"))


def parse_efficiency(data: Any, field: str = "device.efficiency") -> Efficiency:
    """An :class:`Efficiency` from a device file's ``efficiency:`` mapping (module docstring)."""
    allowed = "a mapping with memory and at least one of tensor, simt (each {conv: ..., matmul: ...})"
    if not isinstance(data, dict) or "memory" not in data or set(data) - {"memory", *CURVE_SETS}:
        raise UserError(field, f"{data!r} is not an efficiency block", allowed)
    sets: dict[str, tuple[tuple[str, Curve], ...]] = {}
    for which in CURVE_SETS:
        table = data.get(which) or {}
        if not isinstance(table, dict) or set(table) - set(COMPUTE_CLASSES):
            raise UserError(f"{field}.{which}", f"{table!r} is not a table of curves",
                            f"a mapping of {', '.join(COMPUTE_CLASSES)} to curves")
        sets[which] = tuple((cls, parse_curve(table[cls], f"{field}.{which}.{cls}")) for cls in COMPUTE_CLASSES
                            if cls in table)
    if not sets["tensor"] and not sets["simt"]:
        raise UserError(field, "has neither tensor nor simt curves", allowed)
    return Efficiency(sets["tensor"], sets["simt"], parse_curve(data["memory"], f"{field}.memory"))
