"""The Chrome trace reads well: named processes and lanes, layer names on spans, blocking comm on its own lane."""

from __future__ import annotations

from sim.api import simulate
from sim.results import TRACE_LANES, chrome_trace


def _trace(**cfg):
    r = simulate({"model": "alexnet", "batch": 64, "procs": 4, "network": "flow", **cfg})
    return r, chrome_trace(r.records)


def test_every_lane_used_is_named_and_spans_carry_layer_names():
    r, trace = _trace(strategy="integrated", grid="2x2", conv="batch", fc="model", overlap=True)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == len(r.records)
    named = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in spans} == set(named)
    procs = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert procs == {r_: f"rank {r_}" for r_ in range(4)}
    layers = set(r.records["layer"])
    assert all(e["args"]["layer"] in layers and e["name"].startswith(e["args"]["layer"]) for e in spans)


def test_blocking_model_comm_and_overlapped_gradients_have_their_own_lanes():
    r, trace = _trace(strategy="integrated", grid="2x2", conv="batch", fc="model", overlap=True)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    lanes = {e["tid"] for e in spans}
    assert lanes == {TRACE_LANES[k][0] for k in ("compute", "blocking", "comm")}
    # fc layers' all-gathers block compute (model parallelism); gradient all-reduces overlap on the comm stream
    blocking = {e["args"]["category"] for e in spans if e["tid"] == TRACE_LANES["blocking"][0]}
    overlapped = {e["args"]["category"] for e in spans if e["tid"] == TRACE_LANES["comm"][0]}
    assert "model" in blocking and overlapped == {"batch"}
    assert all(e["args"]["category"] == "compute" for e in spans if e["tid"] == TRACE_LANES["compute"][0])
