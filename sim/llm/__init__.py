"""Transformer training on the 4-D grid TP × CP × PP × DP: the parallel layout, its memory, its schedules
and the per-rank program (Megatron-style tensor, sequence, context, pipeline and sharded data parallelism).

Submodules, in the order data flows: :mod:`sim.llm.parallel` (the layout and its checks against a model),
:mod:`sim.llm.costs` (what a model chunk costs one rank per micro-batch), :mod:`sim.llm.schedule` (pipeline
orderings), :mod:`sim.llm.program` (the program the engine runs), :mod:`sim.llm.memory` (bytes per rank),
:mod:`sim.llm.run` (plan, simulate, summarize), :mod:`sim.llm.screen` and :mod:`sim.llm.search` (``dnnsim
best`` over the grid).
"""
