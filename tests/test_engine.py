"""The SimPy engine's semantics on tiny programs, with exact event times (SimPy-tests style).

Streams run in order, deps wait across streams, collectives rendezvous by key and release every member at
once, a comm-stream collective overlaps compute (max, not sum), events scale with ops, records are
complete and ordered, malformed programs raise one-line UserErrors.
"""

from __future__ import annotations

import math

import pytest

from sim.engine import RECORD_COLUMNS, collective_groups, collective_program, run_program, simulate_collective
from sim.errors import UserError
from sim.network import make_network
from sim.program import Collective, Compute, Program
from topologies import build_topology

ALPHA, BW = 2e-6, 1e9  # ideal network: every ordered host pair its own link
SPEC = "ideal:latency=2us,bandwidth=1GB/s"


def net(model: str = "flow", hosts: int = 4, spec: str = SPEC):
    return make_network(model, build_topology(spec, hosts))


def ring_allreduce_s(p: int, n: float, alpha: float = ALPHA, bw: float = BW) -> float:
    """Ring all-reduce (reduce-scatter + all-gather): 2(p−1)(α + n/(p·bw))."""
    return 2 * (p - 1) * (alpha + n / (p * bw))


# ------------------------------------------------------------------------------------------ compute only
def test_streams_run_in_order_and_ranks_in_parallel():
    prog = Program(((Compute(1.0, "a"), Compute(2.0, "b")), (Compute(0.5, "c"),)))
    res = run_program(prog, net())
    rec = res.records
    assert list(rec.columns) == RECORD_COLUMNS
    assert rec[["rank", "layer", "start_s", "end_s"]].values.tolist() == [
        [0, "a", 0.0, 1.0], [0, "b", 1.0, 3.0], [1, "c", 0.0, 0.5]]
    assert res.makespan_s == 3.0
    assert (rec["kind"] == "compute").all() and (rec["bytes_sent"] == 0).all()


def test_two_streams_overlap_and_deps_cross_streams():
    # compute stream: 1 s, 4 s; comm stream: 2 s that waits for op 0 -> runs 1..3, in parallel with op 1
    # then a comm op with no deps runs right after it on the comm stream: 3..3.5
    ops = (Compute(1.0), Compute(4.0), Compute(2.0, stream="comm", deps=(0,)), Compute(0.5, stream="comm"),
           Compute(1.0, deps=(3,)))
    rec = run_program(Program((ops,)), net()).records
    assert rec[["arrive_s", "start_s", "end_s"]].values.tolist() == [
        [0.0, 0.0, 1.0], [1.0, 1.0, 5.0], [1.0, 1.0, 3.0], [3.0, 3.0, 3.5], [5.0, 5.0, 6.0]]


def test_dep_on_later_op_of_other_stream():
    ops = (Compute(1.0, deps=(1,)), Compute(2.5, stream="comm"))
    rec = run_program(Program((ops,)), net()).records
    assert rec["end_s"].tolist() == [3.5, 2.5]


def test_event_count_scales_with_ops():
    # one SimPy process per rank per stream: an Initialize event and the process's own end event; a run
    # of computes whose deps are known is timed by sums and costs one event -> 3 events per rank here
    ranks, ops = 5, 7
    prog = Program(tuple(tuple(Compute(0.1 * (k + 1)) for k in range(ops)) for _ in range(ranks)))
    res = run_program(prog, net("analytic", hosts=ranks))
    assert res.events == 3 * ranks
    assert res.wall_s > 0
    # the run's ends are the same sums SimPy would form op by op
    t, ends = 0.0, []
    for k in range(ops):
        t = t + 0.1 * (k + 1)
        ends.append(t)
    assert res.records["end_s"].tolist() == ends * ranks


def test_compute_run_broken_by_a_dep_and_waiters_fire_at_planned_ends():
    # compute: op0 waits for comm op2 (0.5 s), then op1; comm: op2, then op3 waits for compute op1
    ops = (Compute(1.0, deps=(2,)), Compute(2.0), Compute(0.5, stream="comm"), Compute(1.0, stream="comm", deps=(1,)))
    rec = run_program(Program((ops,)), net()).records
    assert rec[["arrive_s", "end_s"]].values.tolist() == [[0.5, 1.5], [1.5, 3.5], [0.0, 0.5], [3.5, 4.5]]


def test_empty_program():
    res = run_program(Program(((), ())), net())
    assert res.makespan_s == 0.0 and res.records.empty and list(res.records.columns) == RECORD_COLUMNS


# ------------------------------------------------------------------------------------------ collectives
def test_rendezvous_starts_when_last_member_arrives():
    n = 4e6
    c = Collective("allreduce", (0, 1, 2, 3), n, "ring", key="g")
    waits = (1.0, 3.0, 0.0, 2.0)
    prog = Program(tuple((Compute(w), c) for w in waits))
    for model in ("analytic", "flow", "step"):
        rec = run_program(prog, net(model)).records
        coll = rec[rec["kind"] == "collective"]
        assert coll["arrive_s"].tolist() == list(waits)
        assert (coll["start_s"] == 3.0).all()
        assert coll["end_s"].tolist() == pytest.approx([3.0 + ring_allreduce_s(4, n)] * 4, rel=1e-12)
        assert coll["group_size"].tolist() == [4] * 4 and coll["key"].tolist() == ["g"] * 4


def test_comm_stream_collective_overlaps_compute():
    """A comm-stream collective beside a long compute span: the rank ends at max(compute, comm), not the sum."""
    n = 6e7
    comm = ring_allreduce_s(2, n)
    c = Collective("allreduce", (0, 1), n, "ring", key="ar", stream="comm")
    for compute_s in (comm / 2, 2 * comm):
        prog = Program(tuple((Compute(compute_s), c) for _ in range(2)))
        res = run_program(prog, net("flow", hosts=2))
        assert res.makespan_s == pytest.approx(max(compute_s, comm), rel=1e-12)
        serial = Program(tuple((Compute(compute_s), Collective("allreduce", (0, 1), n, "ring", key="s"))
                               for _ in range(2)))
        assert run_program(serial, net("flow", hosts=2)).makespan_s == pytest.approx(compute_s + comm, rel=1e-12)


def test_collective_waits_for_its_dep():
    n = 1e6
    c = Collective("allreduce", (0, 1), n, "ring", key="ar", stream="comm", deps=(1,))
    prog = Program(tuple((Compute(1.0), Compute(2.0), c) for _ in range(2)))
    rec = run_program(prog, net("analytic", hosts=2)).records
    coll = rec[rec["kind"] == "collective"]
    assert coll["start_s"].tolist() == [3.0, 3.0]
    assert coll["end_s"].tolist() == pytest.approx([3.0 + ring_allreduce_s(2, n)] * 2, rel=1e-12)


def test_disjoint_groups_run_concurrently_and_ranks_outside_idle():
    n = 2e6
    g0 = Collective("allgather", (0, 1), n, "ring", key="a")
    g1 = Collective("allgather", (2, 3), n, "ring", key="b")
    prog = Program(((g0,), (g0,), (g1,), (g1,), (Compute(0.25),)))
    rec = run_program(prog, net("flow", hosts=5)).records
    ring_allgather = (2 - 1) * (ALPHA + n / (2 * BW))  # (p−1)(α + n/(p·bw))
    assert rec["end_s"].tolist() == pytest.approx([ring_allgather] * 4 + [0.25], rel=1e-12)


def test_bytes_sent_per_rank_is_the_algorithms():
    n = 8e6
    p = 4
    c = Collective("allreduce", tuple(range(p)), n, "ring", key="g")
    rec = run_program(Program(tuple((c,) for _ in range(p))), net()).records
    # ring all-reduce: 2(p−1) chunks of n/p from every rank
    assert rec["bytes_sent"].tolist() == pytest.approx([2 * (p - 1) * n / p] * p, rel=1e-12)


def test_collective_sequence_on_one_rank_pair():
    n = 1e6
    a = Collective("allreduce", (0, 1), n, "ring", key="a")
    b = Collective("allreduce", (0, 1), 2 * n, "ring", key="b")
    prog = Program(((a, b), (a, b)))
    rec = run_program(prog, net("step", hosts=2)).records
    t1 = ring_allreduce_s(2, n)
    t2 = t1 + ring_allreduce_s(2, 2 * n)
    assert rec["end_s"].tolist() == pytest.approx([t1, t2, t1, t2], rel=1e-12)


def test_events_do_not_grow_with_ring_steps():
    """flow: a ring's p−1 steps are one phase, so events grow with ranks, not ranks × steps."""
    def events(p: int) -> int:
        c = Collective("allgather", tuple(range(p)), 1e6, "ring", key="g")
        return run_program(Program(tuple((c,) for _ in range(p))), net("flow", hosts=p)).events

    e8, e32 = events(8), events(32)
    # 2 process events per rank plus a constant number per phase: linear in p with slope 2
    assert e32 - e8 == 2 * (32 - 8)


# ------------------------------------------------------------------------------------------ simulate_collective
def test_simulate_collective_fields_and_formula():
    p, n = 8, 64 * 2**20
    row = simulate_collective("allreduce", "ring", p, n, SPEC, "flow")
    t = ring_allreduce_s(p, n)
    assert row["time_s"] == pytest.approx(t, rel=1e-12)
    assert row["algbw_Bps"] == pytest.approx(n / t, rel=1e-12)
    assert row["busbw_Bps"] == pytest.approx(n / t * 2 * (p - 1) / p, rel=1e-12)  # nccl-tests all-reduce factor
    assert row["events"] > 0 and row["network"] == "flow" and row["topology"] == SPEC


def test_grid_groups_and_concurrency_on_ideal():
    assert collective_groups(6, "2x3", "pr") == ((0, 1), (2, 3), (4, 5))
    assert collective_groups(6, "2x3", "pc") == ((0, 2, 4), (1, 3, 5))
    assert collective_groups(6, "2x3", "pc", "col-major") == ((0, 1, 2), (3, 4, 5))
    # ideal: no shared links, so 4 concurrent groups take one group's time
    n = 1e6
    row = simulate_collective("allreduce", "ring", 16, n, SPEC, "flow", grid="4x4", along="pc")
    assert row["time_s"] == pytest.approx(ring_allreduce_s(4, n), rel=1e-12)
    assert row["groups"] == 4 and row["group_size"] == 4


def test_concurrent_groups_share_an_oversubscribed_core():
    """Leaf/spine, 4 hosts per leaf, 2:1 (2 spines, each leaf's 2 uplinks of bw). Grid 2x4 col-major, along
    pr: model groups {j, 4+j} pair host j of leaf 0 with host j of leaf 1, so 4 two-rank all-gathers each
    send one flow per direction across the core. d-mod-k: traffic to host d climbs to spine d mod 2, so each
    leaf uplink carries 2 of the 4 flows leaving the leaf: every flow gets bw/2. A ring all-gather on 2 ranks
    is one step of n/2 bytes over 4 links of 1 µs: time = 4 µs + (n/2)/(bw/2)."""
    bw, lat, n = 1e9, 1e-6, 4e6
    spec = "fattree:k=4,oversubscription=2,bandwidth=1GB/s,latency=1us"
    row = simulate_collective("allgather", "ring", 8, n, spec, "flow", grid="2x4", along="pr",
                              placement="col-major")
    assert row["time_s"] == pytest.approx(4 * lat + (n / 2) / (bw / 2), rel=1e-9)
    # one such group alone (ranks 0 and 4, the others idle) has the uplinks to itself
    c = Collective("allgather", (0, 4), n, "ring", key="alone")
    prog = Program(tuple((c,) if r in (0, 4) else () for r in range(8)))
    alone = run_program(prog, make_network("flow", build_topology(spec, 8)))
    assert alone.makespan_s == pytest.approx(4 * lat + (n / 2) / bw, rel=1e-9)


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("prog, field", [
    (Program(((Compute(1.0, deps=(1,)), Compute(1.0, deps=(0,))),)), "program"),  # deadlock
    (Program(((Collective("allreduce", (0, 1), 1.0, "ring", key="a"), Collective("allreduce", (0, 1), 1.0, "ring", key="b")),
              (Collective("allreduce", (0, 1), 1.0, "ring", key="b"), Collective("allreduce", (0, 1), 1.0, "ring", key="a")))),
     "program"),  # members reach two collectives in opposite orders
    (Program(((Compute(1.0, deps=(5,)),),)), "program.deps"),
    (Program(((Compute(-1.0),),)), "program.seconds"),
    (Program(((Compute(1.0, stream="gpu"),),)), "program.stream"),
    (Program(((Collective("allreduce", (0, 1), 1.0, "ring", key="k"),), ())), "program.group"),
    (Program(((Collective("allreduce", (1, 2), 1.0, "ring", key="k"),), (), ())), "program.group"),
    (Program(((Collective("allreduce", (0, 1), 1.0, "ring", key="k"),),
              (Collective("allreduce", (0, 1), 2.0, "ring", key="k"),))), "program.key"),
])
def test_malformed_programs(prog, field):
    with pytest.raises(UserError) as info:
        run_program(prog, net())
    assert info.value.field == field


def _ar(group: tuple[int, ...], key: str = "k") -> Collective:
    return Collective("allreduce", group, 1.0, "ring", key=key)


@pytest.mark.parametrize("prog, field, words", [
    # rank 0 holds "k" twice, rank 1 never: the hold count (2) equals the group size, the set {0} does not
    (Program(((_ar((0, 1)), _ar((0, 1))), ())), "program.key", "more than once"),
    # a member, then a non-member holds "k" (rank 1 never): again two holds for a group of two
    (Program(((_ar((0, 1)),), (), (_ar((0, 1)),))), "program.group", "not in its group"),
    # a member is missing while the others hold it once each
    (Program(((_ar((0, 1, 2)),), (_ar((0, 1, 2)),), ())), "program.group", "rank(s) [2]"),
])
def test_collective_holders_are_the_group_exactly(prog, field, words):
    """Validation compares the set of ranks holding a collective with its group, so these fail before
    the run, not as a misleading deadlock after it."""
    with pytest.raises(UserError) as info:
        run_program(prog, net())
    assert info.value.field == field and words in info.value.problem and "deadlock" not in info.value.problem


def test_too_many_ranks_for_the_topology():
    with pytest.raises(UserError) as info:
        run_program(Program(tuple((Compute(1.0),) for _ in range(17))), make_network("flow", build_topology("fattree:k=4")))
    assert info.value.field == "procs"


def test_simulate_collective_errors():
    with pytest.raises(UserError, match="bytes"):
        simulate_collective("allreduce", "ring", 4, 0, SPEC, "flow")
    with pytest.raises(UserError, match="op"):
        simulate_collective("allsum", "ring", 4, 1e6, SPEC, "flow")
    with pytest.raises(UserError, match="grid"):
        simulate_collective("allreduce", "ring", 6, 1e6, SPEC, "flow", grid="4x4", along="pr")
    with pytest.raises(UserError, match="along"):
        simulate_collective("allreduce", "ring", 16, 1e6, SPEC, "flow", grid="4x4", along="diag")
    with pytest.raises(UserError, match="network"):
        simulate_collective("allreduce", "ring", 4, 1e6, SPEC, "fluid")
    assert math.isfinite(simulate_collective("allreduce", "ring", 4, 1e6, SPEC, "analytic")["time_s"])


def test_hierarchical_local_size_follows_the_grid_placement():
    """hier:gpus_per_node=4, 16 ranks, grid 4x4 along pr. Row-major: each model group is one node, so
    hierarchical all-reduce runs with local_size = 4 over NVSwitch paths (2 links of 1 µs, 450 GB/s);
    col-major: each group has one GPU per node (local_size = 1) over the fabric (one NIC per GPU: two NIC
    links of 2 µs, 50 GB/s). Both equal the algorithm's closed form with those α and bandwidths."""
    from sim.collectives import get_algorithm

    hier = get_algorithm("allreduce", "hierarchical")
    n, spec = 64e6, "hier:gpus_per_node=4"
    row = simulate_collective("allreduce", "hierarchical", 16, n, spec, "flow", grid="4x4", along="pr")
    assert row["time_s"] == pytest.approx(hier.cost_s(4, n, 2e-6, 450e9, local_size=4), rel=1e-12)
    # col-major: no group is node-aligned, so hierarchical would be a flat ring: dnnsim collective refuses it
    with pytest.raises(UserError, match="not node-aligned") as err:
        simulate_collective("allreduce", "hierarchical", 16, n, spec, "flow", grid="4x4", along="pr",
                            placement="col-major")
    assert err.value.field == "algorithm" and "ring" in err.value.problem
    # the engine (strategy runs) still runs it, as the ring it is, and its records say so
    groups = collective_groups(16, "4x4", "pr", "col-major")
    res = run_program(collective_program("allreduce", "hierarchical", groups, n, 16),
                      make_network("flow", build_topology(spec, 16)))
    assert res.makespan_s == pytest.approx(2 * 3 * (4e-6 + n / (4 * 50e9)), rel=1e-12)  # ring: 2(p-1)(α+n/(p·bw))
    assert set(res.records["algorithm"]) == {"ring"}
