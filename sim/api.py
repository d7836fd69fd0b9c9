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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.atomicfile import create_fresh, write_text_atomically
from sim.config import RunConfig, load_config, make_config, refuse_4d_only, validate_against_model
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
        One row, columns :data:`sim.results.SUMMARY_FIELDS` (the ``run`` fields of docs/cli.md first).
    layers : DataFrame
        One row per layer (and per multi-layer DDP bucket): mode, compute and communication seconds.
    records : DataFrame
        The engine's (or the fast path's) per-operation records.
    plan : RunPlan
    meta : dict
        ``engine`` ("fast" or "full"), ``critical_rank`` and what the engine reported.
    meter : LinkMeter or None
        The link meter of a ``flow``/``step`` run made with ``links=True`` (:meth:`links`).
    critical : DataFrame or None
        The critical path (:meth:`critical_path`), once computed.
    """

    config: RunConfig
    summary: pd.DataFrame
    layers: pd.DataFrame
    records: pd.DataFrame
    plan: RunPlan
    meta: dict = field(default_factory=dict)
    meter: Any = None
    critical: pd.DataFrame | None = None
    critical_rows: tuple[list[int], list[str]] | None = None

    @property
    def iteration_s(self) -> float:
        return float(self.summary["iteration_s"].iloc[0])

    def critical_path(self) -> pd.DataFrame:
        """The chain of operations that sets the iteration time (:func:`sim.critical_path.critical_path`):
        ``rank, stream, kind, op, algorithm, layer, phase, category, key, start_s, end_s, duration_s,
        waiting_for``; its durations add up to ``iteration_s``."""
        if self.critical is None:
            from sim.critical_path import critical_path, path_frame

            if self.critical_rows is not None:
                self.critical = path_frame(self.records, *self.critical_rows)
            else:
                ops = [self.plan.steps] if self.meta.get("engine") == "fast" else self.plan.program().ops
                self.critical = critical_path(self.records, ops)
        return self.critical

    def links(self, top: int | None = None) -> pd.DataFrame:
        """Per directed link, busiest first (:meth:`sim.network.linkmeter.LinkMeter.table`): bytes, busy
        time, mean and peak utilisation, and the collectives that loaded it. Needs ``simulate(...,
        links=True)`` on a ``flow`` or ``step`` network."""
        if self.meter is None:
            raise UserError("links", "this run did not measure its links",
                            "simulate(config, links=True) with network flow or step")
        return self.meter.table(self.iteration_s, top)

    def trace(self, max_ranks: int = 64) -> dict[str, Any]:
        """The Chrome trace as a dict (at most ``max_ranks`` ranks; see :func:`sim.results.chrome_trace`)."""
        meta = {"engine": self.meta.get("engine"), "config": self.config.resolved()}
        if self.meta.get("engine") == "fast":
            meta["note"] = ("analytic fast path: only rank 0 is timed; every rank of the grid runs the same "
                            "schedule")
        ranks, label = None, None
        if meta["config"].get("strategy") == "4d":
            from sim.llm.run import trace_tracks

            ranks, label = trace_tracks(self, max_ranks)
        trace = chrome_trace(self.records, max_ranks, meta, ranks, label)
        if self.meter is not None and self.meter.keeps_series:
            from sim.results import link_counter_events

            trace["traceEvents"] += link_counter_events(self.meter, self.links(TRACE_LINKS))
            if self.meter.series_truncated:
                trace["otherData"]["links_note"] = "link counters stop early: the run had too many rate changes"
        return trace

    def to_parquet(self, directory: str | Path, *, overwrite: bool = False) -> None:
        """Write ``summary``, ``layers``, ``records`` and ``critical_path`` (and ``links`` when measured) as
        Parquet files into ``directory`` (needs pyarrow: ``pip install pyarrow``); all or none, as
        :func:`write_outputs`."""
        from sim.parquet import require_pyarrow

        require_pyarrow()
        tables = {"summary": self.summary, "layers": self.layers, "records": self.records,
                  "critical_path": self.critical_path()}
        if self.meter is not None:
            tables["links"] = self.links()
        _write_all(Path(directory), overwrite, {f"{k}.parquet": (lambda path, t=t: t.to_parquet(path, index=False))
                                                 for k, t in tables.items()}, PARQUET_FILES)

    def to_trace(self, path: str | Path, max_ranks: int = 64) -> None:
        """Write the Chrome trace JSON (open it in Perfetto or chrome://tracing)."""
        write_text_atomically(Path(path), json.dumps(self.trace(max_ranks)))

    def to_csv(self, directory: str | Path, *, overwrite: bool = False) -> None:
        """Write ``summary.csv``, ``layers.csv``, ``trace.json``, ``config.yaml`` and ``timeline.png`` into
        ``directory`` (see :func:`write_outputs`: a non-empty ``directory`` needs ``overwrite=True``)."""
        write_outputs(self, Path(directory), overwrite=overwrite)


#: the files :func:`write_outputs` writes, in this order (``links.csv`` only for runs that measured links)
OUTPUT_FILES = ("summary.csv", "layers.csv", "trace.json", "config.yaml", "timeline.png", "critical_path.csv",
                "links.csv")
#: the files :meth:`Result.to_parquet` writes
PARQUET_FILES = ("summary.parquet", "layers.parquet", "records.parquet", "critical_path.parquet", "links.parquet")
#: busiest links drawn as counter tracks in the trace
TRACE_LINKS = 8


def check_out_dir(directory: Path, overwrite: bool) -> None:
    """Refuse an output directory that is a file, or that holds files when ``overwrite`` is false.

    ``dnnsim run --out`` calls this before it simulates, so a refused run costs nothing; an existing
    empty directory (say from ``mkdir -p`` in a batch script) is fine.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError("out", f"{str(directory)!r} exists and is not a directory", "a directory path")
    if not overwrite and directory.is_dir() and any(directory.iterdir()):
        raise UserError("out", f"directory {str(directory)!r} exists and is not empty",
                        "a new or empty directory, or --overwrite (Python: overwrite=True) to replace its "
                        + ", ".join(OUTPUT_FILES) + " (other files are kept)")


def write_outputs(result: Result, directory: Path, overwrite: bool = False) -> None:
    """Write the :data:`OUTPUT_FILES` of ``result`` into ``directory``, all or none.

    ``directory`` and missing parents are created (like ``mkdir -p``, so ``--out out/demo`` works on a fresh
    clone) with the process umask applied, as are the files. A non-empty ``directory`` is refused unless
    ``overwrite`` (:func:`check_out_dir`); then its output files are replaced (a ``links.csv`` of an
    earlier run is removed when this run measured no links) and any other file is kept. The files are
    written into a staging directory next to ``directory`` and then moved in, so a failure leaves
    ``directory`` as it was.
    """

    def timeline(path: Path) -> None:
        from sim.plots.timeline import timeline_figure  # matplotlib only when files are written

        if result.summary["strategy"].iloc[0] == "4d":
            from sim.llm.run import trace_tracks
            from sim.plots.timeline import NAMES_4D

            ranks, label = trace_tracks(result, 8)
            timeline_figure(result, ranks=ranks, label=label, names=NAMES_4D,
                            title=f"One training iteration, the first rank of {len(ranks)} of "
                                  f"{result.plan.par.pp} pipeline stages").savefig(path, dpi=110)
        else:
            timeline_figure(result).savefig(path, dpi=110)

    writers: dict[str, Callable[[Path], Any]] = {
        "summary.csv": lambda path: result.summary.to_csv(path, index=False),
        "layers.csv": lambda path: result.layers.to_csv(path, index=False),
        "trace.json": lambda path: path.write_text(json.dumps(result.trace())),
        "config.yaml": lambda path: path.write_text(yaml.safe_dump(result.config.resolved(), sort_keys=False)),
        "timeline.png": timeline,
        "critical_path.csv": lambda path: result.critical_path().to_csv(path, index=False),
    }
    if result.meter is not None:
        writers["links.csv"] = lambda path: result.links().to_csv(path, index=False)
    _write_all(Path(directory), overwrite, writers, OUTPUT_FILES)


def _write_all(directory: Path, overwrite: bool, writers: dict[str, Callable[[Path], Any]],
               owned: tuple[str, ...]) -> None:
    """Run each ``writers[name](path)`` into a staging directory, then move the files into ``directory``
    (created with missing parents); ``owned`` names this kind of output (stale ones are removed)."""
    parent = directory.resolve().parent
    check_out_dir(directory, overwrite)
    if parent.exists() and not parent.is_dir():
        raise UserError("out", f"{str(parent)!r} is not a directory", "a path whose parents are directories")
    parent.mkdir(parents=True, exist_ok=True)
    staging, _ = create_fresh(parent, f".{directory.name}.tmp", "", lambda path: os.mkdir(path, 0o777))
    try:
        for name, write in writers.items():
            write(staging / name)
        if not directory.exists():
            os.replace(staging, directory)
            return
        for name in owned:
            if name in writers:
                os.replace(staging / name, directory / name)
            else:
                (directory / name).unlink(missing_ok=True)
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
    if config.seq_len is not None:
        model = with_seq_len(model, config.seq_len)
    compute_model = make_compute_model(config.compute, model, config.dtype_bytes, config.precision,
                                       config.memory_format)
    graph = build_topology(config.topology, config.procs)
    analytic = make_network("analytic", graph, ecmp=config.ecmp)
    analytic.check_ranks(config.procs)
    algorithms = dict(parse_collectives(config.collectives))
    dataset_size = config.dataset_size or model.dataset_size
    return Setup(model, compute_model, graph, analytic, algorithms, dataset_size)


def with_seq_len(model: Any, seq_len: int) -> Any:
    """``model`` rebuilt for sequences of ``seq_len`` tokens (a transformer only; an explicit
    ``dataset_size`` is kept, one derived from ``dataset_tokens`` follows the new length)."""
    from dataclasses import replace

    from workloads.transformer import build_transformer

    cfg = model.transformer
    if cfg is None:
        raise UserError("seq_len", f"is given but {model.name!r} is not a transformer",
                        "seq_len only with a transformer model (gpt3-*, llama*, or a YAML transformer:)")
    rebuilt = build_transformer(replace(cfg, seq_len=seq_len))
    if model.dataset_size != cfg.dataset_size:
        rebuilt = replace(rebuilt, dataset_size=model.dataset_size)
    return rebuilt


def plan_config(config: RunConfig, setup: Setup, paper_dx: bool = False) -> RunPlan:
    """Validate ``config`` against the model and plan its iteration."""
    refuse_4d_only(config)
    validate_against_model(config, setup.model)
    pr, pc = config.grid_dims()
    conv_mode, fc = config.layer_modes()
    conv_grid = config.conv_grid_dims()
    conv = Grid(*conv_grid, config.placement) if conv_grid is not None else None
    grid = Grid(pr, pc, config.placement, conv=conv)
    return plan_run(setup.model, conv_mode, fc, config.batch, grid, config.word_bytes(), setup.algorithms,
                    setup.compute_model.time, overlap=config.overlap, paper_dx=paper_dx,
                    meta={"model": setup.model.name, "strategy": config.strategy},
                    bucket_bytes=None if config.bucket_mb is None else float(config.bucket_mb) * 2**20,
                    host_overhead_s=config.host_overhead)


def _fields_common(config: RunConfig, setup: Setup) -> dict[str, Any]:
    """The summary fields every run fills from its config and setup."""
    from workloads.precision import get_precision, with_dtype_bytes

    precision = with_dtype_bytes(get_precision(config.precision), config.dtype_bytes)
    return {"model": setup.model.name, "batch": config.batch, "procs": config.procs,
            "strategy": config.strategy, "topology": config.topology,
            "network": config.network, "compute": getattr(setup.compute_model, "name", config.compute),
            "placement": config.placement, "collectives": config.collectives,
            "overlap": config.overlap, "dtype_bytes": precision.word_bytes, "dataset_size": setup.dataset_size,
            "bucket_mb": config.bucket_mb, "host_overhead_s": config.host_overhead, "precision": config.precision,
            "memory_format": config.memory_format}


def _fields(config: RunConfig, setup: Setup, plan: RunPlan) -> dict[str, Any]:
    from workloads.precision import get_precision, with_dtype_bytes

    conv, fc = config.layer_modes()
    conv_grid = plan.grid.conv or plan.grid
    precision = with_dtype_bytes(get_precision(config.precision), config.dtype_bytes)
    out = _fields_common(config, setup)
    out.update({"pr": plan.grid.pr, "pc": plan.grid.pc, "conv": conv, "fc": fc,
                "memory_per_rank_bytes": memory_per_rank_bytes(plan.plans, precision.word_bytes, plan.grid.pr,
                                                               conv_grid.pr, precision),
                "conv_pr": conv_grid.pr, "conv_pc": conv_grid.pc})
    return out


def run_planned(config: RunConfig, setup: Setup, plan: RunPlan, engine: str = "auto",
                with_layers: bool = True, links: bool = False, link_series: bool = True) -> Result:
    """Time a planned iteration and collect the frames (``with_layers=False`` leaves ``layers`` empty,
    for fast screening; ``links`` measures every link, on ``flow`` and ``step``, and ``link_series`` keeps
    their loads over time for the trace's counter tracks)."""
    if links and config.network == "analytic":
        raise UserError("links", "the analytic network model has no links to measure", "network flow or step")
    if engine not in ENGINES:
        raise UserError("engine", f"unknown engine {engine!r}", ", ".join(ENGINES))
    start = time.perf_counter()
    from sim.fastpath import is_symmetric, run_fast

    if engine == "fast" and config.network != "analytic":
        raise UserError("engine", f"the fast path needs network=analytic, not {config.network!r}",
                        "engine full, or network analytic")
    fast = engine != "full" and config.network == "analytic" and is_symmetric(plan.steps, plan.grid, setup.analytic)
    if engine == "fast" and not fast:
        raise UserError("engine", "the fast path times one rank and needs every group of a kind to run the same "
                                  "schedule, but here hierarchical collectives run on groups only some of which "
                                  "are node-aligned", "engine auto or full (the SimPy engine times every rank)")
    program, meter = None, None
    if fast:
        out = run_fast(plan.steps, plan.grid, setup.analytic)
        records, makespan, events = out.records, out.makespan_s, out.events
        meta: dict[str, Any] = {"engine": "fast"}
    else:
        from sim.engine import run_program
        from sim.fastpath import check_algorithms
        from sim.network import make_network

        check_algorithms(plan.steps, plan.grid.pr, plan.grid.pc, plan.grid)
        network = setup.analytic if config.network == "analytic" else make_network(
            config.network, setup.graph, placement=None, ecmp=config.ecmp)
        program = plan.program()
        if links:
            from sim.network.linkmeter import LinkMeter

            meter = LinkMeter(network.router, series=link_series)
        engine_result = run_program(program, network, meter)
        records, makespan = engine_result.records, engine_result.makespan_s
        events = engine_result.events
        meta = {"engine": "full", "engine_wall_s": engine_result.wall_s}
    from sim.critical_path import split_rows, walk

    path_rows = walk(records, [plan.steps] if program is None else program.ops)
    fields = _fields(config, setup, plan)
    fields["events"] = int(events)
    fields.update(split_rows(records, path_rows[0]))
    summary = summarize(records, makespan, fields, config.procs, config.batch, setup.dataset_size, fast)
    layers = layer_table(records, plan.plans, config.procs, fast) if with_layers else pd.DataFrame()
    result = Result(config, summary, layers, records, plan, meta, meter, None, path_rows)
    summary["wall_s"] = time.perf_counter() - start
    return result


def simulate(config: RunConfig | dict | str | Path, *, engine: str = "auto", paper_dx: bool = False,
             links: bool = False, link_series: bool = True) -> Result:
    """Simulate one training iteration.

    Parameters
    ----------
    config : RunConfig, dict or path
        A config, a dict of config keys, or the path of a YAML run config.
    engine : {"auto", "fast", "full"}
        ``auto``: the analytic fast path under ``network=analytic`` when every rank runs alike, the SimPy
        engine otherwise; ``full`` forces the engine (to check the fast path); ``fast`` demands the fast
        path and raises :class:`UserError` where it does not apply (a network other than ``analytic``,
        or ranks that do not run alike: :func:`sim.fastpath.is_symmetric`).
    paper_dx : bool
        Size model layers' ΔX all-reduces as the paper prints them (``d_i`` in Eqs. 3 and 8, first layer
        included; docs/paper-model.md); for tests that compare against the printed equations. Default:
        true sizes (``d_{i-1}``).
    links : bool
        Measure every directed link (bytes, busy time, utilisation, which collectives loaded it:
        :meth:`Result.links`) and add their counters to the trace; ``flow`` and ``step`` networks only.
    link_series : bool
        With ``links``: keep each link's load over time for the trace's counter tracks (``False``: the
        per-link totals only, cheaper).

    Raises
    ------
    UserError
        For any mistake in the config.
    """
    start = time.perf_counter()
    cfg = load_config(config) if isinstance(config, (str, Path)) else make_config(config)
    result = run_config(cfg, load_setup(cfg), engine=engine, paper_dx=paper_dx, links=links,
                        link_series=link_series)
    result.summary["wall_s"] = time.perf_counter() - start
    return result


def run_config(cfg: RunConfig, setup: Setup, *, engine: str = "auto", paper_dx: bool = False,
               with_layers: bool = True, links: bool = False, link_series: bool = True) -> Result:
    """Plan and time ``cfg`` on its loaded ``setup``: a 4d run (:mod:`sim.llm.run`) or the paper's strategies
    (:func:`plan_config`, :func:`run_planned`; ``with_layers=False`` skips their per-layer table)."""
    if cfg.is_4d():
        from sim.llm.run import plan_4d, run_4d

        if engine == "fast":
            raise UserError("engine", "the fast path times the paper's grids, not a 4d run",
                            "engine auto or full")
        return run_4d(cfg, setup, plan_4d(cfg, setup), links=links, link_series=link_series)
    plan = plan_config(cfg, setup, paper_dx=paper_dx)
    return run_planned(cfg, setup, plan, engine, with_layers=with_layers, links=links, link_series=link_series)
