"""Layer constructors for token sequences: embedding, per-token linear, attention, norms, GLU.

A transformer layer works on one sequence per sample: shapes are ``(S, F)``, ``S`` positions (the
sequence length) of ``F`` features each; the model input is ``(S,)`` token ids. Every function returns a
frozen :class:`~workloads.layer.Layer`; bad arguments raise :class:`~sim.errors.UserError` naming the layer.

Counting rules (2 FLOPs per multiply-add; the published totals we test against count only the
multiply-adds of the matrix products, so the elementwise counts below are our convention):

==========  ===================================================================================
embedding   ``V*F`` table parameters (plus ``P*F`` for learned positions); the lookup costs 0 FLOPs,
            adding the position vectors 1 per output element
linear      kind ``fc``: ``Fin*Fout`` parameters (plus ``Fout`` bias), ``2*S*Fin*Fout`` FLOPs (bias not
            counted, as for ``fc``); applied to each position, not to the flattened sequence
attention   kind ``attention``, no parameters: scores ``Q K^T`` and context ``P V``, each
            ``2*S*S*d_head`` per query head, so ``4*S^2*H*d_head``; the full ``S^2`` is counted for causal
            attention too (see :func:`attention`); softmax and RoPE are not counted
layernorm   kind ``norm``: ``2*F`` parameters (scale, shift), 7 FLOPs per element
rmsnorm     kind ``norm``: ``F`` parameters (scale), 4 FLOPs per element
glu         kind ``glu``: ``act(gate) * up`` of two ``(S, F)`` inputs, 2 FLOPs per output element
==========  ===================================================================================

Examples
--------
>>> q = linear("q", (2048, 768), 768, bias=True)
>>> q.out_shape, q.params, q.fwd_flops_per_sample == 2 * 2048 * 768 * 768
((2048, 768), 590592, True)
>>> a = attention("attn", 2048, heads=12, kv_heads=12, head_dim=64, inputs=("q", "k", "v"))
>>> a.fwd_flops_per_sample == 4 * 2048**2 * 768, a.params
(True, 0)
"""

from __future__ import annotations

from sim.errors import UserError
from workloads.layer import Layer

NORM_OPS = ("layernorm", "rmsnorm")
#: FLOPs per element: layernorm = mean (1) + subtract (1) + square-and-sum (2) + normalize (1) + scale and
#: shift (2); rmsnorm = square-and-sum (2) + normalize (1) + scale (1)
NORM_FLOPS_PER_ELEM = {"layernorm": 7.0, "rmsnorm": 4.0}
GLU_ACTS = ("silu", "gelu")


def _positive(value: object, name: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"layer {name}", f"{what} {value!r} is not a positive integer", f"{what} >= 1")
    return value


def _tokens(in_shape: tuple[int, ...], name: str) -> tuple[int, int]:
    if len(in_shape) != 2:
        raise UserError(f"layer {name}", f"needs a (seq_len, features) input, gets {in_shape!r}",
                        "a token layer after an embedding")
    return int(in_shape[0]), int(in_shape[1])


def embedding(name: str, seq_len: int, vocab: int, hidden: int, positions: int = 0,
              inputs: tuple[str, ...] = ()) -> Layer:
    """Token embedding (``vocab`` rows of ``hidden``) plus, with ``positions > 0``, a learned table of
    ``positions`` position vectors added to it.

    Returns
    -------
    Layer
        ``kind="embedding"``, ``(S,) -> (S, hidden)``; ``op`` ``"vocab=V"`` or ``"vocab=V,positions=P"``.
    """
    s = _positive(seq_len, name, "seq_len")
    v = _positive(vocab, name, "vocab")
    h = _positive(hidden, name, "hidden")
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < 0:
        raise UserError(f"layer {name}", f"positions {positions!r} is not an integer >= 0", "positions >= 0")
    if positions and positions < s:
        raise UserError(f"layer {name}", f"{positions} learned positions cannot cover seq_len {s}",
                        f"max_positions >= {s}")
    op = f"vocab={v}" + (f",positions={positions}" if positions else "")
    flops = float(s * h) if positions else 0.0
    return Layer(name, "embedding", (s,), (s, h), params=(v + positions) * h, fwd_flops_per_sample=flops,
                 inputs=tuple(inputs), op=op)


def linear(name: str, in_shape: tuple[int, ...], out_features: int, bias: bool = False,
           tied_to: str = "", inputs: tuple[str, ...] = ()) -> Layer:
    """A projection applied to every position: ``(S, Fin) -> (S, Fout)``, kind ``fc``.

    Parameters
    ----------
    tied_to : str
        Name of the layer whose weights this one reuses (a tied output embedding): ``params`` is then 0
        (the weights are counted once, in that layer) and ``op`` is ``"tied=<name>"``; FLOPs are unchanged.
    """
    s, fin = _tokens(tuple(in_shape), name)
    fout = _positive(out_features, name, "out_features")
    params = 0 if tied_to else fin * fout + (fout if bias else 0)
    return Layer(name, "fc", (s, fin), (s, fout), params=params, fwd_flops_per_sample=2.0 * s * fin * fout,
                 inputs=tuple(inputs), op=f"tied={tied_to}" if tied_to else "")


def attention(name: str, seq_len: int, heads: int, kv_heads: int, head_dim: int, causal: bool = True,
              inputs: tuple[str, ...] = ()) -> Layer:
    """Scaled dot-product attention of ``heads`` query heads over ``kv_heads`` key/value heads.

    ``kv_heads == heads`` is multi-head, ``1`` multi-query, anything dividing ``heads`` grouped-query
    attention. The layer holds Q, K and V (``in_shape = (S, (H + 2*H_kv) * d_head)``, what it reads) and
    writes the context ``(S, H * d_head)``; no ``S x S`` score matrix is stored, as in flash attention.

    FLOPs are ``4 * S^2 * H * d_head`` with or without the causal mask: Megatron-LM's and PaLM's MFU
    formulas count the full ``S^2`` (Narayanan et al. 2021, Sec. 5.1; Chowdhery et al. 2022, App. B,
    ``12*L*H*Q*T`` per token for forward plus backward), so the model FLOPs of a causal model are comparable
    with published MFU figures. A kernel that skips the masked half does about half this work.
    ``causal`` is kept in ``op`` for the time models.
    """
    s = _positive(seq_len, name, "seq_len")
    h = _positive(heads, name, "heads")
    kv = _positive(kv_heads, name, "kv_heads")
    d = _positive(head_dim, name, "head_dim")
    if h % kv:
        raise UserError(f"layer {name}", f"kv_heads={kv} does not divide heads={h}",
                        "kv_heads dividing heads (1 = multi-query, heads = multi-head)")
    op = f"heads={h},kv_heads={kv},head_dim={d},causal={'true' if causal else 'false'}"
    return Layer(name, "attention", (s, (h + 2 * kv) * d), (s, h * d), fwd_flops_per_sample=4.0 * s * s * h * d,
                 inputs=tuple(inputs), op=op)


def attention_heads(layer: Layer) -> tuple[int, int, int]:
    """``(heads, kv_heads, head_dim)`` of an ``attention`` layer, read back from its ``op``."""
    if layer.kind != "attention":
        raise UserError(f"layer {layer.name}", f"is a {layer.kind} layer, not attention", "an attention layer")
    fields = dict(part.split("=", 1) for part in layer.op.split(","))
    return int(fields["heads"]), int(fields["kv_heads"]), int(fields["head_dim"])


def token_norm(name: str, in_shape: tuple[int, ...], op: str, inputs: tuple[str, ...] = ()) -> Layer:
    """Layer norm (``2*F`` parameters) or RMS norm (``F``) over the features of each position, kind ``norm``."""
    s, f = _tokens(tuple(in_shape), name)
    if op not in NORM_OPS:
        raise UserError(f"layer {name}", f"norm {op!r} is unknown", f"one of {', '.join(NORM_OPS)}")
    params = 2 * f if op == "layernorm" else f
    return Layer(name, "norm", (s, f), (s, f), params=params, fwd_flops_per_sample=NORM_FLOPS_PER_ELEM[op] * s * f,
                 inputs=tuple(inputs), op=op)


def glu(name: str, gate_shape: tuple[int, ...], up_shape: tuple[int, ...], inputs: tuple[str, ...],
        act: str = "silu") -> Layer:
    """The gated unit of SwiGLU (``act="silu"``, Shazeer 2020) or GeGLU: ``act(gate) * up``.

    ``inputs`` names the gate and the up projection; ``in_shape`` is both, side by side (what it reads).
    """
    gs, gf = _tokens(tuple(gate_shape), name)
    if tuple(gate_shape) != tuple(up_shape) or len(inputs) != 2:
        raise UserError(f"layer {name}", f"glu needs two inputs of one shape, gets {list(inputs)} of "
                                         f"{gate_shape!r} and {up_shape!r}", "inputs: [gate, up] of one shape")
    if act not in GLU_ACTS:
        raise UserError(f"layer {name}", f"glu activation {act!r} is unknown", f"one of {', '.join(GLU_ACTS)}")
    return Layer(name, "glu", (gs, 2 * gf), (gs, gf), fwd_flops_per_sample=2.0 * gs * gf, inputs=tuple(inputs),
                 op=act)
