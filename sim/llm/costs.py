"""What one model chunk costs one rank per micro-batch: compute seconds and the bytes of every collective.

The model's blocks are cut into ``pp * v`` chunks of consecutive blocks (the first ``L mod (pp*v)`` chunks
get one block more; with ``pp_split`` the embedding and/or the output layer count as a block each:
:func:`sim.llm.parallel.chunk_blocks`); the embedding is on chunk 0, the final norm and the output layer on
the last chunk.
For each chunk :func:`chunk_costs` gives, for one micro-batch of ``b`` sequences on one rank:

Compute (the compute model's time of each layer for ``b`` samples and the rank's fraction of it)
    Megatron's tensor parallelism splits the projections (column-parallel Q/K/V and MLP input, row-parallel
    output and MLP output), the attention heads and the MLP activation over TP; the norms and residual
    adds are split over TP only with sequence parallelism (Korthikanti et al. 2022, Sec. 4.2.2), else every
    TP rank repeats them; with fewer key/value heads than TP ranks the K/V projections are replicated
    (each rank computes ``1/kv_heads`` of them). Context parallelism gives each rank ``1/cp`` of the tokens,
    and of the attention work (load-balanced causal ring attention: each rank's queries against all keys,
    in 2·cp blocks). The embedding and the output layer are vocabulary-parallel (``1/tp``).

Tensor-parallel collectives (Shoeybi et al. 2019, Sec. 3, Fig. 3; Korthikanti et al. 2022, Sec. 4.2.2)
    per block and pass, over the TP group, each of ``b·(s/cp)·h`` words: without sequence parallelism two
    all-reduces forward (after the attention and MLP output projections, operator ``g``) and two backward
    (operator ``f``); with it an all-gather and a reduce-scatter in place of each all-reduce. The
    vocabulary-parallel embedding adds one all-reduce (SP: reduce-scatter) forward; the output layer one
    all-gather forward with SP and one all-reduce (SP: reduce-scatter) backward; its vocabulary-parallel
    cross-entropy three all-reduces of ``b·s/cp`` fp32 values (maximum logit, target logit, sum of
    exponentials: Megatron-LM ``tensor_parallel/cross_entropy.py``). Full recomputation repeats the forward
    collectives in the backward pass.

Context-parallel exchange, per block, by ``cp_comm`` (Megatron-LM's ``--cp-comm-type``; Transformer Engine's
``attention/dot_product_attention/context_parallel.py`` runs each), ``kv`` the key/value heads and ``q`` the
query heads on a TP rank, ``t = b·s/cp`` the rank's tokens:

    ``p2p`` (ring attention, Liu et al. 2023; ``AttnFuncWithCPAndKVP2P``): forward, each rank's K and V
    block goes round the CP ring (an all-gather of ``cp·t·2·kv·d`` words); backward, K and V again and the
    dK/dV partial sums back round the ring (an all-gather and a reduce-scatter of the same size). It
    overlaps the attention compute of the block.
    ``allgather`` (``AttnFuncWithCPAndKVAllGather``; Llama Team 2024, Sec. 3.3.2): forward, K and V are
    all-gathered (two all-gathers of ``cp·t·kv·d`` words) before the attention; backward, gathered again,
    and after the attention's backward dK and dV reduce-scattered (two of the same size). Exposed: the
    attention waits for the gathers, what follows waits for the reduce-scatters.
    ``a2a`` (DeepSpeed-Ulysses, Jacobs et al. 2023; ``AttnFuncWithCPAndQKVOA2A``): forward, all-to-alls turn
    sequence-split Q, K, V (``t·q·d``, ``t·kv·d``, ``t·kv·d`` words on a rank) into head-split ones before
    the attention, and one of ``t·q·d`` turns the output back after it; backward, dO's all-to-all before and
    dQ, dK, dV's after. Exposed, as ``allgather``.

    The exposed kinds give ``cp_fwd``/``cp_bwd`` (before the attention core) and ``cp_fwd_post``/
    ``cp_bwd_post`` (after it). Recomputing the attention core repeats the forward's exchanges, of every
    kind (Transformer Engine's attention with CP is one checkpointed function).

Pipeline sends
    the activation (forward) or its gradient (backward) at a chunk boundary: ``b·(s/cp)·h`` words, split
    over TP with sequence parallelism (each TP rank sends its own shard).

Data parallelism
    the chunk's parameters on one rank: projections, embedding and output layer divided over TP (K/V by
    ``min(tp, kv_heads)``), norms replicated; gradients and parameters move at the precision's word size.

Tied embeddings across pipeline stages
    with a tied output layer and more than one chunk, the last chunk holds its own copy of the word
    embedding (``V·h/tp`` per rank, counted in its parameters) and the first and last chunk all-reduce the
    embedding's gradient between them once per iteration (Megatron-LM's embedding group,
    ``finalize_model_grads``): ``embedding_sync``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.llm.parallel import Parallel, chunk_blocks
from workloads.layer import Layer, Model
from workloads.transformer_layers import attention_heads

#: bytes of the fp32 values the vocabulary-parallel cross-entropy all-reduces
LOSS_WORD_BYTES = 4
#: all-reduces of the vocabulary-parallel cross-entropy forward (max, target logit, sum of exponentials)
LOSS_ALLREDUCES = 3


@dataclass(frozen=True)
class Comm:
    """``count`` back-to-back collectives ``op`` of ``nbytes`` each (sizes as ``sim.program`` defines them)."""

    op: str
    nbytes: float
    count: int = 1


@dataclass(frozen=True)
class ChunkCost:
    """One chunk, one micro-batch, one rank (module docstring).

    ``fwd_s``/``bwd_s`` exclude the attention core, whose times are ``attn_fwd_s``/``attn_bwd_s``;
    ``tp_fwd``/``tp_bwd`` are the TP collectives of a pass (without recomputation), ``cp_fwd``/``cp_bwd`` the
    context-parallel exchanges (``cp_exposed``: before the attention core, with ``cp_fwd_post``/``cp_bwd_post``
    after it; else beside it), ``send_bytes`` what a pipeline send at its boundary carries, ``params`` the
    parameters one rank holds of it.
    """

    index: int
    layers: tuple[str, ...]
    blocks: int
    fwd_s: float
    attn_fwd_s: float
    bwd_s: float
    attn_bwd_s: float
    tp_fwd: tuple[Comm, ...]
    tp_bwd: tuple[Comm, ...]
    cp_fwd: tuple[Comm, ...]
    cp_bwd: tuple[Comm, ...]
    send_bytes: float
    params: float
    #: per layer of the chunk: (name, kind, fraction of its work on one rank, fwd_s, bwd_s, parameters on one rank)
    per_layer: tuple[tuple[str, str, float, float, float, float], ...] = ()
    #: tied embeddings with several chunks: the word-embedding parameters (per rank) whose gradient the
    #: first and the last chunk all-reduce together (0 otherwise)
    embedding_sync: float = 0.0
    #: the CP exchange waits for / is waited for by the attention core (``cp_comm`` allgather, a2a)
    cp_exposed: bool = False
    cp_fwd_post: tuple[Comm, ...] = ()
    cp_bwd_post: tuple[Comm, ...] = ()


def _block_of(layer: Layer) -> int | None:
    """The block index of a layer named ``h<i>.<part>`` (None for embed, ln_f, lm_head)."""
    head, _, rest = layer.name.partition(".")
    if rest and head.startswith("h") and head[1:].isdigit():
        return int(head[1:])
    return None


def compute_fraction(layer: Layer, par: Parallel, kv_heads: int) -> float:
    """The fraction of ``layer``'s work one rank does (module docstring)."""
    name = layer.name.rsplit(".", 1)[-1]
    cp = par.cp
    if layer.kind in ("fc", "attention", "glu", "act", "embedding"):
        if name in ("k_proj", "v_proj"):
            return 1.0 / (min(par.tp, kv_heads) * cp)
        return 1.0 / (par.tp * cp)
    return 1.0 / ((par.tp if par.seq_parallel else 1) * cp)


def param_fraction(layer: Layer, par: Parallel, kv_heads: int) -> float:
    """The fraction of ``layer``'s parameters one rank holds (norms are replicated over TP)."""
    if layer.kind in ("fc", "embedding"):
        name = layer.name.rsplit(".", 1)[-1]
        return 1.0 / (min(par.tp, kv_heads) if name in ("k_proj", "v_proj") else par.tp)
    return 1.0


def _tp_block(par: Parallel, nbytes: float, blocks: int) -> tuple[Comm, ...]:
    if par.tp == 1 or blocks == 0:
        return ()
    if par.seq_parallel:
        return (Comm("allgather", nbytes, 2 * blocks), Comm("reduce_scatter", nbytes, 2 * blocks))
    return (Comm("allreduce", nbytes, 2 * blocks),)


def chunk_costs(model: Model, par: Parallel, compute_time, word_bytes: int) -> list[ChunkCost]:
    """The :class:`ChunkCost` of every chunk of ``model`` under ``par``, in global chunk order.

    ``compute_time(layer, phase, local_batch, shard)`` is the compute model's ``time``; ``word_bytes``
    the bytes of one activation, gradient or parameter value.
    """
    cfg = model.transformer
    h, s = cfg.hidden, cfg.seq_len
    kv = cfg.n_kv_heads
    b = par.microbatch
    tokens = b * s / par.cp
    act = tokens * h * word_bytes
    chunks = par.pp * par.virtual_stages
    ranges = chunk_blocks(cfg.layers, par)
    owner = {}
    for c, r in enumerate(ranges):
        for i in r:
            owner[i] = c
    per_chunk: list[list[Layer]] = [[] for _ in range(chunks)]
    for layer in model.layers:
        block = _block_of(layer)
        c = owner[block] if block is not None else (0 if layer.kind == "embedding" else chunks - 1)
        per_chunk[c].append(layer)
    out = []
    for c, layers in enumerate(per_chunk):
        times = {"fwd": 0.0, "bwd": 0.0, "attn_fwd": 0.0, "attn_bwd": 0.0}
        params = 0.0
        kv_words = 0.0
        q_words = 0.0
        rows = []
        for layer in layers:
            shard = compute_fraction(layer, par, kv)
            prefix = "attn_" if layer.kind == "attention" else ""
            fwd, bwd = compute_time(layer, "fwd", b, shard), compute_time(layer, "bwd", b, shard)
            times[prefix + "fwd"] += fwd
            times[prefix + "bwd"] += bwd
            mine = layer.params * param_fraction(layer, par, kv)
            params += mine
            rows.append((layer.name, layer.kind, shard, fwd, bwd, mine))
            if layer.kind == "attention":
                q_heads, kv_heads, d = attention_heads(layer)
                kv_words += 2 * max(1, kv_heads // par.tp) * d
                q_words += q_heads // par.tp * d
        blocks = len(ranges[c])
        tp_fwd = list(_tp_block(par, act, blocks))
        tp_bwd = list(_tp_block(par, act, blocks))
        if par.tp > 1:
            names = {layer.kind for layer in layers}
            if "embedding" in names:
                tp_fwd.append(Comm("reduce_scatter" if par.seq_parallel else "allreduce", act))
            if any(layer.name == "lm_head" for layer in layers):
                if par.seq_parallel:
                    tp_fwd.append(Comm("allgather", act))
                tp_fwd.append(Comm("allreduce", tokens * LOSS_WORD_BYTES, LOSS_ALLREDUCES))
                tp_bwd.append(Comm("reduce_scatter" if par.seq_parallel else "allreduce", act))
        cp_fwd, cp_bwd, cp_fwd_post, cp_bwd_post = _cp_exchanges(par, tokens, kv_words, q_words, blocks,
                                                                 word_bytes)
        send = act / (par.tp if par.seq_parallel else 1)
        sync = 0.0
        if cfg.tied_embeddings and chunks > 1 and c in (0, chunks - 1):
            sync = cfg.vocab * h / par.tp
            if c == chunks - 1:
                params += sync  # the last stage's copy of the word embedding (Megatron), reduced over DP too
        out.append(ChunkCost(c, tuple(layer.name for layer in layers), blocks, times["fwd"], times["attn_fwd"],
                             times["bwd"], times["attn_bwd"], tuple(tp_fwd), tuple(tp_bwd), cp_fwd, cp_bwd,
                             send, params, tuple(rows), sync, par.cp > 1 and par.cp_comm != "p2p",
                             cp_fwd_post, cp_bwd_post))
    return out


def _cp_exchanges(par: Parallel, tokens: float, kv_words: float, q_words: float, blocks: int,
                  word_bytes: int) -> tuple[tuple[Comm, ...], ...]:
    """``(cp_fwd, cp_bwd, cp_fwd_post, cp_bwd_post)`` of a chunk of ``blocks`` blocks whose attention layers
    hold ``kv_words`` key+value and ``q_words`` query words per token on a rank (module docstring)."""
    if par.cp == 1 or not blocks:
        return (), (), (), ()
    kv = tokens * kv_words / blocks * word_bytes  # K and V of one block on one rank
    if par.cp_comm == "p2p":
        ring = par.cp * kv
        return (Comm("allgather", ring, blocks),), (Comm("allgather", ring, blocks),
                                                    Comm("reduce_scatter", ring, blocks)), (), ()
    if par.cp_comm == "allgather":
        gathered = par.cp * kv / 2  # K, or V, of the whole sequence
        gather = (Comm("allgather", gathered, 2 * blocks),)
        return gather, gather, (), (Comm("reduce_scatter", gathered, 2 * blocks),)
    q = tokens * q_words / blocks * word_bytes
    qkv = (Comm("alltoall", q, blocks), Comm("alltoall", kv / 2, 2 * blocks))
    out = (Comm("alltoall", q, blocks),)
    return qkv, out, out, qkv
