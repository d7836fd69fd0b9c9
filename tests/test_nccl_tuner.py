"""NCCL tuner rules (``nccl.tuner``): the example plugin's CSV file, its matching, and its effect on a call.

The format and the matching are those of NVIDIA/nccl ``ext-tuner/example`` (README.md and plugin.c at
v2.28.7-1): first matching line; collective, inclusive byte range, nNodes and nRanks (-1 = any); a pair
that NCCL_ALGO/NCCL_PROTO disabled is skipped; ``channels`` -1 keeps NCCL's count.
"""

from __future__ import annotations

import pytest
import simpy

from sim.collectives import get_algorithm
from sim.errors import UserError
from sim.network import make_network
from topologies import build_topology
from topologies.hier import hier
from topologies.nccl_tuner import parse_rules, read_rules

BIG = "18446744073709551615"   # SIZE_MAX, what the README's "all sizes" line spells as 4294967295 on 32 bits


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "tuner.conf"
    path.write_text(text)
    return str(path)


def _choice(plan) -> tuple[str, str]:
    return plan.algo, plan.proto


def _flow_time(G, op, p, nbytes):
    net = make_network("flow", G)
    env = simpy.Environment()
    net.session(env).collective(op, "nccl", tuple(range(p)), float(nbytes))
    env.run()
    return env.now


def test_first_matching_rule_wins_and_dimensions_filter(tmp_path):
    rules = _write(tmp_path, "# comment\n\n"
                             "allreduce, 0, 65535, ring, ll, -1, -1, 32\n"       # 32 ranks only: skipped
                             "allreduce, 0, 65535, tree, ll128, -1, 3, -1\n"      # 3 nodes only: skipped
                             "allreduce, 0, 65535, ring, simple, -1, -1, -1, 4\n"  # 4 pipelined ops: skipped
                             "allreduce, 0, 65535, ring, simple, -1, -1, -1, -1, 1\n"  # registered: skipped
                             "allreduce, 0, 65535, ring, ll128, -1, 2, 16\n"
                             "allreduce, 0, 65535, tree, simple, -1, -1, -1\n"
                             f"allreduce, 65536, {BIG}, tree, simple, -1, -1, -1\n")
    G = build_topology(f"dgx-h100:nccl.tuner={rules}", 16)
    algo = get_algorithm("allreduce", "nccl")
    assert _choice(algo.plan(16, 65535, 8, G.graph["fabric"])) == ("ring", "LL128")   # inclusive upper bound
    assert _choice(algo.plan(16, 65536, 8, G.graph["fabric"])) == ("tree", "Simple")
    # no rule for all-gather: NCCL's own choice, as without a tuner
    plain = build_topology("dgx-h100", 16)
    ag = get_algorithm("allgather", "nccl")
    assert _choice(ag.plan(16, 2**20, 8, G.graph["fabric"])) == _choice(ag.plan(16, 2**20, 8, plain.graph["fabric"]))


def test_a_disabled_pair_is_skipped(tmp_path):
    # NCCL_PROTO=Simple leaves LL128's cost at NCCL_ALGO_PROTO_IGNORE: the plugin goes on to the next line
    rules = _write(tmp_path, f"allreduce,0,{BIG},ring,ll128,-1,-1,-1\nallreduce,0,{BIG},tree,simple,-1,-1,-1\n")
    G = build_topology(f"a3-mega:nccl.protocols=simple,nccl.tuner={rules}", 16)
    assert _choice(get_algorithm("allreduce", "nccl").plan(16, 2**20, 8, G.graph["fabric"])) == ("tree", "Simple")


def test_tuner_rule_equals_the_same_choice_forced_by_nccl_algo_and_proto(tmp_path):
    # Google's Simple-profile rule for 2 nodes x 8 ranks (every all-reduce as tree/Simple) written as a
    # tuner file gives the validation rows' setting (nccl.algorithms=tree, nccl.protocols=simple) exactly
    rules = _write(tmp_path, f"allreduce,0,{BIG},tree,simple,-1,2,16\n")
    a = build_topology(f"a3-mega:nccl.tuner={rules}", 16)
    b = build_topology("a3-mega:nccl.algorithms=tree,nccl.protocols=simple", 16)
    for n in (2**10, 2**20, 2**27):
        assert _flow_time(a, "allreduce", 16, n) == _flow_time(b, "allreduce", 16, n)


def test_rule_channels_cap_the_call(tmp_path):
    # 2 nodes x 8 GPUs, 8 NICs of B (efficiency e), NVLink 1000x faster, no link latency; a 1 GiB ring/Simple
    # all-gather: p − 1 = 15 steps of n/(C·16) per channel, each NIC carrying one channel's chunk per step
    # when C = 4 (channels 0..3 on NICs 0..3) and two when C = 16 (NCCL's 8 search channels doubled); NCCL's
    # ring/Simple latency 8.4 + 14 · max(3.4, 3 · 1) + 1 · 14 µs (tuning.cc, 2.19, Intel)
    B, e, n = 25e9, 0.9, 2**30
    lat = (8.4 + 14 * 3.4 + 14) * 1e-6
    rules = _write(tmp_path, f"allgather,0,{BIG},ring,simple,4,-1,-1\n")
    nccl = {"bus_efficiency": {"nic": e}, "protocols": ["Simple"]}
    tuned = hier(2, 8, 1000 * B, B, 0.0, 0.0, nccl={**nccl, "tuner": rules})
    plain = hier(2, 8, 1000 * B, B, 0.0, 0.0, nccl=nccl)
    assert get_algorithm("allgather", "nccl").plan(16, n, 8, tuned.graph["fabric"]).channels == 4
    assert _flow_time(tuned, "allgather", 16, n) == pytest.approx(15 * (n / (4 * 16)) / (B * e) + lat, rel=1e-9)
    assert _flow_time(plain, "allgather", 16, n) == pytest.approx(15 * 2 * (n / (16 * 16)) / (B * e) + lat,
                                                                  rel=1e-9)
    # a rule cannot raise the call above the communicator's channels
    wide = _write(tmp_path, f"allgather,0,{BIG},ring,simple,64,-1,-1\n")
    G = hier(2, 8, 1000 * B, B, 0.0, 0.0, nccl={**nccl, "tuner": wide})
    assert get_algorithm("allgather", "nccl").plan(16, n, 8, G.graph["fabric"]).channels == 16


@pytest.mark.parametrize(("text", "problem"), [
    ("allreduce,0,10,tree,simple,-1,-1\n", "7 fields"),
    ("allscatter,0,10,tree,simple,-1,-1,-1\n", "unknown collective"),
    ("allgather,0,10,collnet_direct,simple,-1,-1,-1\n", "not modelled"),
    ("allreduce,0,10,tree,fast,-1,-1,-1\n", "unknown name"),
    ("allreduce,10,5,tree,simple,-1,-1,-1\n", "max_bytes 5 is below 10"),
    ("allreduce,0,10,tree,simple,0,-1,-1\n", "channels 0"),
    ("allreduce,0,ten,tree,simple,-1,-1,-1\n", "not an integer"),
    ("# only a comment\n", "no rule"),
])
def test_bad_rules_name_the_line(text, problem):
    with pytest.raises(UserError, match="topology.nccl.tuner") as err:
        parse_rules(text, "t.conf")
    assert problem in str(err.value)


def test_bad_tuner_file_is_one_line_exit_2(tmp_path, capsys):
    from sim.cli import main

    missing = tmp_path / "nope.conf"
    assert main(["collective", "--op", "allreduce", "--algorithm", "nccl", "--procs", "16", "--bytes", "1MiB",
                 "--topology", f"a3-mega:nccl.tuner={missing}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: topology.nccl.tuner: ") and err.count("\n") == 1, err
    with pytest.raises(UserError, match="topology.nccl.tuner"):
        read_rules(str(tmp_path))                                     # a directory, not a file
