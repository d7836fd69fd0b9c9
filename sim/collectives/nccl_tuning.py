"""NCCL's tuning model: which algorithm and protocol NCCL picks for one call, and the time it predicts.

A port of ``src/graph/tuning.cc`` of NVIDIA/nccl in two versions (:data:`VERSIONS`): ``"2.19"``, commit
b6475625fbcaa2c3c0e50eed2fa1255d7514d4a2 (the 2.19/2.20 line, the default), and ``"2.23"``, tag v2.23.4-1
(September 2024; what changed is listed at :data:`V2_23`): the tables ``baseLat``, ``hwLat`` (NVLink / PCI / NET), ``llMaxBws``,
``perChMaxRingLL128Bws``, ``perChMaxTreeLL128Bws``, ``perChMaxTreeBws`` and ``treeCorrectionFactor``;
``ncclTopoTuneModel`` (the bus bandwidth and latency of every algorithm × protocol) and
``ncclTopoGetAlgoTime`` (``time = lat + bytes / (1000 · bw)``, µs and GB/s); and the choice that
``topoGetAlgoInfo`` (``src/enqueue.cc``) makes: the smallest predicted time, algorithms in NCCL's order
(tree, ring, …, NVLS) and protocols in theirs (LL, LL128, Simple), a strict ``<`` so the first wins a tie.

What NCCL learns from its topology search is an input here (:class:`NcclGraph`): channels, per-channel
bandwidth inside a node and across nodes, the GPU generation, whether LL128 and NVLS are enabled, the
CPU vendor (it sets the LL cap across nodes and the network post overhead); the NVLS tree's graph is
derived from the same facts (:func:`nvls_graph_bws_GBps`), and 2.23's PAT (all-gather and reduce-scatter
at one GPU per node) runs on the tree's. CollNet and the PCI-only tables are not modelled; NCCL's
arithmetic is float32, this is float64 (choices can differ only on an exact tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.errors import UserError

ALGOS: tuple[str, ...] = ("tree", "ring", "nvls", "nvls_tree", "pat")   # NCCL's order (CollNet skipped)
PROTOS: tuple[str, ...] = ("LL", "LL128", "Simple")
OPS: tuple[str, ...] = ("allreduce", "allgather", "reduce_scatter")

# tuning.cc: Latencies in us; rows Tree, Ring, (CollNet Direct, Chain,) NVLS; columns LL, LL128, Simple
BASE_LAT_US = {"tree": (6.8, 14.0, 0.0), "ring": (6.6, 14.0, 8.4), "nvls": (0.0, 0.0, 0.0),
               "nvls_tree": (0.0, 0.0, 0.0), "pat": (0.0, 0.0, 0.0)}
# tuning.cc hwLat[NVLINK] and hwLat[NET] (2.23's tables have no PAT row, so C leaves it 0; PAT's latency
# formula takes the tree's network hop, as every algorithm does at one rank per node)
HW_LAT_NVLINK_US = {"tree": (0.6, 1.25, 28.0), "ring": (0.6, 1.9, 3.4), "nvls": (0.0, 0.0, 23.0),
                    "nvls_tree": (0.0, 0.0, 23.0), "pat": (0.0, 0.0, 0.0)}
HW_LAT_NET_US = {"tree": (5.0, 8.5, 28.0), "ring": (2.7, 4.0, 14.0), "nvls": (0.0, 0.0, 18.0),
                 "nvls_tree": (0.0, 0.0, 14.0), "pat": (0.0, 0.0, 0.0)}
# tuning.cc; rows Volta, Ampere, Hopper (for llMaxBws multi-node: row 0 Intel, row 1 AMD); cols N1, N2, N4+
LL_MAX_BWS = ((39.0, 39.0, 20.4), (87.7, 22.5, 19.0), (87.7, 22.5, 19.0))
PER_CH_MAX_RING_LL128_BWS = ((20.0, 20.0, 20.0), (20.0, 20.0, 20.0), (36.7, 36.7, 36.7))
PER_CH_MAX_TREE_LL128_BWS = ((20.0, 20.0, 20.0), (20.0, 20.0, 20.0), (36.7, 36.7, 29.0))
PER_CH_MAX_TREE_BWS = ((26.5, 18.5, 10.0), (24.0, 23.6, 17.8), (38.7, 41.4, 36.0))
# tuning.cc treeCorrectionFactor[protocol][log2(bytes/64)], powers of two 64 B to 256 MB
TREE_CORRECTION = (
    (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0),
    (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9),
)


@dataclass(frozen=True)
class Tables:
    """The constants of one NCCL version's ``tuning.cc`` and the rules that changed between versions."""

    base_lat_us: dict
    hw_lat_nvlink_us: dict
    hw_lat_net_us: dict
    ll_max_bws: tuple
    #: ring/LL's share of the bus: 2.19 ¼ (⅓ for single-node all-gather/reduce-scatter), 2.23 ½
    ring_ll_share: str
    #: ring/LL128 at < 2 ranks per node: 2.19 ×0.7, 2.23 ×0.92 like every other case
    ring_ll128_low_ppn: float
    #: all-reduce's inter-node ring steps: 2.19 2·nNodes, 2.23 2·(nNodes − 1)
    allreduce_inter_steps: str
    #: at one rank per node 2.23 charges every algorithm the tree's network latency
    ppn1_tree_net_latency: bool
    #: NVLS across nodes (NVLS tree): the 2.19 line's commit (2.20.3) turns NVLS off on more than one node
    #: (src/transport/nvls.cc ncclNvlsInit returns for nNodes > 1); 2.19.3 and 2.21+ run it
    nvls_multinode: bool = False
    #: PAT (all-gather and reduce-scatter at one GPU per node), new in 2.23
    pat: bool = False


V2_19 = Tables(BASE_LAT_US, HW_LAT_NVLINK_US, HW_LAT_NET_US, LL_MAX_BWS, ring_ll_share="quarter",
               ring_ll128_low_ppn=0.7, allreduce_inter_steps="2n", ppn1_tree_net_latency=False)
#: NCCL 2.23.4 (tags v2.22.3-1 → v2.23.4-1 of src/graph/tuning.cc): tree/Simple base latency 0 → 8.4 µs and
#: per-hop latency 28 → 4 µs on NVLink (and PCI), 28 → 14 µs on the network; NVLS's NVLink hop 23 → 25 µs;
#: Hopper's llMaxBws (87.7, 22.5, 19.0) → (141, 45, 35); ring/LL bus × ½; ring/LL128 × 0.92 at any ppn;
#: all-reduce ring inter-node steps 2·(nNodes − 1); at ppn 1 the tree's network latency for every algorithm.
#: NVLS also runs across nodes again, as the NVLS tree (2.20 had turned it off), and PAT is new.
#: (Its tree refinements and treeCorrectionFactor now apply to all-reduce only, the one op this model runs as
#: a tree, and getAlgoTime no longer rescales by a call's channel count, which this model never did.)
V2_23 = Tables(
    base_lat_us={**BASE_LAT_US, "tree": (6.8, 14.0, 8.4)},
    hw_lat_nvlink_us={**HW_LAT_NVLINK_US, "tree": (0.6, 1.25, 4.0), "nvls": (0.0, 0.0, 25.0),
                      "nvls_tree": (0.0, 0.0, 25.0)},
    hw_lat_net_us={**HW_LAT_NET_US, "tree": (5.0, 8.5, 14.0)},
    ll_max_bws=(LL_MAX_BWS[0], LL_MAX_BWS[1], (141.0, 45.0, 35.0)),
    ring_ll_share="half", ring_ll128_low_ppn=0.92, allreduce_inter_steps="2(n-1)", ppn1_tree_net_latency=True,
    nvls_multinode=True, pat=True)
#: the NCCL versions whose tuning model is ported (``nccl.version`` of a topology)
VERSIONS: dict[str, Tables] = {"2.19": V2_19, "2.23": V2_23}
ARCHS = {"volta": 70, "ampere": 80, "hopper": 90}
#: tuning.cc nvlsEfficiency (added in NCCL 2.28.3, commit f1308997): the rate NVLink SHARP reduces at, as a
#: share of NVLink's; NVLS needs Hopper's NVSwitch, so the earlier generations have none
NVLS_EFFICIENCY = {"volta": 0.0, "ampere": 0.0, "hopper": 0.85}
#: tuning.cc getNetOverhead: x86 Intel 1 µs, AMD 2 µs
NET_OVERHEAD_US = {"intel": 1.0, "amd": 2.0}


@dataclass(frozen=True)
class NcclGraph:
    """What NCCL's topology search hands its tuning model (one graph for every algorithm here).

    ``bw_intra_GBps``/``bw_inter_GBps`` are per channel (NCCL's ``bwIntra``/``bwInter``), ``channels``
    its ``nChannels``. ``ll128`` is NCCL's default LL128 enable (NVLink inside the node, one GPU
    generation); ``nvls`` whether the node switch can reduce (NVLink SHARP, H100 NVSwitch).
    ``algorithms``/``protocols`` are what ``NCCL_ALGO``/``NCCL_PROTO`` leave enabled (tuning.cc zeroes the
    bandwidth of the others, so :func:`choose` never picks them). ``channels`` is the search's count, which the
    tuning model multiplies by the per-channel bandwidth; a call runs on ``comm_channels`` (0: NCCL's own
    count, :meth:`run_channels`). ``version`` picks the tuning tables (:data:`VERSIONS`).
    """

    n_ranks: int
    n_nodes: int
    channels: int
    bw_intra_GBps: float
    bw_inter_GBps: float
    arch: str = "hopper"
    cpu_vendor: str = "intel"
    ll128: bool = True
    nvls: bool = False
    latency_inter_us: float = 0.0
    algorithms: tuple[str, ...] = ALGOS
    protocols: tuple[str, ...] = PROTOS
    version: str = "2.19"
    comm_channels: int = 0

    @property
    def tables(self) -> Tables:
        """This version's tuning constants."""
        return VERSIONS[self.version]

    def run_channels(self) -> int:
        """The channels a call runs on (``comm->nChannels``). Unless set, NCCL's ``ncclTopoPostset``
        (src/graph/connect.cc, both versions) doubles the search's channels ("Duplication should be complete
        now", at most MAXCHANNELS = 32), and doubles them again on Hopper across nodes while fewer than 16 and
        the ring graph's ``bwIntra`` exceeds 45 GB/s ("Use 4 compute channels per search channel").

        Examples
        --------
        >>> NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=25).run_channels()
        16
        >>> NcclGraph(n_ranks=16, n_nodes=2, channels=4, bw_intra_GBps=112.5, bw_inter_GBps=50).run_channels()
        16
        """
        if self.comm_channels:
            return int(self.comm_channels)
        c = min(32, 2 * self.channels)
        if ARCHS[self.arch] >= 90 and self.n_nodes > 1 and graph_bw_GBps("ring", self) > 45.0 and c < 16:
            c = min(32, 2 * c)
        return c


#: per-thread work before a call takes another channel (src/include/comm.h NCCL_{LL,LL128,SIMPLE}_THREAD_THRESHOLD;
#: tuning.cc multiplies ring/LL's by nRanks) and the threads of a channel (src/include/device.h NCCL_LL_MAX_NTHREADS,
#: NCCL_LL128_MAX_NTHREADS, NCCL_SIMPLE_MAX_NTHREADS; tuning.cc's defaults for rings and trees on NVLink-class graphs)
THREAD_THRESHOLD = {"LL": 8, "LL128": 8, "Simple": 64}
MAX_THREADS = {"LL": 512, "LL128": 640, "Simple": 512}


def call_channels(algo: str, proto: str, nbytes: float, g: NcclGraph) -> int:
    """The channels one ring or tree call runs on: ``topoGetAlgoInfo`` (src/enqueue.cc, both versions) drops
    channels while the call's bytes are fewer than channels × threads × the protocol's per-thread threshold,
    down to one, so a small call uses few channels (and rails). NVLS, the NVLS tree and PAT keep theirs here.

    Examples
    --------
    >>> g = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=50)
    >>> call_channels("ring", "Simple", 2**18, g), call_channels("ring", "LL", 2**16, g), call_channels("ring", "Simple", 2**30, g)
    (8, 1, 16)
    """
    nc = g.run_channels()
    if algo not in ("ring", "tree"):
        return nc
    per_channel = MAX_THREADS[proto] * THREAD_THRESHOLD[proto] * (g.n_ranks if (algo, proto) == ("ring", "LL") else 1)
    while nbytes < nc * per_channel and nc >= 2:
        nc -= 1
    return nc


def log2i(n: int) -> int:
    """NCCL's ``log2i``: ⌊log2 n⌋, 0 for n ≤ 1."""
    n, out = int(n), 0
    while n > 1:
        n >>= 1
        out += 1
    return out


def _steps(op: str, p: int, nodes: int, t: Tables = V2_19) -> tuple[int, int]:
    if op == "allreduce":
        inter = 2 * nodes if t.allreduce_inter_steps == "2n" else 2 * (nodes - 1)
        return 2 * (p - 1), (inter if nodes > 1 else 0)
    return p - 1, nodes - 1


def enabled(op: str, algo: str, g: NcclGraph) -> bool:
    """Whether NCCL would consider ``algo`` for ``op`` (tuning.cc's loop and enable rules)."""
    if algo == "tree":
        return op == "allreduce"
    if algo == "pat":  # tuning.cc ncclPatEnable: 1 GPU per node (nNodes == nRanks); all-gather, reduce-scatter
        return op in ("allgather", "reduce_scatter") and g.tables.pat and g.n_nodes == g.n_ranks
    if algo in ("nvls", "nvls_tree"):
        # NVLS needs Hopper's NVSwitch (search.cc: no NVLS graph for ccMin < 90) and more than 2 GPUs in the
        # node (nvls.cc ncclNvlsInit: gpuCount <= 2 turns it off). NVLS alone is single-node (tuning.cc:
        # disabled for nNodes > 1 without CollNet); the NVLS tree is its multi-node form (tuning.cc: disabled
        # on one node), where the version runs NVLS across nodes (Tables.nvls_multinode)
        nodes_ok = g.n_nodes == 1 if algo == "nvls" else g.n_nodes > 1 and g.tables.nvls_multinode
        return (op == "allreduce" and g.nvls and nodes_ok and ARCHS[g.arch] >= 90
                and g.n_ranks // g.n_nodes > 2)
    return True


def graph_bw_GBps(algo: str, g: NcclGraph) -> float:
    """The per-channel bandwidth ``ncclTopoTuneModel`` takes for ``algo``: ``bwIntra`` on up to 2 nodes,
    else ``bwInter`` — of that algorithm's graph. NCCL's search (``src/graph/search.cc``,
    ``ncclTopoCompute``) gives a ring graph that crosses the network ``bwIntra = bwInter`` = the speed its
    NIC path sustains, and a tree graph on 2 nodes a ``bwIntra`` raised to at most ``2 · bwInter``
    (pass 2, "increase bwIntra for trees"); inside one node the graph's bandwidth is NVLink's."""
    if g.n_nodes <= 1:
        return g.bw_intra_GBps
    if algo == "ring":
        return min(g.bw_intra_GBps, g.bw_inter_GBps)
    if algo == "tree" and g.n_nodes == 2:
        return min(g.bw_intra_GBps, 2 * g.bw_inter_GBps)
    return g.bw_intra_GBps if g.n_nodes <= 2 else g.bw_inter_GBps


def nvls_graph_bws_GBps(g: NcclGraph) -> tuple[float, float]:
    """``(bwIntra, bwInter)`` per channel of NCCL's NVLS graph across nodes, whose channels are its heads: one
    per NIC of a node (search.cc: "NVLS search only tries to find NIC:GPU combinations to compute the
    heads", at most one per GPU). ``ncclTopoSearchTryNvls`` charges every GPU's NVSwitch path each
    channel's bandwidth and the head's twice, so m heads fit m + 1 shares of a GPU's NVLink; the NIC path
    bounds it too. Pass 2 then raises only ``bwInter``, up to the NIC. (NCCL's search rounds both down to
    its speed array; this does not.)

    Examples
    --------
    >>> nvls_graph_bws_GBps(NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=50))
    (50.0, 50)
    """
    nvlink = g.bw_intra_GBps * g.channels
    return min(nvlink / (g.channels + 1), g.bw_inter_GBps), g.bw_inter_GBps


def bus_bandwidth_GBps(op: str, algo: str, proto: str, g: NcclGraph) -> float:
    """``comm->bandwidths[coll][a][p]``: the algorithm bandwidth NCCL's model gives (GB/s), 0 if disabled."""
    if not enabled(op, algo, g) or (algo in ("nvls", "nvls_tree", "pat") and proto != "Simple") \
            or (proto == "LL128" and not g.ll128):
        return 0.0
    p, nodes, ch, t = g.n_ranks, g.n_nodes, g.channels, g.tables
    cc = 2 if ARCHS[g.arch] >= 90 else 1 if ARCHS[g.arch] >= 80 else 0
    i2 = nodes - 1 if nodes <= 2 else 2
    i1 = cc if nodes == 1 else (1 if g.cpu_vendor == "amd" else 0)
    ll_max = t.ll_max_bws[i1][i2]
    ppn = p / nodes
    bw = graph_bw_GBps("tree" if algo == "pat" else algo, g)   # init.cc: PAT runs on the tree's graph
    if algo == "nvls":
        bw = min(g.bw_intra_GBps, g.bw_inter_GBps)
    if algo == "nvls_tree":  # 2.19–2.23: min(bwIntra, nNodes <= 2 ? bwInter : bwInter/2) of the NVLS graph
        intra_nvls, inter_nvls = nvls_graph_bws_GBps(g)
        bw = min(intra_nvls, inter_nvls if nodes <= 2 else inter_nvls / 2)
    bus = ch * bw
    if algo == "ring" and proto == "LL":
        share = 0.5 if t.ring_ll_share == "half" else 1.0 / 4.0 if nodes > 1 or op == "allreduce" else 1.0 / 3.0
        bus = min(ll_max, bus * share)
    if algo == "ring" and proto == "LL128":
        bus = min(bus * (t.ring_ll128_low_ppn if ppn < 2 else 0.92), ch * PER_CH_MAX_RING_LL128_BWS[cc][i2])
    if algo == "tree":
        bus = min(bus * .92, ch * PER_CH_MAX_TREE_BWS[cc][i2])
    if algo == "tree" and proto == "LL":
        bus = min(bus * 1.0 / 3.8, ll_max)
    if algo == "tree" and proto == "LL128":
        bus = min(bus * (7.0 / 9.0 if nodes == 1 else 120.0 / 128.0), ch * PER_CH_MAX_TREE_LL128_BWS[cc][i2])
    if algo == "pat":  # × .85, and kept as the bus bandwidth (tuning.cc converts none but the ring's for
        return bus * .85  # all-gather and reduce-scatter)
    nsteps, _ = _steps(op, p, nodes, t)
    ratio = p / nsteps if algo == "ring" else 5.0 / 6.0 if algo.startswith("nvls") else 0.5
    return bus * ratio


def latency_us(op: str, algo: str, proto: str, g: NcclGraph) -> float:
    """``comm->latencies[coll][a][p]`` (µs): base latency plus the per-hop latencies of the schedule."""
    pi = PROTOS.index(proto)
    p, nodes, t = g.n_ranks, g.n_nodes, g.tables
    intra = t.hw_lat_nvlink_us[algo][pi]
    net_algo = "tree" if t.ppn1_tree_net_latency and p == nodes else algo  # 2.23: "latencies fully exposed"
    inter = t.hw_lat_net_us[net_algo][pi] + g.latency_inter_us
    if proto == "Simple":
        inter += g.latency_inter_us
    lat = t.base_lat_us[algo][pi]
    if algo == "ring":
        nsteps, ninter = _steps(op, p, nodes, t)
        overhead = 0.0
        if nodes > 1:
            overhead = NET_OVERHEAD_US[g.cpu_vendor] * (3 if proto == "Simple" else 1)
        intra = max(intra, overhead)
        return lat + (nsteps - ninter) * intra + ninter * inter
    if algo == "tree":
        return lat + 2 * ((p // nodes - 1) * intra + log2i(nodes) * inter)
    if algo == "nvls_tree":
        return lat + intra + 2 * log2i(nodes) * inter
    if algo == "pat":  # set, not added: 8 µs, a log term and "still a linear part"
        return 8 + log2i(nodes) * (inter / 3.5) + p * 2.8
    return intra + (inter if nodes > 1 else 0.0)  # nvls: tuning.cc sets, not adds


def ring_plateau(op: str, nbytes: float, g: NcclGraph) -> float:
    """ncclTopoGetAlgoTime's "plateau effect of ring" latency factor for ring/Simple all-reduce across nodes."""
    if op == "allreduce" and g.n_nodes > 1 and nbytes / (g.run_channels() * g.n_ranks) >= 64:
        return 1.9 if ARCHS[g.arch] < 80 else 1.4
    return 1.0


def algo_time_us(op: str, algo: str, proto: str, nbytes: float, g: NcclGraph) -> float:
    """``ncclTopoGetAlgoTime`` for one call (numPipeOps = 1): −1 where the pair is disabled."""
    bw = bus_bandwidth_GBps(op, algo, proto, g)
    if bw == 0 or algo not in g.algorithms or proto not in g.protocols:
        return -1.0
    lat = latency_us(op, algo, proto, g)
    log_size = log2i(int(nbytes) >> 6)
    if algo == "tree" and log_size < 23:
        bw *= TREE_CORRECTION[PROTOS.index(proto)][log_size]
    if algo == "ring" and proto == "Simple":
        lat *= ring_plateau(op, nbytes, g)
    return lat + nbytes / (1000 * bw)


#: NCCL's steps per buffer (src/include/device.h NCCL_STEPS)
NCCL_STEPS = 8
#: src/init.cc DEFAULT_LL_BUFFSIZE = NCCL_LL_LINES_PER_THREAD (8) · NCCL_LL_MAX_NTHREADS (512) · NCCL_STEPS ·
#: sizeof(ncclLLFifoLine) (16), and DEFAULT_LL128_BUFFSIZE = NCCL_LL128_ELEMS_PER_THREAD (120) ·
#: NCCL_LL128_MAX_NTHREADS (640) · NCCL_STEPS · 8; NCCL_BUFFSIZE (Simple) defaults to 4 MiB
LL_BUFFSIZE = 8 * 512 * NCCL_STEPS * 16
LL128_BUFFSIZE = 120 * 640 * NCCL_STEPS * 8


def tree_chunk_bytes(proto: str, nbytes: float, g: NcclGraph, buffsize: int = 4 * 2**20) -> int:
    """The data bytes per channel a tree all-reduce pipelines per step: ``calcCollChunking`` of NCCL's
    ``src/enqueue.cc`` for ``ncclPatternTreeUpDown`` (one step per chunk; LL carries half its line as
    flags, LL128 15 of every 16 words; LL128 halves the chunk while the message is short for the tree's
    depth). ``buffsize`` is NCCL_BUFFSIZE (the Simple protocol's buffer).

    Examples
    --------
    >>> g = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=25)
    >>> tree_chunk_bytes("Simple", 2**30, g), tree_chunk_bytes("LL", 2**20, g), tree_chunk_bytes("LL128", 2**20, g)
    (524288, 32768, 18000)
    """
    buf = {"LL": LL_BUFFSIZE, "LL128": LL128_BUFFSIZE, "Simple": int(buffsize)}[proto]
    chunk = buf // NCCL_STEPS
    if proto == "LL":
        chunk //= 2
    elif proto == "LL128":
        chunk = chunk // 16 * 15
        ppn = g.n_ranks / g.n_nodes
        steps = 1 + log2i(g.n_nodes) + 0.1 * ppn
        ch = g.run_channels()
        while nbytes // (ch * chunk) < steps * 64 / ppn and chunk > 131072:
            chunk //= 2
        while nbytes // (ch * chunk) < steps * 16 / ppn and chunk > 32768:
            chunk //= 2
    return int(chunk)


def choose(op: str, nbytes: float, g: NcclGraph) -> tuple[str, str, float]:
    """``(algorithm, protocol, predicted µs)`` NCCL picks (topoGetAlgoInfo: smallest time, first on a tie).

    Examples
    --------
    >>> g = NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=37.5, bw_inter_GBps=37.5, arch="ampere")
    >>> choose("allreduce", 1024, g)[:2], choose("allreduce", 2**28, g)[:2]
    (('ring', 'LL'), ('ring', 'Simple'))
    """
    if g.n_ranks < 2:
        return "ring", "Simple", 0.0
    if not any(algo_time_us(op, a, p, nbytes, g) >= 0 for a in ALGOS for p in PROTOS):
        raise UserError("topology.nccl", f"algorithms {list(g.algorithms)} with protocols {list(g.protocols)} "
                        f"leave no way to run {op} on {g.n_ranks} ranks ({g.n_nodes} nodes)",
                        "add ring to nccl.algorithms (every op runs as a ring) and Simple to nccl.protocols "
                        "(nvls_tree and pat run on nccl.version 2.23 only)")
    best: tuple[str, str, float] | None = None
    for algo in ALGOS:
        for proto in PROTOS:
            t = algo_time_us(op, algo, proto, nbytes, g)
            if t >= 0 and (best is None or t < best[2]):
                best = (algo, proto, t)
    assert best is not None and math.isfinite(best[2])
    return best
