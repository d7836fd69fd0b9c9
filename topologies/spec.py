"""Topology specs: ``KIND[:key=value,...]``, a preset name, or a YAML/GraphML file -> networkx.Graph.

The kinds, their keys and defaults are the registry :data:`KINDS`; :func:`describe_kinds` lists them for
``dnnsim topologies``. Values take units (parsed by :mod:`sim.units`): bandwidths like ``6GiB/s`` or
``100Gbit/s``, latencies like ``2us``; a bare number is SI base (bytes/s, seconds).

Defaults: link bandwidth 6 GiB/s and latency 2 µs per link (the paper's NERSC Cori α and 1/β, docs/paper-model.md),
except ``hier`` (NVLink/InfiniBand defaults below). Kinds that can be sized (ideal, star, ring, leaf/spine
fattree, hier) create hosts to fit ``n_hosts`` (the ``--procs``), or take ``hosts=`` (``nodes=`` for hier);
fixed-size kinds (three-level fattree, torus, dragonfly) raise a :class:`UserError` naming ``procs`` when
they have fewer hosts than asked for. With no ``n_hosts`` and no size key, a sized kind has 16 hosts.

``fattree`` is the three-level k-ary fat-tree unless ``oversubscription`` is not 1, ``hosts`` is given or
``levels=2``: then it is a two-level leaf/spine with k hosts per leaf and k/R spines. So
``fattree:k=8,oversubscription=2`` is a leaf/spine with 8 hosts per leaf and 4 spines (64 hosts = 8
leaves when procs is not given).

A preset may be followed by keys that override its values: ``dgx-h100:nodes=4``.

Examples
--------
>>> G = build_topology("fattree:k=4")
>>> len(G.graph["hosts"]), G.number_of_edges()
(16, 48)
>>> build_topology("ideal:latency=2us,bandwidth=6GiB/s", n_hosts=8).graph["full_mesh"]["latency_s"]
2e-06
>>> build_topology("star", n_hosts=5).number_of_nodes()
6
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from sim.errors import UserError
from sim.units import parse_rate, parse_time
from topologies._graph import DEFAULT_BANDWIDTH_BPS, DEFAULT_LATENCY_S

DEFAULT_HOSTS = 16
PRESET_DIR = Path(__file__).parent / "presets"
FILE_SUFFIXES = (".yaml", ".yml", ".graphml")


def _int(text: Any, field: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserError(field, f"{text!r} is not an integer", "a positive integer") from None
    if value < 1:
        raise UserError(field, f"{value} is not positive", "a positive integer")
    return value


def _float(text: Any, field: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise UserError(field, f"{text!r} is not a number", "a positive number") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(field, f"{text!r} is not a positive number", "a finite number > 0")
    return value


def _rate(text: Any, field: str) -> float:
    return parse_rate(text, field)


def _time(text: Any, field: str) -> float:
    return parse_time(text, field)


def _dims(text: Any, field: str) -> tuple[int, ...]:
    parts = re.split(r"[xX×]", str(text).strip())
    if not parts or not all(re.fullmatch(r"\s*\d+\s*", p) for p in parts):
        raise UserError(field, f"cannot parse {text!r}", "sizes joined by x, e.g. 8x8x8 or 16")
    dims = tuple(int(p) for p in parts)
    if min(dims) < 1:
        raise UserError(field, f"{text!r} has a zero dimension", "sizes >= 1 joined by x, e.g. 8x8x8")
    return dims


@dataclass(frozen=True)
class Key:
    """One key of a kind: how to parse it, its default (None: computed, see doc) and what it means."""

    parse: Callable[[Any, str], Any]
    default: Any
    doc: str
    shown: str | None = None  # the default as a user would write it (None: str of the default, or auto)


@dataclass(frozen=True)
class Kind:
    """A builder kind of the spec language."""

    name: str
    doc: str
    keys: dict[str, Key]
    make: Callable[[dict[str, Any], int | None], nx.Graph]


_BW = Key(_rate, DEFAULT_BANDWIDTH_BPS, "link bandwidth per direction (paper's Cori 1/β)", "6GiB/s")
_LAT = Key(_time, DEFAULT_LATENCY_S, "latency per link (paper's Cori α)", "2us")
_HOSTS = Key(_int, None, f"number of hosts (default: procs, else {DEFAULT_HOSTS})")


def _sized(p: dict[str, Any], n_hosts: int | None, default: int = DEFAULT_HOSTS) -> int:
    return p["hosts"] if p["hosts"] is not None else (n_hosts if n_hosts is not None else default)


def _make_ideal(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.basic import ideal
    return ideal(_sized(p, n), p["bandwidth"], p["latency"])


def _make_star(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.basic import star
    return star(_sized(p, n), p["bandwidth"], p["latency"])


def _make_ring(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.torus import ring
    return ring(_sized(p, n), p["bandwidth"], p["latency"])


def balanced_dims(n: int, ndims: int = 3) -> tuple[int, ...]:
    """The most cube-like factorization of n into ``ndims`` sizes (ascending); ``balanced_dims(64) == (4, 4, 4)``."""
    best: tuple[int, ...] = (1,) * (ndims - 1) + (n,)

    def rec(rest: int, k: int, lo: int, acc: tuple[int, ...]) -> None:
        nonlocal best
        if k == 1:
            if rest >= lo:
                cand = (*acc, rest)
                if max(cand) < max(best) or (max(cand) == max(best) and cand > best):
                    best = cand
            return
        for f in range(lo, int(round(rest ** (1 / k))) + 1):
            if rest % f == 0:
                rec(rest // f, k - 1, f, (*acc, f))

    rec(n, ndims, 1, ())
    return best


def _make_torus(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.torus import torus
    dims = p["dims"] if p["dims"] is not None else (balanced_dims(n) if n is not None else (4, 4, 4))
    return torus(dims, p["bandwidth"], p["latency"])


def _make_fattree(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.fattree import fattree, leaf_spine
    r, levels = p["oversubscription"], p["levels"]
    if levels is None:
        levels = 2 if (r != 1 or p["hosts"] is not None) else 3
    if levels not in (2, 3):
        raise UserError("topology.levels", f"levels={levels}", "2 (leaf/spine) or 3 (k-ary fat-tree)")
    if levels == 3:
        if r != 1:
            raise UserError("topology.oversubscription", f"R={r:g} with levels=3",
                            "oversubscription with levels=2 (leaf/spine); the 3-level k-ary tree is non-blocking")
        if p["hosts"] is not None:
            raise UserError("topology.hosts", "hosts= with levels=3", "k (k^3/4 hosts) for levels=3")
        k = p["k"]
        if k is None:
            need = n if n is not None else DEFAULT_HOSTS
            k = 2
            while k**3 // 4 < need:
                k += 2
        return fattree(k, p["bandwidth"], p["latency"])
    k = p["k"] if p["k"] is not None else 8
    return leaf_spine(_sized(p, n, default=k * k), k, r, p["bandwidth"], p["latency"])


def _make_dragonfly(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.dragonfly import dragonfly
    return dragonfly(p["p"], p["a"], p["h"], p["bandwidth"], p["latency"])


def _make_hier(p: dict[str, Any], n: int | None) -> nx.Graph:
    from topologies.hier import hier
    g = p["gpus_per_node"]
    nodes = p["nodes"] if p["nodes"] is not None else (math.ceil(n / g) if n is not None else 2)
    return hier(nodes, g, p["intra"], p["inter"], p["intra_latency"], p["inter_latency"], p["nics_per_node"],
                nccl=p.get("nccl"))


KINDS: dict[str, Kind] = {
    "ideal": Kind("ideal", "every host pair linked directly (the paper's α-β model, no contention)",
                  {"hosts": _HOSTS, "bandwidth": _BW, "latency": _LAT}, _make_ideal),
    "star": Kind("star", "one non-blocking switch, one full-duplex link per host",
                 {"hosts": _HOSTS, "bandwidth": _BW, "latency": _LAT}, _make_star),
    "ring": Kind("ring", "hosts in a ring (direct network), shorter way round",
                 {"hosts": _HOSTS, "bandwidth": _BW, "latency": _LAT}, _make_ring),
    "torus": Kind("torus", "direct torus, one link per direction per dimension, dimension-order routing",
                  {"dims": Key(_dims, None, "sizes like 8x8x8 (default: most cubic 3-D factorization of "
                                            "procs, else 4x4x4)"),
                   "bandwidth": _BW, "latency": _LAT}, _make_torus),
    "fattree": Kind("fattree", "k-ary 3-level fat-tree (levels=3) or leaf/spine with R:1 oversubscription "
                               "(levels=2; default when oversubscription != 1 or hosts given); d-mod-k routing",
                    {"k": Key(_int, None, "levels=3: even radix, k^3/4 hosts (default: smallest fitting "
                                          "procs); levels=2: hosts per leaf (default 8)"),
                     "oversubscription": Key(_float, 1.0, "R: leaf uplinks = k*bandwidth/R (k/R spines)"),
                     "levels": Key(_int, None, "2 (leaf/spine) or 3 (k-ary fat-tree)"),
                     "hosts": Key(_int, None, "levels=2: number of hosts (default: procs, else k*k)"),
                     "bandwidth": _BW, "latency": _LAT}, _make_fattree),
    "dragonfly": Kind("dragonfly", "p hosts/router, a routers/group, h global links/router, a*h+1 groups; "
                                   "minimal routing",
                      {"p": Key(_int, 2, "hosts per router"), "a": Key(_int, 4, "routers per group"),
                       "h": Key(_int, 2, "global links per router"), "bandwidth": _BW, "latency": _LAT},
                      _make_dragonfly),
    "hier": Kind("hier", "multi-GPU nodes: NVSwitch inside a node, NICs to a non-blocking fabric switch",
                 {"gpus_per_node": Key(_int, 8, "GPUs (hosts) per node"),
                  "nodes": Key(_int, None, "number of nodes (default: ceil(procs/gpus_per_node), else 2)"),
                  "nics_per_node": Key(_int, None, "NICs per node, dividing gpus_per_node (default: one per GPU)"),
                  "intra": Key(_rate, 450e9, "NVSwitch bandwidth per GPU per direction (NVLink4, H100)",
                               "450GB/s"),
                  "inter": Key(_rate, 50e9, "bandwidth per NIC per direction (ConnectX-7)", "400Gbit/s"),
                  "intra_latency": Key(_time, 1e-6, "latency of a GPU-NVSwitch link", "1us"),
                  "inter_latency": Key(_time, 2e-6, "latency of a NIC-fabric link", "2us")}, _make_hier),
}


def describe_kinds() -> list[dict[str, str]]:
    """One record per kind: ``kind, keys, doc, key_docs`` (keys as ``key=default``; ``auto`` where computed).

    Examples
    --------
    >>> describe_kinds()[0]["keys"]
    'hosts=auto, bandwidth=6GiB/s, latency=2us'
    """
    rows = []
    for kind in KINDS.values():
        keys = ", ".join(f"{name}={_show(key)}" for name, key in kind.keys.items())
        key_docs = "; ".join(f"{name}: {key.doc}" for name, key in kind.keys.items())
        rows.append({"kind": kind.name, "keys": keys, "doc": kind.doc, "key_docs": key_docs})
    return rows


def _show(key: Key) -> str:
    if key.shown is not None:
        return key.shown
    if key.default is None:
        return "auto"
    return f"{key.default:g}" if isinstance(key.default, float) else str(key.default)


def list_presets() -> list[str]:
    """Names of the preset files in ``topologies/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The parsed YAML of preset ``name`` (keys ``name, kind, params, description, sources``)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError("topology", f"unknown preset {name!r}", "one of " + ", ".join(list_presets()))
    with path.open(encoding="utf-8") as fh:
        import yaml  # only when a preset file is read

        return yaml.safe_load(fh)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``KIND[:key=value,...]`` into the kind and its raw values.

    Examples
    --------
    >>> parse_spec("fattree:k=8, oversubscription=2")
    ('fattree', {'k': '8', 'oversubscription': '2'})
    """
    text = str(spec).strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip()
    values: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise UserError("topology", f"malformed {item.strip()!r} in {text!r}",
                                "KIND:key=value,key=value, e.g. fattree:k=8,oversubscription=2")
            if key in values:
                raise UserError("topology", f"key {key!r} given twice in {text!r}", "each key once")
            values[key] = value
    return kind, values


def split_nccl_keys(raw: dict[str, Any], nccl: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(params, nccl block)`` of a spec's values: each ``nccl.KEY=value`` (``dgx-h100:nccl.algorithms=ring``)
    moves into the ``nccl`` block, over the preset's value of KEY.

    Examples
    --------
    >>> split_nccl_keys({"nodes": "2", "nccl.protocols": "Simple"}, {"buffsize": 8388608})
    ({'nodes': '2'}, {'buffsize': 8388608, 'protocols': 'Simple'})
    >>> split_nccl_keys({"nccl.bus_efficiency.nic": "0.8"}, {"bus_efficiency": {"nvlink": 0.8, "nic": 0.9}})
    ({}, {'bus_efficiency': {'nvlink': 0.8, 'nic': '0.8'}})
    """
    dotted = {k[len("nccl."):]: v for k, v in raw.items() if k.startswith("nccl.")}
    if not dotted:
        return raw, nccl
    block = dict(nccl or {})
    for key, value in dotted.items():
        head, _, leaf = key.partition(".")
        if head in ("bus_efficiency", "base_latency_us") and leaf:  # nccl.bus_efficiency.nic=0.8: one link
            # class, the other kept (a single base latency stands for both classes)
            old = block.get(head)
            if head == "base_latency_us" and old is not None and not isinstance(old, dict):
                old = {"nvlink": old, "nic": old}
            block[head] = {**(old if isinstance(old, dict) else {}), leaf: value}
        else:
            block[key] = value
    return {k: v for k, v in raw.items() if not k.startswith("nccl.")}, block


def _build_kind(kind_name: str, raw: dict[str, Any], n_hosts: int | None, label: str) -> nx.Graph:
    kind = KINDS.get(kind_name)
    if kind is None:
        raise UserError("topology", f"unknown topology {label!r}",
                        "a kind (" + ", ".join(KINDS) + "), a preset (" + ", ".join(list_presets())
                        + ") or a .yaml/.yml/.graphml file")
    nccl = raw.get("nccl") if kind_name == "hier" else None
    raw = {k: v for k, v in raw.items() if not (k == "nccl" and kind_name == "hier")}
    if kind_name == "hier":  # PRESET:nccl.algorithms=ring — one nccl key set from the spec string
        raw, nccl = split_nccl_keys(raw, nccl)
    unknown = sorted(set(raw) - set(kind.keys))
    if unknown:
        raise UserError(f"topology.{unknown[0]}", f"unknown key for {kind_name}", "keys: " + ", ".join(kind.keys))
    params = {name: (key.parse(raw[name], f"topology.{name}") if name in raw else key.default)
              for name, key in kind.keys.items()}
    if nccl is not None:
        params["nccl"] = nccl
    return kind.make(params, n_hosts)


def _preset_form(path: str) -> dict[str, Any] | None:
    """The mapping of a ``.yaml``/``.yml`` file written like a preset (a top-level ``kind`` naming a kind,
    ``params``, optional ``nccl``), or None for a graph file (hosts, switches, edges)."""
    if not path.lower().endswith((".yaml", ".yml")) or not Path(path).is_file():
        return None
    from sim.yamlfile import read_yaml_mapping

    data = read_yaml_mapping(path, "topology", "a topology YAML file: a graph (hosts, switches, edges) or a "
                                               "preset-form mapping (kind, params, nccl)")
    if "kind" not in data:
        return None
    if data["kind"] not in KINDS or not isinstance(data.get("params") or {}, dict):
        raise UserError("topology.kind", f"{data['kind']!r} in {path!r} is not a kind with a params mapping",
                        "kind: one of " + ", ".join(KINDS) + ", with params: {key: value}")
    return data


def build_topology(spec: str | nx.Graph, n_hosts: int | None = None) -> nx.Graph:
    """The topology graph for a spec, a preset, a file, or an existing graph.

    Parameters
    ----------
    spec : str or networkx.Graph
        ``KIND[:key=value,...]``, a preset name (optionally ``PRESET:key=value,...``), a path to a
        ``.yaml``/``.yml``/``.graphml`` file, or a graph (returned as is after the host check).
    n_hosts : int, optional
        Hosts needed (``--procs``): sized kinds create this many, fixed kinds must have at least this many.

    Raises
    ------
    UserError
        Unknown kind or key, malformed ``key=value``, bad value, or fewer hosts than ``n_hosts``.
    """
    if n_hosts is not None and (isinstance(n_hosts, bool) or not isinstance(n_hosts, int) or n_hosts < 1):
        raise UserError("procs", f"{n_hosts!r} is not a positive integer", "procs >= 1")
    if isinstance(spec, nx.Graph):
        G, label = spec, "the graph"
    else:
        label = str(spec).strip()
        if not label:
            raise UserError("topology", "empty topology spec", "a kind such as " + ", ".join(KINDS))
        if label.lower().endswith(FILE_SUFFIXES):
            form = _preset_form(label)
            if form is not None:  # a YAML file in preset form (kind, params, nccl), e.g. calibrate's output
                merged = dict(form.get("params") or {})
                if form.get("nccl") is not None:
                    merged["nccl"] = form["nccl"]
                G = _build_kind(str(form["kind"]), merged, n_hosts, label)
            else:
                from topologies.fileio import from_file
                G = from_file(label)
        else:
            name, raw = parse_spec(label)
            if name in KINDS or name not in list_presets():
                G = _build_kind(name, raw, n_hosts, label)
            else:
                preset = load_preset(name)
                merged = {k: v for k, v in (preset.get("params") or {}).items()}
                merged.update(raw)
                if preset.get("nccl") is not None:  # the nccl collective model's parameters (docs/nccl.md)
                    merged["nccl"] = preset["nccl"]
                G = _build_kind(preset["kind"], merged, n_hosts, label)
                G.graph["preset"] = name
    have = len(G.graph.get("hosts") or [n for n, k in G.nodes(data="kind") if k == "host"])
    if n_hosts is not None and have < n_hosts:
        raise UserError("procs", f"procs={n_hosts} exceeds the {have} hosts of topology {label!r}",
                        f"procs <= {have}, or a larger topology")
    return G
