"""Benchmark of the strategies, the analytic fast path and ``dnnsim best``: prints wall seconds and events.

Figures (targets from the project brief):

1. ``dnnsim best`` over every grid of P = 4096 for AlexNet, analytic: target < 2 s;
2. one analytic iteration of AlexNet integrated 64 x 64 (fast path);
3. one VGG-16 iteration, integrated 64 x 64, P = 4096, leaf/spine fat-tree, ``flow``: target < 30 s
   (the program build is timed apart from the engine).

Run: ``.venv/bin/python bench/bench_strategies.py [--skip-flow]``.
"""

from __future__ import annotations

import argparse
import time

from sim.api import load_setup, plan_config, run_planned, simulate
from sim.best import rank_best
from sim.config import make_config


def bench_best() -> None:
    for batch in (2048, 8192):
        cfg = make_config({"model": "alexnet", "batch": batch, "procs": 4096, "strategy": "integrated"})
        start = time.perf_counter()
        table = rank_best(cfg)
        wall = time.perf_counter() - start
        top = table.iloc[0]
        print(f"best alexnet B={batch} P=4096 analytic: {len(table)} candidates in {wall:.3f} s "
              f"(winner {top['strategy']} {top['pr']}x{top['pc']} conv={top['conv']} fc={top['fc']}, "
              f"{top['iteration_s'] * 1e3:.3f} ms/iteration)")


def bench_fast() -> None:
    cfg = {"model": "alexnet", "batch": 4096, "procs": 4096, "strategy": "integrated", "grid": "64x64"}
    start = time.perf_counter()
    r = simulate(cfg)
    print(f"fast path alexnet 64x64 P=4096: {time.perf_counter() - start:.3f} s, "
          f"{int(r.summary['events'].iloc[0])} steps")


def bench_flow() -> None:
    cfg = make_config({"model": "vgg16", "batch": 2048, "procs": 4096, "strategy": "integrated", "grid": "64x64",
                       "topology": "fattree:k=64,levels=2", "network": "flow"})
    start = time.perf_counter()
    setup = load_setup(cfg)
    plan = plan_config(cfg, setup)
    program = plan.program()
    build = time.perf_counter() - start
    ops = sum(len(ops) for ops in program.ops)
    start = time.perf_counter()
    r = run_planned(cfg, setup, plan, "full", with_layers=False)
    wall = time.perf_counter() - start
    s = r.summary.iloc[0]
    print(f"flow vgg16 64x64 P=4096 leaf/spine k=64: setup+plan+program {build:.2f} s ({ops} ops), "
          f"engine+results {wall:.2f} s, {int(s['events'])} events, iteration {s['iteration_s'] * 1e3:.3f} ms "
          f"(analytic {simulate(cfg.model_copy(update={'network': 'analytic'})).iteration_s * 1e3:.3f} ms)")
    start = time.perf_counter()
    r = run_planned(cfg, setup, plan, "full", with_layers=False)  # routes and plans now cached
    warm = time.perf_counter() - start
    for label, series in (("--links", False), ("--links with --out (series for the trace)", True)):
        start = time.perf_counter()
        r = run_planned(cfg, setup, plan, "full", with_layers=False, links=True, link_series=series)
        links_wall = time.perf_counter() - start
        table = r.links()
        print(f"  {label}: engine+results {links_wall:.2f} s against {warm:.2f} s warm without "
              f"({100 * (links_wall / warm - 1):+.0f} %), {len(table)} links carried bytes, busiest "
              f"{table['bytes'].iloc[0] / 2**20:.1f} MiB, table {time.perf_counter() - start - links_wall:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-flow", action="store_true", help="skip the slow flow-model figure")
    args = parser.parse_args()
    bench_best()
    bench_fast()
    if not args.skip_flow:
        bench_flow()


if __name__ == "__main__":
    main()
