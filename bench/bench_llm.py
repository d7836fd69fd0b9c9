"""Benchmark of transformer (4d) runs and ``dnnsim best`` over the 4-D grid: prints wall seconds and events.

Cases (llama3-405b, seq 8192, dgx-h100, flow, nccl, roofline:h100, bf16):

1. ``simulate`` of TP 8, PP 16, CP 1, DP the rest at 2,048 GPUs (batch 256) and 16,384 GPUs (batch 2048);
2. ``best`` over every 4-D layout at both sizes (target at 16,384 GPUs: under 60 s on one core, re-timing
   included), re-timing the top ``--top`` (default 5) on flow;
3. ``--cp``: ``simulate`` of Llama 3's long-context layout at 2,048 GPUs (seq 131,072, TP 8, CP 16, PP 16 ×
   V 8, pp_split embedding+loss, ZeRO 2, batch 16) with each ``cp_comm`` the model allows (p2p, allgather).

Run: ``python bench/bench_llm.py [--only 2048|16384] [--top16k N] [--cp]``. No timing asserts.
"""

from __future__ import annotations

import argparse
import time

from sim.api import simulate
from sim.best import rank_best
from sim.config import make_config

BASE = {"model": "llama3-405b", "topology": "dgx-h100", "network": "flow", "compute": "roofline:h100",
        "precision": "bf16", "collectives": "nccl"}


def bench_simulate(procs: int, batch: int) -> None:
    cfg = {**BASE, "procs": procs, "batch": batch, "tp": 8, "pp": 16, "cp": 1}
    start = time.perf_counter()
    s = simulate(cfg).summary.iloc[0]
    print(f"simulate llama3-405b P={procs} B={batch} tp8 pp16 dp{s['dp']}: {time.perf_counter() - start:.2f} s, "
          f"{int(s['events'])} events, iteration {s['iteration_s']:.3f} s, mfu {s['mfu']:.3f}", flush=True)


def bench_best(procs: int, batch: int, top: int) -> None:
    cfg = make_config({**BASE, "procs": procs, "batch": batch})
    start = time.perf_counter()
    table = rank_best(cfg, top=top, exact_up_to=0)
    wall = time.perf_counter() - start
    w = table.iloc[0]
    print(f"best llama3-405b P={procs} B={batch} (top {top} re-timed on flow): {wall:.2f} s, winner tp{w['tp']} "
          f"cp{w['cp']} pp{w['pp']} dp{w['dp']} mb{w['microbatch']} {w['schedule']} v{w['virtual_stages']} "
          f"zero{w['zero']} {w['recompute']} sp={w['sp']}: screen {w['screen_iteration_s']:.3f} s, flow "
          f"{w['iteration_s']:.3f} s, {int(w['events'])} events, mfu {w['mfu']:.3f}", flush=True)


def bench_cp() -> None:
    cfg = {**BASE, "procs": 2048, "batch": 16, "seq_len": 131072, "tp": 8, "cp": 16, "pp": 16, "dp": 1,
           "schedule": "interleaved", "virtual_stages": 8, "pp_split": "embedding+loss", "zero": 2}
    for cp_comm in ("p2p", "allgather"):
        start = time.perf_counter()
        s = simulate({**cfg, "cp_comm": cp_comm}).summary.iloc[0]
        print(f"simulate llama3-405b P=2048 B=16 seq 131072 tp8 cp16 pp16 v8 cp_comm={cp_comm}: "
              f"{time.perf_counter() - start:.2f} s, {int(s['events'])} events, iteration {s['iteration_s']:.3f} s, "
              f"cp_comm_s {s['cp_comm_s']:.3f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=("2048", "16384"))
    ap.add_argument("--top2k", type=int, default=5)
    ap.add_argument("--top16k", type=int, default=5)
    ap.add_argument("--cp", action="store_true", help="only the context-parallel cases (3.)")
    args = ap.parse_args()
    if args.cp:
        bench_cp()
        return
    for procs, batch, top in ((2048, 256, args.top2k), (16384, 2048, args.top16k)):
        if args.only and int(args.only) != procs:
            continue
        bench_simulate(procs, batch)
        bench_best(procs, batch, top)


if __name__ == "__main__":
    main()
