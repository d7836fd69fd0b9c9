"""Multi-GPU nodes: GPUs of a node on an NVSwitch-like crossbar, nodes joined through NICs by a fabric.

Each GPU is a host (node attribute ``node_id``); node n has the switch ``"nvs{n}"`` with one link per GPU
(``intra`` bandwidth per direction: NVLink through NVSwitch). Between nodes the fabric is one non-blocking
switch ``"fabric"`` (a full-bisection fat-tree seen from the hosts, as in NVIDIA's DGX SuperPOD rail
fabrics). NICs:

* ``nics_per_node == gpus_per_node`` (default; DGX H100 has one 400 Gbit/s ConnectX-7 per GPU): each GPU
  has its own link to the fabric, of ``inter`` bandwidth (GPUDirect RDMA through the GPU's PCIe switch);
* fewer NICs (a divisor m of the GPU count): node n has NIC switches ``"nic{n}.{j}"``, each linked to the
  fabric by ``inter`` and shared by g/m consecutive GPUs, each of which reaches its NIC by a link of
  ``intra`` bandwidth and latency.

Routing ``"hier"``: inside a node through its NVSwitch, between nodes through the source GPU's NIC, the
fabric and the destination GPU's NIC (never through another node's GPUs). ``G.graph["gpus_per_node"]``
gives hierarchical collectives the node boundaries: host r is on node ``r // gpus_per_node``.

``G.graph["fabric"]`` describes the link classes for the ``nccl`` collective model (sim.collectives.nccl,
docs/nccl.md): NVLink (``intra``) and NIC (``inter``) bandwidths and latencies, NICs per node, and the
``nccl`` parameters of a preset (:func:`nccl_params`): ``base_latency_us``, ``bus_efficiency`` per link
class (``nvlink``, ``nic``), ``arch``, ``cpu_vendor``, ``nvls``, ``ll128``, ``channels``, and what NCCL's
environment sets (``algorithms`` = NCCL_ALGO, ``protocols`` = NCCL_PROTO, ``buffsize`` = NCCL_BUFFSIZE,
``channels`` = NCCL_MIN/MAX_NCHANNELS, ``tuner`` = the rules file of NCCL's example tuner plugin,
:mod:`topologies.nccl_tuner`), and ``version``, the NCCL release whose tuning model runs.
Nothing else reads it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import networkx as nx

from sim.collectives.nccl_tuning import ALGOS, PROTOS, VERSIONS
from sim.errors import UserError
from sim.units import parse_bytes
from topologies._graph import add_links, check_positive, check_positive_int, new_graph
from topologies.nccl_tuner import read_rules


def hier(n_nodes: int, gpus_per_node: int, intra_Bps: float, inter_Bps: float,
         intra_latency_s: float = 1e-6, inter_latency_s: float = 2e-6,
         nics_per_node: int | None = None, nccl: Mapping[str, Any] | None = None) -> nx.Graph:
    """Nodes of ``gpus_per_node`` GPUs on an NVSwitch, joined by NICs through a non-blocking fabric.

    Parameters
    ----------
    n_nodes : int
        Number of nodes, >= 1 (a single node has no fabric).
    gpus_per_node : int
        GPUs (hosts) per node, g >= 1.
    intra_Bps, inter_Bps : float
        Per-direction bandwidth of a GPU's NVSwitch link and of one NIC.
    intra_latency_s, inter_latency_s : float
        Latency of a GPU-NVSwitch (and GPU-NIC) link and of a NIC-fabric link.
    nics_per_node : int, optional
        m NICs per node, dividing g (default g: one NIC per GPU).
    nccl : mapping, optional
        The ``nccl`` collective model's parameters (:func:`nccl_params`); defaults where absent.

    Returns
    -------
    networkx.Graph
        n = n_nodes·g hosts. With N = n_nodes > 1: switches N + 1 (+ N·m NICs if m < g); links n + n
        (m = g) or n + n + N·m (m < g); diameter 2 hops (m = g) or 4 (m < g); α = the largest of
        2·intra_latency and the inter-node path latency (2·inter_latency, plus 2·intra_latency if m < g);
        bandwidth (1/β) = min(intra, inter·m/g), the per-GPU share of the slowest level; bisection for even
        N: (N/2)·m·min(inter, intra·g/m). A single node: 1 switch, g links, α = 2·intra_latency, bisection
        ⌊g/2⌋·intra.

    Examples
    --------
    >>> G = hier(2, 8, 450e9, 50e9)
    >>> G.number_of_nodes(), G.number_of_edges(), G.nodes[9]["node_id"], G.graph["gpus_per_node"]
    (19, 32, 1, 8)
    """
    N = check_positive_int(n_nodes, "topology.nodes")
    g = check_positive_int(gpus_per_node, "topology.gpus_per_node")
    m = g if nics_per_node is None else check_positive_int(nics_per_node, "topology.nics_per_node")
    if g % m:
        raise UserError("topology.nics_per_node", f"{m} NICs do not divide {g} GPUs per node",
                        f"a divisor of gpus_per_node={g}")
    intra = check_positive(intra_Bps, "topology.intra")
    inter = check_positive(inter_Bps, "topology.inter")
    lat_in = check_positive(intra_latency_s, "topology.intra_latency", allow_zero=True)
    lat_out = check_positive(inter_latency_s, "topology.inter_latency", allow_zero=True)
    n = N * g
    if N > 1:
        inter_path = 2 * lat_out + (2 * lat_in if m < g else 0.0)
        alpha = max(inter_path, 2 * lat_in if g > 1 else 0.0)
        bandwidth = min(intra, inter * m / g)
        diameter = 2 if m == g else 4
        bisection = (N / 2) * m * min(inter, intra * g / m) if N % 2 == 0 else None
    else:
        alpha, bandwidth = (2 * lat_in if g > 1 else 0.0), intra
        diameter, bisection = (2 if g > 1 else 0), (g // 2) * intra
    G = new_graph("hier", "hier", n, gpus_per_node=g, nics_per_node=m, n_nodes=N,
                  alpha_s=alpha, bandwidth_Bps=bandwidth, diameter_hops=diameter)
    if bisection is not None:
        G.graph["bisection_Bps"] = bisection
    G.graph["fabric"] = tuple(sorted({"gpus_per_node": g, "nics_per_node": m, "intra_Bps": intra,
                                      "inter_Bps": inter, "intra_latency_s": lat_in,
                                      "inter_latency_s": lat_out, **nccl_params(nccl)}.items()))
    nx.set_node_attributes(G, {h: h // g for h in range(n)}, "node_id")
    G.add_nodes_from((f"nvs{k}" for k in range(N)), kind="switch")
    add_links(G, ((h, f"nvs{h // g}") for h in range(n)), intra, lat_in)
    if N > 1:
        G.add_node("fabric", kind="switch")
        if m == g:
            add_links(G, ((h, "fabric") for h in range(n)), inter, lat_out)
        else:
            share = g // m
            G.add_nodes_from((f"nic{k}.{j}" for k in range(N) for j in range(m)), kind="switch")
            add_links(G, ((h, f"nic{h // g}.{(h % g) // share}") for h in range(n)), intra, lat_in)
            add_links(G, ((f"nic{k}.{j}", "fabric") for k in range(N) for j in range(m)), inter, lat_out)
    return G


def hier_path(G: nx.Graph, src: int, dst: int, ecmp_hash: int | None = None) -> list:
    """Nodes on the route: ``[src, nvs, dst]`` inside a node, else through the NICs and the fabric.

    Examples
    --------
    >>> hier_path(hier(2, 4, 1e9, 1e9, nics_per_node=2), 1, 6)
    [1, 'nic0.0', 'fabric', 'nic1.1', 6]
    """
    g, m = G.graph["gpus_per_node"], G.graph["nics_per_node"]
    ns, nd = src // g, dst // g
    if ns == nd:
        return [src, f"nvs{ns}", dst]
    if m == g:
        return [src, "fabric", dst]
    share = g // m
    return [src, f"nic{ns}.{(src % g) // share}", "fabric", f"nic{nd}.{(dst % g) // share}", dst]


#: the ``nccl:`` keys of a topology and their defaults (sim.collectives.nccl reads them from the fabric)
NCCL_DEFAULTS: dict[str, Any] = {"base_latency_us": 0.0, "base_latency_nvlink_us": 0.0, "eff_nvlink": 1.0,
                                 "eff_nic": 1.0, "arch": "hopper", "cpu_vendor": "intel", "nvls": False,
                                 "ll128": True, "channels": 0,
                                 "algorithms": ALGOS, "protocols": PROTOS,
                                 "buffsize": 4 * 2**20, "version": "2.19", "tuner": ()}
_NCCL_KEYS = ("base_latency_us (or {nvlink, nic}), bus_efficiency {nvlink, nic}, arch, cpu_vendor, nvls, ll128, "
              "channels, algorithms, protocols, buffsize, version, tuner")
#: the NCCL versions whose tuning model dnnsim ports
_NCCL_VERSIONS = tuple(VERSIONS)
#: the names NCCL_ALGO / NCCL_PROTO take here (NCCL's own spellings, case-insensitive)
_NCCL_CHOICES = {"algorithms": ALGOS, "protocols": PROTOS}


def nccl_params(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``nccl:`` block of a topology, checked, with defaults: flat keys (``eff_nvlink``, ``eff_nic``).

    Examples
    --------
    >>> p = nccl_params({"base_latency_us": 5, "bus_efficiency": {"nvlink": 0.8}, "arch": "ampere"})
    >>> p["base_latency_us"], p["eff_nvlink"], p["eff_nic"], p["arch"]
    (5.0, 0.8, 1.0, 'ampere')
    """
    out = dict(NCCL_DEFAULTS)
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise UserError("topology.nccl", f"{raw!r} is not a mapping", _NCCL_KEYS)
    for key, value in raw.items():
        field = f"topology.nccl.{key}"
        if key == "bus_efficiency":
            if not isinstance(value, Mapping):
                raise UserError(field, f"{value!r} is not a mapping", "{nvlink: E, nic: E} with 0 < E <= 1")
            for cls, e in value.items():
                if cls not in ("nvlink", "nic"):
                    raise UserError(f"{field}.{cls}", "unknown link class", "nvlink, nic")
                out[f"eff_{cls}"] = _fraction(e, f"{field}.{cls}")
        elif key == "base_latency_us":
            # one per-call latency for every call, or one per class: calls inside one node (nvlink) and
            # calls across nodes (nic); a class left out of the mapping adds nothing
            if isinstance(value, Mapping):
                for cls in value:
                    if cls not in ("nvlink", "nic"):
                        raise UserError(f"{field}.{cls}", "unknown link class", "nvlink, nic")
                out["base_latency_us"] = _latency(value.get("nic", 0.0), f"{field}.nic")
                out["base_latency_nvlink_us"] = _latency(value.get("nvlink", 0.0), f"{field}.nvlink")
            else:
                out["base_latency_us"] = out["base_latency_nvlink_us"] = _latency(value, field)
        elif key == "arch":
            if value not in ("volta", "ampere", "hopper"):
                raise UserError(field, f"unknown GPU generation {value!r}", "volta, ampere, hopper")
            out[key] = value
        elif key == "cpu_vendor":
            if value not in ("intel", "amd"):
                raise UserError(field, f"unknown CPU vendor {value!r}", "intel, amd")
            out[key] = value
        elif key in ("nvls", "ll128"):
            # a YAML file gives a bool, a spec string (dgx-h100:nccl.nvls=false) the word
            flag = {"true": True, "false": False}.get(value.lower()) if isinstance(value, str) else value
            if not isinstance(flag, bool):
                raise UserError(field, f"{value!r} is not true/false", "true, false")
            out[key] = flag
        elif key == "channels":
            text = value.strip() if isinstance(value, str) else None
            out[key] = check_positive_int(int(text) if text and text.isdigit() else value, field)
        elif key in _NCCL_CHOICES:
            out[key] = _choices(value, field, _NCCL_CHOICES[key])
        elif key == "buffsize":
            out[key] = _buffsize(value, field)
        elif key == "tuner":
            if not isinstance(value, str) or not value.strip():
                raise UserError(field, f"{value!r} is not a file name", "the path of a tuner rules file")
            out[key] = read_rules(value.strip())
        elif key == "version":
            text = str(value).strip()
            if isinstance(value, bool) or text not in _NCCL_VERSIONS:
                raise UserError(field, f"no tuning model for NCCL {value!r}", ", ".join(_NCCL_VERSIONS))
            out[key] = text
        else:
            raise UserError(field, "unknown key", _NCCL_KEYS)
    return out


def _choices(value: Any, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A subset of ``allowed`` as NCCL_ALGO / NCCL_PROTO give it: a list, or a string split at ``,`` or ``+``
    (``+`` where the string sits in a ``PRESET:nccl.algorithms=ring+tree`` spec); NCCL_ALGO's own spelling
    ``NVLSTree`` names ``nvls_tree``."""
    items = value.replace("+", ",").split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise UserError(field, f"{value!r} is not a list", f"a non-empty subset of {', '.join(allowed)}")
    lower = {a.lower(): a for a in allowed} | {a.lower().replace("_", ""): a for a in allowed}
    out = []
    for item in items:
        name = lower.get(str(item).strip().lower())
        if name is None:
            raise UserError(field, f"unknown name {item!r}", ", ".join(allowed))
        out.append(name)
    return tuple(a for a in allowed if a in out)


def _buffsize(value: Any, field: str) -> int:
    """NCCL_BUFFSIZE: whole bytes (a number or a size such as ``8MiB``), at least 8 KiB (NCCL splits the
    buffer into 8 steps; sizes this small only model a misconfigured run)."""
    v = parse_bytes(value, field)
    if v < 8 * 1024 or v != int(v):
        raise UserError(field, f"{value!r} is too small or not whole", "a whole number of bytes >= 8KiB")
    return int(v)


def _number(value: Any, field: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UserError(field, f"{value!r} is not a number", "a finite number") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise UserError(field, f"{value!r} is not a number", "a finite number")
    return v


def _latency(value: Any, field: str) -> float:
    v = _number(value, field)
    if v < 0:
        raise UserError(field, f"{value!r} is negative", "microseconds >= 0")
    return v


def _fraction(value: Any, field: str) -> float:
    v = _number(value, field)
    if not 0 < v <= 1:
        raise UserError(field, f"{value!r} is not an efficiency", "0 < E <= 1")
    return v
