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

:func:`bubble_fraction` gives the closed forms the simulation must equal on an ideal network with uniform
stages: ``(p - 1) / (m + p - 1)`` of the iteration for GPipe and 1F1B, and ``(p - 1) / (v * m + p - 1)``
with ``v`` virtual stages (the bubble time shrinks by ``v``: Narayanan et al. 2021, Sec. 2.2.2).

Examples
--------
>>> [f"{a.kind}{a.microbatch}" for a in stage_actions("1f1b", stage=0, pp=3, m=4)]
['F0', 'F1', 'F2', 'B0', 'F3', 'B1', 'B2', 'B3']
>>> [f"{a.kind}{a.microbatch}.{a.chunk}" for a in stage_actions("interleaved", 1, pp=2, m=4, v=2)][:4]
['F0.0', 'F1.0', 'F0.1', 'B0.1']
"""

from __future__ import annotations

from dataclasses import dataclass

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
        total = m * v
        fwd = [Action("F", (k // (pp * v)) * pp + k % pp, (k // pp) % v) for k in range(total)]
        bwd = [Action("B", (k // (pp * v)) * pp + k % pp, v - 1 - (k // pp) % v) for k in range(total)]
        warmup = (pp - stage - 1) * 2 + (v - 1) * pp
        return _one_f_one_b(stage, pp, total, warmup, fwd, bwd)
    raise UserError("schedule", f"{schedule!r} is unknown", "gpipe, 1f1b or interleaved")


def bubble_fraction(schedule: str, pp: int, m: int, v: int = 1) -> float:
    """Idle fraction of the iteration on an ideal network with uniform stages (module docstring)."""
    virtual = v if schedule == "interleaved" else 1
    return (pp - 1) / (virtual * m + pp - 1)
