"""The parallel layout of a transformer run: TP × CP × PP × DP ranks and how each dimension is used.

A :class:`Parallel` value names the four grid dimensions (their product is the number of ranks), the
micro-batch size, the pipeline schedule, the ZeRO stage and the activation recomputation. Rank order is
Megatron-LM's default ``tp-cp-dp-pp`` (tensor fastest): rank ``r = tp + TP*(cp + CP*(dp + DP*pp))``, so on a
topology of multi-GPU nodes with ranks placed in order a TP group of at most the node size lies inside one
node (Megatron-LM ``parallel_state.initialize_model_parallel``, ``order="tp-cp-ep-dp-pp"``).

:func:`check_parallel` holds a layout against a model and a global batch and raises
:class:`~sim.errors.UserError` naming the field for each mistake the issue lists (TP not dividing the
heads, PP larger than the layers, ...).

Examples
--------
>>> p = Parallel(tp=8, cp=1, pp=16, dp=128, microbatch=1)
>>> p.procs, p.rank(tp=3, cp=0, dp=1, pp=2)
(16384, 2059)
>>> p.coords(2059)
(3, 0, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import UserError

SCHEDULES = ("gpipe", "1f1b", "interleaved")
#: how the model is cut into pipeline chunks: transformer blocks only, or the embedding and/or the output
#: layer with its loss counted as one block each (Megatron-LM's account_for_embedding_in_pipeline_split and
#: account_for_loss_in_pipeline_split; :func:`chunk_blocks`)
PP_SPLITS = ("blocks", "embedding", "loss", "embedding+loss")
#: how the context-parallel ranks exchange what attention needs (Megatron-LM's ``--cp-comm-type``, run by
#: Transformer Engine's ``attention/dot_product_attention/context_parallel.py``): ``p2p`` ring attention
#: (K/V blocks go round the ring beside the attention compute), ``allgather`` (K/V all-gathered before the
#: attention, exposed: Llama 3's choice), ``a2a`` (DeepSpeed-Ulysses: all-to-all from sequence- to head-split
#: Q, K, V and back for the output, exposed)
CP_COMMS = ("p2p", "allgather", "a2a")
ZERO_STAGES = (0, 1, 2, 3)
RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class Parallel:
    """TP × CP × PP × DP and the choices that go with them.

    Attributes
    ----------
    tp, cp, pp, dp : int
        Tensor (Megatron column/row split), context (ring attention over the sequence), pipeline stages
        and data-parallel replicas.
    sp : bool
        Sequence parallelism inside the TP group (all-gather / reduce-scatter instead of all-reduce; norms
        and dropout split over TP). Ignored when ``tp == 1``.
    microbatch : int
        Sequences per micro-batch on one data-parallel replica.
    schedule : {"gpipe", "1f1b", "interleaved"}
    virtual_stages : int
        Model chunks per pipeline stage (interleaved 1F1B); 1 otherwise.
    zero : {0, 1, 2, 3}
        0: all-reduce of gradients; 1: optimizer states sharded over DP; 2: and gradients; 3: and
        parameters (FSDP).
    recompute : {"none", "selective", "full"}
    pp_split : {"blocks", "embedding", "loss", "embedding+loss"}
        What the pipeline split counts (:func:`chunk_blocks`): transformer blocks only, or also the
        embedding, the output layer with its loss, or both, each as one block.
    cp_comm : {"p2p", "allgather", "a2a"}
        How context parallelism exchanges keys and values (:data:`CP_COMMS`; :mod:`sim.llm.costs`).
    """

    tp: int = 1
    cp: int = 1
    pp: int = 1
    dp: int = 1
    sp: bool = True
    microbatch: int = 1
    schedule: str = "1f1b"
    virtual_stages: int = 1
    zero: int = 0
    recompute: str = "none"
    pp_split: str = "blocks"
    cp_comm: str = "p2p"

    @property
    def procs(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def seq_parallel(self) -> bool:
        """Sequence parallelism in effect (asked for and TP > 1)."""
        return self.sp and self.tp > 1

    def rank(self, tp: int, cp: int, dp: int, pp: int) -> int:
        """The global rank at grid coordinates (order tp-cp-dp-pp, tensor fastest)."""
        return tp + self.tp * (cp + self.cp * (dp + self.dp * pp))

    def coords(self, rank: int) -> tuple[int, int, int, int]:
        """``(tp, cp, dp, pp)`` of ``rank``."""
        rank, tp = divmod(rank, self.tp)
        rank, cp = divmod(rank, self.cp)
        pp, dp = divmod(rank, self.dp)
        return tp, cp, dp, pp

    def microbatches(self, batch: int) -> int:
        """Micro-batches per iteration of a replica: ``batch / (dp * microbatch)``."""
        return batch // (self.dp * self.microbatch)


def split_slots(pp_split: str) -> tuple[int, int]:
    """``(lead, tail)``: the blocks the embedding and the output layer count for in the split (0 or 1)."""
    return int(pp_split in ("embedding", "embedding+loss")), int(pp_split in ("loss", "embedding+loss"))


def chunk_blocks(layers: int, par: Parallel) -> list[range]:
    """The transformer blocks of each of the ``pp * virtual_stages`` model chunks, in global chunk order
    (chunk ``j*pp + r`` is chunk ``j`` of stage ``r``, Megatron-LM's interleaved assignment).

    The split counts ``layers`` blocks plus, by ``par.pp_split``, one for the embedding (it leads chunk 0)
    and one for the output layer and its loss (it ends the last chunk); these slots are cut into consecutive
    runs, the first ``slots mod chunks`` chunks one slot longer (Megatron-LM requires them to divide evenly:
    ``get_num_layers_to_build`` in ``megatron/core/transformer/transformer_block.py``, which builds one
    block fewer on the first chunk of the first stage and the last chunk of the last stage when the embedding
    and the loss are counted). With the embedding counted and one slot per chunk, chunk 0 holds the
    embedding alone: the Llama 3 405B layout (Llama Team 2024, "The Llama 3 Herd of Models", Sec. 3.3.2:
    126 blocks + 2 = 128 chunks = 16 stages x 8).

    >>> [len(r) for r in chunk_blocks(6, Parallel(pp=2, schedule="interleaved", virtual_stages=2))]
    [2, 2, 1, 1]
    >>> [len(r) for r in chunk_blocks(6, Parallel(pp=2, schedule="interleaved", virtual_stages=2,
    ...                                           pp_split="embedding+loss"))]
    [1, 2, 2, 1]
    """
    lead, tail = split_slots(par.pp_split)
    chunks = par.pp * par.virtual_stages
    base, extra = divmod(layers + lead + tail, chunks)
    out, start = [], 0
    for c in range(chunks):
        size = base + (1 if c < extra else 0)
        out.append(range(max(start - lead, 0), min(start + size - lead, layers)))
        start += size
    return out


def _positive(value: object, field: str, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(field, f"{value!r} is not a positive integer", allowed)
    return value


def check_parallel(par: Parallel, *, layers: int, heads: int, kv_heads: int, hidden: int, seq_len: int,
                   batch: int, procs: int | None = None) -> Parallel:
    """``par`` if it can train a model of these sizes with a global ``batch`` of sequences, else a UserError
    naming the field and what is allowed.

    Rules: TP divides the query heads, the key/value heads (or the KV heads divide TP: they are then
    replicated, as Megatron does for GQA with TP > KV heads) and the hidden size; PP × virtual stages is at
    most the layer count (plus the embedding and the output layer where ``pp_split`` counts them); CP
    divides the sequence length (ring attention splits it in 2·CP blocks for load balance, so 2·CP must
    divide it when CP > 1); micro-batch × DP divides the batch; the interleaved
    schedule needs virtual_stages >= 2 and a micro-batch count that is a multiple of PP (Megatron-LM's
    rule); the other schedules need virtual_stages == 1; ``cp_comm`` ``a2a`` needs CP to divide the query
    and the key/value heads of a TP rank (Transformer Engine's ``AttnFuncWithCPAndQKVOA2A`` asserts
    ``num_heads % cp_size == 0``); TP × CP × PP × DP equals ``procs`` when given.
    """
    for name in ("tp", "cp", "pp", "dp", "microbatch", "virtual_stages"):
        _positive(getattr(par, name), name, "an integer >= 1")
    if par.schedule not in SCHEDULES:
        raise UserError("schedule", f"{par.schedule!r} is unknown", ", ".join(SCHEDULES))
    if isinstance(par.zero, bool) or par.zero not in ZERO_STAGES:
        raise UserError("zero", f"{par.zero!r} is not a ZeRO stage", "0, 1, 2 or 3")
    if par.recompute not in RECOMPUTE:
        raise UserError("recompute", f"{par.recompute!r} is unknown", ", ".join(RECOMPUTE))
    if par.pp_split not in PP_SPLITS:
        raise UserError("pp_split", f"{par.pp_split!r} is unknown", ", ".join(PP_SPLITS))
    if par.cp_comm not in CP_COMMS:
        raise UserError("cp_comm", f"{par.cp_comm!r} is unknown", ", ".join(CP_COMMS))
    if procs is not None and par.procs != procs:
        raise UserError("procs", f"tp*cp*pp*dp = {par.tp}*{par.cp}*{par.pp}*{par.dp} = {par.procs} does not "
                                 f"equal procs={procs}", "tp*cp*pp*dp == procs")
    if heads % par.tp:
        raise UserError("tp", f"{par.tp} does not divide the {heads} attention heads",
                        f"a divisor of {heads}")
    if kv_heads % par.tp and par.tp % kv_heads:
        raise UserError("tp", f"{par.tp} neither divides nor is a multiple of the {kv_heads} key/value heads",
                        f"a divisor or multiple of {kv_heads}")
    if hidden % par.tp:
        raise UserError("tp", f"{par.tp} does not divide hidden={hidden}", f"a divisor of {hidden}")
    slots = layers + sum(split_slots(par.pp_split))
    counted = f"{layers} layers" + (f" (+{slots - layers} with pp_split {par.pp_split})" if slots > layers else "")
    if par.pp > slots:
        raise UserError("pp", f"{par.pp} stages for {counted}", f"pp <= {slots}")
    if par.schedule == "interleaved":
        if par.virtual_stages < 2:
            raise UserError("virtual_stages", f"{par.virtual_stages} with the interleaved schedule",
                            "virtual_stages >= 2 for interleaved (1 is plain 1f1b)")
        if par.pp < 2:
            raise UserError("schedule", "interleaved needs pipeline stages", "pp >= 2, or schedule 1f1b")
    elif par.virtual_stages != 1:
        raise UserError("virtual_stages", f"{par.virtual_stages} with the {par.schedule} schedule",
                        "virtual_stages > 1 only with schedule interleaved")
    if par.pp * par.virtual_stages > slots:
        raise UserError("virtual_stages", f"pp*virtual_stages = {par.pp * par.virtual_stages} chunks for "
                                          f"{counted}", f"pp*virtual_stages <= {slots}")
    if par.cp > 1 and seq_len % (2 * par.cp):
        raise UserError("cp", f"2*cp = {2 * par.cp} does not divide seq_len={seq_len} (ring attention splits "
                              "the sequence in 2*cp load-balanced blocks)", f"cp with 2*cp dividing {seq_len}")
    if par.cp > 1 and par.cp_comm == "a2a":
        q_rank, kv_rank = heads // par.tp, max(1, kv_heads // par.tp)
        if q_rank % par.cp or kv_rank % par.cp:
            raise UserError("cp_comm", f"a2a splits the heads over cp={par.cp}, but a TP rank holds {q_rank} "
                                       f"query and {kv_rank} key/value heads",
                            f"p2p or allgather, or cp dividing {q_rank} and {kv_rank}")
    if batch % (par.dp * par.microbatch):
        raise UserError("microbatch", f"dp*microbatch = {par.dp}*{par.microbatch} does not divide batch={batch}",
                        "batch a multiple of dp*microbatch")
    m = par.microbatches(batch)
    if par.schedule == "interleaved" and m % par.pp:
        raise UserError("microbatch", f"{m} micro-batches is not a multiple of pp={par.pp} (interleaved "
                                      "schedule)", "batch / (dp*microbatch) a multiple of pp")
    return par
