"""The Pr × Pc process grid (docs/paper-model.md, docs/cli.md): groups, placement and grid parsing.

Grid position ``(i, j)`` with ``i < Pr`` and ``j < Pc``. A *model group* (grid column) is the Pr ranks with
the same ``j``; a *batch group* (grid row) is the Pc ranks with the same ``i``. Placement maps positions to
ranks (and rank r runs on host r):

* ``row-major`` (alias ``model-contiguous``): ``r = j * Pr + i`` — each model group on consecutive hosts;
* ``col-major`` (alias ``batch-contiguous``): ``r = i * Pc + j`` — each batch group on consecutive hosts.

Examples
--------
>>> g = Grid(2, 3)
>>> g.model_groups()
((0, 1), (2, 3), (4, 5))
>>> g.batch_groups()
((0, 2, 4), (1, 3, 5))
>>> Grid(2, 3, "col-major").model_groups()
((0, 3), (1, 4), (2, 5))

A grid may carry a second grid for the convolution layers (``conv``, same P and placement; ``conv_grid``
in a run config). Its groups are the kinds ``conv_model`` and ``conv_batch``, and ``conv_fc`` groups the
ranks of one model group of the main (fc) grid that share their position ``i`` on the conv grid: the
group of the conv -> fc redistribution when the convolutions are model-parallel
(:mod:`sim.strategies.layout`).

>>> g = Grid(4, 2, conv=Grid(2, 4))
>>> g.groups("conv_model")
((0, 1), (2, 3), (4, 5), (6, 7))
>>> g.groups("conv_fc")
((0, 2), (1, 3), (4, 6), (5, 7))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim.errors import UserError

PLACEMENTS = {"row-major": "row-major", "model-contiguous": "row-major",
              "col-major": "col-major", "batch-contiguous": "col-major"}


def parse_placement(text: str, field: str = "placement") -> str:
    """Canonical placement name (``row-major`` or ``col-major``) for a name or alias."""
    try:
        return PLACEMENTS[str(text).strip().lower()]
    except KeyError:
        raise UserError(field, f"unknown placement {text!r}", ", ".join(PLACEMENTS)) from None


def parse_grid(text: str, procs: int | None = None, field: str = "grid") -> tuple[int, int]:
    """Parse ``"PrxPc"`` (e.g. ``"16x32"``) and check that it factors ``procs`` when given."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(text))
    if not m:
        raise UserError(field, f"cannot parse {text!r}", "PrxPc with positive integers, e.g. 16x32")
    pr, pc = int(m.group(1)), int(m.group(2))
    if pr < 1 or pc < 1:
        raise UserError(field, f"{text!r} has a zero dimension", "PrxPc with Pr >= 1 and Pc >= 1")
    if procs is not None and pr * pc != procs:
        raise UserError(field, f"{pr}x{pc} = {pr * pc} does not equal procs={procs}",
                        f"Pr x Pc with Pr*Pc == {procs}, e.g. {grid_examples(procs)}")
    return pr, pc


def grid_examples(procs: int) -> str:
    """A few valid grids for ``procs``, for error messages."""
    grids = all_grids(procs)
    shown = grids if len(grids) <= 4 else [grids[0], grids[len(grids) // 2], grids[-1]]
    return ", ".join(f"{pr}x{pc}" for pr, pc in shown)


def all_grids(procs: int) -> list[tuple[int, int]]:
    """Every factorization ``(Pr, Pc)`` of ``procs``, Pr ascending."""
    return [(pr, procs // pr) for pr in range(1, procs + 1) if procs % pr == 0]


@dataclass(frozen=True)
class Grid:
    """A Pr × Pc process grid with a placement of positions on ranks."""

    pr: int
    pc: int
    placement: str = "row-major"
    conv: Grid | None = None  #: the convolution layers' grid, when it differs (same P and placement)

    def __post_init__(self) -> None:
        if self.pr < 1 or self.pc < 1:
            raise UserError("grid", f"{self.pr}x{self.pc} has a zero dimension", "Pr >= 1 and Pc >= 1")
        object.__setattr__(self, "placement", parse_placement(self.placement))
        if self.conv is not None:
            if self.conv.procs != self.procs:
                raise UserError("conv_grid", f"{self.conv.pr}x{self.conv.pc} = {self.conv.procs} does not equal "
                                             f"procs={self.procs}", f"Pr x Pc == {self.procs}")
            if self.conv.placement != self.placement or self.conv.conv is not None:
                raise ValueError("a conv grid shares the placement of its grid and has no conv grid itself")

    @property
    def procs(self) -> int:
        return self.pr * self.pc

    def rank(self, i: int, j: int) -> int:
        """Rank at grid position (i, j)."""
        return j * self.pr + i if self.placement == "row-major" else i * self.pc + j

    def position(self, rank: int) -> tuple[int, int]:
        """Grid position (i, j) of ``rank``."""
        if self.placement == "row-major":
            return rank % self.pr, rank // self.pr
        return rank // self.pc, rank % self.pc

    def model_groups(self) -> tuple[tuple[int, ...], ...]:
        """The Pc model groups (grid columns), each the Pr ranks with the same j, in i order."""
        pr, pc, procs = self.pr, self.pc, self.procs  # self.rank(i, j) for i in range(Pr), by ranges
        if self.placement == "row-major":
            return tuple(tuple(range(j * pr, (j + 1) * pr)) for j in range(pc))
        return tuple(tuple(range(j, procs, pc)) for j in range(pc))

    def batch_groups(self) -> tuple[tuple[int, ...], ...]:
        """The Pr batch groups (grid rows), each the Pc ranks with the same i, in j order."""
        pr, pc, procs = self.pr, self.pc, self.procs  # self.rank(i, j) for j in range(Pc), by ranges
        if self.placement == "row-major":
            return tuple(tuple(range(i, procs, pr)) for i in range(pr))
        return tuple(tuple(range(i * pc, (i + 1) * pc)) for i in range(pr))

    def all_ranks(self) -> tuple[int, ...]:
        return tuple(range(self.procs))

    def groups(self, kind: str) -> tuple[tuple[int, ...], ...]:
        """Every group of ``kind``: ``model``, ``batch``, ``all``, and with a conv grid ``conv_model``,
        ``conv_batch`` and ``conv_fc`` (module docstring)."""
        if kind == "model":
            return self.model_groups()
        if kind == "batch":
            return self.batch_groups()
        if kind == "all":
            return (self.all_ranks(),)
        if self.conv is None or kind not in ("conv_model", "conv_batch", "conv_fc"):
            raise ValueError(f"no group kind {kind!r} on grid {self.pr}x{self.pc}")
        if kind == "conv_model":
            return self.conv.model_groups()
        if kind == "conv_batch":
            return self.conv.batch_groups()
        # the ranks of a model group (in i order) with conv-grid row t: row-major r % Pr_c == i % Pr_c == t,
        # col-major r // Pc_c == i // (Pr / Pr_c) == t (Pr_c divides Pr)
        pr_c, k = self.conv.pr, self.pr // self.conv.pr
        if self.pr % pr_c:
            raise ValueError(f"conv grid Pr={pr_c} does not divide Pr={self.pr}")
        out: list[tuple[int, ...]] = []
        for members in self.model_groups():
            if self.placement == "row-major":
                out += [members[t::pr_c] for t in range(pr_c)]
            else:
                out += [members[t * k:(t + 1) * k] for t in range(pr_c)]
        return tuple(out)

    def group_size(self, kind: str) -> int:
        """Members of each group of ``kind`` (all groups of a kind have the same size when the conv grid's
        Pr divides Pr, as a run config demands)."""
        sizes = {"model": self.pr, "batch": self.pc, "all": self.procs}
        if self.conv is not None:
            sizes.update(conv_model=self.conv.pr, conv_batch=self.conv.pc, conv_fc=self.pr // self.conv.pr)
        if kind not in sizes:
            raise ValueError(f"no group kind {kind!r} on grid {self.pr}x{self.pc}")
        return sizes[kind]
