"""The ``flow`` network model: each phase of a collective is one batch of fluid flows, its steps folded.

A collective runs its algorithm's phases one after another; a phase starts all its transfers at once as
flows on their routed paths and ends when the last one has arrived (:mod:`sim.network.fluid`: max-min
fair sharing of every directed link among all active flows of all concurrent collectives, latency paid
after the bytes). A phase with ``steps = k`` (a ring's p − 1 steps) stands for k lockstep repetitions and
is *folded*: its flows carry ``k × nbytes`` and pay ``k`` path latencies, so events grow with phases, not
steps. On an uncontended network with equal links this equals the closed form.

Folding packs a phase's bytes at its start and its latencies at its end, which is the lockstep schedule
only while nothing else uses its links. :class:`FoldingCore` therefore keeps a fold only while its links
carry nothing but itself and folds in lockstep with it (started at the same instant, the same send and
step times: concurrent copies of one collective), at constant rates. When another flow starts on its links
(also while it pays its folded latencies), a rate of its flows changes, or its flows finish while others
still use their links, the fold is split at its current lockstep step: the steps done are accounted, the
rest of the current step runs as a batch of its own, and the remaining steps are folded again when it
arrives, at the load of that moment. Overlapping phases so go step by step while they overlap and fold
again once alone: events grow with phases plus the steps during which different collectives share links.

Residual error against ``step`` (every step with per-rank dependencies, :mod:`sim.network.step`):

* none (to rounding, < 1e-13 relative) wherever every transfer of a step of a collective meets the same
  conditions: single collectives on symmetric networks, concurrent identical collectives, and staggered
  rings sharing links with equal or mixed sizes, latency- or bandwidth-dominated (``bench/bench_engine.py
  --stagger``: 408 cases on a star and 2:1 / 4:1 leaf/spines, started 0 to 2 steps apart; tested in
  ``tests/test_crossmodel.py``);
* otherwise, the barrier ``flow`` puts at the end of each phase and, while split, of each step (a step
  ends when its slowest transfer arrives; ``step`` lets ranks on fast routes run ahead, which also changes
  which transfers contend), so the error grows with the spread of transfer times within a step; no
  closed bound is proven. Measured on rings over random halves of a leaf/spine
  (uneven routes and contention, 240 cases): −16 % to +9 % when latency is comparable to the chunk time,
  −0.2 % to +13 % when bandwidth dominates, mean |error| < 1 % (before splitting: −12 % to +31 %, mean 4 %).

Examples
--------
A ring all-reduce of 8 MiB on 4 hosts of an ideal network takes 2(p-1)(α + n/(p·bw)):

>>> import simpy
>>> from topologies.basic import ideal
>>> net = FlowNetwork(ideal(4, bandwidth_Bps=2**30, latency_s=1e-6))
>>> env = simpy.Environment()
>>> done = net.session(env).collective("allreduce", "ring", (0, 1, 2, 3), 8 * 2**20)
>>> env.run(); abs(env.now / (2 * 3 * (1e-6 + 8 * 2**20 / (4 * 2**30))) - 1) < 1e-12
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import simpy

from sim.network.base import Session, cached_phases, register_model
from sim.network.fluid import FluidCore
from sim.network.fluidmodel import FluidNetwork, FluidSession

#: a folded phase is split when the rate of one of its flows changes by more than this relative amount
RATE_REL = 1e-9
#: folds sharing links stay folded only if their send times and step times agree to this relative margin
SYNC_REL = 1e-12


@dataclass(eq=False)
class _Fold:
    """A folded phase running on the core: ``steps`` lockstep repetitions of one step of flows.

    ``inc_flow``/``inc_link``, ``nbytes`` and ``latency_s`` describe one step of the flows that use the
    network (as queued on the core, in the core's order), ``links`` the links they use; ``instant_s`` is
    one step's latency of the flows that use no link (-inf when there are none). ``rate`` is the rate of
    each network flow from ``t0`` on (constant while the fold lasts); ``step_s`` is then one step's
    duration, ``max(bytes / rate + latency)``.
    """

    inc_flow: np.ndarray
    inc_link: np.ndarray
    nbytes: np.ndarray
    latency_s: np.ndarray
    instant_s: float
    steps: int
    total_bytes: float
    links: np.ndarray
    t0: float = math.nan
    rate: np.ndarray | None = None
    step_s: float = math.nan


class FoldingCore(FluidCore):
    """The fluid core with folded phases, split at a step boundary when the load on their links changes.

    :meth:`add_folded` starts ``steps`` lockstep repetitions of a step as one batch of flows carrying
    ``steps`` times the bytes and latency: exact while nothing else uses its links (or only folds started
    at the same instant whose flows on the shared links send for as long and whose steps last as long, as
    concurrent copies of one collective do). A fold is *split* when that stops holding:

    * another flow starts on one of its links (also after its bytes are sent, while it pays its folded
      latencies: in lockstep it would still be sending), or the rate of one of its flows changes;
    * it starts sharing links with flows out of step with it (split at once: it runs step by step);
    * its flows finish sending while other flows still use their links.

    A split reconstructs the fold's position in the lockstep schedule at its constant rates (step ``j``
    of duration ``T``, ``e`` seconds into it): the steps before ``j`` are accounted, the rest of step
    ``j`` runs as a batch of its own (flows still sending keep their remaining bytes; flows past their
    bytes only wait for the rest of their latency, off the links), and the remaining steps are folded
    again when it arrives, at the load of that moment (so overlapping phases go step by step while they
    overlap, and fold again once alone).
    """

    def __init__(self, env: simpy.Environment, router) -> None:
        super().__init__(env, router)
        self._folds: dict[int, _Fold] = {}
        self._tails: dict[int, tuple[_Fold, simpy.Event, float]] = {}
        self._started: list[np.ndarray] = []
        #: folded batches split so far
        self.splits = 0

    def add_folded(self, inc_flow: np.ndarray, inc_link: np.ndarray, nbytes: np.ndarray, latency_s: np.ndarray,
                   steps: int, callback: Callable[[simpy.Event], None] | None = None,
                   event: simpy.Event | None = None) -> simpy.Event:
        """Start ``steps`` lockstep repetitions of the batch (``nbytes``, ``latency_s``: one step's)."""
        if steps < 2:
            return self.add(inc_flow, inc_link, nbytes, latency_s, callback, event)
        event, bid, fluid = self._enqueue(inc_flow, inc_link, nbytes * steps, latency_s * steps, callback, event)
        if bid is None:
            return event
        self._wake()
        q_flow, q_link, q_bytes = self._pending[-1][:3]
        if fluid is None:
            nb, lat, instant = nbytes, latency_s, -math.inf
        else:
            nb, lat, instant = nbytes[fluid], latency_s[fluid], float(latency_s[~fluid].max())
        self._folds[bid] = _Fold(q_flow, q_link, np.asarray(nb, dtype=np.float64), np.asarray(lat, dtype=np.float64),
                                 instant, int(steps), float(q_bytes.sum()), np.unique(q_link))
        return event

    # ------------------------------------------------------------------ hooks on the fluid core
    def _take_pending(self) -> np.ndarray:
        links = super()._take_pending()
        if self._folds or self._tails:
            self._started.append(links)
        return links

    def _retire(self, done: np.ndarray) -> None:
        if not self._folds:
            super()._retire(done)
            return
        ended = [(b, self._batch_event.get(b)) for b in np.unique(self.fbatch[done]).tolist() if b in self._folds]
        super()._retire(done)
        now = self.env.now
        for bid, event in ended:
            if bid in self._batch_left:
                continue
            f = self._folds.pop(bid)
            t_end = f.t0 + f.steps * f.step_s if f.rate is not None else now
            if t_end > now and event is not None:
                self._tails[bid] = (f, event, t_end)  # sent, paying its folded latencies

    def _on_finish(self, gen: int) -> None:
        if gen != self._gen or not self._folds:
            super()._on_finish(gen)
            return
        done = self._finishing()
        self._advance()
        split = self._split_leaving(done)
        if split is None:
            self._retire(done)
            self._rerate(self._drop(done))
            return
        self._retire(done & ~split)
        links = self._drop(done | split)
        self._rerate(np.concatenate([links, self._take_pending()]))

    def _rerate(self, changed_links: np.ndarray) -> None:
        started = np.concatenate(self._started) if self._started else np.zeros(0, dtype=np.int64)
        self._started = []
        if self._tails:
            now = self.env.now
            for bid in [b for b, (_f, _e, t_end) in self._tails.items() if t_end <= now]:
                del self._tails[bid]
        if (not self._folds and not self._tails) or len(self.rem) == 0:
            super()._rerate(changed_links)
            return
        self._gen += 1
        self.reratings += 1
        old = self.rate.copy()
        while True:
            self._rate(changed_links)
            split = self._split_disturbed(old, started)
            if split is None:
                split = self._stamp_fresh()
            if split is None:
                break
            drop, more = split
            links = self._drop(drop) if drop.any() else np.zeros(0, dtype=np.int64)
            n_kept = len(self.rem)
            started = super()._take_pending()
            old = np.concatenate([old[~drop], np.zeros(len(self.rem) - n_kept)])
            changed_links = np.concatenate([links, started, more])
            if len(self.rem) == 0:
                self.rate = np.zeros(0)
                return
        self._wake_at_next_finish()

    # ------------------------------------------------------------------ when to split
    def _split_disturbed(self, old: np.ndarray, started: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Split the running folds (and folds in their latency tail) disturbed by this re-rating.

        Returns the mask of the active flows of split folds (their rest is queued) and the links of
        split tails, or None when nothing was split.
        """
        now = self.env.now
        mark = np.zeros(len(self._cap), dtype=bool)
        mark[started] = True
        drop = np.zeros(len(self.rem), dtype=bool)
        tail_links = []
        for bid in [b for b, (f, _e, _t) in self._tails.items() if mark[f.links].any()]:
            f, event, _t_end = self._tails.pop(bid)
            if event.callbacks is None:
                continue  # already arrived
            cont = self.env.event()
            cont.callbacks, event.callbacks = event.callbacks, []  # the scheduled arrival now does nothing
            self._split(f, None, cont)
            tail_links.append(f.links)
        changed = np.abs(self.rate - old) > RATE_REL * old
        moved = set(np.unique(self.fbatch[changed]).tolist()) if changed.any() else set()
        for bid, f in list(self._folds.items()):
            if f.rate is None or f.t0 == now or not (bid in moved or mark[f.links].any()):
                continue
            mine = self.fbatch == bid
            self._split(f, mine, self._batch_event.pop(bid))
            del self._batch_left[bid], self._batch_arrive[bid], self._folds[bid]
            drop |= mine
        if not drop.any() and not tail_links:
            return None
        return drop, np.concatenate(tail_links) if tail_links else np.zeros(0, dtype=np.int64)

    def _stamp_fresh(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Record the rates of the folds that start now; split at once those out of step with their link mates."""
        now = self.env.now
        fresh = [(bid, f) for bid, f in self._folds.items() if f.rate is None or f.t0 == now]
        if not fresh:
            return None
        masks = {}
        for bid, f in fresh:
            mine = self.fbatch == bid
            if int(mine.sum()) != len(f.nbytes):
                continue  # still queued
            masks[bid] = mine
            f.t0, f.rate = now, self.rate[mine]
            f.step_s = max(float((f.nbytes / f.rate + f.latency_s).max()), f.instant_s)
        drop = np.zeros(len(self.rem), dtype=bool)
        for bid, mine in masks.items():
            f = self._folds[bid]
            if self._in_step(bid, f, mine):
                continue
            self._split(f, mine, self._batch_event[bid])
            drop |= mine
        for bid in np.unique(self.fbatch[drop]).tolist():
            del self._batch_left[bid], self._batch_arrive[bid], self._batch_event[bid], self._folds[bid]
        return (drop, np.zeros(0, dtype=np.int64)) if drop.any() else None

    def _in_step(self, bid: int, f: _Fold, mine: np.ndarray) -> bool:
        """Whether every other flow on the links of fold ``bid`` belongs to a fold in lockstep with it."""
        link_mark = np.zeros(len(self._cap), dtype=bool)
        link_mark[f.links] = True
        on = np.zeros(len(self.rem), dtype=bool)
        on[self.inc_flow[link_mark[self.inc_link]]] = True
        others = on & ~mine
        if not others.any():
            return True
        now = self.env.now
        for other in np.unique(self.fbatch[others]).tolist():
            g = self._folds.get(other)
            if g is None or g.rate is None or g.t0 != now or g.steps != f.steps or \
                    abs(g.step_s - f.step_s) > SYNC_REL * f.step_s:
                return False
        shared = np.zeros(len(self._cap), dtype=bool)
        shared[self.inc_link[others[self.inc_flow]]] = True
        shared &= link_mark
        on_shared = np.zeros(len(self.rem), dtype=bool)
        on_shared[self.inc_flow[shared[self.inc_link]]] = True
        send_s = self.rem[on_shared] / self.rate[on_shared]
        return float(send_s.max()) <= float(send_s.min()) * (1.0 + SYNC_REL)

    def _split_leaving(self, done: np.ndarray) -> np.ndarray | None:
        """Split the folds whose flows finish sending now while other flows still use their links.

        A fold sends its steps' bytes back to back and pays their latencies at the end; in lockstep it
        would still be on its links, between latencies, until its last step. Returns the mask of the
        split folds' flows (their rest is queued), or None.
        """
        now = self.env.now
        split = None
        for bid in np.unique(self.fbatch[done]).tolist():
            f = self._folds.get(bid)
            if f is None or f.rate is None or f.t0 == now:
                continue
            mine = self.fbatch == bid
            link_mark = np.zeros(len(self._cap), dtype=bool)
            link_mark[self.inc_link[(mine & done)[self.inc_flow]]] = True
            others = ~mine & ~done
            if not link_mark[self.inc_link[others[self.inc_flow]]].any():
                continue
            self._split(f, mine, self._batch_event.pop(bid))
            del self._batch_left[bid], self._batch_arrive[bid], self._folds[bid]
            split = mine if split is None else split | mine
        return split

    # ------------------------------------------------------------------ splitting
    def _split(self, f: _Fold, mine: np.ndarray | None, event: simpy.Event) -> None:
        """Queue the rest of the fold's current lockstep step, then (on its arrival) its remaining steps.

        ``mine`` masks its flows still on the core (None in its latency tail); ``event`` is what its last
        step triggers. The caller removes the fold's flows and batch.
        """
        e_total = self.env.now - f.t0
        j = min(max(int(e_total // f.step_s), 0), f.steps - 1)
        e = e_total - j * f.step_s
        sent = np.minimum(f.nbytes, f.rate * e)
        left = f.nbytes - sent
        lat = np.where(left > 0.0, f.latency_s, np.maximum(f.nbytes / f.rate + f.latency_s - e, 0.0))
        # bytes of the fold credited so far: its flows that finished sending (all their steps)
        credited = f.total_bytes - (float(self.fbytes[mine].sum()) if mine is not None else 0.0)
        self.bytes_delivered += float((j * f.nbytes + sent).sum()) - credited
        if f.instant_s > -math.inf:
            left = np.append(left, 0.0)
            lat = np.append(lat, max(f.instant_s - e, 0.0))
        rest = f.steps - j - 1
        if rest == 0:
            self._enqueue(f.inc_flow, f.inc_link, left, lat, None, event)
        else:
            self._enqueue(f.inc_flow, f.inc_link, left, lat, partial(self._refold, f, rest, event), None)
        self.splits += 1

    def _refold(self, f: _Fold, steps: int, event: simpy.Event, _arrived: simpy.Event) -> None:
        nbytes, lat = f.nbytes, f.latency_s
        if f.instant_s > -math.inf:
            nbytes, lat = np.append(nbytes, 0.0), np.append(lat, f.instant_s)
        self.add_folded(f.inc_flow, f.inc_link, nbytes, lat, steps, event=event)


class FlowSession(FluidSession):
    """One run: every phase of every collective as a (folded) batch of flows on the run's fluid core."""

    core: FoldingCore

    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> simpy.Event:
        plan = self.model.plan(op, algorithm, tuple(group), float(nbytes), tuple(halo_dims), count)
        done = self.env.event()
        if not plan:
            done.succeed()
            return done
        self._phase(plan, done, 0, None)
        return done

    def _phase(self, plan: tuple, done: simpy.Event, i: int, _event: simpy.Event | None) -> None:
        inc_flow, inc_link, nbytes, lat, steps = plan[i]
        if i + 1 == len(plan):
            self.core.add_folded(inc_flow, inc_link, nbytes, lat, steps, event=done)
        else:
            self.core.add_folded(inc_flow, inc_link, nbytes, lat, steps, callback=partial(self._phase, plan, done, i + 1))


@register_model
class FlowNetwork(FluidNetwork):
    """Fluid flows per phase, max-min fair sharing of links (SimGrid-like); steps folded while rates hold."""

    name = "flow"
    core_class = FoldingCore

    def build_plan(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float, kw: tuple,
                   count: int = 1) -> tuple:
        """Per phase: ``(inc_flow, inc_link, bytes, latency, steps)`` of its flows (one step's), for this group."""
        out = []
        for ph in cached_phases(op, algorithm, len(group), nbytes, kw, count):
            inc_flow, inc_link, lat = self.pattern(group, ph.src, ph.dst)
            nb = np.broadcast_to(np.asarray(ph.nbytes, dtype=np.float64), lat.shape)
            if ph.latency_s:  # an extra per-step latency (the nccl model's protocol latency)
                lat = lat + ph.latency_s
            out.append((inc_flow, inc_link, np.ascontiguousarray(nb), lat, int(ph.steps)))
        return tuple(out)

    def session(self, env: simpy.Environment) -> Session:
        return FlowSession(self, env)
