"""Run one training iteration of a transformer on the TP × CP × PP × DP grid: plan, simulate, summarize.

:func:`plan_4d` checks the layout against the model (:func:`sim.llm.parallel.check_parallel`), costs the
chunks (:mod:`sim.llm.costs`) and builds the program (:mod:`sim.llm.program`); :func:`run_4d` runs it on
the engine with the configured network model and returns a :class:`sim.api.Result` whose summary has the
``run`` fields plus the 4-D ones:

``tp_comm_s, cp_comm_s, dp_comm_s``
    the critical rank's time in TP, CP and data-parallel collectives (categories ``model``, ``domain``,
    ``batch``: the paper's model, domain and batch parallelism);
``pp_comm_s``
    its time in pipeline sends and receives while the data was moving (a receive that arrives before its
    sender has started counts from the transfer's start);
``bubble_s``
    its time at pipeline receives before the sender started: the pipeline bubble. On an ideal network
    with uniform stages it is ``(p - 1) / (m + p - 1)`` of the iteration for GPipe and 1F1B;
``tokens_per_s``
    ``batch * seq_len / iteration_s``;
``mfu``
    model FLOPs utilisation as PaLM defines it (Chowdhery et al. 2022, App. B): model FLOPs per token
    (:func:`workloads.transformer.model_flops_per_token`, no recomputation counted) × tokens/s ÷ (procs ×
    the device's peak at the run's precision); empty without a device (``compute: none``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.errors import UserError
from sim.llm.costs import ChunkCost, chunk_costs
from sim.llm.parallel import Parallel, check_parallel
from sim.llm.program import build_program
from sim.program import Program


@dataclass
class LLMPlan:
    """A planned 4-D iteration: the layout, the chunk costs, the program and the network it runs on
    (with ``placement`` = host of each program rank when one rank per TP group stands for the group)."""

    par: Parallel
    costs: list[ChunkCost]
    prog: Program
    network: Any
    meta: dict = field(default_factory=dict)

    def program(self) -> Program:
        return self.prog


def tp_symmetric(graph: Any, par: Parallel, network: str) -> bool:
    """Whether one rank per TP group can stand for the group, exactly.

    Under ``analytic`` (a collective costs its closed form whatever else runs) when every TP group sits on
    the nodes alike (TP divides, or is a multiple of, the GPUs per node of a topology with nodes, so that
    algorithms that read the node structure cost the same on each group). Under ``flow`` and
    ``step`` when the TP group is a whole node of a ``hier`` topology with one NIC per GPU: the TP
    collectives then use only that node's NVSwitch links, which no other traffic uses (every CP, DP and
    pipeline peer is on another node and is reached through the GPU's own NIC), and the ranks of one TP
    group send their other traffic over disjoint NIC links through a non-blocking fabric, so every TP rank
    sees what rank tp = 0 sees.
    """
    if par.tp == 1:
        return False
    g = graph.graph
    if network == "analytic":
        per_node = g.get("gpus_per_node")
        return not per_node or per_node % par.tp == 0 or par.tp % per_node == 0
    return g.get("kind") == "hier" and g.get("gpus_per_node") == par.tp and g.get("nics_per_node") == par.tp


def _solo_timer(network: Any, par: Parallel) -> Callable:
    """``Comm -> (seconds, algorithm that ran, bytes each member sends)`` of a TP collective alone on the
    first node (ranks 0 .. tp-1), cached per (op, bytes, count)."""
    from sim.engine import run_program
    from sim.program import Collective

    group = tuple(range(par.tp))
    cache: dict = {}

    def solo(c: Any, algorithm: str) -> tuple[float, str, float]:
        key = (c.op, c.nbytes, c.count, algorithm)
        if key not in cache:
            op = Collective(c.op, group, float(c.nbytes), algorithm, key="solo", count=c.count)
            seconds = run_program(Program(tuple((op,) for _ in group)), network).makespan_s
            sent = network.bytes_sent(c.op, algorithm, group, float(c.nbytes), (), c.count)
            cache[key] = (seconds, network.effective_algorithm(c.op, algorithm, group), float(sent.mean()))
        return cache[key]

    return solo


def plan_4d(config: Any, setup: Any) -> LLMPlan:
    """Check ``config``'s layout against its transformer and build the program."""
    model = setup.model
    cfg = model.transformer
    if cfg is None:
        raise UserError("model", f"{model.name!r} is not a transformer, so it has no 4d (tp, cp, pp, dp) layout",
                        "a zoo transformer (gpt3-*, llama*) or a model YAML with transformer:, or strategy "
                        "batch/model/domain/integrated")
    par = config.parallel()
    check_parallel(par, layers=cfg.layers, heads=cfg.heads, kv_heads=cfg.n_kv_heads, hidden=cfg.hidden,
                   seq_len=cfg.seq_len, batch=config.batch, procs=config.procs)
    from sim.network import make_network

    word = config.word_bytes()
    costs = chunk_costs(model, par, setup.compute_model.time, word)
    algorithms = dict(setup.algorithms)

    def net(placement: Any = None) -> Any:
        if config.network == "analytic" and placement is None:
            return setup.analytic
        return make_network(config.network, setup.graph, placement=placement, ecmp=config.ecmp)

    tp_solo = None
    network = net()
    if tp_symmetric(setup.graph, par, config.network):
        solo = _solo_timer(network, par)
        tp_solo = lambda c: solo(c, algorithms.get(c.op, "ring"))  # noqa: E731
        # program rank i is global rank i * tp: its host (placement facts of the DP, CP and pipeline groups)
        network = net(list(range(0, par.procs, par.tp)))
    memory = plan_memory(config, setup, par)
    if config.require_fit and memory["fits"] is None:
        raise UserError("require_fit", f"compute {config.compute!r} names no device with a memory capacity, so "
                                       "fitting cannot be checked",
                        "compute roofline:DEVICE whose device file gives memory (a100, h100, v100, ...)")
    if config.require_fit and memory["fits"] is False:
        raise UserError("require_fit", f"{memory['memory_per_rank_bytes'] / 2**30:.1f} GiB per rank does not fit the "
                                       f"device's {memory['device_memory_bytes'] / 2**30:.1f} GiB",
                        "more tp/pp, zero 1-3, recompute selective/full, a smaller microbatch, or no --require-fit")
    bucket = None if config.bucket_mb is None else config.bucket_mb * 2**20 / word
    prog = build_program(par, config.batch, costs, word, algorithms, config.host_overhead, tp_solo,
                         overlap=config.overlap, bucket_params=bucket, tp_overlap=config.tp_overlap)
    meta = {"model": model.name, "strategy": "4d", "tp_representative": tp_solo is not None, "memory": memory,
            "microbatches": par.microbatches(config.batch)}
    return LLMPlan(par, costs, prog, network, meta)


#: memory fields of a 4d summary (bytes per rank of the stage that holds the most)
MEMORY_FIELDS = ("memory_weights_bytes", "memory_gradients_bytes", "memory_optimizer_bytes",
                 "memory_activations_bytes", "memory_inflight_bytes")


def plan_memory(config: Any, setup: Any, par: Parallel) -> dict[str, Any]:
    """Memory per rank of the heaviest stage (:func:`sim.llm.memory.max_memory_breakdown`), its breakdown,
    the device's capacity and ``fits`` (None when the compute model names no device with a capacity).
    Dropout masks are counted for LayerNorm (GPT-style) models, which Megatron trains with dropout, not
    for RMSNorm (Llama-style) ones, trained without."""
    from sim.llm.memory import fits, max_memory_breakdown

    cfg = setup.model.transformer
    bd = max_memory_breakdown(cfg, par, precision=config.precision, batch=config.batch,
                              dropout=cfg.norm == "layernorm")
    device = getattr(setup.compute_model, "device", None)
    capacity = getattr(device, "memory_bytes", None)
    out = dict(zip(MEMORY_FIELDS, (bd.weights_bytes, bd.gradients_bytes, bd.optimizer_bytes,
                                   bd.activations_bytes, bd.inflight_bytes), strict=True))
    out.update(memory_per_rank_bytes=bd.total_bytes, device_memory_bytes=capacity, fits=fits(bd, capacity),
               memory_stage=bd.stage)
    return out


def _split(records: pd.DataFrame, rank: int) -> dict[str, float]:
    """The 4-D communication split and the bubble of ``rank``."""
    mine = records[records["rank"].to_numpy() == rank]
    comm = mine[mine["kind"].to_numpy() != "compute"]
    dur = comm["end_s"].to_numpy(dtype=float) - comm["start_s"].to_numpy(dtype=float)
    cat = comm["category"].to_numpy()
    out = {name: float(dur[cat == c].sum()) for name, c in (("tp_comm_s", "model"), ("cp_comm_s", "domain"),
                                                            ("dp_comm_s", "batch"), ("pp_comm_s", "pipeline"))}
    send = comm["op"].to_numpy() == "send"
    wait = comm["start_s"].to_numpy(dtype=float) - comm["arrive_s"].to_numpy(dtype=float)
    out["bubble_s"] = float(wait[send].sum())
    return out


def _peak_flops(compute_model: Any) -> float | None:
    peak = getattr(compute_model, "peak_flops", None)
    return float(peak) if peak else None


def run_4d(config: Any, setup: Any, plan: LLMPlan, links: bool = False, link_series: bool = True) -> Any:
    """Time the planned iteration on the engine; the :class:`sim.api.Result` (module docstring)."""
    from sim.api import Result, _fields_common
    from sim.critical_path import split_rows, walk
    from sim.engine import run_program
    from sim.results import critical_rank, summarize
    from workloads.transformer import model_flops_per_token

    start = time.perf_counter()
    if links and config.network == "analytic":
        raise UserError("links", "the analytic network model has no links to measure", "network flow or step")
    network = plan.network
    meter = None
    if links:
        from sim.network.linkmeter import LinkMeter

        meter = LinkMeter(network.router, series=link_series)
    res = run_program(plan.prog, network, meter)
    records = res.records
    path_rows = walk(records, plan.prog.ops)
    par = plan.par
    cfg = setup.model.transformer
    fields = _fields_common(config, setup)
    fields.update(strategy="4d", pr=par.tp, pc=par.dp, conv_pr=par.tp, conv_pc=par.dp, tp=par.tp, cp=par.cp,
                  pp=par.pp, dp=par.dp, sp=par.seq_parallel, microbatch=par.microbatch, schedule=par.schedule,
                  virtual_stages=par.virtual_stages, zero=par.zero, recompute=par.recompute, seq_len=cfg.seq_len,
                  pp_split=par.pp_split, cp_comm=par.cp_comm, events=int(res.events))
    fields.update({k: v for k, v in plan.meta["memory"].items() if k != "memory_stage"})
    fields.update(split_rows(records, path_rows[0]))
    fields.update(_split(records, critical_rank(records)))
    tokens_per_s = config.batch * cfg.seq_len / res.makespan_s if res.makespan_s > 0 else None
    fields["tokens_per_s"] = tokens_per_s
    peak = _peak_flops(setup.compute_model)
    fields["mfu"] = (model_flops_per_token(setup.model) * tokens_per_s / (config.procs * peak)
                     if peak and tokens_per_s else None)
    summary = summarize(records, res.makespan_s, fields, plan.prog.n_ranks, config.batch, setup.dataset_size, False)
    layers = chunk_table(plan, records)
    result = Result(config, summary, layers, records, plan, {"engine": "full", "engine_wall_s": res.wall_s}, meter,
                    None, path_rows)
    summary["wall_s"] = time.perf_counter() - start
    return result


def chunk_table(plan: LLMPlan, records: pd.DataFrame) -> pd.DataFrame:
    """The ``layers.csv`` of a 4d run: one row per layer of the model (kind as the model names it), then one
    row per model chunk (``kind == "chunk"``).

    Every row has its ``stage`` and ``chunk``, the parameters one rank holds (``params_per_rank``) and the
    compute of one rank over the iteration (every micro-batch; recomputation excluded); a layer row also
    the fraction of the layer's work one rank does (``shard``). The communication columns (``tp_comm_s,
    cp_comm_s, pp_comm_s, dp_comm_s``: the mean time per rank of the chunk's ranks) and ``send_bytes`` (one
    pipeline send at the chunk's boundary) are on the chunk rows: a chunk's collectives run as one sequence.
    """
    par = plan.par
    micro = max(1, _microbatches(plan))
    ranks_per_stage = max(1, plan.prog.n_ranks // par.pp)
    comm = records[records["kind"].to_numpy() != "compute"]
    dur = comm["end_s"] - comm["start_s"]
    by = dur.groupby([comm["layer"], comm["category"]]).sum() / ranks_per_stage
    layer_rows, chunk_rows = [], []
    for c in plan.costs:
        name = f"chunk{c.index}"
        stage = c.index % par.pp
        for lname, kind, shard, fwd, bwd, mine in c.per_layer:
            layer_rows.append({"layer": lname, "kind": kind, "stage": stage, "chunk": c.index, "shard": shard,
                               "params_per_rank": mine, "fwd_compute_s": micro * fwd, "bwd_compute_s": micro * bwd})
        row = {"layer": name, "kind": "chunk", "stage": stage, "chunk": c.index, "blocks": c.blocks,
               "layers": len(c.layers), "params_per_rank": c.params,
               "fwd_compute_s": micro * (c.fwd_s + c.attn_fwd_s), "bwd_compute_s": micro * (c.bwd_s + c.attn_bwd_s),
               "send_bytes": c.send_bytes}
        for cat, col in (("model", "tp_comm_s"), ("domain", "cp_comm_s"), ("pipeline", "pp_comm_s"),
                         ("batch", "dp_comm_s")):
            row[col] = float(by.get((name, cat), 0.0))
        chunk_rows.append(row)
    return pd.DataFrame(layer_rows + chunk_rows)


def _microbatches(plan: LLMPlan) -> int:
    return int(plan.meta.get("microbatches", 1))


def trace_tracks(result: Any, max_ranks: int) -> tuple[list[int], Callable[[int], str]]:
    """The ranks a 4d trace shows — the first simulated rank of each pipeline stage (at most ``max_ranks``
    stages, evenly spaced) and the critical rank — and their track names, ``stage S · rank R`` (R the
    global rank: with one rank per TP group, program rank i is global rank i·tp)."""
    from sim.results import critical_rank, sample_ranks

    plan = result.plan
    par = plan.par
    per_stage = plan.prog.n_ranks // par.pp
    scale = par.tp if plan.meta.get("tp_representative") else 1
    firsts = [s * per_stage for s in range(par.pp)]
    critical = critical_rank(result.records)
    ranks = sorted(set(sample_ranks(firsts, max_ranks, critical)) | {critical})

    def label(r: int) -> str:
        return f"stage {r // per_stage} · rank {r * scale}"

    return ranks, label
