"""Accelerator and CPU specifications for the roofline compute model, read from ``workloads/devices/*.yaml``.

Each file gives ``name``, ``aliases``, ``description``, ``peak_flops`` (the fp32 peak without tensor
cores, with units, parsed by :func:`sim.units.parse_flops`), ``mem_bandwidth`` (parsed by
:func:`sim.units.parse_rate`), optionally ``memory`` (the capacity a rank can hold its weights, optimizer
state and activations in, parsed by :func:`sim.units.parse_bytes`: ``80GiB``; left out it is unknown and
:func:`sim.llm.memory.fits` answers None), optionally ``peaks`` (the other precisions' dense peaks: ``{tf32: {flops:
156TFLOP/s, tensor_core: true}, ...}``, keys from :data:`workloads.precision.PRECISIONS` peaks), the
achieved efficiency as either ``efficiency`` (curves per kernel class keyed on the work of one call,
:mod:`workloads.efficiency`) or ``b_half`` (the older per-sample curve ``b / (b + b_half)``, kept
bit for bit for files that have only it), and ``sources`` (where each number comes from). A device may
also be given as a path to such a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.errors import UserError
from sim.units import parse_bytes, parse_flops, parse_rate
from sim.yamlfile import read_yaml_mapping
from workloads.efficiency import Efficiency, parse_efficiency

#: peaks a device file may list besides the fp32 ``peak_flops``
PEAK_KEYS = ("tf32", "bf16", "fp16", "fp8")

DEVICE_DIR = Path(__file__).with_name("devices")


@dataclass(frozen=True)
class DeviceSpec:
    """One device.

    Attributes
    ----------
    name : str
    peak_flops : float
        FLOP/s (fp32, no tensor cores).
    mem_bandwidth_Bps : float
        Bytes/s from main memory (HBM, MCDRAM, DRAM).
    b_half : float or None
        Local batch at which efficiency is 1/2 (:func:`workloads.roofline.batch_efficiency`); None when
        the file gives ``efficiency`` instead.
    description : str
    sources : tuple of (field, citation)
    peaks : tuple of (precision, FLOP/s, tensor_core)
        Every precision's dense peak, fp32 (``peak_flops``, no tensor cores) first.
    efficiency : Efficiency or None
        Work-keyed curves (:mod:`workloads.efficiency`); None for a ``b_half`` file.
    memory_bytes : float or None
        Memory capacity in bytes (HBM of a GPU); None when the file does not say.
    """

    name: str
    peak_flops: float
    mem_bandwidth_Bps: float
    b_half: float | None
    description: str = ""
    sources: tuple[tuple[str, str], ...] = ()
    peaks: tuple[tuple[str, float, bool], ...] = ()
    efficiency: Efficiency | None = None
    memory_bytes: float | None = None

    def peak(self, key: str) -> tuple[float, bool]:
        """``(FLOP/s, tensor_core)`` of peak ``key`` (``fp32``, ``tf32``, ...).

        Raises
        ------
        UserError
            ``precision`` field, when the device has no such peak.
        """
        table = {name: (flops, tensor) for name, flops, tensor in self.peaks or (("fp32", self.peak_flops, False),)}
        if key not in table:
            raise UserError("precision", f"device {self.name!r} has no {key} peak",
                            f"a precision whose peak it has: {', '.join(table)} (amp uses fp16)")
        return table[key]


def _files() -> dict[str, Path]:
    table: dict[str, Path] = {}
    for path in sorted(DEVICE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for alias in [data["name"], *data.get("aliases", [])]:
            table[alias] = path
    return table


def list_devices() -> list[str]:
    """Names of the bundled devices (without aliases), sorted."""
    return sorted(yaml.safe_load(p.read_text())["name"] for p in DEVICE_DIR.glob("*.yaml"))


def device_path(name: str) -> Path:
    """The file of device ``name`` (a bundled name or alias, or a ``.yaml`` path).

    Raises
    ------
    UserError
        ``device`` field, for an unknown name or a missing file.
    """
    if name.lower().endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise UserError("device", f"file {name!r} does not exist", "a device name or an existing .yaml file")
        return path
    files = _files()
    if name not in files:
        raise UserError("device", f"{name!r} is not a known device",
                        f"one of {', '.join(sorted(files))} or a .yaml file")
    return files[name]


def read_device_mapping(name: str) -> tuple[Path, dict]:
    """``(path, mapping)`` of device ``name``'s file, as written (for tools that write a derived file)."""
    path = device_path(name)
    return path, read_yaml_mapping(path, "device", "a device YAML file: a mapping as in workloads/devices/")


def load_device(name: str) -> DeviceSpec:
    """The device called ``name`` (or an alias), or read from a ``.yaml`` file path.

    Raises
    ------
    UserError
        ``device`` field, for an unknown name or a malformed file.
    """
    path, data = read_device_mapping(name)
    return device_from_mapping(data, str(path), path.stem)


def device_from_mapping(data: dict, where: str, default_name: str) -> DeviceSpec:
    """A :class:`DeviceSpec` from the mapping of a device file (module docstring); ``where`` names it in errors."""
    allowed = "peak_flops, mem_bandwidth, and efficiency or b_half"
    for key in ("peak_flops", "mem_bandwidth"):
        if key not in data:
            raise UserError("device", f"{where!r} lacks {key}", allowed)
    if "b_half" not in data and "efficiency" not in data:
        raise UserError("device", f"{where!r} lacks efficiency (or b_half)", allowed)
    if "b_half" in data and "efficiency" in data:
        raise UserError("device", f"{where!r} gives both efficiency and b_half",
                        "one of them: efficiency (work-keyed curves) or b_half (the per-sample curve)")
    b_half = data.get("b_half")
    if b_half is not None and (isinstance(b_half, bool) or not isinstance(b_half, (int, float)) or b_half < 0):
        raise UserError("device.b_half", f"{b_half!r} is not a number >= 0", "a batch size such as 16")
    efficiency = parse_efficiency(data["efficiency"]) if data.get("efficiency") is not None else None
    peak_flops = parse_flops(data["peak_flops"], "device.peak_flops")
    return DeviceSpec(
        name=str(data.get("name", default_name)),
        peak_flops=peak_flops,
        mem_bandwidth_Bps=parse_rate(data["mem_bandwidth"], "device.mem_bandwidth"),
        b_half=None if efficiency is not None else float(b_half),
        description=str(data.get("description", "")),
        sources=tuple((str(k), str(v)) for k, v in (data.get("sources") or {}).items()),
        peaks=(("fp32", peak_flops, False), *_peaks(data.get("peaks"))),
        efficiency=efficiency,
        memory_bytes=parse_bytes(data["memory"], "device.memory") if data.get("memory") is not None else None,
    )


def _peaks(data: object) -> list[tuple[str, float, bool]]:
    """The ``peaks:`` mapping as ``(precision, FLOP/s, tensor_core)`` rows."""
    if data is None:
        return []
    allowed = f"a mapping of {', '.join(PEAK_KEYS)} to {{flops: 312TFLOP/s, tensor_core: true}}"
    if not isinstance(data, dict):
        raise UserError("device.peaks", f"{data!r} is not a mapping", allowed)
    rows = []
    for key, entry in data.items():
        if key not in PEAK_KEYS:
            raise UserError("device.peaks", f"{key!r} is not a peak a device file lists (fp32 is peak_flops)",
                            allowed)
        if not isinstance(entry, dict) or "flops" not in entry or set(entry) - {"flops", "tensor_core"}:
            raise UserError(f"device.peaks.{key}", f"{entry!r} is not a peak", allowed)
        tensor = entry.get("tensor_core", False)
        if not isinstance(tensor, bool):
            raise UserError(f"device.peaks.{key}.tensor_core", f"{tensor!r} is not true or false", "true or false")
        rows.append((str(key), parse_flops(entry["flops"], f"device.peaks.{key}.flops"), tensor))
    return rows
