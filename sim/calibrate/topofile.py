"""Write a fit (:mod:`sim.calibrate.fit`) as a topology YAML file that ``--topology FILE`` reads.

The file is in preset form, like ``topologies/presets/*.yaml``: ``kind: hier``, the reference machine's
``params`` unchanged, and its ``nccl:`` block with the fitted ``base_latency_us`` (one value for every call; a
held one keeps the reference's, per class if it is) and
``bus_efficiency: {nvlink, nic}`` under the names the ``nccl`` collective model reads (the reference's
``arch``, ``cpu_vendor``, ``nvls``, ``ll128``, ``channels``, ``algorithms``, ``protocols``,
``buffsize``, ``version`` kept). ``--topology FILE --collectives nccl``
(or ``dnnsim collective --algorithm nccl --topology FILE``) then gives back the fitted times. Values are
written at full float precision, so the file reproduces the fit bit for bit. A ``calibration:`` mapping
records the command, the files, and the fit's residual statistics (the topology reader ignores it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.calibrate.fit import NcclFit
from sim.errors import UserError


def topology_dict(fit: NcclFit, sources: list[str], command: str) -> dict[str, Any]:
    """The YAML mapping (module docstring)."""
    ref = fit.reference
    values = fit.nccl_values()
    nccl = {k: v for k, v in ref.nccl.items() if k not in ("base_latency_us", "bus_efficiency")}
    # a fitted latency is one value for every call (nccl_values then sets both classes); a held one keeps
    # the reference's, per class if it is
    nccl["base_latency_us"] = values["base_latency_us"] if "base_latency_nvlink_us" in values \
        else ref.nccl.get("base_latency_us", 0.0)
    nccl["bus_efficiency"] = {"nvlink": values["eff_nvlink"], "nic": values["eff_nic"]}
    return {
        "name": "calibrated",
        "description": f"{ref.label} with the nccl model's base latency and bus efficiencies fitted by dnnsim "
                       f"calibrate nccl to {', '.join(sources)}",
        "kind": "hier",
        "params": dict(ref.params),
        "nccl": nccl,
        "calibration": {
            "command": command,
            "reference": ref.label,
            "files": list(sources),
            "parameters": {p.name: {"value": p.value, "start": p.start, "status": p.status} for p in fit.params},
            "fit": {cls: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in s.items()}
                    for cls, s in fit.stats().items()},
        },
    }


def write_topology(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as YAML to ``path`` (a ``.yaml``/``.yml`` name, as ``--topology`` needs)."""
    import yaml

    from sim.atomicfile import write_text_atomically

    p = Path(path)
    if p.suffix.lower() not in (".yaml", ".yml"):
        raise UserError("output", f"{str(p)!r} does not end in .yaml or .yml", "a file name such as topo.yaml")
    header = "# Written by dnnsim calibrate nccl; use it as --topology FILE (docs/calibrate.md).\n"
    try:
        write_text_atomically(p, header + yaml.safe_dump(data, sort_keys=False, width=120))
    except OSError as exc:
        raise UserError("output", f"cannot write {str(p)!r} ({type(exc).__name__})", "a writable path") from None
