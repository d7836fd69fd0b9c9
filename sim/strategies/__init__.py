"""Parallel strategies: turn a model, a run config and a Pr x Pc grid into the program every rank runs.

One module per layer mode (:mod:`~sim.strategies.batch`, :mod:`~sim.strategies.model`,
:mod:`~sim.strategies.domain`), the common layout rules (:mod:`~sim.strategies.layout`: which mode each
layer runs in, local batch and shard, Eq. 6 redistribution), rank-independent steps
(:mod:`~sim.strategies.steps`) and the builder (:mod:`~sim.strategies.build`: iteration order, DDP-style
overlap). The strategy names of :class:`~sim.config.RunConfig` map onto per-layer modes there.
"""

from sim.strategies.build import BUCKET_BYTES, RunPlan, build_steps, plan_run
from sim.strategies.common import Context
from sim.strategies.layout import MODES, LayerPlan, plan_layers
from sim.strategies.steps import Step, group_size, materialize

__all__ = ["BUCKET_BYTES", "MODES", "Context", "LayerPlan", "RunPlan", "Step", "build_steps", "group_size",
           "materialize", "plan_layers", "plan_run"]
