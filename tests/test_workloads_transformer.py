"""Transformer workloads: parameter counts against published totals and against arithmetic written here from
the configs, FLOPs against Megatron-LM's and PaLM's formulas, GQA/MQA, tied embeddings, causal masking, the
YAML format, the CLI listing and the strategies on a transformer."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from sim.api import simulate
from sim.cli import main
from sim.errors import UserError
from workloads.loader import load_model, model_from_dict
from workloads.transformer import model_flops_per_token
from workloads.transformer_layers import attention_heads
from workloads.zoo import get_model, list_models

GPT3_V, GPT3_CTX = 50257, 2048

# Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1: n_params (as printed), n_layers,
# d_model, n_heads, d_head; d_ff = 4 d_model (Sec. 2.1), vocabulary 50257, context 2048. Two rows do not add
# up: 1.3B prints 24 heads of 128 for d_model 2048 (its total needs n_heads * d_head = d_model, so 16 heads of
# 128) and 13B prints d_model 5140 (not 40 * 128; 5120 used).
GPT3 = [
    ("gpt3-125m", 125e6, 12, 768, 12, 64),
    ("gpt3-350m", 350e6, 24, 1024, 16, 64),
    ("gpt3-760m", 760e6, 24, 1536, 16, 96),
    ("gpt3-1.3b", 1.3e9, 24, 2048, 16, 128),
    ("gpt3-2.7b", 2.7e9, 32, 2560, 32, 80),
    ("gpt3-6.7b", 6.7e9, 32, 4096, 32, 128),
    ("gpt3-13b", 13e9, 40, 5120, 40, 128),
    ("gpt3-175b", 175.0e9, 96, 12288, 96, 128),
]

# name, published exact total, hidden, layers, heads, kv_heads, intermediate, vocab, seq_len
# Llama 2: Touvron et al. 2023 and the HF model cards / config.json of meta-llama/Llama-2-{7,13,70}b-hf
# (6,738,415,616 / 13,015,864,320 / 68,976,648,192 parameters). Llama 3: "The Llama 3 Herd of Models"
# (Meta 2024), Table 3, and the config.json of meta-llama/Meta-Llama-3-{8,70}B and Llama-3.1-405B
# (8,030,261,248 / 70,553,706,496 / 405,853,388,800 parameters).
LLAMA = [
    ("llama2-7b", 6_738_415_616, 4096, 32, 32, 32, 11008, 32000, 4096),
    ("llama2-13b", 13_015_864_320, 5120, 40, 40, 40, 13824, 32000, 4096),
    ("llama2-70b", 68_976_648_192, 8192, 80, 64, 8, 28672, 32000, 4096),
    ("llama3-8b", 8_030_261_248, 4096, 32, 32, 8, 14336, 128256, 8192),
    ("llama3-70b", 70_553_706_496, 8192, 80, 64, 8, 28672, 128256, 8192),
    ("llama3-405b", 405_853_388_800, 16384, 126, 128, 8, 53248, 128256, 8192),
]


def _gpt3_params(layers: int, d: int) -> int:
    """GPT-2/3 block: q, k, v, o (d x d + bias each), fc1 (d x 4d + 4d), fc2 (4d x d + d), two layer norms
    (2d each); token and 2048 position embeddings; final layer norm; output tied to the token embedding."""
    block = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
    return layers * block + (GPT3_V + GPT3_CTX) * d + 2 * d


def _llama_params(h: int, layers: int, heads: int, kv: int, f: int, vocab: int) -> int:
    """Llama block without biases: q and o (h x h), k and v (h x kv*d), gate, up, down (h x f), two RMSNorm
    weights (h); untied input and output embeddings (V x h each); final RMSNorm (h)."""
    d = h // heads
    block = 2 * h * h + 2 * h * kv * d + 3 * h * f + 2 * h
    return layers * block + 2 * vocab * h + h


def test_zoo_lists_the_transformers_after_the_cnns():
    names = [row[0] for row in GPT3] + [row[0] for row in LLAMA]
    assert list_models() == ["alexnet", "alexnet-torchvision", "vgg16", "resnet50", *names]


@pytest.mark.parametrize("name, published, layers, d, heads, d_head", GPT3)
def test_gpt3_params(name, published, layers, d, heads, d_head):
    m = get_model(name)
    assert m.params == _gpt3_params(layers, d)
    # Table 2.1's totals are rounded loosely (by its own rows 350M is 355.9M, 2.7B is 2.65B, 175.0B is
    # 174.6B): every size is within 2% of its printed total
    assert m.params == pytest.approx(published, rel=0.02)
    assert heads * d_head == d
    attn = [layer for layer in m.layers if layer.kind == "attention"]
    assert len(attn) == layers and attention_heads(attn[0]) == (heads, heads, d_head)
    assert m.input_shape == (GPT3_CTX,)
    assert m.dataset_size == 300 * 10**9 // GPT3_CTX  # 300B training tokens (Brown et al. 2020, Sec. 2.2)


@pytest.mark.parametrize("name, published, h, layers, heads, kv, f, vocab, seq_len", LLAMA)
def test_llama_params(name, published, h, layers, heads, kv, f, vocab, seq_len):
    m = get_model(name)
    assert _llama_params(h, layers, heads, kv, f, vocab) == published
    assert m.params == published
    assert m.input_shape == (seq_len,)
    by = {layer.name: layer for layer in m.layers}
    assert by["h0.k_proj"].params == h * kv * (h // heads)  # grouped-query: kv heads of h/heads each
    assert by["lm_head"].params == vocab * h and by["embed"].params == vocab * h  # untied
    assert by["ln_f"].params == h and by["h0.ln1"].op == "rmsnorm"


@pytest.mark.parametrize("name, published, layers, d, heads, d_head", GPT3)
def test_gpt3_forward_flops_match_megatron(name, published, layers, d, heads, d_head):
    """Narayanan et al. 2021 (Megatron-LM, SC'21), Sec. 5.1: per iteration 96 B s l h^2 (1 + s/(6h) +
    V/(16 l h)) FLOPs with activation recomputation, i.e. a forward pass of 24 B s l h^2 + 4 B s^2 l h for
    the blocks (counted 4 times) and 2 B s h V for the logits (counted 3 times)."""
    m = get_model(name)
    s, h, v = GPT3_CTX, d, GPT3_V
    matmul = sum(layer.fwd_flops_per_sample for layer in m.layers if layer.kind in ("fc", "attention"))
    logits = next(layer for layer in m.layers if layer.name == "lm_head").fwd_flops_per_sample
    assert logits == 2 * s * h * v
    assert matmul - logits == 24 * s * layers * h**2 + 4 * s**2 * layers * h
    megatron = 96 * s * layers * h**2 * (1 + s / (6 * h) + v / (16 * layers * h))
    assert 4 * (matmul - logits) + 3 * logits == pytest.approx(megatron, rel=1e-12)
    # everything else (norms, GELU, residual adds, position add) is under 1% on top
    assert m.fwd_flops_per_sample == pytest.approx(matmul, rel=1e-2)


@pytest.mark.parametrize("name, published, h, layers, heads, kv, f, vocab, seq_len", LLAMA)
def test_llama_forward_matmul_flops(name, published, h, layers, heads, kv, f, vocab, seq_len):
    """Two FLOPs per multiply-add of every product: q, k, v, o, three SwiGLU matrices, the score and
    context products (2 s^2 h each, the full square) and the logits."""
    m = get_model(name)
    s, d = seq_len, h // heads
    per_block = 2 * s * (2 * h * h + 2 * h * kv * d + 3 * h * f) + 4 * s * s * heads * d
    expected = layers * per_block + 2 * s * h * vocab
    assert sum(layer.fwd_flops_per_sample for layer in m.layers if layer.kind in ("fc", "attention")) == expected


@pytest.mark.parametrize("name, published, h, layers, heads, kv, f, vocab, seq_len", LLAMA)
def test_model_flops_per_token_is_palm(name, published, h, layers, heads, kv, f, vocab, seq_len):
    """Chowdhery et al. 2022 (PaLM), App. B: 6N + 12 L H Q T, N every parameter."""
    q = h // heads
    assert model_flops_per_token(get_model(name)) == 6 * published + 12 * layers * heads * q * seq_len


PALM_540B = {  # Chowdhery et al. 2022, Table 1 and Sec. 2: 118 layers, d_model 18432, 48 heads of 256,
    # d_ff = 4 d_model, multi-query attention, SwiGLU, no biases (layer norm without bias: one scale per
    # feature, counted like RMSNorm), shared input/output embeddings, 256k vocabulary, RoPE, 2048 tokens
    "name": "palm-540b", "dataset_size": 1,
    "transformer": {"layers": 118, "hidden": 18432, "heads": 48, "head_dim": 256, "kv_heads": 1,
                    "ffn": 73728, "vocab": 256000, "seq_len": 2048, "mlp": "swiglu", "norm": "rmsnorm",
                    "tied_embeddings": True, "positions": "rope"},
}


def test_palm_540b_params_and_published_mfu():
    """PaLM 540B has 540.35B parameters (Table 1) and trains at 238.3K tokens/s on 6144 TPU v4 chips of
    275 peak bf16 TFLOP/s, a model FLOPs utilization of 46.2% (Sec. 4, App. B). PaLM's block is parallel,
    with one norm where ours has two: 118 * 18432 parameters more here, below the printed precision."""
    m = model_from_dict(PALM_540B)
    assert m.params - 118 * 18432 == pytest.approx(540.35e9, abs=0.01e9)
    mfu = 238.3e3 * model_flops_per_token(m) / (6144 * 275e12)
    assert round(100 * mfu, 1) == 46.2
    # leaving the embedding out of N would give 45.8%: PaLM's N includes it
    without = 238.3e3 * (model_flops_per_token(m) - 6 * 256000 * 18432) / (6144 * 275e12)
    assert round(100 * without, 1) == 45.8


def test_grouped_and_multi_query_attention():
    base = {"layers": 2, "hidden": 512, "heads": 8, "ffn": 1024, "vocab": 1000, "seq_len": 128}
    models = {kv: model_from_dict({"dataset_size": 10, "transformer": dict(base, kv_heads=kv)}) for kv in (8, 2, 1)}
    for kv, m in models.items():
        by = {layer.name: layer for layer in m.layers}
        assert by["h0.k_proj"].params == by["h0.v_proj"].params == 512 * kv * 64
        assert by["h0.k_proj"].out_shape == (128, kv * 64)
        assert by["h0.attn"].in_shape == (128, (8 + 2 * kv) * 64)
        assert attention_heads(by["h0.attn"]) == (8, kv, 64)
        # score and context products run per query head: the same FLOPs for MHA, GQA and MQA
        assert by["h0.attn"].fwd_flops_per_sample == 4 * 128**2 * 512
    assert models[8].params - models[1].params == 2 * 2 * 512 * (8 - 1) * 64


def test_causal_mask_does_not_change_counted_flops():
    spec = {"layers": 1, "hidden": 256, "heads": 4, "ffn": 512, "vocab": 100, "seq_len": 64}
    causal = model_from_dict({"dataset_size": 1, "transformer": spec})
    full = model_from_dict({"dataset_size": 1, "transformer": dict(spec, causal=False)})
    assert causal.fwd_flops_per_sample == full.fwd_flops_per_sample
    a, b = (next(x for x in m.layers if x.kind == "attention") for m in (causal, full))
    assert a.op.endswith("causal=true") and b.op.endswith("causal=false")
    assert a.fwd_flops_per_sample == 2 * 2 * 64**2 * 256  # 2 products x 2 FLOPs x s^2 x h, as the brief counts


def test_tied_and_untied_embeddings():
    tied = get_model("gpt3-125m")
    untied = model_from_dict({"transformer": {"base": "gpt3-125m", "tied_embeddings": False}})
    assert untied.params - tied.params == GPT3_V * 768  # the output matrix (GPT-2/3's output has no bias)
    by_tied = {layer.name: layer for layer in tied.layers}
    assert by_tied["lm_head"].params == 0 and by_tied["lm_head"].op == "tied=embed"
    assert tied.fwd_flops_per_sample == untied.fwd_flops_per_sample
    assert by_tied["embed"].params == (GPT3_V + GPT3_CTX) * 768


def test_gpt2_small_from_yaml(tmp_path):
    """GPT-2 small (Radford et al. 2019; HF ``gpt2``): 124,439,808 parameters, context 1024."""
    path = tmp_path / "gpt2.yaml"
    path.write_text("name: gpt2-small\ndataset_size: 1000\ntransformer:\n"
                    "  {layers: 12, hidden: 768, heads: 12, ffn: 3072, vocab: 50257, seq_len: 1024, mlp: gelu,\n"
                    "   norm: layernorm, bias: true, tied_embeddings: true, positions: learned}\n")
    m = load_model(str(path))
    assert m.name == "gpt2-small" and m.params == 124_439_808 and m.dataset_size == 1000
    assert m.input_shape == (1024,)


def test_base_with_longer_sequence():
    m = model_from_dict({"name": "llama3-8b-4k", "transformer": {"base": "llama3-8b", "seq_len": 4096}})
    assert m.params == 8_030_261_248  # RoPE: no parameter depends on the sequence length
    attn = next(layer for layer in m.layers if layer.kind == "attention")
    assert attn.fwd_flops_per_sample == 4 * 4096**2 * 4096
    assert m.dataset_size == 15 * 10**12 // 4096


def test_wiring_and_names():
    for name in ("gpt3-125m", "llama2-70b"):
        m = get_model(name)
        names = [layer.name for layer in m.layers]
        assert len(set(names)) == len(names)
        produced = set()
        for layer in m.layers:
            assert all(p in produced for p in layer.inputs), layer.name
            produced.add(layer.name)
        per_block = 12 if name.startswith("gpt3") else 13  # ln1 q k v attn o add ln2 + MLP + add
        blocks = sum(layer.kind == "attention" for layer in m.layers)
        assert len(m.layers) == 1 + blocks * per_block + 2
    by = {layer.name: layer for layer in get_model("llama3-8b").layers}
    assert by["h0.attn"].inputs == ("h0.q_proj", "h0.k_proj", "h0.v_proj")
    assert by["h1.attn_add"].inputs == ("h0.mlp_add", "h1.o_proj")
    assert by["h0.swiglu"].inputs == ("h0.gate_proj", "h0.up_proj")
    assert by["h0.attn_add"].inputs == ("embed", "h0.o_proj")


@pytest.mark.parametrize("spec, field", [
    ({"layers": 2, "hidden": 64, "heads": 6, "ffn": 1, "vocab": 1, "seq_len": 1}, "model.transformer.head_dim"),
    ({"layers": 2, "hidden": 64, "heads": 8, "kv_heads": 3, "ffn": 1, "vocab": 1, "seq_len": 1},
     "model.transformer.kv_heads"),
    ({"layers": 2, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1}, "model.transformer"),
    ({"layers": 0, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1, "seq_len": 1}, "model.transformer.layers"),
    ({"layers": 1, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1, "seq_len": 1, "mlp": "relu"},
     "model.transformer.mlp"),
    ({"layers": 1, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1, "seq_len": 1, "bias": "yes"},
     "model.transformer.bias"),
    ({"layers": 1, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1, "seq_len": 1, "kv_heads": 0},
     "model.transformer.kv_heads"),
    ({"layers": 1, "hidden": 64, "heads": 8, "ffn": 1, "vocab": 1, "seq_len": 1, "dropout": 0.1},
     "model.transformer"),
    ({"base": "gpt3-125m", "seq_len": 4096}, "model.transformer.max_positions"),
    ({"base": "resnet50"}, "model.transformer.base"),
])
def test_bad_specs(spec, field):
    with pytest.raises(UserError) as err:
        model_from_dict({"dataset_size": 1, "transformer": spec})
    assert err.value.field == field


def test_bad_top_level():
    with pytest.raises(UserError, match="unknown key"):
        model_from_dict({"dataset_size": 1, "layers": [], "transformer": {"base": "llama2-7b"}})
    with pytest.raises(UserError, match="dataset_tokens"):
        model_from_dict({"transformer": {"layers": 1, "hidden": 8, "heads": 1, "ffn": 8, "vocab": 8, "seq_len": 8}})


def test_cli_models_and_show_model(capsys, tmp_path):
    assert main(["models", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["llama2-7b"]["params"] == 6_738_415_616 and rows["llama2-7b"]["input_shape"] == "4096"
    assert rows["resnet50"]["params"] == 25_557_032  # the CNNs are unchanged
    assert main(["show-model", "llama2-7b", "--format", "json"]) == 0
    layers = json.loads(capsys.readouterr().out)
    assert sum(r["params"] for r in layers) == 6_738_415_616
    assert layers[0]["kind"] == "embedding" and layers[0]["out_shape"] == "4096x4096"
    assert layers[-1]["layer"] == "lm_head" and layers[-1]["out_shape"] == "4096x32000"
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset_size: 1\ntransformer: {base: llama2-7b, kv_heads: 5}\n")
    assert main(["show-model", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error: model.transformer.kv_heads:")


def test_batch_strategy_all_reduces_every_parameter_once():
    """Pure batch: each rank sends 2 (P-1)/P of every ΔW, 4-byte words, once per parameter (the tied output
    projection has none of its own) — the ring / reduce-scatter + all-gather volume (Thakur et al. 2005)."""
    P = 8
    s = simulate({"model": "gpt3-125m", "batch": 8, "procs": P, "strategy": "batch"}).summary.iloc[0]
    assert s["bytes_sent_per_rank"] == pytest.approx(2 * (P - 1) / P * 4 * _gpt3_params(12, 768), rel=1e-12)


def test_other_strategies_run_or_refuse_clearly():
    for strategy in ("model", "integrated"):
        s = simulate({"model": "gpt3-125m", "batch": 8, "procs": 4, "strategy": strategy,
                      "compute": "roofline:v100"}).summary.iloc[0]
        assert s["iteration_s"] > s["compute_s"] > 0
    with pytest.raises(UserError, match="no convolution layers"):
        simulate({"model": "gpt3-125m", "batch": 8, "procs": 4, "strategy": "domain"})


@pytest.mark.parametrize("name", ["workloads.transformer_layers", "workloads.transformer"])
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def _torch_decoder(torch, cfg: dict):
    """An independent PyTorch decoder of the same structure (nn.Linear, nn.Embedding, norms, attention as
    two explicit matrix products: the CPU flop counter does not see inside fused attention)."""
    nn, F = torch.nn, torch.nn.functional
    h, heads, kv, f = cfg["hidden"], cfg["heads"], cfg["kv_heads"], cfg["ffn"]
    d, bias, gelu = h // heads, cfg["bias"], cfg["mlp"] == "gelu"

    def norm():
        return nn.LayerNorm(h) if cfg["norm"] == "layernorm" else nn.RMSNorm(h)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = norm(), norm()
            self.q, self.o = nn.Linear(h, heads * d, bias=bias), nn.Linear(heads * d, h, bias=bias)
            self.k, self.v = nn.Linear(h, kv * d, bias=bias), nn.Linear(h, kv * d, bias=bias)
            self.up, self.down = nn.Linear(h, f, bias=bias), nn.Linear(f, h, bias=bias)
            self.gate = None if gelu else nn.Linear(h, f, bias=bias)

        def forward(self, x):
            b, s, _ = x.shape
            y = self.ln1(x)
            q = self.q(y).view(b, s, heads, d).transpose(1, 2)
            k = self.k(y).view(b, s, kv, d).transpose(1, 2).repeat_interleave(heads // kv, dim=1)
            v = self.v(y).view(b, s, kv, d).transpose(1, 2).repeat_interleave(heads // kv, dim=1)
            scores = (q @ k.transpose(-2, -1)) / d**0.5  # the causal mask is applied, its FLOPs are not saved
            scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))
            a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, heads * d)
            x = x + self.o(a)
            y = self.ln2(x)
            m = F.gelu(self.up(y)) if gelu else F.silu(self.gate(y)) * self.up(y)
            return x + self.down(m)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg["vocab"], h)
            self.wpe = nn.Embedding(cfg["seq_len"], h) if cfg["positions"] == "learned" else None
            self.blocks = nn.ModuleList(Block() for _ in range(cfg["layers"]))
            self.ln_f = norm()
            self.head = nn.Linear(h, cfg["vocab"], bias=False)
            if cfg["tied_embeddings"]:
                self.head.weight = self.wte.weight

        def forward(self, tokens):
            x = self.wte(tokens)
            if self.wpe is not None:
                x = x + self.wpe(torch.arange(tokens.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return Decoder()


@pytest.mark.parametrize("variant", [
    {"mlp": "gelu", "norm": "layernorm", "bias": True, "tied_embeddings": True, "positions": "learned", "kv_heads": 4},
    {"mlp": "swiglu", "norm": "rmsnorm", "bias": False, "tied_embeddings": False, "positions": "rope", "kv_heads": 2},
    {"mlp": "swiglu", "norm": "rmsnorm", "bias": False, "tied_embeddings": True, "positions": "rope", "kv_heads": 1},
])
def test_against_pytorch_parameters_and_flop_counter(variant):
    """Parameters against ``nn.Module.parameters()`` (shared tensors once) and matmul FLOPs against
    ``torch.utils.flop_counter.FlopCounterMode`` (mm/addmm/bmm, 2 per multiply-add)."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    cfg = {"layers": 2, "hidden": 64, "heads": 4, "ffn": 96, "vocab": 100, "seq_len": 32, **variant}
    ours = model_from_dict({"dataset_size": 1, "transformer": cfg})
    torch.manual_seed(0)
    net = _torch_decoder(torch, cfg)
    assert ours.params == sum(p.numel() for p in net.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.randint(0, cfg["vocab"], (1, cfg["seq_len"])))
    matmul = sum(layer.fwd_flops_per_sample for layer in ours.layers if layer.kind in ("fc", "attention"))
    assert counter.get_total_flops() == matmul
