"""The machine a calibration is relative to: a ``hier`` topology (its ``params`` and ``nccl:`` block).

``dnnsim calibrate nccl`` fits the ``nccl`` collective model's own parameters (``base_latency_us``,
``bus_efficiency.nvlink``, ``bus_efficiency.nic``), so it needs everything else that model reads: GPUs
and NICs per node, link bandwidths and latencies, GPU generation, CPU vendor, NVLS, LL128, channels.
They come from a reference given as a ``hier`` preset (``dgx-h100``), a preset with overrides
(``dgx-h100:nics_per_node=4``, ``a3-mega:nccl.protocols=Simple``), a ``hier:key=value,...`` spec, or a topology YAML file in preset form
(``kind: hier``, ``params:``, ``nccl:`` — what ``calibrate nccl -o`` writes). A plain topology (a graph
file, another kind) has no node/NIC structure for the model and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import UserError

ALLOWED = ("a hier preset (e.g. dgx-h100, dgx-a100), PRESET:key=value,..., hier:key=value,..., or a "
           "topology YAML file in preset form (kind: hier, params:, nccl:)")


@dataclass(frozen=True)
class Reference:
    """A ``hier`` machine: its label, raw ``params`` (as in a preset) and raw ``nccl:`` block."""

    label: str
    params: dict[str, Any]
    nccl: dict[str, Any] = field(default_factory=dict)

    @property
    def gpus_per_node(self) -> int:
        return int(self.parsed()["gpus_per_node"])

    def parsed(self) -> dict[str, Any]:
        """The params parsed with the ``hier`` kind's own keys and defaults (units to SI)."""
        from topologies.spec import KINDS

        kind = KINDS["hier"]
        unknown = sorted(set(self.params) - set(kind.keys))
        if unknown:
            raise UserError(f"reference.{unknown[0]}", "unknown key for hier", "keys: " + ", ".join(kind.keys))
        return {name: (key.parse(self.params[name], f"reference.{name}") if name in self.params else key.default)
                for name, key in kind.keys.items()}

    def fabric(self, ranks: int, nccl_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``fabric`` facts the nccl model reads for a group of ``ranks`` on whole nodes (the
        ``G.graph["fabric"]`` of the ``hier`` graph ``--topology`` would build), with the ``nccl:``
        block's values replaced by ``nccl_overrides`` (flat keys: ``base_latency_us``, ``eff_nvlink``, ...)."""
        from topologies.hier import hier

        p = self.parsed()
        g = int(p["gpus_per_node"])
        nodes = max(1, -(-int(ranks) // g))
        G = hier(nodes, g, p["intra"], p["inter"], p["intra_latency"], p["inter_latency"], p["nics_per_node"],
                 nccl=self.nccl)
        out = dict(G.graph["fabric"])
        out.update(nccl_overrides or {})
        return out

    def nccl_start(self) -> dict[str, float]:
        """The reference's own values of the fitted parameters (flat keys), defaults where absent."""
        from topologies.hier import nccl_params

        flat = nccl_params(self.nccl)
        return {k: float(flat[k]) for k in ("base_latency_us", "eff_nvlink", "eff_nic")}


def _from_mapping(data: dict[str, Any], label: str) -> Reference:
    if data.get("kind") != "hier":
        raise UserError("reference", f"{label!r} is of kind {data.get('kind')!r}, not hier", ALLOWED)
    params = data.get("params") or {}
    nccl = data.get("nccl") or {}
    if not isinstance(params, dict) or not isinstance(nccl, dict):
        raise UserError("reference", f"{label!r}: params and nccl must be mappings", ALLOWED)
    return Reference(label, dict(params), dict(nccl))


def load_reference(spec: str, intra: str | None = None, inter: str | None = None) -> Reference:
    """The reference machine of ``spec`` (module docstring); ``intra``/``inter`` override its NVLink (per
    GPU, per direction) and per-NIC bandwidths."""
    from topologies.spec import list_presets, load_preset, parse_spec, split_nccl_keys

    label = str(spec).strip()
    if not label:
        raise UserError("reference", "empty reference", ALLOWED)
    if label.lower().endswith((".yaml", ".yml")):
        from sim.yamlfile import read_yaml_mapping

        ref = _from_mapping(read_yaml_mapping(Path(label), "reference", ALLOWED), label)
    else:
        name, raw = parse_spec(label)
        if name == "hier":
            ref = Reference(label, dict(raw), {})
        elif name in list_presets():
            ref = _from_mapping(load_preset(name), label)
            ref = Reference(label, {**ref.params, **raw}, ref.nccl)
        else:
            raise UserError("reference", f"{label!r} is not a hier preset, spec or file", ALLOWED)
    params, nccl = split_nccl_keys(dict(ref.params), ref.nccl)
    if intra is not None:
        params["intra"] = intra
    if inter is not None:
        params["inter"] = inter
    ref = Reference(ref.label, params, nccl)
    ref.parsed()  # every key checked now, one line on a bad value
    from topologies.hier import nccl_params

    nccl_params(ref.nccl)
    return ref
