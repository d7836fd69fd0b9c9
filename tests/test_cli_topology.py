"""``dnnsim topologies`` and ``dnnsim show-topology``: output fields, sizes, drawing, error exits."""

from __future__ import annotations

import json

import pytest

from sim.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_show_fattree_k4(capsys):
    out = _json(capsys, ["show-topology", "fattree:k=4", "--format", "json"])
    # k-ary fat-tree: k^3/4 hosts, 5k^2/4 switches, 3k^3/4 links, with k = 4
    assert (out["hosts"], out["switches"], out["links"]) == (16, 20, 48)
    assert out["diameter_hops"] == 6
    assert out["bisection_Bps"] == 16 / 2 * 6 * 2**30


def test_show_torus_4x4x4(capsys):
    out = _json(capsys, ["show-topology", "torus:dims=4x4x4", "--format", "json"])
    assert (out["hosts"], out["switches"], out["links"]) == (64, 0, 3 * 64)


def test_show_fits_procs_and_table(capsys):
    assert main(["show-topology", "star", "--procs", "12"]) == 0
    text = capsys.readouterr().out
    assert "hosts" in text.splitlines()[0] and "bisection_Bps" in text.splitlines()[0]
    out = _json(capsys, ["show-topology", "star", "--procs", "12", "--format", "json"])
    assert out["hosts"] == 12 and out["links"] == 12


def test_show_csv(capsys):
    assert main(["show-topology", "ring", "--procs", "6", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split(",")[:7] == ["topology", "kind", "hosts", "switches", "links", "diameter_hops",
                                     "bisection_Bps"]
    assert row.split(",")[2:6] == ["6", "0", "6", "3"]


def test_topologies_lists_kinds_and_presets(capsys):
    rows = _json(capsys, ["topologies", "--format", "json"])
    names = [r["name"] for r in rows]
    assert {"ideal", "star", "ring", "torus", "fattree", "dragonfly", "hier", "cori-knl", "dgx-h100"} <= set(names)
    assert all(r["keys"] for r in rows)


@pytest.mark.parametrize("spec", ["fattree:k=4", "torus:dims=3x3", "ideal", "hier:nodes=2,gpus_per_node=4"])
def test_draw_writes_png(tmp_path, capsys, spec):
    png = tmp_path / "t.png"
    assert main(["show-topology", spec, "--procs", "8", "--draw", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]  # no temporary file left behind


@pytest.mark.parametrize(("argv", "start"), [
    (["show-topology", "fattree:k=4", "--procs", "17"], "error: procs:"),
    (["show-topology", "nosuch"], "error: topology:"),
    (["show-topology", "star:foo=1"], "error: topology.foo:"),
    (["show-topology", "star:bandwidth=fast"], "error: topology.bandwidth:"),
    (["show-topology", "torus:dims=4xx4"], "error: topology.dims:"),
    (["show-topology", "dragonfly:p=0"], "error: topology.p:"),
    (["show-topology", "star", "--draw", "out.gif"], "error: draw:"),
    (["show-topology", "/no/such/file.yaml"], "error: topology:"),
    (["show-topology", "star", "--procs", "x"], "error: "),
])
def test_errors_exit_2_with_one_line(capsys, argv, start):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1


def test_failed_draw_leaves_existing_file(tmp_path, capsys):
    png = tmp_path / "keep.png"
    png.write_bytes(b"old")
    assert main(["show-topology", "fattree:k=4", "--procs", "99", "--draw", str(png)]) == 2
    assert png.read_bytes() == b"old"
