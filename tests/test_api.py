"""sim.simulate: inputs, frames, files, determinism; the fast path against the full engine; overlap and
flow never beat the blocking / analytic runs."""

from __future__ import annotations

import json
import os
import stat

import pandas as pd
import pytest

from sim.api import simulate
from sim.config import RunConfig, make_config
from sim.errors import UserError
from sim.results import SUMMARY_FIELDS

DOCUMENTED_FIELDS = ["model", "batch", "procs", "strategy", "pr", "pc", "topology", "network", "compute",
                   "iteration_s", "epoch_s", "compute_s", "comm_s", "exposed_comm_s", "batch_comm_s",
                   "model_comm_s", "domain_comm_s", "allgather_s", "reduce_scatter_s", "allreduce_s", "halo_s",
                   "bytes_sent_per_rank", "memory_per_rank_bytes", "events", "wall_s"]
SMALL = {"model": "alexnet", "batch": 64, "procs": 8}


def test_summary_fields_in_documented_order():
    r = simulate(SMALL)
    assert list(r.summary.columns[: len(DOCUMENTED_FIELDS)]) == DOCUMENTED_FIELDS
    assert list(r.summary.columns) == SUMMARY_FIELDS
    assert len(r.summary) == 1


def test_inputs_dict_config_and_yaml_path(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: alexnet\nbatch: 64\nprocs: 8\n")
    a = simulate(SMALL).summary.drop(columns="wall_s")
    b = simulate(make_config(SMALL)).summary.drop(columns="wall_s")
    c = simulate(str(path)).summary.drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert isinstance(simulate(SMALL).config, RunConfig)


def test_deterministic_bit_for_bit():
    cfg = dict(SMALL, strategy="integrated", grid="2x4", conv="domain", compute="paper-knl", overlap=True)
    a, b = simulate(cfg), simulate(cfg)
    pd.testing.assert_frame_equal(a.summary.drop(columns="wall_s"), b.summary.drop(columns="wall_s"))
    pd.testing.assert_frame_equal(a.layers, b.layers)


def test_layers_add_up_to_summary():
    r = simulate(dict(SMALL, strategy="integrated", grid="2x4", conv="batch", compute="paper-knl"))
    s = r.summary.iloc[0]
    assert r.layers["comm_s"].sum() == pytest.approx(s["comm_s"], rel=1e-12)
    assert (r.layers["fwd_compute_s"].sum() + r.layers["bwd_compute_s"].sum()) == pytest.approx(s["compute_s"], rel=1e-12)
    assert s["comm_s"] == pytest.approx(s["batch_comm_s"] + s["model_comm_s"] + s["domain_comm_s"]
                                        + s["redistribute_s"], rel=1e-12)
    assert s["comm_s"] == pytest.approx(s["allgather_s"] + s["reduce_scatter_s"] + s["allreduce_s"] + s["halo_s"],
                                        rel=1e-12)
    assert s["exposed_comm_s"] == pytest.approx(s["iteration_s"] - s["compute_s"], rel=1e-12)
    assert s["epoch_s"] == pytest.approx(s["iteration_s"] * 1.2e6 / 64, rel=1e-12)
    names = [p.layer.name for p in r.plan.plans]
    assert list(r.layers["layer"]) == names


def test_to_csv_and_trace(tmp_path):
    r = simulate(dict(SMALL, strategy="integrated", grid="2x4"))
    out = tmp_path / "out"
    r.to_csv(out)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "critical_path.csv", "layers.csv", "summary.csv", "timeline.png", "trace.json"]
    assert pd.read_csv(out / "summary.csv")["iteration_s"].iloc[0] == pytest.approx(r.iteration_s, rel=1e-12)
    trace = json.loads((out / "trace.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert spans and all({"pid", "tid", "ts", "dur", "name"} <= set(e) for e in spans)
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(r.iteration_s * 1e6, rel=1e-9)
    assert simulate(str(out / "config.yaml")).iteration_s == r.iteration_s


def test_trace_samples_ranks():
    from sim.results import chrome_trace
    r = simulate(dict(SMALL, strategy="integrated", grid="2x4", network="flow"))
    trace = chrome_trace(r.records, max_ranks=3)
    assert len(trace["otherData"]["ranks_shown"]) <= 4 and trace["otherData"]["ranks_total"] == 8
    assert {e["pid"] for e in trace["traceEvents"] if e["ph"] == "X"} == set(trace["otherData"]["ranks_shown"])


FAST_VS_FULL = [
    dict(SMALL, strategy="batch"),
    dict(SMALL, strategy="model", batch=16),
    dict(SMALL, strategy="domain", batch=32),
    dict(SMALL, strategy="integrated", grid="2x4"),
    dict(SMALL, strategy="integrated", grid="4x2", conv="domain", fc="model"),
    dict(SMALL, strategy="integrated", grid="2x4", conv="batch", compute="paper-knl", overlap=True),
    dict(SMALL, strategy="integrated", grid="4x2", conv="model", fc="batch", collectives="ring",
         placement="col-major", compute="paper-knl"),
]


@pytest.mark.parametrize("cfg", FAST_VS_FULL)
def test_fast_path_equals_full_engine(cfg):
    fast = simulate(cfg, engine="fast").summary.iloc[0]
    full = simulate(cfg, engine="full").summary.iloc[0]
    for field in ("iteration_s", "compute_s", "comm_s", "batch_comm_s", "model_comm_s", "domain_comm_s",
                  "redistribute_s", "allgather_s", "allreduce_s", "halo_s", "bytes_sent_per_rank"):
        assert fast[field] == pytest.approx(full[field], rel=1e-12, abs=1e-15), field


@pytest.mark.parametrize("cfg", [
    dict(SMALL, strategy="batch"),
    dict(SMALL, strategy="integrated", grid="2x4"),
    dict(SMALL, strategy="integrated", grid="2x4", conv="batch"),
    dict(SMALL, strategy="integrated", grid="4x2", conv="domain"),
    dict(model="vgg16", batch=32, procs=8, strategy="integrated", grid="2x4"),
])
def test_overlap_never_slower(cfg):
    cfg = dict(cfg, compute="paper-knl")
    blocking = simulate(cfg).iteration_s
    overlapped = simulate(dict(cfg, overlap=True)).iteration_s
    assert overlapped <= blocking * (1 + 1e-12)


def test_overlap_hides_some_communication():
    cfg = dict(SMALL, strategy="batch", compute="paper-knl")
    blocking, overlapped = simulate(cfg), simulate(dict(cfg, overlap=True))
    assert overlapped.iteration_s < blocking.iteration_s
    assert overlapped.summary["exposed_comm_s"].iloc[0] < blocking.summary["exposed_comm_s"].iloc[0]


@pytest.mark.parametrize("cfg", [
    dict(SMALL, strategy="batch"),
    dict(SMALL, strategy="integrated", grid="2x4"),
    dict(SMALL, strategy="integrated", grid="4x2", conv="domain"),
])
@pytest.mark.parametrize("topology", ["star:bandwidth=6GiB/s,latency=1us", "ideal:latency=2us,bandwidth=6GiB/s",
                                      "fattree:k=4,latency=0", "fattree:k=4,oversubscription=2,latency=0"])
def test_flow_never_faster_than_analytic(cfg, topology):
    """Same links: every path has the analytic α as its latency (star, ideal) or no latency at all (the
    fat-trees here). With real per-hop latencies a fat-tree's short paths beat the analytic α, the
    largest path latency, so flow can be faster there; that is not a contention effect."""
    cfg = dict(cfg, topology=topology)
    analytic = simulate(cfg).iteration_s
    flow = simulate(dict(cfg, network="flow")).iteration_s
    assert flow >= analytic * (1 - 1e-9)


@pytest.mark.parametrize("grid", ["8x1", "4x2", "2x4", "1x8"])
def test_pc1_no_batch_comm_pr1_no_model_comm(grid):
    s = simulate(dict(SMALL, batch=16, strategy="integrated", grid=grid)).summary.iloc[0]
    pr, pc = map(int, grid.split("x"))
    assert (s["batch_comm_s"] == 0) == (pc == 1)
    assert (s["model_comm_s"] == 0) == (pr == 1)


def test_outputs_create_missing_parents_and_refuse_files(tmp_path):
    from sim.errors import UserError
    r = simulate(SMALL)
    r.to_csv(tmp_path / "missing" / "out")  # like mkdir -p, so `--out out/demo` works on a fresh clone
    assert (tmp_path / "missing" / "out" / "summary.csv").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        r.to_csv(tmp_path / "file")
    with pytest.raises(UserError, match="not a directory"):
        r.to_csv(tmp_path / "file" / "out")
    assert (tmp_path / "file").read_text() == "x"
    r.to_trace(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]


def test_step_network_runs_and_is_not_faster_than_analytic():
    cfg = dict(SMALL, strategy="integrated", grid="2x4", conv="domain", topology="star:bandwidth=6GiB/s,latency=1us")
    analytic = simulate(cfg)
    step = simulate(dict(cfg, network="step"))
    assert step.meta["engine"] == "full" and analytic.meta["engine"] == "fast"
    assert step.iteration_s >= analytic.iteration_s * (1 - 1e-9)
    assert step.records["rank"].nunique() == 8


@pytest.mark.parametrize("collectives", ["ring", "paper"])
def test_bytes_sent_per_rank_equals_the_allreduce_volume(collectives):
    """Pure batch: every rank sends 2 (P-1)/P of each ΔW (4-byte words) in a ring or reduce-scatter +
    all-gather all-reduce (Thakur et al. 2005; Gholami et al. 2018's all-reduce), summed over the weight layers."""
    from workloads.zoo import get_model

    P = 8
    params = sum(layer.params for layer in get_model("alexnet").layers)
    s = simulate(dict(SMALL, procs=P, strategy="batch", collectives=collectives)).summary.iloc[0]
    assert s["bytes_sent_per_rank"] == pytest.approx(2 * (P - 1) / P * 4 * params, rel=1e-12)


def test_bytes_sent_per_rank_pure_model_ring():
    """Pure model (grid Px1), ring: forward all-gather of Y_i (d_i B words) and, for every weight layer but
    the first, backward all-reduce of ΔX_i (d_{i-1} B words); each rank sends (P-1)/P of an all-gather's
    result and 2 (P-1)/P of an all-reduce's vector."""
    from workloads.zoo import get_model

    P, B = 8, 64
    ws = [layer for layer in get_model("alexnet").layers if layer.kind in ("conv", "fc")]
    expected = sum((P - 1) / P * 4 * B * w.out_elems_per_sample for w in ws)
    expected += sum(2 * (P - 1) / P * 4 * B * w.in_elems_per_sample for w in ws[1:])
    s = simulate(dict(SMALL, procs=P, batch=B, strategy="model", collectives="ring")).summary.iloc[0]
    assert s["redistribute_s"] == 0
    assert s["bytes_sent_per_rank"] == pytest.approx(expected, rel=1e-12)


def test_engine_fast_refuses_what_the_fast_path_cannot_time(monkeypatch):
    with pytest.raises(UserError, match="network=analytic") as info:
        simulate(dict(SMALL, network="flow", topology="star"), engine="fast")
    assert info.value.field == "engine"
    # ranks that do not all run alike (sim.fastpath.is_symmetric false): auto falls back to the engine,
    # fast refuses rather than silently running the engine
    import sim.fastpath

    monkeypatch.setattr(sim.fastpath, "is_symmetric", lambda steps, grid, network: False)
    assert simulate(SMALL).meta["engine"] == "full"
    with pytest.raises(UserError, match="node-aligned") as info:
        simulate(SMALL, engine="fast")
    assert info.value.field == "engine" and "engine auto or full" in info.value.allowed


def test_to_csv_refuses_a_non_empty_directory_unless_overwrite(tmp_path):
    r = simulate(SMALL)
    out = tmp_path / "res"
    out.mkdir()
    r.to_csv(out)  # an existing empty directory is fine
    (out / "notes.txt").write_text("keep me")
    (out / "summary.csv").write_text("old")
    with pytest.raises(UserError, match="exists and is not empty") as info:
        r.to_csv(out)
    assert info.value.field == "out" and "overwrite" in info.value.allowed
    assert (out / "summary.csv").read_text() == "old"
    r.to_csv(out, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"
    assert pd.read_csv(out / "summary.csv")["iteration_s"].iloc[0] == pytest.approx(r.iteration_s, rel=1e-12)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    """The directory gets 0o777 & ~umask and the files 0o666 & ~umask, as `mkdir` and shell redirections
    would give them (tempfile's private 0700/0600 would hide results from the group on a shared cluster)."""
    r = simulate(SMALL)
    old = os.umask(umask)
    try:
        r.to_csv(tmp_path / "parent" / "res")
        r.to_trace(tmp_path / "t.json")
    finally:
        os.umask(old)
    out = tmp_path / "parent" / "res"
    for directory in (out, tmp_path / "parent"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o777 & ~umask
    for path in [*out.iterdir(), tmp_path / "t.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
