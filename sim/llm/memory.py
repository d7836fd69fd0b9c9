"""Bytes one rank holds to train a transformer on the TP × CP × PP × DP grid: weights, gradients, optimizer
state, the activations of one micro-batch and those of the other micro-batches its pipeline schedule keeps
in flight; and whether that fits a device.

Model states (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models", Sec. 3.1 and 5, Fig. 1). With Ψ the parameters a rank holds, mixed-precision Adam keeps 2Ψ bytes
of 16-bit weights, 2Ψ of 16-bit gradients and KΨ of optimizer state, K = 12 (fp32 master weights,
momentum and variance): this module's rule for ``bf16``, ``fp16``, ``amp`` and ``fp8``. fp32 training
(``fp32``, ``tf32``: no master copy) keeps 4Ψ + 4Ψ + 8Ψ (Adam momentum and variance). ZeRO-1 divides the
optimizer term by N_d, ZeRO-2 also the gradients, ZeRO-3 also the weights. N_d is the number of ranks
holding the same parameters, DP × CP (context-parallel ranks hold the same weights; Megatron-LM's
distributed optimizer shards over its data-parallel group with context parallelism).

Megatron-LM differs (its ``docs/user-guide/features/dist_optimizer.md``): by default it accumulates and
reduces gradients in fp32, so bf16 training holds 18 bytes per parameter (2 + 4 + 12), and its distributed
optimizer (ZeRO-1) 6 + 12/d; fp16 holds 20, 4 + 16/d. This module keeps to the ZeRO paper's 16 and
4 + 12/N_d. Note also that :mod:`workloads.precision`'s ``bf16``/``fp16`` (pure half precision with
momentum SGD, what :mod:`sim.memory` counts for the CNNs) is not the rule used here: a transformer is
trained with Adam and fp32 master weights.

Ψ per rank: the parameters of the layers on the stage, their matrices and the biases of column-parallel
projections divided by TP (key/value projections replicated when TP exceeds the KV heads, as Megatron does),
norms and the biases of the row-parallel ``o_proj``/``fc2``/``down_proj`` replicated over TP; the first
stage also holds the word embedding (vocabulary-parallel, / TP) and a learned position table (replicated);
the last the final norm and the output layer (/ TP; with tied embeddings and PP > 1 the last stage keeps
its own copy of the embedding, as Megatron does, and with PP = 1 the one table serves both).

Activations per layer and micro-batch (Korthikanti et al. 2022, "Reducing Activation Recomputation in
Large Transformer Models", Sec. 4.1, Table 2), tensor by tensor as Sec. 4.1 derives them, generalised to
grouped-query attention (query width H·d, key/value width H_kv·d) and to SwiGLU (MLP width f), in bytes
at 16-bit activations and 1-byte dropout masks::

    norms        2 x 2sbh             (inputs of the two norms)
    attention    2sbh                 (input of the q/k/v projections, shared)
                 2sb·Hd + 2sb·H_kv·d  (Q and K for QK^T)
                 2sb·H_kv·d           (V)
                 2sb·Hd               (input of o_proj)
                 5as²b                (softmax output 2as²b, its dropout mask as²b, dropout output 2as²b)
                 sbh                  (dropout mask after attention)
    MLP (GELU)   2sbh + 2sbf + 2sbf   (fc1 input, GELU input, fc2 input)
    MLP (SwiGLU) 2sbh + 2·2sbf + 2sbf (input, gate and up outputs, SwiGLU output = down_proj input)
                 sbh                  (dropout mask after the MLP)

With H·d = H_kv·d = h and GELU with f = 4h this is sbh(34 + 5as/h), eq. (1). TP divides the tensors inside
the attention and the MLP blocks (Q, K, V, the scores, the o_proj input, the MLP's f-wide tensors): eq. (2),
sbh(10 + 24/t + 5as/(ht)). Sequence parallelism also divides the norms, the block inputs and the dropout
masks: eq. (4), sbh/t·(34 + 5as/h). Selective recomputation drops the scores term (Sec. 5; Table 2);
full recomputation keeps only each layer's input, 2sbh, which sequence parallelism stores split, 2sbh/t
(Sec. 5 notes that storing the split share "can be reduced to 2sbhL/t"; Megatron's checkpointed hidden
state is sequence-split under SP). Without dropout (``dropout=False``: Llama-style training) the masks go
and the scores term is the softmax output alone, 2as²b. Context parallelism gives each rank s/cp tokens:
s -> s/cp everywhere except the scores, which are the rank's s/cp queries against all s keys
(5a·(s/cp)·s·b; ring attention with fused kernels stores none of them, as with selective recompute).
Korthikanti's constants assume 2-byte activations: each 16-bit tensor is scaled by word/2 (fp32: x 2),
the 1-byte masks are not.

Embedding and output layer (Sec. 4.3): the first stage stores the embedding's dropout mask, sbh (/t with
SP), for each of its in-flight micro-batches; the last stage the final norm's input 2sbh, the output
projection's input 2sbh (both /t with SP) and the fp32 logits 4sbv/t. Korthikanti count the latter only at
PP = 1 because they look at the first stage; here they belong to the last stage whatever PP is.

Pipeline in flight (Sec. 4.2.3; Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU
Clusters Using Megatron-LM"): GPipe keeps all m micro-batches; 1F1B (PipeDream-Flush) keeps
min(pp - stage, m) on a stage (pp on the first: L layers' worth); the interleaved schedule runs Megatron-LM's
warm-up of ``(pp - stage - 1)*2 + (virtual_stages - 1)*pp`` forward (micro-batch, chunk) pairs (capped at
m·v) and then one forward before each backward (``megatron/core/pipeline_parallel/schedules.py``,
``get_pp_rank_microbatches`` for ``forward_backward_pipelining_with_interleaving``, as of commit d98e8a6;
before Megatron-LM commit 4295be1, Nov. 2024, m == pp made every pass warm-up, all m·v in flight), so stage 0 holds
2(pp - 1) + (v - 1)·pp + 1 chunks of L/(pp·v) layers, L·(1 + (pp - 1)/(pp·v)) layers: Korthikanti's
interleaving factor with m = v. The peak is found by walking that order (chunks differ: the embedding's,
the output layer's, an uneven split of layers). ``activations_bytes`` is one micro-batch through the stage;
``inflight_bytes`` the other micro-batches' share of the peak.

Not counted: temporary buffers (the rematerialised layer of full recomputation, workspace of the matrix
products and of the fused kernels, the all-gathered weights of ZeRO-3 and the unsharded gradient buckets
of ZeRO-1/2 before their reduce-scatter), communication (NCCL) buffers, the CUDA context, allocator
fragmentation, the token ids, and the pipeline's send/receive buffers. :func:`fits` compares the plain total
with the capacity; no reserve is taken (none is published as a rule).

Examples
--------
>>> from sim.llm.parallel import Parallel
>>> from workloads.zoo import get_transformer_config
>>> cfg = get_transformer_config("gpt3-175b")
>>> m = memory_breakdown(cfg, Parallel(tp=8, pp=8, dp=1, recompute="selective"), precision="bf16")
>>> m.inflight_microbatches, round(m.total_bytes / 2**30, 1)
(8.0, 51.6)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sim.errors import UserError
from sim.llm.parallel import Parallel, check_parallel, chunk_blocks
from workloads.device_specs import DeviceSpec, load_device
from workloads.precision import get_precision
from workloads.transformer import TransformerConfig, validate

#: precisions trained with fp32 Adam and no 16-bit copy: bytes per parameter of weights, gradients, optimizer
_FP32_STATE = (4, 4, 8)
#: mixed precision as ZeRO counts it: 16-bit weights and gradients, K = 12 (fp32 master, momentum, variance)
_MIXED_STATE = (2, 2, 12)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes one rank of pipeline stage ``stage`` holds (module docstring).

    Attributes
    ----------
    stage : int
    params : float
        Ψ: parameters this rank holds before ZeRO-3 shards them.
    weights_bytes, gradients_bytes, optimizer_bytes : float
        The model states after ZeRO.
    activations_bytes : float
        Activations of one micro-batch through every layer of the stage (and the embedding's or the output
        layer's, on the first and last stage).
    inflight_bytes : float
        The activations of the other micro-batches the schedule holds at this stage's peak.
    inflight_microbatches : float
        The peak in micro-batches' worth: ``(activations + inflight) / activations``.
    """

    stage: int
    params: float
    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    inflight_bytes: float
    inflight_microbatches: float

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes
                + self.inflight_bytes)

    def as_dict(self) -> dict[str, float]:
        """The fields and ``total_bytes``."""
        return {**asdict(self), "total_bytes": self.total_bytes}


def state_bytes_per_param(precision: str) -> tuple[int, int, int]:
    """``(weights, gradients, optimizer)`` bytes per parameter before ZeRO: (4, 4, 8) for ``fp32`` and
    ``tf32``, (2, 2, 12) for the 16-bit and mixed precisions (module docstring)."""
    p = get_precision(precision)
    return _FP32_STATE if p.word_bytes == 4 else _MIXED_STATE


def model_state_bytes(params: float, *, precision: str = "bf16", zero: int = 0,
                      shards: int = 1) -> tuple[float, float, float]:
    """``(weights, gradients, optimizer)`` bytes of ``params`` parameters under ZeRO stage ``zero`` over
    ``shards`` data-parallel ranks (ZeRO paper, Sec. 5: P_os, P_os+g, P_os+g+p)."""
    if isinstance(zero, bool) or zero not in (0, 1, 2, 3):
        raise UserError("zero", f"{zero!r} is not a ZeRO stage", "0, 1, 2 or 3")
    w, g, k = state_bytes_per_param(precision)
    n = float(shards)
    return (params * w / (n if zero >= 3 else 1.0), params * g / (n if zero >= 2 else 1.0),
            params * k / (n if zero >= 1 else 1.0))


def _kv_heads_per_rank(config: TransformerConfig, tp: int) -> float:
    """Key/value heads on one TP rank: H_kv / t, or one (replicated) when t exceeds them."""
    return max(config.n_kv_heads / tp, 1.0)


def layer_params_per_rank(config: TransformerConfig, tp: int = 1) -> float:
    """Parameters of one transformer block on one TP rank (module docstring for what is split)."""
    h, d, f = config.hidden, config.d_head, config.ffn
    q = config.heads * d / tp
    kv = _kv_heads_per_rank(config, tp) * d
    attn = h * (q + 2 * kv) + q * h
    n_mats = 2 if config.mlp == "gelu" else 3
    mlp = n_mats * h * f / tp
    norm = (2 if config.norm == "layernorm" else 1) * h
    bias = 0.0
    if config.bias:  # column-parallel biases split, row-parallel (o_proj, fc2/down_proj) replicated
        bias = q + 2 * kv + h + (n_mats - 1) * f / tp + h
    return attn + mlp + 2 * norm + bias


def _chunk_layers(config: TransformerConfig, par: Parallel) -> list[list[int]]:
    """Layers of each model chunk of each stage: ``[stage][chunk]``. Chunk j of stage r is the global chunk
    ``j*pp + r`` (Megatron's interleaved assignment), cut as :func:`sim.llm.parallel.chunk_blocks` cuts them
    (with an uneven split the first global chunks get one layer more)."""
    sizes = [len(r) for r in chunk_blocks(config.layers, par)]
    return [[sizes[j * par.pp + r] for j in range(par.virtual_stages)] for r in range(par.pp)]


def stage_params_per_rank(config: TransformerConfig, par: Parallel, stage: int) -> float:
    """Ψ of one rank of ``stage``: its blocks, plus the embedding on the first stage and the final norm and
    output layer on the last (module docstring)."""
    h, t = config.hidden, par.tp
    params = sum(_chunk_layers(config, par)[stage]) * layer_params_per_rank(config, t)
    if stage == 0:
        params += config.vocab * h / t + config.n_positions * h
    if stage == par.pp - 1:
        params += (2 if config.norm == "layernorm" else 1) * h
        if not (config.tied_embeddings and par.pp == 1):
            params += config.vocab * h / t
    return params


@dataclass(frozen=True)
class ActivationSizes:
    """Activation bytes one rank stores for one micro-batch: per transformer block (``layer_bytes``), the
    embedding's dropout mask (``embedding_bytes``, first stage) and the final norm, output projection and
    fp32 logits (``output_bytes``, last stage)."""

    layer_bytes: float
    embedding_bytes: float
    output_bytes: float


def activation_sizes(config: TransformerConfig, par: Parallel, *, precision: str = "bf16",
                     dropout: bool = True) -> ActivationSizes:
    """Per micro-batch activation bytes on one rank (module docstring: Korthikanti et al. Sec. 4.1, 4.3)."""
    word_bytes = get_precision(precision).word_bytes
    t = par.tp
    s_local = config.seq_len / par.cp  # tokens on this rank
    b = par.microbatch
    h, d, f, v = config.hidden, config.d_head, config.ffn, config.vocab
    half = word_bytes / 2.0  # Korthikanti's 2-byte constants at this word size (masks stay 1 byte)
    mask = 1.0 if dropout else 0.0
    rep = float(t) if par.seq_parallel else 1.0  # divisor of the tensors outside the TP regions
    sb = s_local * b
    if par.recompute == "full":
        layer = 2 * sb * h * half / rep
    else:
        replicated = (2 * 2 * sb * h + 2 * sb * h + 2 * sb * h) * half + 2 * mask * sb * h  # norms, inputs, masks
        q = config.heads * d / t
        kv = _kv_heads_per_rank(config, t) * d
        attention = (2 * sb * q + 2 * sb * kv + 2 * sb * kv + 2 * sb * q) * half
        mlp = (4 if config.mlp == "gelu" else 6) * sb * f / t * half
        layer = replicated / rep + attention + mlp
        if par.recompute == "none":
            heads = config.heads / t
            scores = heads * s_local * config.seq_len * b  # this rank's queries against all keys
            layer += (2 * scores * half + mask * scores + mask * 2 * scores * half)
    embedding = mask * sb * h / rep
    output = (2 * sb * h + 2 * sb * h) * half / rep + 4 * sb * v / t  # fp32 logits, vocabulary-parallel
    return ActivationSizes(layer, embedding, output)


def _interleaved_peak(pp: int, v: int, m: int, stage: int, chunk_bytes: list[float]) -> float:
    """Peak of the bytes live on ``stage`` over Megatron-LM's interleaved order: forwards by groups of ``pp``
    micro-batches through chunks 0..v-1, warm-up ``(pp-stage-1)*2 + (v-1)*pp``, then forward/backward
    pairs; backward k frees chunk ``v-1-j`` of the table's k-th entry ``(mb, j)``."""
    table = [j for lo in range(0, m, pp) for j in range(v) for _ in range(lo, min(lo + pp, m))]
    total = m * v
    warmup = min((pp - stage - 1) * 2 + (v - 1) * pp, total)
    live = peak = 0.0
    for k in range(warmup):
        live += chunk_bytes[table[k]]
        peak = max(peak, live)
    for k in range(total - warmup):
        live += chunk_bytes[table[k + warmup]]
        peak = max(peak, live)
        live -= chunk_bytes[v - 1 - table[k]]
    return peak


def _checked(config: TransformerConfig, par: Parallel, stage: int, batch: int | None) -> int | None:
    """Validate the inputs; return the micro-batch count m (None: not given)."""
    validate(config)
    m = None
    if batch is not None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise UserError("batch", f"{batch!r} is not a positive integer", "sequences per iteration, >= 1")
        check_parallel(par, layers=config.layers, heads=config.heads, kv_heads=config.n_kv_heads,
                       hidden=config.hidden, seq_len=config.seq_len, batch=batch)
        m = par.microbatches(batch)
    else:  # every other rule, with a batch that gives pp micro-batches (valid for every schedule)
        check_parallel(par, layers=config.layers, heads=config.heads, kv_heads=config.n_kv_heads,
                       hidden=config.hidden, seq_len=config.seq_len, batch=par.dp * par.microbatch * par.pp)
        if par.schedule == "gpipe":
            raise UserError("batch", "is needed with the gpipe schedule (it keeps every micro-batch in flight)",
                            "the global batch in sequences, or schedule 1f1b")
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < par.pp:
        raise UserError("stage", f"{stage!r} is not a pipeline stage of pp={par.pp}",
                        f"an integer 0 <= stage < {par.pp}")
    return m


def memory_breakdown(config: TransformerConfig, par: Parallel, *, precision: str = "bf16", stage: int = 0,
                     batch: int | None = None, dropout: bool = True) -> MemoryBreakdown:
    """Bytes per rank of pipeline stage ``stage`` (module docstring).

    Parameters
    ----------
    config : TransformerConfig
    par : Parallel
        Checked against ``config`` (:func:`sim.llm.parallel.check_parallel`).
    precision : str
        A :mod:`workloads.precision` name: the activation word and the model-state rule.
    stage : int
        0 .. pp-1.
    batch : int or None
        Global batch in sequences, for the micro-batch count m = batch / (dp * microbatch). None: m large
        enough that the schedule reaches its steady state (not allowed with ``gpipe``).
    dropout : bool
        Count dropout masks (Korthikanti's GPT); False for models trained without dropout.

    Raises
    ------
    UserError
        ``stage`` out of range, ``batch`` missing for gpipe, an unknown precision, or a layout
        :func:`~sim.llm.parallel.check_parallel` refuses.
    """
    m = _checked(config, par, stage, batch)
    if not isinstance(dropout, bool):
        raise UserError("dropout", f"{dropout!r} is not true or false", "true or false")
    params = stage_params_per_rank(config, par, stage)
    weights, grads, optimizer = model_state_bytes(params, precision=precision, zero=par.zero,
                                                  shards=par.dp * par.cp)
    sizes = activation_sizes(config, par, precision=precision, dropout=dropout)
    chunks = [n * sizes.layer_bytes for n in _chunk_layers(config, par)[stage]]
    if stage == 0:
        chunks[0] += sizes.embedding_bytes
    if stage == par.pp - 1:
        chunks[-1] += sizes.output_bytes
    one = sum(chunks)
    if par.schedule == "gpipe":
        peak = one * m
    elif par.schedule == "1f1b":
        peak = one * (par.pp - stage if m is None else min(par.pp - stage, m))
    else:
        peak = _interleaved_peak(par.pp, par.virtual_stages, 2 * par.pp if m is None else m, stage, chunks)
    return MemoryBreakdown(stage=stage, params=params, weights_bytes=weights, gradients_bytes=grads,
                           optimizer_bytes=optimizer, activations_bytes=one, inflight_bytes=peak - one,
                           inflight_microbatches=peak / one if one else 0.0)


def max_memory_breakdown(config: TransformerConfig, par: Parallel, *, precision: str = "bf16",
                         batch: int | None = None, dropout: bool = True) -> MemoryBreakdown:
    """The breakdown of the stage whose rank holds the most (the first such stage on a tie)."""
    rows = [memory_breakdown(config, par, precision=precision, stage=r, batch=batch, dropout=dropout)
            for r in range(par.pp)]
    return max(rows, key=lambda row: row.total_bytes)


def device_memory_bytes(device: str | DeviceSpec) -> float | None:
    """Memory capacity of ``device`` (a name, a device ``.yaml`` path or a :class:`DeviceSpec`); None
    when its file gives no ``memory``."""
    spec = device if isinstance(device, DeviceSpec) else load_device(device)
    return spec.memory_bytes


def fits(breakdown: MemoryBreakdown, device_bytes: float | None) -> bool | None:
    """``breakdown.total_bytes <= device_bytes``; None when the capacity is unknown. Pass the
    :func:`max_memory_breakdown` for the whole pipeline; what is not counted is in the module docstring."""
    if device_bytes is None:
        return None
    return breakdown.total_bytes <= device_bytes
