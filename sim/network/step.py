"""The ``step`` network model: every step of every phase, each transfer a flow, true per-rank dependencies.

The slow, faithful reference for small P. A phase with ``steps = k`` is expanded into k steps; the steps
of all phases are numbered 0, 1, ... in order. Rank r takes part in a step when it sends or receives in
it, and *enters* step s when it has finished every send and receive of the previous step it took part in
(a send is finished when it has arrived) — not when the whole group has. A transfer of step s starts
when both its sender and its receiver have entered step s (a receive is posted after the previous step,
as with MPI's rendezvous protocol for large messages), so a slow link delays only the ranks that depend
on it, step by step. Each transfer is its own flow in the shared
fluid core (:mod:`sim.network.fluid`: max-min fair links, latency paid after the bytes); the collective
ends when every rank has finished its last step.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import simpy

from sim.network.base import Session, cached_phases, register_model
from sim.network.fluidmodel import FluidNetwork, FluidSession


class _Run:
    """State of one collective under the step model."""

    def __init__(self, session: StepSession, plan: dict, done: simpy.Event) -> None:
        self.s = session
        self.plan = plan
        self.done = done
        p = plan["p"]
        self.cur = [-1] * p  # global step each rank is in
        self.got: dict[tuple[int, int], int] = {}  # (step, rank) -> finished sends + receives
        self.ready: dict[tuple[int, int], int] = {}  # (step, transfer) -> endpoints that entered the step
        self.left = p

    def start(self) -> None:
        for r in range(self.plan["p"]):
            self._advance(r)

    def _advance(self, r: int) -> None:
        plan = self.plan
        steps, involved = plan["steps"], plan["involved"]
        while True:
            s = self.cur[r] + 1
            # skip to the next step in which r sends or receives
            while s < len(steps) and involved[steps[s]][r] == 0:
                s = plan["next_step_of_phase"][steps[s]]
            if s >= len(steps):
                self.cur[r] = len(steps)
                self.left -= 1
                if self.left == 0:
                    self.done.succeed()
                return
            self.cur[r] = s
            ph = steps[s]
            transfers = plan["transfers"][ph]
            for t in plan["touch"][ph][r]:
                links, nb, lat, src, dst = transfers[t]
                if src != dst:
                    k = self.ready.pop((s, t), 0) + 1
                    if k < 2:
                        self.ready[(s, t)] = k
                        continue
                self.s.core.add_one(links, nb, lat, partial(self._arrived, s, src, dst))
            if self.got.get((s, r), 0) < involved[ph][r]:
                return

    def _arrived(self, s: int, a: int, b: int, _event: simpy.Event) -> None:
        involved = self.plan["involved"][self.plan["steps"][s]]
        for x in (a, b) if a != b else (a,):
            n = self.got.get((s, x), 0) + 1
            self.got[(s, x)] = n
            if self.cur[x] == s and n >= involved[x]:
                self._advance(x)


class StepSession(FluidSession):
    """One run: every transfer of every collective as its own flow on the run's fluid core."""

    def collective(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
                   halo_dims: tuple[int, ...] = (), count: int = 1) -> simpy.Event:
        plan = self.model.plan(op, algorithm, tuple(group), float(nbytes), tuple(halo_dims), count)
        done = self.env.event()
        _Run(self, plan, done).start()
        return done


@register_model
class StepNetwork(FluidNetwork):
    """Every step with its per-rank dependencies; slow, for validation at small P."""

    name = "step"
    max_plans = 4096  # step plans hold a route per transfer: keep fewer

    def build_plan(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float, kw: tuple,
                   count: int = 1) -> dict:
        """Steps, per-phase involvement counts, transfers touching each rank, routed transfers."""
        p = len(group)
        hosts = self.hosts_of(group)
        phases = cached_phases(op, algorithm, p, nbytes, kw, count)
        steps: list[int] = []
        next_step_of_phase: list[int] = []
        involved, touch, transfers = [], [], []
        for i, ph in enumerate(phases):
            steps.extend([i] * ph.steps)
            next_step_of_phase.append(len(steps))
            src = np.asarray(ph.src, dtype=np.int64)
            dst = np.asarray(ph.dst, dtype=np.int64)
            nb = np.broadcast_to(np.asarray(ph.nbytes, dtype=np.float64), src.shape)
            inv = np.bincount(src, minlength=p) + np.bincount(dst, minlength=p)
            inv -= np.bincount(src[src == dst], minlength=p)  # a self-transfer counts once
            involved.append(inv.tolist())
            per_rank: list[list[int]] = [[] for _ in range(p)]
            for t, (a, b) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
                per_rank[a].append(t)
                if b != a:
                    per_rank[b].append(t)
            touch.append(per_rank)
            routes = self.router.routes(hosts[src], hosts[dst])
            lat_arr = self.router.latency_s
            extra = float(ph.latency_s)  # an extra per-step latency (the nccl model's protocol latency)
            transfers.append([(r, float(nb[t]), (float(lat_arr[r].sum()) if len(r) else 0.0) + extra,
                               int(src[t]), int(dst[t])) for t, r in enumerate(routes)])
        return {"p": p, "steps": steps, "next_step_of_phase": next_step_of_phase, "involved": involved,
                "touch": touch, "transfers": transfers}

    def session(self, env: simpy.Environment) -> Session:
        return StepSession(self, env)
