"""The SimPy engine and the ``dnnsim collective`` driver, one job per module.

* :mod:`~sim.engine.run` — :func:`run_program`: build, run, collect;
* :mod:`~sim.engine.validate` — the program checks run before the engine starts;
* :mod:`~sim.engine.rules` — the scheduling rule the engine shares with :mod:`sim.fastpath`;
* :mod:`~sim.engine.records` — :data:`RECORD_COLUMNS`, the row builders and :class:`EngineResult`;
* :mod:`~sim.engine.collective` — :func:`simulate_collective` (nccl-tests style, one collective).

SimPy's private internals are used only by the adapter :mod:`sim.simclock`. The names below are the
public ones, importable from ``sim.engine``.
"""

from sim.engine.collective import collective_groups, collective_program, simulate_collective
from sim.engine.records import RECORD_COLUMNS, EngineResult
from sim.engine.run import run_program

__all__ = ["RECORD_COLUMNS", "EngineResult", "collective_groups", "collective_program", "run_program",
           "simulate_collective"]
