"""Accelerator and CPU specifications for the roofline compute model, read from ``workloads/devices/*.yaml``.

Each file gives ``name``, ``aliases``, ``description``, ``peak_flops`` (fp32, with units, parsed by
:func:`sim.units.parse_flops`), ``mem_bandwidth`` (parsed by :func:`sim.units.parse_rate`), ``b_half``
(the local batch at which the device reaches half its peak efficiency) and ``sources`` (where each number
comes from). A device may also be given as a path to such a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.errors import UserError
from sim.units import parse_flops, parse_rate
from sim.yamlfile import read_yaml_mapping

DEVICE_DIR = Path(__file__).with_name("devices")


@dataclass(frozen=True)
class DeviceSpec:
    """One device.

    Attributes
    ----------
    name : str
    peak_flops : float
        FLOP/s (fp32).
    mem_bandwidth_Bps : float
        Bytes/s from main memory (HBM, MCDRAM, DRAM).
    b_half : float
        Local batch at which efficiency is 1/2 (:func:`workloads.roofline.batch_efficiency`).
    description : str
    sources : dict
        Field -> citation.
    """

    name: str
    peak_flops: float
    mem_bandwidth_Bps: float
    b_half: float
    description: str = ""
    sources: tuple[tuple[str, str], ...] = ()


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


def load_device(name: str) -> DeviceSpec:
    """The device called ``name`` (or an alias), or read from a ``.yaml`` file path.

    Raises
    ------
    UserError
        ``device`` field, for an unknown name or a malformed file.
    """
    if name.lower().endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise UserError("device", f"file {name!r} does not exist", "a device name or an existing .yaml file")
    else:
        files = _files()
        if name not in files:
            raise UserError("device", f"{name!r} is not a known device",
                            f"one of {', '.join(sorted(files))} or a .yaml file")
        path = files[name]
    data = read_yaml_mapping(path, "device", "a device YAML file: a mapping as in workloads/devices/")
    for key in ("peak_flops", "mem_bandwidth", "b_half"):
        if key not in data:
            raise UserError("device", f"{str(path)!r} lacks {key}", "peak_flops, mem_bandwidth and b_half")
    b_half = data["b_half"]
    if isinstance(b_half, bool) or not isinstance(b_half, (int, float)) or b_half < 0:
        raise UserError("device.b_half", f"{b_half!r} is not a number >= 0", "a batch size such as 16")
    return DeviceSpec(
        name=str(data.get("name", path.stem)),
        peak_flops=parse_flops(data["peak_flops"], "device.peak_flops"),
        mem_bandwidth_Bps=parse_rate(data["mem_bandwidth"], "device.mem_bandwidth"),
        b_half=float(b_half),
        description=str(data.get("description", "")),
        sources=tuple((str(k), str(v)) for k, v in (data.get("sources") or {}).items()),
    )
