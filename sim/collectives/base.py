"""The shape every collective algorithm takes: phases of point-to-point transfers plus a closed form.

An algorithm is described once, as a list of :class:`Phase` values over the *local* ranks ``0..p-1`` of
its group, and given a closed-form α-β cost. The network models consume the phases:

* ``flow`` runs each phase as one set of concurrent flows; a phase with ``steps = k`` stands for the same
  pattern repeated k times in lockstep (a ring's p-1 steps), so its flows carry ``k * nbytes`` bytes and pay
  ``k`` path latencies, and the event count does not grow with k;
* ``step`` expands every phase into its k steps and runs each transfer with its true per-rank
  dependencies (a rank's transfer of step s starts when that rank has sent and received in step s-1);
* ``analytic`` ignores the phases and charges :meth:`Algorithm.cost_s`.

On an uncontended network with equal links (``ideal``, or ``star`` with the path latency as α), the
simulated time of the phases must equal ``cost_s``; tests hold every algorithm to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Phase:
    """Transfers that run at the same time, repeated ``steps`` times in lockstep.

    Attributes
    ----------
    src, dst : ndarray of int
        Local ranks (indices into the group), one entry per transfer.
    nbytes : ndarray of float
        Bytes of each transfer in *one* step.
    steps : int
        How many times the pattern repeats (ring: p - 1).
    """

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    steps: int = 1


class Algorithm(Protocol):
    """A collective algorithm for one op (see ``sim.collectives`` for the registry)."""

    op: str
    name: str

    def check(self, p: int) -> None:
        """Raise :class:`~sim.errors.UserError` if the algorithm cannot run on ``p`` ranks."""

    def phases(self, p: int, nbytes: float) -> list[Phase]:
        """The transfers, over local ranks ``0..p-1``, for a collective of ``nbytes`` (CONTRACT.md sizes)."""

    def cost_s(self, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float) -> float:
        """Closed-form time on an uncontended network with per-message latency α and link bandwidth."""
