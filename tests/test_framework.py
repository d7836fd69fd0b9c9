"""Framework behaviour (issue 10, item 4): a fixed host cost per iteration, and gradient bucketing as a
choice separate from overlap.

Numbers are pinned to the paper's Eq. 4 written out in tests/paper_formulas.py (α = 2 µs, 1/β = 6 GiB/s,
AlexNet, pure batch): one bucket holding every ΔW pays the α term once instead of once per layer.
"""

from __future__ import annotations

import math

import pytest
from paper_formulas import ALPHA, BETA, TOPO, eq4, lg, weights

from sim.api import simulate
from sim.config import make_config
from sim.errors import UserError
from workloads.loader import load_model

P, B = 16, 256


def _run(**extra):
    return simulate({"model": "alexnet", "batch": B, "procs": P, "topology": TOPO, **extra})


def _row(result):
    return result.summary.iloc[0]


def test_defaults_unchanged_and_equal_eq4():
    base = _row(_run())
    alex = load_model("alexnet")
    assert base["iteration_s"] == pytest.approx(eq4(alex, P), rel=1e-12)
    assert base["host_overhead_s"] == 0.0
    assert base["bucket_mb"] is None or math.isnan(base["bucket_mb"])
    # the same with the new keys spelled out at their defaults: bit for bit
    explicit = _row(_run(host_overhead=0, bucket_mb=None, overlap=False))
    assert explicit["iteration_s"] == base["iteration_s"]
    assert explicit["allreduce_s"] == base["allreduce_s"]


def test_host_overhead_adds_its_own_field():
    base, host = _row(_run()), _row(_run(host_overhead="2ms"))
    assert host["host_overhead_s"] == 0.002
    assert host["iteration_s"] == pytest.approx(base["iteration_s"] + 0.002, rel=1e-12)
    assert host["compute_s"] == base["compute_s"]  # kept out of compute_s
    assert host["exposed_comm_s"] == pytest.approx(base["exposed_comm_s"], rel=1e-12, abs=1e-15)


def test_host_overhead_runs_after_overlapped_allreduces():
    # with overlap the host step waits for the comm stream: the iteration is still makespan + host
    run = dict(compute="paper-knl", overlap=True)
    base, host = _row(_run(**run)), _row(_run(**run, host_overhead=0.005))
    assert host["iteration_s"] == pytest.approx(base["iteration_s"] + 0.005, rel=1e-12)


def test_bucketing_without_overlap_one_bucket_pays_alpha_once():
    # every ΔW in one blocking bucket (a cap larger than AlexNet's 61M params x 4 bytes = 233 MiB):
    # 2 (α lg P + β (P-1)/P Σ|W|) instead of Eq. 4's sum of one such term per layer
    alex = load_model("alexnet")
    total_words = sum(w.params for w in weights(alex))
    one_bucket = 2 * (ALPHA * lg(P) + BETA * (P - 1) / P * total_words)
    row = _row(_run(bucket_mb=1000))
    assert row["iteration_s"] == pytest.approx(one_bucket, rel=1e-12)
    layers = len(weights(alex))
    assert eq4(alex, P) - row["iteration_s"] == pytest.approx(2 * ALPHA * lg(P) * (layers - 1), rel=1e-9)


def test_bucketing_without_overlap_stays_blocking():
    result = _run(bucket_mb=25, compute="paper-knl")
    assert set(result.records["stream"]) == {"compute"}  # nothing on the comm stream
    overlapped = _run(bucket_mb=25, compute="paper-knl", overlap=True)
    assert "comm" in set(overlapped.records["stream"])
    # same buckets, same bytes: only the overlap differs
    assert _row(result)["allreduce_s"] == pytest.approx(_row(overlapped)["allreduce_s"], rel=1e-12)
    assert _row(overlapped)["iteration_s"] < _row(result)["iteration_s"]


def test_overlap_default_bucket_is_25_mib():
    a = _row(_run(overlap=True, compute="paper-knl"))
    b = _row(_run(overlap=True, compute="paper-knl", bucket_mb=25))
    assert a["iteration_s"] == b["iteration_s"]


@pytest.mark.parametrize("key,value", [("host_overhead", "-1ms"), ("host_overhead", "2 parsecs"),
                                       ("bucket_mb", 0), ("bucket_mb", -5)])
def test_bad_values_are_user_errors(key, value):
    with pytest.raises(UserError) as err:
        make_config({key: value})
    assert err.value.field == key


def test_cli_flags(tmp_path):
    from sim.cli import main

    assert main(["run", "--topology", TOPO, "--host-overhead", "1ms", "--bucket-mb", "25", "--format",
                 "csv"]) == 0
    assert main(["run", "--host-overhead", "fast"]) == 2
