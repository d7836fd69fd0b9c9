"""Build the per-rank program of one training iteration on the TP × CP × PP × DP grid.

Each rank runs its pipeline stage's actions (:mod:`sim.llm.schedule`) in order; an action is a forward or
backward of one micro-batch through one local chunk, costed by :mod:`sim.llm.costs`. Ops of an action, on
the rank's ``compute`` stream unless said otherwise:

forward ``F(mb, chunk)``
    receive the activation from the previous chunk's stage (a ``send`` started by the sender: pipeline
    p2p is posted ahead, as Megatron-LM's batched isend/irecv are, so schedules never deadlock); with
    ZeRO-3 the chunk's parameters are all-gathered first (``comm`` stream, prefetched: the gather may start
    once the action two places earlier has finished its compute, FSDP's one-ahead prefetch); the chunk's
    compute except the attention core; the attention core, with ring attention's K/V exchange on the
    ``comm2`` stream at the same time (CP > 1; with ``cp_comm`` allgather or a2a the exchanges run in line
    instead, before and after the attention core on the ``compute`` stream); the TP collectives (with
    none, an empty compute waits for the ring: the pass ends when it has); the send to the next chunk's
    stage.
backward ``B(mb, chunk)``
    receive the gradient from the next chunk's stage; ZeRO-3 gather; recomputation (``full``: the chunk's
    forward with its TP collectives again; ``selective``: the attention core again, Korthikanti et al.
    2022; either repeats the attention's CP exchange); the backward compute, attention core with the CP exchange; the TP collectives; the send to the
    previous chunk's stage; then the data-parallel reduction of the chunk's gradients on the ``comm``
    stream (depending on the backward compute): ZeRO 0 all-reduces and ZeRO 1 reduce-scatters them after
    the chunk's last micro-batch (gradient accumulation: Megatron-LM reduces once per iteration); ZeRO 2
    and 3 reduce-scatter after every micro-batch, since a rank keeps only its shard of the gradients
    (DeepSpeed ``zero/stage_1_and_2.py`` reduces in the backward hooks of every micro-step).

After the last action: with tied embeddings and pipeline stages, the first and the last stage all-reduce
the word embedding's gradient (the last stage holds a copy: Megatron-LM's embedding group); ZeRO 1 and 2
all-gather the updated parameters (blocking, after every reduction:
the optimizer needs them); a host overhead (optimizer step, data loading) if configured.

Groups. TP: the ``tp`` ranks with the other coordinates equal; CP: likewise over ``cp``; data-parallel
gradient reduction: the ``cp * dp`` ranks that hold the same parameters (Megatron-LM reduces gradients
over the data-parallel group including context-parallel ranks); pipeline sends between the same
(tp, cp, dp) coordinates of adjacent stages.

Categories, for the summary's split: TP ``model``, CP ``domain``, data-parallel ``batch``, pipeline sends
``pipeline`` (the paper's model / domain / batch parallelism; pipeline is the fourth dimension).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sim.llm.costs import ChunkCost, Comm
from sim.llm.parallel import Parallel
from sim.llm.schedule import global_chunk, stage_actions
from sim.program import Collective, Compute, Program


def _algorithm(algorithms: dict[str, str], op: str) -> str:
    return algorithms.get(op, algorithms.get("*", "ring"))


def gradient_bucket_params(par: Parallel, bucket_params: float | None = None) -> float:
    """Parameters per gradient bucket of an overlapped reduction: ``bucket_params`` if given, else
    Megatron-core's default max(4e7, 1e6 x the data-parallel size)
    (megatron/core/distributed/distributed_data_parallel.py, ``bucket_size``)."""
    return bucket_params or max(4e7, 1e6 * par.dp * par.cp)


def gradient_buckets(params: float, bucket_params: float) -> int:
    """How many buckets an overlapped reduction splits a chunk's ``params`` gradients into (at least 1)."""
    return max(1, math.ceil(params / bucket_params))


class _ProgramBuilder:
    """Builds rank after rank, sharing one op instance among the members of a collective (same key) and
    among the ranks that run identical computes, so memory grows with groups, not ranks × ops."""

    def __init__(self, par: Parallel, batch: int, costs: Sequence[ChunkCost], word_bytes: int,
                 algorithms: dict[str, str], host_overhead_s: float, tp_solo: Callable | None = None,
                 overlap: bool = False, bucket_params: float | None = None, tp_overlap: bool = False) -> None:
        self.par, self.costs, self.word = par, costs, word_bytes
        self.overlap, self.tp_overlap = overlap, tp_overlap
        self.bucket_params = gradient_bucket_params(par, bucket_params)
        #: with ``tp_solo``: one rank per TP group (tp = 0), program index = global rank // tp
        self.tp_solo = tp_solo
        self.index = (lambda g: g // par.tp) if tp_solo is not None else (lambda g: g)
        self.algorithms, self.host_s = algorithms, float(host_overhead_s)
        m = par.microbatches(batch)
        self.chunks = par.pp * par.virtual_stages
        self.actions = [stage_actions(par.schedule, s, par.pp, m, par.virtual_stages) for s in range(par.pp)]
        #: the last backward micro-batch of each (stage, local chunk): once-per-iteration reductions follow it
        self.last_b = {(s, a.chunk): a.microbatch for s in range(par.pp) for a in self.actions[s] if a.kind == "B"}
        self.shared: dict = {}

    # ------------------------------------------------------------------ op constructors (shared instances)
    def _op(self, key: tuple, make) -> object:
        op = self.shared.get(key)
        if op is None:
            op = self.shared[key] = make()
        return op

    def compute(self, seconds: float, layer: str, phase: str, deps: tuple[int, ...] = ()) -> Compute:
        return self._op(("c", seconds, layer, phase, deps), lambda: Compute(seconds, layer, phase, deps=deps))

    def collective(self, c: Comm, group: tuple[int, ...], key: str, layer: str, phase: str, category: str,
                   stream: str, deps: tuple[int, ...]) -> Collective:
        alg = _algorithm(self.algorithms, c.op)
        return self._op(("k", key, deps), lambda: Collective(c.op, group, float(c.nbytes), alg, key=key, layer=layer,
                                                             phase=phase, category=category, stream=stream,
                                                             deps=deps, count=c.count))

    def pretimed(self, c: Comm, layer: str, phase: str, deps: tuple[int, ...], stream: str = "compute") -> Compute:
        """A TP collective timed ahead (symmetric reduction): its solo seconds on its node."""
        seconds, algorithm, sent = self.tp_solo(c)
        return self._op(("t", c, layer, phase, deps, stream),
                        lambda: Compute(seconds, layer, phase, stream=stream, deps=deps, comm=c.op, algorithm=algorithm,
                                        category="model", group_size=self.par.tp, bytes_sent=sent))

    def send(self, src: int, dst: int, nbytes: float, key: str, layer: str, phase: str) -> Collective:
        """The pipeline send of ``key`` from ``src`` to ``dst`` (both ranks hold this op)."""
        return self._op(("k", key, ()), lambda: Collective("send", (src, dst), float(nbytes),
                                                           _algorithm(self.algorithms, "send"), key=key, layer=layer,
                                                           phase=phase, category="pipeline"))

    # ------------------------------------------------------------------ one rank
    def rank_ops(self, r: int) -> tuple:
        par, word = self.par, self.word
        tp, cp, dp, s = par.coords(r)
        self.ops: list = []
        #: the last op on the compute stream (a pass starts when it has ended and the pass's deps have)
        self.last_compute = -1
        ix = self.index
        self.groups = {"model": tuple(par.rank(t, cp, dp, s) for t in range(par.tp)),
                       "domain": tuple(ix(par.rank(tp, c, dp, s)) for c in range(par.cp)),
                       "batch": tuple(ix(par.rank(tp, c, d, s)) for d in range(par.dp) for c in range(par.cp))}
        me = ix(r)
        self.ids = {"model": f"tp:{cp}.{dp}.{s}", "domain": f"cp:{tp}.{dp}.{s}", "batch": f"dp:{tp}.{s}"}
        pp_id = f"pp:{tp}.{cp}.{dp}"

        def peer(g: int) -> int:
            return ix(par.rank(tp, cp, dp, g % par.pp))

        computes: list[int] = []  # each action's main compute, for ZeRO-3's prefetch deps
        reductions: list[int] = []
        sharded = len(self.groups["batch"]) > 1
        # ZeRO 1/2 with overlap: the previous iteration's parameter all-gather runs under this one's first
        # forwards (Megatron's --overlap-param-gather, in steady state): each chunk's first forward waits for it
        early: dict[int, tuple[int, ...]] = {}
        if self.overlap and par.zero in (1, 2) and sharded:
            for c in range(par.virtual_stages):
                g = global_chunk(s, c, par.pp)
                early[c] = self.comms((Comm("allgather", self.costs[g].params * word),), "batch", f"P{g}",
                                      f"chunk{g}", "param_gather", "comm", ())
        for n, a in enumerate(self.actions[s]):
            g = global_chunk(s, a.chunk, par.pp)
            cost = self.costs[g]
            layer = f"chunk{g}"
            tag = f"{a.kind}{a.microbatch}.{g}"
            gather: tuple[int, ...] = ()
            if par.zero == 3 and sharded:
                pre = (computes[n - 2],) if n >= 2 else ()
                gather = self.comms((Comm("allgather", cost.params * word),), "batch", f"g{tag}", layer,
                                    "param_gather", "comm", pre)
            if a.kind == "F":
                gather += early.pop(a.chunk, ())
                if g > 0:
                    self.add(self.send(peer(g - 1), me, cost.send_bytes, f"{pp_id}:F{a.microbatch}.{g - 1}", layer,
                                       "fwd"))
                computes.append(self.chunk_pass(cost.fwd_s, cost.attn_fwd_s, cost.cp_fwd, cost.tp_fwd, tag, layer,
                                                "fwd", gather, cp_post=cost.cp_fwd_post, exposed=cost.cp_exposed))
                if g < self.chunks - 1:
                    self.add(self.send(me, peer(g + 1), cost.send_bytes, f"{pp_id}:F{a.microbatch}.{g}", layer, "fwd"))
                continue
            if g < self.chunks - 1:
                self.add(self.send(peer(g + 1), me, cost.send_bytes, f"{pp_id}:B{a.microbatch}.{g + 1}", layer, "bwd"))
            deps = gather
            # recomputing the attention core repeats its CP exchange (Transformer Engine's attention with CP is
            # one checkpointed function)
            if par.recompute == "full":
                self.chunk_pass(cost.fwd_s, cost.attn_fwd_s, cost.cp_fwd, cost.tp_fwd, "R" + tag, layer, "recompute",
                                gather, cp_post=cost.cp_fwd_post, exposed=cost.cp_exposed)
                deps = ()
            elif par.recompute == "selective" and cost.attn_fwd_s > 0:
                if cost.cp_fwd:
                    self.chunk_pass(0.0, cost.attn_fwd_s, cost.cp_fwd, (), "R" + tag, layer, "recompute", gather,
                                    cp_post=cost.cp_fwd_post, exposed=cost.cp_exposed)
                else:
                    self.add(self.compute(cost.attn_fwd_s, layer, "recompute", gather))
                deps = ()
            reduce = sharded and (par.zero >= 2 or a.microbatch == self.last_b[(s, a.chunk)])
            op = "allreduce" if par.zero == 0 else "reduce_scatter"
            pieces = gradient_buckets(cost.params, self.bucket_params) if reduce and self.overlap else 1

            def bucket(i: int, piece: int, op=op, cost=cost, tag=tag, layer=layer, pieces=pieces) -> None:
                nonlocal reductions
                reductions += self.comms((Comm(op, cost.params * word / pieces),), "batch",
                                         tag if pieces == 1 else f"{tag}.b{i}", layer, "grad_reduce", "comm", (piece,))

            main = self.chunk_pass(cost.bwd_s, cost.attn_bwd_s, cost.cp_bwd, cost.tp_bwd, tag, layer, "bwd", deps,
                                   pieces if self.overlap else 1, bucket if reduce and self.overlap else None,
                                   cp_post=cost.cp_bwd_post, exposed=cost.cp_exposed)
            computes.append(main)
            if g > 0:
                self.add(self.send(me, peer(g - 1), cost.send_bytes, f"{pp_id}:B{a.microbatch}.{g}", layer, "bwd"))
            if reduce and not self.overlap:
                bucket(0, main)
        self.embedding_sync(tp, cp, dp, s, tuple(reductions))
        if par.zero in (1, 2) and sharded and not self.overlap:
            for c in range(par.virtual_stages):
                g = global_chunk(s, c, par.pp)
                self.comms((Comm("allgather", self.costs[g].params * word),), "batch", f"P{g}", f"chunk{g}",
                           "param_gather", "compute", tuple(reductions))
        if self.host_s > 0:
            self.add(self.compute(self.host_s, "host", "host", tuple(reductions)))
        return tuple(self.ops)

    def embedding_sync(self, tp: int, cp: int, dp: int, s: int, deps: tuple[int, ...]) -> None:
        """The tied word embedding's gradient all-reduce between the stage of the first chunk (stage 0) and
        that of the last (stage pp - 1), after the gradient reductions (Megatron-LM's embedding group)."""
        par = self.par
        first, last = self.costs[0], self.costs[-1]
        if not first.embedding_sync or s not in (0, par.pp - 1) or par.pp == 1:
            return
        group = (self.index(par.rank(tp, cp, dp, 0)), self.index(par.rank(tp, cp, dp, par.pp - 1)))
        c = Comm("allreduce", first.embedding_sync * self.word)
        alg = _algorithm(self.algorithms, "allreduce")
        key = f"emb:{tp}.{cp}.{dp}"
        self.add(self._op(("k", key, deps, s), lambda: Collective(c.op, group, float(c.nbytes), alg, key=key,
                                                                  layer=f"chunk{last.index if s else 0}",
                                                                  phase="embedding_sync", category="batch",
                                                                  deps=deps)))

    def add(self, op: object) -> int:
        self.ops.append(op)
        if getattr(op, "stream", "compute") == "compute":
            self.last_compute = len(self.ops) - 1
        return len(self.ops) - 1

    def comms(self, comms: Sequence[Comm], category: str, tag: str, layer: str, phase: str, stream: str,
              deps: tuple[int, ...]) -> tuple[int, ...]:
        """Add the collectives ``comms`` over this rank's ``category`` group (none for a group of one)."""
        group = self.groups[category]
        if len(group) < 2:
            return ()
        if category == "model" and self.tp_solo is not None:
            return tuple(self.add(self.pretimed(c, layer, phase, deps, stream)) for c in comms)
        return tuple(self.add(self.collective(c, group, f"{self.ids[category]}:{tag}.{k}", layer, phase, category,
                                              stream, deps)) for k, c in enumerate(comms))

    def chunk_pass(self, compute_s: float, attn_s: float, cp_comms: Sequence[Comm], tp_comms: Sequence[Comm], tag: str,
                   layer: str, phase: str, deps: tuple[int, ...], pieces: int = 1,
                   after_piece: Callable[[int, int], None] | None = None, cp_post: Sequence[Comm] = (),
                   exposed: bool = False) -> int:
        """One pass through a chunk: its compute (in ``pieces`` equal parts, ``after_piece(i, index)`` called
        after each: the gradient buckets of an overlapped reduction), the attention core with the CP
        exchange beside it (on ``comm2``; ``exposed``: ``cp_comms`` before it and ``cp_post`` after it, in
        line), then the TP collectives — or, with ``tp_overlap``, the TP collectives on ``comm2`` beside the
        whole pass; returns the index of its last compute."""
        main = -1
        tp: tuple[int, ...] = ()
        overlap_tp = self.tp_overlap and tp_comms and len(self.groups["model"]) > 1
        if overlap_tp:
            # beside the pass's compute, from its start (Transformer Engine's userbuffer overlap): when the
            # compute stream's last op before it and the pass's deps have ended (not the op just before it in
            # the list, which may be a gradient reduction on the comm stream); queued on comm2 ahead of the CP
            # ring, which can start only when the main compute has ended
            start = (self.last_compute,) if self.last_compute >= 0 else ()
            tp = self.comms(tp_comms, "model", tag, layer, phase, "comm2", start + tuple(deps))
        for i in range(pieces):
            main = self.add(self.compute(compute_s / pieces if pieces > 1 else compute_s, layer, phase,
                                         deps if i == 0 else ()))
            if after_piece is not None:
                after_piece(i, main)
        if exposed:
            # allgather / a2a: the exchange before the attention core and the one after it on the compute
            # stream, in line with the attention core
            before = self.comms(cp_comms, "domain", tag, layer, phase, "compute", (main,))
            last = self.add(self.compute(attn_s, layer, phase, before)) if attn_s > 0 or before else main
            ring = self.comms(cp_post, "domain", tag + "o", layer, phase, "compute", (last,)) or (last,)
        else:
            ring = self.comms(cp_comms, "domain", tag, layer, phase, "comm2", (main,))
            last = self.add(self.compute(attn_s, layer, phase)) if attn_s > 0 or ring else main
        if overlap_tp:
            # the compute stream waits for the TP collectives and the CP exchange with an empty join
            self.add(self.compute(0.0, layer, phase, tp + ring))
        elif not self.comms(tp_comms, "model", tag, layer, phase, "compute", ring) and ring and not exposed:
            # no TP collective waits for the ring (TP = 1): the pass still ends only when the ring has
            # (the attention's output needs every K/V block)
            self.add(self.compute(0.0, layer, phase, ring))
        return last


def build_program(par: Parallel, batch: int, costs: Sequence[ChunkCost], word_bytes: int,
                  algorithms: dict[str, str], host_overhead_s: float = 0.0, tp_solo: Callable | None = None,
                  overlap: bool = False, bucket_params: float | None = None, tp_overlap: bool = False) -> Program:
    """The program of every rank (module docstring); ``algorithms`` maps collective op -> algorithm.

    With ``tp_solo`` (``Comm -> (seconds, algorithm, bytes sent per rank)``) only the ranks with tp = 0 are
    built, program rank ``i`` standing for global rank ``i * tp``, and each TP collective is a compute of
    its solo time recorded as that collective (:class:`sim.program.Compute`): exact where the TP group's
    links carry nothing else and every TP rank's other flows use links of their own (:func:`sim.llm.run.
    tp_symmetric`).
    """
    builder = _ProgramBuilder(par, batch, costs, word_bytes, algorithms, host_overhead_s, tp_solo, overlap,
                              bucket_params, tp_overlap)
    ranks = range(0, par.procs, par.tp) if tp_solo is not None else range(par.procs)
    return Program(tuple(builder.rank_ops(r) for r in ranks), {"strategy": "4d"})
