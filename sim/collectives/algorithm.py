"""The common frame of every algorithm: argument checks, the p = 1 case, and the keyword plumbing.

Concrete algorithms subclass :class:`CollectiveAlgorithm` (a frozen dataclass holding ``op`` and
``name``) and implement ``_phases(p, n, local_size, dims)`` and ``_cost(p, n, α, bw, local_size, dims)``
for p ≥ 2, with arguments already validated. ``power_of_two = True`` makes :meth:`check` reject other
group sizes with the UserError every such algorithm uses.

:class:`Dual` makes one algorithm serve two ops: a reduce-scatter from an all-gather, a reduce from a
broadcast (the phases reversed with every transfer turned round, the same cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.collectives import patterns as pat
from sim.collectives.base import Phase, check_link, check_nbytes, check_procs, require_power_of_two


@dataclass(frozen=True)
class CollectiveAlgorithm:
    """Base of the algorithms in this package (implements the :class:`~sim.collectives.base.Algorithm`
    protocol). ``local_size`` and ``dims`` are accepted by every algorithm; only ``hierarchical``
    all-reduce and ``halo`` use them."""

    op: str
    name: str
    power_of_two: ClassVar[bool] = False

    def check(self, p: int, *, local_size: int | None = None, dims: tuple[int, ...] | None = None) -> None:
        """Raise :class:`~sim.errors.UserError` if the algorithm cannot run on ``p`` ranks."""
        p = check_procs(p)
        if self.power_of_two:
            require_power_of_two(p, self.op, self.name)
        self._check(p, local_size, dims)

    def phases(self, p: int, nbytes: float, *, local_size: int | None = None,
               dims: tuple[int, ...] | None = None) -> list[Phase]:
        """The transfers over local ranks ``0..p-1`` (none for p = 1)."""
        self.check(p, local_size=local_size, dims=dims)
        n = check_nbytes(nbytes)
        return [] if p == 1 else self._phases(int(p), n, local_size, dims)

    def cost_s(self, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float, *,
               local_size: int | None = None, dims: tuple[int, ...] | None = None) -> float:
        """Closed-form seconds on an uncontended network (0 for p = 1)."""
        self.check(p, local_size=local_size, dims=dims)
        n = check_nbytes(nbytes)
        a, bw = check_link(alpha_s, bandwidth_Bps)
        return 0.0 if p == 1 else float(self._cost(int(p), n, a, bw, local_size, dims))

    # ------------------------------------------------------------------ for subclasses
    def _check(self, p: int, local_size: int | None, dims: tuple[int, ...] | None) -> None:
        """Extra checks of a subclass (keywords)."""

    def _phases(self, p: int, n: float, local_size: int | None, dims: tuple[int, ...] | None) -> list[Phase]:
        raise NotImplementedError

    def _cost(self, p: int, n: float, a: float, bw: float, local_size: int | None,
              dims: tuple[int, ...] | None) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Dual(CollectiveAlgorithm):
    """The dual of the algorithm ``of``, for op ``op``: its phases by :func:`~sim.collectives.patterns.dual`
    (with ``mirror``, also reflected by :func:`~sim.collectives.patterns.mirror`), its checks and its
    closed form (the dual moves the same bytes in the same number of steps).

    Examples
    --------
    >>> from sim.collectives.rooted import TreeBroadcast
    >>> reduce = Dual("reduce", "tree", TreeBroadcast())
    >>> [(ph.src.tolist(), ph.dst.tolist()) for ph in reduce.phases(4, 8.0)]   # to rank 0
    [([1, 3], [0, 2]), ([2], [0])]
    """

    of: CollectiveAlgorithm
    mirror: bool = False

    def _check(self, p, local_size, dims) -> None:
        if self.of.power_of_two:
            require_power_of_two(p, self.op, self.name)
        self.of._check(p, local_size, dims)

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        phases = pat.dual(self.of._phases(p, n, local_size, dims))
        return pat.mirror(phases, p) if self.mirror else phases

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return self.of._cost(p, n, a, bw, local_size, dims)
