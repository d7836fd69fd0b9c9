"""The Python API: ``simulate(config) -> Result``, for notebooks, sweeps and the CLI.

One run: validate the config (:mod:`sim.config`), load the model, compute model and topology, plan the
iteration (:mod:`sim.strategies`), time it — by the analytic fast path (:mod:`sim.fastpath`) when
``network == "analytic"``, else by the SimPy engine on the chosen network model — and collect the records
into frames (:mod:`sim.results`).

Examples
--------
>>> from sim.api import simulate
>>> r = simulate({"model": "alexnet", "batch": 256, "procs": 16})   # doctest: +SKIP
>>> r.summary[["iteration_s", "batch_comm_s"]]                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.config import RunConfig, load_config, make_config, validate_against_model
from sim.errors import UserError
from sim.grid import Grid
from sim.memory import memory_per_rank_bytes
from sim.results import chrome_trace, layer_table, summarize
from sim.strategies import RunPlan, plan_run

ENGINES = ("auto", "fast", "full")


@dataclass
class Setup:
    """What a run needs besides its grid and modes; shared by the candidates of ``dnnsim best``."""

    model: Any
    compute_model: Any
    graph: Any
    analytic: Any  #: the ``analytic`` network model on ``graph`` (α, 1/β, closed-form costs)
    algorithms: dict[str, str]
    dataset_size: int


@dataclass
class Result:
    """The outcome of one run.

    Attributes
    ----------
    config : RunConfig
    summary : DataFrame
        One row, columns :data:`sim.results.SUMMARY_FIELDS` (CONTRACT.md's ``run`` fields first).
    layers : DataFrame
        One row per layer (and per multi-layer DDP bucket): mode, compute and communication seconds.
    records : DataFrame
        The engine's (or the fast path's) per-operation records.
    plan : RunPlan
    meta : dict
        ``engine`` ("fast" or "full"), ``critical_rank`` and what the engine reported.
    """

    config: RunConfig
    summary: pd.DataFrame
    layers: pd.DataFrame
    records: pd.DataFrame
    plan: RunPlan
    meta: dict = field(default_factory=dict)

    @property
    def iteration_s(self) -> float:
        return float(self.summary["iteration_s"].iloc[0])

    def trace(self, max_ranks: int = 64) -> dict[str, Any]:
        """The Chrome trace as a dict (at most ``max_ranks`` ranks; see :func:`sim.results.chrome_trace`)."""
        meta = {"engine": self.meta.get("engine"), "config": self.config.resolved()}
        if self.meta.get("engine") == "fast":
            meta["note"] = ("analytic fast path: only rank 0 is timed; every rank of the grid runs the same "
                            "schedule")
        return chrome_trace(self.records, max_ranks, meta)

    def to_trace(self, path: str | Path, max_ranks: int = 64) -> None:
        """Write the Chrome trace JSON (open it in Perfetto or chrome://tracing)."""
        _atomic_write(Path(path), json.dumps(self.trace(max_ranks)))

    def to_csv(self, directory: str | Path) -> None:
        """Write ``summary.csv``, ``layers.csv``, ``trace.json``, ``config.yaml`` and ``timeline.png`` into
        ``directory``.

        All five are written into a temporary directory next to ``directory`` and then moved in, so a
        failure leaves ``directory`` as it was.
        """
        write_outputs(self, Path(directory))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(result: Result, directory: Path) -> None:
    """Write the five output files of ``result`` into ``directory`` (created if missing), all or none."""
    directory = Path(directory)
    parent = directory.resolve().parent
    if directory.exists() and not directory.is_dir():
        raise UserError("out", f"{str(directory)!r} exists and is not a directory", "a directory path")
    if parent.exists() and not parent.is_dir():
        raise UserError("out", f"{str(parent)!r} is not a directory", "a path whose parents are directories")
    parent.mkdir(parents=True, exist_ok=True)  # like `mkdir -p`: `--out out/demo` works on a fresh clone
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.tmp"))
    names = ("summary.csv", "layers.csv", "trace.json", "config.yaml", "timeline.png")
    try:
        result.summary.to_csv(staging / "summary.csv", index=False)
        result.layers.to_csv(staging / "layers.csv", index=False)
        (staging / "trace.json").write_text(json.dumps(result.trace()))
        (staging / "config.yaml").write_text(yaml.safe_dump(result.config.resolved(), sort_keys=False))
        from sim.plots.timeline import timeline_figure  # matplotlib only when files are written

        timeline_figure(result).savefig(staging / "timeline.png", dpi=110)
        if not directory.exists():
            os.replace(staging, directory)
            return
        for name in names:
            os.replace(staging / name, directory / name)
    finally:
        if staging.exists():
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()


# ---------------------------------------------------------------------------------------- setup
def load_setup(config: RunConfig) -> Setup:
    """Load the model, compute model, topology and collective choices of ``config``."""
    from sim.collectives import parse_collectives
    from sim.network import make_network
    from topologies import build_topology
    from workloads.compute import make_compute_model
    from workloads.loader import load_model

    model = load_model(config.model, config.input_shape)
    compute_model = make_compute_model(config.compute, model, config.dtype_bytes)
    graph = build_topology(config.topology, config.procs)
    analytic = make_network("analytic", graph, ecmp=config.ecmp)
    analytic.check_ranks(config.procs)
    algorithms = dict(parse_collectives(config.collectives))
    dataset_size = config.dataset_size or model.dataset_size
    return Setup(model, compute_model, graph, analytic, algorithms, dataset_size)


def plan_config(config: RunConfig, setup: Setup, paper_dx: bool = False) -> RunPlan:
    """Validate ``config`` against the model and plan its iteration."""
    validate_against_model(config, setup.model)
    pr, pc = config.grid_dims()
    conv, fc = config.layer_modes()
    grid = Grid(pr, pc, config.placement)
    return plan_run(setup.model, conv, fc, config.batch, grid, config.dtype_bytes, setup.algorithms,
                    setup.compute_model.time, overlap=config.overlap, paper_dx=paper_dx,
                    meta={"model": setup.model.name, "strategy": config.strategy})


def _fields(config: RunConfig, setup: Setup, plan: RunPlan) -> dict[str, Any]:
    conv, fc = config.layer_modes()
    return {"model": setup.model.name, "batch": config.batch, "procs": config.procs,
            "strategy": config.strategy, "pr": plan.grid.pr, "pc": plan.grid.pc, "topology": config.topology,
            "network": config.network, "compute": getattr(setup.compute_model, "name", config.compute),
            "conv": conv, "fc": fc, "placement": config.placement, "collectives": config.collectives,
            "overlap": config.overlap, "dtype_bytes": config.dtype_bytes, "dataset_size": setup.dataset_size,
            "memory_per_rank_bytes": memory_per_rank_bytes(plan.plans, config.dtype_bytes, plan.grid.pr)}


def run_planned(config: RunConfig, setup: Setup, plan: RunPlan, engine: str = "auto",
                with_layers: bool = True) -> Result:
    """Time a planned iteration and collect the frames (``with_layers=False`` leaves ``layers`` empty,
    for fast screening)."""
    if engine not in ENGINES:
        raise UserError("engine", f"unknown engine {engine!r}", ", ".join(ENGINES))
    start = time.perf_counter()
    from sim.fastpath import is_symmetric, run_fast

    if engine == "fast" and config.network != "analytic":
        raise UserError("engine", f"the fast path needs network=analytic, not {config.network!r}",
                        "engine full, or network analytic")
    fast = engine != "full" and config.network == "analytic" and is_symmetric(plan.steps, plan.grid, setup.analytic)
    if fast:
        out = run_fast(plan.steps, plan.grid, setup.analytic)
        records, makespan, events = out.records, out.makespan_s, out.events
        meta: dict[str, Any] = {"engine": "fast"}
    else:
        from sim.engine import run_program
        from sim.fastpath import check_algorithms
        from sim.network import make_network

        check_algorithms(plan.steps, plan.grid.pr, plan.grid.pc)
        network = setup.analytic if config.network == "analytic" else make_network(
            config.network, setup.graph, placement=None, ecmp=config.ecmp)
        engine_result = run_program(plan.program(), network)
        records, makespan = engine_result.records, engine_result.makespan_s
        events = engine_result.events
        meta = {"engine": "full", "engine_wall_s": engine_result.wall_s}
    fields = _fields(config, setup, plan)
    fields["events"] = int(events)
    summary = summarize(records, makespan, fields, config.procs, config.batch, setup.dataset_size, fast)
    layers = layer_table(records, plan.plans, config.procs, fast) if with_layers else pd.DataFrame()
    summary["wall_s"] = time.perf_counter() - start
    return Result(config, summary, layers, records, plan, meta)


def simulate(config: RunConfig | dict | str | Path, *, engine: str = "auto", paper_dx: bool = False) -> Result:
    """Simulate one training iteration.

    Parameters
    ----------
    config : RunConfig, dict or path
        A config, a dict of config keys, or the path of a YAML run config.
    engine : {"auto", "fast", "full"}
        ``auto``: the analytic fast path under ``network=analytic``, the SimPy engine otherwise; ``full``
        forces the engine (to check the fast path); ``fast`` demands the fast path.
    paper_dx : bool
        Size model layers' ΔX all-reduces as PAPER.md prints them (``d_i``, first layer included);
        for tests that compare against the printed equations. Default: true sizes.

    Raises
    ------
    UserError
        For any mistake in the config.
    """
    start = time.perf_counter()
    cfg = load_config(config) if isinstance(config, (str, Path)) else make_config(config)
    setup = load_setup(cfg)
    plan = plan_config(cfg, setup, paper_dx=paper_dx)
    result = run_planned(cfg, setup, plan, engine)
    result.summary["wall_s"] = time.perf_counter() - start
    return result
