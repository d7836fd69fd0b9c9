"""``cp_comm``: how context parallelism exchanges keys and values (p2p ring attention, Llama 3's exposed K/V
all-gather, DeepSpeed-Ulysses all-to-all), against hand-written α-β formulas, the 4d screen and
the one-line errors."""

from __future__ import annotations

import pytest
from screen_check import screen_vs_simulate

from sim.api import load_setup, simulate
from sim.cli import main
from sim.config import make_config
from sim.llm.costs import chunk_costs

ALPHA_S, BW_BPS = 2e-6, 50e9
IDEAL = dict(model="llama2-7b", seq_len=4096, batch=2, procs=4, cp=4, tp=1, pp=1, dp=1, precision="bf16",
             compute="roofline:h100", network="analytic", topology="ideal:latency=2us,bandwidth=50GB/s",
             collectives="ring")


def _ring_s(p: int, n: float) -> float:
    """Ring all-gather / reduce-scatter, and pairwise all-to-all, of ``n`` bytes over ``p`` ranks:
    (p−1)(α + n/(p·bw)) (Thakur, Rabenseifner & Gropp 2005, §4)."""
    return (p - 1) * (ALPHA_S + n / (p * BW_BPS))


def _hand_iteration_s(cp_comm: str, recompute: str = "none") -> float:
    """One rank of IDEAL (pp = dp = tp = 1, two micro-batches): each micro-batch's forward and backward
    compute from the chunk costs, plus the exchanges written out from llama2-7b's shape (32 blocks, 32
    query and 32 key/value heads of 128, bf16), then the gradients' all-reduce."""
    cfg = make_config({**IDEAL, "cp_comm": cp_comm, "recompute": recompute})
    setup = load_setup(cfg)
    (c,) = chunk_costs(setup.model, cfg.parallel(), setup.compute_model.time, cfg.word_bytes())
    p, blocks, heads, d, word = 4, 32, 32, 128, 2
    t = 1 * 4096 / p  # tokens per rank of one micro-batch
    kv = p * t * heads * d * word  # K (or V) of the whole sequence
    local = t * heads * d * word  # Q, K, V or the output on one rank
    if cp_comm == "p2p":  # beside the attention core, K and V in one message (Transformer Engine's KV buffer):
        # gathered; backward gathered again and dK, dV reduce-scattered
        ring_f, ring_b = blocks * _ring_s(p, 2 * kv), 2 * blocks * _ring_s(p, 2 * kv)
        core_f, core_b = max(c.attn_fwd_s, ring_f), max(c.attn_bwd_s, ring_b)
        after_last_compute = core_b - c.attn_bwd_s
    elif cp_comm == "allgather":  # in line: K, V gathered before; backward dK, dV reduce-scattered after
        core_f = 2 * blocks * _ring_s(p, kv) + c.attn_fwd_s
        after_last_compute = 2 * blocks * _ring_s(p, kv)
        core_b = 2 * blocks * _ring_s(p, kv) + c.attn_bwd_s + after_last_compute
    else:  # a2a, in line: Q, K, V before and the output after; backward dO before, dQ, dK, dV after
        core_f = 3 * blocks * _ring_s(p, local) + c.attn_fwd_s + blocks * _ring_s(p, local)
        after_last_compute = 3 * blocks * _ring_s(p, local)
        core_b = blocks * _ring_s(p, local) + c.attn_bwd_s + after_last_compute
    # selective recomputation repeats the attention core with its exchange before the backward
    again = core_f if recompute == "selective" else 0.0
    busy = 2 * (c.fwd_s + core_f + again + c.bwd_s + core_b)
    # the gradients' ring all-reduce over the cp·dp = 4 ranks that hold the same weights, 2(p−1)(α + n/(p·bw)),
    # starts when the last backward's last compute (its attention core) ends, as the DP reduction does
    allreduce = 2 * (p - 1) * (ALPHA_S + c.params * word / (p * BW_BPS))
    return max(busy, busy - after_last_compute + allreduce)


@pytest.mark.parametrize("recompute", ["none", "selective"])
@pytest.mark.parametrize("cp_comm", ["p2p", "allgather", "a2a"])
def test_iteration_equals_hand_formula(cp_comm, recompute):
    res = simulate({**IDEAL, "cp_comm": cp_comm, "recompute": recompute})
    want = _hand_iteration_s(cp_comm, recompute)
    assert float(res.summary["iteration_s"].iloc[0]) == pytest.approx(want, rel=1e-9)
    assert res.summary["cp_comm"].iloc[0] == cp_comm


BASE = dict(model="llama2-7b", seq_len=4096, batch=4, procs=8, topology="dgx-h100", network="analytic",
            compute="roofline:h100", precision="bf16", collectives="nccl")


def _screen_vs_simulate(over: dict) -> tuple[float, float]:
    return screen_vs_simulate({**BASE, **over})


# pp = 1 and equal pipeline stages: the screen is exact (as for the ring, tests/test_best4d.py); the p2p
# rows with tp = 1 and with tp_overlap pin the ring's join (a pass ends when its ring has); the ZeRO-2 row
# with tp_overlap pins the TP collectives' start (when the pass's compute can start, not after the previous
# micro-batch's gradient reduce-scatter on the comm stream); the TP-4 row, TP-bound under tp_overlap, pins
# the gradient reduction's start (at the backward's last compute, while its TP collectives still run); the
# --overlap rows pin the bucketed reductions (each bucket priced at its own size, when its share of the
# backward's main compute ends) and ZeRO 1/2's parameter gather under the first forward
@pytest.mark.parametrize("over", [dict(tp=2, cp=4), dict(cp=8, recompute="full"), dict(tp=2, cp=2, recompute="selective"),
                                  dict(tp=2, cp=2, tp_overlap=True), dict(tp=2, cp=2, pp=2),
                                  dict(tp=2, cp=2, dp=2, zero=1), dict(tp=2, cp=2, dp=2, zero=2, tp_overlap=True),
                                  dict(tp=4, dp=2, zero=1, tp_overlap=True, microbatch=2),
                                  dict(tp=2, dp=4, overlap=True), dict(tp=2, cp=2, dp=2, zero=1, overlap=True),
                                  dict(tp=2, dp=4, zero=2, overlap=True, tp_overlap=True)])
@pytest.mark.parametrize("cp_comm", ["p2p", "allgather", "a2a"])
def test_screen_exact(over, cp_comm):
    got, want = _screen_vs_simulate({**over, "cp_comm": cp_comm})
    assert got == pytest.approx(want, rel=1e-9)


def test_bytes_per_rank_follow_the_formulas():
    """Per rank and micro-batch, bytes sent: ring/allgather (p−1)/p of the gathered K and V, forward and
    twice backward; a2a (p−1)/p of the local Q, K, V and output, each way."""
    p, blocks, word, t, hd = 4, 32, 2, 1024, 32 * 128
    sent = {}
    for mode in ("p2p", "allgather", "a2a"):
        rec = simulate({**IDEAL, "cp_comm": mode}, engine="full").records
        mine = rec[(rec["rank"] == 0) & (rec["category"] == "domain")]
        sent[mode] = float(mine["bytes_sent"].sum()) / 2  # two micro-batches
    kv_gathered = p * t * 2 * hd * word
    assert sent["p2p"] == pytest.approx(3 * blocks * (p - 1) / p * kv_gathered, rel=1e-12)
    assert sent["allgather"] == pytest.approx(sent["p2p"], rel=1e-12)
    assert sent["a2a"] == pytest.approx(2 * blocks * (p - 1) / p * 4 * t * hd * word, rel=1e-12)


@pytest.mark.parametrize("args", [
    ["--model", "llama3-8b", "--tp", "8", "--cp", "2", "--cp-comm", "a2a", "--procs", "16"],  # 1 KV head per TP rank
    ["--model", "llama2-7b", "--tp", "1", "--cp", "2", "--cp-comm", "ring", "--procs", "2"],  # not a cp_comm
    ["--model", "alexnet", "--cp-comm", "allgather", "--procs", "4"],  # a CNN has no context parallelism
])
def test_bad_cp_comm_is_one_line(args, capsys):
    code = main(["run", *args, "--batch", "4", "--network", "analytic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: cp_comm"), err


def test_a2a_runs_where_cp_divides_the_heads_of_a_tp_rank():
    """llama2-7b at TP 2 holds 16 query and 16 key/value heads per TP rank: CP 8 divides them."""
    res = simulate({**IDEAL, "procs": 16, "tp": 2, "cp": 8, "batch": 1, "cp_comm": "a2a"})
    assert res.summary["cp_comm_s"].iloc[0] > 0


def test_llama3_long_context_row_runs_allgather():
    """The validation row of Llama 3 405B's CP 16 stage states the paper's exchange (Sec. 3.3.2)."""
    from pathlib import Path

    import yaml

    rows = yaml.safe_load((Path(__file__).parents[1] / "validation" / "rows.yaml").read_text())
    row = next(r for r in rows["rows"] if r["id"] == "llama3-405b-16k-gpus-cp16")
    assert row["setting"]["cp_comm"] == "allgather"


def test_best_searches_ring_and_ulysses_where_the_heads_allow():
    """Unset, ``cp_comm`` is searched: p2p at every cp, a2a at the cp > 1 that divide a TP rank's heads
    (llama2-7b: 32 query = key/value heads; seq 32768 searches CP); set, every layout carries it."""
    from dataclasses import replace

    from sim.llm.search import layouts
    from workloads.zoo import get_model

    tcfg = replace(get_model("llama2-7b").transformer, seq_len=32768)
    ring = layouts(tcfg, 64, 8, {"cp_comm": "p2p"}, 8)
    ulysses = layouts(tcfg, 64, 8, {"cp_comm": "a2a"}, 8)
    both = layouts(tcfg, 64, 8, {}, 8)
    assert {p.cp_comm for p in ring} == {"p2p"} and {p.cp_comm for p in ulysses} == {"a2a"}
    assert {(p.tp, p.cp) for p in ulysses} == {(p.tp, p.cp) for p in ring if (32 // p.tp) % p.cp == 0}
    assert {(p.tp, p.cp) for p in ring} != {(p.tp, p.cp) for p in ulysses}  # some cp are left out
    assert set(both) == set(ring) | {p for p in ulysses if p.cp > 1}
    assert all(p.cp > 1 for p in ulysses if p in both)


def test_best_screens_each_cp_comm_with_its_own_costs():
    """pp = 1 on analytic: the screen is exact, so every row's screen equals its re-timed iteration — for
    the a2a rows too (their chunk costs are not the ring's)."""
    from sim.best import rank_best

    cfg = make_config({**BASE, "procs": 8, "batch": 2, "seq_len": 32768, "tp": 2, "pp": 1, "zero": 0,
                       "recompute": "selective", "microbatch": 1})
    table = rank_best(cfg, top=100, exact_up_to=100)
    assert set(table["cp_comm"]) == {"p2p", "a2a"}
    for _, row in table.iterrows():
        assert row["screen_iteration_s"] == pytest.approx(row["iteration_s"], rel=1e-9), row["cp_comm"]


@pytest.mark.parametrize("cp_comm", ["allgather", "a2a"])
def test_without_context_parallelism_cp_comm_changes_nothing(cp_comm):
    """cp = 1: no exchange, so every kind runs the same program, bit for bit."""
    base = {**BASE, "tp": 2, "pp": 2, "recompute": "selective", "network": "flow"}
    ring = simulate({**base, "cp_comm": "p2p"}).summary.iloc[0]
    other = simulate({**base, "cp_comm": cp_comm}).summary.iloc[0]
    assert (other["iteration_s"], other["events"]) == (ring["iteration_s"], ring["events"])
