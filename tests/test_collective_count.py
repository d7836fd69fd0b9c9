"""``Collective.count``: one op standing for ``count`` identical collectives run back to back by its group.

The phases of one copy run with every ``steps`` × count (:func:`sim.collectives.base.repeat_phases`). On an
uncontended network the α-β time of phases is Σ steps·(α + max n/β) (:func:`ideal_time_s`), linear in
the steps, so count = k must take exactly k times one collective under ``analytic``, ``flow`` and
``step`` (to rounding, 1e-12 relative), move k times the bytes per rank and k times the bytes per link.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.collectives.base import make_phase, repeat_phases
from sim.engine import run_program
from sim.errors import UserError
from sim.network import make_network
from sim.network.linkmeter import LinkMeter
from sim.program import Collective, Program
from topologies import build_topology
from topologies.basic import ideal
from topologies.hier import hier

ALPHA, BW = 2e-6, 6 * 2**30
K = 5

# (op, algorithm, group size, topology builder): ring and rabenseifner on `ideal`, hierarchical on a
# node-aligned hier group (2 nodes x 4 GPUs), nccl on 2 nodes of dgx-a100
CASES = [
    ("allreduce", "ring", 4, lambda p: ideal(p, bandwidth_Bps=BW, latency_s=ALPHA)),
    ("allreduce", "rabenseifner", 6, lambda p: ideal(p, bandwidth_Bps=BW, latency_s=ALPHA)),
    ("allreduce", "hierarchical", 8, lambda p: hier(2, 4, 450e9, 50e9, 1e-6, 2e-6)),
    ("allreduce", "nccl", 16, lambda p: build_topology("dgx-a100", p)),
    ("allgather", "nccl", 16, lambda p: build_topology("dgx-a100", p)),
    ("send", "direct", 2, lambda p: ideal(p, bandwidth_Bps=BW, latency_s=ALPHA)),
]


def _program(op: str, alg: str, p: int, nbytes: float, count: int) -> Program:
    group = tuple(range(p))
    c = Collective(op, group, nbytes, alg, key="c", count=count)
    return Program(tuple((c,) for _ in group))


@pytest.mark.parametrize("network", ["analytic", "flow", "step"])
@pytest.mark.parametrize(("op", "alg", "p", "topo"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
@pytest.mark.parametrize("nbytes", [3 * 2**20, 1e3])
def test_count_k_takes_k_times_one(network, op, alg, p, topo, nbytes):
    net = make_network(network, topo(p))  # one model: its plan caches must tell the counts apart
    one = run_program(_program(op, alg, p, nbytes, 1), net)
    many = run_program(_program(op, alg, p, nbytes, K), net)
    again = run_program(_program(op, alg, p, nbytes, 1), net)
    assert many.makespan_s == pytest.approx(K * one.makespan_s, rel=1e-12)
    assert again.makespan_s == one.makespan_s
    np.testing.assert_allclose(many.records["bytes_sent"], K * one.records["bytes_sent"], rtol=1e-12)
    # the events do not grow with count under flow (folded steps) and analytic (one timeout)
    if network != "step":
        assert many.events == one.events


def test_ring_count_by_formula():
    # ring all-reduce: 2(p-1)(α + n/(p·bw)) per copy (Thakur, Rabenseifner & Gropp 2005 §4.4); k copies
    p, n = 4, 3 * 2**20
    for network in ("analytic", "flow", "step"):
        res = run_program(_program("allreduce", "ring", p, n, K),
                          make_network(network, ideal(p, bandwidth_Bps=BW, latency_s=ALPHA)))
        assert res.makespan_s == pytest.approx(K * 2 * (p - 1) * (ALPHA + n / (p * BW)), rel=1e-12)
        assert res.records["bytes_sent"].tolist() == pytest.approx([K * 2 * (p - 1) / p * n] * p, rel=1e-12)


@pytest.mark.parametrize("network", ["flow", "step"])
def test_link_bytes_scale_with_count(network):
    p, n = 8, 2**20
    G = hier(2, 4, 450e9, 50e9, 1e-6, 2e-6)
    totals = []
    for count in (1, K):
        net = make_network(network, G)
        meter = LinkMeter(net.router)
        run_program(_program("allreduce", "hierarchical", p, n, count), net, meter)
        # the fluid integral of the loads and the routed phases are independent computations: equal
        routed = meter.routed_bytes()
        np.testing.assert_allclose(meter.bytes[: len(routed)], routed, rtol=1e-9, atol=1e-3)
        totals.append(meter.bytes.copy())
        links, nbytes = net.link_bytes("allreduce", "hierarchical", tuple(range(p)), n, (), count)
        np.testing.assert_allclose(meter.bytes[links], nbytes, rtol=1e-9)
    np.testing.assert_allclose(totals[1], K * totals[0], rtol=1e-9)
    assert totals[0].sum() > 0


def test_repeat_phases_multiplies_steps_only():
    phases = [make_phase([0, 1], [1, 0], 8.0, steps=3, latency_s=1e-6), make_phase([0], [1], 4.0)]
    rep = repeat_phases(phases, 4)
    assert [ph.steps for ph in rep] == [12, 4]
    for a, b in zip(phases, rep, strict=True):
        assert a.src is b.src and a.dst is b.dst and a.nbytes is b.nbytes and a.latency_s == b.latency_s
    assert repeat_phases(phases, 1) == phases
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(ValueError):
            repeat_phases(phases, bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_count_is_a_user_error(bad):
    c = Collective("allreduce", (0, 1), 1e6, "ring", key="c", count=bad)
    with pytest.raises(UserError) as e:
        run_program(Program(((c,), (c,))), make_network("flow", ideal(2)))
    assert e.value.field == "program.count"


def test_members_must_agree_on_count():
    a = Collective("allreduce", (0, 1), 1e6, "ring", key="c", count=2)
    b = Collective("allreduce", (0, 1), 1e6, "ring", key="c", count=3)
    with pytest.raises(UserError) as e:
        run_program(Program(((a,), (b,))), make_network("flow", ideal(2)))
    assert e.value.field == "program.key"
