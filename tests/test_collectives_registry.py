"""The registry (lookup, errors), bus factors, the ``--collectives`` parser, input validation, and
monotonicity of every closed form (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.collectives import ALGORITHMS, OPS, algorithms_for, bus_factor, get_algorithm, parse_collectives
from sim.errors import UserError
from sim.program import COLLECTIVE_OPS

PAIRS = [(op, name) for op in OPS for name in algorithms_for(op)]


def test_ops_and_names():
    assert tuple(COLLECTIVE_OPS) == OPS
    assert algorithms_for("allgather") == ["ring", "recursive_doubling", "bruck", "paper"]
    assert algorithms_for("reduce_scatter") == ["ring", "recursive_halving", "bruck", "paper"]
    assert algorithms_for("allreduce") == ["ring", "recursive_doubling", "rabenseifner", "rabenseifner_far",
                                           "tree", "hierarchical", "paper"]
    assert algorithms_for("broadcast") == algorithms_for("reduce") == ["tree", "paper"]
    assert algorithms_for("alltoall") == ["direct", "bruck", "paper"]
    assert algorithms_for("halo") == ["direct", "paper"]
    for op, name in PAIRS:
        algo = get_algorithm(op, name)
        assert (algo.op, algo.name) == (op, name)
        assert ALGORITHMS[op][name] is algo
    assert get_algorithm(" AllReduce ", "Ring") is ALGORITHMS["allreduce"]["ring"]
    assert get_algorithm("reduce-scatter", "ring") is ALGORITHMS["reduce_scatter"]["ring"]


def test_algorithms_are_frozen_and_hashable():
    algo = get_algorithm("allreduce", "ring")
    with pytest.raises(AttributeError):
        algo.name = "x"
    assert len({get_algorithm(op, name) for op, name in PAIRS}) == len(PAIRS)


def test_unknown_op_and_algorithm():
    with pytest.raises(UserError) as e:
        get_algorithm("gather", "ring")
    assert e.value.field == "op" and "'gather'" in e.value.problem and "allreduce" in e.value.allowed
    with pytest.raises(UserError) as e:
        get_algorithm("allgather", "rabenseifner")
    assert e.value.field == "algorithm" and "allgather" in e.value.problem
    assert e.value.allowed == "one of ring, recursive_doubling, bruck, paper, nccl"
    with pytest.raises(UserError):
        algorithms_for("nope")


@pytest.mark.parametrize(("op", "name"), [("allgather", "recursive_doubling"),
                                          ("reduce_scatter", "recursive_halving")])
def test_power_of_two_only(op, name):
    algo = get_algorithm(op, name)
    for p in (3, 6, 12):
        for method, args in ((algo.check, ()), (algo.phases, (1.0,)), (algo.cost_s, (1.0, 1e-6, 1e9))):
            with pytest.raises(UserError) as e:
                method(p, *args)
            assert e.value.field == "procs"
            assert e.value.problem == f"{name} {op} needs a power-of-two group, got p={p}"
            assert e.value.allowed == "use ring, bruck or paper, or a power-of-two group"
    algo.check(1)
    algo.check(16)


@pytest.mark.parametrize(("op", "name"), PAIRS)
def test_bad_arguments(op, name):
    algo = get_algorithm(op, name)
    for p in (0, -4, 2.5, True, "4"):
        with pytest.raises(UserError) as e:
            algo.check(p)
        assert e.value.field == "procs"
    good_p = 2 if op == "send" else 4  # a send's group is (sender, receiver)
    for n in (-1.0, float("nan"), float("inf")):
        with pytest.raises(UserError) as e:
            algo.cost_s(good_p, n, 1e-6, 1e9)
        assert e.value.field == "bytes"
    with pytest.raises(UserError) as e:
        algo.cost_s(good_p, 1.0, -1e-6, 1e9)
    assert e.value.field == "latency"
    for bw in (0.0, -1.0, float("nan")):
        with pytest.raises(UserError) as e:
            algo.cost_s(good_p, 1.0, 1e-6, bw)
        assert e.value.field == "bandwidth"


def test_hierarchical_local_size_errors():
    algo = get_algorithm("allreduce", "hierarchical")
    for L in (5, 0, -2, 2.0, True):
        with pytest.raises(UserError) as e:
            algo.phases(12, 1.0, local_size=L)
        assert e.value.field == "local_size"
    algo.check(12, local_size=4)
    assert algo.cost_s(12, 1.0, 1e-6, 1e9) == get_algorithm("allreduce", "ring").cost_s(12, 1.0, 1e-6, 1e9)


def test_halo_dims_errors():
    algo = get_algorithm("halo", "direct")
    for dims in ((3, 5), (0, 12), (-3, -4), ("a",), (2.5, 4)):
        with pytest.raises(UserError) as e:
            algo.cost_s(12, 1.0, 1e-6, 1e9, dims=dims)
        assert e.value.field == "halo_dims"
    assert algo.cost_s(12, 1.0, 0.0, 1.0, dims=()) == 1.0


def test_bus_factor():
    # nccl-tests doc/PERFORMANCE.md: busbw = algbw × 2(n-1)/n (allreduce), (n-1)/n (allgather,
    # reducescatter, alltoall), 1 (broadcast, reduce)
    for p in (1, 2, 3, 8, 64):
        assert bus_factor("allreduce", p) == 2 * (p - 1) / p
        for op in ("allgather", "reduce_scatter", "alltoall"):
            assert bus_factor(op, p) == (p - 1) / p
        for op in ("broadcast", "reduce", "halo"):
            assert bus_factor(op, p) == 1.0
    with pytest.raises(UserError):
        bus_factor("gather", 4)


def test_parse_collectives():
    assert parse_collectives("paper") == dict.fromkeys(OPS, "paper")
    assert parse_collectives("") == parse_collectives(None) == dict.fromkeys(OPS, "paper")
    ring = parse_collectives("ring")
    assert ring == {"allgather": "ring", "reduce_scatter": "ring", "allreduce": "ring", "broadcast": "paper",
                    "reduce": "paper", "alltoall": "paper", "halo": "paper", "send": "paper"}
    mixed = parse_collectives(" allreduce=ring , allgather=Bruck")
    assert mixed == {**dict.fromkeys(OPS, "paper"), "allreduce": "ring", "allgather": "bruck"}
    both = parse_collectives("bruck,allreduce=rabenseifner")
    assert both["allgather"] == both["reduce_scatter"] == both["alltoall"] == "bruck"
    assert both["allreduce"] == "rabenseifner" and both["halo"] == "paper"
    assert parse_collectives("hierarchical") == {**dict.fromkeys(OPS, "paper"), "allreduce": "hierarchical"}
    assert parse_collectives("tree")["broadcast"] == "tree"
    for op, name in parse_collectives("recursive_doubling").items():
        get_algorithm(op, name)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("nosuchalg", "unknown algorithm 'nosuchalg'"),
    ("gather=ring", "unknown op 'gather'"),
    ("allgather=tree", "'tree' is not an algorithm for allgather"),
    ("allreduce=ring,allreduce=tree", "allreduce is given twice"),
    ("ring,tree", "two algorithms for every op"),
])
def test_parse_collectives_errors(spec, fragment):
    with pytest.raises(UserError) as e:
        parse_collectives(spec)
    assert e.value.field == "collectives" and fragment in e.value.problem


def test_cli_rejects_unknown_collectives(capsys):
    from sim.cli import main

    assert main(["run", "--model", "alexnet", "--batch", "8", "--procs", "2", "--collectives",
                 "allgather=tree"]) == 2
    assert "error: collectives: 'tree' is not an algorithm for allgather" in capsys.readouterr().err


SIZES = st.floats(min_value=0.0, max_value=1e10, allow_nan=False)
ALPHAS = st.floats(min_value=0.0, max_value=1e-3, allow_nan=False)
BWS = st.floats(min_value=1e6, max_value=1e12, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(pair=st.sampled_from(PAIRS), p=st.integers(1, 300), n1=SIZES, n2=SIZES, a1=ALPHAS, a2=ALPHAS,
       b1=BWS, b2=BWS)
def test_cost_monotone(pair, p, n1, n2, a1, a2, b1, b2):
    op, name = pair
    algo = get_algorithm(op, name)
    if name in ("recursive_doubling", "recursive_halving") and op != "allreduce":
        p = 1 << (p.bit_length() - 1)
    if op == "send":  # a send's group is (sender, receiver); p = 1 is free
        p = min(p, 2)
    n_lo, n_hi = sorted((n1, n2))
    a_lo, a_hi = sorted((a1, a2))
    b_lo, b_hi = sorted((b1, b2))
    tol = 1e-12
    cost = algo.cost_s(p, n_lo, a_lo, b_lo)
    assert cost >= 0.0
    assert algo.cost_s(p, n_hi, a_lo, b_lo) >= cost * (1 - tol)  # more bytes never faster
    assert algo.cost_s(p, n_lo, a_hi, b_lo) >= cost * (1 - tol)  # more latency never faster
    assert algo.cost_s(p, n_lo, a_lo, b_hi) <= cost * (1 + tol)  # more bandwidth never slower
