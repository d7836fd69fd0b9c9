"""The ``nccl`` collective model: NCCL's per-call choice, multi-channel rail-aligned schedules, its costs.

For each call (op, ranks, bytes) the algorithm and protocol are those NCCL's tuning model picks
(:mod:`sim.collectives.nccl_tuning`, a port of ``src/graph/tuning.cc``), for a graph derived from the
topology's ``fabric`` (a ``hier`` topology, its preset's ``nccl:`` block). The chosen schedule is then
written as phases of transfers, which the ``flow``/``step`` models run on the topology's links:

* ``ring`` — C channels (NCCL's search channels, one per NIC of a node, doubled as ``ncclTopoPostset``
  doubles them, :meth:`tune.NcclGraph.run_channels`; ``nccl.channels`` sets C; a small call runs on fewer,
  :func:`tune.call_channels`), each a ring over all
  ranks. Rail-aligned: channel c enters every node at a GPU on NIC c mod m and leaves it from a GPU on
  the same NIC (the next GPU when every GPU has its own NIC), so the C rings cross the fabric through all
  NICs of a node at once. All-reduce: a reduce-scatter phase and an all-gather phase of p − 1 steps,
  chunks of n/(C·p); all-gather and reduce-scatter: one such phase.
* ``tree`` (all-reduce) — per channel, a chain through the GPUs of each node headed by the channel's rail
  GPU, and a binary tree over the nodes' heads; reduce (up) and broadcast (down) pipelined over K chunks
  per channel, of the size NCCL's ``calcCollChunking`` gives the protocol (:func:`tune.tree_chunk_bytes`;
  ``nccl.buffsize`` = NCCL_BUFFSIZE sets Simple's). Simple stores and forwards each chunk, so it is timed
  as a pipeline whose hops differ: the first chunk crosses the D = L − 1 + ⌊log2 N⌋ hops up and back down
  in turn (2(L − 1) steps on the chains' NVLink edges, 2⌊log2 N⌋ on the heads' network edges, each edge of
  the class carrying one chunk towards the root: its rate when every channel streams), then K − 1 steps
  with every edge carrying one chunk each way. LL and LL128 forward line by line: K such steps, no fill.
* ``nvls`` (all-reduce, one node whose NVSwitch reduces, ``nccl.nvls: true``) — the switch reads every
  GPU's buffer (n up), reduces, and hands each GPU its reduced 1/L (n/L down); each GPU multicasts that
  back through the switch (n/L up, n down): one phase where each GPU sends n(1 + 1/L)/(L − 1) to each
  other GPU (the same bytes on each GPU's switch link; the switch's reduction itself is not a transfer).
* ``nvls_tree`` (all-reduce across nodes whose switches reduce, ``nccl.nvls: true`` on NCCL versions that
  run NVLS across nodes) — inside each node the NVLS traffic above; across nodes the node's reduced data,
  split over its m NIC rails (rail r's head is the first GPU on NIC r), goes up a binary tree of the nodes
  and back down, on two trees that each carry half (NCCL's double binary tree: the second the mirror of the
  first on an even node count, shifted by one on an odd one; ``src/graph/trees.cc``). NCCL pipelines the
  two levels, so both run as one phase: each tree edge carries n/(2m) each way at once, and the slower
  level sets the time (no pipeline fill is charged).
* ``pat`` (all-gather and reduce-scatter at one GPU per node, NCCL 2.23) — NCCL's Parallel Aggregated Trees
  send each rank's block along binomial trees, step d to the peer 2^d away, aggregating what goes the same
  way (``src/include/collectives.h``, ``PatAGAlgorithm``/``PatRSAlgorithm``): timed as Bruck's log-step
  all-gather (step d sends min(2^d, p − 2^d) blocks to the rank 2^d below; (p − 1)/p · n per rank in all),
  and its dual for reduce-scatter, with NCCL's PAT latency spread over the ⌈log2 p⌉ steps.

Costs beyond the wire, all from NCCL's own model, none fitted here: the protocol's bandwidth (each
transfer carries ``bytes / f``, f = NCCL's bus bandwidth for the protocol over that of Simple on the same
algorithm: ring LL ≤ 1/4, LL128 0.92 with per-channel caps, tree LL 1/3.8, tree LL128 7/9 or 120/128;
Simple runs at the links' rate, which measured 2-node trees reach — NCCL's tree refinements, its 0.92
and per-channel caps, steer the choice only), NVLS's reduction efficiency (``nvlsEfficiency`` of
tuning.cc, 0.85 on Hopper), a per-link-class bus efficiency
(``nccl.bus_efficiency.nvlink`` / ``.nic``: bytes / e on transfers inside / across nodes), and the
latency NCCL predicts for the call (``baseLat`` + per-hop ``hwLat`` of the protocol and link class, the
ring plateau factor) plus ``nccl.base_latency_us``, spread evenly over the steps (``Phase.latency_s``).
NCCL's hop latency includes the wire, so a phase's extra latency per step is that share less the
phase's longest path latency (which the network models charge anyway), never below 0.

Closed form (:meth:`NcclCollective.cost_s`, what ``analytic`` charges): per phase, steps × the slowest
transfer's (path latency + ``latency_s`` + the most loaded link on its route / that link's bandwidth),
on a switched fabric where each GPU has one link per class (NVSwitch, NIC): the time ``flow`` gives on a
``hier`` topology (tests hold it to that). Without a fabric every rank is its own node with one link of
the given α and bandwidth, and NCCL's choice assumes :data:`DEFAULT_FABRIC`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from sim.collectives import nccl_tuning as tune
from sim.collectives import patterns
from sim.collectives.base import Phase, check_link, check_nbytes, check_procs, make_phase
from sim.errors import UserError

#: the fabric assumed without a ``hier`` topology: one 400 Gbit/s NIC per rank, H100 generation
DEFAULT_FABRIC: dict = {"gpus_per_node": 1, "nics_per_node": 1, "intra_Bps": 450e9, "inter_Bps": 50e9,
                        "intra_latency_s": 0.0, "inter_latency_s": 0.0, "arch": "hopper",
                        "cpu_vendor": "intel", "nvls": False, "ll128": True, "channels": 0,
                        "base_latency_us": 0.0, "base_latency_nvlink_us": 0.0, "eff_nvlink": 1.0, "eff_nic": 1.0,
                        "algorithms": tune.ALGOS, "protocols": tune.PROTOS, "buffsize": 4 * 2**20,
                        "version": "2.19", "tuner": ()}


@dataclass(frozen=True)
class Plan:
    """One call as NCCL runs it here: the choice, the channels, the phases and the link model."""

    algo: str
    proto: str
    channels: int
    phases: tuple[Phase, ...]
    predicted_us: float


def _fabric(fabric) -> dict:
    out = dict(DEFAULT_FABRIC)
    if fabric:
        out.update(dict(fabric))
    return out


def _node_order(L: int, share: int, c: int) -> list[int]:
    """Local GPUs of one node in channel c's order: enter at the rail GPU, leave from one on the same NIC."""
    if L == 1:
        return [0]
    nics = L // share
    if share == 1:
        s = c % L
        return [(s + i) % L for i in range(L)]
    s = (c % nics) * share
    e = s + 1
    rest = [(e + i) % L for i in range(1, L) if (e + i) % L not in (s, e)]
    return [s, *rest, e]


class NcclCollective:
    """The ``nccl`` algorithm of one op (``allreduce``, ``allgather`` or ``reduce_scatter``)."""

    name: str = "nccl"
    placement_facts: ClassVar[tuple[str, ...]] = ("local_size", "fabric")

    def __init__(self, op: str) -> None:
        self.op = op

    def __repr__(self) -> str:
        return f"NcclCollective({self.op!r})"

    # ------------------------------------------------------------------ the Algorithm protocol
    def check(self, p: int, *, local_size: int | None = None, fabric=None, **_kw) -> None:
        p = check_procs(p)
        if local_size is not None and (int(local_size) < 1 or p % int(local_size)):
            raise UserError("local_size", f"{local_size!r} ranks per node does not divide p={p}",
                            "a positive divisor of the group size (GPUs per node)")

    def phases(self, p: int, nbytes: float, *, local_size: int | None = None, fabric=None, **_kw) -> list[Phase]:
        self.check(p, local_size=local_size)
        n = check_nbytes(nbytes)
        return [] if p == 1 else list(self.plan(int(p), n, local_size, fabric).phases)

    def cost_s(self, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float, *,
               local_size: int | None = None, fabric=None, **_kw) -> float:
        self.check(p, local_size=local_size)
        n = check_nbytes(nbytes)
        a, bw = check_link(alpha_s, bandwidth_Bps)
        if p == 1:
            return 0.0
        plan = self.plan(int(p), n, local_size, fabric)
        return switched_time_s(plan.phases, int(p), self._L(int(p), local_size, fabric), _fabric(fabric),
                               None if fabric else (a, bw))

    # ------------------------------------------------------------------ the model
    @staticmethod
    def _L(p: int, local_size: int | None, fabric) -> int:
        return int(local_size) if (fabric and local_size) else 1

    def graph(self, p: int, local_size: int | None, fabric) -> tuple[tune.NcclGraph, dict, int, int, int]:
        """NCCL's graph for this group, the fabric facts, channels C, ranks per node L, nodes N."""
        f = _fabric(fabric)
        L = self._L(p, local_size, fabric)
        N = p // L
        m = max(1, min(int(f["nics_per_node"]), L)) if L > 1 else 1
        bw_intra = f["intra_Bps"] / 1e9 / m
        bw_inter = f["inter_Bps"] / 1e9
        if N == 1:
            bw_inter = bw_intra
        g = tune.NcclGraph(n_ranks=p, n_nodes=N, channels=m, bw_intra_GBps=bw_intra, bw_inter_GBps=bw_inter,
                           arch=f["arch"], cpu_vendor=f["cpu_vendor"], ll128=bool(f["ll128"]),
                           nvls=bool(f["nvls"]), algorithms=tuple(f["algorithms"]),
                           protocols=tuple(f["protocols"]), version=str(f["version"]),
                           comm_channels=int(f["channels"]))
        return g, f, g.run_channels(), L, N

    def plan(self, p: int, n: float, local_size: int | None, fabric) -> Plan:
        """NCCL's choice for this call and its phases."""
        g, f, C, L, N = self.graph(p, local_size, fabric)
        algo, proto, predicted, channels = tuned(self.op, n, g, f["tuner"])
        # a tuner's channel count caps the call's at the communicator's, else NCCL drops channels for a small
        # call (topoGetAlgoInfo); chunking sees the call's
        C = min(C, channels) if channels else tune.call_channels(algo, proto, n, g)
        g_call = replace(g, comm_channels=C)
        # the per-call latency of the call's class: across nodes (nic) or inside one node (nvlink)
        base_us = float(f["base_latency_us"] if N > 1 else f["base_latency_nvlink_us"])
        plateau = tune.ring_plateau(self.op, n, g) if (algo, proto) == ("ring", "Simple") else 1.0
        lat_us = tune.latency_us(self.op, algo, proto, g) * plateau + base_us
        # the protocol's cost: NCCL's bandwidth for it over Simple's on the same algorithm (Simple itself runs
        # at the links' rate less their class efficiency); NVLS: NCCL's nvlsEfficiency of the switch's reduction
        bw = tune.bus_bandwidth_GBps(self.op, algo, proto, g)
        factor = bw / tune.bus_bandwidth_GBps(self.op, algo, "Simple", g) if not algo.startswith("nvls") \
            else tune.NVLS_EFFICIENCY[g.arch]
        share = max(1, L // max(1, min(int(f["nics_per_node"]), L)))
        nodes = np.arange(p, dtype=np.int64).reshape(N, L)
        if algo == "nvls_tree":
            raw = self._nvls_tree(n, L, N, share, nodes)
        elif algo == "pat":
            raw = self._pat(p, n)
        elif algo == "ring":
            raw = self._ring(p, n, C, L, N, share, nodes)
        elif algo == "tree":
            raw = self._tree(n, C, L, N, share, nodes, tune.tree_chunk_bytes(proto, n, g_call, f["buffsize"]),
                             store_and_forward=proto == "Simple")
        else:
            raw = self._nvls(n, L)
        total_steps = sum(st for _s, _d, _b, st in raw)
        per_step_s = lat_us * 1e-6 / total_steps
        lat_in, lat_out = float(f["intra_latency_s"]), float(f["inter_latency_s"])
        lat_x = 2 * lat_out + (2 * lat_in if share > 1 else 0.0)
        phases = []
        for src, dst, b, steps in raw:
            cross = (src // L) != (dst // L)
            eff = np.where(cross, float(f["eff_nic"]), float(f["eff_nvlink"]))
            # the switch's reduction slows NVLink transfers only (an NVLS tree's network hops run at Simple's rate)
            fac = np.where(cross, 1.0, factor) if algo == "nvls_tree" else factor
            # NCCL's hop latency includes the wire: charge only what the path latency does not already
            path_s = lat_x if cross.any() else 2 * lat_in
            # timed (and loading its links) as b / (factor · eff) bytes; b is the data it sends (bytes sent)
            phases.append(make_phase(src, dst, b / (fac * eff), steps, max(0.0, per_step_s - path_s), payload=b))
        return Plan(algo, proto, C, tuple(phases), predicted)

    def _ring(self, p, n, C, L, N, share, nodes):
        src, dst = [], []
        for c in range(C):
            order = _node_order(L, share, c)
            seq = nodes[:, order].ravel()
            src.append(seq)
            dst.append(np.roll(seq, -1))
        s, d = np.concatenate(src), np.concatenate(dst)
        chunk = n / (C * p)
        count = 2 if self.op == "allreduce" else 1
        return [(s, d, chunk, p - 1)] * count

    def _tree(self, n, C, L, N, share, nodes, chunk_bytes, store_and_forward=True):
        intra_s, intra_d, inter_s, inter_d = [], [], [], []
        for c in range(C):
            order = _node_order(L, share, c)
            chain = nodes[:, order]                       # (N, L): head first
            intra_s.append(chain[:, 1:].ravel())
            intra_d.append(chain[:, :-1].ravel())
            heads = chain[:, 0]
            kids, parents = _node_tree(N).T
            inter_s.append(heads[kids])
            inter_d.append(heads[parents])
        up_in = (np.concatenate(intra_s), np.concatenate(intra_d))   # towards the root, inside the nodes
        up_x = (np.concatenate(inter_s), np.concatenate(inter_d))    # towards the root, between node heads
        chunks = max(1, math.ceil(n / C / chunk_bytes))
        b = n / (C * chunks)
        both = [np.concatenate([up_in[0], up_x[0], up_in[1], up_x[1]]),
                np.concatenate([up_in[1], up_x[1], up_in[0], up_x[0]])]
        if not store_and_forward:
            # LL and LL128 forward each line as its flag arrives (src/device/prims_ll.h LLGenericOp: readLL,
            # reduce, storeLL to the next peer in one loop trip): no chunk waits at a hop, whose cost is
            # NCCL's per-hop latency; the data streams through every edge both ways at the slowest one's rate
            return [(*both, b, chunks)]
        # Simple stores and forwards whole slices (prims_simple.h: waitPeer, then postPeer once the slice
        # is in): a pipeline of K chunks over the 2D hops up and back down. The first chunk crosses every
        # hop in turn (the up edges, each hop at the rate it has when every channel moves one chunk over
        # it; the way down mirrors them), then the other K − 1 follow one step apart, every edge both ways
        out = []
        if L > 1:
            out.append((*up_in, b, 2 * (L - 1)))
        if N > 1:
            out.append((*up_x, b, 2 * tune.log2i(N)))
        if chunks > 1:
            out.append((*both, b, chunks - 1))
        return out

    def _nvls(self, n, L):
        # each GPU's link carries n + n/L each way: up, its whole buffer read by the switch's reductions and
        # its reduced 1/L multicast back; down, its reduced 1/L and the L − 1 others' multicasts
        i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
        mask = i != j
        return [(i[mask].astype(np.int64), j[mask].astype(np.int64), n * (1 + 1 / L) / (L - 1), 1)]

    def _pat(self, p, n):
        steps = patterns.bruck_allgather(patterns.flat(p), n / p)
        if self.op == "reduce_scatter":
            steps = patterns.dual(steps)
        return [(ph.src, ph.dst, ph.nbytes, ph.steps) for ph in steps]

    def _nvls_tree(self, n, L, N, share, nodes):
        (i, j, b_in, _steps), = self._nvls(n, L)
        src_in = (nodes[:, i]).ravel()
        dst_in = (nodes[:, j]).ravel()
        tree_a = _node_tree(N)
        # NCCL's second tree (trees.cc): the mirror of the first on an even node count, shifted by one on an odd
        tree_b = N - 1 - tree_a if N % 2 == 0 else (tree_a + 1) % N
        edges = np.concatenate([tree_a, tree_b])                        # both ways: up and down at once
        heads = np.arange(0, L, share)                                    # one head GPU per NIC rail
        up_s, up_d = nodes[edges[:, 0]][:, heads], nodes[edges[:, 1]][:, heads]
        src_x = np.concatenate([up_s.ravel(), up_d.ravel()])
        dst_x = np.concatenate([up_d.ravel(), up_s.ravel()])
        b_x = n / (2 * len(heads))
        src = np.concatenate([src_in, src_x])
        dst = np.concatenate([dst_in, dst_x])
        b = np.concatenate([np.full(len(src_in), b_in), np.full(len(src_x), b_x)])
        return [(src, dst, b, 1)]


def _node_tree(N: int) -> np.ndarray:
    """The (child, parent) edges of the binary tree over N nodes that the tree schedules use, node 0 the root
    (heap order: node k's parent is (k − 1) // 2), shape (N − 1, 2)."""
    kids = np.arange(1, N, dtype=np.int64)
    return np.stack([kids, (kids - 1) // 2], axis=1)


def tuned(op: str, n: float, g: tune.NcclGraph, rules) -> tuple[str, str, float, int]:
    """``(algorithm, protocol, NCCL's predicted µs, channels or 0)`` for one call: the first tuner rule
    (:mod:`topologies.nccl_tuner`) that matches it and whose pair NCCL_ALGO/NCCL_PROTO leave enabled
    (the plugin zeroes that pair's cost, so NCCL takes it), else NCCL's own choice (:func:`tune.choose`)."""
    for rule in rules:
        if rule.matches(op, n, g.n_nodes, g.n_ranks):
            t = tune.algo_time_us(op, rule.algorithm, rule.protocol, n, g)
            if t >= 0:
                return rule.algorithm, rule.protocol, t, max(0, rule.channels)
    return (*tune.choose(op, n, g), 0)


def switched_time_s(phases, p: int, L: int, f: dict, single: tuple[float, float] | None) -> float:
    """Σ over phases of steps × max over transfers (path latency + ``latency_s`` + the most loaded link of
    its route / its bandwidth), each GPU with one NVSwitch link and one NIC link (shared by g/m GPUs when
    m < g); ``single = (α, bw)``: every rank its own node behind one link of that α and bandwidth."""
    total = 0.0
    for ph in phases:
        src, dst, nb = ph.src, ph.dst, ph.nbytes
        if not len(src):
            continue
        if single is not None:
            a, bw = single
            up = np.bincount(src, weights=nb, minlength=p)
            down = np.bincount(dst, weights=nb, minlength=p)
            per = np.maximum(up[src], down[dst]) / bw + a
        else:
            per = _hier_transfer_times(src, dst, nb, p, L, f)
        total += ph.steps * (float(per.max()) + ph.latency_s)
    return total


def _hier_transfer_times(src, dst, nb, p, L, f) -> np.ndarray:
    cross = (src // L) != (dst // L)
    intra, inter = float(f["intra_Bps"]), float(f["inter_Bps"])
    lat_in, lat_out = float(f["intra_latency_s"]), float(f["inter_latency_s"])
    g = L
    m = max(1, min(int(f["nics_per_node"]), g))
    share = g // m
    w_in = np.where(cross, 0.0, nb)
    w_x = np.where(cross, nb, 0.0)
    nv_up = np.bincount(src, weights=w_in, minlength=p)
    nv_down = np.bincount(dst, weights=w_in, minlength=p)
    gx_up = np.bincount(src, weights=w_x, minlength=p)      # a GPU's own link towards its NIC / the fabric
    gx_down = np.bincount(dst, weights=w_x, minlength=p)
    t_intra = np.maximum(nv_up[src], nv_down[dst]) / intra + 2 * lat_in
    if share == 1:
        t_cross = np.maximum(gx_up[src], gx_down[dst]) / inter + 2 * lat_out
    else:
        nic_of = lambda r: (r // g) * m + (r % g) // share  # noqa: E731
        nic_up = np.bincount(nic_of(src), weights=w_x, minlength=p // g * m)
        nic_down = np.bincount(nic_of(dst), weights=w_x, minlength=p // g * m)
        t_cross = np.maximum.reduce([gx_up[src] / intra, gx_down[dst] / intra, nic_up[nic_of(src)] / inter,
                                     nic_down[nic_of(dst)] / inter]) + 2 * lat_out + 2 * lat_in
    return np.where(cross, t_cross, t_intra)


#: the nccl algorithm of every op it models
NCCL: dict[str, NcclCollective] = {op: NcclCollective(op) for op in tune.OPS}
