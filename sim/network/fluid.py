"""The fluid core shared by the ``flow`` and ``step`` models: flows on routed paths, max-min fair rates.

A *batch* is a set of flows submitted together (a phase of a collective, or one transfer of the step
model); it owns one SimPy event that triggers when the last of its flows has arrived. A flow

* consumes bandwidth from its start until its bytes have left the source, at the max-min fair rate of the
  moment (:func:`sim.network.maxmin.maxmin_rates` over every active flow of every running collective);
* arrives its latency later: latency is paid *after* the bytes, as in a pipe — the flow's bandwidth is
  released when its last byte is sent and the data lands ``latency`` seconds later. So a flow's time is
  ``latency + bytes / rate`` when its rate is constant, and never less than ``latency + bytes / min
  capacity on its path`` (the uncontended time).

Rates change only when flows start or finish sending, and only for the flows connected to them through
shared links (max-min rates decompose over the connected components of the flow-link graph, so the
re-rating is exact on that subset). Starts at one simulated instant are coalesced into one re-rating (a zero-delay wake-up), and flows that finish at the same instant are retired together, so
the SimPy events are a few per rate change, not per flow. Between rate changes, the remaining bytes of
every flow drop by ``rate × dt`` in one numpy operation. A wake-up scheduled before a later change is
recognised as stale by a generation counter and ignored.

The state is kept in flat numpy arrays (remaining bytes, rate, latency, batch of each flow, and the
flow-link incidence); links are compacted to those in use at each re-rating.

Examples
--------
Two 1 MB flows into one host of a star with 1 GB/s links and 1 µs latency share its link at 0.5 GB/s:

>>> import numpy as np, simpy
>>> from topologies.basic import star
>>> from topologies.routing import Router
>>> env = simpy.Environment()
>>> core = FluidCore(env, Router(star(3, bandwidth_Bps=1e9, latency_s=1e-6)))
>>> f, l, lat = core.path_arrays(np.array([0, 1]), np.array([2, 2]))
>>> done = core.add(f, l, np.array([1e6, 1e6]), lat)
>>> env.run(); round(env.now, 9), core.bytes_delivered   # 2 µs + 1e6 / 0.5e9
(0.002002, 2000000.0)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from sim.simclock import succeed_after
from topologies.routing import Router

#: flows whose finish time is within this relative margin of the earliest finish are retired together
_FINISH_REL = 1e-12


def _trigger_at(env: simpy.Environment, event: simpy.Event, delay: float) -> None:
    """Schedule ``event`` to succeed ``delay`` seconds from now, as one SimPy event (like a Timeout)."""
    succeed_after(env, event, delay)


class FluidCore:
    """Active flows of one simulation run on one router's links.

    Parameters
    ----------
    env : simpy.Environment
    router : Router
        Routes host pairs to directed-link ids; its capacity array is re-read when new links appear
        (full meshes number links on first use).
    """

    def __init__(self, env: simpy.Environment, router: Router) -> None:
        self.env = env
        self.router = router
        self._cap = router.capacity_Bps
        self._lat = router.latency_s
        z_f, z_i = np.zeros(0), np.zeros(0, dtype=np.int64)
        self.rem, self.rate, self.flat, self.fbatch = z_f, z_f, z_f, z_i  # per active flow
        self.fbytes = z_f  # bytes each active flow started with
        self.inc_flow, self.inc_link = z_i, z_i  # incidence of active flows (flow position, global link)
        self._pending: list[tuple] = []
        self._pending_one: list[tuple] = []
        self._batch_left: dict[int, int] = {}
        self._batch_arrive: dict[int, float] = {}
        self._batch_event: dict[int, simpy.Event] = {}
        self._next_batch = 0
        self._t0 = 0.0
        self._gen = 0
        self._wake_pending = False
        self.reratings = 0
        #: bytes of every flow that has finished sending (or had no link to cross), for conservation checks
        self.bytes_delivered = 0.0
        #: a :class:`sim.network.linkmeter.LinkMeter` told of every interval at constant rates, or None
        self.meter = None

    # ------------------------------------------------------------------ submitting
    def path_arrays(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Incidence ``(flow, link)`` and path latency per flow for host pairs (routes are cached)."""
        inc_flow, inc_link = self.router.incidence(src, dst)
        if len(inc_link) and int(inc_link.max()) >= len(self._cap):
            self._cap, self._lat = self.router.capacity_Bps, self.router.latency_s
        lat = np.bincount(inc_flow, weights=self._lat[inc_link], minlength=len(src))
        return inc_flow, inc_link, lat

    def add(self, inc_flow: np.ndarray, inc_link: np.ndarray, nbytes: np.ndarray,
            latency_s: np.ndarray, callback: Callable[[simpy.Event], None] | None = None,
            event: simpy.Event | None = None) -> simpy.Event:
        """Start a batch of flows now; the returned event triggers when the last one has arrived.

        Parameters
        ----------
        inc_flow, inc_link : ndarray of int
            Flow-link incidence (flow index within the batch, global link id); a flow with no links
            (source and destination on one host) sends instantly.
        nbytes, latency_s : ndarray of float
            Bytes and latency of each flow of the batch.
        callback : callable, optional
            Appended to the event's callbacks.
        event : simpy.Event, optional
            Trigger this (untriggered) event instead of a new one.
        """
        event, bid, _fluid = self._enqueue(inc_flow, inc_link, nbytes, latency_s, callback, event)
        if bid is not None:
            self._wake()
        return event

    def _wake(self) -> None:
        """Make sure the queued flows are taken in by one zero-delay wake-up at this instant."""
        if not self._wake_pending:
            self._wake_pending = True
            wake = self.env.timeout(0.0)
            wake.callbacks.append(self._on_start)

    def _enqueue(self, inc_flow: np.ndarray, inc_link: np.ndarray, nbytes: np.ndarray, latency_s: np.ndarray,
                 callback: Callable[[simpy.Event], None] | None,
                 event: simpy.Event | None) -> tuple[simpy.Event, int | None, np.ndarray | None]:
        """Queue a batch (see :meth:`add`) without waking the core.

        Returns the batch's event, its batch id (None when no flow needs the network: the event is then
        already scheduled) and the mask of its flows that do (None when all of them do).
        """
        env = self.env
        if len(inc_link) and int(inc_link.max()) >= len(self._cap):
            self._cap, self._lat = self.router.capacity_Bps, self.router.latency_s
        bid = self._next_batch
        self._next_batch += 1
        if event is None:
            event = env.event()
        if callback is not None:
            event.callbacks.append(callback)
        n = len(nbytes)
        hops = np.bincount(inc_flow, minlength=n) if n else np.zeros(0, dtype=np.int64)
        fluid = (hops > 0) & (nbytes > 0)
        now = env.now
        # flows with nothing to send through the network arrive after their latency alone
        instant = float(latency_s[~fluid].max()) if (~fluid).any() else -np.inf
        n_fluid = int(fluid.sum())
        if n_fluid < n:
            self.bytes_delivered += float(nbytes[~fluid].sum())
        if n_fluid == 0:
            _trigger_at(env, event, max(instant, 0.0) if n else 0.0)
            return event, None, fluid
        self._batch_left[bid] = n_fluid
        self._batch_arrive[bid] = now + instant if n_fluid < n else -np.inf
        self._batch_event[bid] = event
        if n_fluid < n:
            keep_inc = fluid[inc_flow]
            renum = np.cumsum(fluid) - 1
            inc_flow, inc_link = renum[inc_flow[keep_inc]], inc_link[keep_inc]
            nbytes, latency_s = nbytes[fluid], latency_s[fluid]
        self._pending.append((inc_flow, inc_link, nbytes.astype(np.float64), latency_s, bid))
        return event, bid, (fluid if n_fluid < n else None)

    def add_one(self, links: np.ndarray, nbytes: float, latency_s: float,
                callback: Callable[[simpy.Event], None]) -> simpy.Event:
        """Start one flow now over ``links`` (a batch of one, the step model's unit): a lighter :meth:`add`."""
        env = self.env
        event = env.event()
        event.callbacks.append(callback)
        if len(links) == 0 or nbytes <= 0.0:
            self.bytes_delivered += max(nbytes, 0.0)
            _trigger_at(env, event, latency_s if len(links) else 0.0)
            return event
        bid = self._next_batch
        self._next_batch += 1
        self._batch_left[bid] = 1
        self._batch_arrive[bid] = -np.inf
        self._batch_event[bid] = event
        self._pending_one.append((links, nbytes, latency_s, bid))
        self._wake()
        return event

    # ------------------------------------------------------------------ running
    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._t0
        if dt > 0.0 and len(self.rem):
            self.rem = self.rem - self.rate * dt
            if self.meter is not None:
                self.meter.advance(self._t0, dt, self.inc_flow, self.inc_link, self.rate, self._cap)
        self._t0 = now

    def _on_start(self, _event: simpy.Event) -> None:
        self._wake_pending = False
        self._advance()
        self._rerate(self._take_pending())

    def _take_pending(self) -> np.ndarray:
        """Append the queued flows to the active arrays (rate 0 until re-rated); return the links they use."""
        if not self._pending and not self._pending_one:
            return np.zeros(0, dtype=np.int64)
        pending, self._pending = self._pending, []
        base = n_old = len(self.rem)
        rems, lats, batches, incf, incl = [self.rem], [self.flat], [self.fbatch], [self.inc_flow], [self.inc_link]
        sizes = [self.fbytes]
        for inc_flow, inc_link, nbytes, latency_s, bid in pending:
            incf.append(inc_flow + base)
            incl.append(inc_link)
            rems.append(nbytes)
            sizes.append(nbytes)
            lats.append(latency_s)
            batches.append(np.full(len(nbytes), bid, dtype=np.int64))
            base += len(nbytes)
        if self._pending_one:
            ones, self._pending_one = self._pending_one, []
            links = [o[0] for o in ones]
            lengths = np.fromiter((len(x) for x in links), dtype=np.int64, count=len(ones))
            incf.append(np.repeat(np.arange(base, base + len(ones), dtype=np.int64), lengths))
            incl.append(np.concatenate(links))
            nb = np.array([o[1] for o in ones], dtype=np.float64)
            rems.append(nb)
            sizes.append(nb)
            lats.append(np.array([o[2] for o in ones], dtype=np.float64))
            batches.append(np.array([o[3] for o in ones], dtype=np.int64))
        self.rem, self.flat, self.fbytes = np.concatenate(rems), np.concatenate(lats), np.concatenate(sizes)
        self.fbatch = np.concatenate(batches)
        self.inc_flow, self.inc_link = np.concatenate(incf), np.concatenate(incl)
        if len(self.inc_link) and int(self.inc_link.max()) >= len(self._cap):
            self._cap, self._lat = self.router.capacity_Bps, self.router.latency_s
        self.rate = np.concatenate([self.rate, np.zeros(len(self.rem) - n_old)])
        return np.concatenate(incl[1:])

    def _affected(self, changed_links: np.ndarray) -> np.ndarray:
        """Mask of the active flows connected (through shared links, transitively) to ``changed_links``.

        Max-min rates decompose over the connected components of the flow-link graph, so only these
        flows can change rate when flows start or finish on ``changed_links``.
        """
        inc_flow, inc_link = self.inc_flow, self.inc_link
        n = len(self.rem)
        link_mark = np.zeros(len(self._cap), dtype=bool)
        link_mark[changed_links] = True
        flow_mark = np.zeros(n, dtype=bool)
        n_marked = -1
        while True:
            flow_mark[inc_flow[link_mark[inc_link]]] = True
            count = int(flow_mark.sum())
            if count in (n_marked, n):
                return flow_mark
            n_marked = count
            link_mark[inc_link[flow_mark[inc_flow]]] = True

    def _rerate(self, changed_links: np.ndarray) -> None:
        self._gen += 1
        if len(self.rem) == 0:
            self.rate = np.zeros(0)
            return
        self.reratings += 1
        self._rate(changed_links)
        self._wake_at_next_finish()

    def _rate(self, changed_links: np.ndarray) -> np.ndarray:
        """Recompute the max-min rates of the flows connected to ``changed_links``; return their mask."""
        from sim.network.maxmin import maxmin_rates

        sub = self._affected(changed_links)
        if sub.any():
            sel = sub[self.inc_flow]
            inc_flow = (np.cumsum(sub) - 1)[self.inc_flow[sel]]
            inc_link = self.inc_link[sel]
            # compact the links to those in use (a lookup table, no sort)
            used = np.flatnonzero(np.bincount(inc_link, minlength=len(self._cap)))
            lut = np.empty(len(self._cap), dtype=np.int64)
            lut[used] = np.arange(len(used))
            self.rate[sub] = maxmin_rates(inc_flow, lut[inc_link], int(sub.sum()), self._cap[used])
        return sub

    def _wake_at_next_finish(self) -> None:
        """Schedule the wake-up at the earliest send end under the current rates (the generation's)."""
        finish = self.rem / self.rate
        dt = float(finish.min())
        gen = self._gen
        wake = self.env.timeout(max(dt, 0.0))
        wake.callbacks.append(lambda _e: self._on_finish(gen))

    def _on_finish(self, gen: int) -> None:
        if gen != self._gen:
            return  # a later start re-rated the flows: this wake-up is stale
        done = self._finishing()
        self._advance()
        self._retire(done)
        self._rerate(self._drop(done))

    def _finishing(self) -> np.ndarray:
        """Mask of the active flows whose last byte leaves now (within the finish margin)."""
        dt_run = self.env.now - self._t0
        finish = self.rem / self.rate
        return finish <= max(float(finish.min()), dt_run) * (1.0 + _FINISH_REL)

    def _retire(self, done: np.ndarray) -> None:
        """Account the flows of mask ``done`` as sent; trigger the batches whose last flow this was."""
        env = self.env
        # each batch's arrival is its latest flow's send end + latency
        now = env.now
        d_batch, d_lat = self.fbatch[done], self.flat[done]
        order = np.lexsort((d_lat, d_batch))
        d_batch, d_lat = d_batch[order], d_lat[order]
        bids, counts = np.unique(d_batch, return_counts=True)
        max_lat = d_lat[np.cumsum(counts) - 1]
        for bid, lat, cnt in zip(bids.tolist(), max_lat.tolist(), counts.tolist(), strict=True):
            arrive = max(self._batch_arrive[bid], now + lat)
            left = self._batch_left[bid] - cnt
            if left == 0:
                del self._batch_left[bid], self._batch_arrive[bid]
                _trigger_at(env, self._batch_event.pop(bid), arrive - now)
            else:
                self._batch_left[bid] = left
                self._batch_arrive[bid] = arrive
        self.bytes_delivered += float(self.fbytes[done].sum())

    def _drop(self, done: np.ndarray) -> np.ndarray:
        """Remove the active flows of mask ``done`` from the arrays; return the links they used."""
        keep = ~done
        changed = self.inc_link[done[self.inc_flow]]
        renum = np.cumsum(keep) - 1
        keep_inc = keep[self.inc_flow]
        self.inc_flow, self.inc_link = renum[self.inc_flow[keep_inc]], self.inc_link[keep_inc]
        self.rem, self.flat, self.fbatch = self.rem[keep], self.flat[keep], self.fbatch[keep]
        self.fbytes, self.rate = self.fbytes[keep], self.rate[keep]
        return changed
