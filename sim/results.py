"""Engine records -> the summary row, the per-layer table and a Chrome trace.

Accounting (one rank, the *critical rank*)
------------------------------------------
The critical rank is the rank whose last operation ends last (ties: the lowest rank); every per-rank
number of the summary is that rank's. ``iteration_s`` is the makespan (the critical rank's last end);
``compute_s`` the sum of its compute spans; ``comm_s`` the sum of the durations (``end_s - start_s``,
waiting at the rendezvous excluded) of its collectives; ``batch_comm_s``, ``model_comm_s``,
``domain_comm_s``, ``redistribute_s`` split ``comm_s`` by category and ``allgather_s``,
``reduce_scatter_s``, ``allreduce_s``, ``halo_s`` by op; ``exposed_comm_s = iteration_s - compute_s``
(the time the critical rank is neither computing nor in its fixed host cost). ``host_overhead_s`` is
the configured per-iteration host cost (optimizer step, data loading; compute spans of phase ``host``),
kept out of ``compute_s``. ``bytes_sent_per_rank`` is the mean over ranks of the
bytes each sent. ``epoch_s = iteration_s * N / B``. In the analytic fast path only rank 0 is timed (all
ranks are alike there), so rank 0 is the critical rank. ``pr``, ``pc`` are the (fc layers') grid,
``conv_pr``, ``conv_pc`` the grid of the convolutions: the same unless a separate ``conv_grid`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: ``run``'s summary fields in their documented order (docs/cli.md); new fields are appended
SUMMARY_FIELDS = ["model", "batch", "procs", "strategy", "pr", "pc", "topology", "network", "compute",
                  "iteration_s", "epoch_s", "compute_s", "comm_s", "exposed_comm_s", "batch_comm_s",
                  "model_comm_s", "domain_comm_s", "allgather_s", "reduce_scatter_s", "allreduce_s", "halo_s",
                  "bytes_sent_per_rank", "memory_per_rank_bytes", "events", "wall_s",
                  "redistribute_s", "conv", "fc", "placement", "collectives", "overlap", "dtype_bytes",
                  "dataset_size", "conv_pr", "conv_pc", "critical_compute_s", "critical_comm_s", "critical_wait_s",
                  "host_overhead_s", "bucket_mb", "precision",
                  # the transformer (4d) fields, empty for the paper's strategies (sim.llm.run)
                  "tp", "cp", "pp", "dp", "sp", "microbatch", "schedule", "virtual_stages", "zero", "recompute",
                  "seq_len", "tp_comm_s", "cp_comm_s", "pp_comm_s", "dp_comm_s", "bubble_s", "tokens_per_s", "mfu",
                  "fits", "device_memory_bytes", "memory_weights_bytes", "memory_gradients_bytes",
                  "memory_optimizer_bytes", "memory_activations_bytes", "memory_inflight_bytes", "memory_format",
                  "pp_split", "cp_comm"]

CATEGORY_FIELDS = {"batch": "batch_comm_s", "model": "model_comm_s", "domain": "domain_comm_s",
                   "redistribute": "redistribute_s"}
OP_FIELDS = {"allgather": "allgather_s", "reduce_scatter": "reduce_scatter_s", "allreduce": "allreduce_s",
             "halo": "halo_s"}

LAYER_FIELDS = ["layer", "kind", "mode", "local_batch", "shard", "fwd_compute_s", "bwd_compute_s", "comm_s",
                "batch_comm_s", "model_comm_s", "domain_comm_s", "redistribute_s", "allgather_s",
                "reduce_scatter_s", "allreduce_s", "halo_s", "bytes_sent"]


def critical_rank(records: pd.DataFrame) -> int:
    """The rank whose last operation ends last (lowest rank on ties); 0 without records."""
    if records.empty:
        return 0
    rank = records["rank"].to_numpy()
    end = records["end_s"].to_numpy(dtype=float)
    ranks, first = np.unique(rank, return_index=True)  # records are sorted by rank
    last = np.maximum.reduceat(end, np.sort(first)) if (np.diff(rank) >= 0).all() else \
        np.array([end[rank == r].max() for r in ranks])
    return int(ranks[int(np.argmax(last))])


def comm_breakdown(records: pd.DataFrame, rank: int) -> dict[str, float]:
    """compute_s, comm_s and the category/op splits of one rank."""
    sel = records["rank"].to_numpy() == rank

    def col(name: str) -> np.ndarray:
        return records[name].to_numpy()[sel]

    dur = col("end_s").astype(float) - col("start_s").astype(float)
    is_comm = col("kind") != "compute"
    compute = ~is_comm & (col("phase") != "host")
    out = {"compute_s": float(dur[compute].sum()), "comm_s": float(dur[is_comm].sum())}
    category, op = col("category"), col("op")
    for cat, name in CATEGORY_FIELDS.items():
        out[name] = float(dur[is_comm & (category == cat)].sum())
    for op_name, name in OP_FIELDS.items():
        out[name] = float(dur[is_comm & (op == op_name)].sum())
    return out


def bytes_sent_per_rank(records: pd.DataFrame, procs: int, fast: bool) -> float:
    """Mean bytes sent per rank (rank 0's records stand for every rank in the fast path)."""
    sent = records["bytes_sent"].fillna(0.0)
    return float(sent.sum()) if fast else float(sent.sum()) / max(procs, 1)


def summarize(records: pd.DataFrame, makespan_s: float, fields: dict[str, Any], procs: int, batch: int,
              dataset_size: int, fast: bool) -> pd.DataFrame:
    """The one-row summary frame (columns :data:`SUMMARY_FIELDS`; ``fields`` fills the config columns)."""
    rank = critical_rank(records)
    row = dict(fields)
    row.update(comm_breakdown(records, rank))
    row["iteration_s"] = float(makespan_s)
    row["epoch_s"] = float(makespan_s) * dataset_size / batch
    row["exposed_comm_s"] = float(makespan_s) - row["compute_s"] - float(row.get("host_overhead_s", 0.0))
    row["bytes_sent_per_rank"] = bytes_sent_per_rank(records, procs, fast)
    return pd.DataFrame([{k: row.get(k) for k in SUMMARY_FIELDS}], columns=SUMMARY_FIELDS)


def _sum_by(frame: pd.DataFrame, column: str) -> dict[tuple[str, str], float]:
    """``{(layer, value of column): seconds}`` of the spans in ``frame``."""
    if frame.empty:
        return {}
    return {key: float(v) for key, v in frame.groupby(["layer", column], sort=False)["dur"].sum().items()}


def layer_table(records: pd.DataFrame, plans: list, procs: int, fast: bool) -> pd.DataFrame:
    """Per layer of the model, in order: mode, compute by phase, communication by category and op; then one
    row per DDP bucket that spans several layers (``kind == "bucket"``)."""
    rank = critical_rank(records)
    mine = records[records["rank"] == rank].assign(dur=lambda f: f["end_s"] - f["start_s"])
    is_comm = mine["kind"] != "compute"
    comp, comm = mine[~is_comm], mine[is_comm]
    phase = _sum_by(comp, "phase")
    cats, ops = _sum_by(comm, "category"), _sum_by(comm, "op")
    total = comm.groupby("layer", sort=False)["dur"].sum().to_dict()
    if fast:
        sent = comm.groupby("layer", sort=False)["bytes_sent"].sum().to_dict()
    else:
        everyone = records[records["kind"] != "compute"]
        sent = (everyone.groupby("layer", sort=False)["bytes_sent"].sum() / max(procs, 1)).to_dict()

    def row(name: str, kind: str, mode: str, local_batch: float, shard: float) -> dict[str, Any]:
        out = {"layer": name, "kind": kind, "mode": mode, "local_batch": local_batch, "shard": shard,
               "fwd_compute_s": phase.get((name, "fwd"), 0.0), "bwd_compute_s": phase.get((name, "bwd"), 0.0),
               "comm_s": float(total.get(name, 0.0))}
        for cat, col in CATEGORY_FIELDS.items():
            out[col] = cats.get((name, cat), 0.0)
        for op, col in OP_FIELDS.items():
            out[col] = ops.get((name, op), 0.0)
        out["bytes_sent"] = float(sent.get(name, 0.0))
        return out

    rows = [row(p.layer.name, p.layer.kind, p.mode, p.local_batch, p.shard) for p in plans]
    known = {p.layer.name for p in plans}
    for name in dict.fromkeys(comm["layer"]):
        if name not in known:  # DDP buckets spanning several layers
            rows.append(row(name, "bucket", "", np.nan, np.nan))
    return pd.DataFrame(rows, columns=LAYER_FIELDS)


def sample_ranks(ranks: list[int], limit: int, critical: int) -> list[int]:
    """At most ``limit`` ranks, evenly spaced, always with the first, the last and the critical one."""
    ranks = sorted(ranks)
    if len(ranks) <= limit:
        return ranks
    idx = np.unique(np.linspace(0, len(ranks) - 1, limit - 1).round().astype(int))
    chosen = {ranks[i] for i in idx} | {critical}
    return sorted(chosen)


#: trace lanes (Chrome trace ``tid``) per rank: compute, communication that blocks the compute stream, and
#: communication on the comm stream (overlapped with compute)
TRACE_LANES = {"compute": (0, "compute"), "blocking": (1, "communication (blocking)"),
               "comm": (2, "communication (overlapped)"), "comm2": (3, "communication (second stream)")}


def _lane(kind: str, stream: str) -> tuple[int, str]:
    if stream in ("comm", "comm2"):
        return TRACE_LANES[stream]
    return TRACE_LANES["blocking" if kind == "collective" else "compute"]


def chrome_trace(records: pd.DataFrame, max_ranks: int = 64, meta: dict | None = None,
                 ranks: list[int] | None = None, label: Any = None) -> dict[str, Any]:
    """A Chrome trace (``chrome://tracing``, Perfetto): one complete span (``ph: "X"``, µs) per operation,
    named by its layer and phase or collective; process = rank (named ``rank R``, or ``label(R)``),
    threads = lanes (:data:`TRACE_LANES`: compute, blocking communication, overlapped communication, a
    second communication stream, each named with ``thread_name`` metadata); at most ``max_ranks`` ranks,
    or the given ``ranks`` (``otherData.ranks_shown`` says which)."""
    all_ranks = sorted(int(r) for r in records["rank"].unique()) if not records.empty else []
    shown = sorted(ranks) if ranks is not None else sample_ranks(all_ranks, max_ranks, critical_rank(records))
    frame = records[records["rank"].isin(shown)]
    events: list[dict[str, Any]] = []
    lanes_used: dict[int, set[int]] = {r: set() for r in shown}
    for row in frame.itertuples(index=False):
        what = row.phase if row.kind == "compute" else f"{row.op} ({row.phase})" if row.phase else row.op
        name = f"{row.layer} {what}".strip()
        args = {"layer": row.layer, "category": row.category, "phase": row.phase}
        if row.kind != "compute":
            args.update({"algorithm": row.algorithm, "group_size": int(row.group_size),
                         "bytes_sent": None if pd.isna(row.bytes_sent) else float(row.bytes_sent),
                         "arrive_us": float(row.arrive_s) * 1e6,
                         "waited_us": float(row.start_s - row.arrive_s) * 1e6})
        tid, _ = _lane(row.kind, row.stream)
        lanes_used[int(row.rank)].add(tid)
        events.append({"name": name, "cat": row.category, "ph": "X", "pid": int(row.rank), "tid": tid,
                       "ts": float(row.start_s) * 1e6, "dur": float(row.end_s - row.start_s) * 1e6, "args": args})
    names = {tid: label for tid, label in TRACE_LANES.values()}
    metadata: list[dict[str, Any]] = []
    for r in shown:
        metadata.append({"ph": "M", "name": "process_name", "pid": r, "tid": 0,
                         "args": {"name": label(r) if label is not None else f"rank {r}"}})
        metadata.append({"ph": "M", "name": "process_sort_index", "pid": r, "tid": 0, "args": {"sort_index": r}})
        for tid in sorted(lanes_used[r]):
            metadata.append({"ph": "M", "name": "thread_name", "pid": r, "tid": tid, "args": {"name": names[tid]}})
            metadata.append({"ph": "M", "name": "thread_sort_index", "pid": r, "tid": tid,
                             "args": {"sort_index": tid}})
    other = dict(meta or {})
    other["ranks_shown"] = shown
    other["ranks_total"] = len(all_ranks)
    return {"traceEvents": metadata + events, "displayTimeUnit": "ms", "otherData": other}


def link_counter_events(meter: Any, busiest: pd.DataFrame) -> list[dict[str, Any]]:
    """Perfetto counter tracks (``ph: "C"``) of the utilisation of the links in ``busiest`` (rows of
    :meth:`sim.network.linkmeter.LinkMeter.table`), in a process of their own named ``links``."""
    pid = -1
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "links (utilisation)"}},
        {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": -1}}]
    series = meter.series([int(k) for k in busiest["link"]])
    for row in busiest.itertuples(index=False):
        name = f"link {row.src}->{row.dst}"
        for t, util in series[int(row.link)]:
            events.append({"ph": "C", "name": name, "pid": pid, "ts": t * 1e6, "args": {"utilisation": util}})
    return events
