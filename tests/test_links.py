"""Link utilisation: bytes per directed link equal bytes × route, busy time and utilisation by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.engine import run_program
from sim.engine.collective import collective_groups, collective_program
from sim.network import make_network
from sim.network.linkmeter import LinkMeter
from topologies import build_topology


def _measure(spec: str, procs: int, op: str, alg: str, nbytes: float, grid=None, along=None, network="flow"):
    net = make_network(network, build_topology(spec, procs))
    meter = LinkMeter(net.router, series=True)
    res = run_program(collective_program(op, alg, collective_groups(procs, grid, along), nbytes, procs), net, meter)
    return net, meter, res


@pytest.mark.parametrize("network", ["flow", "step"])
def test_ring_allgather_on_a_star_by_hand(network):
    # p = 4 hosts on a star, 1 GB/s and 1 µs links: each rank sends p-1 chunks of n/p up its link, and each
    # chunk comes down the receiver's link (every route is 2 links): (p-1)/p·n on every link, each way
    p, n, bw, lat = 4, 4e6, 1e9, 1e-6
    net, meter, res = _measure(f"star:bandwidth={bw},latency={lat}", p, "allgather", "ring", n, network=network)
    table = meter.table(res.makespan_s)
    assert len(table) == 2 * p
    np.testing.assert_allclose(table["bytes"], (p - 1) / p * n, rtol=1e-12)
    assert meter.bytes.sum() == pytest.approx(2 * p * (p - 1) / p * n, rel=1e-12)  # bytes × route length
    # uncontended: each link sends at full rate for (p-1)·(n/p)/bw in all; time = (p-1)(2 lat + n/(p bw))
    np.testing.assert_allclose(table["busy_s"], (p - 1) * n / p / bw, rtol=1e-9)
    np.testing.assert_allclose(table["peak_util"], 1.0, rtol=1e-12)
    t = (p - 1) * (2 * lat + n / (p * bw))
    assert res.makespan_s == pytest.approx(t, rel=1e-12)
    np.testing.assert_allclose(table["mean_util"], (p - 1) / p * n / (bw * t), rtol=1e-9)
    assert set(table["top_collectives"]) == {"allgather:0 (100%)"}


def test_two_groups_share_the_core_and_both_are_named():
    # 2:1 leaf/spine, k = 4: two 4-rank groups strided over both leaves cross the spines together
    net, meter, res = _measure("fattree:k=4,oversubscription=2,bandwidth=1GB/s,latency=1us", 8, "allreduce",
                               "ring", 4e6, grid="2x4", along="pc")
    # the fluid integral of the loads and the collectives' routed phases are independent: equal per link
    np.testing.assert_allclose(meter.bytes[: len(meter.routed_bytes())], meter.routed_bytes(), rtol=1e-9,
                               atol=1e-3)
    # total = Σ over transfers of bytes × route length (hops), from the routes themselves
    total = 0.0
    for g, members in enumerate(collective_groups(8, "2x4", "pc")):
        links, nbytes = net.link_bytes("allreduce", "ring", members, 4e6)
        total += nbytes.sum()
        assert f"allreduce:{g}" in " ".join(meter.table(res.makespan_s)["top_collectives"])
    assert meter.bytes.sum() == pytest.approx(total, rel=1e-9)


def test_series_steps_between_busy_and_idle():
    net, meter, res = _measure("star:bandwidth=1GB/s,latency=100us", 2, "allreduce", "ring", 2e6)
    (link,) = [int(k) for k in meter.table(res.makespan_s, top=1)["link"]]
    points = meter.series([link])[link]
    # ring all-reduce on 2 ranks: 2 steps of 1 MB at 1 GB/s each followed by 2 × 100 µs of latency
    assert [u for _, u in points] == [1.0, 0.0, 1.0, 0.0]
    times = [t for t, _ in points]
    assert times == pytest.approx([0.0, 1e-3, 1.2e-3, 2.2e-3], rel=1e-9)


def test_run_links_trace_counters_and_out_files(tmp_path):
    from sim.api import simulate

    cfg = {"model": "alexnet", "batch": 64, "procs": 8, "strategy": "integrated", "grid": "2x4",
           "network": "flow", "topology": "fattree:k=4,oversubscription=2", "compute": "paper-knl"}
    r = simulate(cfg, links=True)
    links = r.links()
    # every byte a rank sends crosses each link of its route once: Σ link bytes ≥ Σ bytes sent (≥ 2 hops)
    sent = float(r.records.loc[r.records["kind"] == "collective", "bytes_sent"].sum())
    assert links["bytes"].sum() >= 2 * sent * (1 - 1e-9)
    counters = [e for e in r.trace()["traceEvents"] if e["ph"] == "C"]
    assert counters and {e["name"] for e in counters} <= {f"link {s}->{d}" for s, d in zip(links["src"], links["dst"],
                                                                                          strict=True)}
    assert all(0.0 <= e["args"]["utilisation"] <= 1.0 + 1e-9 for e in counters)
    r.to_csv(tmp_path / "out")
    assert (tmp_path / "out" / "links.csv").read_text().splitlines()[0].startswith("link,src,dst")
    json.loads((tmp_path / "out" / "trace.json").read_text())
    import pandas as pd

    path = pd.read_csv(tmp_path / "out" / "critical_path.csv")
    assert path["duration_s"].sum() == pytest.approx(r.iteration_s, rel=1e-12)


def test_links_on_analytic_is_one_line_exit_2(capsys):
    from sim.cli import main

    assert main(["collective", "--op", "allreduce", "--procs", "4", "--bytes", "1MB", "--network", "analytic",
                 "--links"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: links:") and err.count("\n") == 1
    assert main(["run", "--procs", "4", "--links", "--format", "json"]) == 2
    assert "error: links:" in capsys.readouterr().err


def test_cli_prints_the_busiest_links(capsys):
    from sim.cli import main

    assert main(["collective", "--op", "allgather", "--algorithm", "ring", "--procs", "4", "--bytes", "4MB",
                 "--topology", "star:bandwidth=1GB/s", "--links", "3"]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("busiest links"):].splitlines()
    assert tail[1].split()[:3] == ["src", "dst", "bytes"] and len(tail) == 2 + 3


def test_show_topology_colours_links_by_a_runs_load(tmp_path, capsys):
    from sim.cli import main
    from topologies import build_topology
    from topologies.draw import read_link_load

    spec = "fattree:k=4,oversubscription=2"
    assert main(["run", "--network", "flow", "--topology", spec, "--procs", "8", "--strategy", "integrated",
                 "--grid", "2x4", "--out", str(tmp_path / "run")]) == 0
    load = read_link_load(tmp_path / "run" / "links.csv")
    names = {str(v) for v in build_topology(spec, 8).nodes}
    assert load and all(u in names and v in names and 0.0 < x <= 1.0 for (u, v), x in load.items())
    png = tmp_path / "load.png"
    assert main(["show-topology", spec, "--procs", "8", "--draw", str(png), "--load",
                 str(tmp_path / "run" / "links.csv")]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    # a links.csv of another topology names links this one does not have
    assert main(["show-topology", "ring", "--procs", "8", "--draw", str(png), "--load",
                 str(tmp_path / "run" / "links.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: load: link ")
    assert main(["show-topology", spec, "--load", str(tmp_path / "run" / "links.csv")]) == 2


def test_nccl_links_carry_the_timed_bytes_and_ranks_report_the_data():
    """2 DGX A100 nodes, a 1 GiB all-reduce under ``nccl`` (ring/Simple, NICs of efficiency 0.9): the fluid
    integral of the loads equals the routed phases' bytes, which the model times as data / 0.9 on NICs, while
    each rank's ``bytes_sent`` is the ring's data, 2(p−1)/p · n (docs/nccl.md)."""
    net, meter, res = _measure("dgx-a100", 16, "allreduce", "nccl", 2**30)
    np.testing.assert_allclose(meter.bytes[: len(meter.routed_bytes())], meter.routed_bytes(), rtol=1e-9,
                               atol=1e-3)
    sent = net.bytes_sent("allreduce", "nccl", tuple(range(16)), 2**30)
    np.testing.assert_allclose(sent, 2 * 15 / 16 * 2**30, rtol=1e-12)
