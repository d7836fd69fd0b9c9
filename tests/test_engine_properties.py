"""Properties of the engine on random programs (hypothesis): well-formed records, rendezvous, ordering,
``flow`` never beating ``analytic`` on the ideal network, determinism.

Programs are drawn like strategies build them: a global list of steps, each a compute (a random duration
per rank) or a collective over a random group, on a random stream, optionally depending on an earlier
step. Every rank runs the steps it takes part in, in global order, so rendezvous orders agree and the
program cannot deadlock.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import run_program
from sim.network import make_network
from sim.program import Collective, Compute, Program
from topologies import build_topology

SPEC = "ideal:latency=2us,bandwidth=1GB/s"
ALGS = [("allreduce", "ring"), ("allgather", "ring"), ("reduce_scatter", "ring"), ("allreduce", "paper"),
        ("broadcast", "tree"), ("alltoall", "direct")]


@st.composite
def programs(draw) -> Program:
    n = draw(st.integers(2, 5))
    steps = draw(st.lists(st.tuples(
        st.booleans(),                                   # collective?
        st.sampled_from(["compute", "comm"]),            # stream
        st.lists(st.integers(0, n - 1), min_size=2, max_size=n, unique=True),  # group
        st.sampled_from(ALGS),
        st.floats(1e3, 1e7),                             # bytes
        st.lists(st.floats(0.0, 1e-3), min_size=n, max_size=n),  # compute seconds per rank
        st.booleans(),                                   # depend on the rank's previous op?
    ), min_size=1, max_size=8))
    ops: list[list] = [[] for _ in range(n)]
    for s, (is_coll, stream, group, (op, alg), nbytes, secs, dep) in enumerate(steps):
        group = tuple(sorted(group))
        c = Collective(op, group, nbytes, alg, key=f"s{s}", stream=stream) if is_coll else None
        for r in range(n):
            deps = (len(ops[r]) - 1,) if dep and ops[r] else ()
            if c is not None:
                if r in group:
                    ops[r].append(Collective(c.op, c.group, c.nbytes, c.algorithm, c.key, stream=stream, deps=deps))
            else:
                ops[r].append(Compute(secs[r], stream=stream, deps=deps))
    return Program(tuple(tuple(o) for o in ops))


def _run(prog: Program, model: str):
    return run_program(prog, make_network(model, build_topology(SPEC, prog.n_ranks)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_records_are_well_formed(prog):
    res = _run(prog, "flow")
    rec = res.records
    assert len(rec) == sum(len(o) for o in prog.ops)
    assert (rec["arrive_s"] <= rec["start_s"]).all() and (rec["start_s"] <= rec["end_s"]).all()
    assert res.makespan_s == (rec["end_s"].max() if len(rec) else 0.0)
    coll = rec[rec["kind"] == "collective"]
    per_key = coll.groupby("key")
    # a collective starts when its last member arrives, and ends for all members at once
    assert (per_key["start_s"].nunique() == 1).all() and (per_key["end_s"].nunique() == 1).all()
    assert np.array_equal(per_key["start_s"].first().to_numpy(), per_key["arrive_s"].max().to_numpy())
    # each stream of each rank runs one op at a time, in list order; deps end before their op arrives
    for r, ops in enumerate(prog.ops):
        mine = rec[rec["rank"] == r].reset_index(drop=True)
        for stream in ("compute", "comm"):
            s = mine[mine["stream"] == stream]
            assert (s["start_s"].to_numpy()[1:] >= s["end_s"].to_numpy()[:-1]).all()
        for i, op in enumerate(ops):
            for d in op.deps:
                assert mine.loc[i, "arrive_s"] >= mine.loc[d, "end_s"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_flow_never_beats_analytic_on_the_ideal_network(prog):
    """On ``ideal`` every host pair has its own link with the analytic α and bandwidth, so a collective alone
    takes its closed form in ``flow``; concurrent collectives on the same pairs can only slow it."""
    flow = _run(prog, "flow").makespan_s
    analytic = _run(prog, "analytic").makespan_s
    assert flow >= analytic * (1 - 1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from(["analytic", "flow", "step"]))
def test_deterministic(prog, model):
    a, b = _run(prog, model), _run(prog, model)
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)
    assert a.events == b.events
