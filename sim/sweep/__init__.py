"""Parameter sweeps: expand a sweep file into run configs, run them on a process pool or a Dask cluster,
and stream one CSV row per point (resumable by ``point_id``).

Modules: :mod:`~sim.sweep.spec` (sweep files, points, hashing), :mod:`~sim.sweep.rows` (point -> row),
:mod:`~sim.sweep.csvsink` (append-only CSV), :mod:`~sim.sweep.local` and :mod:`~sim.sweep.dask_backend`
(executors), :mod:`~sim.sweep.interrupts` (SIGINT/SIGTERM stop a sweep once), :mod:`~sim.sweep.progress`
(progress bar), :mod:`~sim.sweep.runner` (:func:`run_sweep`).
"""

from sim.sweep.rows import columns, simulate_point
from sim.sweep.runner import (
                              SweepInterrupted,
                              SweepReport,
                              chunk_points,
                              default_workers,
                              load_results,
                              run_sweep,
                              sweep_points,
)
from sim.sweep.spec import Point, SweepSpec, canonical_hash, expand, load_sweep

__all__ = ["Point", "SweepInterrupted", "SweepReport", "SweepSpec", "canonical_hash", "chunk_points", "columns",
           "default_workers", "expand", "load_results", "load_sweep", "run_sweep", "simulate_point", "sweep_points"]
