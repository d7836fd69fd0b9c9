"""``dnnsim collective``: fields, sizes, formats, grids and every error path (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.cli.collective_cmd import FIELDS, parse_sizes
from sim.errors import UserError

BASE = ["collective", "--op", "allreduce", "--algorithm", "ring", "--procs", "8"]


def run_json(capsys, argv: list[str]):
    code = main(argv + ["--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_one_size_json_fields_and_formula(capsys):
    row = run_json(capsys, BASE + ["--bytes", "64MiB", "--topology", "ideal:latency=2us,bandwidth=1GB/s"])
    assert list(row) == FIELDS
    n, p, a, bw = 64 * 2**20, 8, 2e-6, 1e9
    t = 2 * (p - 1) * (a + n / (p * bw))  # ring all-reduce
    assert row["time_s"] == pytest.approx(t, rel=1e-12)
    assert row["algbw_Bps"] == pytest.approx(n / t, rel=1e-12)
    assert row["busbw_Bps"] == pytest.approx(n / t * 2 * (p - 1) / p, rel=1e-12)  # nccl-tests: 2(p−1)/p
    assert (row["op"], row["algorithm"], row["procs"], row["network"]) == ("allreduce", "ring", 8, "flow")
    assert row["topology"] == "ideal:latency=2us,bandwidth=1GB/s"
    # sim/engine.py's accounting: a start and an end event per rank and one shared release, then the
    # network's own events (the flow model's rate changes) on top
    assert row["events"] >= 2 * p + 1


def test_defaults_are_paper_algorithm_flow_and_the_papers_network(capsys):
    row = run_json(capsys, ["collective", "--op", "allgather", "--procs", "4", "--bytes", "1MiB"])
    assert row["algorithm"] == "paper" and row["network"] == "flow"
    assert row["topology"] == "ideal:latency=2us,bandwidth=6GiB/s"


def test_size_range_gives_one_row_per_size(capsys):
    rows = run_json(capsys, BASE + ["--bytes", "1KiB:1MiB:x4", "--network", "analytic"])
    assert [r["bytes"] for r in rows] == [1024.0 * 4**k for k in range(6)]
    assert all(b["time_s"] > a["time_s"] for a, b in zip(rows, rows[1:], strict=False))


def test_csv_and_table_formats(capsys):
    assert main(BASE + ["--bytes", "1KiB,2KiB", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ",".join(FIELDS) and len(lines) == 3


def test_table_is_printed_as_nccl_tests_prints_it(capsys):
    # 8-rank ring all-reduce on ideal links: t = 2(p-1)(α + n/(p·bw)); nccl-tests' columns: size (B), count
    # (fp32 elements of the vector), type, redop, root, time (µs), algbw and busbw (GB/s), #wrong
    sizes = [2**20, 2**27]
    assert main(BASE + ["--bytes", "1MiB,128MiB", "--topology", "ideal:latency=2us,bandwidth=1GB/s"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["#", "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong"]
    data = [line.split() for line in lines if not line.startswith("#")]
    p, a, bw = 8, 2e-6, 1e9
    for fields, n in zip(data, sizes, strict=True):
        t = 2 * (p - 1) * (a + n / (p * bw))
        assert fields[:5] == [str(n), str(n // 4), "float", "sum", "-1"]
        assert float(fields[5]) == pytest.approx(t * 1e6, abs=0.5)
        assert float(fields[6]) == pytest.approx(n / t / 1e9, abs=0.005)
        assert float(fields[7]) == pytest.approx(n / t / 1e9 * 2 * (p - 1) / p, abs=0.005)
        assert fields[8] == "N/A"
    avg = [line for line in lines if line.startswith("# Avg bus bandwidth")][0]
    expected = sum(n / (2 * (p - 1) * (a + n / (p * bw))) * 2 * (p - 1) / p for n in sizes) / 2 / 1e9
    assert float(avg.split(":")[1]) == pytest.approx(expected, rel=1e-5)


def test_nccl_count_is_the_per_rank_buffer_for_gather_and_scatter(capsys):
    # nccl-tests all_gather/reduce_scatter print count = elements per rank: 1 MiB over 4 ranks -> 65536
    assert main(["collective", "--op", "reduce_scatter", "--algorithm", "ring", "--procs", "4",
                 "--bytes", "1MiB"]) == 0
    data = [line.split() for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert data[0][:5] == ["1048576", "65536", "float", "sum", "-1"]


def test_grid_runs_every_group_at_once(capsys):
    spec = "fattree:k=4,oversubscription=2,bandwidth=1GB/s,latency=1us"
    row = run_json(capsys, ["collective", "--op", "allgather", "--algorithm", "ring", "--procs", "8", "--bytes", "4MB",
                            "--topology", spec, "--grid", "2x4", "--along", "pr", "--placement", "col-major"])
    # 4 two-rank groups, each across the 2:1 core (see test_engine): 4 hops of 1 µs + (n/2)/(bw/2)
    assert row["time_s"] == pytest.approx(4e-6 + 2e6 / 0.5e9, rel=1e-9)


def test_parse_sizes():
    assert parse_sizes("1MiB:4MiB:+1MiB") == [2**20 * k for k in (1, 2, 3, 4)]
    assert parse_sizes("1KiB:3KiB:x2") == [1024.0, 2048.0]
    assert parse_sizes("100") == [100.0]
    for bad in ("0", "-1KiB", "1KiB:1MiB", "1KiB:1MiB:x1", "1MiB:1KiB:x2", "1KiB:1MiB:/2", "1KiB:1GiB:+1B",
                "1KiB:1MiB:xz", "lots"):
        with pytest.raises(UserError):
            parse_sizes(bad)


@pytest.mark.parametrize("argv, field", [
    (BASE + ["--bytes", "1MiB", "--topology", "fattree:k=2"], "procs"),  # 8 ranks on 2 hosts
    (BASE + ["--bytes", "0"], "bytes"),
    (BASE + ["--bytes", "-5"], "bytes"),
    (["collective", "--op", "allsum", "--procs", "4", "--bytes", "1MiB"], "op"),
    (BASE[:4] + ["qsort"] + BASE[5:] + ["--bytes", "1MiB"], "algorithm"),
    (BASE + ["--bytes", "1MiB", "--network", "packet"], "network"),
    (["collective", "--op", "allgather", "--algorithm", "recursive_doubling", "--procs", "6", "--bytes", "1MiB"],
     "procs"),  # power-of-two algorithm on 6 ranks
    (BASE + ["--bytes", "1MiB", "--grid", "3x3", "--along", "pr"], "grid"),
    (BASE + ["--bytes", "1MiB", "--grid", "2x4", "--along", "diagonal"], "along"),
    (BASE + ["--bytes", "1MiB", "--grid", "2x4", "--placement", "spiral"], "placement"),
    (BASE + ["--bytes", "1MiB", "--procs", "0"], "procs"),
    (BASE + ["--bytes", "1MiB", "--topology", "moebius"], "topology"),
    (BASE + ["--bytes", "1MiB", "--along", "pc"], "along"),  # --along without --grid
])
def test_errors_exit_2_with_one_line(capsys, argv, field):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}") and err.count("\n") == 1, err


def test_disconnected_topology(tmp_path, capsys):
    path = tmp_path / "split.yaml"
    path.write_text("hosts: [h0, h1, h2, h3]\nswitches: [s0, s1]\ndefaults: {bandwidth: 1GB/s, latency: 1us}\n"
                    "edges: [[h0, s0], [h1, s0], [h2, s1], [h3, s1]]\n")
    code = main(["collective", "--op", "allreduce", "--algorithm", "ring", "--procs", "4", "--bytes", "1MiB",
                 "--topology", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: topology") and "disconnected" in err


def test_disconnected_graph_in_python():
    import networkx as nx

    from sim.engine import simulate_collective

    G = nx.Graph(hosts=(0, 1, 2, 3))
    for h in range(4):
        G.add_node(h, kind="host")
    G.add_edge(0, 1, bandwidth_Bps=1e9, latency_s=1e-6)
    G.add_edge(2, 3, bandwidth_Bps=1e9, latency_s=1e-6)
    with pytest.raises(UserError, match="disconnected"):
        simulate_collective("allreduce", "ring", 4, 1e6, G, "flow")
