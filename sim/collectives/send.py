"""Point-to-point send: ``nbytes`` from local rank 0 (the sender) to local rank 1 (the receiver).

A send's group is exactly two ranks, ``(sender, receiver)``; the engine starts it when the sender arrives
(:mod:`sim.engine.run`). Its schedule is one phase of one transfer 0 → 1, closed form α + n/bw:

* ``direct`` and ``paper`` — the single transfer (the paper has no point-to-point cost of its own;
  ``paper`` is ``direct`` so that ``--collectives paper`` and every bare ALG without a send of its own,
  e.g. ``ring``, which :func:`~sim.collectives.parse_collectives` leaves on ``paper``, run it);
* ``nccl`` (a model, like the collectives' ``nccl``) — the same transfer plus the topology's per-call
  ``nccl.base_latency_us`` (0 by default) as an extra latency. NCCL's tuning model does not cover
  point-to-point operations (``ncclTopoTuneModel`` in ``src/graph/tuning.cc`` loops over
  ``NCCL_NUM_FUNCTIONS`` = 5, "Send/Recv not included for now", ``src/include/device.h``), so no protocol
  bandwidth factor or ``baseLat``/``hwLat`` figure is charged: the wire time is plain α + n/bw. The
  per-link-class bus efficiency is not applied either (a two-rank group carries no node facts for the
  algorithm to tell NVLink from the NIC); ``flow``/``step`` still route it over the real link.

p = 1 is free, as for every algorithm (the engine never runs a one-rank send: it requires two ranks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.base import Phase, check_link, check_nbytes, check_procs, make_phase
from sim.errors import UserError


def check_pair(p: int) -> int:
    """``p`` as an int, 1 or 2; UserError for a larger group."""
    p = check_procs(p)
    if p > 2:
        raise UserError("procs", f"a send has a group of 2 ranks (sender, receiver), got p={p}",
                        "a group of exactly 2 distinct ranks")
    return p


@dataclass(frozen=True)
class DirectSend(CollectiveAlgorithm):
    """One transfer of ``nbytes`` from local rank 0 to local rank 1: α + n/bw."""

    op: str = "send"
    name: str = "direct"

    def _check(self, p, local_size, dims) -> None:
        check_pair(p)

    def _phases(self, p, n, local_size, dims) -> list[Phase]:
        return [make_phase([0], [1], n)]

    def _cost(self, p, n, a, bw, local_size, dims) -> float:
        return a + n / bw


@dataclass(frozen=True)
class PaperSend(DirectSend):
    """The paper has no point-to-point cost: the direct transfer."""

    name: str = "paper"


class NcclSend:
    """The ``nccl`` model of a send: the direct transfer plus the fabric's ``nccl.base_latency_us``."""

    op: str = "send"
    name: str = "nccl"
    placement_facts: ClassVar[tuple[str, ...]] = ("fabric",)

    def __repr__(self) -> str:
        return "NcclSend()"

    @staticmethod
    def base_latency_s(fabric) -> float:
        """The per-call latency the topology's ``nccl:`` block adds (0 without one)."""
        return float(dict(fabric or ()).get("base_latency_us", 0.0)) * 1e-6

    def check(self, p: int, *, fabric=None, **_kw) -> None:
        check_pair(p)

    def phases(self, p: int, nbytes: float, *, fabric=None, **_kw) -> list[Phase]:
        p = check_pair(p)
        n = check_nbytes(nbytes)
        return [] if p == 1 else [make_phase([0], [1], n, latency_s=self.base_latency_s(fabric))]

    def cost_s(self, p: int, nbytes: float, alpha_s: float, bandwidth_Bps: float, *, fabric=None,
               **_kw) -> float:
        p = check_pair(p)
        n = check_nbytes(nbytes)
        a, bw = check_link(alpha_s, bandwidth_Bps)
        return 0.0 if p == 1 else a + self.base_latency_s(fabric) + n / bw


#: the send algorithms, in registry order
SEND: tuple[DirectSend, ...] = (DirectSend(), PaperSend())
