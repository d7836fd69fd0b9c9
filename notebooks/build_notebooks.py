"""Generate the tutorial notebooks (``notebooks/*.ipynb``) from the cell lists below, without outputs.

Run ``python notebooks/build_notebooks.py`` after editing a cell here; the ``.ipynb`` files are written
atomically, committed without outputs, and executed by ``tests/test_notebooks.py``. Each notebook runs in
seconds: the analytic network and a few dozen points, except ``03`` which uses the ``flow`` network on
P <= 64.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

def setup(*imports: str) -> str:
    """The first code cell: imports (``imports`` are extra import lines), the repository root, and a
    scratch directory for the files a notebook writes."""
    head = ["%matplotlib inline", "import tempfile", "from pathlib import Path", "", "import pandas as pd", "", *sorted(imports, key=lambda line: (line.startswith("from"), line))]
    return "\n".join(head) + """

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
SCRATCH = Path(tempfile.mkdtemp(prefix="dnnsim-nb-"))
pd.set_option("display.width", 140)"""

PAPER_BASE = """\
# The paper's world (docs/paper-model.md): AlexNet, KNL compute by batch size (its Fig. 4), alpha = 2 us, 1/beta = 6 GiB/s
PAPER = {"model": "alexnet", "compute": "paper-knl", "network": "analytic",
         "topology": "ideal:latency=2us,bandwidth=6GiB/s"}"""

BEST_TABLE = """\
def best_vs_batch(frame):
    \"\"\"Per (B, P): the fastest grid, its epoch time, and its speedup over pure batch (grid 1xP).\"\"\"
    rows = []
    for (b, p), g in frame.groupby(["batch", "procs"]):
        best = g.loc[g["epoch_s"].idxmin()]
        pure = g[(g["pr"] == 1)]["epoch_s"]
        rows.append({"B": b, "P": p, "best grid": f"{best.pr:.0f}x{best.pc:.0f}", "conv": best.conv,
                     "best epoch (s)": best.epoch_s,
                     "pure batch epoch (s)": pure.min() if len(pure) else float("nan"),
                     "speedup": pure.min() / best.epoch_s if len(pure) else float("nan")})
    return pd.DataFrame(rows)"""


FIG10 = """\
paper = {1024: ("64x16 (128x8 equal)", 2.8, 7.8), 2048: ("128x16", 2.4, 4.7), 4096: ("128x32", 2.0, 2.9)}
rows = []
for P, (paper_fc, paper_total, paper_comm) in paper.items():
    base = {**PAPER, "batch": 512, "procs": P, "strategy": "integrated", "conv": "domain", "fc": "model"}
    top = rank_best(make_config({**base, "compute": "none"}), top=1).iloc[0]
    conv_grid, fc_grid = f"{top.conv_pr}x{top.conv_pc}", f"{top.pr}x{top.pc}"
    left = sim.simulate({**base, "grid": conv_grid}, paper_dx=True).summary.iloc[0]
    best = sim.simulate({**base, "grid": fc_grid, "conv_grid": conv_grid}, paper_dx=True).summary.iloc[0]
    rows.append({"P": P, "conv grid": conv_grid, "best fc grid": fc_grid, "paper's fc grid": paper_fc,
                 "total speedup": round(left.iteration_s / best.iteration_s, 2),
                 "total, compute as left": round((left.compute_s + left.comm_s) / (left.compute_s + best.comm_s), 2),
                 "paper total": paper_total,
                 "comm speedup": round(left.comm_s / best.comm_s, 2), "paper comm": paper_comm,
                 "redistribute_s": best.redistribute_s})
pd.DataFrame(rows)"""


def quickstart() -> list:
    return [
        new_markdown_cell("# dnnsim quick start\n\nSimulate one training iteration of AlexNet, read its "
                          "time breakdown, and look at its timeline. Everything here runs in a second."),
        new_code_cell(setup("import sim", "from sim.plots import timeline_figure")),
        new_markdown_cell("## One run\n\n`sim.simulate` takes a dict of run-config keys (the same keys as a "
                          "YAML run config or `dnnsim run` flags) and returns a `Result`. Here: B = 2048 "
                          "images on P = 128 processes, integrated model + batch parallelism on an 8 x 16 "
                          "grid, the paper's KNL compute and its network (alpha = 2 us, 6 GiB/s)."),
        new_code_cell('result = sim.simulate({"model": "alexnet", "batch": 2048, "procs": 128,\n'
                      '                       "strategy": "integrated", "grid": "8x16", "compute": "paper-knl"})\n'
                      'result.summary.T'),
        new_markdown_cell("## Where the time goes\n\nThe summary splits the iteration into computation and "
                          "communication by kind: *model* (all-gathers and all-reduces inside a grid column, "
                          "Pr ranks) and *batch* (the weight-gradient all-reduces along a grid row, Pc ranks). "
                          "The layer table shows which layers pay for it."),
        new_code_cell('s = result.summary.iloc[0]\n'
                      'pd.Series({k: s[k] for k in ["iteration_s", "compute_s", "model_comm_s", "domain_comm_s",\n'
                      '                              "batch_comm_s", "epoch_s"]}, name="seconds")'),
        new_code_cell('result.layers[["layer", "kind", "mode", "fwd_compute_s", "bwd_compute_s", "model_comm_s",\n'
                      '               "batch_comm_s"]]'),
        new_markdown_cell("## Timeline\n\nEach operation of rank 0 as a bar over time, one lane per stream, "
                          "coloured by category. `result.to_trace(path)` writes the same as a Chrome trace to "
                          "open in Perfetto."),
        new_code_cell('result.to_trace(SCRATCH / "trace.json")\n'
                      'timeline_figure(result, max_ranks=1)'),
    ]


def reproduce() -> list:
    return [
        new_markdown_cell("# Reproducing Gholami et al., SPAA 2018\n\nThe paper (summarised in `docs/paper-model.md`) "
                          "times AlexNet on Cori KNL with closed-form alpha-beta costs and compares every "
                          "grid Pr x Pc of P processes. dnnsim's `analytic` network computes exactly those "
                          "formulas; with the paper's measured KNL compute we get its three scenarios. Times "
                          "are per epoch (N = 1.2M images), as in the paper's figures."),
        new_code_cell(setup("import sim", "from sim.best import rank_best", "from sim.config import make_config",
                            "from sim.plots import breakdown_figure, scaling_figure",
                            "from sim.sweep import load_results, run_sweep") + "\n\n" + PAPER_BASE + "\n\n"
                      + BEST_TABLE),
        new_markdown_cell("## Strong scaling: B = 2048, P = 8, 32, 128, 512\n\nPure batch against every "
                          "integrated grid (`grid: all`). The sweep runs on a local process pool and writes "
                          "one CSV row per point. A few grids do not fit AlexNet (Pr above the 96 filters of "
                          "its first convolution): they are recorded as failed rows and left out."),
        new_code_cell('strong = {"base": {**PAPER, "batch": 2048, "grid": "all"},\n'
                      '          "vary": {"procs": [8, 32, 128, 512], "strategy": ["batch", "integrated"]}}\n'
                      'print(run_sweep(strong, SCRATCH / "strong.csv", workers=2))\n'
                      'frame = load_results(SCRATCH / "strong.csv", ok_only=True)\n'
                      'best_vs_batch(frame)'),
        new_code_cell('scaling_figure(frame, y="epoch_s", mode="strong")'),
        new_markdown_cell("The breakdown at P = 512 (the paper's stacked bars): pure batch (1 x 512) is "
                          "dominated by the weight all-reduce of the fully connected layers; splitting them "
                          "over Pr trades it for model communication."),
        new_code_cell('breakdown_figure(frame[(frame["procs"] == 512) & (frame["strategy"] == "integrated")])'),
        new_markdown_cell("## Weak scaling: (B, P) = (512, 128), (2048, 512), (8192, 2048), (32768, 8192)\n\n"
                          "`batch` and `procs` move together: a `zip` group."),
        new_code_cell('weak = {"base": {**PAPER, "grid": "all"}, "vary": {"strategy": ["batch", "integrated"]},\n'
                      '        "zip": [{"batch": [512, 2048, 8192, 32768], "procs": [128, 512, 2048, 8192]}]}\n'
                      'run_sweep(weak, SCRATCH / "weak.csv", workers=2)\n'
                      'wframe = load_results(SCRATCH / "weak.csv", ok_only=True)\n'
                      'best_vs_batch(wframe)'),
        new_code_cell('scaling_figure(wframe, y="epoch_s", mode="weak")'),
        new_markdown_cell("## Beyond the batch limit: B = 512, P = 512 ... 4096\n\nPure batch stops at "
                          "P = B. Splitting convolutions by image rows (domain) and fully connected layers by "
                          "rows of W (model) over Pr lets P exceed B. Grids that do not fit (Pc > B, or Pr "
                          "larger than a layer's image rows) are recorded as error rows, not run. Above P = B there "
                          "is no pure-batch grid to compare with, hence the empty speedups."),
        new_code_cell('beyond = {"base": {**PAPER, "batch": 512, "strategy": "integrated", "conv": "domain",\n'
                      '                   "fc": "model", "grid": "all"},\n'
                      '          "vary": {"procs": [512, 1024, 2048, 4096]}}\n'
                      'print(run_sweep(beyond, SCRATCH / "beyond.csv", workers=2))\n'
                      'bframe = load_results(SCRATCH / "beyond.csv", ok_only=True)\n'
                      'best_vs_batch(bframe)'),
        new_code_cell('breakdown_figure(bframe[bframe["procs"] == 1024])'),
        new_markdown_cell("## Fig. 10(b-d): the fc layers on a grid of their own\n\nThe paper keeps the "
                          "convolutions domain-split over 512 batch groups (2 x 512, 4 x 512, 8 x 512: its "
                          "leftmost bars) and moves the fully connected layers to another grid. `dnnsim best` "
                          "searches both grids (`conv_pr x conv_pc` and `pr x pc`); here with the paper's modes "
                          "(conv domain, fc model) and communication only. The speedups are then those of the "
                          "best fc grid over the leftmost bar, with the KNL compute, next to the paper's labels. "
                          "The communication speedups agree with the labels to about 1% with the paper's "
                          "printed ΔX sizes (`paper_dx=True`). The paper's bars of one P share one compute time; "
                          "with the leftmost bar's compute under both bars the total speedups agree with its "
                          "labels to about 2% (`total, compute as left`), while dnnsim's own per-layer compute "
                          "makes the fc layers on the fc grid cheaper, so its own totals are 3-8% higher "
                          "(docs/paper-model.md)."),
        new_code_cell(FIG10),
    ]


def topology() -> list:
    return [
        new_markdown_cell("# Topology and contention\n\nThe paper ignores the network's shape. Here one "
                          "strategy (AlexNet, B = 256, P = 32, integrated on every grid) runs on five "
                          "networks with the `flow` model, where concurrent messages share links max-min "
                          "fairly: the paper's ideal alpha-beta network, a full-bisection fat-tree, a 4:1 "
                          "oversubscribed leaf/spine, a torus, and multi-GPU nodes (`hier`: 8 GPUs per node on "
                          "NVSwitch, one NIC per GPU, at its default DGX H100 speeds, so compare its best grid "
                          "rather than its absolute times)."),
        new_code_cell(setup("from sim.plots import grid_figure", "from sim.sweep import load_results, run_sweep")),
        new_code_cell('topologies = ["ideal:latency=2us,bandwidth=6GiB/s", "fattree:bandwidth=6GiB/s",\n'
                      '              "fattree:oversubscription=4,bandwidth=6GiB/s", "torus:bandwidth=6GiB/s",\n'
                      '              "hier:gpus_per_node=8"]\n'
                      'sweep = {"base": {"model": "alexnet", "batch": 256, "procs": 32, "strategy": "integrated",\n'
                      '                  "grid": "all", "compute": "paper-knl", "network": "flow"},\n'
                      '         "vary": {"topology": topologies}}\n'
                      'print(run_sweep(sweep, SCRATCH / "topo.csv", workers=2))\n'
                      'frame = load_results(SCRATCH / "topo.csv", ok_only=True)\n'
                      'frame.pivot_table(index=["pr", "pc"], columns="topology", values="iteration_s")'),
        new_markdown_cell("## The best grid per network\n\nThe heat map shows iteration time per grid (rows) "
                          "and network (columns); the best grid of each network is boxed. Oversubscription "
                          "penalizes the grids whose all-reduces cross the spine."),
        new_code_cell('grid_figure(frame, x="topology")'),
        new_markdown_cell("The winning grid of each network and how its communication splits between the "
                          "model (grid column) and batch (grid row) collectives."),
        new_code_cell('best = frame.loc[frame.groupby("topology")["iteration_s"].idxmin(),\n'
                      '                 ["topology", "pr", "pc", "iteration_s", "batch_comm_s", "model_comm_s"]]\n'
                      'best'),
    ]


def sweeps() -> list:
    return [
        new_markdown_cell("# Sweeps at scale\n\nA sweep file names a `base` run config, `vary` lists "
                          "(their cartesian product) and `zip` groups (lists that move together). "
                          "`run_sweep` runs its points on a process pool (or a Dask cluster) and streams one "
                          "CSV row per point; `resume=True` picks up where an interrupted sweep stopped."),
        new_code_cell(setup("from sim.plots import grid_figure, scaling_figure",
                            "from sim.sweep import SweepInterrupted, expand, load_results, load_sweep, run_sweep")),
        new_code_cell('spec = load_sweep(ROOT / "examples" / "sweeps" / "quick.yaml")\n'
                      'points = expand(spec)\n'
                      'print(len(points), "points; first:", points[0].point_id, points[0].config["grid"])'),
        new_markdown_cell("## Run, stop, resume\n\nWe stop the sweep after 10 rows (as Ctrl-C would), then "
                          "resume it: the finished points are skipped, none is written twice."),
        new_code_cell('out = SCRATCH / "quick.csv"\n'
                      'seen = []\n\n'
                      'def stop_after_10(row):\n'
                      '    seen.append(row)\n'
                      '    if len(seen) == 10:\n'
                      '        raise KeyboardInterrupt\n\n'
                      'try:\n'
                      '    run_sweep(spec, out, workers=2, on_row=stop_after_10)\n'
                      'except SweepInterrupted as stop:\n'
                      '    print("stopped:", stop.report.ok + stop.report.failed, "rows written")\n'
                      'report = run_sweep(spec, out, workers=2, resume=True)\n'
                      'print(report)\n'
                      'frame = load_results(out)\n'
                      'print(len(frame), "rows,", frame["point_id"].nunique(), "distinct points")'),
        new_markdown_cell("## Analyse with pandas\n\nThe best grid per (B, P), and the speedup of the "
                          "best grid over pure batch (1 x P)."),
        new_code_cell('ok = frame[frame["status"] == "ok"]\n'
                      'best = ok.loc[ok.groupby(["batch", "procs"])["iteration_s"].idxmin()]\n'
                      'pure = ok[ok["pr"] == 1].set_index(["batch", "procs"])["iteration_s"]\n'
                      'best = best.set_index(["batch", "procs"])[["pr", "pc", "iteration_s"]]\n'
                      'best["speedup_vs_batch"] = pure / best["iteration_s"]\n'
                      'best'),
        new_code_cell('grid_figure(ok, x="batch")'),
        new_code_cell('scaling_figure(ok[ok["batch"] == 512], mode="strong")'),
        new_markdown_cell("## On a Dask cluster\n\nThe same call with `scheduler=` runs on Dask: an address "
                          "such as `tcp://host:8786` (see `docs/distributed.md`), or a `Client`. Here a small "
                          "in-process cluster; the rows are the same as the process pool's."),
        new_code_cell('from distributed import Client, LocalCluster\n\n'
                      'with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,\n'
                      '                  dashboard_address=None) as cluster, Client(cluster) as client:\n'
                      '    print(run_sweep(spec, SCRATCH / "dask.csv", scheduler=client))\n'
                      'dask_frame = load_results(SCRATCH / "dask.csv").set_index("point_id").sort_index()\n'
                      'pool_frame = frame.set_index("point_id").sort_index()\n'
                      'cols = ["iteration_s", "compute_s", "batch_comm_s", "model_comm_s"]\n'
                      'print("same values:", dask_frame[cols].equals(pool_frame[cols]))'),
    ]


NOTEBOOKS = {
    "01-quickstart": quickstart,
    "02-reproduce-the-paper": reproduce,
    "03-topology-and-contention": topology,
    "04-sweeps-at-scale": sweeps,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` (a key of :data:`NOTEBOOKS`), without outputs."""
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding changes nothing
    nbformat.validate(nb)
    return nb


def write(name: str, directory: Path = HERE) -> Path:
    """Write ``directory/name.ipynb`` atomically; returns its path."""
    path = directory / f"{name}.ipynb"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            nbformat.write(build(name), fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(NOTEBOOKS)
    for name in names:
        print(write(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
