"""Spec strings: kinds, keys, units, defaults, sizing to procs, and every error path."""

from __future__ import annotations

import pytest

from sim.errors import UserError
from topologies import build_topology, describe_kinds
from topologies.spec import balanced_dims, parse_spec


def test_contract_examples_ideal_star():
    G = build_topology("ideal:latency=2us,bandwidth=6GiB/s", n_hosts=8)
    assert G.graph["full_mesh"] == {"bandwidth_Bps": 6 * 2**30, "latency_s": 2e-6}
    assert len(G.graph["hosts"]) == 8
    G = build_topology("star:bandwidth=100Gbit/s,latency=1us", n_hosts=4)
    assert G.edges[0, "s0"]["bandwidth_Bps"] == 100e9 / 8 and G.edges[0, "s0"]["latency_s"] == 1e-6


def test_defaults_are_the_papers_cori_numbers():
    G = build_topology("ideal")
    assert G.graph["full_mesh"] == {"bandwidth_Bps": 6 * 2**30, "latency_s": 2e-6}
    assert len(G.graph["hosts"]) == 16


def test_fattree_spec_mapping():
    G = build_topology("fattree:k=4")
    assert G.graph["fattree"]["levels"] == 3 and len(G.graph["hosts"]) == 16
    # oversubscription given -> two-level leaf/spine, k hosts per leaf, k/R spines, k*k hosts by default
    G = build_topology("fattree:k=8,oversubscription=2")
    assert G.graph["fattree"] == {"levels": 2, "k": 8, "spines": 4, "oversubscription": 2.0}
    assert len(G.graph["hosts"]) == 64
    G = build_topology("fattree:k=8,oversubscription=2", n_hosts=40)
    assert len(G.graph["hosts"]) == 40
    # no k: the smallest even k with k^3/4 >= procs
    assert build_topology("fattree", n_hosts=100).graph["fattree"]["k"] == 8  # 6^3/4 = 54 < 100 <= 128
    assert build_topology("fattree:levels=2,k=4", n_hosts=10).graph["fattree"]["spines"] == 4


def test_sized_kinds_fit_procs():
    for spec in ("ideal", "star", "fattree:levels=2"):
        assert len(build_topology(spec, n_hosts=37).graph["hosts"]) == 37
    assert len(build_topology("star:hosts=50", n_hosts=37).graph["hosts"]) == 50


def test_parse_spec():
    assert parse_spec("ring") == ("ring", {})
    assert parse_spec(" torus : dims=2x3 ") == ("torus", {"dims": "2x3"})


def test_balanced_dims():
    assert balanced_dims(64) == (4, 4, 4)
    assert balanced_dims(512) == (8, 8, 8)
    assert balanced_dims(7) == (1, 1, 7)
    assert balanced_dims(12) == (2, 2, 3)


@pytest.mark.parametrize(("spec", "field", "text"), [
    ("nosuch", "topology", "unknown topology"),
    ("star:k=4", "topology.k", "unknown key"),
    ("star:bandwidth", "topology", "malformed"),
    ("star:bandwidth=1GB/s,bandwidth=2GB/s", "topology", "twice"),
    ("star:bandwidth=-1GB/s", "topology.bandwidth", ""),
    ("star:bandwidth=3 parsecs", "topology.bandwidth", ""),
    ("star:latency=1 lightyear", "topology.latency", ""),
    ("star:hosts=0", "topology.hosts", "not positive"),
    ("star:hosts=x", "topology.hosts", "not an integer"),
    ("fattree:k=5", "topology.k", "odd"),
    ("fattree:k=4,levels=3,oversubscription=2", "topology.oversubscription", "levels=3"),
    ("fattree:levels=4", "topology.levels", ""),
    ("fattree:oversubscription=0", "topology.oversubscription", ""),
    ("", "topology", "empty"),
])
def test_spec_errors(spec, field, text):
    with pytest.raises(UserError) as exc:
        build_topology(spec, n_hosts=8)
    assert exc.value.field == field
    assert text in exc.value.problem


def test_fixed_kind_with_too_few_hosts_names_procs():
    with pytest.raises(UserError) as exc:
        build_topology("fattree:k=4", n_hosts=17)
    assert exc.value.field == "procs" and "16 hosts" in exc.value.problem


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(UserError) as exc:
        build_topology("ideal:foo=1")
    assert "bandwidth" in exc.value.allowed and "latency" in exc.value.allowed


def test_describe_kinds_lists_every_kind():
    rows = describe_kinds()
    assert [r["kind"] for r in rows] == ["ideal", "star", "ring", "torus", "fattree", "dragonfly", "hier"]
    assert all(r["keys"] and r["doc"] for r in rows)
