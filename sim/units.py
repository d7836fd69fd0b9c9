"""Parse and format quantities with units: sizes, times, rates.

Inside dnnsim everything is in SI base units (bytes, seconds, bytes per second); strings with units are
parsed once, here, at the edge. Decimal prefixes are powers of 1000 (``GB = 1e9``) and binary prefixes
powers of 1024 (``GiB = 2**30``); ``b``/``bit`` is a bit (1/8 byte), ``B`` a byte. A bare number is SI base.

Examples
--------
>>> parse_bytes("1MiB")
1048576.0
>>> parse_time("2us")
2e-06
>>> parse_rate("100Gbit/s")
12500000000.0
>>> parse_rate("6GiB/s") == 6 * 2**30
True
"""

from __future__ import annotations

import math
import re

from sim.errors import UserError

_PREFIX = {
    "": 1.0,
    "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12, "min": 60.0, "h": 3600.0}
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RE = re.compile(rf"^\s*{_NUM}\s*([A-Za-zµ/]*)\s*$")


def _split(text: str | float | int, field: str, what: str, example: str) -> tuple[float, str]:
    if isinstance(text, bool):
        raise UserError(field, f"{text!r} is not a {what}", f"a number with a unit such as {example}")
    if isinstance(text, (int, float)):
        return float(text), ""
    m = _RE.match(str(text))
    if not m:
        raise UserError(field, f"cannot parse {text!r} as a {what}", f"a number with a unit such as {example}")
    return float(m.group(1)), m.group(2)


def _check(value: float, field: str, text: object, what: str, example: str, allow_zero: bool) -> float:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(field, f"{text!r} is not a valid {what}", f"a finite {what} {bound} such as {example}")
    return value


def _size_unit(unit: str) -> float | None:
    """Multiplier to bytes for a unit like ``MiB``, ``GB``, ``Gbit``, ``kb``; None if not a size unit."""
    for suffix, scale in (("bit", 0.125), ("B", 1.0), ("b", 0.125)):
        if unit.endswith(suffix):
            prefix = unit[: -len(suffix)]
            if prefix in _PREFIX:
                return _PREFIX[prefix] * scale
    return None


def parse_bytes(text: str | float | int, field: str = "bytes", allow_zero: bool = False) -> float:
    """Parse a size such as ``64MB``, ``1MiB``, ``512`` (bytes) into bytes."""
    example = "64MiB or 1e6"
    value, unit = _split(text, field, "size", example)
    scale = 1.0 if unit == "" else _size_unit(unit)
    if scale is None:
        raise UserError(field, f"unknown size unit {unit!r} in {text!r}", "B, kB, MB, GB, KiB, MiB, GiB, bit, Gbit")
    return _check(value * scale, field, text, "size", example, allow_zero)


def parse_time(text: str | float | int, field: str = "time", allow_zero: bool = True) -> float:
    """Parse a duration such as ``2us``, ``1.5ms``, ``3`` (seconds) into seconds."""
    example = "2us or 1e-6"
    value, unit = _split(text, field, "time", example)
    if unit not in _TIME and unit != "":
        raise UserError(field, f"unknown time unit {unit!r} in {text!r}", "s, ms, us, ns, min, h")
    return _check(value * _TIME.get(unit, 1.0), field, text, "time", example, allow_zero)


def parse_rate(text: str | float | int, field: str = "bandwidth", allow_zero: bool = False) -> float:
    """Parse a data rate such as ``6GiB/s``, ``100Gbit/s``, ``450GB/s`` or ``1e9`` into bytes per second."""
    example = "6GiB/s or 100Gbit/s"
    value, unit = _split(text, field, "rate", example)
    if unit == "":
        scale: float | None = 1.0
    elif unit.endswith("/s"):
        scale = _size_unit(unit[:-2])
    elif unit.endswith("ps"):  # Gbps, MBps
        scale = _size_unit(unit[:-3] + ("bit" if unit[-3] == "b" else "B")) if len(unit) >= 3 else None
    else:
        scale = None
    if scale is None:
        raise UserError(field, f"unknown rate unit {unit!r} in {text!r}", "B/s, GB/s, GiB/s, Gbit/s, Gbps")
    return _check(value * scale, field, text, "rate", example, allow_zero)


def parse_flops(text: str | float | int, field: str = "flops") -> float:
    """Parse a compute rate such as ``19.5TFLOP/s``, ``3e12`` (FLOP/s) into FLOP/s."""
    value, unit = _split(text, field, "compute rate", "19.5TFLOP/s")
    for suffix in ("FLOP/s", "FLOPS", "flop/s", "Flop/s"):
        if unit.endswith(suffix) and unit[: -len(suffix)] in _PREFIX:
            return _check(value * _PREFIX[unit[: -len(suffix)]], field, text, "compute rate", "19.5TFLOP/s", False)
    if unit == "":
        return _check(value, field, text, "compute rate", "19.5TFLOP/s", False)
    raise UserError(field, f"unknown compute-rate unit {unit!r} in {text!r}", "FLOP/s with k, M, G, T, P prefixes")


def _scaled(value: float, units: tuple[tuple[str, float], ...], base: str) -> str:
    """``value`` in the first unit it reaches (largest first), 4 significant digits, never in e-notation
    above the largest unit (``12,345 s``)."""
    if value != value or value in (math.inf, -math.inf):
        return f"{value} {base}"
    for unit, scale in units:
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:,.0f} {unit}" if abs(scaled) >= 1e4 else f"{scaled:.4g} {unit}"
    return f"{value:.4g} {base}"


def format_bytes(n_bytes: float) -> str:
    """Format a size with binary prefixes: ``format_bytes(3 * 2**20) == '3 MiB'``."""
    return _scaled(n_bytes, (("PiB", 2.0**50), ("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20),
                             ("KiB", 2.0**10), ("B", 1.0)), "B")


def format_time(seconds: float) -> str:
    """Format a duration: ``format_time(2e-6) == '2 us'``, ``format_time(12345.0) == '12,345 s'``."""
    return _scaled(seconds, (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)), "s")


def format_rate(bytes_per_s: float) -> str:
    """Format a rate with decimal prefixes: ``format_rate(6e9) == '6 GB/s'``."""
    return _scaled(bytes_per_s, (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3), ("B/s", 1.0)),
                   "B/s")


def format_count(value: float) -> str:
    """Format a large count with decimal prefixes: ``format_count(1.456e9) == '1.456 G'``; small integers
    with thousands separators (``format_count(8199) == '8,199'``)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e6:
        return f"{int(value):,}"
    return _scaled(value, (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)), "").strip()
