"""dnnsim's simulator package: config, strategies, program IR, collectives, network models, engine,
results, sweeps, plots and the CLI.

The Python API for notebooks is ``sim.simulate(config) -> Result``; it is imported lazily so that
``import sim`` has no side effects and costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["simulate"]


def __getattr__(name: str) -> Any:
    if name == "simulate":
        from sim.api import simulate

        return simulate
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
