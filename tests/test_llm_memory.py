"""Memory per rank of transformer training (sim/llm/memory.py), pinned to the ZeRO paper, Korthikanti et al.
and Megatron-LM's schedule, and to independent parameter counts."""

from __future__ import annotations

import doctest
from dataclasses import replace

import pytest

import sim.llm.memory as mem
from sim.errors import UserError
from sim.llm.memory import (
    activation_sizes,
    device_memory_bytes,
    fits,
    max_memory_breakdown,
    memory_breakdown,
    model_state_bytes,
    stage_params_per_rank,
)
from sim.llm.parallel import Parallel
from workloads.device_specs import device_from_mapping
from workloads.transformer import TransformerConfig, build_transformer
from workloads.zoo import get_transformer_config

GB = 1e9


def gpt(name: str, layers: int, hidden: int, heads: int, seq_len: int = 2048, vocab: int = 51200) -> TransformerConfig:
    """A GPT of Korthikanti et al. 2022, Table 3 (MHA, GELU with f = 4h; s = 2048, v = 51200, Sec. 6)."""
    return TransformerConfig(name, layers, hidden, heads, ffn=4 * hidden, vocab=vocab, seq_len=seq_len,
                             mlp="gelu", norm="layernorm", bias=True, positions="learned")


#: Korthikanti et al. 2022, Table 3: (heads, hidden, layers)
K22B = gpt("22b", 48, 6144, 64)
K175B = gpt("175b", 96, 12288, 96)
K530B = gpt("530b", 105, 20480, 128)
K1T = gpt("1t", 128, 25600, 160)


def layer(cfg, **kw) -> float:
    precision = kw.pop("precision", "bf16")
    dropout = kw.pop("dropout", True)
    return activation_sizes(cfg, Parallel(**kw), precision=precision, dropout=dropout).layer_bytes


# ------------------------------------------------------------------- Korthikanti et al. 2022, Table 2
@pytest.mark.parametrize("cfg", [K22B, K175B, K530B, K1T], ids=lambda c: c.name)
@pytest.mark.parametrize("b", [1, 4])
def test_table2_rows(cfg, b):
    """Every row of Table 2 (activation bytes per transformer layer), t = 8 as in Table 3."""
    s, h, a, t = cfg.seq_len, cfg.hidden, cfg.heads, 8
    sbh = s * b * h
    assert layer(cfg, microbatch=b) == pytest.approx(sbh * (34 + 5 * a * s / h), rel=1e-12)  # no parallelism
    assert layer(cfg, tp=t, sp=False, microbatch=b) == pytest.approx(
        sbh * (10 + 24 / t + 5 * a * s / (h * t)), rel=1e-12)  # tensor parallel (baseline)
    assert layer(cfg, tp=t, sp=True, microbatch=b) == pytest.approx(
        sbh * (34 / t + 5 * a * s / (h * t)), rel=1e-12)  # tensor + sequence parallel
    assert layer(cfg, tp=t, sp=False, microbatch=b, recompute="selective") == pytest.approx(
        sbh * (10 + 24 / t), rel=1e-12)  # tensor parallel + selective recomputation
    assert layer(cfg, tp=t, sp=True, microbatch=b, recompute="selective") == pytest.approx(
        sbh * 34 / t, rel=1e-12)  # tensor + sequence parallel + selective
    assert layer(cfg, tp=t, sp=False, microbatch=b, recompute="full") == pytest.approx(2 * sbh, rel=1e-12)
    # Sec. 5: storing only each TP rank's share of the layer input "can be reduced to 2sbhL/t" (what SP does)
    assert layer(cfg, tp=t, sp=True, microbatch=b, recompute="full") == pytest.approx(2 * sbh / t, rel=1e-12)


def test_selective_recompute_savings_published_for_gpt3_and_mtnlg():
    """Sec. 5: 5as/h = 80 for GPT-3 and 64 for MT-NLG; selective recomputation saves 70 % and 65 %."""
    for cfg, five_as_h, saved in ((K175B, 80, 0.70), (K530B, 64, 0.65)):
        sbh = cfg.seq_len * cfg.hidden
        full = layer(cfg, tp=8)
        selective = layer(cfg, tp=8, recompute="selective")
        assert full / sbh * 8 - 34 == pytest.approx(five_as_h, rel=1e-12)
        assert round(1 - selective / full, 2) == saved


def test_zoo_gpt3_175b_is_the_papers_gpt3_per_layer():
    """The zoo's gpt3-175b (vocabulary 50257) has Korthikanti's per-layer activations: a = 96, h = 12288."""
    z = get_transformer_config("gpt3-175b")
    sbh = 2048 * 12288
    assert layer(z, tp=8) == pytest.approx(sbh / 8 * (34 + 80), rel=1e-12)


# -------------------------------------------------------------- generalised to GQA, SwiGLU, words, CP
def test_gqa_swiglu_tensor_by_tensor():
    """llama2-70b (64 query heads, 8 KV heads of 128, SwiGLU f = 28672), t = 8 with SP, each tensor of
    Korthikanti Sec. 4.1 counted by hand: norms 4sbh, q/k/v input 2sbh, Q 2sb·Hd, K and V 2sb·H_kv·d each,
    o_proj input 2sb·Hd, scores 5as²b, two dropout masks sbh each, MLP input 2sbh, gate and up 2·2sbf,
    SwiGLU output 2sbf. Inside the TP regions / t, the rest / t by sequence parallelism."""
    c = get_transformer_config("llama2-70b")
    s, b, h, f, a, d, kv, t = 4096, 1, 8192, 28672, 64, 128, 8, 8
    sb = s * b
    by_hand = (4 * sb * h + 2 * sb * h + 2 * sb * a * d + 2 * sb * kv * d + 2 * sb * kv * d + 2 * sb * a * d
               + 5 * a * s * s * b + sb * h + 2 * sb * h + 2 * 2 * sb * f + 2 * sb * f + sb * h) / t
    assert layer(c, tp=t) == pytest.approx(by_hand, rel=1e-12)
    # TP 16 > 8 KV heads: each rank holds one whole (replicated) KV head, K and V 2sb·d each; no SP:
    # the 10sbh outside the TP regions stays whole
    t = 16
    by_hand = (10 * sb * h + 2 * sb * d + 2 * sb * d
               + (2 * sb * a * d + 2 * sb * a * d + 5 * a * s * s * b + 6 * sb * f) / t)
    assert layer(c, tp=t, sp=False) == pytest.approx(by_hand, rel=1e-12)


def test_generalised_form_reduces_to_34_for_mha_gelu_4h():
    """MHA, GELU, f = 4h, no scores (selective): exactly 34 sbh, for any width."""
    for h, a in ((768, 12), (4096, 32), (5120, 40)):
        cfg = gpt("x", 2, h, a, seq_len=1024)
        assert layer(cfg, recompute="selective") == pytest.approx(34 * 1024 * h, rel=1e-12)


def test_no_dropout_drops_masks_and_dropout_output():
    """Without dropout: 34 - 2 masks = 32 sbh, and the scores are the softmax output alone, 2as²b."""
    s, h, a = K175B.seq_len, K175B.hidden, K175B.heads
    assert layer(K175B, dropout=False) == pytest.approx(32 * s * h + 2 * a * s * s, rel=1e-12)


def test_fp32_doubles_the_16_bit_tensors_not_the_masks():
    """Korthikanti's constants assume 2-byte values and 1-byte masks: at fp32, 32 sbh of 16-bit tensors
    become 64 sbh, the two masks stay 2 sbh; scores 4as²b of 16-bit values become 8as²b, the mask as²b stays."""
    s, h, a = K22B.seq_len, K22B.hidden, K22B.heads
    assert layer(K22B, precision="fp32") == pytest.approx(66 * s * h + 9 * a * s * s, rel=1e-12)


def test_context_parallel_splits_tokens_and_the_query_rows_of_the_scores():
    """cp = 4: s/cp tokens per rank; the scores are its s/cp queries against all s keys."""
    s, h, a, cp = K175B.seq_len, K175B.hidden, K175B.heads, 4
    assert layer(K175B, tp=8, cp=cp) == pytest.approx(
        (34 * (s / cp) * h + 5 * a * (s / cp) * s) / 8, rel=1e-12)


# --------------------------------------------------------------------- ZeRO model states (Fig. 1)
@pytest.mark.parametrize("zero, published_GB", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_figure_1(zero, published_GB):
    """Rajbhandari et al. 2020, Fig. 1: Ψ = 7.5B, N_d = 64, K = 12: 120, 31.4, 16.6, 1.9 GB per device."""
    total = sum(model_state_bytes(7.5e9, precision="bf16", zero=zero, shards=64))
    assert round(total / GB, 1) == published_GB


def test_zero_mixed_precision_and_fp32_rules():
    """ZeRO Sec. 3.1: mixed-precision Adam needs 16Ψ (a 1.5B GPT-2: at least 24 GB); fp32 Adam 4+4+8."""
    assert sum(model_state_bytes(1.5e9, precision="amp")) == pytest.approx(24 * GB, rel=1e-12)
    for p in ("bf16", "fp16", "amp", "fp8"):
        assert model_state_bytes(1.0, precision=p) == (2, 2, 12)
    for p in ("fp32", "tf32"):
        assert model_state_bytes(1.0, precision=p) == (4, 4, 8)
    assert model_state_bytes(1.0, precision="fp32", zero=3, shards=4) == (1, 1, 2)


def test_zero_shards_over_dp_times_cp():
    cfg = get_transformer_config("llama3-8b")
    one = memory_breakdown(cfg, Parallel(tp=2, cp=2, dp=4, zero=1))
    psi = one.params
    assert one.optimizer_bytes == pytest.approx(12 * psi / 8, rel=1e-12)
    assert (one.weights_bytes, one.gradients_bytes) == (2 * psi, 2 * psi)


# ------------------------------------------------------------------------------ parameters per rank
@pytest.mark.parametrize("name", ["llama2-7b", "llama3-8b", "gpt3-125m", "gpt3-1.3b"])
@pytest.mark.parametrize("pp", [1, 4])
def test_stage_params_sum_to_the_layer_models_count(name, pp):
    """Σ over stages of Ψ at t = 1 is the parameter count of workloads.transformer's layer model, plus the
    last stage's copy of a tied embedding when PP > 1 (Megatron keeps one there)."""
    cfg = get_transformer_config(name)
    par = Parallel(pp=pp)
    total = sum(stage_params_per_rank(cfg, par, r) for r in range(pp))
    extra = cfg.vocab * cfg.hidden if cfg.tied_embeddings and pp > 1 else 0
    assert total == build_transformer(cfg).params + extra


def test_tensor_parallel_params_replicate_only_norms_row_biases_and_positions():
    """gpt3-1.3b (LayerNorm, biases, learned positions) at t = 8: t·Ψ counts the replicated vectors t times:
    per block 2 LayerNorms (2h each) and the o_proj and fc2 biases (h each); the final LayerNorm; the
    position table."""
    cfg = get_transformer_config("gpt3-1.3b")
    t, h, L = 8, cfg.hidden, cfg.layers
    total = stage_params_per_rank(cfg, Parallel(tp=t), 0)  # pp = 1: the one stage holds everything
    replicated = L * (2 * 2 * h + 2 * h) + 2 * h + cfg.n_positions * h
    assert t * total == pytest.approx(build_transformer(cfg).params + (t - 1) * replicated, rel=1e-12)


# ---------------------------------------------------------------------------- pipeline in flight
def test_1f1b_keeps_pp_minus_stage_microbatches():
    """Korthikanti Sec. 4.2.3 (the first stage stores p micro-batches) and App. C (max(0, p - S) outstanding
    at stage S); Megatron-LM: warm-up pp - stage - 1, plus one in steady state; capped at m."""
    cfg = get_transformer_config("llama2-7b")
    for r in range(8):
        assert memory_breakdown(cfg, Parallel(pp=8), stage=r).inflight_microbatches == 8 - r
        assert memory_breakdown(cfg, Parallel(pp=8), stage=r, batch=3).inflight_microbatches == min(8 - r, 3)


def test_1f1b_first_stage_holds_L_layers_plus_the_embedding():
    """Korthikanti eq. (5) and Sec. 4.3 with p > 1: sbhL/t·(34 + p/L) on the first stage (t = 8, SP,
    selective); and for p = 1 also the last norm, output projection and fp32 logits: + 4sbh/t·(1 + v/h)."""
    cfg = K530B
    s, h, L, v, t = cfg.seq_len, cfg.hidden, cfg.layers, cfg.vocab, 8
    sbh = s * h
    for p in (35, 1):
        m = memory_breakdown(cfg, Parallel(tp=t, pp=p, recompute="selective"))
        delta = 1 if p == 1 else 0
        expected = sbh * L / t * (34 + p / L + delta * 4 / L * (1 + v / h))
        assert m.activations_bytes + m.inflight_bytes == pytest.approx(expected, rel=1e-12)


def test_gpipe_keeps_every_microbatch():
    cfg = get_transformer_config("llama2-7b")
    m = memory_breakdown(cfg, Parallel(pp=4, dp=2, schedule="gpipe"), stage=2, batch=2 * 16)
    assert m.inflight_microbatches == 16


@pytest.mark.parametrize("p, v", [(2, 2), (4, 2), (4, 4), (8, 3)])
def test_interleaved_chunks_in_flight(p, v):
    """Megatron-LM schedules.py: warm-up (p - r - 1)*2 + (v - 1)*p pairs, one more in steady state, each a
    chunk of L/(p·v) layers; on stage 0 that is L·(1 + (p - 1)/(p·v)) layers (Korthikanti Sec. 4.2.3, with
    m the number of interleaving stages). No dropout: the embedding adds nothing; the last stage's output
    layer is left out by comparing layers only on the other stages."""
    L = 2 * p * v * 3
    cfg = gpt("x", L, 512, 8, seq_len=256)
    par = Parallel(pp=p, schedule="interleaved", virtual_stages=v)
    per_layer = layer(cfg, dropout=False)
    first = memory_breakdown(cfg, par, dropout=False)
    assert (first.activations_bytes + first.inflight_bytes) / per_layer == pytest.approx(
        L * (1 + (p - 1) / (p * v)), rel=1e-12)
    for r in range(p - 1):
        m = memory_breakdown(cfg, par, stage=r, dropout=False, batch=4 * p)
        chunks = 2 * (p - r - 1) + (v - 1) * p + 1
        assert (m.activations_bytes + m.inflight_bytes) / per_layer == pytest.approx(chunks * L / (p * v), rel=1e-12)
        # capped at the m·v pairs there are (m = p micro-batches; current Megatron-LM, where m == p is no
        # longer all warm-up as it was before its commit 4295be1)
        few = memory_breakdown(cfg, par, stage=r, dropout=False, batch=p)
        assert (few.activations_bytes + few.inflight_bytes) / per_layer == pytest.approx(
            min(chunks, p * v) * L / (p * v), rel=1e-12)


def test_interleaved_steady_state_does_not_depend_on_m():
    cfg = get_transformer_config("gpt3-2.7b")
    par = Parallel(pp=4, schedule="interleaved", virtual_stages=2)
    for r in range(4):
        unbounded = memory_breakdown(cfg, par, stage=r).total_bytes
        assert memory_breakdown(cfg, par, stage=r, batch=64).total_bytes == pytest.approx(unbounded, rel=1e-12)


def test_max_breakdown_is_the_heaviest_stage():
    """1F1B: the first stage holds the most (Korthikanti Sec. 4.2.3) for GPT-3 175B on t = 8, p = 8."""
    cfg = get_transformer_config("gpt3-175b")
    par = Parallel(tp=8, pp=8, recompute="selective")
    worst = max_memory_breakdown(cfg, par)
    assert worst.stage == 0
    assert worst.total_bytes == max(memory_breakdown(cfg, par, stage=r).total_bytes for r in range(8))


def test_breakdown_adds_up_and_is_deterministic():
    cfg = get_transformer_config("llama3-70b")
    par = Parallel(tp=8, cp=2, pp=4, dp=8, zero=1, recompute="selective", schedule="interleaved",
                   virtual_stages=5)
    a = memory_breakdown(cfg, par, stage=3, batch=256)
    b = memory_breakdown(cfg, par, stage=3, batch=256)
    assert a == b
    d = a.as_dict()
    assert d["total_bytes"] == (d["weights_bytes"] + d["gradients_bytes"] + d["optimizer_bytes"]
                                + d["activations_bytes"] + d["inflight_bytes"])


# ------------------------------------------------------------------------------ devices and fits
def test_device_capacities_from_datasheets():
    """NVIDIA datasheets: A100 SXM 80GB, H100 SXM 80GB, V100 32GB (HBM capacities are binary)."""
    assert device_memory_bytes("a100") == 80 * 2**30
    assert device_memory_bytes("h100") == 80 * 2**30
    assert device_memory_bytes("v100") == 32 * 2**30
    assert device_memory_bytes("knl") == 96 * 2**30  # NERSC Cori KNL node: 96 GB DDR4 (MCDRAM is a cache)


def test_fits_and_unknown_capacity():
    data = {"name": "x", "peak_flops": "1TFLOP/s", "mem_bandwidth": "1GB/s", "b_half": 1}
    unknown = device_from_mapping(data, "x.yaml", "x")
    assert device_memory_bytes(unknown) is None
    small = device_from_mapping({**data, "memory": "1GiB"}, "x.yaml", "x")
    cfg = get_transformer_config("gpt3-125m")
    m = memory_breakdown(cfg, Parallel())
    assert fits(m, device_memory_bytes(unknown)) is None
    assert fits(m, device_memory_bytes(small)) is False  # 125M params x 16 bytes alone is 2 GB
    assert fits(m, device_memory_bytes("h100")) is True
    assert fits(m, m.total_bytes) is True and fits(m, m.total_bytes - 1) is False


@pytest.mark.parametrize("cfg, pp, v", [(K175B, 8, 3), (K530B, 35, 3), (K1T, 64, 1)], ids=["175b", "530b", "1t"])
def test_korthikanti_models_need_sequence_parallel_and_selective_on_a100(cfg, pp, v):
    """Table 3 layouts (t = 8, b = 1; interleaved with 3 stages for 175B and 530B), mixed precision on 80 GB
    A100s, Sec. 6.1: "Without the memory savings provided by sequence parallelism and selective recompute
    together, none of these models will fit into memory". (For the 22B model, t = 8, p = 1, b = 4, the
    count here fits with selective recomputation alone: what it leaves out, docs/transformers.md.)"""
    cap = device_memory_bytes("a100")
    base = Parallel(tp=8, pp=pp, schedule="interleaved" if v > 1 else "1f1b", virtual_stages=v)
    for sp, recompute, fit in ((True, "selective", True), (True, "none", False), (False, "selective", False),
                               (False, "none", False)):
        worst = max_memory_breakdown(cfg, replace(base, sp=sp, recompute=recompute))
        assert fits(worst, cap) is fit, (sp, recompute)


def test_bad_device_memory_is_a_user_error():
    data = {"name": "x", "peak_flops": "1TFLOP/s", "mem_bandwidth": "1GB/s", "b_half": 1, "memory": "lots"}
    with pytest.raises(UserError) as e:
        device_from_mapping(data, "x.yaml", "x")
    assert e.value.field == "device.memory"


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("stage", [4, -1, True, 1.0])
def test_stage_out_of_range(stage):
    with pytest.raises(UserError) as e:
        memory_breakdown(get_transformer_config("llama2-7b"), Parallel(pp=4), stage=stage)
    assert e.value.field == "stage"


def test_other_bad_input():
    cfg = get_transformer_config("llama2-7b")
    cases = [
        (dict(par=Parallel(pp=2, schedule="gpipe")), "batch"),
        (dict(par=Parallel(), batch=0), "batch"),
        (dict(par=Parallel(), dropout="yes"), "dropout"),
        (dict(par=Parallel(), precision="int4"), "precision"),
        (dict(par=Parallel(tp=3)), "tp"),
        (dict(par=Parallel(pp=2, dp=2), batch=5), "microbatch"),
    ]
    for kwargs, field in cases:
        par = kwargs.pop("par")
        with pytest.raises(UserError) as e:
            memory_breakdown(cfg, par, **kwargs)
        assert e.value.field == field, kwargs
    with pytest.raises(UserError) as e:
        get_transformer_config("gpt5")
    assert e.value.field == "model"


def test_doctests():
    result = doctest.testmod(mem)
    assert result.attempted > 0 and result.failed == 0
