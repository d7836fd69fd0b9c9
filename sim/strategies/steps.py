"""Rank-independent steps: the op list every rank runs, with groups named by kind, not by ranks.

All ranks of a Pr x Pc grid run the same sequence of operations; only the members of their groups differ.
A :class:`Step` names its group by kind (``model``: the rank's grid column of Pr ranks, ``batch``: its grid
row of Pc ranks, ``all``: all P ranks; with a separate conv grid also ``conv_model``, ``conv_batch`` and
``conv_fc``, see :class:`~sim.grid.Grid`). :func:`materialize` turns steps into a :class:`~sim.program.Program`
with real groups (one shared :class:`~sim.program.Collective` per group and step); the analytic fast path
(:mod:`sim.fastpath`) evaluates the steps of one representative rank directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.grid import Grid
from sim.program import Collective, Compute, Op, Program

GROUP_KINDS = ("model", "batch", "all")


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of every rank.

    ``kind`` is ``"compute"`` (``seconds`` known) or ``"collective"`` (``op``, ``group``, ``nbytes``,
    ``algorithm``, ``category``). ``deps`` are indices into the step list, as in :mod:`sim.program`.
    """

    kind: str
    layer: str
    phase: str
    seconds: float = 0.0
    op: str = ""
    group: str = ""
    nbytes: float = 0.0
    algorithm: str = "paper"
    category: str = "other"
    stream: str = "compute"
    deps: tuple[int, ...] = ()


def group_size(kind: str, pr: int, pc: int) -> int:
    """Members of a group of ``kind`` on a Pr x Pc grid (the three kinds of one grid; a grid with a conv
    grid answers for every kind with :meth:`~sim.grid.Grid.group_size`)."""
    return {"model": pr, "batch": pc, "all": pr * pc}[kind]


def _groups(grid: Grid, kind: str) -> tuple[tuple[tuple[int, ...], ...], list[int]]:
    """The groups of ``kind`` and, per rank, the index of its group."""
    groups = grid.groups(kind)
    index = [0] * grid.procs
    for g, members in enumerate(groups):
        for r in members:
            index[r] = g
    return groups, index


def materialize(steps: list[Step], grid: Grid, meta: dict | None = None) -> Program:
    """The :class:`Program` of ``steps`` on ``grid``: every rank runs every step, in order.

    Collective keys are ``"<step>:<layer>:<op>:<group kind><group index>"``, unique per program.
    """
    kinds = dict.fromkeys([*GROUP_KINDS, *(step.group for step in steps if step.kind == "collective")])
    layouts = {kind: _groups(grid, kind) for kind in kinds}
    per_step: list[list[Op]] = []
    for s, step in enumerate(steps):
        if step.kind == "compute":
            per_step.append([Compute(step.seconds, step.layer, step.phase, step.stream, step.deps)])
            continue
        groups, _ = layouts[step.group]
        per_step.append([
            Collective(step.op, members, step.nbytes, step.algorithm, f"{s}:{step.layer}:{step.op}:{step.group}{g}",
                       step.layer, step.phase, step.category, (len(members),) if step.op == "halo" else (),
                       step.stream, step.deps)
            for g, members in enumerate(groups)])
    index_of = {kind: layouts[kind][1] for kind in kinds}
    choose = [(ops, index_of[step.group] if step.kind == "collective" else None) for ops, step in zip(per_step, steps, strict=True)]
    rank_ops = tuple(
        tuple(ops[idx[r]] if idx is not None else ops[0] for ops, idx in choose)
        for r in range(grid.procs))
    return Program(rank_ops, dict(meta or {}))
