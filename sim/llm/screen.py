"""Screen of one 4-D layout: the iteration time the program of :mod:`sim.llm.program` takes, without the
engine, for ``dnnsim best`` on a transformer (:mod:`sim.llm.search`).

Collective prices (:class:`Pricer`): each collective is priced on the group the program gives it (rank
tp = cp = dp = 0's TP and CP groups, stage ``s``'s data-parallel group, the send between adjacent stages).
Under ``network: analytic`` it is the network's own closed form (:func:`sim.network.base.cached_cost`
with the group's placement facts), what the engine charges; on any other network the routed, uncontended
cost of :class:`sim.screen.RoutedScreen` (each phase on the group's actual routes and link classes).

Per global chunk ``g`` (on stage ``s = g mod pp``), mirroring the program's ops, one action's time:

* forward ``F_g = fwd + max(attn_fwd, ring_fwd) + tp_fwd + send``: the main compute, then the attention core
  beside the CP ring exchange (``comm2`` stream), then the TP collectives, which wait for both, then the
  send to the next chunk's stage, which the sender waits for (not on the last chunk);
* backward ``B_g = R + bwd + max(attn_bwd, ring_bwd) + tp_bwd + send`` with the recomputation ``R`` (full:
  ``fwd + max(attn_fwd, ring_fwd) + tp_fwd``; selective: ``max(attn_fwd, ring_fwd)``; none: 0);
* with an exposed CP exchange (``cp_comm`` allgather or a2a) ``max(attn, ring)`` becomes ``before + attn +
  after`` (the exchanges in line with the attention core); with ``tp_overlap`` a pass costs the longer of
  its compute and its TP collectives (with the CP ring, on the same stream).

The actions are then timed one by one in each stage's order (:func:`sim.llm.schedule.timeline`): an action
starts when the stage's previous one has ended and its input has arrived (the previous chunk's forward of
the same micro-batch, the next chunk's backward). Beside them each stage's ``comm`` stream runs, in program
order: ZeRO 1/2 with ``overlap``, the parameter all-gathers of the previous step, which the first forward
through each chunk waits for; ZeRO-3, each action's parameter all-gather, which may start once the action
two places earlier has finished its compute and which the action waits for; the gradient reduction of a
backward (after every one with ZeRO 2 and 3, after a chunk's last one with ZeRO 0 and 1), from the end of
its last compute — with ``overlap`` in ``ceil(params / bucket)`` buckets, each priced at its own size and
ready when its share of the main backward compute ends. That is the program's own dependency structure, so
uneven stages and chunks (an embedding on chunk 0, layers that do not divide), every schedule, the bubble,
and the comm stream's queues cost what the engine charges; it takes ``2·m·v`` steps per stage. For uniform
stages the pipeline ends at ``(m + (pp - 1)/v)·(F + B)``, the bubble ``(pp - 1)/(v·m + pp - 1)`` of
:func:`sim.llm.schedule.bubble_fraction`.

A stage ends when its last action and its ``comm`` stream have; with tied embeddings the first and last
stage then all-reduce the embedding's gradient together (from the later of their two ends); ZeRO 1 and 2
without ``overlap`` all-gather the parameters on the compute stream; the host overhead comes last.

On ``analytic`` this is the engine's iteration (tests/test_best4d.py and bench/bench_screen.py compare
them); on a routed network contention between groups is ignored, which is why ``best`` re-times its top
candidates on the configured network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sim.llm.costs import ChunkCost, Comm
from sim.llm.parallel import Parallel
from sim.llm.program import gradient_bucket_params, gradient_buckets
from sim.llm.schedule import Action, global_chunk, timeline


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


def _pipeline(par: Parallel, m: int, fwd_s: Sequence[float], bwd_s: Sequence[float], f_tail: Sequence[float],
              b_tail: Sequence[float], early_gather_s: Sequence[float] | None, zero3_gather_s: Sequence[float] | None,
              reductions: Callable[[float, float, int], float] | None) -> tuple[float, list[float]]:
    """A pipeline's compute end and, per stage, when its last action and its ``comm`` stream have ended: the
    schedule's actions timed one by one (:func:`sim.llm.schedule.timeline`), forward and backward
    ``fwd_s[g]``, ``bwd_s[g]`` per global chunk (sends included), whose last compute ends ``f_tail[g]``,
    ``b_tail[g]`` before the action does. Each stage's ``comm`` stream runs, in program order:
    ``early_gather_s`` (ZeRO 1/2 with ``overlap``), its parameter all-gathers from the start, which the
    stage's first forward through each chunk waits for; ``zero3_gather_s``, action n's all-gather, which
    may start once action n - 2's compute has ended (prefetch) and which the action waits for;
    ``reductions(t_comm, ready, g)``, chunk ``g``'s gradient reduction of a backward whose last compute ends
    at ``ready``, after every backward with ZeRO 2 and 3 and after a chunk's last one otherwise."""
    pp, v = par.pp, par.virtual_stages
    comm = [0.0] * pp
    held: dict[tuple[int, int], float] = {}
    if early_gather_s is not None:
        for s in range(pp):
            for c in range(v):
                comm[s] += early_gather_s[global_chunk(s, c, pp)]
                held[(s, c)] = comm[s]
    computed: list[list[float]] = [[] for _ in range(pp)]
    last_mb = 0 if par.schedule == "gpipe" else m - 1  # a chunk's last backward (GPipe runs them in reverse)
    zero = par.zero

    def reduces(a: Action) -> bool:
        return a.kind == "B" and (zero >= 2 or a.microbatch == last_mb)

    def run(s: int, n: int, a: Action, g: int, ready: float) -> float:
        """The comm stream holds the action back (ZeRO-3's gather, the early gathers), so it is run here."""
        forward = a.kind == "F"
        start = max(ready, held.pop((s, a.chunk), 0.0)) if forward and held else ready
        if zero3_gather_s is not None:
            comm[s] = max(comm[s], computed[s][n - 2] if n >= 2 else 0.0) + zero3_gather_s[g]
            start = max(start, comm[s])
            end = start + (fwd_s[g] if forward else bwd_s[g])
            computed[s].append(end - (f_tail[g] if forward else b_tail[g]))
            if reductions is not None and reduces(a):
                comm[s] = reductions(comm[s], end - b_tail[g], g)
            return end
        return start + (fwd_s[g] if forward else bwd_s[g])

    def plain(s: int, n: int, a: Action, g: int, ready: float) -> float:
        return ready + (fwd_s[g] if a.kind == "F" else bwd_s[g])

    actions = timeline(par.schedule, pp, m, v, run if held or zero3_gather_s is not None else plain)
    if zero3_gather_s is None and reductions is not None:
        # nothing waits for the reductions: replayed on each stage's comm stream once the actions are timed
        for s, done in enumerate(actions):
            for a, end in done:
                if reduces(a):
                    g = global_chunk(s, a.chunk, pp)
                    comm[s] = reductions(comm[s], end - b_tail[g], g)
    finish = [max(done[-1][1], comm[s]) for s, done in enumerate(actions)]
    return max(done[-1][1] for done in actions), finish


def screen(par: Parallel, costs: Sequence[ChunkCost], m: int, pricer: Pricer, word_bytes: int,
           host_overhead_s: float = 0.0, tp_solo: bool = False,
           grp: dict[str, Any] | None = None, tp_overlap: bool = False, overlap: bool = False,
           bucket_params: float | None = None) -> Screen:
    """The iteration of ``par`` with chunk costs ``costs`` and ``m`` micro-batches, without the engine (module
    docstring); ``tp_solo``: TP collectives priced with the algorithm :func:`sim.llm.run.plan_4d` uses
    when one rank stands for its TP group."""
    g_ = grp or groups(par)
    pp, v = par.pp, par.virtual_stages
    chunks = pp * v
    sharded = par.cp * par.dp > 1
    price, total = pricer.price, pricer.total
    f_chunk = [0.0] * chunks  # a forward, with its send
    f_tail = [0.0] * chunks  # a forward's time after its last compute
    b_chunk = [0.0] * chunks  # a backward, with its recomputation and its send
    tail = [0.0] * chunks  # a backward's time after its last compute
    red = [0.0] * chunks  # a backward's gradient reduction
    gather_p = [0.0] * chunks  # a chunk's parameter all-gather (ZeRO 1-3)
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
        if sharded:
            red[g] = price(Comm("allreduce" if par.zero == 0 else "reduce_scatter", params_bytes), dp_group)
            if par.zero >= 1:
                gather_p[g] = price(Comm("allgather", params_bytes), dp_group)
        if overlap and sharded:
            buckets[g] = gradient_buckets(c.params, per_bucket)
            main_off[g] = c.attn_bwd_s + (ring_b if c.cp_exposed else 0.0)
            red_piece[g] = price(Comm("allreduce" if par.zero == 0 else "reduce_scatter",
                                      params_bytes / buckets[g]), dp_group)
        f_chunk[g] = fpass + send_f
        # the forward's last compute is the attention core (after an in-line CP exchange), the backward's
        # likewise: only the ring beyond it, the TP collectives and the send are left (``after - core_b`` is
        # what the pass runs past its core: the TP collectives, or with tp_overlap the part of them beyond
        # the pass's compute)
        f_tail[g] = f_chunk[g] - (c.fwd_s + (ring_f if c.cp_exposed else 0.0) + c.attn_fwd_s)
        tail[g] = beyond + after - core_b + send_b
        b_chunk[g] = rec + c.bwd_s + after + send_b
    t_pipe, finish = _pipeline(par, m, f_chunk, b_chunk, f_tail, tail,
                               gather_p if overlap and par.zero in (1, 2) and sharded else None,
                               gather_p if par.zero == 3 and sharded else None, reductions if sharded else None)
    end = t_pipe
    sync = costs[0].embedding_sync
    if sync and pp > 1:  # tied embeddings: the first and last stage all-reduce its gradient, then go on
        both = max(finish[0], finish[-1]) + price(Comm("allreduce", sync * word_bytes),
                                                  (g_["head"][0], g_["head"][pp - 1]))
        finish[0] = finish[-1] = both
    for s in range(pp):
        if par.zero in (1, 2) and sharded and not overlap:
            finish[s] += sum(gather_p[c * pp + s] for c in range(v))
        end = max(end, finish[s])
    return Screen(end + host_overhead_s, t_pipe, end - t_pipe)


def make_pricer(setup: Any, network: str, ecmp: bool = False) -> Pricer:
    """The :class:`Pricer` for ``network``: closed forms under ``analytic``, routed costs otherwise."""
    routed = None
    if network != "analytic":
        from sim.network import make_network
        from sim.screen import RoutedScreen

        routed = RoutedScreen(make_network("flow", setup.graph, ecmp=ecmp))
    return Pricer(setup.analytic, dict(setup.algorithms), routed)


__all__: list[str] = ["Pricer", "Screen", "groups", "make_pricer", "screen"]
