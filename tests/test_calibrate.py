"""``dnnsim calibrate nccl`` (issue 10, item 5): parse nccl-tests output, fit α per call and the bus
bandwidth per link class, write a topology that reproduces the fit.

The real tables in tests/data/nccl-tests are published outputs (SOURCES.md there names each one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.calibrate.fit import fit_tables
from sim.calibrate.nccltests import parse_text, read_files
from sim.cli import main
from sim.errors import UserError

DATA = Path(__file__).parent / "data" / "nccl-tests"
A3MEGA = DATA / "h100-a3mega-2x8-all_reduce.txt"
MI_AG, MI_AR = DATA / "mi250x-4x8-all_gather.txt", DATA / "mi250x-4x8-all_reduce.txt"


def _dnnsim_table(capsys, procs: int, latency: str, bandwidth: str, topology: str | None = None) -> str:
    topo = topology or f"ideal:latency={latency},bandwidth={bandwidth}"
    assert main(["collective", "--op", "allreduce", "--algorithm", "ring", "--procs", str(procs),
                 "--bytes", "1KiB:1GiB:x4", "--topology", topo, "--network", "flow"]) == 0
    return capsys.readouterr().out


# ------------------------------------------------------------------------------------------ round trip
def test_round_trip_recovers_known_parameters(tmp_path, capsys):
    # ring all-reduce on `ideal` (every pair linked, latency L, bandwidth BW): 2(n-1) steps of
    # L + S/(n BW), so α per call = 2(n-1) L and busbw = BW
    n, L, BW = 8, 5e-6, 100e9
    text = _dnnsim_table(capsys, n, "5us", "100GB/s")
    path = tmp_path / "dnnsim.txt"
    path.write_text(text)
    (table,) = read_files([path])
    assert (table.op, table.ranks, table.hosts, len(table.rows)) == ("allreduce", n, None, 11)
    fits, residuals = fit_tables([table], default_class="intra")
    fit = fits["intra"]
    # the file prints 4-5 significant digits, so the parameters come back to about 1e-4
    assert fit.alpha_s == pytest.approx(2 * (n - 1) * L, rel=1e-3)
    assert fit.bus_Bps == pytest.approx(BW, rel=1e-3)
    assert max(abs(r.rel_error) for r in residuals) < 1e-3

    # the written topology gives back the measured times under dnnsim's own ring
    out = tmp_path / "topo.yaml"
    assert main(["calibrate", "nccl", str(path), "-o", str(out), "--link-class", "intra", "--format", "csv"]) == 0
    capsys.readouterr()
    again = parse_text(_dnnsim_table(capsys, n, "", "", topology=str(out)), "again")[0]
    for before, after in zip(table.rows, again.rows, strict=True):
        assert after.time_s == pytest.approx(before.time_s, rel=2e-3)
    written = yaml.safe_load(out.read_text())
    assert written["nccl"]["base_latency_us"]["intra"] == pytest.approx(70.0, rel=1e-3)
    assert written["nccl"]["bus_bandwidth_GBps"]["intra"] == pytest.approx(100.0, rel=1e-3)


def test_round_trip_with_reference_gives_efficiency(tmp_path, capsys):
    path = tmp_path / "dnnsim.txt"
    path.write_text(_dnnsim_table(capsys, 8, "5us", "100GB/s"))
    out = tmp_path / "topo.yaml"
    assert main(["calibrate", "nccl", str(path), "-o", str(out), "--link-class", "intra",
                 "--intra-bandwidth", "125GB/s"]) == 0
    # efficiency = fitted bus bandwidth / reference = 100 / 125
    assert yaml.safe_load(out.read_text())["nccl"]["bus_efficiency"]["intra"] == pytest.approx(0.8, rel=1e-3)


# ------------------------------------------------------------------------------------------ real tables
def test_parse_published_multinode_table():
    (table,) = read_files([A3MEGA])
    assert (table.op, table.ranks, table.hosts) == ("allreduce", 16, 2)
    assert len(table.rows) == 31  # 8 B .. 8 GiB by x2
    last = table.rows[-1]
    # the file's last row: 8589934592 B, 47535 us, algbw 180.71, busbw 338.82 GB/s
    assert (last.size_bytes, last.time_s, last.algbw_Bps, last.busbw_Bps) == (8589934592, 0.047535, 180.71e9,
                                                                              338.82e9)
    # nccl-tests' busbw = algbw x 2(n-1)/n with n = 16 (doc/PERFORMANCE.md), up to the 2-decimal printing:
    # ±0.005 on busbw plus ±0.005 x 1.875 carried from algbw
    for row in table.rows:
        assert row.busbw_Bps == pytest.approx(row.algbw_Bps * 2 * 15 / 16, abs=0.0144e9)


def test_rank_tags_and_ranks_from_bus_factor():
    # ROCm/rccl#1490 lists no devices: n from busbw/algbw (all-gather (n-1)/n, all-reduce 2(n-1)/n);
    # the srun line runs 4 nodes x 8 tasks = 32 ranks
    ag, ar = read_files([MI_AG, MI_AR])
    assert (ag.op, ag.ranks, ag.hosts, len(ag.rows)) == ("allgather", 32, None, 17)
    assert (ar.op, ar.ranks, len(ar.rows)) == ("allreduce", 32, 17)
    assert ar.rows[0].size_bytes == 65536 and ar.rows[0].time_s == pytest.approx(78.91e-6)


def test_fit_published_table_and_print_residuals(tmp_path, capsys):
    out = tmp_path / "a3mega.yaml"
    assert main(["calibrate", "nccl", str(A3MEGA), "-o", str(out), "--min-bytes", "64MiB",
                 "--reference", "dgx-h100", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,op,ranks,class,bytes,measured_s,fitted_s,error_pct"
    assert len(lines) == 1 + 8  # 64 MiB .. 8 GiB
    (table,) = read_files([A3MEGA])
    fits, residuals = fit_tables([table], min_bytes=64 * 2**20)
    fit = fits["inter"]
    for r in residuals:  # each residual is the model's own formula: α + S 2(n-1)/n / busbw
        assert r.fitted_s == pytest.approx(fit.alpha_s + r.size_bytes * 2 * 15 / 16 / fit.bus_Bps, rel=1e-12)
    # above 64 MiB the α + S/B line holds to about 1 % on this published table
    assert fit.rms_rel_error < 0.02
    # the asymptotic bus bandwidth lies just above the largest size's published busbw (338.82 GB/s),
    # since that row still pays α
    assert 338.82e9 <= fit.bus_Bps <= 338.82e9 * 1.05
    written = yaml.safe_load(out.read_text())
    # dgx-h100's reference for the inter class: 8 NICs x 400 Gbit/s = 400 GB/s
    assert written["nccl"]["reference_bandwidth_GBps"]["inter"] == 400.0
    assert written["nccl"]["bus_efficiency"]["inter"] == pytest.approx(fit.bus_Bps / 400e9, abs=1e-4)


def test_whole_range_fit_prints_large_residuals(capsys, tmp_path):
    # 8 B .. 8 GiB: one α + S/B line cannot follow NCCL's protocol switches; the residuals say so
    assert main(["calibrate", "nccl", str(A3MEGA), "-o", str(tmp_path / "t.yaml")]) == 0
    out = capsys.readouterr().out
    assert "rms_error_pct" in out and "error_pct" in out


# ------------------------------------------------------------------------------------------ bad input
def _cli_error(tmp_path, capsys, text: str, *extra: str) -> str:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    assert main(["calibrate", "nccl", str(path), "-o", str(tmp_path / "t.yaml"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "t.yaml").exists()
    return err


def test_truncated_file(tmp_path, capsys):
    text = A3MEGA.read_text()
    cut = text[: text.index("   268435456      67108864") + 30]  # mid-row
    assert "fields" in _cli_error(tmp_path, capsys, cut)


def test_missing_avg_line(tmp_path, capsys):
    text = A3MEGA.read_text()
    head = text[: text.index("# Out of bounds")]
    assert "Avg bus bandwidth" in _cli_error(tmp_path, capsys, head)


def test_malformed_number_and_no_table(tmp_path, capsys):
    text = A3MEGA.read_text().replace("    135.8    0.00", "    13x.8    0.00", 1)
    assert "not a number" in _cli_error(tmp_path, capsys, text)
    assert "no nccl-tests table" in _cli_error(tmp_path, capsys, "hello\n")
    header_only = A3MEGA.read_text().split("           8             2")[0] + "# Avg bus bandwidth    : 0\n"
    assert "no data rows" in _cli_error(tmp_path, capsys, header_only)


def test_unknown_class_and_missing_file(tmp_path, capsys):
    err = _cli_error(tmp_path, capsys, MI_AR.read_text())  # no device lines, no --link-class
    assert err.startswith("error: link-class:")
    assert main(["calibrate", "nccl", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "t.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: file:")


def test_parse_text_errors_are_user_errors():
    with pytest.raises(UserError):
        parse_text("#  size  count  type  redop  root  time  algbw  busbw #wrong\n  8 2 float sum -1 1.0 0 0 0\n")
