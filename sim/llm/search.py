"""``dnnsim best`` on a transformer: search the TP × CP × PP × DP grid and its choices, memory first, screen
without the engine (:mod:`sim.llm.screen`), re-time the best on the configured network.

Search space (:func:`layouts`). A dimension the config sets (``tp``, ``cp``, ``pp``, ``dp``, ``microbatch``,
``schedule``, ``virtual_stages``, ``zero``, ``recompute``, ``sp``, ``pp_split``, ``cp_comm``: the keys given to
:class:`~sim.config.RunConfig`, i.e. the flags on the command line) is fixed; every other one is searched:

* ``tp``: divisors of procs that divide the heads and the hidden size and divide, or are a multiple of,
  the key/value heads (:func:`~sim.llm.parallel.check_parallel`'s rule); on a topology of multi-GPU nodes
  (``hier``) at most the GPUs per node: across nodes its per-layer collectives run at NIC instead of
  NVLink speed on the critical path, which is never competitive (a fixed ``tp`` may exceed it);
* ``cp``: 1 unless the sequence has at least :data:`CP_MIN_SEQ_LEN` tokens (context parallelism only
  pays when attention's quadratic work and activations dominate; Megatron-LM's long-context recipes start
  there), then every divisor with ``2·cp`` dividing the sequence (ring attention's load-balanced blocks);
* ``pp``: divisors of procs / (tp·cp) of at most the layer count (plus the embedding and the output layer
  when ``pp_split`` counts them; ``pp_split`` itself is not searched: the config's, default ``blocks``);
  ``dp`` is the rest and must divide the batch (a fixed ``dp`` keeps only the layouts that give it);
* ``microbatch``: divisors of batch / dp up to :data:`MAX_MICROBATCH`;
* ``schedule``: ``1f1b``, and with pp > 1 ``interleaved`` with ``virtual_stages`` every v in 2 ..
  :data:`MAX_VIRTUAL_STAGES` dividing layers / pp (Megatron-LM's rule: every chunk the same number of layers;
  layers as ``pp_split`` counts them)
  where the micro-batch count is a multiple of pp; ``gpipe`` only when fixed (it holds every micro-batch's
  activations, 1F1B at most pp, for the same bubble);
* ``cp_comm``: with cp > 1 ``p2p`` (ring attention) and ``a2a`` (Ulysses) where CP divides a TP rank's query
  and key/value heads; not ``allgather``, which moves the ring's bytes without hiding them under the
  attention and so, on uncontended links, is never the faster in this model (it describes runs that used
  it: set it to keep it);
* ``zero`` 0 .. 3 where cp·dp > 1 (with one rank per data-parallel group there is nothing to shard: every
  stage is ZeRO 0, so only 0 is listed); ``recompute`` none / selective / full; ``sp`` on and off where
  tp > 1 (on only at tp 1).

Ranking (:func:`rank_best_4d`). Memory first: the heaviest stage's bytes per rank
(:func:`sim.llm.memory.max_memory_breakdown`, as ``dnnsim run`` reports them); a candidate is ranked when it
fits (``fits`` true, or None on a compute model without a device capacity). The fitting ones are screened
(:mod:`sim.llm.screen`, no engine); with at most ``exact_up_to`` of them every one is re-timed by the
simulator on the configured network, else the ``top`` best of the screen (default
:data:`sim.best.DEFAULT_TOP_RETIMED`), on ``analytic`` too (where the screen equals the simulator on every
layout bench/bench_screen.py compares; re-timing the few best checks it). Rows are ranked by ``iteration_s``; the batch is fixed, so ``tokens_per_s`` and ``mfu`` rank them the
same way. ``show_unfit`` appends every candidate that does not fit (``fits`` false, ``unfit_reason``
"needs X GiB of Y GiB"), screened but not re-timed, fastest screen first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from sim.errors import UserError
from sim.llm.parallel import Parallel, check_parallel, split_slots

#: micro-batch sizes searched (divisors of batch / dp) go up to this
MAX_MICROBATCH = 8
#: virtual stages searched for the interleaved schedule go up to this
MAX_VIRTUAL_STAGES = 8
#: context parallelism is searched from this sequence length on (below it: cp = 1 unless fixed)
CP_MIN_SEQ_LEN = 16384
#: the dimensions a config can fix
DIMENSIONS = ("tp", "cp", "pp", "dp", "microbatch", "schedule", "virtual_stages", "zero", "recompute", "sp",
              "pp_split", "cp_comm")


def fixed_dimensions(config: Any) -> dict[str, Any]:
    """The dimensions ``config`` sets explicitly (pydantic's ``model_fields_set``), with their values."""
    given = config.model_fields_set
    return {k: getattr(config, k) for k in DIMENSIONS if k in given and getattr(config, k) is not None}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_fixed(fixed: dict[str, Any], tcfg: Any, procs: int, batch: int) -> None:
    """Refuse fixed values no layout can use, with :func:`check_parallel`'s messages."""
    pp = fixed.get("pp", 1)
    schedule = fixed.get("schedule", "interleaved" if fixed.get("virtual_stages", 1) > 1 else "1f1b")
    v = fixed.get("virtual_stages", 2 if schedule == "interleaved" else 1)
    probe = Parallel(tp=fixed.get("tp", 1), cp=fixed.get("cp", 1), pp=pp, dp=1, sp=fixed.get("sp", True),
                     microbatch=fixed.get("microbatch", 1), schedule=schedule, virtual_stages=v,
                     zero=fixed.get("zero", 0), recompute=fixed.get("recompute", "none"),
                     pp_split=fixed.get("pp_split", "blocks"), cp_comm=fixed.get("cp_comm", "p2p"))
    if schedule == "interleaved" and "pp" not in fixed:
        probe = replace(probe, pp=2)
    check_parallel(probe, layers=tcfg.layers, heads=tcfg.heads, kv_heads=tcfg.n_kv_heads, hidden=tcfg.hidden,
                   seq_len=tcfg.seq_len, batch=probe.microbatch * probe.pp)
    used = 1
    for k in ("tp", "cp", "pp", "dp"):
        used *= fixed.get(k, 1)
    if procs % used:
        raise UserError("procs", f"{procs} is not a multiple of the fixed " + "*".join(
            f"{k}" for k in ("tp", "cp", "pp", "dp") if k in fixed) + f" = {used}", "procs a multiple of their product")
    if "dp" in fixed and batch % fixed["dp"]:
        raise UserError("dp", f"{fixed['dp']} does not divide batch={batch}", "a divisor of the batch")


def layouts(tcfg: Any, procs: int, batch: int, fixed: dict[str, Any], gpus_per_node: int | None) -> list[Parallel]:
    """Every layout of the search space (module docstring), in enumeration order; fixed values that no
    layout can use raise :class:`UserError`."""
    _check_fixed(fixed, tcfg, procs, batch)
    heads, kv, hidden, layers, seq = tcfg.heads, tcfg.n_kv_heads, tcfg.hidden, tcfg.layers, tcfg.seq_len
    pp_split = fixed.get("pp_split", "blocks")
    slots = layers + sum(split_slots(pp_split))
    if "tp" in fixed:
        tps = [fixed["tp"]]
    else:
        tps = [d for d in _divisors(procs) if heads % d == 0 and hidden % d == 0 and (kv % d == 0 or d % kv == 0)
               and (not gpus_per_node or gpus_per_node <= 1 or d <= gpus_per_node)]
    if "cp" in fixed:
        cps = [fixed["cp"]]
    elif seq >= CP_MIN_SEQ_LEN:
        cps = [d for d in _divisors(procs) if d == 1 or seq % (2 * d) == 0]
    else:
        cps = [1]
    out: list[Parallel] = []
    for tp in tps:
        for cp in cps:
            if procs % (tp * cp):
                continue
            rest = procs // (tp * cp)
            pps = [fixed["pp"]] if "pp" in fixed else [d for d in _divisors(rest) if d <= slots]
            for pp in pps:
                if rest % pp:
                    continue
                dp = rest // pp
                if ("dp" in fixed and dp != fixed["dp"]) or batch % dp:
                    continue
                mbs = ([fixed["microbatch"]] if "microbatch" in fixed else
                       [d for d in _divisors(batch // dp) if d <= MAX_MICROBATCH])
                for mb in mbs:
                    if batch % (dp * mb):
                        continue
                    m = batch // (dp * mb)
                    for schedule, v in _schedules(fixed, pp, slots, m):
                        for zero in [fixed["zero"]] if "zero" in fixed else (0, 1, 2, 3) if cp * dp > 1 else (0,):
                            for rec in [fixed["recompute"]] if "recompute" in fixed else ("none", "selective", "full"):
                                for sp in [fixed["sp"]] if "sp" in fixed else ((True, False) if tp > 1 else (True,)):
                                    for cp_comm in _cp_comms(fixed, cp):
                                        par = Parallel(tp=tp, cp=cp, pp=pp, dp=dp, sp=sp, microbatch=mb,
                                                       schedule=schedule, virtual_stages=v, zero=zero, recompute=rec,
                                                       pp_split=pp_split, cp_comm=cp_comm)
                                        try:
                                            check_parallel(par, layers=layers, heads=heads, kv_heads=kv,
                                                           hidden=hidden, seq_len=seq, batch=batch, procs=procs)
                                        except UserError:
                                            continue
                                        out.append(par)
    return out


def _cp_comms(fixed: dict[str, Any], cp: int) -> tuple[str, ...]:
    """The ``cp_comm`` values searched at ``cp`` (module docstring): the fixed one, else p2p and, with CP,
    a2a (check_parallel drops it where CP does not divide a TP rank's heads)."""
    if "cp_comm" in fixed:
        return (fixed["cp_comm"],)
    return ("p2p", "a2a") if cp > 1 else ("p2p",)


def _schedules(fixed: dict[str, Any], pp: int, layers: int, m: int) -> list[tuple[str, int]]:
    """``(schedule, virtual_stages)`` pairs for ``pp`` stages and ``m`` micro-batches (module docstring);
    ``layers`` counts what the pipeline split counts (the blocks, and the embedding and loss by ``pp_split``)."""
    if "schedule" in fixed and fixed["schedule"] != "interleaved":
        return [(fixed["schedule"], fixed.get("virtual_stages", 1))]
    out: list[tuple[str, int]] = []
    if "schedule" not in fixed and fixed.get("virtual_stages", 1) == 1:
        out.append(("1f1b", 1))
    if pp > 1 and m % pp == 0:
        if fixed.get("virtual_stages", 1) > 1:
            out.append(("interleaved", fixed["virtual_stages"]))
        elif "virtual_stages" not in fixed:
            per = layers // pp if layers % pp == 0 else 0
            out += [("interleaved", v) for v in range(2, MAX_VIRTUAL_STAGES + 1) if per and per % v == 0]
    return out


@dataclass
class _Cand:
    order: int
    par: Parallel
    memory: dict[str, Any]
    screen_s: float = math.nan


def heaviest_stage_memory(tcfg: Any, par: Parallel, batch: int, precision: str, dropout: bool) -> Any:
    """:func:`sim.llm.memory.max_memory_breakdown`, from the first and the last stage only.

    No middle stage holds more than the first: it holds at most as many blocks (the extra blocks of an
    uneven split go to the lowest chunks, and stage 0's chunk ``c·pp`` is the lowest of its round), no
    embedding, and at most as many micro-batches in flight (1F1B's ``pp - s``, the interleaved warm-up
    ``(pp - s - 1)·2 + (v - 1)·pp``, GPipe's ``m`` for all); only the last stage, with the output layer, can
    hold more. So the maximum over ``{0, pp - 1}`` (first on a tie) is the maximum over every stage, for
    ``pp`` times less work; tests/test_best4d.py checks it against :func:`max_memory_breakdown`.
    """
    from sim.llm.memory import memory_breakdown

    first = memory_breakdown(tcfg, par, precision=precision, stage=0, batch=batch, dropout=dropout)
    if par.pp == 1:
        return first
    last = memory_breakdown(tcfg, par, precision=precision, stage=par.pp - 1, batch=batch, dropout=dropout)
    return last if last.total_bytes > first.total_bytes else first


def _memory(tcfg: Any, par: Parallel, batch: int, precision: str, capacity: float | None) -> dict[str, Any]:
    """:func:`sim.llm.run.plan_memory`'s fields for ``par`` (same rule: dropout masks for LayerNorm models)."""
    from sim.llm.memory import fits
    from sim.llm.run import MEMORY_FIELDS

    bd = heaviest_stage_memory(tcfg, par, batch, precision, tcfg.norm == "layernorm")
    out = dict(zip(MEMORY_FIELDS, (bd.weights_bytes, bd.gradients_bytes, bd.optimizer_bytes, bd.activations_bytes,
                                   bd.inflight_bytes), strict=True))
    out.update(memory_per_rank_bytes=bd.total_bytes, device_memory_bytes=capacity, fits=fits(bd, capacity))
    return out


def _layout_config(base: Any, par: Parallel, network: str) -> Any:
    from sim.config import make_config

    data = base.model_dump()  # strategy kept: tp..dp set make it a 4d run (RunConfig.is_4d)
    data.update(grid=None, conv_grid=None, conv=None, fc=None, network=network, tp=par.tp, cp=par.cp,
                pp=par.pp, dp=par.dp, sp=par.sp, microbatch=par.microbatch, schedule=par.schedule,
                virtual_stages=par.virtual_stages, zero=par.zero, recompute=par.recompute, pp_split=par.pp_split,
                cp_comm=par.cp_comm, require_fit=False)
    return make_config(data)


def rank_best_4d(base: Any, setup: Any, top: int | None = None, exact_up_to: int = 32,
                 show_unfit: bool = False, default_top: int = 5) -> pd.DataFrame:
    """The 4-D candidates of ``base``'s transformer ranked by iteration time (module docstring): one summary
    row per re-timed candidate, ``rank`` first, ``screen_iteration_s`` before ``iteration_s``; with
    ``show_unfit`` the candidates that do not fit follow (no rank)."""
    from sim.llm.costs import chunk_costs
    from sim.llm.run import plan_4d, run_4d, tp_symmetric
    from sim.llm.screen import groups, make_pricer, screen

    if base.conv is not None or base.fc is not None:
        raise UserError("conv" if base.conv is not None else "fc", "is a layer mode of the paper's CNN strategies",
                        "leave conv/fc unset for a transformer (best searches tp, cp, pp, dp)")
    tcfg = setup.model.transformer
    fixed = fixed_dimensions(base)
    space = layouts(tcfg, base.procs, base.batch, fixed, setup.graph.graph.get("gpus_per_node"))
    if not space:
        raise UserError("procs", f"no tp*cp*pp*dp layout of procs={base.procs} splits batch={base.batch} for "
                                 f"{setup.model.name!r} with the fixed " + (", ".join(f"{k}={v}" for k, v in
                                                                                         fixed.items()) or "nothing"),
                        "a batch that dp*microbatch divides, or fewer fixed dimensions")
    device = getattr(setup.compute_model, "device", None)
    capacity = getattr(device, "memory_bytes", None)
    word = base.word_bytes()
    pricer = make_pricer(setup, base.network, base.ecmp)
    cost_cache: dict[tuple, Any] = {}
    bucket = None if base.bucket_mb is None else base.bucket_mb * 2**20 / word  # as sim.llm.run.plan_4d
    group_cache: dict[tuple, Any] = {}
    layer_s: dict[tuple, float] = {}

    def compute_time(layer: Any, phase: str, b: int, shard: float) -> float:
        """The compute model's time, memoised per (layer, phase, batch, shard): chunk costs of the same
        tp/cp/sp/microbatch share it whatever pp and v (bit for bit the model's value)."""
        key = (layer, phase, b, shard)
        hit = layer_s.get(key)
        if hit is None:
            hit = layer_s[key] = setup.compute_model.time(layer, phase, b, shard)
        return hit

    def screened(cand: _Cand) -> None:
        par = cand.par
        key = (par.tp, par.cp, par.seq_parallel, par.microbatch, par.pp, par.virtual_stages, par.cp_comm)
        costs = cost_cache.get(key)
        if costs is None:
            costs = cost_cache[key] = chunk_costs(setup.model, par, compute_time, word)
        solo = tp_symmetric(setup.graph, par, base.network)
        grid = (par.tp, par.cp, par.pp, par.dp)
        grp = group_cache.get(grid)
        if grp is None:
            grp = group_cache[grid] = groups(par)
        cand.screen_s = screen(par, costs, par.microbatches(base.batch), pricer, word, base.host_overhead, solo,
                               grp, tp_overlap=base.tp_overlap, overlap=base.overlap, bucket_params=bucket).iteration_s

    fit: list[_Cand] = []
    unfit: list[_Cand] = []
    for order, par in enumerate(space):
        cand = _Cand(order, par, _memory(tcfg, par, base.batch, base.precision, capacity))
        (unfit if cand.memory["fits"] is False else fit).append(cand)
        if cand.memory["fits"] is not False or show_unfit:
            screened(cand)
    if not fit and not show_unfit:
        least = min(unfit, key=lambda c: c.memory["memory_per_rank_bytes"])
        raise UserError("procs", f"none of the {len(unfit)} layouts fits the device's "
                                 f"{capacity / 2**30:.1f} GiB (the smallest needs "
                                 f"{least.memory['memory_per_rank_bytes'] / 2**30:.1f} GiB per rank)",
                        "more procs, a smaller batch or seq_len, or dnnsim best --show-unfit to list them")
    fit.sort(key=lambda c: (c.screen_s, c.order))
    chosen = fit if len(fit) <= exact_up_to else fit[: top or default_top]
    frames = []
    for cand in chosen:
        cfg = _layout_config(base, cand.par, base.network)
        summary = run_4d(cfg, setup, plan_4d(cfg, setup)).summary.copy()
        summary.insert(summary.columns.get_loc("iteration_s"), "screen_iteration_s", cand.screen_s)
        summary["unfit_reason"] = ""
        frames.append(summary)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):
        order = sorted(range(len(table)), key=lambda i: (float(table["iteration_s"].iloc[i]), i))
        table = table.iloc[order].reset_index(drop=True)
        table.insert(0, "rank", range(1, len(table) + 1))
        if top is not None:
            table = table[table["rank"] <= top].reset_index(drop=True)
    if show_unfit and unfit:
        unfit.sort(key=lambda c: (c.screen_s, c.order))
        rows = [_unfit_row(base, setup, c) for c in unfit]
        extra = pd.DataFrame(rows)
        table = pd.concat([table, extra], ignore_index=True) if len(table) else extra
        if "rank" not in table.columns:
            table.insert(0, "rank", pd.NA)
    return table


def _unfit_row(base: Any, setup: Any, cand: _Cand) -> dict[str, Any]:
    par, mem = cand.par, cand.memory
    row: dict[str, Any] = {"rank": pd.NA, "model": setup.model.name, "batch": base.batch, "procs": base.procs,
                           "strategy": "4d", "topology": base.topology, "network": base.network,
                           "tp": par.tp, "cp": par.cp, "pp": par.pp, "dp": par.dp, "sp": par.seq_parallel,
                           "microbatch": par.microbatch, "schedule": par.schedule,
                           "virtual_stages": par.virtual_stages, "pp_split": par.pp_split, "cp_comm": par.cp_comm, "zero": par.zero,
                           "recompute": par.recompute,
                           "seq_len": setup.model.transformer.seq_len, "screen_iteration_s": cand.screen_s,
                           "iteration_s": math.nan}
    row.update(mem)
    row["unfit_reason"] = (f"needs {mem['memory_per_rank_bytes'] / 2**30:.1f} GiB of "
                           f"{mem['device_memory_bytes'] / 2**30:.1f} GiB")
    return row


__all__ = ["CP_MIN_SEQ_LEN", "DIMENSIONS", "MAX_MICROBATCH", "MAX_VIRTUAL_STAGES", "fixed_dimensions", "layouts",
           "rank_best_4d"]
