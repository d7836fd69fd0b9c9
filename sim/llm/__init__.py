"""Transformer training on the 4-D grid TP × CP × PP × DP: the parallel layout, its memory, its schedules
and the per-rank program (Megatron-style tensor, sequence, context, pipeline and sharded data parallelism).

Submodules: :mod:`sim.llm.parallel` (the layout and its checks against a model), :mod:`sim.llm.memory`
(bytes per rank), :mod:`sim.llm.schedule` (pipeline orderings), :mod:`sim.llm.program` (the program the
engine runs).
"""
