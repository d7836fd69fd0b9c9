"""Benchmark: sweep throughput (points per minute) of an analytic sweep of 1,000 points on a local pool.

Three figures, so the sweep machinery's own cost can be told from the simulator's:

* ``inline``: 100 of the points run in this process (``workers=0``) — the simulator's cost per point;
* ``overhead``: all points through the pool with a trivial point function — the runner's own cost
  (expansion, hashing, pickling, CSV writes);
* ``pool``: all points with the real ``sim.simulate`` on ``--workers`` processes (target: > 1,000 points
  per minute on 2 cores).

Usage: ``python bench/bench_sweep.py [--points 1000] [--workers 2] [--format table|json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.grid import all_grids
from sim.sweep import run_sweep


def trivial_point(config: dict[str, Any]) -> dict[str, Any]:
    """A point function that does nothing (module level, so it pickles)."""
    return {"iteration_s": 1.0}


def bench_points(n: int) -> list[dict[str, Any]]:
    """``n`` distinct analytic AlexNet points: every grid of P = 4 ... 2048 and B = 256 ... 32768 with
    convolutions model- or batch-parallel and KNL compute (some points are invalid, as in real sweeps)."""
    out = []
    for batch, procs, conv in itertools.product([256, 512, 1024, 2048, 4096, 8192, 16384, 32768],
                                                [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048], ["model", "batch"]):
        for pr, pc in all_grids(procs):
            out.append({"model": "alexnet", "batch": batch, "procs": procs, "strategy": "integrated",
                        "grid": f"{pr}x{pc}", "conv": conv, "fc": "model", "compute": "paper-knl",
                        "network": "analytic", "topology": "ideal:latency=2us,bandwidth=6GiB/s"})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} distinct points available")
    return out[:n]


def run(points: int, workers: int) -> list[dict[str, Any]]:
    configs = bench_points(points)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("inline", configs[:100], 0, None), ("overhead", configs, workers, trivial_point),
                 ("pool", configs, workers, None)]
        for name, pts, w, fn in cases:
            out = Path(tmp) / f"{name}.csv"
            start = time.perf_counter()
            report = run_sweep(pts, out, workers=w, point_fn=fn)
            wall = time.perf_counter() - start
            rows.append({"case": name, "points": report.points, "workers": w, "ok": report.ok,
                         "failed": report.failed, "wall_s": round(wall, 3),
                         "points_per_min": round(60 * report.points / wall), "ms_per_point": round(1e3 * wall / report.points, 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows = run(args.points, args.workers)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        from sim.cli.output import emit

        emit(rows, "table")


if __name__ == "__main__":
    main()
