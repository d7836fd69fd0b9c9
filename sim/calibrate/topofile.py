"""Write a fit (:mod:`sim.calibrate.fit`) as a topology YAML file that ``--topology`` reads.

The graph is a star (one non-blocking switch ``s0``, hosts ``h0 .. h{n-1}``) whose links carry the fitted
values of the *main* class (``inter`` when the files had a multi-node table, else ``intra``), with n its
largest rank count: every link has the fitted bus bandwidth ``η·B`` and the latency
``α / (4 (n - 1))``, so that a ring all-reduce of n ranks on it (2(n-1) steps, each over two links:
``2(n-1) · 2 · latency = α``, and ``2(n-1)/n · S`` bytes through each rank's link at ``η·B``) takes
exactly the fitted ``α + S · 2(n-1)/n / (η·B)``. The ``nccl:`` block holds every class's values for an
NCCL-like collective model (docs/calibrate.md names the keys); the topology reader ignores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.calibrate.fit import ClassFit
from sim.errors import UserError


def main_class(fits: dict[str, ClassFit]) -> ClassFit:
    """The class the graph's links carry: ``inter`` when fitted, else ``intra``."""
    return fits["inter"] if "inter" in fits else fits["intra"]


def topology_dict(fits: dict[str, ClassFit], sources: list[str], command: str) -> dict[str, Any]:
    """The YAML mapping (module docstring)."""
    main = main_class(fits)
    n = max(main.ranks, 2)
    hosts = [f"h{i}" for i in range(n)]
    nccl: dict[str, Any] = {
        "base_latency_us": {c: round(f.alpha_s * 1e6, 4) for c, f in fits.items()},
        "bus_bandwidth_GBps": {c: round(f.bus_Bps / 1e9, 4) for c, f in fits.items()},
        "bus_efficiency": {c: (None if f.efficiency is None else round(f.efficiency, 4)) for c, f in fits.items()},
        "reference_bandwidth_GBps": {c: (None if f.reference_Bps is None else round(f.reference_Bps / 1e9, 4))
                                     for c, f in fits.items()},
        "fit": {c: {"ranks": f.ranks, "rows": f.rows, "rms_rel_error": round(f.rms_rel_error, 4),
                    "max_rel_error": round(f.max_rel_error, 4)} for c, f in fits.items()},
    }
    return {
        "name": "calibrated",
        "description": f"fitted by dnnsim calibrate nccl from {', '.join(sources)}: {main.link_class} class, "
                       f"{n} hosts on one switch; ring all-reduce on it takes the fitted time",
        "command": command,
        "hosts": hosts,
        "switches": ["s0"],
        "defaults": {"bandwidth": float(main.bus_Bps), "latency": float(main.alpha_s / (4 * (n - 1)))},
        "edges": [[h, "s0"] for h in hosts],
        "nccl": nccl,
    }


def write_topology(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as YAML to ``path`` (a ``.yaml``/``.yml`` name, as ``--topology`` needs)."""
    import yaml

    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml"):
        raise UserError("output", f"{str(p)!r} does not end in .yaml or .yml", "a file name such as topo.yaml")
    header = "# Written by dnnsim calibrate nccl; use it as --topology FILE (docs/calibrate.md).\n"
    try:
        p.write_text(header + yaml.safe_dump(data, sort_keys=False, width=120), encoding="utf-8")
    except OSError as exc:
        raise UserError("output", f"cannot write {str(p)!r} ({type(exc).__name__})", "a writable path") from None
