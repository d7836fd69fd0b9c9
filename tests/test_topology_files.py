"""Topology files (YAML, GraphML), presets and topology_stats."""

from __future__ import annotations

import math

import networkx as nx
import pytest

from sim.errors import UserError
from topologies import Router, build_topology, from_file, list_presets, load_preset, topology_stats
from topologies.stats import bisection_Bps, diameter_hops

YAML_OK = """
name: two-switches
defaults: {bandwidth: 100Gbit/s, latency: 1us}
hosts: [h0, h1, h2, h3]
switches: [s0, s1]
edges:
  - [h0, s0]
  - [h1, s0]
  - {u: h2, v: s1, bandwidth: 50GB/s, latency: 500ns}
  - [h3, s1]
  - [s0, s1, 200Gbit/s, 2us]
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_file(tmp_path):
    G = build_topology(str(_write(tmp_path, "t.yaml", YAML_OK)), n_hosts=4)
    assert G.graph["hosts"] == ("h0", "h1", "h2", "h3") and G.graph["routing"] == "shortest"
    assert G.edges["h0", "s0"]["bandwidth_Bps"] == 100e9 / 8
    assert G.edges["h2", "s1"] == pytest.approx({"bandwidth_Bps": 50e9, "latency_s": 500e-9})
    r = Router(G)
    assert r.path_latency_s(0, 3) == pytest.approx(1e-6 + 2e-6 + 1e-6)
    # computed α: the largest host-to-host path latency (h0/h1 <-> h3 through both switches)
    assert r.alpha_s == pytest.approx(max(r.path_latency_s(s, d) for s in range(4) for d in range(4)))
    assert r.bandwidth_Bps == 100e9 / 8  # smallest host link: 100 Gbit/s of h0, h1, h3
    s = topology_stats(G)
    assert (s["hosts"], s["switches"], s["links"], s["diameter_hops"]) == (4, 2, 5, 3)
    # first half {h0, h1} vs {h2, h3}: the s0-s1 link is the cut
    assert s["bisection_Bps"] == pytest.approx(200e9 / 8)


def test_graphml_file(tmp_path):
    G = nx.Graph()
    for h in range(4):
        G.add_node(f"h{h}", kind="host")
        G.add_edge(f"h{h}", "sw", bandwidth="10GB/s", latency="1us")
    G.add_node("sw", kind="switch")
    path = tmp_path / "t.graphml"
    nx.write_graphml(G, path)
    H = from_file(path)
    assert H.graph["hosts"] == ("h0", "h1", "h2", "h3")
    assert topology_stats(H)["bisection_Bps"] == 2 * 10e9
    assert Router(H).alpha_s == pytest.approx(2e-6)


@pytest.mark.parametrize(("text", "match"), [
    ("hosts: [a, b]\nswitches: [s]\nedges: [[a, s]]\ndefaults: {bandwidth: 1GB/s, latency: 1us}\n", "disconnected"),
    ("switches: [s]\nedges: []\n", "no hosts"),
    ("hosts: [a, b]\nedges: [[a, b]]\ndefaults: {latency: 1us}\n", "no bandwidth"),
    ("hosts: [a, b]\nedges: [[a, b, 1GB/s]]\n", "no latency"),
    ("hosts: [a, b]\nedges: [[a, b, 0GB/s, 1us]]\n", "bandwidth"),
    ("hosts: [a, b]\nedges: [[a, b, 1GB/s, -1us]]\n", "latency"),
    ("hosts: [a, b]\nedges: [[a, c, 1GB/s, 1us]]\n", "unknown node"),
    ("hosts: [a, b]\nedges: [[a, b, 1GB/s, 1us], [b, a, 1GB/s, 1us]]\n", "twice"),
    ("nodes: [{name: a, kind: gpu}]\n", "kind"),
    ("hosts: [a\n", "malformed YAML"),
    ("- just a list\n", "mapping"),
])
def test_bad_yaml_files(tmp_path, text, match):
    with pytest.raises(UserError, match=match):
        build_topology(str(_write(tmp_path, "bad.yaml", text)))


def test_missing_file_and_directed_graphml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        build_topology(str(tmp_path / "nope.yml"))
    D = nx.DiGraph()
    D.add_edge("a", "b")
    nx.write_graphml(D, tmp_path / "d.graphml")
    with pytest.raises(UserError, match="directed"):
        from_file(tmp_path / "d.graphml")


def test_file_with_too_few_hosts_names_procs(tmp_path):
    with pytest.raises(UserError) as exc:
        build_topology(str(_write(tmp_path, "t.yml", YAML_OK)), n_hosts=5)
    assert exc.value.field == "procs"


def test_presets_have_sources_and_build():
    names = list_presets()
    assert {"cori-knl", "dgx-h100", "dgx-a100"} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert set(preset["params"]) <= set(preset["sources"])  # every number has a source (or says assumption)
        G = build_topology(name, n_hosts=16)
        assert G.graph["hosts"] == tuple(range(16)) and G.graph["preset"] == name  # exactly the hosts asked for


def test_cori_preset_is_the_papers_alpha_beta():
    r = Router(build_topology("cori-knl", n_hosts=8))
    assert r.alpha_s == 2e-6 and r.bandwidth_Bps == 6 * 2**30  # Gholami et al. 2018: α = 2 µs, 1/β = 6 GiB/s


def test_dgx_h100_preset_numbers():
    G = build_topology("dgx-h100:nodes=2")
    assert G.graph["gpus_per_node"] == 8 and len(G.graph["hosts"]) == 16
    assert G.edges[0, "nvs0"]["bandwidth_Bps"] == 450e9          # 900 GB/s bidirectional NVLink4 per GPU
    assert G.edges[0, "fabric"]["bandwidth_Bps"] == 400e9 / 8    # one 400 Gbit/s ConnectX-7 per GPU


@pytest.mark.parametrize("spec", ["star", "fattree:k=4", "ring", "torus:dims=4x4", "dragonfly:p=1,a=2,h=1",
                                  "fattree:levels=2,k=4,oversubscription=2", "hier:nodes=2,gpus_per_node=4"])
def test_closed_form_stats_match_computed(spec):
    G = build_topology(spec)
    closed_d, closed_b = G.graph.pop("diameter_hops"), G.graph.pop("bisection_Bps", None)
    G.graph.pop("alpha_s")
    r = Router(G)
    routed = max(len(r.route(s, d)) for s in range(len(G.graph["hosts"])) for d in range(len(G.graph["hosts"])))
    assert closed_d == routed
    if G.graph["routing"] in ("dmodk", "hier") or G.graph["kind"] == "star":
        assert diameter_hops(G) == closed_d
    if closed_b is not None:  # dragonfly has no closed form: computed only
        assert bisection_Bps(G) == pytest.approx(closed_b)


def test_full_mesh_stats():
    s = topology_stats(build_topology("ideal", n_hosts=4096))
    assert s["links"] == 4096 * 4095 // 2 and s["diameter_hops"] == 1 and s["switches"] == 0


def test_stats_of_one_host():
    s = topology_stats(build_topology("star", n_hosts=1))
    assert s["diameter_hops"] == 0 and s["bisection_Bps"] == 0
    assert not math.isnan(s["bisection_Bps"])
