"""Point-to-point ``send``: its cost (α + n/β, a route's latency + n/bw), the sender-triggered start, the
records of both sides, bandwidth sharing, a pipeline's fill time, freedom from deadlock, validation,
link bytes, the critical path, the algorithm names the run's collectives map it to, and the CLI.

Every expected time is written out from the α-β model in the test: a transfer of n bytes over a route of
path latency L and bottleneck bandwidth b, alone, takes L + n/b; k flows sharing one link get b/k each
(max-min fairness).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from sim.collectives import get_algorithm, parse_collectives
from sim.critical_path import critical_path
from sim.engine import run_program
from sim.errors import UserError
from sim.network import make_network
from sim.network.linkmeter import LinkMeter
from sim.program import Collective, Compute, Program
from topologies import build_topology
from topologies.basic import ideal, star
from topologies.fattree import leaf_spine
from topologies.hier import hier

ALPHA, BW, N = 2e-6, 1e9, 3e6
T = ALPHA + N / BW  # one send on `ideal`
NETWORKS = ["analytic", "flow", "step"]


def _send(src: int, dst: int, key: str, nbytes: float = N, algorithm: str = "direct", **kw) -> Collective:
    return Collective("send", (src, dst), nbytes, algorithm, key=key, **kw)


def _ideal(p: int, network: str):
    return make_network(network, ideal(p, bandwidth_Bps=BW, latency_s=ALPHA))


def _rows(res) -> dict[tuple[int, str], dict]:
    """Records of collectives by (rank, key)."""
    df = res.records
    return {(int(r.rank), r.key): r._asdict() for r in df.itertuples(index=False) if r.kind == "collective"}


# ------------------------------------------------------------------------------------------ cost
@pytest.mark.parametrize("network", NETWORKS)
def test_send_on_ideal_is_alpha_plus_n_over_beta(network):
    s = _send(0, 1, "s")
    res = run_program(Program(((s,), (s,))), _ideal(2, network))
    assert res.makespan_s == pytest.approx(ALPHA + N / BW, rel=1e-12)
    assert get_algorithm("send", "direct").cost_s(2, N, ALPHA, BW) == pytest.approx(ALPHA + N / BW, rel=1e-15)
    assert get_algorithm("send", "paper").cost_s(2, N, ALPHA, BW) == pytest.approx(ALPHA + N / BW, rel=1e-15)


@pytest.mark.parametrize("network", ["flow", "step"])
def test_send_over_a_route_pays_its_path_latency(network):
    lat, bw = 1e-6, 12.5e9
    # star: host - switch - host, 2 links
    net = make_network(network, star(4, bandwidth_Bps=bw, latency_s=lat))
    s = _send(0, 3, "s")
    res = run_program(Program(((s,), (), (), (s,))), net)
    assert res.makespan_s == pytest.approx(2 * lat + N / bw, rel=1e-12)
    # 2-level leaf/spine, 4 hosts per leaf: host 0 and host 5 are on different leaves, 4 links apart;
    # hosts 0 and 1 share a leaf, 2 links apart
    G = leaf_spine(8, k=4, bandwidth_Bps=bw, latency_s=lat)
    for dst, hops in ((5, 4), (1, 2)):
        s = _send(0, dst, "s")
        ops = [() for _ in range(8)]
        ops[0] = ops[dst] = (s,)
        res = run_program(Program(tuple(ops)), make_network(network, G))
        assert res.makespan_s == pytest.approx(hops * lat + N / bw, rel=1e-12), dst


# ------------------------------------------------------------------------------------------ semantics
@pytest.mark.parametrize("network", NETWORKS)
def test_late_receiver_does_not_delay_the_sender(network):
    s = _send(0, 1, "s")
    res = run_program(Program(((s,), (Compute(5.0), s))), _ideal(2, network))
    rows = _rows(res)
    snd, rcv = rows[(0, "s")], rows[(1, "s")]
    assert (snd["arrive_s"], snd["start_s"]) == (0.0, 0.0)
    assert snd["end_s"] == pytest.approx(T, rel=1e-12)            # the sender is released at the arrival
    assert (rcv["arrive_s"], rcv["start_s"], rcv["end_s"]) == (5.0, 5.0, 5.0)  # data already there
    assert (snd["bytes_sent"], rcv["bytes_sent"]) == (N, 0.0)


@pytest.mark.parametrize("network", NETWORKS)
def test_early_receiver_waits_for_sender_and_data(network):
    s = _send(0, 1, "s")
    res = run_program(Program(((Compute(2.0), s), (s,))), _ideal(2, network))
    rows = _rows(res)
    snd, rcv = rows[(0, "s")], rows[(1, "s")]
    assert (snd["arrive_s"], snd["start_s"]) == (2.0, 2.0)
    assert snd["end_s"] == pytest.approx(2.0 + T, rel=1e-12)
    # receiver: arrived at 0, the transfer started at 2 (the sender's arrival), data at 2 + T
    assert (rcv["arrive_s"], rcv["start_s"]) == (0.0, 2.0)
    assert rcv["end_s"] == pytest.approx(2.0 + T, rel=1e-12)


@pytest.mark.parametrize("network", NETWORKS)
def test_receiver_arriving_mid_transfer_waits_for_the_rest(network):
    s = _send(0, 1, "s")
    mid = T / 4
    res = run_program(Program(((s,), (Compute(mid), s))), _ideal(2, network))
    rcv = _rows(res)[(1, "s")]
    assert (rcv["arrive_s"], rcv["start_s"]) == (mid, mid)
    assert rcv["end_s"] == pytest.approx(T, rel=1e-12)


@pytest.mark.parametrize("network", ["flow", "step"])
def test_two_sends_into_one_host_share_its_link(network):
    # star: 0 -> 2 and 1 -> 2 both cross host 2's down link: bw/2 each (max-min), so each takes
    # 2 lat + 2n/bw; one alone 2 lat + n/bw
    lat, bw = 1e-6, 1e9
    net = make_network(network, star(3, bandwidth_Bps=bw, latency_s=lat))
    a, b = _send(0, 2, "a"), _send(1, 2, "b")
    res = run_program(Program(((a,), (b,), (a, b))), net)
    rows = _rows(res)
    for key, rank in (("a", 0), ("b", 1)):
        assert rows[(rank, key)]["end_s"] == pytest.approx(2 * lat + 2 * N / bw, rel=1e-12)
    # receiver 2 holds a then b: b's data had arrived when it got to b
    assert rows[(2, "b")]["end_s"] == pytest.approx(2 * lat + 2 * N / bw, rel=1e-12)
    # sends from one host to two others share its up link the same way
    c, d = _send(0, 1, "c"), _send(0, 2, "d", stream="comm")
    res = run_program(Program(((c, d), (c,), (d,))), net)
    assert res.makespan_s == pytest.approx(2 * lat + 2 * N / bw, rel=1e-12)
    # analytic prices each alone
    res = run_program(Program(((a,), (b,), (a, b))), make_network("analytic", star(3, bandwidth_Bps=bw,
                                                                                      latency_s=lat)))
    assert res.makespan_s == pytest.approx(2 * lat + N / bw, rel=1e-12)


def _pipeline(stages: int, micro: int, c_s: float) -> Program:
    """Forward-only pipeline: stage i receives micro-batch j from i-1, computes c_s, sends it to i+1."""
    ops: list[list] = [[] for _ in range(stages)]
    for j in range(micro):
        for i in range(stages):
            if i > 0:
                ops[i].append(_send(i - 1, i, f"mb{j}:{i - 1}->{i}"))
            ops[i].append(Compute(c_s, layer=f"stage{i}", phase="fwd"))
            if i < stages - 1:
                ops[i].append(_send(i, i + 1, f"mb{j}:{i}->{i + 1}"))
    return Program(tuple(tuple(o) for o in ops))


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("micro", [1, 3])
def test_four_stage_pipeline_fill_time(network, micro):
    # S stages, compute c per micro-batch, one send T between stages, the send on the compute stream: each
    # stage's period is c + T (compute, then the send holds the stream until it arrives), so the last
    # stage finishes micro-batch m-1 at (S-1)(c+T) + (m-1)(c+T) + c; m = 1 is the fill, S·c + (S-1)·T
    S, c = 4, 1.0
    res = run_program(_pipeline(S, micro, c), _ideal(S, network))
    assert res.makespan_s == pytest.approx((S - 1 + micro - 1) * (c + T) + c, rel=1e-12)
    if micro == 1:
        assert res.makespan_s == pytest.approx(S * c + (S - 1) * T, rel=1e-12)


@pytest.mark.parametrize("network", NETWORKS)
def test_crossing_sends_do_not_deadlock(network):
    # rank 0 sends to 1 while 1 sends to 0, each before its receive: both transfers start at 0 on their own
    # directed links and arrive at T; each receive then finds its data there
    a, b = _send(0, 1, "a"), _send(1, 0, "b")
    res = run_program(Program(((a, b), (b, a))), _ideal(2, network))
    assert res.makespan_s == pytest.approx(T, rel=1e-12)
    rows = _rows(res)
    assert rows[(0, "b")]["end_s"] == rows[(0, "b")]["start_s"] == rows[(0, "a")]["end_s"]
    # the same program with rendezvous collectives (both members must arrive) does deadlock
    x = Collective("broadcast", (0, 1), N, "tree", key="a")
    y = Collective("broadcast", (1, 0), N, "tree", key="b")
    with pytest.raises(UserError, match="deadlock"):
        run_program(Program(((x, y), (y, x))), _ideal(2, network))


def test_events_per_send_do_not_grow_with_the_chain():
    # k sends back and forth: the events grow by the same amount for each further 10 sends
    def events(k):
        ops: tuple[list, list] = ([], [])
        for j in range(k):
            s = _send(j % 2, 1 - j % 2, f"s{j}")
            ops[0].append(s)
            ops[1].append(s)
        return run_program(Program((tuple(ops[0]), tuple(ops[1]))), _ideal(2, "flow")).events

    e10, e20, e30 = events(10), events(20), events(30)
    assert e30 - e20 == e20 - e10 <= 10 * 6


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(("group", "fragment"), [((0, 1, 2), "3 ranks"), ((0,), "1 ranks")])
def test_send_group_must_be_two_ranks(group, fragment):
    s = Collective("send", group, N, "direct", key="s")
    ops = tuple((s,) if r in group else () for r in range(3))
    with pytest.raises(UserError) as e:
        run_program(Program(ops), _ideal(3, "flow"))
    assert e.value.field == "program.group" and fragment in e.value.problem
    assert "sender, receiver" in e.value.allowed


def test_send_to_itself_and_key_reuse_are_refused():
    s = Collective("send", (1, 1), N, "direct", key="s")
    with pytest.raises(UserError) as e:
        run_program(Program(((), (s,))), _ideal(2, "flow"))
    assert e.value.field == "program.group"
    a, b = _send(0, 1, "k"), _send(1, 0, "k")
    with pytest.raises(UserError) as e:
        run_program(Program(((a,), (b,))), _ideal(2, "flow"))
    assert e.value.field == "program.key"
    with pytest.raises(UserError) as e:  # the sender holds it twice, the receiver never
        run_program(Program(((a, a), ())), _ideal(2, "flow"))
    assert e.value.field == "program.key"


def test_send_algorithm_rejects_larger_groups():
    for name in ("direct", "paper", "nccl"):
        algo = get_algorithm("send", name)
        with pytest.raises(UserError) as e:
            algo.check(3)
        assert e.value.field == "procs"
        assert algo.phases(1, N) == [] and algo.cost_s(1, N, ALPHA, BW) == 0.0


# ------------------------------------------------------------------------------------------ accounting
@pytest.mark.parametrize("network", ["flow", "step"])
def test_link_meter_sees_the_send_on_its_route(network):
    lat, bw = 1e-6, 1e9
    net = make_network(network, star(3, bandwidth_Bps=bw, latency_s=lat))
    meter = LinkMeter(net.router)
    s = _send(2, 0, "s")
    res = run_program(Program(((s,), (), (s,))), net, meter)
    up, down = net.router.link_id(2, "s0"), net.router.link_id("s0", 0)
    expect = np.zeros(len(meter.bytes))
    expect[[up, down]] = N  # n bytes on host 2's up link and host 0's down link, nothing elsewhere
    np.testing.assert_allclose(meter.bytes, expect, rtol=1e-12)
    np.testing.assert_allclose(meter.routed_bytes(), expect[: len(meter.routed_bytes())], rtol=1e-12)
    assert meter.busy_s[up] == pytest.approx(N / bw, rel=1e-9)
    assert res.records["bytes_sent"].tolist() == [0.0, N]  # rank 0 receives, rank 2 sends


def test_critical_path_goes_from_the_waiting_receiver_to_the_sender():
    # rank 0 computes 2 s then sends; rank 1 waits for it at once, then computes 1 s. The path: rank 0's
    # compute [0, 2], rank 1's receive [2, 2 + T] (waiting for straggler rank 0), rank 1's compute
    s = _send(0, 1, "s")
    prog = Program(((Compute(2.0), s), (s, Compute(1.0))))
    res = run_program(prog, _ideal(2, "flow"))
    path = critical_path(res.records, prog.ops)
    assert path["rank"].tolist() == [0, 1, 1]
    assert path["kind"].tolist() == ["compute", "collective", "compute"]
    assert path["waiting_for"].tolist() == ["start", "straggler rank 0", "stream"]
    assert path["duration_s"].tolist() == pytest.approx([2.0, T, 1.0], rel=1e-12)
    assert path["duration_s"].sum() == pytest.approx(res.makespan_s, rel=1e-12)
    # a receiver that arrives late: its own chain, the send costs it nothing
    prog = Program(((s,), (Compute(3.0), s, Compute(1.0))))
    res = run_program(prog, _ideal(2, "flow"))
    path = critical_path(res.records, prog.ops)
    assert path["rank"].tolist() == [1, 1, 1]
    assert path["duration_s"].tolist() == pytest.approx([3.0, 0.0, 1.0], abs=1e-15)


# ------------------------------------------------------------------------------------------ names
def test_the_runs_collectives_map_send_to_an_algorithm_that_runs():
    # a bare ALG applies to the ops that have it; send has direct, paper and the nccl model
    assert parse_collectives("ring")["send"] == "paper"
    assert parse_collectives("rabenseifner")["send"] == "paper"
    assert parse_collectives("paper")["send"] == "paper"
    assert parse_collectives("direct")["send"] == "direct"
    assert parse_collectives("nccl")["send"] == "nccl"
    assert parse_collectives("ring,send=direct")["send"] == "direct"
    for spec in ("ring", "paper", "nccl", "hierarchical", "bruck"):
        alg = parse_collectives(spec)["send"]
        s = _send(0, 1, "s", algorithm=alg)
        assert run_program(Program(((s,), (s,))), _ideal(2, "flow")).makespan_s == pytest.approx(T, rel=1e-12)
    with pytest.raises(UserError) as e:
        get_algorithm("send", "ring")
    assert e.value.field == "algorithm" and "direct" in e.value.allowed


@pytest.mark.parametrize("network", ["flow", "step"])
def test_nccl_send_adds_the_topologys_base_latency(network):
    # 2 nodes × 4 GPUs, one NIC per GPU; nccl.base_latency_us = 5: GPU 0 -> GPU 5 crosses node 0's NIC link
    # and node 1's (2 inter latencies, inter bandwidth); GPU 0 -> GPU 2 stays on the NVSwitch
    intra, inter, lat_in, lat_out, base = 450e9, 50e9, 1e-6, 2e-6, 5e-6
    G = hier(2, 4, intra, inter, lat_in, lat_out, nccl={"base_latency_us": 5.0})
    net = make_network(network, G)
    for dst, path_s, bw in ((5, 2 * lat_out, inter), (2, 2 * lat_in, intra)):
        s = _send(0, dst, "s", algorithm="nccl")
        ops = [() for _ in range(8)]
        ops[0] = ops[dst] = (s,)
        assert run_program(Program(tuple(ops)), net).makespan_s == pytest.approx(path_s + base + N / bw, rel=1e-12)
    # analytic: α (the largest path latency) + base + n / (the smallest host bandwidth)
    s = _send(0, 5, "s", algorithm="nccl")
    ops = [(s,) if r in (0, 5) else () for r in range(8)]
    got = run_program(Program(tuple(ops)), make_network("analytic", G)).makespan_s
    assert got == pytest.approx(2 * lat_out + base + N / inter, rel=1e-12)
    # without a nccl block the nccl send is the direct one
    assert get_algorithm("send", "nccl").cost_s(2, N, ALPHA, BW) == pytest.approx(T, rel=1e-15)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_collective_send(capsys):
    from sim.cli import main

    assert main(["collective", "--op", "send", "--procs", "4", "--bytes", "1MB", "--format", "csv",
                 "--topology", "star:latency=1us,bandwidth=1GB/s"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["op"] == "send" and row["algorithm"] == "paper"
    # rank 0 -> rank 3 over the star: 2 link latencies + n / bw; bus bandwidth = algbw (factor 1)
    assert float(row["time_s"]) == pytest.approx(2e-6 + 1e6 / 1e9, rel=1e-12)
    assert float(row["busbw_Bps"]) == pytest.approx(float(row["algbw_Bps"]), rel=1e-15)
    assert main(["collective", "--op", "send", "--procs", "1", "--bytes", "1MB"]) == 2
    assert "error: procs: a send needs 2 ranks" in capsys.readouterr().err


def test_cli_collective_send_across_dgx_nodes(capsys):
    from sim.cli import main

    # dgx-a100, 16 ranks: rank 0 -> rank 15 crosses from node 0 to node 1 through the fabric
    G = build_topology("dgx-a100", 16)
    net = make_network("flow", G)
    lat = net.router.path_latency_s(0, 15)
    bw = G.graph["fabric"]
    assert main(["collective", "--op", "send", "--procs", "16", "--bytes", "64MiB", "--topology", "dgx-a100",
                 "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    inter = dict(bw)["inter_Bps"]
    assert float(row["time_s"]) == pytest.approx(lat + 64 * 2**20 / inter, rel=1e-12)
