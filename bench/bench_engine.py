"""Benchmark of the engine and the ``flow``/``step`` network models on fat-trees: events and wall seconds.

Cases (targets from the project brief, one core):

* ring and Rabenseifner all-reduce of 64 MiB, P = 64, 256, 1024, 4096, ``flow`` (and ``step`` for
  P <= 256) on the smallest three-level k-ary fat-tree with >= P hosts (``fattree``, 6 GiB/s, 2 µs per link):
  target ring P = 1024 < 2 s wall, P = 4096 < 10 s;
* 64 concurrent row-group (batch, ``--along pc``) ring all-gathers of 64 MiB on a 64 x 64 grid, row-major
  placement (each group strided over the whole machine), ``flow``: target < 10 s; and (no target) the same
  grid running Rabenseifner all-reduces, whose phases keep changing partners under contention.

``--stagger`` instead compares ``flow`` with ``step`` on partial overlap: two 8-rank ring collectives
sharing links, the second starting 0 to 2 steps after the first, chunk time equal to the path latency
(latency-dominated) or 100 times it (bandwidth-dominated), equal or mixed sizes, on a star (two ranks on one
host), a 2:1 and a 4:1 leaf/spine; then 240 rings on random halves of a leaf/spine (uneven routes). It
prints the largest relative error of ``flow`` per family and the events of both models.

Per case it prints and writes (CSV) the simulated seconds, SimPy events, the wall seconds to build the
topology and network model (``build_s``) and to simulate (``wall_s``, routing included), and events per
wall second. ``--profile CASE`` runs one case under cProfile and prints the top functions.

Run: ``.venv/bin/python bench/bench_engine.py [--quick] [--out bench/results.csv] [--profile ring-flow-1024]
[--stagger]``.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import time
from pathlib import Path

SIZE = 64 * 2**20
TOPOLOGY = "fattree"
FIELDS = ["case", "op", "algorithm", "procs", "network", "grid", "topology", "sim_s", "events", "build_s",
          "wall_s", "events_per_s", "target_wall_s"]
TARGETS = {("ring", 1024, "flow"): 2.0, ("ring", 4096, "flow"): 10.0}


def cases(quick: bool) -> list[dict]:
    """The benchmark cases; ``quick`` keeps P <= 1024 and drops the 256-rank step ring."""
    out = []
    for p in (64, 256, 1024) if quick else (64, 256, 1024, 4096):
        for alg in ("ring", "rabenseifner"):
            for net in ("flow", "step") if p <= 256 else ("flow",):
                if quick and net == "step" and p == 256 and alg == "ring":
                    continue
                out.append({"case": f"{alg}-{net}-{p}", "op": "allreduce", "algorithm": alg, "procs": p,
                            "network": net, "grid": "", "target_wall_s": TARGETS.get((alg, p, net), "")})
    out.append({"case": "allgather-64x64-pc", "op": "allgather", "algorithm": "ring", "procs": 4096,
                "network": "flow", "grid": "64x64", "target_wall_s": 10.0})
    if not quick:  # the hardest contention case: 2·log2(64) phases of 4096 strided flows re-rated together
        out.append({"case": "rabenseifner-64x64-pc", "op": "allreduce", "algorithm": "rabenseifner", "procs": 4096,
                    "network": "flow", "grid": "64x64", "target_wall_s": ""})
    return out


def run_case(case: dict) -> dict:
    """Build the topology and network model, then time the collective; one result row."""
    from sim.engine import simulate_collective
    from sim.network import make_network
    from topologies import build_topology

    t0 = time.perf_counter()
    graph = build_topology(TOPOLOGY, case["procs"])
    model = make_network(case["network"], graph)
    t1 = time.perf_counter()
    grid = case["grid"] or None
    row = simulate_collective(case["op"], case["algorithm"], case["procs"], SIZE, TOPOLOGY, case["network"],
                              grid=grid, along="pc" if grid else None, model=model)
    wall = time.perf_counter() - t1
    return {**case, "topology": f"fattree:k={graph.graph['fattree']['k']}", "sim_s": row["time_s"], "events": row["events"],
            "build_s": t1 - t0, "wall_s": wall, "events_per_s": row["events"] / wall if wall > 0 else float("nan")}


def _stagger_program(op: str, a: tuple, b: tuple, n_a: float, n_b: float, delay_s: float):
    from sim.program import Collective, Compute, Program

    ca, cb = Collective(op, a, n_a, "ring", key="A"), Collective(op, b, n_b, "ring", key="B")
    return Program(tuple((ca,) if r in a else (Compute(delay_s), cb) for r in range(16)))


def _stagger_topology(name: str):
    """Graph, placement, groups A and B, path latency of each ring hop (every hop has the same)."""
    from topologies.basic import star
    from topologies.fattree import leaf_spine

    if name == "star":  # rank 15 on host 7: both rings cross host 7's two links
        return star(16, bandwidth_Bps=1e9, latency_s=50e-6), list(range(15)) + [7], tuple(range(8)), \
            tuple(range(8, 16)), 100e-6
    oversub = 2 if name == "leafspine-2:1" else 4
    return leaf_spine(16, k=4, oversubscription=oversub, bandwidth_Bps=1e9, latency_s=25e-6), None, \
        (0, 4, 8, 12, 1, 5, 9, 13), (2, 6, 10, 14, 3, 7, 11, 15), 100e-6


def stagger() -> int:
    """Print ``flow`` vs ``step`` on staggered rings sharing links (see the module docstring)."""
    import numpy as np

    from sim.engine import run_program
    from sim.network import make_network
    from topologies.fattree import leaf_spine

    print(f"{'topology':<15}{'op':<11}{'size':<6}{'cases':>6}{'max |err|':>11}{'worst stagger':>15}"
          f"{'flow ev':>9}{'step ev':>9}")
    for name in ("star", "leafspine-2:1", "leafspine-4:1"):
        G, placement, a, b, path = _stagger_topology(name)
        flow, step = make_network("flow", G, placement=placement), make_network("step", G, placement=placement)
        for op in ("allgather", "allreduce"):
            for size, ratio in (("lat", 1.0), ("bw", 100.0)):
                c = ratio * path
                worst, at, ev_f, ev_s, cases = 0.0, 0.0, 0, 0, 0
                for mix in (1.0, 0.5):
                    for frac in np.arange(0.0, 2.0001, 0.125):
                        prog = _stagger_program(op, a, b, 8 * c * 1e9, 8 * c * 1e9 * mix, frac * (c + path))
                        f, s = run_program(prog, flow), run_program(prog, step)
                        err = f.makespan_s / s.makespan_s - 1
                        if abs(err) >= abs(worst):
                            worst, at = err, frac
                        ev_f, ev_s, cases = ev_f + f.events, ev_s + s.events, cases + 1
                print(f"{name:<15}{op:<11}{size:<6}{cases:>6}{worst:>+11.2e}{at:>15.3f}{ev_f:>9}{ev_s:>9}", flush=True)
    rng = np.random.default_rng(1)
    errs: dict[str, list[float]] = {"lat": [], "bw": [], "unstaggered": []}
    for it in range(240):
        G = leaf_spine(16, k=4, oversubscription=(1, 2, 4)[it % 3], bandwidth_Bps=1e9, latency_s=25e-6)
        perm = rng.permutation(16)
        a, b = tuple(int(x) for x in perm[:8]), tuple(int(x) for x in perm[8:])
        ratio = (0.25, 1.0, 100.0)[(it // 3) % 3]
        c = ratio * 100e-6
        frac = float(rng.uniform(0, 2)) if it % 5 else 0.0
        prog = _stagger_program("allgather", a, b, 8 * c * 1e9, 8 * c * 1e9 * (1.0, 0.5, 2.0)[(it // 9) % 3],
                                frac * (c + 100e-6))
        err = run_program(prog, make_network("flow", G)).makespan_s / run_program(prog, make_network("step", G)).makespan_s - 1
        errs["unstaggered" if frac == 0 else "lat" if ratio <= 1 else "bw"].append(err)
    for key, vals in errs.items():
        print(f"random halves of leaf/spine, {key:<12}: {len(vals):>3} cases, flow/step - 1 in "
              f"[{min(vals):+.4f}, {max(vals):+.4f}], mean |err| {np.mean(np.abs(vals)):.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="P <= 1024 and the 64x64 grid only")
    parser.add_argument("--out", default="bench/results.csv", help="CSV to write (default bench/results.csv)")
    parser.add_argument("--profile", default=None, help="profile one case by name (e.g. ring-flow-1024)")
    parser.add_argument("--stagger", action="store_true", help="flow vs step on staggered rings sharing links")
    args = parser.parse_args(argv)
    if args.stagger:
        return stagger()
    todo = cases(args.quick)
    if args.profile:
        match = [c for c in cases(False) if c["case"] == args.profile]
        if not match:
            parser.error(f"unknown case {args.profile!r}; one of {', '.join(c['case'] for c in cases(False))}")
        prof = cProfile.Profile()
        prof.enable()
        row = run_case(match[0])
        prof.disable()
        print(row)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return 0
    rows = []
    print(f"{'case':<22}{'topology':>14}{'sim_s':>12}{'events':>9}{'build_s':>9}{'wall_s':>9}{'ev/s':>10}"
          f"{'target':>8}")
    for case in todo:
        row = run_case(case)
        rows.append(row)
        target = f"<{row['target_wall_s']:g}" if row["target_wall_s"] != "" else ""
        print(f"{row['case']:<22}{row['topology']:>14}{row['sim_s']:>12.6g}{row['events']:>9}{row['build_s']:>9.3f}"
              f"{row['wall_s']:>9.3f}{row['events_per_s']:>10.0f}{target:>8}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in FIELDS})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
