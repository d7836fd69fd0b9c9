"""Pipeline schedules as orderings: which forward and backward passes each stage runs, in which order.

A schedule is not engine code: it is, per pipeline stage, the list of :class:`Action` values (forward or
backward of one micro-batch through one model chunk) that stage runs in order. The program builder
(:mod:`sim.llm.program`) turns each action into compute, communication and point-to-point sends; the data
dependencies between stages (a forward needs the activation of the previous chunk, a backward the gradient
of the next) come from the sends, so the bubble is whatever the engine then times.

Model chunks: with ``v`` virtual stages per stage, the model is cut into ``pp * v`` chunks of consecutive
layers; stage ``s`` holds chunks ``s, s + pp, s + 2 pp, ...`` (Megatron-LM's interleaving: local chunk
``c`` of stage ``s`` is global chunk ``c * pp + s``). Without interleaving ``v = 1`` and chunk = stage.

* ``gpipe`` (Huang et al. 2019): every micro-batch forward, then every backward in reverse order;
* ``1f1b`` (PipeDream-Flush, Narayanan et al. 2021, Megatron-LM ``forward_backward_pipelining_without_
  interleaving``): ``min(pp - s - 1, m)`` warm-up forwards on stage ``s``, then one forward and one
  backward alternately, then the remaining backwards;
* ``interleaved`` (Narayanan et al. 2021 Sec. 2.2, Megatron-LM ``forward_backward_pipelining_with_
  interleaving``): the same on ``m * v`` virtual micro-batches, with ``(pp - s - 1) * 2 + (v - 1) * pp``
  warm-up forwards (at most all of them; current Megatron-LM, which no longer makes every pass a warm-up
  one when ``m == pp``); forward number ``k`` runs local chunk ``(k // pp) % v`` on micro-batch
  ``(k // (pp * v)) * pp + k % pp``, backward number ``k`` the chunks in reverse order.

:func:`timeline` times the orderings without the engine, given each action's time (the 4d screen,
:mod:`sim.llm.screen`). :func:`bubble_fraction` gives the closed forms the simulation must equal on an ideal
network with uniform stages: ``(p - 1) / (m + p - 1)`` of the iteration for GPipe and 1F1B, and
``(p - 1) / (v * m + p - 1)`` with ``v`` virtual stages (the bubble time shrinks by ``v``: Narayanan et al. 2021, Sec. 2.2.2).

Examples
--------
>>> [f"{a.kind}{a.microbatch}" for a in stage_actions("1f1b", stage=0, pp=3, m=4)]
['F0', 'F1', 'F2', 'B0', 'F3', 'B1', 'B2', 'B3']
>>> [f"{a.kind}{a.microbatch}.{a.chunk}" for a in stage_actions("interleaved", 1, pp=2, m=4, v=2)][:4]
['F0.0', 'F1.0', 'F0.1', 'B0.1']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sim.errors import UserError


@dataclass(frozen=True, slots=True)
class Action:
    """Forward (``kind="F"``) or backward (``"B"``) of micro-batch ``microbatch`` through local chunk ``chunk``."""

    kind: str
    microbatch: int
    chunk: int = 0


def global_chunk(stage: int, chunk: int, pp: int) -> int:
    """The model chunk (0 = the embedding side) that local chunk ``chunk`` of ``stage`` holds."""
    return chunk * pp + stage


def _one_f_one_b(stage: int, pp: int, total: int, warmup: int, fwd: list[Action], bwd: list[Action]) -> list[Action]:
    """Warm-up forwards, then forward/backward pairs, then cool-down backwards (Megatron's order)."""
    warmup = min(warmup, total)
    out = fwd[:warmup]
    for i in range(total - warmup):
        out.append(fwd[warmup + i])
        out.append(bwd[i])
    out += bwd[total - warmup:]
    return out


def stage_actions(schedule: str, stage: int, pp: int, m: int, v: int = 1) -> list[Action]:
    """The actions stage ``stage`` of ``pp`` runs, in order, for ``m`` micro-batches and ``v`` chunks per stage."""
    if not 0 <= stage < pp:
        raise UserError("stage", f"{stage} is not a stage of pp={pp}", f"0 <= stage < {pp}")
    if schedule == "gpipe":
        return [Action("F", i) for i in range(m)] + [Action("B", i) for i in reversed(range(m))]
    if schedule == "1f1b":
        return _one_f_one_b(stage, pp, m, pp - stage - 1, [Action("F", i) for i in range(m)],
                            [Action("B", i) for i in range(m)])
    if schedule == "interleaved":
        if m % pp:
            raise UserError("microbatch", f"{m} micro-batches is not a multiple of pp={pp} (interleaved schedule)",
                            "a micro-batch count that is a multiple of pp")
        total = m * v
        fwd = [Action("F", (k // (pp * v)) * pp + k % pp, (k // pp) % v) for k in range(total)]
        bwd = [Action("B", (k // (pp * v)) * pp + k % pp, v - 1 - (k // pp) % v) for k in range(total)]
        warmup = (pp - stage - 1) * 2 + (v - 1) * pp
        return _one_f_one_b(stage, pp, total, warmup, fwd, bwd)
    raise UserError("schedule", f"{schedule!r} is unknown", "gpipe, 1f1b or interleaved")


@lru_cache(maxsize=64)
def _plan(schedule: str, pp: int, m: int, v: int) -> tuple[tuple[tuple[Action, int, int, int], ...], ...]:
    """Per stage, each action with its global chunk, the slot of the action whose end it waits for (-1:
    none) and its own slot; slots number every (kind, micro-batch, chunk). Cached: ``dnnsim best`` times
    many layouts of the same pipeline shape."""
    chunks = pp * v

    def slot(kind: str, mb: int, g: int) -> int:
        return (mb * chunks + g) * 2 + (kind == "B")

    plan = []
    for s in range(pp):
        row = []
        for a in stage_actions(schedule, s, pp, m, v):
            g = global_chunk(s, a.chunk, pp)
            if a.kind == "F":
                dep = slot("F", a.microbatch, g - 1) if g > 0 else -1
            else:
                dep = slot("B", a.microbatch, g + 1) if g < chunks - 1 else slot("F", a.microbatch, g)
            row.append((a, g, dep, slot(a.kind, a.microbatch, g)))
        plan.append(tuple(row))
    return tuple(plan)


def timeline(schedule: str, pp: int, m: int, v: int,
             run: Callable[[int, int, Action, int, float], float]) -> list[list[tuple[Action, float]]]:
    """Per stage, each action of the schedule with its end time. ``run(stage, n, action, g, ready)`` gives
    the end of the stage's ``n``-th action (through global chunk ``g``), where ``ready`` is when the stage's
    previous action has ended and the action's input has arrived: a forward's from the previous chunk's
    forward of the same micro-batch, a backward's from the next chunk's backward, the last chunk's backward
    from its own forward (each action's time includes its send, which the sender waits for). ``run`` is
    called once per action, in each stage's order, so it may keep per-stage state (a comm stream).

    >>> fwd, bwd = [1, 1], [2, 2]
    >>> ends = timeline("1f1b", 2, 2, 1, lambda s, n, a, g, ready: ready + (fwd if a.kind == "F" else bwd)[g])
    >>> [(f"{a.kind}{a.microbatch}", t) for a, t in ends[0]]
    [('F0', 1.0), ('F1', 2.0), ('B0', 6.0), ('B1', 9.0)]
    """
    plan = _plan(schedule, pp, m, v)
    ends: list[float | None] = [None] * (2 * m * pp * v)
    out: list[list[tuple[Action, float]]] = [[] for _ in range(pp)]
    free = [0.0] * pp
    left = sum(len(row) for row in plan)
    while left:
        moved = left
        for s, row in enumerate(plan):
            done, t = out[s], free[s]
            for n in range(len(done), len(row)):
                a, g, dep, own = row[n]
                arrived = ends[dep] if dep >= 0 else 0.0
                if arrived is None:
                    break  # its input is not timed yet: go on with the other stages
                t = run(s, n, a, g, t if t > arrived else arrived)
                ends[own] = t
                done.append((a, t))
                left -= 1
            free[s] = t
        if moved == left:
            raise RuntimeError(f"schedule {schedule!r} deadlocks (pp={pp}, m={m}, v={v})")  # not for valid schedules
    return out


def bubble_fraction(schedule: str, pp: int, m: int, v: int = 1) -> float:
    """Idle fraction of the iteration on an ideal network with uniform stages (module docstring)."""
    virtual = v if schedule == "interleaved" else 1
    return (pp - 1) / (virtual * m + pp - 1)
