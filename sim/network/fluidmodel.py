"""What the ``flow`` and ``step`` models share: a fluid core per run and a per-group plan cache.

Both models turn a collective of one group into a *plan* (routed transfers derived from the algorithm's
phases), cache it per ``(op, algorithm, group, nbytes, algorithm keywords, count)`` on the model so repeated
collectives and later runs reuse it, and run it on a :class:`~sim.network.fluid.FluidCore` opened once per
simulation run. Subclasses say only how a plan is built (:meth:`FluidNetwork.build_plan`) and how a
session runs it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import simpy

from sim.network.base import NetworkModel, Session
from sim.network.fluid import FluidCore


class FluidSession(Session):
    """One run of a fluid model: the fluid core shared by every collective of the run."""

    model: FluidNetwork

    def __init__(self, model: FluidNetwork, env: simpy.Environment) -> None:
        super().__init__(model, env)
        self.core = model.core_class(env, model.router)

    def attach_meter(self, meter: Any) -> None:
        self.core.meter = meter


class FluidNetwork(NetworkModel):
    """A network model whose collectives run as flows on a :class:`FluidCore`, with cached plans."""

    #: at most this many plans are kept (a bound on memory for very long sweeps of sizes)
    max_plans = 65536
    #: the fluid core a session runs on
    core_class: type[FluidCore] = FluidCore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple, Any] = {}

    def plan(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float,
             halo_dims: tuple[int, ...], count: int = 1) -> Any:
        """The plan of this collective (``count`` copies back to back) on this group (built once, then
        cached)."""
        kw = self.algo_kwargs(op, algorithm, group, halo_dims)
        key = (op, algorithm, group, nbytes, kw, count)
        hit = self._plans.get(key)
        if hit is None:
            hit = self.build_plan(op, algorithm, group, nbytes, kw, count)
            if len(self._plans) < self.max_plans:
                self._plans[key] = hit
        return hit

    @abstractmethod
    def build_plan(self, op: str, algorithm: str, group: tuple[int, ...], nbytes: float, kw: tuple,
                   count: int = 1) -> Any:
        """Build the plan of a collective from ``cached_phases(op, algorithm, p, nbytes, kw, count)``;
        ``kw`` are the algorithm's keywords as sorted items."""
