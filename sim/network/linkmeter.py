"""Link utilisation: what every directed link carried in a ``flow`` or ``step`` run, and for whom.

A :class:`LinkMeter` is attached to a run's fluid core and to the engine:

* the core calls :meth:`LinkMeter.advance` each time simulated time passes at constant rates (the fluid
  core's ``_advance``, once per rate change, not per flow): the load of each link is the sum of the rates
  of the flows crossing it, so bytes += load × dt, busy time += dt where the load is positive, and the peak
  utilisation is the largest load / capacity seen. Optionally the loads are kept as a sparse time series,
  for the trace's counter tracks;
* the engine calls :meth:`LinkMeter.add_collective` when a collective starts, with the bytes its routed
  phases put on each link (:meth:`sim.network.base.NetworkModel.link_bytes`, from the algorithm's phases
  alone, not from the dynamics), so each link knows which collectives loaded it.

The two are independent computations of the same bytes: every byte of a transfer crosses each link of its
route exactly once, so per link the integral of the load equals the sum of the collectives' routed bytes
(tests hold them equal). A folded ``flow`` phase sends its steps' bytes back to back (see
:mod:`sim.network.flow`), so busy time and peak utilisation are those of the folded schedule: exact where
bandwidth dominates, compressed by the per-step latencies where latency is comparable to a chunk's time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: columns of :meth:`LinkMeter.table`
LINK_COLUMNS = ["link", "src", "dst", "capacity_Bps", "bytes", "busy_s", "busy_frac", "mean_util", "peak_util",
                "top_collectives"]

#: at most this many (link, load) entries of time series are kept; beyond it the series stops (noted)
MAX_SERIES_ENTRIES = 5_000_000


class LinkMeter:
    """Per directed link: bytes, busy seconds, peak utilisation, and the collectives that loaded it.

    Parameters
    ----------
    router : topologies.routing.Router
        The run's router (link ids, capacities, endpoints).
    series : bool
        Keep the loads over time (sparse, per rate change) for :meth:`series`.
    """

    def __init__(self, router: Any, series: bool = False) -> None:
        self.router = router
        n = max(int(router.n_links), 1)
        self.bytes = np.zeros(n)
        self.busy_s = np.zeros(n)
        self.peak_util = np.zeros(n)
        self._labels: list[str] = []
        self._label_index: dict[str, int] = {}
        self._static: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.keeps_series = series
        self._series: list[tuple[float, float, np.ndarray, np.ndarray]] = []
        self._series_entries = 0
        self.series_truncated = False

    def _grow(self, n: int) -> None:
        if n > len(self.bytes):
            extra = n - len(self.bytes)
            self.bytes = np.concatenate([self.bytes, np.zeros(extra)])
            self.busy_s = np.concatenate([self.busy_s, np.zeros(extra)])
            self.peak_util = np.concatenate([self.peak_util, np.zeros(extra)])

    # ------------------------------------------------------------------ fed by the core and the engine
    def advance(self, t0: float, dt: float, inc_flow: np.ndarray, inc_link: np.ndarray, rate: np.ndarray,
                capacity_Bps: np.ndarray) -> None:
        """``dt`` seconds from ``t0`` passed with these flows at these rates."""
        if dt <= 0.0 or len(inc_link) == 0:
            return
        load = np.bincount(inc_link, weights=rate[inc_flow])
        n = len(load)
        self._grow(n)
        links = np.flatnonzero(load > 0.0)
        if len(links) == 0:
            return
        active = load[links]
        self.bytes[links] += active * dt
        self.busy_s[links] += dt
        util = active / capacity_Bps[links]
        self.peak_util[links] = np.maximum(self.peak_util[links], util)
        if self.keeps_series and not self.series_truncated:
            self._series_entries += len(links)
            if self._series_entries > MAX_SERIES_ENTRIES:
                self.series_truncated = True
            else:
                self._series.append((t0, dt, links, util))

    def add_collective(self, label: str, links: np.ndarray, nbytes: np.ndarray) -> None:
        """A collective named ``label`` puts ``nbytes[i]`` on link ``links[i]`` (its routed phases)."""
        if len(links) == 0:
            return
        k = self._label_index.get(label)
        if k is None:
            k = self._label_index[label] = len(self._labels)
            self._labels.append(label)
        self._static.append((k, links, nbytes))

    # ------------------------------------------------------------------ results
    def routed_bytes(self) -> np.ndarray:
        """Per link, the bytes the started collectives' routed phases put on it."""
        for _k, links, _nbytes in self._static:
            self._grow(int(links.max()) + 1)
        out = np.zeros(len(self.bytes))
        for _k, links, nbytes in self._static:
            np.add.at(out, links, nbytes)
        return out

    def _top_collectives(self, links: np.ndarray, k: int = 3) -> list[str]:
        """Per link of ``links``: its ``k`` largest collectives by bytes, as ``label (share %)``."""
        if not self._static:
            return [""] * len(links)
        lab = np.concatenate([np.full(len(ls), i, dtype=np.int64) for i, ls, _ in self._static])
        lnk = np.concatenate([ls for _, ls, _ in self._static])
        byt = np.concatenate([b for _, _, b in self._static])
        wanted = np.zeros(max(int(lnk.max()), int(links.max()) if len(links) else 0) + 1, dtype=bool)
        wanted[links] = True
        keep = wanted[lnk]
        lab, lnk, byt = lab[keep], lnk[keep], byt[keep]
        n_lab = max(len(self._labels), 1)
        keys, inv = np.unique(lnk * n_lab + lab, return_inverse=True)
        sums = np.bincount(inv, weights=byt)
        per_link: dict[int, list[tuple[float, int]]] = {}
        for key, total in zip(keys.tolist(), sums.tolist(), strict=True):
            per_link.setdefault(key // n_lab, []).append((total, key % n_lab))
        out = []
        for link in links.tolist():
            items = sorted(per_link.get(link, []), key=lambda x: (-x[0], x[1]))
            whole = sum(t for t, _ in items) or 1.0
            out.append(", ".join(f"{self._labels[i]} ({100 * t / whole:.0f}%)" for t, i in items[:k]))
        return out

    def table(self, makespan_s: float, top: int | None = None) -> Any:
        """One row per link that carried bytes, busiest (most bytes) first; at most ``top`` rows.

        ``busy_frac`` = busy_s / makespan; ``mean_util`` = bytes / (capacity × makespan); ``peak_util`` the
        largest load / capacity; ``top_collectives`` the three collectives that put the most bytes on it.
        """
        import pandas as pd

        used = np.flatnonzero(self.bytes > 0.0)
        order = used[np.lexsort((used, -self.bytes[used]))]
        if top is not None:
            order = order[:top]
        cap = self.router.capacity_Bps
        span = makespan_s if makespan_s > 0 else np.inf
        rows = []
        tops = self._top_collectives(order)
        for link, who in zip(order.tolist(), tops, strict=True):
            u, v = self.router.link_endpoints(link)
            c = float(cap[link])
            rows.append((link, str(u), str(v), c, float(self.bytes[link]), float(self.busy_s[link]),
                         float(self.busy_s[link] / span), float(self.bytes[link] / (c * span)),
                         float(self.peak_util[link]), who))
        return pd.DataFrame.from_records(rows, columns=LINK_COLUMNS)

    def series(self, links: list[int]) -> dict[int, list[tuple[float, float]]]:
        """Per link of ``links``: ``(time_s, utilisation)`` points where its utilisation changes (0 when idle)."""
        want: dict[int, list[tuple[float, float]]] = {int(k): [] for k in links}
        last = dict.fromkeys(want, 0.0)
        lookup = np.full(len(self.bytes), -1, dtype=np.int64)
        lookup[np.array(sorted(want), dtype=np.int64)] = 1
        prev_end: float | None = None
        for t0, dt, ls, util in self._series:
            if prev_end is not None and t0 > prev_end:  # nothing flowed in between: every link idle
                for link in want:
                    if last[link] != 0.0:
                        want[link].append((prev_end, 0.0))
                        last[link] = 0.0
            sel = lookup[ls] >= 0
            now = dict(zip(ls[sel].tolist(), util[sel].tolist(), strict=True))
            for link in want:
                u = now.get(link, 0.0)
                if u != last[link]:
                    want[link].append((t0, u))
                    last[link] = u
            prev_end = t0 + dt
        for link in want:
            if last[link] != 0.0 and prev_end is not None:
                want[link].append((prev_end, 0.0))
        return want
