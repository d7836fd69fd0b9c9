"""Closed-form screen of one 4-D layout: the iteration time the program of :mod:`sim.llm.program` takes,
without the engine, for ``dnnsim best`` on a transformer (:mod:`sim.llm.search`).

Collective prices (:class:`Pricer`): each collective is priced on the group the program gives it (rank
tp = cp = dp = 0's TP and CP groups, stage ``s``'s data-parallel group, the send between adjacent stages).
Under ``network: analytic`` it is the network's own closed form (:func:`sim.network.base.cached_cost`
with the group's placement facts), what the engine charges; on any other network the routed, uncontended
cost of :class:`sim.screen.RoutedScreen` (each phase on the group's actual routes and link classes).

Per global chunk ``g`` (on stage ``s = g mod pp``) and micro-batch, mirroring the program's ops:

* forward pass ``Fpass = fwd + max(attn_fwd, ring_fwd) + tp_fwd``: the main compute, then the attention core
  beside the CP ring exchange (``comm2`` stream), then the TP collectives, which wait for both;
* backward pass ``Bpass = R + bwd + max(attn_bwd, ring_bwd) + tp_bwd`` with the recomputation ``R``
  (full: ``fwd + max(attn_fwd, ring_fwd) + tp_fwd``; selective: ``max(attn_fwd, ring_fwd)``; none: 0);
* with an exposed CP exchange (``cp_comm`` allgather or a2a) ``max(attn, ring)`` becomes ``before + attn +
  after`` (the exchanges in line with the attention core);
* with ``overlap`` (gradient buckets) a chunk's reduction goes in ``ceil(params / bucket)`` buckets, each
  priced at its own size and ready when its share of the main backward compute ends, queued on the
  ``comm`` stream; ZeRO 1/2's parameter all-gather runs under the first forwards (stage 0's first waits);
* a pipeline send blocks its sender for the transfer (the program's ``send`` ends when the data has
  arrived), so ``F_g = Fpass + send`` (not on the last chunk), ``B_g = Bpass + send`` (not on chunk 0).

A stage's period per micro-batch is ``P_s = sum of F_g + B_g`` over its ``v`` chunks (never less than the
``comm`` stream's load per micro-batch under ZeRO-3). ZeRO-3 gathers
each action's parameters on the ``comm`` stream, queued behind the previous backward's reduce-scatter
(``rs``, from the backward's last compute; in buckets with ``overlap``), so ``B_g`` gains the wait
``max(0, rs + gather - tail, rs + 2·gather - tail - F)`` of the next forward and of the backward after it
(1F1B; GPipe: the first term), except on a stage's last backward, which has no next action. With ``m``
micro-batches the pipeline (1F1B and interleaved) takes

    T_pipe = (m - 1/v) · max_s P_s + (1/v) · sum_s P_s

the steady state paced by the heaviest stage plus the fill and drain of one micro-batch through every
stage, a ``1/v`` share of each stage per chunk: for uniform stages ``(m + (pp - 1)/v) · P``, the bubble
``(pp - 1)/(v·m + pp - 1)`` of :func:`sim.llm.schedule.bubble_fraction`; with pp = 1 exactly ``m · P``.
GPipe runs every forward, then every backward: ``(m-1)·max F_s + sum F_s`` plus the same in ``B`` (under
ZeRO-3 the back-to-back forwards are paced by ``max(F_s, gather)``: each gather starts when the one before
has ended).

Data-parallel reductions (ZeRO 0 and 1 once per chunk after its last backward, ZeRO 2 and 3 after every
backward) run on the ``comm`` stream from the end of the backward's last compute (the attention core):
stage ``s`` ends its last backward at ``T_pipe - sum_{s' < s} B_{s'}`` (the drain: each earlier stage
waits for its gradient), its chunk ``c``'s last backward some ``c·pp`` backward passes earlier; the
reductions queue on the stream, and only what runs past the stage's last compute is exposed. ZeRO-2's
reductions after every backward hold up no compute: they end no earlier than the first one's (at the
stage's first backward, once the first micro-batch has come back down) plus all the others' (exact
without interleaving; with it a lower bound). With tied embeddings the first and last stage then
all-reduce the embedding's gradient together (from the later of their two ends); ZeRO 1 and 2 then
all-gather the parameters on the compute stream; the host overhead comes last. ZeRO-3's first gather (before any
compute) is exposed once, the second (after it) for what it outlasts the first forward where that
delays the iteration (pp = 1, GPipe).

On ``analytic`` this is exact where the closed forms are (pp = 1; a pipeline whose stages are equal),
close elsewhere (tests/test_best4d.py measures it); on a routed network contention between groups is
ignored, which is why ``best`` re-times its top candidates on the configured network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim.llm.costs import ChunkCost, Comm
from sim.llm.parallel import Parallel
from sim.llm.program import gradient_bucket_params, gradient_buckets


def _algorithm(algorithms: dict[str, str], op: str) -> str:
    """The algorithm the program gives ``op`` (as :mod:`sim.llm.program` chooses it)."""
    return algorithms.get(op, algorithms.get("*", "ring"))


class Pricer:
    """Seconds of a collective of the 4-D program on its group (module docstring), cached.

    ``network`` is the setup's analytic network (closed forms) or a :class:`sim.screen.RoutedScreen`
    (routed); ``tp_solo_algorithms`` uses :func:`sim.llm.run.plan_4d`'s choice for TP collectives timed
    ahead (``algorithms.get(op, "ring")``).
    """

    def __init__(self, analytic: Any, algorithms: dict[str, str], routed: Any = None) -> None:
        self.analytic = analytic
        self.routed = routed
        self.algorithms = algorithms
        self._cache: dict[tuple, float] = {}

    def algorithm(self, op: str, tp_solo: bool = False) -> str:
        return self.algorithms.get(op, "ring") if tp_solo else _algorithm(self.algorithms, op)

    def price(self, c: Comm, group: tuple[int, ...], tp_solo: bool = False) -> float:
        """Seconds of ``c`` (``count`` copies back to back) on ``group``; 0 for a group of one."""
        if len(group) < 2:
            return 0.0
        alg = self.algorithm(c.op, tp_solo)
        key = (c.op, alg, group, float(c.nbytes), c.count)
        hit = self._cache.get(key)
        if hit is None:
            if self.routed is not None:
                hit = c.count * self.routed.group_s(c.op, alg, group, float(c.nbytes))
            else:
                from sim.network.base import cached_cost

                net = self.analytic
                kw = net.algo_kwargs(c.op, alg, group)
                hit = cached_cost(c.op, alg, len(group), float(c.nbytes), net.alpha_s, net.bandwidth_Bps, kw, c.count)
            self._cache[key] = hit
        return hit

    def total(self, comms: Sequence[Comm], group: tuple[int, ...], tp_solo: bool = False) -> float:
        return sum(self.price(c, group, tp_solo) for c in comms)


@dataclass(frozen=True)
class Screen:
    """The screen of one layout: ``iteration_s`` and its parts (seconds)."""

    iteration_s: float
    pipeline_s: float  #: T_pipe
    period_s: float  #: the heaviest stage's period per micro-batch
    exposed_dp_s: float  #: data-parallel reductions and gathers past the pipeline's end


def groups(par: Parallel) -> dict[str, Any]:
    """Rank tp = cp = dp = 0's TP and CP groups and, per stage, the data-parallel group and the stage's
    first rank (for the pipeline sends), as :mod:`sim.llm.program` forms them."""
    return {
        "tp": tuple(par.rank(t, 0, 0, 0) for t in range(par.tp)),
        "cp": tuple(par.rank(0, c, 0, 0) for c in range(par.cp)),
        "dp": [tuple(par.rank(0, c, d, s) for d in range(par.dp) for c in range(par.cp)) for s in range(par.pp)],
        "head": [par.rank(0, 0, 0, s) for s in range(par.pp)],
    }


def screen(par: Parallel, costs: Sequence[ChunkCost], m: int, pricer: Pricer, word_bytes: int,
           host_overhead_s: float = 0.0, tp_solo: bool = False,
           grp: dict[str, Any] | None = None, tp_overlap: bool = False, overlap: bool = False,
           bucket_params: float | None = None) -> Screen:
    """The closed-form iteration of ``par`` with chunk costs ``costs`` and ``m`` micro-batches (module
    docstring); ``tp_solo``: TP collectives priced with the algorithm :func:`sim.llm.run.plan_4d` uses
    when one rank stands for its TP group."""
    g_ = grp or groups(par)
    pp, v = par.pp, par.virtual_stages
    chunks = pp * v
    sharded = par.cp * par.dp > 1
    price, total = pricer.price, pricer.total
    F = [0.0] * pp
    B = [0.0] * pp
    load = [0.0] * pp  # comm stream per micro-batch (ZeRO 2, 3)
    b_chunk = [0.0] * chunks
    first_f = 0.0  # the first forward (chunk 0's, with its send)
    zero3_wait = [0.0] * chunks  # ZeRO-3: the next action's wait for this backward's reduce-scatter and gather
    tail = [0.0] * chunks  # a backward's time after its main compute
    red = [0.0] * chunks  # the reduction after a chunk's last backward
    gather_p = [0.0] * chunks  # ZeRO 1/2 closing all-gather, ZeRO-3 per-action gather
    # --overlap: the reduction after a chunk's last backward goes in ``buckets[g]`` pieces, each when its
    # share of the main backward compute ends; ``main_off[g]`` is how long before the pass's last compute
    # the main compute ends (the attention core, and an in-line CP exchange before it)
    buckets = [1] * chunks
    main_off = [0.0] * chunks
    red_piece = [0.0] * chunks  # one bucket's reduction (priced at its own size)
    per_bucket = gradient_bucket_params(par, bucket_params)

    def reductions(t_comm: float, ready: float, g: int) -> float:
        """When the comm stream, free from ``t_comm``, ends chunk ``g``'s reduction of one backward whose
        last compute ends at ``ready`` (in buckets with ``overlap``: bucket i is ready when piece i of the
        main backward compute ends)."""
        if not overlap:
            return max(t_comm, ready) + red[g]
        k, main_end = buckets[g], ready - main_off[g]
        for i in range(k):
            t_comm = max(t_comm, main_end - (k - 1 - i) / k * costs[g].bwd_s) + red_piece[g]
        return t_comm

    for c in costs:
        g = c.index
        s = g % pp
        dp_group = g_["dp"][s]
        tp_f = total(c.tp_fwd, g_["tp"], tp_solo)
        tp_b = total(c.tp_bwd, g_["tp"], tp_solo)
        ring_f = total(c.cp_fwd, g_["cp"])
        ring_b = total(c.cp_bwd, g_["cp"])
        if c.cp_exposed:
            # allgather / a2a: in line with the attention core (before and after it)
            post_b = total(c.cp_bwd_post, g_["cp"])
            core_f = ring_f + c.attn_fwd_s + total(c.cp_fwd_post, g_["cp"])
            core_b = ring_b + c.attn_bwd_s + post_b
            side_f = side_b = 0.0
            beyond = post_b  # what runs after the backward's last compute, before the TP collectives
        else:
            # ring attention: the exchange on comm2 beside the attention core
            core_f, core_b = max(c.attn_fwd_s, ring_f), max(c.attn_bwd_s, ring_b)
            side_f, side_b = ring_f, ring_b
            beyond = max(c.attn_bwd_s, ring_b) - c.attn_bwd_s if c.attn_bwd_s > 0 or c.cp_bwd else 0.0
        if tp_overlap and par.tp > 1:
            # TP collectives on comm2 beside the whole pass (with the CP ring, which shares that stream)
            fpass = max(c.fwd_s + core_f, side_f + tp_f)
            # recomputation repeats the attention core with its CP exchange
            rec = {"full": max(c.fwd_s + core_f, side_f + tp_f), "selective": core_f}.get(par.recompute, 0.0)
            after = core_b + max(0.0, side_b + tp_b - c.bwd_s - core_b)
            tp_b = 0.0
        else:
            fpass = c.fwd_s + core_f + tp_f
            if par.recompute == "full":
                rec = c.fwd_s + core_f + tp_f
            elif par.recompute == "selective":
                rec = core_f
            else:
                rec = 0.0
            after = core_b + tp_b
        send_f = price(Comm("send", c.send_bytes), (g_["head"][s], g_["head"][(g + 1) % pp])) if g < chunks - 1 else 0.0
        send_b = price(Comm("send", c.send_bytes), (g_["head"][s], g_["head"][(g - 1) % pp])) if g > 0 else 0.0
        params_bytes = c.params * word_bytes
        gather = price(Comm("allgather", params_bytes), dp_group) if sharded and par.zero >= 1 else 0.0
        if sharded:
            red[g] = price(Comm("allreduce" if par.zero == 0 else "reduce_scatter", params_bytes), dp_group)
        gather_p[g] = gather
        if overlap and sharded:
            buckets[g] = gradient_buckets(c.params, per_bucket)
            main_off[g] = c.attn_bwd_s + (ring_b if c.cp_exposed else 0.0)
            red_piece[g] = price(Comm("allreduce" if par.zero == 0 else "reduce_scatter",
                                      params_bytes / buckets[g]), dp_group)
        # the reduction (and ZeRO-3's next gather) waits for the pass's last compute (the attention core
        # when there is one): only the ring beyond it, the TP collectives and the send are left
        # (``after - core_b`` is what the pass runs past its core: the TP collectives, or with tp_overlap
        # the part of them beyond the pass's compute)
        tail[g] = beyond + after - core_b + send_b
        bg = rec + c.bwd_s + after + send_b
        if par.zero == 3 and sharded:
            # the next action's gather is queued on the comm stream behind this backward's reduce-scatter,
            # which starts at the pass's last compute (in buckets with --overlap): what the two take beyond
            # the backward's tail delays the next action; in 1F1B that is a forward, and the gather after it
            # (for the backward that follows) may outlast it too. A stage's last backward has no next
            # action (``zero3_wait[g]`` is taken off again for it below)
            rs = reductions(float("-inf"), 0.0, g)  # its end, from the pass's last compute
            two_ahead = rs + 2 * gather - tail[g] - (fpass + send_f) if par.schedule != "gpipe" else 0.0
            zero3_wait[g] = max(0.0, rs + gather - tail[g], two_ahead)
            bg += zero3_wait[g]
            load[s] += 2 * gather + (red_piece[g] * buckets[g] if overlap else red[g])
        elif par.zero == 2 and sharded:
            load[s] += red_piece[g] * buckets[g] if overlap else red[g]
        F[s] += fpass + send_f
        if g == 0:
            first_f = fpass + send_f
        B[s] += bg
        b_chunk[g] = bg
    # ZeRO-2's reduce-scatters hold up no compute: their backlog is bounded at the end instead (below);
    # ZeRO-3's gathers wait for them
    backlog = par.zero == 2 and sharded
    period = [F[s] + B[s] if backlog else max(F[s] + B[s], load[s]) for s in range(pp)]
    if par.schedule == "gpipe":
        # a stage's forwards run back to back; under ZeRO-3 each waits for its gather, which starts when the
        # one before has ended: the forwards are paced by the longer of the two
        paced = [max(F[s], gather_p[s]) if par.zero == 3 and sharded else F[s] for s in range(pp)]
        t_pipe = (m - 1) * max(paced) + sum(F) + (m - 1) * max(B) + sum(B)
    else:
        t_pipe = (m - 1.0 / v) * max(period) + sum(period) / v
    if par.zero == 3 and sharded:
        # the first gather comes before any compute, the second right after it: the second action waits for
        # it if the first forward is shorter, which delays the iteration where that action is on the
        # critical path (pp = 1: the first backward, or GPipe's second forward; in a 1F1B pipeline it is
        # stage 0's second forward, which waits for the last stage's first backward anyway); each stage's
        # last backward (chunk 0's: global chunk s), the last of one micro-batch's drain through the
        # stages, has no next gather to wait for
        second = max(0.0, gather_p[0] - first_f) if pp == 1 or par.schedule == "gpipe" else 0.0
        t_pipe += gather_p[0] + second - sum(zero3_wait[s] for s in range(pp))
        for s in range(pp):
            b_chunk[s] -= zero3_wait[s]
    elif overlap and par.zero in (1, 2) and sharded:
        # the previous iteration's parameter all-gathers run under this one's first forwards (program): the
        # first forward of stage 0 waits for its chunk's; the later ones are taken as hidden
        t_pipe += gather_p[0]
    end = t_pipe

    # when the first micro-batch's forward has gone through every stage (with GPipe: every micro-batch's),
    # for when each stage's first backward ends
    first_b = (gather_p[0] if overlap else 0.0) + sum(F) + ((m - 1) * max(F) if par.schedule == "gpipe" else 0.0)
    drain = 0.0
    finish = [0.0] * pp
    for s in range(pp):
        stage_end = t_pipe - drain
        drain += b_chunk[s]  # stage s's chunk 0 (global chunk s) is the next stage up's wait
        t_comm = float("-inf")
        for c in reversed(range(v)):
            g = c * pp + s
            t_comm = reductions(t_comm, stage_end - tail[g] - c * pp * b_chunk[g], g)
        if backlog:
            # every backward's reduce-scatter queues on the comm stream: the stream ends no earlier than the
            # first one's chain plus all the others (exact at pp = 1: the chain's end is the later of the
            # first and the last micro-batch's). The stage's first backward (of its last chunk, global
            # chunk gf) ends when the first micro-batch has come back down to it (with interleaving no
            # earlier: a lower bound, and the reductions in between may leave the stream idle, so the
            # screen can be low there)
            gf = (v - 1) * pp + s
            first_end = first_b + sum(b_chunk[g2] for g2 in range(gf, chunks)) - tail[gf]
            rest = m * load[s] - (red_piece[gf] * buckets[gf] if overlap else red[gf])
            t_comm = max(t_comm, reductions(float("-inf"), first_end, gf) + rest)
        finish[s] = max(stage_end, t_comm)
    sync = costs[0].embedding_sync
    if sync and pp > 1:  # tied embeddings: the first and last stage all-reduce its gradient, then go on
        both = max(finish[0], finish[-1]) + price(Comm("allreduce", sync * word_bytes),
                                                  (g_["head"][0], g_["head"][pp - 1]))
        finish[0] = finish[-1] = both
    for s in range(pp):
        if par.zero in (1, 2) and sharded and not overlap:
            finish[s] += sum(gather_p[c * pp + s] for c in range(v))
        end = max(end, finish[s])
    return Screen(end + host_overhead_s, t_pipe, max(period), end - t_pipe)


def make_pricer(setup: Any, network: str, ecmp: bool = False) -> Pricer:
    """The :class:`Pricer` for ``network``: closed forms under ``analytic``, routed costs otherwise."""
    routed = None
    if network != "analytic":
        from sim.network import make_network
        from sim.screen import RoutedScreen

        routed = RoutedScreen(make_network("flow", setup.graph, ecmp=ecmp))
    return Pricer(setup.analytic, dict(setup.algorithms), routed)


__all__: list[str] = ["Pricer", "Screen", "groups", "make_pricer", "screen"]
