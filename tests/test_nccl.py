"""The ``nccl`` collective model: NCCL's tuning choices, multi-channel bandwidth, its own closed form.

Tuning cases are derived by hand from NVIDIA/nccl ``src/graph/tuning.cc`` (commit b6475625, the tables
and formulas quoted in each test): time = lat + bytes / (1000 · bw) µs, the smallest wins.
"""

from __future__ import annotations

import pytest
import simpy

from sim.collectives import get_algorithm, parse_collectives
from sim.collectives import nccl_tuning as tune
from sim.collectives.nccl_tuning import NcclGraph, choose
from sim.errors import UserError
from sim.network import make_network
from topologies import build_topology
from topologies.hier import hier, nccl_params

A100_NODE = NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=37.5, bw_inter_GBps=37.5, arch="ampere")


def test_a100_single_node_protocol_crossovers():
    # tuning.cc, 8 ranks, 1 node, 8 channels × 37.5 GB/s = 300 GB/s bus, Ampere, nsteps = 2(p-1) = 14:
    # ring LL:     lat 6.6 + 14·0.6 = 15.0,  bw min(87.7, 300/4) · 8/14
    # ring LL128:  lat 14 + 14·1.9 = 40.6,   bw min(300·0.92, 8·20) · 8/14
    # ring Simple: lat 8.4 + 14·3.4 = 56.0,  bw 300 · 8/14
    ll = (15.0, 75 * 8 / 14)
    ll128 = (40.6, 160 * 8 / 14)
    simple = (56.0, 300 * 8 / 14)

    def cross(a, b):  # bytes where lat_a + x/(1000 bw_a) = lat_b + x/(1000 bw_b)
        return (b[0] - a[0]) * 1000 / (1 / a[1] - 1 / b[1])

    x1, x2 = cross(ll, ll128), cross(ll128, simple)   # ≈ 2.07 MB and ≈ 3.02 MB
    assert 2.0e6 < x1 < x2 < 3.1e6
    assert choose("allreduce", 1024, A100_NODE)[:2] == ("ring", "LL")
    assert choose("allreduce", 0.98 * x1, A100_NODE)[:2] == ("ring", "LL")
    assert choose("allreduce", (x1 + x2) / 2, A100_NODE)[:2] == ("ring", "LL128")
    assert choose("allreduce", 1.02 * x2, A100_NODE)[:2] == ("ring", "Simple")
    t = choose("allreduce", 2**28, A100_NODE)[2]
    assert t == pytest.approx(simple[0] + 2**28 / (1000 * simple[1]), rel=1e-12)


def test_ll128_disabled_and_nvls_on_h100():
    g = NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=56.25, arch="hopper",
                  nvls=True)
    # NVLS/Simple: lat hwLat[NVLINK][NVLS] = 23, bw 8 · 56.25 · 5/6 = 375; ring/Simple 56 + x/(1000·257.1)
    assert choose("allreduce", 2**28, g) == pytest.approx(("nvls", "Simple", 23 + 2**28 / (1000 * 375.0)))
    # 64 KiB: ring/LL lat 15, bw min(87.7, 450/4)·8/14 = 50.1: 16.3 µs < NVLS's 23.2 µs
    assert choose("allreduce", 2**16, g)[:2] == ("ring", "LL")
    # NVLS alone never runs across nodes (tuning.cc disables it for nNodes > 1 without CollNet)
    g2 = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=6.25, nvls=True)
    assert choose("allreduce", 2**28, g2)[0] != "nvls"
    # without LL128 the middle band goes to LL or Simple
    g3 = NcclGraph(**{**A100_NODE.__dict__, "ll128": False})
    assert choose("allreduce", 2.5e6, g3)[1] != "LL128"


def test_tree_wins_small_multinode():
    # 2 nodes × 8: ring LL lat = 6.6 + (30-4)·max(0.6, 1 µs net overhead) + 4·2.7 = 43.4; tree LL
    # lat = 6.8 + 2·(7·0.6 + 1·5.0) = 25.2 (tuning.cc): the tree is chosen for tiny messages
    g = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=37.5, bw_inter_GBps=25.0, arch="ampere")
    algo, proto, t = choose("allreduce", 64, g)
    assert (algo, proto) == ("tree", "LL")
    assert t < 43.4


def _flow_time(G, op, p, nbytes, network="flow", group=None):
    net = make_network(network, G)
    env = simpy.Environment()
    net.session(env).collective(op, "nccl", tuple(range(p)) if group is None else group, float(nbytes))
    env.run()
    return env.now


@pytest.mark.parametrize("k", [1, 2, 4])
def test_multichannel_ring_reaches_k_nics(k):
    # 4 nodes × 4 GPUs, k NICs of B per node, NVLink 1000× faster, no link latency, NIC efficiency e:
    # NCCL's rail-aligned rings push k channels through k NICs, so a large ring all-reduce's bus bandwidth
    # 2(p-1)/p · n / t approaches k · B · e (less only NCCL's fixed per-call latency, < 1 % at 16 GiB).
    # (4 nodes, not 2: on 2 nodes NCCL's search gives the tree graph up to twice the NIC bandwidth and
    # its tuning picks the tree for large sizes, test_two_nodes_large_allreduce_picks_tree.)
    B, e = 25e9, 0.9
    G = hier(4, 4, 1000 * B, B, 0.0, 0.0, nics_per_node=k, nccl={"bus_efficiency": {"nic": e}})
    p, n = 16, 16 * 2**30
    t = _flow_time(G, "allreduce", p, n)
    busbw = 2 * (p - 1) / p * n / t
    assert 0.99 * k * B * e < busbw <= k * B * e


def test_two_nodes_large_allreduce_picks_tree():
    # 2 nodes x 8 H100, 8 NICs of 200 Gbit/s (25 GB/s), 8 channels: per channel NVLink 450/8 = 56.25 GB/s,
    # NIC 25 GB/s. NCCL's search (src/graph/search.cc, ncclTopoCompute): a ring graph crossing the network
    # has bwIntra = bwInter = 25; a tree graph on 2 nodes may raise bwIntra to 2 x bwInter = 50 (< 56.25).
    # tuning.cc: ring Simple bus = 8 x 25 x p/nsteps = 8 x 25 x 16/30; tree Simple bus =
    # min(8 x 50 x 0.92, 8 x perChMaxTreeBws[Hopper][2 nodes] = 8 x 41.4) x 0.5
    g = tune.NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=25.0)
    assert tune.graph_bw_GBps("ring", g) == 25.0 and tune.graph_bw_GBps("tree", g) == 50.0
    assert tune.bus_bandwidth_GBps("allreduce", "ring", "Simple", g) == pytest.approx(8 * 25 * 16 / 30)
    assert tune.bus_bandwidth_GBps("allreduce", "tree", "Simple", g) == pytest.approx(min(8 * 50 * 0.92,
                                                                                          8 * 41.4) * 0.5)
    assert tune.choose("allreduce", 2**30, g)[:2] == ("tree", "Simple")
    # one node: the graph's bandwidth is NVLink's for every algorithm
    g1 = tune.NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=56.25)
    assert tune.graph_bw_GBps("ring", g1) == tune.graph_bw_GBps("tree", g1) == 56.25


def test_flat_ring_stays_one_nic():
    # the MPI-style ring is unchanged: one ring through one NIC, bus bandwidth ≈ B (issue 10's 24.9 GB/s)
    G = hier(2, 4, 1000 * 25e9, 25e9, 0.0, 0.0)
    net = make_network("flow", G)
    env = simpy.Environment()
    n = 2**30
    net.session(env).collective("allreduce", "ring", tuple(range(8)), float(n))
    env.run()
    assert 2 * 7 / 8 * n / env.now == pytest.approx(25e9, rel=1e-9)


@pytest.mark.parametrize(("preset", "p", "nbytes"), [
    ("dgx-a100", 8, 1e3), ("dgx-a100", 8, 2.5e6), ("dgx-a100", 8, 2**28), ("dgx-a100", 16, 2**10),
    ("dgx-a100", 16, 2**20), ("dgx-a100", 16, 2**28), ("dgx-h100", 8, 2**28), ("dgx-h100", 32, 2**24),
])
def test_flow_equals_own_closed_form(preset, p, nbytes):
    # the model's closed form (what `analytic` charges) is the time `flow` simulates on the hier fabric
    G = build_topology(preset, p)
    for op in ("allreduce", "allgather", "reduce_scatter"):
        flow = _flow_time(G, op, p, nbytes)
        analytic = _flow_time(G, op, p, nbytes, network="analytic")
        assert flow == pytest.approx(analytic, rel=1e-9)


@pytest.mark.parametrize("group", [(0, 1, 2, 3), (4, 5), (0, 1, 8, 9), (0, 1, 2, 3, 8, 9, 10, 11)])
def test_flow_equals_own_closed_form_on_part_of_nodes(group):
    # fewer members per node than GPUs (TP 4 or 2 inside a node, 2 or 4 GPUs on each of 2 nodes): the
    # closed form prices the group on its own layout, L members per node (NVLink only inside one node), as
    # flow routes it; it used to treat every member as a node of its own, behind its NIC (an in-node 4-GPU
    # all-gather of 64 MiB at 43 GB/s bus bandwidth instead of flow's 318)
    G = build_topology("dgx-h100", 16)
    for op in ("allreduce", "allgather", "reduce_scatter"):
        for nbytes in (2**16, 2**26):
            flow = _flow_time(G, op, len(group), nbytes, group=group)
            analytic = _flow_time(G, op, len(group), nbytes, network="analytic", group=group)
            assert flow == pytest.approx(analytic, rel=1e-9), (op, nbytes)


def test_closed_form_components_ring_simple():
    # 2 nodes × 8 A100 at 1 GiB: ring/Simple on C = 16 channels (NCCL's search finds one per NIC, 8, and
    # ncclTopoPostset doubles them). Time = Σ steps (path latency + extra) + bytes term, with the bytes term
    # 2(p-1) · 2 · n/(C p) / (e_nic · 25 GB/s) (each NIC carries two channels) — written out here.
    G = build_topology("dgx-a100", 16)
    algo = get_algorithm("allreduce", "nccl")
    f = G.graph["fabric"]
    plan = algo.plan(16, 2**30, 8, f)
    assert (plan.algo, plan.proto, plan.channels) == ("ring", "Simple", 16)
    bytes_term = 30 * 2 * (2**30 / (16 * 16)) / (0.9 * 25e9)
    lat_term = sum(ph.steps * (ph.latency_s + 4e-6) for ph in plan.phases)   # inter path: 2 × 2 µs
    assert algo.cost_s(16, 2**30, 0.0, 1.0, local_size=8, fabric=f) == pytest.approx(bytes_term + lat_term,
                                                                                       rel=1e-12)


def test_registry_and_flags():
    assert parse_collectives("nccl")["allreduce"] == "nccl"
    assert parse_collectives("nccl")["broadcast"] == "paper"
    assert parse_collectives("allgather=nccl")["allgather"] == "nccl"
    with pytest.raises(UserError):
        get_algorithm("broadcast", "nccl")
    with pytest.raises(UserError):
        parse_collectives("halo=nccl")


@pytest.mark.parametrize("raw", [{"arch": "pascal"}, {"bus_efficiency": {"nvlink": 1.5}},
                                 {"bus_efficiency": {"pcie": 0.5}}, {"base_latency_us": -1}, {"nvls": "yes"},
                                 {"foo": 1}, "text"])
def test_bad_nccl_block(raw):
    with pytest.raises(UserError):
        nccl_params(raw)


def test_deterministic():
    G = build_topology("dgx-h100", 16)
    assert _flow_time(G, "allreduce", 16, 3e6) == _flow_time(G, "allreduce", 16, 3e6)


def test_tree_chunk_sizes_follow_nccl_calc_coll_chunking():
    # src/enqueue.cc calcCollChunking for ncclPatternTreeUpDown: stepSize = buffSize / NCCL_STEPS (8);
    # Simple: NCCL_BUFFSIZE/8 (4 MiB default -> 512 KiB; 8 MiB -> 1 MiB); LL: 524288/8/2 = 32 KiB of data;
    # LL128: 4915200/8 = 614400, 15/16 of it data = 576000, halved while bytes/(C·chunk) < (1 + log2 N +
    # 0.1·ppn)·64/ppn and chunk > 128 KiB, then while < ·16/ppn and chunk > 32 KiB, C the channels the call
    # runs on. 2 nodes x 8, 8 search channels run as 16, 1 MiB: ppn 8, steps 2.8: 65536 // chunk is 0 until
    # chunk = 72000 (first loop stops: not > 131072), then 65536 // 36000 = 1 < 5.6 -> 18000 (not > 32768).
    g = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=25.0)
    assert tune.tree_chunk_bytes("Simple", 2**30, g) == 2**19
    assert tune.tree_chunk_bytes("Simple", 2**30, g, buffsize=8 * 2**20) == 2**20
    assert tune.tree_chunk_bytes("LL", 2**20, g) == 2**15
    assert tune.tree_chunk_bytes("LL128", 2**20, g) == 18000
    # a large message keeps LL128's full chunk: 2**30 // (16 · 576000) = 116 >= 22.4
    assert tune.tree_chunk_bytes("LL128", 2**30, g) == 576000


def test_two_node_tree_runs_at_the_wire_rate():
    # 2 nodes x 8 GPUs, one NIC of B per GPU (efficiency e), NVLink 1000x faster, no link latency: a large
    # tree/Simple all-reduce moves n across each node's NICs once each way, at the wire's rate: no 0.92 or
    # per-channel cap of NCCL's tuning. C = 16 channels (8 search channels, one per NIC, doubled), two per
    # NIC; chunks of 512 KiB (NCCL_BUFFSIZE 4 MiB / 8 steps), K = n/(C·chunk) = 8 GiB/(16·512 KiB) = 1024.
    # A pipeline: the first chunk climbs the 7 NVLink hops of each node's chain (each GPU sends one chunk on
    # 14 of the 16 channels: it heads the other 2) and the one NIC hop, and comes back down (2·7 + 2·1 steps),
    # then the other K − 1 follow a step apart (each NIC 2 chunks each way per step); plus NCCL's tree/Simple
    # latency 2·(7·28 + 1·28) µs (tuning.cc hwLat NVLink and NET, baseLat 0).
    B, e = 25e9, 0.9
    G = hier(2, 8, 1000 * B, B, 0.0, 0.0, nccl={"bus_efficiency": {"nic": e}})
    n = 8 * 2**30
    assert get_algorithm("allreduce", "nccl").plan(16, n, 8, G.graph["fabric"]).algo == "tree"
    chunk, K = 2**19, 1024
    nic_step = 2 * chunk / (B * e)
    expected = 14 * (14 * chunk / (1000 * B)) + 2 * nic_step + (K - 1) * nic_step + 2 * (7 * 28 + 28) * 1e-6
    assert _flow_time(G, "allreduce", 16, n) == pytest.approx(expected, rel=1e-9)
    assert 0.98 * 8 * B * e < n / expected < 8 * B * e


def test_nvls_moves_n_plus_n_over_l_at_nccl_nvls_efficiency():
    # one dgx-h100 node (NVLink 450 GB/s per direction, bus efficiency 0.8): NVLS all-reduce moves n(1 + 1/L)
    # each way per GPU, at NCCL's nvlsEfficiency 0.85 (tuning.cc, Hopper): algbw -> 450·0.8·0.85/(1 + 1/8)
    # = 272 GB/s, busbw 2·7/8 of that = 476 GB/s (NCCL's maintainer quotes ~480 on 8 H100: validation row
    # dgxh100-allreduce-nvls-8gpu). Less NCCL's 23 µs NVLS latency (+ preset base latency), < 0.1 % at 8 GiB.
    G = build_topology("dgx-h100", 8)
    n = 8 * 2**30
    assert get_algorithm("allreduce", "nccl").plan(8, n, 8, G.graph["fabric"]).algo == "nvls"
    algbw = n / _flow_time(G, "allreduce", 8, n)
    ideal = 450e9 * 0.8 * 0.85 / (1 + 1 / 8)
    assert 0.999 * ideal < algbw <= ideal


def test_nccl_algo_and_proto_restrict_the_choice():
    # NCCL_ALGO / NCCL_PROTO: tuning.cc zeroes the bandwidth of what they leave out, so the choice is the
    # fastest of the rest
    g = NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=56.25, nvls=True)
    assert choose("allreduce", 2**28, g)[0] == "nvls"
    ring_only = NcclGraph(**{**g.__dict__, "algorithms": ("ring",)})
    assert choose("allreduce", 2**28, ring_only)[:2] == ("ring", "Simple")
    assert choose("allreduce", 2**28, ring_only)[2] == tune.algo_time_us("allreduce", "ring", "Simple", 2**28, g)
    simple_only = NcclGraph(**{**A100_NODE.__dict__, "protocols": ("Simple",)})
    assert choose("allreduce", 1024, simple_only)[:2] == ("ring", "Simple")
    # all-gather has no tree: NCCL_ALGO=Tree leaves it nothing
    with pytest.raises(UserError, match="topology.nccl"):
        choose("allgather", 2**20, NcclGraph(**{**g.__dict__, "algorithms": ("tree",)}))


def test_preset_spec_sets_nccl_keys():
    G = build_topology("dgx-h100:nccl.algorithms=ring+tree,nccl.protocols=Simple,nccl.buffsize=8MiB", 8)
    f = dict(G.graph["fabric"])
    assert f["algorithms"] == ("tree", "ring") and f["protocols"] == ("Simple",) and f["buffsize"] == 8 * 2**20
    assert f["nvls"] is True and f["eff_nvlink"] == 0.8          # the preset's other nccl keys stay
    plan = get_algorithm("allreduce", "nccl").plan(8, 2**30, 8, G.graph["fabric"])
    assert (plan.algo, plan.proto) == ("ring", "Simple")


def test_preset_spec_sets_boolean_integer_and_per_class_keys():
    # a spec string carries words: nccl.nvls=false, nccl.channels=16 and one link class's bus efficiency
    G = build_topology("dgx-h100:nccl.nvls=false,nccl.ll128=False,nccl.channels=16,nccl.bus_efficiency.nic=0.7", 16)
    f = dict(G.graph["fabric"])
    assert f["nvls"] is False and f["ll128"] is False and f["channels"] == 16
    assert f["eff_nic"] == 0.7 and f["eff_nvlink"] == 0.8                # the preset's nvlink efficiency stays
    assert get_algorithm("allreduce", "nccl").plan(16, 2**30, 8, G.graph["fabric"]).channels == 16
    for bad, field in (("nccl.nvls=maybe", "topology.nccl.nvls"), ("nccl.channels=0", "topology.nccl.channels"),
                       ("nccl.channels=2.5", "topology.nccl.channels"),
                       ("nccl.bus_efficiency.pci=0.8", "topology.nccl.bus_efficiency.pci")):
        with pytest.raises(UserError, match=field):
            build_topology(f"dgx-h100:{bad}", 16)


@pytest.mark.parametrize("raw", [{"algorithms": ["warp"]}, {"algorithms": []}, {"protocols": "LL,fast"},
                                 {"buffsize": "1KiB"}, {"buffsize": "lots"}, {"protocols": 3}])
def test_bad_nccl_choice_keys(raw):
    with pytest.raises(UserError, match="topology.nccl"):
        nccl_params(raw)


def test_nvls_needs_hopper():
    # search.cc builds no NVLS graph below compute capability 9.0, whatever the topology file says
    g = NcclGraph(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=37.5, bw_inter_GBps=37.5, arch="ampere",
                  nvls=True)
    assert choose("allreduce", 2**30, g)[0] != "nvls"
    G = hier(1, 8, 300e9, 25e9, 0.0, 0.0, nccl={"arch": "ampere", "nvls": True})
    assert _flow_time(G, "allreduce", 8, 2**30) > 0


def test_no_algorithm_left_is_one_line_exit_2(capsys):
    # raised inside a simulated process (SimPy rebuilds it from its args): still one `error:` line, exit 2
    from sim.cli import main

    assert main(["collective", "--op", "allgather", "--algorithm", "nccl", "--procs", "8", "--bytes", "1MiB",
                 "--topology", "dgx-h100:nccl.algorithms=tree"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: topology.nccl: ") and err.count("\n") == 1, err


def test_collective_reports_nccl_choice(capsys):
    # the choice NCCL's tuning makes (test_two_nodes_large_allreduce_picks_tree: tree/Simple for 1 GiB on
    # 2 x 8 GPUs with 200 Gbit/s NICs) is a CSV field and a line after the nccl-tests table
    from sim.cli import main
    from sim.engine.collective import simulate_collective

    row = simulate_collective("allreduce", "nccl", 16, 2**30, "a3-mega", "flow")
    assert row["nccl_choice"] == "tree/Simple"
    assert "nccl_choice" not in simulate_collective("allreduce", "ring", 16, 2**30, "a3-mega", "flow")
    assert main(["collective", "--op", "allreduce", "--algorithm", "nccl", "--procs", "16",
                 "--bytes", "1GiB,2GiB", "--topology", "a3-mega"]) == 0
    assert "# NCCL's choice: tree/Simple 1073741824-2147483648 B" in capsys.readouterr().out
    assert main(["collective", "--op", "allreduce", "--algorithm", "nccl", "--procs", "8", "--bytes", "1GiB",
                 "--topology", "dgx-h100", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(",nvls/Simple")


@pytest.mark.parametrize(("op", "factor"), [("allreduce", lambda p: 2 * (p - 1) / p),
                                            ("allgather", lambda p: (p - 1) / p),
                                            ("reduce_scatter", lambda p: (p - 1) / p)])
def test_bytes_sent_are_the_data_not_the_efficiency_scaled_time(op, factor):
    """2 nodes × 8 A100, 1 GiB, ring/Simple across NICs of efficiency 0.9: each rank sends the ring's data,
    2(p−1)/p · n for an all-reduce and (p−1)/p · n for an all-gather or reduce-scatter (Patarasuk & Yuan 2009;
    nccl-tests' busbw factors), while the time is charged for n / 0.9 on the NICs."""
    G = build_topology("dgx-a100", 16)
    net = make_network("flow", G)
    group = tuple(range(16))
    sent = net.bytes_sent(op, "nccl", group, 2**30)
    assert sent.tolist() == pytest.approx([factor(16) * 2**30] * 16, rel=1e-12)


# ---------------------------------------------------------------- NCCL 2.23's tuning model (nccl.version)
# Cases derived by hand from src/graph/tuning.cc at tag v2.23.4-1 against b6475625 (the 2.19 default).
A3 = dict(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=25.0)   # 2 x 8 H100, 8 x 200G


def test_nccl_2_23_latencies():
    g19, g23 = NcclGraph(**A3), NcclGraph(**A3, version="2.23")
    # tree/Simple: baseLat 0 -> 8.4, hwLat NVLink 28 -> 4, NET 28 -> 14: 2 · ((8 − 1) · hop + log2(2) · net)
    assert tune.latency_us("allreduce", "tree", "Simple", g19) == pytest.approx(2 * (7 * 28 + 28))          # 448
    assert tune.latency_us("allreduce", "tree", "Simple", g23) == pytest.approx(8.4 + 2 * (7 * 4 + 14))     # 92.4
    # ring/Simple all-reduce: nsteps 2·15 = 30, inter-node steps 2·nNodes = 4 (2.19), 2·(nNodes − 1) = 2 (2.23);
    # intra hop max(3.4, Intel net overhead 1 · 3) = 3.4, NET hop 14
    assert tune.latency_us("allreduce", "ring", "Simple", g19) == pytest.approx(8.4 + 26 * 3.4 + 4 * 14)
    assert tune.latency_us("allreduce", "ring", "Simple", g23) == pytest.approx(8.4 + 28 * 3.4 + 2 * 14)
    # one rank per node: 2.23 charges a ring the tree's network latency (ring/LL NET 2.7 -> tree/LL 5.0);
    # 4 ranks, 4 nodes: 6 steps, all 2·(4 − 1) = 6 of them across the network
    one = dict(n_ranks=4, n_nodes=4, channels=1, bw_intra_GBps=50.0, bw_inter_GBps=50.0)
    assert tune.latency_us("allreduce", "ring", "LL", NcclGraph(**one, version="2.23")) == pytest.approx(6.6 + 6 * 5.0)
    # 2.19 counts 2 · nNodes = 8 network steps of the 6 (and −2 at the intra hop, max(0.6, net overhead 1)):
    assert tune.latency_us("allreduce", "ring", "LL", NcclGraph(**one)) == pytest.approx(6.6 - 2 * 1.0 + 8 * 2.7)


def test_nccl_2_23_bandwidths():
    # one node of 8 H100, 8 channels x 56.25 = 450 GB/s bus; ring/LL: 2.19 min(llMaxBw 87.7, 450/4), 2.23
    # min(Hopper's new llMaxBw 141, 450/2); both times 8/14 (ring, nsteps 14)
    node = dict(n_ranks=8, n_nodes=1, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=56.25)
    assert tune.bus_bandwidth_GBps("allreduce", "ring", "LL", NcclGraph(**node)) == pytest.approx(87.7 * 8 / 14)
    assert tune.bus_bandwidth_GBps("allreduce", "ring", "LL", NcclGraph(**node, version="2.23")) == \
        pytest.approx(141.0 * 8 / 14)
    # ring/LL128 at one rank per node: 2.19 x 0.7, 2.23 x 0.92; 4 x 1 GPU, 1 channel of 10 GB/s (under the
    # per-channel cap 36.7), nsteps 2·3 = 6: x 4/6
    one = dict(n_ranks=4, n_nodes=4, channels=1, bw_intra_GBps=10.0, bw_inter_GBps=10.0)
    assert tune.bus_bandwidth_GBps("allreduce", "ring", "LL128", NcclGraph(**one)) == pytest.approx(10 * 0.7 * 4 / 6)
    assert tune.bus_bandwidth_GBps("allreduce", "ring", "LL128", NcclGraph(**one, version="2.23")) == \
        pytest.approx(10 * 0.92 * 4 / 6)


def test_nccl_2_23_picks_tree_simple_where_2_19_picks_ring():
    # NCCL_PROTO=Simple on 2 x 8 H100, 1 MiB all-reduce (times in µs, bw in GB/s):
    # tree: graph bw min(56.25, 2 · 25) = 50 per channel, bus min(8 · 50 · 0.92, 8 · 41.4) = 331.2, x 0.5,
    #       treeCorrectionFactor[Simple][log2(2^20 >> 6) = 14] = 0.5: 82.8; lat 448 (2.19) or 92.4 (2.23)
    # ring: bus 8 · min(56.25, 25) = 200, x 16/30; lat (2.19) 152.8 or (2.23) 131.6, x 1.4 (plateau: 2^20 /
    #       (16 channels · 16 ranks) >= 64)
    n = 2**20
    tree_bw, ring_bw = 331.2 * 0.5 * 0.5, 200 * 16 / 30
    for version, tree_lat, ring_lat, algo in (("2.19", 448.0, 152.8, "ring"), ("2.23", 92.4, 131.6, "tree")):
        g = NcclGraph(**A3, protocols=("Simple",), version=version)
        times = {"tree": tree_lat + n / (1000 * tree_bw), "ring": 1.4 * ring_lat + n / (1000 * ring_bw)}
        got = choose("allreduce", n, g)
        assert got[:2] == (algo, "Simple") and got[2] == pytest.approx(times[algo], rel=1e-9)
        assert min(times, key=times.get) == algo


def test_version_key():
    assert nccl_params({"version": "2.23"})["version"] == "2.23"
    assert nccl_params(None)["version"] == "2.19"
    G = build_topology("a3-mega:nccl.version=2.19", 16)          # the preset ships 2.23; a spec overrides it
    assert dict(G.graph["fabric"])["version"] == "2.19"
    assert dict(build_topology("a3-mega", 16).graph["fabric"])["version"] == "2.23"
    for bad in ("2.21", 2.2, True, "latest"):
        with pytest.raises(UserError, match="topology.nccl.version"):
            nccl_params({"version": bad})


def test_channels_are_the_search_channels_doubled(capsys):
    # connect.cc ncclTopoPostset: the search's channels (one per NIC here) doubled; on Hopper across nodes,
    # doubled again while under 16 if the ring graph's per-channel bandwidth exceeds 45 GB/s
    algo = get_algorithm("allreduce", "nccl")
    four_400g = hier(2, 8, 450e9, 50e9, 0.0, 0.0, nics_per_node=4)        # 4 NICs of 400 Gbit/s: 50 GB/s > 45
    assert algo.plan(16, 2**30, 8, four_400g.graph["fabric"]).channels == 16
    four_200g = hier(2, 8, 450e9, 25e9, 0.0, 0.0, nics_per_node=4)
    assert algo.plan(16, 2**30, 8, four_200g.graph["fabric"]).channels == 8
    amp = hier(2, 8, 300e9, 50e9, 0.0, 0.0, nics_per_node=4, nccl={"arch": "ampere"})
    assert algo.plan(16, 2**30, 8, amp.graph["fabric"]).channels == 8
    assert algo.plan(16, 2**30, 8, build_topology("a3-mega", 16).graph["fabric"]).channels == 16


def test_tree_pipeline_fill_is_each_hop_in_turn():
    # 2 nodes x 8, 8 NICs of B (efficiency e), NVLink of V, no link latency, 4 MiB all-reduce: 16 channels of
    # 256 KiB, one chunk each (K = 1, buffsize 4 MiB -> 512 KiB chunks). The chunk climbs each node's chain:
    # 7 NVLink steps, each GPU sending one chunk on the 14 channels it does not head (14 · b / V), then 1 NIC
    # step (two channels per NIC: 2 · b / (B · e)), and comes back the same way: no step at full load.
    B, V, e = 25e9, 450e9, 0.9
    G = hier(2, 8, V, B, 0.0, 0.0, nccl={"bus_efficiency": {"nic": e}, "algorithms": ["tree"], "protocols": ["Simple"]})
    n = 4 * 2**20
    b = n / 16
    lat_s = 2 * (7 * 28 + 28) * 1e-6                                     # NCCL 2.19's tree/Simple latency
    expected = 2 * 7 * (14 * b / V) + 2 * (2 * b / (B * e)) + lat_s
    assert _flow_time(G, "allreduce", 16, n) == pytest.approx(expected, rel=1e-9)
    assert _flow_time(G, "allreduce", 16, n, network="analytic") == pytest.approx(expected, rel=1e-9)


def test_ll128_tree_streams_without_a_store_and_forward_fill():
    # LL and LL128 forward each line as its flag arrives (NCCL's prims_ll.h / prims_ll128.h), so a tree
    # under them has no per-hop fill: K steps, every edge both ways at the slowest link's rate, plus NCCL's
    # latency. 2 nodes x 8, 8 NICs of B (efficiency e), NVLink V, 4 MiB: C = 16 channels, LL128 chunk 36,000 B
    # (calcCollChunking: 576,000 halved to 72,000 while 4 MiB // (16 · chunk) < 22.4, then to 36,000 while
    # < 5.6), K = ceil(262,144 / 36,000) = 8 chunks of b = 4 MiB / 128. Each NIC carries two channels' chunk
    # each way per step; LL128's factor over Simple on the tree: per-channel cap 8 · 36.7 over
    # min(8 · 50 · 0.92, 8 · 41.4) (graph bw min(56.25, 2 · 25) = 50); latency 14 + 2 · (7 · 1.25 + 8.5) µs.
    B, V, e = 25e9, 450e9, 0.9
    G = hier(2, 8, V, B, 0.0, 0.0, nccl={"bus_efficiency": {"nic": e}, "algorithms": ["tree"],
                                         "protocols": ["LL128"]})
    n, K = 4 * 2**20, 8
    b = n / (16 * K)
    factor = (8 * 36.7) / min(8 * 50 * 0.92, 8 * 41.4)
    expected = K * 2 * b / (factor * B * e) + (14 + 2 * (7 * 1.25 + 8.5)) * 1e-6
    assert get_algorithm("allreduce", "nccl").plan(16, n, 8, G.graph["fabric"]).proto == "LL128"
    assert _flow_time(G, "allreduce", 16, n) == pytest.approx(expected, rel=1e-9)
    assert _flow_time(G, "allreduce", 16, n, network="analytic") == pytest.approx(expected, rel=1e-9)


def test_base_latency_per_link_class():
    # base_latency_us: {nvlink: X, nic: Y}: a call inside one node pays X, a call across nodes Y — the same
    # times as a scalar X (one node) or Y (two nodes); a single value stands for both classes
    def t(nccl, p):
        return _flow_time(hier(2, 8, 450e9, 25e9, 1e-6, 2e-6, nccl=nccl), "allreduce", p, 2**20)

    split = {"base_latency_us": {"nvlink": 5.0, "nic": 50.0}}
    assert t(split, 8) == t({"base_latency_us": 5.0}, 8)
    assert t(split, 16) == t({"base_latency_us": 50.0}, 16)
    assert t({"base_latency_us": {"nic": 50.0}}, 8) == t({}, 8)          # a class left out adds nothing
    p = nccl_params({"base_latency_us": 7})
    assert (p["base_latency_us"], p["base_latency_nvlink_us"]) == (7.0, 7.0)
    for bad in ({"pcie": 1.0}, {"nic": -1.0}, {"nvlink": "x"}):
        with pytest.raises(UserError, match="topology.nccl.base_latency_us"):
            nccl_params({"base_latency_us": bad})
    # one class from a spec string; the preset's other class stays (a3-mega: nvlink 0, nic 40.6)
    f = dict(build_topology("a3-mega:nccl.base_latency_us.nvlink=3", 16).graph["fabric"])
    assert (f["base_latency_nvlink_us"], f["base_latency_us"]) == (3.0, 40.6)
    f = dict(build_topology("dgx-h100:nccl.base_latency_us.nic=9", 16).graph["fabric"])
    assert (f["base_latency_nvlink_us"], f["base_latency_us"]) == (0.0, 9.0)


# --- NVLS tree (NVLink SHARP inside the nodes, a tree of the nodes across them) ---------------------------------

H100_2x8 = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=50, nvls=True,
                     version="2.23")


def test_nvls_tree_cost_and_choice_on_two_h100_nodes():
    # NCCL 2.23 tuning.cc on 2 x 8 H100 (NVLink 450 GB/s per GPU = 8 x 56.25, one 50 GB/s NIC per GPU):
    # the NVLS graph has 8 heads (one per NIC); ncclTopoSearchTryNvls charges a GPU's NVSwitch path each of
    # the 8 channels once and its head channel twice, so bwIntra = min(450/9, 50) = 50, bwInter = 50;
    # NVLSTree bw = min(bwIntra, bwInter) on 2 nodes, bus = 8 x 50 x 5/6 = 333.3 GB/s;
    # lat = baseLat 0 + hwLat[NVLINK][NVLSTree] 25 + 2 x log2(2) x hwLat[NET][NVLSTree] 14 = 53 us
    n = 8 * 2**30
    assert tune.nvls_graph_bws_GBps(H100_2x8) == (50.0, 50)
    assert tune.bus_bandwidth_GBps("allreduce", "nvls_tree", "Simple", H100_2x8) == pytest.approx(8 * 50 * 5 / 6)
    assert tune.latency_us("allreduce", "nvls_tree", "Simple", H100_2x8) == pytest.approx(53.0)
    # ring/Simple: 8 x min(56.25, 50) x 16/30 = 213.3 GB/s; tree/Simple: min(8 x 56.25 x 0.92, 8 x 41.4) x 1/2
    # = 165.6 GB/s: at 8 GiB the NVLS tree's 333.3 GB/s wins
    assert choose("allreduce", n, H100_2x8) == pytest.approx(("nvls_tree", "Simple", 53 + n / (1000 * 8 * 50 * 5 / 6)))
    # only all-reduce runs as an NVLS tree (tuning.cc skips it for all-gather / reduce-scatter)
    assert choose("allgather", n, H100_2x8)[0] == "ring"


def test_nvls_tree_needs_its_version_a_switch_and_three_gpus_per_node():
    n = 8 * 2**30
    # the 2.19 line's commit (2.20.3) turns NVLS off across nodes (nvls.cc ncclNvlsInit: nNodes > 1)
    assert choose("allreduce", n, NcclGraph(**{**H100_2x8.__dict__, "version": "2.19"}))[0] != "nvls_tree"
    assert choose("allreduce", n, NcclGraph(**{**H100_2x8.__dict__, "nvls": False}))[0] != "nvls_tree"
    # ncclNvlsInit: gpuCount <= 2 turns NVLS off, alone or as a tree
    two_per_node = NcclGraph(**{**H100_2x8.__dict__, "n_ranks": 4})
    assert not tune.enabled("allreduce", "nvls_tree", two_per_node)
    pair = NcclGraph(n_ranks=2, n_nodes=1, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=56.25, nvls=True)
    assert not tune.enabled("allreduce", "nvls", pair)


def test_nvls_tree_halves_past_two_nodes_so_large_calls_go_back_to_rings():
    # 4 x 8 H100 (2.23): NVLSTree bw = min(50, bwInter/2 = 25) -> bus 8 x 25 x 5/6 = 166.7 GB/s, less than
    # ring/Simple's 8 x 50 x 32/62 = 206.5 GB/s: at 8 GiB NCCL runs a ring again, as reported for more than
    # 2 nodes of 8 H100 with 8 x 400G NICs (NVIDIA/nccl#1221: NVLS on or off, the same bus bandwidth)
    g = NcclGraph(**{**H100_2x8.__dict__, "n_ranks": 32, "n_nodes": 4})
    assert tune.bus_bandwidth_GBps("allreduce", "nvls_tree", "Simple", g) == pytest.approx(8 * 25 * 5 / 6)
    assert tune.latency_us("allreduce", "nvls_tree", "Simple", g) == pytest.approx(25 + 2 * 2 * 14)
    assert choose("allreduce", 8 * 2**30, g)[:2] == ("ring", "Simple")


@pytest.mark.parametrize("network", ["flow", "analytic"])
@pytest.mark.parametrize("nodes", [2, 4])
def test_nvls_tree_schedule_is_the_slower_of_the_switch_and_the_node_tree(network, nodes):
    # dgx-h100 nodes (NVLink 450 GB/s at bus efficiency 0.8, 8 NICs of 50 GB/s at 0.9), no link latency,
    # NCCL 2.23 forced to NVLSTree. Inside a node each GPU moves n(1 + 1/8) each way at NVLS's 0.85
    # (the single-node NVLS traffic); across nodes each of the 8 rails carries the node's reduced 1/8 on two
    # trees of half each, up and down at once. 2 nodes: the trees are one edge and its mirror, so each NIC
    # sends n/16 up and n/16 down = n/8; 4 nodes (tree 1->0, 2->0, 3->1 and its mirror 2->3, 1->3, 0->2):
    # every node sits on three tree edges, 3n/16 each way per NIC. The two levels run pipelined: the slower
    # one sets the time, plus NCCL's NVLSTree latency 25 + 2·log2(N)·14 us.
    spec = "dgx-h100:intra_latency=0us,inter_latency=0us,nccl.version=2.23,nccl.algorithms=nvls_tree"
    p, n = 8 * nodes, 8 * 2**30
    G = build_topology(spec, p)
    assert get_algorithm("allreduce", "nccl").plan(p, n, 8, G.graph["fabric"]).algo == "nvls_tree"
    intra_s = n * (1 + 1 / 8) / (450e9 * 0.8 * 0.85)
    inter_s = (n / 8 if nodes == 2 else 3 * n / 16) / (50e9 * 0.9)
    lat_s = (25 + 2 * tune.log2i(nodes) * 14) * 1e-6
    assert _flow_time(G, "allreduce", p, n, network) == pytest.approx(lat_s + max(intra_s, inter_s), rel=1e-9)
    assert (intra_s > inter_s) == (nodes == 2)


def test_nvls_tree_names_in_nccl_algo_and_the_tuner(tmp_path):
    # NCCL_ALGO's spelling NVLSTree and the tuner CSV's nvls_tree both name it
    assert nccl_params({"algorithms": "Ring,NVLSTree"})["algorithms"] == ("ring", "nvls_tree")
    rules = tmp_path / "tuner.csv"
    rules.write_text("allreduce,0,1099511627776,nvls_tree,simple,-1,-1,-1\n")
    n = 2**20
    on = build_topology(f"dgx-h100:nccl.version=2.23,nccl.tuner={rules}", 16).graph["fabric"]
    assert get_algorithm("allreduce", "nccl").plan(16, n, 8, on).algo == "nvls_tree"
    # on the 2.19 line the pair is disabled, so the rule is skipped and NCCL's own choice stands
    off = build_topology(f"dgx-h100:nccl.tuner={rules}", 16).graph["fabric"]
    assert get_algorithm("allreduce", "nccl").plan(16, n, 8, off).algo != "nvls_tree"


# --- PAT (NCCL 2.23: all-gather and reduce-scatter at one GPU per node) ------------------------------------------

H100_8x1 = NcclGraph(n_ranks=8, n_nodes=8, channels=1, bw_intra_GBps=450, bw_inter_GBps=50, version="2.23")


@pytest.mark.parametrize("op", ["allgather", "reduce_scatter"])
def test_pat_cost_and_the_sizes_it_wins_at_one_gpu_per_node(op):
    # NCCL 2.23 tuning.cc, 8 nodes x 1 H100, one 50 GB/s NIC each: PAT's latency is set to
    # 8 + log2(8)·(14/3.5) + 8·2.8 = 42.4 us (the tree's Simple network hop 14, every algorithm's at one rank
    # per node) and its bandwidth is the tree graph's 1 x 50 x .85 = 42.5 GB/s, not converted by nRanks/nsteps.
    # The ring: LL 6.6 + 7·5.0 = 41.6 us at min(20.4, 50/2)·8/7 = 23.31 GB/s (llMaxBws Intel N4+ 20.4);
    # LL128 14 + 7·8.5 = 73.5 us at min(50·.92, 36.7)·8/7 = 41.94; Simple 8.4 + 7·14 = 106.4 us at 50·8/7.
    assert tune.latency_us(op, "pat", "Simple", H100_8x1) == pytest.approx(42.4)
    assert tune.bus_bandwidth_GBps(op, "pat", "Simple", H100_8x1) == pytest.approx(42.5)
    # 1 KiB: ring/LL 41.6 + 0.04 < PAT 42.4 + 0.02; 1 MiB: PAT 42.4 + 24.7 = 67.1 beats ring/LL 86.6,
    # LL128 98.5, Simple 124.8; 1 GiB: ring/Simple 106.4 + 18,790 beats PAT's 42.4 + 25,264
    assert choose(op, 1024, H100_8x1)[:2] == ("ring", "LL")
    assert choose(op, 2**20, H100_8x1) == pytest.approx(("pat", "Simple", 42.4 + 2**20 / (1000 * 42.5)))
    assert choose(op, 2**30, H100_8x1)[:2] == ("ring", "Simple")


def test_pat_only_at_one_gpu_per_node_on_2_23():
    assert not tune.enabled("allgather", "pat", NcclGraph(**{**H100_8x1.__dict__, "version": "2.19"}))
    assert not tune.enabled("allreduce", "pat", H100_8x1)
    assert not tune.enabled("allgather", "pat", NcclGraph(**{**H100_8x1.__dict__, "n_ranks": 16}))


@pytest.mark.parametrize("network", ["flow", "analytic"])
@pytest.mark.parametrize("op", ["allgather", "reduce_scatter"])
def test_pat_schedule_moves_the_ring_bytes_in_log_steps(network, op):
    # 6 nodes x 1 GPU, one NIC of B at efficiency e, no link latency, NCCL 2.23 forced to PAT: Bruck's
    # steps send 1, 2 and min(4, 6 - 4) = 2 blocks of n/6 (5 blocks = (p-1)/p · n per rank; the dual for
    # reduce-scatter), each step every NIC sending and receiving alike on a non-blocking fabric; plus
    # NCCL's PAT latency 8 + log2i(6)·14/3.5 + 6·2.8 = 32.8 us
    B, e = 25e9, 0.9
    G = hier(6, 1, 1000 * B, B, 0.0, 0.0, nccl={"bus_efficiency": {"nic": e}, "version": "2.23",
                                                 "algorithms": ["pat"]})
    n = 6 * 2**26
    assert get_algorithm(op, "nccl").plan(6, n, 1, G.graph["fabric"]).algo == "pat"
    assert _flow_time(G, op, 6, n, network) == pytest.approx(32.8e-6 + 5 * (n / 6) / (B * e), rel=1e-9)


@pytest.mark.parametrize("network", ["flow", "analytic"])
def test_nvls_tree_on_three_nodes_with_shared_nics(network):
    # 3 nodes x 8 GPUs, 4 NICs of B per node (GPUs 0, 2, 4, 6 head the rails), NVLink 1000x faster, no link
    # latency. On an odd node count NCCL's second tree is the first shifted by one (trees.cc): tree 1->0,
    # 2->0 and tree 2->1, 0->1, each edge carrying n/(2·4) each way at once. Nodes 0 and 1 sit on three
    # edges, so their rail NICs send and receive 3n/8; the NVLS traffic inside the nodes is negligible here.
    # Plus NCCL 2.23's NVLS-tree latency 25 + 2·log2i(3)·14 = 53 us.
    B, e = 25e9, 0.9
    G = hier(3, 8, 1000 * B, B, 0.0, 0.0, nics_per_node=4,
             nccl={"bus_efficiency": {"nic": e}, "version": "2.23", "nvls": True, "algorithms": ["nvls_tree"]})
    n = 2**30
    assert get_algorithm("allreduce", "nccl").plan(24, n, 8, G.graph["fabric"]).algo == "nvls_tree"
    assert _flow_time(G, "allreduce", 24, n, network) == pytest.approx(53e-6 + 3 * n / 8 / (B * e), rel=1e-9)


def test_a_small_call_runs_on_fewer_channels():
    # topoGetAlgoInfo (enqueue.cc): channels drop while bytes < channels x threads x threshold. Ring/Simple:
    # 512 threads x 64 B = 32 KiB per channel; ring/LL: 512 x 8 x nRanks (16) = 64 KiB; tree/LL128: 640 x 8.
    g = NcclGraph(n_ranks=16, n_nodes=2, channels=8, bw_intra_GBps=56.25, bw_inter_GBps=50)
    assert g.run_channels() == 16
    assert tune.call_channels("ring", "Simple", 256 * 1024, g) == 8
    assert tune.call_channels("ring", "Simple", 256 * 1024 - 1, g) == 7
    assert tune.call_channels("ring", "LL", 2**16, g) == 1
    assert tune.call_channels("ring", "LL", 2**20, g) == 16
    assert tune.call_channels("tree", "LL128", 40 * 1024, g) == 8
    assert tune.call_channels("nvls_tree", "Simple", 1024, g) == 16
    # the schedule runs on them: a 64 KiB ring/LL all-reduce on 2 x 8 GPUs is one ring, through one NIC rail
    G = hier(2, 8, 450e9, 50e9, nccl={"algorithms": ["ring"], "protocols": ["LL"]})
    plan = get_algorithm("allreduce", "nccl").plan(16, 2**16, 8, G.graph["fabric"])
    assert plan.channels == 1 and len(plan.phases[0].src) == 16
