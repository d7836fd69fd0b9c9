"""Generate the tutorial notebooks (``notebooks/*.ipynb``) from the cell lists below, without outputs.

Run ``python notebooks/build_notebooks.py`` after editing a cell here; the ``.ipynb`` files are written
atomically, committed without outputs, and executed by ``tests/test_notebooks.py``. Each notebook runs in
seconds: the analytic network and a few dozen points, except ``03`` and ``05`` which use the ``flow``
network on P <= 64.
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


def bars(base, conv_grid, fc_grid):
    \"\"\"The leftmost bar (everything on the conv grid) and the bar with the fc layers on their own grid.\"\"\"
    left = sim.simulate({**base, "grid": conv_grid}, paper_dx=True).summary.iloc[0]
    best = sim.simulate({**base, "grid": fc_grid, "conv_grid": conv_grid}, paper_dx=True).summary.iloc[0]
    return left, best


rows = []
for P, (paper_fc, paper_total, paper_comm) in paper.items():
    base = {**PAPER, "batch": 512, "procs": P, "strategy": "integrated", "conv": "domain", "fc": "model"}
    top = rank_best(make_config({**base, "compute": "none"}), top=1).iloc[0]
    conv_grid, fc_grid = f"{top.conv_pr}x{top.conv_pc}", f"{top.pr}x{top.pc}"
    left, best = bars(base, conv_grid, fc_grid)
    # the paper prints 1/beta = 6 GB/s; dnnsim's default reads it as 6 GiB/s, here also as 6e9 B/s
    left_dec, best_dec = bars({**base, "topology": "ideal:latency=2us,bandwidth=6GB/s"}, conv_grid, fc_grid)
    rows.append({"P": P, "conv grid": conv_grid, "best fc grid": fc_grid, "paper's fc grid": paper_fc,
                 "total speedup": round(left.iteration_s / best.iteration_s, 2),
                 "total, compute as left": round((left.compute_s + left.comm_s) / (left.compute_s + best.comm_s), 2),
                 "paper total": paper_total,
                 "comm speedup": round(left.comm_s / best.comm_s, 2),
                 "comm at 6e9 B/s": round(left_dec.comm_s / best_dec.comm_s, 2), "paper comm": paper_comm,
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
                          "printed ΔX sizes (`paper_dx=True`), and to the printed digit when the paper's "
                          "1/beta = 6 GB/s is read as 6e9 B/s rather than dnnsim's default 6 GiB/s "
                          "(`comm at 6e9 B/s`). The paper's bars of one P share one compute time; "
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


H100_BASE = """\
# DGX H100 nodes (8 GPUs on NVSwitch, one 400 Gbit/s NIC per GPU), the H100's bf16 roofline, NCCL's algorithms
H100 = {"topology": "dgx-h100", "network": "flow", "compute": "roofline:h100", "precision": "bf16",
        "collectives": "nccl"}
GiB = 2**30"""

FLAT_PROFILE = """\
LLAMA70 = get_model("llama3-70b")


def flat_profile(path, head_blocks=0.0):
    \"\"\"A profile CSV of Llama 3 70B in which every layer of a block takes 1 ms forward and 2 ms backward per
    sequence, the embedding and the final norm nothing, and the output layer `head_blocks` blocks' worth.\"\"\"
    block_layers = sum(layer.name.startswith("h0.") for layer in LLAMA70.layers)  # 13
    rows = []
    for layer in LLAMA70.layers:
        fwd = 1e-3 if layer.name.startswith("h") else 0.0
        if layer.name == "lm_head":
            fwd = head_blocks * block_layers * 1e-3
        rows.append({"layer": layer.name, "batch": 1, "fwd_s": fwd, "bwd_s": 2 * fwd})
    pd.DataFrame(rows).to_csv(path, index=False)
    return f"profile:{path}"


# a network on which the activations' sends take a fraction of a nanosecond, so that the stages' compute
# is all there is
IDEAL = {"topology": "ideal:latency=0s,bandwidth=1e18B/s", "network": "analytic", "precision": "bf16"}


def bubble_row(config, m, v=1):
    \"\"\"Run `config` with m micro-batches; its bubble share beside the uniform-stage formula.\"\"\"
    schedule = "interleaved" if v > 1 else "1f1b"
    result = sim.simulate({**config, "batch": m, "microbatch": 1, "schedule": schedule, "virtual_stages": v})
    s = result.summary.iloc[0]
    return result, {"schedule": schedule, "v": v, "m": m, "iteration_s": s.iteration_s, "bubble_s": s.bubble_s,
                    "measured": s.bubble_s / s.iteration_s, "formula": bubble_fraction(schedule, s.pp, m, v)}"""


def slowest_stage_cell() -> str:
    return '''\
def slowest_stage(result, m):
    """Iteration and stage 0's bubble share when the last stage sets the pace: its m passes, plus one pass of
    every other stage to fill the pipeline and drain it; times per micro-batch from the per-chunk table."""
    chunks = result.layers[result.layers["kind"] == "chunk"]
    t = (chunks["fwd_compute_s"] + chunks["bwd_compute_s"] + chunks["tp_comm_s"]) / m
    iteration = t.iloc[:-1].sum() + m * t.iloc[-1]
    return iteration, 1 - m * t.iloc[0] / iteration


rows = []
for m in (4, 8, 16, 32):
    result, row = bubble_row({**IDEAL, "model": "llama3-70b", "procs": 4, "pp": 4,
                              "compute": flat_profile(SCRATCH / "head.csv", head_blocks=2)}, m)
    row["slowest-stage iteration_s"], row["slowest stage"] = slowest_stage(result, m)
    rows.append(row)
pd.DataFrame(rows)'''


def transformers() -> list:
    return [
        new_markdown_cell(
            "# Transformers on the TP × CP × PP × DP grid\n\n"
            "dnnsim trains a transformer as Megatron-LM does: tensor parallelism (TP) splits every block's "
            "matrices over a group of GPUs, context parallelism (CP) splits the sequence (ring attention), "
            "pipeline parallelism (PP) cuts the layers into stages that pass activations along, and data "
            "parallelism (DP) replicates the rest and reduces the gradients, optionally with ZeRO. This "
            "notebook runs Llama 3 70B on DGX H100 nodes: one iteration and its numbers, the pipeline bubble "
            "against its formula, the memory each rank needs, where the time goes for several layouts of "
            "the same 64 GPUs, and the layouts `dnnsim best` finds. `docs/transformers.md` describes the "
            "model; everything here runs in seconds."),
        new_code_cell(setup("import sim",
                            "from sim.llm.memory import device_memory_bytes, fits, max_memory_breakdown",
                            "from sim.llm.parallel import Parallel", "from sim.llm.schedule import bubble_fraction",
                            "from workloads.zoo import get_model, get_transformer_config") + "\n\n" + H100_BASE),
        new_markdown_cell(
            "## One iteration\n\n"
            "64 GPUs (8 DGX H100 nodes): TP 8 inside each node, 2 pipeline stages of 40 blocks, 4 data-parallel "
            "replicas; a global batch of 64 sequences of 8,192 tokens, one sequence per micro-batch, so each "
            "replica runs m = 64 / 4 = 16 micro-batches through the 1F1B schedule. ZeRO 1 shards the optimizer "
            "state over the replicas, selective recomputation repeats the attention core in the backward pass. "
            "Any 4-D key (`tp`, `cp`, `pp`, `dp`) selects this strategy; `dnnsim run --tp 8 --pp 2 --dp 4 ...` "
            "is the same run from the shell."),
        new_code_cell('run = {**H100, "model": "llama3-70b", "procs": 64, "tp": 8, "pp": 2, "dp": 4, "batch": 64,\n'
                      '       "zero": 1, "recompute": "selective"}\n'
                      'result = sim.simulate(run)\n'
                      's = result.summary.iloc[0]\n'
                      'pd.Series({k: s[k] for k in ["iteration_s", "compute_s", "tp_comm_s", "cp_comm_s", "pp_comm_s",\n'
                      '                             "dp_comm_s", "bubble_s", "tokens_per_s", "mfu"]}, name="llama3-70b")'),
        new_markdown_cell(
            "The times are those of the *critical rank* (the one that finishes last), here a rank of the first "
            "stage:\n\n"
            "* `compute_s`: its matrix products, attention and the rest, by the H100 roofline at bf16, "
            "including the recomputed attention;\n"
            "* `tp_comm_s`: the tensor-parallel collectives inside its node (with sequence parallelism, an "
            "all-gather and a reduce-scatter around each attention and MLP, forward and backward);\n"
            "* `pp_comm_s`: the activations and gradients crossing the stage boundary while they move;\n"
            "* `dp_comm_s`: the gradient reduce-scatter and parameter all-gather of ZeRO 1 over the 4 replicas;\n"
            "* `bubble_s`: the time it waits for the other stage (the pipeline bubble);\n"
            "* `tokens_per_s` = batch × seq_len / iteration_s, and `mfu`: the model FLOPs per token "
            "(6N + 12·L·H·Q·T, PaLM's definition, no recomputation counted) times tokens/s over 64 × the "
            "H100's 989.5 TFLOP/s.\n\n"
            "These parts need not add up to `iteration_s` exactly: the data-parallel reduction runs on a "
            "stream of its own. `memory_*` are the bytes per rank of the stage that needs the most, and "
            "`fits` compares their total with the H100's 80 GiB:"),
        new_code_cell('memory = pd.Series({k.removeprefix("memory_").removesuffix("_bytes"): s[k] / GiB\n'
                      '                    for k in ["memory_weights_bytes", "memory_gradients_bytes",\n'
                      '                              "memory_optimizer_bytes", "memory_activations_bytes",\n'
                      '                              "memory_inflight_bytes", "memory_per_rank_bytes"]}, name="GiB")\n'
                      'print(memory.to_string())\n'
                      'print("fits on an H100:", bool(s.fits))'),
        new_markdown_cell(
            "The per-layer table (`layers.csv` of a 4-D run) has one row per layer — its stage, chunk, the "
            "share of its work one rank does and its compute over the iteration — and then one row per model "
            "chunk (`kind` chunk): its stage, blocks, the parameters one rank holds (the first chunk has the "
            "vocabulary-parallel embedding, the last the final norm and the output layer), one rank's compute "
            "over the iteration, and its communication by kind."),
        new_code_cell('chunks = result.layers[result.layers["kind"] == "chunk"]\n'
                      'chunks[["layer", "stage", "blocks", "params_per_rank", "fwd_compute_s", "bwd_compute_s",\n'
                      '        "tp_comm_s", "pp_comm_s", "dp_comm_s"]].astype({"params_per_rank": "int64"})'),
        new_markdown_cell(
            "## The pipeline bubble\n\n"
            "With p stages and m micro-batches, a stage of 1F1B (or GPipe) idles while the pipeline fills and "
            "drains: on uniform stages and a free network, a share (p − 1)/(m + p − 1) of the iteration. "
            "Megatron-LM's interleaved schedule gives each stage v chunks of the model and cuts the fill by v: "
            "(p − 1)/(v·m + p − 1) (Narayanan et al. 2021, Sec. 2.2). `bubble_s` is the time the critical rank "
            "waits at its pipeline receives.\n\n"
            "A real model's stages are not uniform: the first holds the embedding and the last the final norm "
            "and the output layer. To see the schedule alone we make them uniform: a compute profile "
            "(`compute: profile:FILE`, a CSV of per-layer times) in which every layer of a block takes 1 ms "
            "forward and 2 ms backward and the embedding, final norm and output layer nothing, on 4 stages "
            "without TP over an ideal network so fast that the sends are free."),
        new_code_cell(FLAT_PROFILE + "\n\n" +
                      'flat = {**IDEAL, "model": "llama3-70b", "procs": 4, "pp": 4, "compute": flat_profile(SCRATCH / "flat.csv")}\n'
                      'pd.DataFrame([bubble_row(flat, m, v)[1] for v in (1, 2) for m in (4, 8, 16, 32)])'),
        new_markdown_cell(
            "Measured and formula agree to the printed digits (the sends' fraction of a nanosecond is what "
            "is left), and the iteration is (m + p − 1) passes of a stage (20 blocks × 13 layers × 3 ms "
            "= 0.78 s) for 1F1B, (m + (p − 1)/v) interleaved. Interleaving with v = 2 halves the bubble "
            "time (2.34 s → 1.17 s), at the price of v times more pipeline sends.\n\n"
            "### A heavier last stage\n\n"
            "Now give the output layer the cost of two blocks. The last stage then sets the pace: it runs its "
            "m passes back to back, the others wait for it, and the iteration is one pass of each of the "
            "other stages (fill and drain) plus m passes of the last. The first stage, which finishes last, "
            "idles for everything but its own m passes. That *slowest-stage* count, from the per-chunk "
            "table, is exact here; the uniform formula underestimates the bubble, and more so as m grows, "
            "since every micro-batch adds the stages' difference."),
        new_code_cell(slowest_stage_cell()),
        new_markdown_cell(
            "### The real model\n\n"
            "With the H100 roofline the stages differ in compute and in TP communication: the output layer "
            "(8,192 × 128,256) costs more than a block, and the vocabulary-parallel cross-entropy adds "
            "collectives. Llama 3 70B with TP 8 and PP 4 on 32 GPUs, `analytic` network (each collective "
            "at its closed-form cost):"),
        new_code_cell('real = {**H100, "network": "analytic", "model": "llama3-70b", "procs": 32, "tp": 8, "pp": 4}\n'
                      'rows = []\n'
                      'for m in (4, 8, 16, 32):\n'
                      '    result, row = bubble_row(real, m)\n'
                      '    row["slowest-stage iteration_s"], row["slowest stage"] = slowest_stage(result, m)\n'
                      '    rows.append(row)\n'
                      'print(pd.DataFrame(rows).to_string())\n'
                      'chunks = result.layers[result.layers["kind"] == "chunk"]\n'
                      'chunks[["layer", "stage", "blocks", "fwd_compute_s", "bwd_compute_s", "tp_comm_s", "pp_comm_s"]]'),
        new_markdown_cell(
            "The measured bubble is above the uniform formula at every m, and the slowest-stage count, "
            "with each chunk's compute and TP time per micro-batch from the table, accounts for nearly all "
            "of the difference: the last chunk's output layer and loss make its passes about 3.5% longer, "
            "and every micro-batch adds that to the first stage's wait. The count leaves out the pipeline "
            "sends (each takes about half a millisecond here), so it "
            "underestimates the iteration by a few milliseconds, and it books the first stage's own sends "
            "as waiting, so its bubble share is slightly higher than the measured one.\n\n"
            "## Memory per rank\n\n"
            "What one rank holds (Rajbhandari et al. 2020 for the model states, Korthikanti et al. 2022 for "
            "the activations): 2Ψ bytes of bf16 weights, 2Ψ of gradients and 12Ψ of Adam state (fp32 master "
            "weights, momentum, variance) for the Ψ parameters of its stage; ZeRO 1 shards the optimizer "
            "state over the DP replicas, ZeRO 2 also the gradients, ZeRO 3 also the weights. Activations: one "
            "micro-batch through the stage; *in flight*: the other micro-batches the 1F1B schedule keeps "
            "(pp − stage of them on a stage, so 2 on the first of 2 stages). Selective recomputation drops "
            "the attention scores (the s × s term), full recomputation keeps only each block's input. The "
            "layout of the first run (TP 8, PP 2, DP 4), for every recomputation and ZeRO stage, heaviest "
            "stage:"),
        new_code_cell('cfg = get_transformer_config("llama3-70b")\n'
                      'h100 = device_memory_bytes("h100")\n'
                      'rows = {}\n'
                      'for recompute in ("none", "selective", "full"):\n'
                      '    for zero in (0, 1, 2, 3):\n'
                      '        par = Parallel(tp=8, pp=2, dp=4, zero=zero, recompute=recompute)\n'
                      '        worst = max_memory_breakdown(cfg, par, precision="bf16", batch=64, dropout=False)\n'
                      '        rows[f"{recompute} / ZeRO {zero}"] = {\n'
                      '            "stage": worst.stage, "weights": worst.weights_bytes / GiB,\n'
                      '            "gradients": worst.gradients_bytes / GiB, "optimizer": worst.optimizer_bytes / GiB,\n'
                      '            "activations": worst.activations_bytes / GiB, "in flight": worst.inflight_bytes / GiB,\n'
                      '            "total": worst.total_bytes / GiB, "fits": fits(worst, h100)}\n'
                      'mem = pd.DataFrame.from_dict(rows, orient="index")\n'
                      'print(mem.to_string())\n'
                      'print("the run above (selective, ZeRO 1) reported the same total:",\n'
                      '      s.memory_per_rank_bytes / GiB == mem.loc["selective / ZeRO 1", "total"])'),
        new_code_cell('parts = ["weights", "gradients", "optimizer", "activations", "in flight"]\n'
                      'ax = mem[parts].plot.bar(stacked=True, figsize=(10, 4.5), width=0.75)\n'
                      'ax.axhline(h100 / GiB, color="black", linestyle="--", linewidth=1)\n'
                      'ax.text(11.4, h100 / GiB + 3, "H100: 80 GiB", ha="right")\n'
                      'ax.set_ylabel("GiB per rank (heaviest stage)")\n'
                      'ax.set_title("Llama 3 70B, TP 8 × PP 2 × DP 4, 8,192 tokens, 1F1B")\n'
                      'ax.set_xticks(range(len(mem)), mem.index, rotation=45, ha="right")\n'
                      'ax.figure.tight_layout()'),
        new_markdown_cell(
            "Without recomputation the attention scores of 8,192 × 8,192 tokens per head, kept for each of "
            "the 40 blocks of the two micro-batches in flight, do not fit whatever ZeRO does (fused attention "
            "kernels do not store them, which is what selective recomputation models). With selective "
            "recomputation the model states decide: ZeRO 0's 16 bytes per parameter do not fit, ZeRO 1's "
            "2 + 2 + 12/4 do. Full recomputation fits even without ZeRO, and pays with a second forward "
            "pass.\n\n"
            "## Where the time goes\n\n"
            "The same 64 GPUs, the same batch of 64 sequences, ZeRO 1 and selective recomputation, on the "
            "`flow` network (links shared max-min fairly) for several layouts TP × CP × PP × DP:"),
        new_code_cell('layouts = {"8x1x1x8": {"tp": 8, "dp": 8}, "8x1x2x4": {"tp": 8, "pp": 2, "dp": 4},\n'
                      '           "8x1x4x2": {"tp": 8, "pp": 4, "dp": 2},\n'
                      '           "8x1x4x2/v2": {"tp": 8, "pp": 4, "dp": 2, "schedule": "interleaved", "virtual_stages": 2},\n'
                      '           "4x1x4x4": {"tp": 4, "pp": 4, "dp": 4}, "8x2x2x2": {"tp": 8, "cp": 2, "pp": 2, "dp": 2}}\n'
                      'rows = {}\n'
                      'for name, layout in layouts.items():\n'
                      '    s = sim.simulate({**H100, "model": "llama3-70b", "procs": 64, "batch": 64, "zero": 1,\n'
                      '                      "recompute": "selective", **layout}).summary.iloc[0]\n'
                      '    rows[name] = {k: s[k] for k in ["iteration_s", "compute_s", "tp_comm_s", "cp_comm_s", "pp_comm_s",\n'
                      '                                    "dp_comm_s", "bubble_s", "tokens_per_s", "mfu"]}\n'
                      '    rows[name]["GiB"] = s.memory_per_rank_bytes / GiB\n'
                      'split = pd.DataFrame(rows).T\n'
                      'split.index.name = "TPxCPxPPxDP"\n'
                      'print(split.to_string())'),
        new_code_cell('kinds = ["compute_s", "tp_comm_s", "cp_comm_s", "pp_comm_s", "dp_comm_s", "bubble_s"]\n'
                      'ax = split[kinds].plot.barh(stacked=True, figsize=(10, 3.8))\n'
                      'ax.scatter(split["iteration_s"], range(len(split)), marker="|", s=400, color="black",\n'
                      '           label="iteration_s", zorder=3)\n'
                      'ends = split[kinds].sum(axis=1).clip(lower=split["iteration_s"])\n'
                      'for y, (end, mfu) in enumerate(zip(ends, split["mfu"], strict=True)):\n'
                      '    ax.text(end + 0.1, y, f"MFU {mfu:.1%}", va="center")\n'
                      'ax.set_xlabel("seconds of the critical rank")\n'
                      'ax.set_xlim(0, split[kinds].sum(axis=1).max() * 1.2)\n'
                      'ax.invert_yaxis()\n'
                      'ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))\n'
                      'ax.figure.tight_layout()'),
        new_markdown_cell(
            "The bars are the critical rank's time by kind; the black tick is the iteration (the data-parallel "
            "reduction runs on its own stream, so the bars can reach past it). Tensor parallelism over a "
            "whole node costs about a fifth of the iteration whatever the other dimensions do: with "
            "sequence parallelism each block makes four collectives of its activations forward and four "
            "backward inside the node. More pipeline stages shrink the data-parallel share (fewer "
            "replicas, fewer parameters per rank) and grow the bubble (fewer micro-batches per replica); "
            "interleaving wins part of it back, and the sends themselves are cheap. TP 4 with PP 4 (the same "
            "16-way split of the weights as TP 8 with PP 2) more than halves the tensor-parallel time, and "
            "its compute is faster too (the roofline's efficiency grows with the work of each call, and a "
            "TP-4 rank's matrix products are twice as large), but 1F1B keeps 4 micro-batches in flight on "
            "its first stage instead of 2: the best MFU here, with the most memory. Context parallelism "
            "adds its ring exchange, and its half-length sequences make smaller calls. MFU sums it up: "
            "model FLOPs per second over the peak of the 64 GPUs.\n\n"
            "## Long sequences: how context parallelism moves keys and values\n\n"
            "At 32,768 tokens attention dominates, and context parallelism earns its place. How its ranks "
            "exchange keys and values is a choice (`cp_comm`, Megatron-LM's `--cp-comm-type`): `p2p` ring "
            "attention passes K/V blocks round the CP ring beside the attention compute; `allgather` gathers "
            "them before it, in line (Llama 3's choice); `a2a` (DeepSpeed-Ulysses) turns sequence-split Q, K, "
            "V into head-split ones with all-to-alls and back for the output, also in line. Llama 2 7B (32 "
            "query and 32 key/value heads) on 32 GPUs, TP 4 × CP 8, 8 sequences, selective recomputation "
            "(which repeats the attention core with its exchange); `cp_GB` is what one rank sends for "
            "context parallelism in the iteration:"),
        new_code_cell('rows = {}\n'
                      'for cp_comm in ("p2p", "allgather", "a2a"):\n'
                      '    r = sim.simulate({**H100, "model": "llama2-7b", "seq_len": 32768, "procs": 32, "tp": 4, "cp": 8,\n'
                      '                      "batch": 8, "recompute": "selective", "cp_comm": cp_comm})\n'
                      '    s, rec = r.summary.iloc[0], r.records\n'
                      '    mine = rec[(rec["rank"] == 0) & (rec["category"] == "domain")]\n'
                      '    rows[cp_comm] = {"iteration_s": s.iteration_s, "compute_s": s.compute_s, "cp_comm_s": s.cp_comm_s,\n'
                      '                     "cp_GB": mine["bytes_sent"].sum() / 1e9, "mfu": s.mfu}\n'
                      'cp_split = pd.DataFrame(rows).T\n'
                      'cp_split.index.name = "cp_comm"\n'
                      'print(cp_split.to_string())'),
        new_markdown_cell(
            "The ring and the all-gather send the same bytes — every rank passes on the other seven K/V "
            "blocks forward, again for the recomputation and for the backward, where the dK/dV partial "
            "sums also go back — but the ring hides part of its time under the attention and the all-gather "
            "none. Ulysses sends (cp − 1)/cp of its own Q, K, V and output, forward, for the recomputation "
            "and backward: without grouped-query attention (as many key/value heads as query heads) that is "
            "3/16 of the ring's bytes at CP 8, and the fastest of the three here. With Llama 3's eight query "
            "heads per key/value head the ring sends less, and `a2a` needs CP to divide a TP rank's "
            "key/value heads, which Llama 3 at TP 8 (one key/value head per rank) does not allow. "
            "`dnnsim best` tries `p2p` and, where the heads allow, `a2a`.\n\n"
            "## Let dnnsim search\n\n"
            "`dnnsim best` (here `sim.best.rank_best`) searches the layouts for you: every TP × CP × PP × DP "
            "split of the GPUs with its micro-batch size, schedule, ZeRO stage and recomputation; the ones "
            "whose heaviest stage does not fit the device are dropped, the rest timed in closed form (the "
            "slowest-stage count above, per chunk), and the best of them re-timed by the simulator on the "
            "`flow` network. A dimension you give is fixed: TP 8 here, which keeps the search to seconds "
            "(docs/transformers.md describes the search space)."),
        new_code_cell('from sim.best import rank_best\n'
                      'from sim.config import make_config\n\n'
                      'best = rank_best(make_config({**H100, "model": "llama3-70b", "procs": 64, "batch": 64, "tp": 8}), top=5)\n'
                      'best["GiB"] = best["memory_per_rank_bytes"] / GiB\n'
                      'print(best[["rank", "tp", "cp", "pp", "dp", "microbatch", "schedule", "virtual_stages", "zero",\n'
                      '            "recompute", "screen_iteration_s", "iteration_s", "mfu", "GiB"]].to_string(index=False))'),
        new_markdown_cell(
            "The winners spend the memory the hand-picked layouts left free: two sequences per micro-batch "
            "(larger matrix products, which the roofline runs more efficiently) and, with pipeline stages, "
            "the interleaved schedule with 8 chunks per stage to shrink the bubble, at 67 to 75 GiB of the "
            "80. "
            "`screen_iteration_s` is the closed form, `iteration_s` the simulation, by which the rows are "
            "ranked."),
    ]


NOTEBOOKS = {
    "01-quickstart": quickstart,
    "02-reproduce-the-paper": reproduce,
    "03-topology-and-contention": topology,
    "04-sweeps-at-scale": sweeps,
    "05-transformers": transformers,
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
