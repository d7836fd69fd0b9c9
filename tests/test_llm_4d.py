"""Transformer training on the TP x CP x PP x DP grid: the must-hold properties, pinned to formulas.

Sources of the formulas written out below: Megatron-LM tensor parallelism (Shoeybi et al. 2019, Sec. 3: two
all-reduces per block forward, two backward), sequence parallelism (Korthikanti et al. 2022, Sec. 4.2.2:
an all-gather and a reduce-scatter in place of each all-reduce, same volume), ZeRO (Rajbhandari et al.
2020, Sec. 7: ZeRO-1/2 move 2Ψ per rank like an all-reduce, ZeRO-3 3Ψ), the pipeline bubble (Narayanan et
al. 2021, Sec. 2.2: (p-1)/(m+p-1), and (p-1)/(v*m+p-1) interleaved), ring collectives ((p-1)/p of the
vector per rank for all-gather and reduce-scatter, twice that for all-reduce), PaLM's MFU (Chowdhery et al.
2022, App. B: 6N + 12*L*H*Q*T FLOPs per token).
"""

from __future__ import annotations

import pytest

import sim.llm.run as llm_run
from sim.api import simulate
from sim.cli import main
from sim.engine import run_program
from sim.errors import UserError
from sim.llm.costs import ChunkCost
from sim.llm.parallel import Parallel
from sim.llm.program import build_program
from sim.llm.run import _split
from sim.llm.schedule import stage_actions, timeline
from sim.network import make_network
from sim.results import critical_rank
from topologies import build_topology
from workloads.zoo import TRANSFORMERS

IDEAL = "ideal:latency=2us,bandwidth=10GB/s"
GPT = TRANSFORMERS["gpt3-125m"]  # L=12, h=768, 12 heads, V=50257, seq 2048, tied embeddings


def _row(config: dict) -> dict:
    return simulate(config).summary.iloc[0].to_dict()


# ------------------------------------------------------------------------------------- pure DP = batch
@pytest.mark.parametrize("network", ["analytic", "flow"])
def test_tp_cp_pp_one_is_pure_data_parallelism(network):
    """TP = CP = PP = 1: the 4d program is the paper's batch strategy (one blocking all-reduce of every
    gradient after the backward pass: batch with one bucket of all layers), to rounding."""
    base = dict(model="gpt3-125m", procs=4, batch=8, compute="roofline:a100", precision="bf16", network=network,
                topology=IDEAL, collectives="ring")
    four_d = _row({**base, "dp": 4, "microbatch": 2})
    batch = _row({**base, "strategy": "batch", "bucket_mb": 1e6})
    for key in ("iteration_s", "compute_s", "comm_s", "batch_comm_s", "bytes_sent_per_rank"):
        assert four_d[key] == pytest.approx(batch[key], rel=1e-12), key
    assert four_d["strategy"] == "4d" and four_d["tp_comm_s"] == 0 and four_d["pp_comm_s"] == 0


# ------------------------------------------------------------------------------------- volumes per rank
def _tp_bytes(t: int, sp: bool, b: int = 1, m: int = 1) -> float:
    """Bytes one TP rank sends per iteration with ring collectives (module docstring)."""
    n = b * GPT.seq_len * GPT.hidden * 2  # one activation, bf16
    ar, half = 2 * (t - 1) / t, (t - 1) / t  # all-reduce, all-gather / reduce-scatter
    loss = 3 * ar * b * GPT.seq_len * 4  # vocabulary-parallel cross-entropy: three fp32 all-reduces
    if sp:
        per_block = 4 * half * n + 4 * half * n  # 2 AG + 2 RS forward, the same backward
        ends = half * n + 2 * half * n  # embedding RS; output layer AG forward, RS backward
    else:
        per_block = 4 * ar * n  # 2 all-reduces forward, 2 backward
        ends = 2 * ar * n  # embedding forward, output layer backward
    return m * (GPT.layers * per_block + ends + loss)


@pytest.mark.parametrize("sp", [False, True])
def test_tensor_parallel_volume_is_megatrons(sp):
    row = _row(dict(model="gpt3-125m", procs=4, tp=4, sp=sp, batch=2, microbatch=1, precision="bf16",
                    network="analytic", topology=IDEAL, collectives="ring"))
    assert row["bytes_sent_per_rank"] == pytest.approx(_tp_bytes(4, sp, m=2), rel=1e-12)


@pytest.mark.parametrize(("zero", "factor"), [(0, lambda m: 2), (1, lambda m: 2), (2, lambda m: m + 1),
                                              (3, lambda m: 3 * m)])
def test_data_parallel_volume_is_zeros(zero, factor):
    """ZeRO 0/1: 2(d-1)/d Ψ per rank; ZeRO 2 reduce-scatters every micro-batch and gathers once: (m+1);
    ZeRO 3 gathers twice and reduce-scatters once per micro-batch: 3m — each times (d-1)/d Ψ, bf16."""
    d, m = 4, 2
    from workloads.zoo import get_model

    params = get_model("gpt3-125m").params
    row = _row(dict(model="gpt3-125m", procs=d, dp=d, batch=d * m, microbatch=1, zero=zero, precision="bf16",
                    network="analytic", topology=IDEAL, collectives="ring"))
    assert row["bytes_sent_per_rank"] == pytest.approx(factor(m) * (d - 1) / d * params * 2, rel=1e-12)


def test_pipeline_sends_carry_one_activation_per_boundary():
    """Each of the m micro-batches crosses each of the p-1 stage boundaries forward and backward with
    b*s*h words: 2(p-1)m*b*s*h*w bytes over all ranks. GPT-3's embeddings are tied, so the first and last
    stage also all-reduce the word embedding's gradient (V*h words) between them: a 2-rank ring all-reduce,
    V*h*w bytes sent by each of the two (Megatron-LM's embedding group)."""
    p, m = 4, 3
    row = _row(dict(model="gpt3-125m", procs=p, pp=p, batch=m, microbatch=1, precision="bf16",
                    network="analytic", topology=IDEAL, collectives="ring"))
    total = 2 * (p - 1) * m * GPT.seq_len * GPT.hidden * 2 + 2 * GPT.vocab * GPT.hidden * 2
    assert row["bytes_sent_per_rank"] == pytest.approx(total / p, rel=1e-12)


# ------------------------------------------------------------------------------------- the bubble
def _uniform(chunks: int, fwd_s: float, bwd_s: float) -> list[ChunkCost]:
    return [ChunkCost(c, (f"l{c}",), 1, fwd_s, 0.0, bwd_s, 0.0, (), (), (), (), 0.0, 0.0) for c in range(chunks)]


@pytest.mark.parametrize(("schedule", "p", "m", "v"), [("gpipe", 4, 8, 1), ("1f1b", 4, 8, 1), ("1f1b", 8, 16, 1),
                                                       ("1f1b", 4, 2, 1), ("interleaved", 4, 8, 2),
                                                       ("interleaved", 4, 8, 4), ("interleaved", 2, 4, 3)])
def test_bubble_fraction_on_an_ideal_network(schedule, p, m, v):
    """Uniform stages (forward 1 s, backward 2 s per stage, split evenly over its v chunks), sends of 0
    bytes on a zero-latency network: the iteration is m(tf+tb) + (p-1)(tf+tb)/v and the critical rank's
    bubble is its idle share, (p-1)/(v*m+p-1) (v = 1 without interleaving)."""
    tf, tb = 1.0, 2.0
    par = Parallel(pp=p, dp=1, microbatch=1, schedule=schedule, virtual_stages=v)
    prog = build_program(par, m, _uniform(p * v, tf / v, tb / v), 2, {"send": "paper"})
    net = make_network("flow", build_topology("ideal:latency=0s,bandwidth=1GB/s", p))
    res = run_program(prog, net)
    assert res.makespan_s == pytest.approx(m * (tf + tb) + (p - 1) * (tf + tb) / v, rel=1e-12)
    bubble = _split(res.records, critical_rank(res.records))["bubble_s"]
    assert bubble / res.makespan_s == pytest.approx((p - 1) / (v * m + p - 1), rel=1e-12)


@pytest.mark.parametrize(("schedule", "p", "m", "v"), [("gpipe", 4, 8, 1), ("1f1b", 4, 8, 1), ("1f1b", 4, 2, 1),
                                                       ("interleaved", 4, 8, 2), ("interleaved", 4, 4, 2),
                                                       ("interleaved", 2, 4, 3)])
def test_timeline_of_uniform_stages_is_the_bubble_closed_form(schedule, p, m, v):
    """The screen's action-by-action timing (sim.llm.schedule.timeline) of the same uniform stages: the last
    stage ends at m(tf+tb) + (p-1)(tf+tb)/v (Narayanan et al. 2021, Sec. 2.2)."""
    tf, tb = 1.0, 2.0
    stages = timeline(schedule, p, m, v, lambda s, n, a, g, ready: ready + (tf if a.kind == "F" else tb) / v)
    assert max(done[-1][1] for done in stages) == pytest.approx(m * (tf + tb) + (p - 1) * (tf + tb) / v, rel=1e-12)
    assert [len(done) for done in stages] == [2 * m * v] * p


def test_interleaved_needs_a_multiple_of_pp_microbatches():
    with pytest.raises(UserError, match="multiple of pp"):
        stage_actions("interleaved", 0, pp=4, m=2, v=2)


# ------------------------------------------------------------------------------------- symmetry, events
@pytest.mark.parametrize("network", ["flow", "analytic"])
def test_one_rank_per_tp_group_equals_every_rank(monkeypatch, network):
    """On dgx-h100 with TP = 8 (a whole node) the TP-representative program gives the full program's times
    (the representatives keep their hosts: their DP, CP and pipeline groups span nodes)."""
    # analytic: a DP group of 8 representatives must span 8 nodes (on one node nccl would pick NVLS)
    layout = dict(pp=2, cp=2, dp=2, zero=1) if network == "flow" else dict(dp=8)
    cfg = dict(model="llama3-8b", procs=64, tp=8, batch=8, seq_len=2048, network=network, topology="dgx-h100",
               compute="roofline:h100", precision="bf16", collectives="nccl", **layout)
    fast = simulate(cfg)
    assert fast.plan.meta["tp_representative"] and fast.plan.prog.n_ranks == 8
    monkeypatch.setattr(llm_run, "tp_symmetric", lambda *a: False)
    full = simulate(cfg)
    assert full.plan.prog.n_ranks == 64
    for key in ("iteration_s", "compute_s", "tp_comm_s", "cp_comm_s", "pp_comm_s", "dp_comm_s", "bubble_s",
                "bytes_sent_per_rank"):
        assert fast.summary[key].iloc[0] == pytest.approx(full.summary[key].iloc[0], rel=1e-9), key


def test_events_do_not_grow_with_tokens():
    base = dict(model="llama3-8b", procs=16, tp=8, pp=2, batch=8, network="flow", topology="dgx-h100",
                compute="roofline:h100", precision="bf16", collectives="nccl")
    short, long = _row({**base, "seq_len": 1024}), _row({**base, "seq_len": 8192})
    assert short["events"] == long["events"]
    assert long["iteration_s"] > short["iteration_s"]


def test_deterministic():
    cfg = dict(model="gpt3-125m", procs=8, tp=2, pp=2, cp=2, batch=4, network="flow", topology="dgx-a100",
               compute="roofline:a100", precision="bf16", collectives="nccl", recompute="full", zero=3)
    a, b = simulate(cfg), simulate(cfg)
    assert a.summary.drop(columns=["wall_s"]).equals(b.summary.drop(columns=["wall_s"]))
    assert a.records.equals(b.records)


def test_mfu_is_palms_definition():
    """MFU = (6N + 12*L*H*Q*T) * tokens/s / (procs * peak); H100 bf16 dense peak 989.5 TFLOP/s (datasheet)."""
    row = _row(dict(model="gpt3-125m", procs=4, tp=2, pp=2, batch=8, precision="bf16", compute="roofline:h100",
                    network="analytic", topology=IDEAL))
    from workloads.zoo import get_model

    n = get_model("gpt3-125m").params
    flops_per_token = 6 * n + 12 * GPT.layers * GPT.heads * (GPT.hidden // GPT.heads) * GPT.seq_len
    tokens_per_s = 8 * GPT.seq_len / row["iteration_s"]
    assert row["tokens_per_s"] == pytest.approx(tokens_per_s, rel=1e-12)
    assert row["mfu"] == pytest.approx(flops_per_token * tokens_per_s / (4 * 989.5e12), rel=1e-12)


def test_recomputation_costs_a_forward():
    """Full recomputation adds one forward pass of compute per micro-batch (pp = 1, no communication)."""
    base = dict(model="gpt3-125m", procs=1, batch=2, compute="roofline:h100", precision="bf16", network="analytic",
                topology=IDEAL, dp=1)
    none, full = _row(base), _row({**base, "recompute": "full"})
    res = simulate(base)
    fwd = float(res.layers.loc[res.layers["kind"] == "chunk", "fwd_compute_s"].sum())
    assert full["compute_s"] - none["compute_s"] == pytest.approx(fwd, rel=1e-9)


# ------------------------------------------------------------------------------------- memory and fits
def test_fits_is_reported_and_require_fit_refuses(capsys):
    cfg = dict(model="llama3-70b", procs=8, tp=8, batch=8, seq_len=8192, precision="bf16", compute="roofline:h100",
               network="analytic", topology="dgx-h100")
    row = _row(cfg)
    assert row["fits"] is False or row["fits"] == False  # noqa: E712 (numpy bool)
    assert row["memory_per_rank_bytes"] > row["device_memory_bytes"]
    code = main(["run", "--model", "llama3-70b", "--procs", "8", "--tp", "8", "--batch", "8", "--precision", "bf16",
                 "--compute", "roofline:h100", "--topology", "dgx-h100", "--require-fit"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: require_fit:") and err.count("\n") == 1, err


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("args", "field"), [
    (["--tp", "5", "--procs", "5"], "tp"),  # 12 heads
    (["--pp", "13", "--procs", "13"], "pp"),  # 12 layers
    (["--dp", "2", "--procs", "2", "--batch", "3"], "microbatch"),
    (["--cp", "2", "--procs", "2", "--seq-len", "1022"], "cp"),
    (["--pp", "2", "--procs", "2", "--schedule", "zigzag"], "schedule"),
    (["--dp", "2", "--procs", "2", "--zero", "4"], "zero"),
    (["--pp", "2", "--procs", "2", "--recompute", "some"], "recompute"),
    (["--pp", "2", "--procs", "2", "--virtual-stages", "2"], "virtual_stages"),
    (["--tp", "2", "--procs", "8", "--dp", "2"], "procs"),
])
def test_bad_layouts_are_one_line_errors(args, field, capsys):
    code = main(["run", "--model", "gpt3-125m", "--batch", "8", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {field}:") and err.count("\n") == 1, err


def test_a_cnn_has_no_4d_layout(capsys):
    code = main(["run", "--model", "alexnet", "--tp", "2", "--procs", "2"])
    assert code == 2 and capsys.readouterr().err.startswith("error: model:")


@pytest.mark.parametrize("overlap", [False, True])
def test_overlapped_gradient_buckets(overlap):
    """One stage, dp = 4, forward 1 s, backward 2 s, a gradient whose ring all-reduce takes 1 s alone on a
    zero-latency network. Without overlap the reduction follows the backward: 1 + 2 + 1 = 4 s. With 4
    buckets (Megatron's --overlap-grad-reduce), each 0.25 s bucket runs under the next 0.5 s piece of the
    backward, and only the last one is exposed: 1 + 2 + 0.25 = 3.25 s."""
    d, bw = 4, 1e9
    params = bw / (2 * (d - 1) / d) / 2  # bf16 gradients: 2(d-1)/d * 2*params / bw = 1 s
    costs = [ChunkCost(0, ("l0",), 1, 1.0, 0.0, 2.0, 0.0, (), (), (), (), 0.0, params)]
    par = Parallel(dp=d, microbatch=1)
    prog = build_program(par, d, costs, 2, {"allreduce": "ring"}, overlap=overlap, bucket_params=params / 4)
    net = make_network("flow", build_topology("ideal:latency=0s,bandwidth=1GB/s", d))
    res = run_program(prog, net)
    assert res.makespan_s == pytest.approx(3.25 if overlap else 4.0, rel=1e-12)
    sent = res.records["bytes_sent"].sum() / d
    assert sent == pytest.approx(2 * (d - 1) / d * 2 * params, rel=1e-12)


def test_a_sweep_point_runs_4d():
    """Sweeps evaluate 4d points like any other (the summary's 4d fields filled)."""
    from sim.sweep.rows import simulate_point

    row = simulate_point(dict(model="gpt3-125m", procs=8, tp=2, pp=2, batch=8, network="flow", topology="dgx-a100",
                              compute="roofline:a100", precision="bf16"))
    assert row["strategy"] == "4d" and (row["tp"], row["pp"], row["dp"]) == (2, 2, 2) and row["mfu"] > 0


def test_4d_refuses_paper_grid_keys(capsys):
    assert main(["run", "--model", "gpt3-125m", "--tp", "2", "--procs", "2", "--grid", "2x1"]) == 2
    assert capsys.readouterr().err.startswith("error: grid:")


def test_critical_path_tiles_the_iteration():
    """The critical path of a 4d run (sends, CP ring on comm2, ZeRO-3 gathers) adds up to iteration_s."""
    r = simulate(dict(model="gpt3-125m", procs=16, tp=2, pp=4, cp=2, batch=8, network="flow", topology="dgx-a100",
                      compute="roofline:a100", precision="bf16", collectives="nccl", zero=3))
    path = r.critical_path()
    assert path["duration_s"].sum() == pytest.approx(r.iteration_s, rel=1e-12)
    row = r.summary.iloc[0]
    assert row["critical_compute_s"] + row["critical_comm_s"] + row["critical_wait_s"] == pytest.approx(
        r.iteration_s, rel=1e-12)


@pytest.mark.parametrize("tp_overlap", [False, True])
def test_tp_overlap_hides_tp_collectives_under_compute(tp_overlap):
    """TP = 2, one micro-batch, forward 1 s and backward 2 s with 0.5 s of TP all-reduce in each pass
    (ring on 2 ranks: 2(t-1)/t * n / bw = n / bw on a zero-latency network): in sequence 1 + 0.5 + 2 + 0.5
    = 4 s; overlapped, each pass takes the longer of its compute and its collectives: 1 + 2 = 3 s."""
    from sim.llm.costs import Comm

    n = 0.5e9  # bytes: 0.5 s at 1 GB/s
    tp_comm = (Comm("allreduce", n),)
    costs = [ChunkCost(0, ("l0",), 1, 1.0, 0.0, 2.0, 0.0, tp_comm, tp_comm, (), (), 0.0, 0.0)]
    par = Parallel(tp=2, microbatch=1)
    prog = build_program(par, 1, costs, 2, {"allreduce": "ring"}, tp_overlap=tp_overlap)
    net = make_network("flow", build_topology("ideal:latency=0s,bandwidth=1GB/s", 2))
    res = run_program(prog, net)
    assert res.makespan_s == pytest.approx(3.0 if tp_overlap else 4.0, rel=1e-12)
    tp_s = _split(res.records, 0)["tp_comm_s"]
    assert tp_s == pytest.approx(1.0, rel=1e-12)


def test_layer_table_rows_add_up_to_their_chunks():
    """layers.csv of a 4d run: one row per model layer, then per chunk; a chunk's compute and parameters are
    the sums of its layers' (independent sums of the per-layer rows)."""
    r = simulate(dict(model="gpt3-125m", procs=8, tp=2, pp=2, batch=8, compute="roofline:a100", precision="bf16"))
    table = r.layers
    from workloads.zoo import get_model

    assert list(table.loc[table["kind"] != "chunk", "layer"]) == [layer.name for layer in get_model("gpt3-125m").layers]
    chunks = table[table["kind"] == "chunk"].set_index("chunk")
    layers = table[table["kind"] != "chunk"].groupby("chunk")
    for col in ("fwd_compute_s", "bwd_compute_s"):
        assert layers[col].sum().to_numpy() == pytest.approx(chunks[col].to_numpy(), rel=1e-12), col
    # parameters: the tied output layer has none of its own, but with pp > 1 the last stage holds a copy of
    # the word embedding (V*h / tp per rank)
    copy = [0.0, GPT.vocab * GPT.hidden / 2]
    assert (layers["params_per_rank"].sum().to_numpy() + copy) == pytest.approx(chunks["params_per_rank"].to_numpy(),
                                                                                rel=1e-12)


def test_require_fit_needs_a_device_capacity(capsys):
    """--require-fit without a device memory to check against is refused, not silently passed."""
    assert main(["run", "--model", "gpt3-125m", "--procs", "2", "--tp", "2", "--batch", "2", "--require-fit"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: require_fit:") and err.count("\n") == 1


@pytest.mark.parametrize("args", [["--zero", "2"], ["--microbatch", "4"], ["--schedule", "gpipe"], ["--no-sp"],
                                  ["--tp-overlap"], ["--recompute", "full"]])
def test_4d_only_flags_are_refused_without_a_4d_layout(args, capsys):
    """A 4d-only choice on a run of the paper's strategies would be ignored: it is refused instead."""
    assert main(["run", "--model", "alexnet", "--procs", "4", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "only to a 4d run" in err and err.count("\n") == 1


def test_4d_only_flags_refused_by_best_on_a_cnn_used_on_a_transformer(capsys):
    assert main(["best", "--model", "alexnet", "--procs", "4", "--batch", "64", "--zero", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: zero:")
    assert main(["best", "--model", "gpt3-125m", "--procs", "4", "--batch", "4", "--zero", "1", "--top", "1",
                 "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    header = rows[0].split(",")
    assert rows[1].split(",")[header.index("zero")] == "1"  # fixed in the search, not refused
