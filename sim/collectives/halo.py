"""Halo exchange with grid neighbours. ``nbytes`` = bytes sent to each neighbour.

The group is laid out row-major on a grid ``dims`` (``(p,)``: a 1-D chain, ``(py, px)``: 2-D, any number
of dimensions); every rank sends ``nbytes`` to each existing neighbour (±1 along each dimension, not
periodic: an end rank has fewer neighbours) at the same time. On the ``ideal`` network the sends go out
on separate links, so the exchange costs one step, α + n/bw — the paper's "α + βh per exchange" (its
halos are non-blocking and pairwise). p = 1: no transfers, cost 0.

* ``direct`` and ``paper`` — the single-phase exchange above (``paper`` is ``direct``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, make_phase
from sim.errors import UserError


def halo_dims(p: int, dims) -> tuple[int, ...]:
    """``dims`` as a tuple of positive ints whose product is p (``None`` or empty: ``(p,)``)."""
    if dims is None or len(dims) == 0:
        return (p,)
    try:
        out = tuple(int(d) for d in dims)
        ok = all(int(d) == d and d >= 1 for d in dims)
    except (TypeError, ValueError):
        ok = False
    if not ok or math.prod(out) != p:
        raise UserError("halo_dims", f"{tuple(dims)!r} is not a grid of p={p} ranks",
                        "positive sizes whose product is the group size, e.g. (p,) or (py, px)")
    return out


def neighbour_pairs(dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)`` of every neighbour transfer on the row-major grid ``dims`` (both directions)."""
    idx = np.arange(math.prod(dims), dtype=np.int64).reshape(dims)
    src, dst = [], []
    for axis, size in enumerate(dims):
        if size < 2:
            continue
        lo = np.take(idx, np.arange(size - 1), axis=axis).ravel()
        hi = np.take(idx, np.arange(1, size), axis=axis).ravel()
        src += [lo, hi]
        dst += [hi, lo]
    if not src:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(src), np.concatenate(dst)


@dataclass(frozen=True)
class DirectHalo(CollectiveAlgorithm):
    """Every rank sends ``nbytes`` to each grid neighbour at once; one phase of one step."""

    op: str = "halo"
    name: str = "direct"
    #: placement facts the network model passes as keywords
    placement_facts: ClassVar[tuple[str, ...]] = ("dims",)

    def _check(self, p, local_size, dims) -> None:
        halo_dims(p, dims)

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        src, dst = neighbour_pairs(halo_dims(p, dims))
        return [make_phase(src, dst, n)]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return a + n / bw


@dataclass(frozen=True)
class PaperHalo(DirectHalo):
    """The paper's α + βh per exchange: the direct exchange."""

    name: str = "paper"
