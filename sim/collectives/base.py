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
simulated time of the phases must equal ``cost_s``; tests hold every algorithm to that. The time model
behind every closed form here (:func:`ideal_time_s`): each rank sends and receives at the same time, and
transfers to different peers in one phase run on separate links, so one step of a phase costs
``α + max(nbytes) / bandwidth`` and a phase costs ``steps`` times that.

This module also holds the helpers the algorithm modules share: argument checks, ``⌈log2 p⌉``, phase
construction (read-only numpy arrays) and per-rank byte counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.errors import UserError


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
    latency_s : float
        Extra seconds every transfer of every step pays on top of its path latency (a protocol's
        per-hop software latency and a share of a per-call launch cost, as the ``nccl`` model charges);
        0 for every MPI-style algorithm.
    payload : ndarray of float or None
        The data each transfer carries in one step where ``nbytes`` charges more for it (the ``nccl``
        model divides by a protocol's and a link class's efficiency to time it); None: ``nbytes``. Bytes
        sent count the payload (:func:`payload_bytes`); links carry ``nbytes`` (what keeps them busy).
    """

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    steps: int = 1
    latency_s: float = 0.0
    payload: np.ndarray | None = None


def payload_bytes(ph: Phase) -> np.ndarray:
    """The data of each transfer of ``ph`` in one step (``payload``, else ``nbytes``)."""
    return ph.nbytes if ph.payload is None else ph.payload


class Algorithm(Protocol):
    """A collective algorithm for one op (see ``sim.collectives`` for the registry).

    ``check``, ``phases`` and ``cost_s`` take optional keywords: ``local_size`` (ranks per node, for
    ``hierarchical``) and ``dims`` (the neighbour grid, for ``halo``); other algorithms accept and ignore
    ``local_size``/``dims`` so a caller may pass them uniformly.
    """

    op: str
    name: str

    def check(self, p: int, **kw) -> None:
        """Raise :class:`~sim.errors.UserError` if the algorithm cannot run on ``p`` ranks."""

    def phases(self, p: int, nbytes: float, **kw) -> list[Phase]:
        """The transfers, over local ranks ``0..p-1``, for a collective of ``nbytes`` (sizes as ``sim.program.COLLECTIVE_OPS`` defines them)."""

    def cost_s(self, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float, **kw) -> float:
        """Closed-form time on an uncontended network with per-message latency α and link bandwidth."""


# ------------------------------------------------------------------------------------------ checks
def check_procs(p: int) -> int:
    """``p`` as an int ≥ 1, or a UserError."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise UserError("procs", f"{p!r} is not a positive number of ranks", "an integer >= 1")
    return int(p)


def check_nbytes(nbytes: float) -> float:
    """``nbytes`` as a finite float ≥ 0, or a UserError."""
    value = float(nbytes)
    if not math.isfinite(value) or value < 0:
        raise UserError("bytes", f"{nbytes!r} is not a size", "a finite number of bytes >= 0")
    return value


def check_link(alpha_s: float, bandwidth_Bps: float) -> tuple[float, float]:
    """``(α, bandwidth)`` as floats (α ≥ 0, bandwidth > 0), or a UserError."""
    a, bw = float(alpha_s), float(bandwidth_Bps)
    if not math.isfinite(a) or a < 0:
        raise UserError("latency", f"{alpha_s!r} is not a latency", "seconds >= 0")
    if not bw > 0 or math.isnan(bw):
        raise UserError("bandwidth", f"{bandwidth_Bps!r} is not a bandwidth", "bytes/s > 0")
    return a, bw


def is_power_of_two(p: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return p >= 1 and p & (p - 1) == 0


def ceil_log2(p: int) -> int:
    """``⌈log2 p⌉`` exactly, for p ≥ 1 (integer arithmetic, no float rounding)."""
    return (int(p) - 1).bit_length()


def floor_log2(p: int) -> int:
    """``⌊log2 p⌋`` exactly, for p ≥ 1."""
    return int(p).bit_length() - 1


def require_power_of_two(p: int, op: str, name: str) -> None:
    """UserError unless ``p`` is a power of two (for algorithms that only run on such groups)."""
    if not is_power_of_two(p):
        raise UserError("procs", f"{name} {op} needs a power-of-two group, got p={p}",
                        "use ring, bruck or paper, or a power-of-two group")


# ------------------------------------------------------------------------------------------ phases
def make_phase(src, dst, nbytes, steps: int = 1, latency_s: float = 0.0, payload=None) -> Phase:
    """A :class:`Phase` with int64 ``src``/``dst`` and float64 ``nbytes`` (and ``payload`` when given; a
    scalar is broadcast), read-only."""
    s = np.ascontiguousarray(src, dtype=np.int64)
    d = np.ascontiguousarray(dst, dtype=np.int64)
    b = np.array(np.broadcast_to(np.asarray(nbytes, dtype=np.float64), s.shape))
    arrays = [s, d, b]
    if payload is not None:
        payload = np.array(np.broadcast_to(np.asarray(payload, dtype=np.float64), s.shape))
        arrays.append(payload)
    for a in arrays:
        a.flags.writeable = False
    return Phase(s, d, b, int(steps), float(latency_s), payload)


def check_count(count: int) -> int:
    """``count`` (repetitions of a collective) as an int >= 1; ValueError otherwise (programs are built by
    code; :func:`sim.engine.validate.validate_program` reports a bad one as a UserError first)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be an integer >= 1, got {count!r}")
    return int(count)


def repeat_phases(phases: Sequence[Phase], count: int) -> list[Phase]:
    """The phases of ``count`` identical collectives run back to back by one group: every phase of one
    copy with its ``steps`` multiplied by ``count`` (each phase repeated ``count`` times in lockstep).

    The order of the steps differs from ``count`` copies in sequence (all repetitions of phase 1, then of
    phase 2, ...), but on an uncontended network the time is the same, Σ count·steps·(α + max n/β)
    (:func:`ideal_time_s`), and so are the bytes every rank sends and every link carries (× ``count``).

    Examples
    --------
    >>> [ph.steps for ph in repeat_phases([make_phase([0], [1], 8.0, steps=3), make_phase([1], [0], 8.0)], 4)]
    [12, 4]
    """
    count = check_count(count)
    if count == 1:
        return list(phases)
    return [Phase(ph.src, ph.dst, ph.nbytes, ph.steps * count, ph.latency_s, ph.payload) for ph in phases]


def bytes_sent_per_rank(phases: Sequence[Phase], p: int) -> np.ndarray:
    """Bytes each local rank sends over all phases: ``Σ steps × nbytes`` grouped by ``src``.

    Examples
    --------
    >>> bytes_sent_per_rank([make_phase([0, 1], [1, 0], 8.0, steps=3)], 3).tolist()
    [24.0, 24.0, 0.0]
    """
    out = np.zeros(int(p))
    for ph in phases:
        out += np.bincount(ph.src, weights=payload_bytes(ph) * ph.steps, minlength=p)[:p]
    return out


def bytes_received_per_rank(phases: Sequence[Phase], p: int) -> np.ndarray:
    """Bytes each local rank receives over all phases: ``Σ steps × nbytes`` grouped by ``dst``."""
    out = np.zeros(int(p))
    for ph in phases:
        out += np.bincount(ph.dst, weights=payload_bytes(ph) * ph.steps, minlength=p)[:p]
    return out


def ideal_time_s(phases: Sequence[Phase], alpha_s: float, bandwidth_Bps: float) -> float:
    """Time of ``phases`` on the uncontended ``ideal`` network: ``Σ steps × (α + max(nbytes) / bandwidth)``
    (plus ``steps × latency_s`` for a phase with an extra per-step latency).

    Phases run one after another; within a step every transfer starts together on its own link.
    """
    total = 0.0
    for ph in phases:
        if len(ph.nbytes):
            if ph.latency_s:
                total += ph.steps * (alpha_s + ph.latency_s + float(ph.nbytes.max()) / bandwidth_Bps)
            else:
                total += ph.steps * (alpha_s + float(ph.nbytes.max()) / bandwidth_Bps)
    return total
