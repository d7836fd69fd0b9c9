"""Decoder-only transformers built from their parts, and their model FLOPs per token.

A :class:`TransformerConfig` (sizes, MLP and norm kinds, embeddings, sequence length) becomes a
:class:`~workloads.layer.Model` of layers (:func:`build_transformer`): one sample is one sequence of
``seq_len`` tokens. Each block is pre-norm::

    ln1 -> q_proj, k_proj, v_proj -> attn -> o_proj -> attn_add (residual)
    ln2 -> fc1 -> gelu -> fc2 -> mlp_add                        (mlp: gelu)
    ln2 -> gate_proj, up_proj -> swiglu -> down_proj -> mlp_add (mlp: swiglu, three matrices)

after an ``embed`` layer (token table, plus a learned position table with ``positions: learned``) and
before ``ln_f`` and ``lm_head`` (tied to ``embed`` with ``tied_embeddings``: no parameters of its own).
Projections are ``fc`` layers with exact parameters (``bias`` adds the bias vectors of every projection
but ``lm_head``, as in GPT-2/3); the score and context products are one weightless ``attention`` layer
(:mod:`workloads.transformer_layers` has the counting rules).

Parameters of one block: ``h*(H + 2*H_kv)*d + H*d*h`` (attention) + ``2*h*f`` (gelu) or ``3*h*f`` (swiglu)
+ norms (``2h`` each for layernorm, ``h`` for rmsnorm) + biases.

:func:`transformer_from_dict` reads the ``transformer:`` mapping of a model YAML file (keys :data:`KEYS`,
or ``base: <zoo name>`` and the keys to change).

Examples
--------
>>> m = build_transformer(TransformerConfig("tiny", layers=2, hidden=64, heads=4, ffn=256, vocab=100,
...                                         seq_len=32, dataset_tokens=3200))
>>> m.params == 2 * (4 * 64 * 64 + 3 * 64 * 256 + 2 * 64) + 2 * 100 * 64 + 64
True
>>> model_flops_per_token(m) == 6 * m.params + 12 * 2 * 64 * 32, m.dataset_size
(True, 100)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sim.errors import UserError
from workloads.build import add
from workloads.layer import Layer, Model
from workloads.transformer_layers import attention, embedding, glu, linear, token_norm

MLPS = ("gelu", "swiglu")
NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope", "none")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and choices of a decoder-only transformer.

    Attributes
    ----------
    name : str
    layers, hidden, heads, ffn, vocab, seq_len : int
        Blocks L, model width h, query heads H, MLP width f, vocabulary V, tokens per sample S.
    kv_heads : int
        Key/value heads (``heads``: multi-head; 1: multi-query; else grouped-query). 0 means ``heads``.
    head_dim : int
        ``d``; 0 means ``hidden // heads``.
    mlp : {"gelu", "swiglu"}
    norm : {"layernorm", "rmsnorm"}
    bias : bool
        Biases on the q/k/v/o and MLP projections.
    tied_embeddings : bool
        ``lm_head`` reuses the token embedding.
    positions : {"learned", "rope", "none"}
        ``learned`` adds a table of ``max_positions`` (0: ``seq_len``) vectors; RoPE has no parameters.
    causal : bool
        Recorded on the attention layers; does not change the counted FLOPs.
    dataset_tokens : int
        Training tokens per epoch; the model's N is ``dataset_tokens // seq_len`` sequences.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    seq_len: int
    kv_heads: int = 0
    head_dim: int = 0
    mlp: str = "swiglu"
    norm: str = "rmsnorm"
    bias: bool = False
    tied_embeddings: bool = False
    positions: str = "rope"
    max_positions: int = 0
    causal: bool = True
    dataset_tokens: int = 0

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads

    @property
    def d_head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def n_positions(self) -> int:
        """Rows of the learned position table (0 without one)."""
        if self.positions != "learned":
            return 0
        return self.max_positions or self.seq_len

    @property
    def dataset_size(self) -> int:
        """Sequences per epoch (at least 1)."""
        return max(1, self.dataset_tokens // self.seq_len)


#: YAML keys of ``transformer:`` besides ``base``, with what each accepts
KEYS: dict[str, str] = {
    "layers": "an integer >= 1", "hidden": "an integer >= 1", "heads": "an integer >= 1",
    "ffn": "an integer >= 1", "vocab": "an integer >= 1", "seq_len": "an integer >= 1",
    "kv_heads": "an integer >= 1 dividing heads", "head_dim": "an integer >= 1",
    "mlp": " or ".join(MLPS), "norm": " or ".join(NORMS), "bias": "true or false",
    "tied_embeddings": "true or false", "positions": ", ".join(POSITIONS),
    "max_positions": "an integer >= seq_len", "causal": "true or false",
    "dataset_tokens": "an integer >= 1 (training tokens per epoch)",
}
_REQUIRED = ("layers", "hidden", "heads", "ffn", "vocab", "seq_len")


def validate(config: TransformerConfig, field: str = "transformer") -> TransformerConfig:
    """Check every value of ``config`` (raises :class:`UserError` naming ``field.<key>``); returns it."""
    for key in ("layers", "hidden", "heads", "ffn", "vocab", "seq_len"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{field}.{key}", f"{value!r} is not a positive integer", KEYS[key])
    for key in ("kv_heads", "head_dim", "max_positions", "dataset_tokens"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{field}.{key}", f"{value!r} is not an integer >= 0 (0: the default)", KEYS[key])
    for key, allowed in (("mlp", MLPS), ("norm", NORMS), ("positions", POSITIONS)):
        if getattr(config, key) not in allowed:
            raise UserError(f"{field}.{key}", f"{getattr(config, key)!r} is unknown", f"one of {', '.join(allowed)}")
    for key in ("bias", "tied_embeddings", "causal"):
        if not isinstance(getattr(config, key), bool):
            raise UserError(f"{field}.{key}", f"{getattr(config, key)!r} is not true or false", KEYS[key])
    if config.heads % config.n_kv_heads:
        raise UserError(f"{field}.kv_heads", f"{config.n_kv_heads} does not divide heads={config.heads}",
                        "kv_heads dividing heads (1 = multi-query, heads = multi-head)")
    if not config.head_dim and config.hidden % config.heads:
        raise UserError(f"{field}.head_dim", f"hidden={config.hidden} is not a multiple of heads={config.heads}",
                        "state head_dim, or hidden divisible by heads")
    if config.positions == "learned" and config.n_positions < config.seq_len:
        raise UserError(f"{field}.max_positions", f"{config.max_positions} learned positions cannot cover "
                                                  f"seq_len={config.seq_len}", f"max_positions >= {config.seq_len}")
    if config.positions != "learned" and config.max_positions:
        raise UserError(f"{field}.max_positions", f"is set but positions is {config.positions!r}",
                        "max_positions only with positions: learned")
    return config


def build_transformer(config: TransformerConfig) -> Model:
    """The layers of ``config`` (module docstring for the structure)."""
    c = validate(config)
    s, h = c.seq_len, c.hidden
    layers: list[Layer] = [embedding("embed", s, c.vocab, h, c.n_positions)]
    residual = "embed"
    for i in range(c.layers):
        p = f"h{i}."
        ln1 = token_norm(p + "ln1", (s, h), c.norm)
        q = linear(p + "q_proj", ln1.out_shape, c.heads * c.d_head, c.bias)
        k = linear(p + "k_proj", ln1.out_shape, c.n_kv_heads * c.d_head, c.bias, inputs=(ln1.name,))
        v = linear(p + "v_proj", ln1.out_shape, c.n_kv_heads * c.d_head, c.bias, inputs=(ln1.name,))
        attn = attention(p + "attn", s, c.heads, c.n_kv_heads, c.d_head, c.causal, inputs=(q.name, k.name, v.name))
        o = linear(p + "o_proj", attn.out_shape, h, c.bias)
        attn_add = add(p + "attn_add", [(s, h), (s, h)], inputs=(residual, o.name))
        ln2 = token_norm(p + "ln2", (s, h), c.norm)
        layers += [ln1, q, k, v, attn, o, attn_add, ln2]
        if c.mlp == "gelu":
            fc1 = linear(p + "fc1", ln2.out_shape, c.ffn, c.bias)
            act = Layer(p + "gelu", "act", fc1.out_shape, fc1.out_shape, fwd_flops_per_sample=float(s * c.ffn),
                        op="gelu")
            down = linear(p + "fc2", act.out_shape, h, c.bias)
            layers += [fc1, act, down]
        else:
            gate = linear(p + "gate_proj", ln2.out_shape, c.ffn, c.bias)
            up = linear(p + "up_proj", ln2.out_shape, c.ffn, c.bias, inputs=(ln2.name,))
            unit = glu(p + "swiglu", gate.out_shape, up.out_shape, inputs=(gate.name, up.name))
            down = linear(p + "down_proj", unit.out_shape, h, c.bias)
            layers += [gate, up, unit, down]
        layers.append(add(p + "mlp_add", [(s, h), (s, h)], inputs=(attn_add.name, down.name)))
        residual = layers[-1].name
    layers.append(token_norm("ln_f", (s, h), c.norm))
    layers.append(linear("lm_head", (s, h), c.vocab, tied_to="embed" if c.tied_embeddings else ""))
    return Model(c.name, (s,), tuple(layers), c.dataset_size, transformer=c)


def model_flops_per_token(model: Model) -> float:
    """Training FLOPs per token as PaLM defines them for MFU: ``6*N + 12*L*H*Q*T``.

    Chowdhery et al. 2022 ("PaLM"), Appendix B: ``N`` the parameters, ``L`` layers, ``H`` heads, ``Q`` the
    head dimension, ``T`` the sequence length; forward plus backward, no recomputation. Here ``N`` is every
    parameter of the model (embeddings included: with PaLM's own 540.35B this formula gives its published
    46.2% MFU) and ``12*H*Q*T`` is summed over the attention layers, ``H*Q`` and ``T`` read from their output
    shape ``(T, H*Q)``.

    Raises
    ------
    UserError
        ``model`` field, for a model without attention layers.
    """
    attn = [layer for layer in model.layers if layer.kind == "attention"]
    if not attn:
        raise UserError("model", f"{model.name!r} has no attention layers, so no model FLOPs per token",
                        "a transformer (zoo gpt3-*/llama*, or a model YAML file with transformer:)")
    return 6.0 * model.params + sum(12.0 * layer.out_shape[0] * layer.out_shape[1] for layer in attn)


def transformer_from_dict(spec: Any, name: str, dataset_size: int | None, bases: dict[str, TransformerConfig],
                          field: str = "model.transformer") -> Model:
    """Build the model of a YAML ``transformer:`` mapping.

    Parameters
    ----------
    spec : dict
        The keys of :data:`KEYS` (``layers, hidden, heads, ffn, vocab, seq_len`` required), or
        ``base: <name>`` of ``bases`` plus the keys that differ from it.
    name : str
        Model name.
    dataset_size : int or None
        Sequences per epoch; None for ``dataset_tokens // seq_len``.
    bases : dict
        Configs ``base`` may name (the zoo's transformers).
    """
    if not isinstance(spec, dict):
        raise UserError(field, f"{spec!r} is not a mapping", f"a mapping of {', '.join(KEYS)} (or base: NAME)")
    unknown = sorted(set(map(str, spec)) - set(KEYS) - {"base"})
    if unknown:
        raise UserError(field, f"unknown key(s) {', '.join(unknown)}", f"keys base, {', '.join(KEYS)}")
    values = {k: v for k, v in spec.items() if k != "base"}
    for key in ("kv_heads", "head_dim", "max_positions", "dataset_tokens"):
        value = values.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{field}.{key}", f"{value!r} is not a positive integer", KEYS[key])
    if "base" in spec:
        if spec["base"] not in bases:
            raise UserError(f"{field}.base", f"{spec['base']!r} is not a zoo transformer", f"one of {', '.join(bases)}")
        base = bases[spec["base"]]
        if "positions" in values and values["positions"] != "learned":
            values.setdefault("max_positions", 0)
        config = replace(base, name=name, **values)
    else:
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise UserError(field, f"missing key(s) {', '.join(missing)}",
                            f"{', '.join(_REQUIRED)} are required without base")
        known = {f.name for f in fields(TransformerConfig)}
        config = TransformerConfig(name=name, **{k: v for k, v in values.items() if k in known})
    validate(config, field)
    if dataset_size is None and not config.dataset_tokens:
        raise UserError(field, "neither dataset_size nor transformer.dataset_tokens is given",
                        "dataset_size (sequences per epoch) or dataset_tokens (tokens per epoch)")
    model = build_transformer(config)
    return replace(model, dataset_size=dataset_size) if dataset_size is not None else model
