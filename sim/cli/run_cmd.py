"""``dnnsim run`` (one training iteration and its epoch) and ``dnnsim best`` (every strategy and grid,
ranked).

Both read an optional YAML run config, then the flags, then ``--set key=value`` pairs (later wins); the
fields are :class:`sim.config.RunConfig`'s. ``run`` prints the summary and the per-layer table (``table``),
or the summary row (``json``/``csv``); ``--out DIR`` also writes ``summary.csv``, ``layers.csv``,
``trace.json``, ``config.yaml`` and ``timeline.png`` into DIR, all or nothing, and refuses an existing
non-empty DIR unless ``--overwrite`` (as ``dnnsim sweep`` refuses an existing CSV), before simulating.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sim.cli.output import emit, format_option, links_option, print_links
from sim.config import load_config


def _shared_options(with_grid: bool) -> Callable:
    """The flags shared by ``run`` and ``best`` (docs/cli.md; ``--strategy``/``--grid`` for run only)."""
    opts = [
        click.argument("config_file", required=False, type=click.Path(dir_okay=False)),
        click.option("--model", help="Model zoo name, model YAML file or torch:FILE_OR_MODULE:FACTORY (default alexnet)."),
        click.option("--input-shape", "input_shape", help="Per-sample input of a torch: model, e.g. 3x224x224."),
        click.option("--batch", type=int, help="Global minibatch size B (default 256)."),
        click.option("--procs", type=int, help="Number of processes P (default 16)."),
    ]
    if with_grid:
        opts += [
            click.option("--strategy", help="batch | model | domain | integrated | 4d (default batch; 4d is implied "
                                            "by --tp/--cp/--pp/--dp)."),
            click.option("--grid", help="PrxPc, e.g. 16x32 (Pr: model/domain, Pc: batch); default from the strategy."),
            click.option("--conv-grid", "conv_grid",
                         help="PrxPc of the convolution layers when it differs from --grid (which then is the fc "
                              "layers' grid), e.g. 8x512; needs --strategy integrated, --conv domain|model, fc model."),
        ]
    opts += [
        click.option("--conv", help="Mode of convolution layers: batch | model | domain."),
        click.option("--fc", help="Mode of fully connected layers: batch | model."),
        click.option("--topology", help="Topology spec (default ideal:latency=2us,bandwidth=6GiB/s)."),
        click.option("--network", help="analytic | flow | step (default analytic)."),
        click.option("--collectives", help="One ALG for every op, or op=ALG,... (default paper)."),
        click.option("--compute", help="none | roofline:DEVICE | profile:FILE | paper-knl (default none)."),
        click.option("--precision", help="fp32 | tf32 | bf16 | fp16 | fp8 | amp: the device peak and the bytes of "
                                         "activations, communication and state (default fp32; docs/compute.md)."),
        click.option("--memory-format", "memory_format",
                     help="nchw | nhwc: layout of convolution activations; in nchw (default, PyTorch's) "
                          "tensor-core convolutions pay cuDNN's layout transposes (docs/compute.md)."),
        click.option("--dtype-bytes", "dtype_bytes", type=int,
                     help="Bytes per word, overriding the precision's (default 4 for fp32, 2 for 16-bit)."),
        click.option("--overlap/--no-overlap", default=None, help="Overlap ΔW all-reduces with backward compute."),
        click.option("--bucket-mb", "bucket_mb", type=float,
                     help="ΔW bucket size in MiB (DDP's bucket_cap_mb); default 25 with --overlap, none (one "
                          "all-reduce per layer) without; given with --no-overlap: blocking buckets."),
        click.option("--host-overhead", "host_overhead",
                     help="Fixed host time per iteration (optimizer step, data loading), e.g. 2ms (default 0)."),
        click.option("--placement", help="row-major (model-contiguous) | col-major (batch-contiguous)."),
        click.option("--ecmp/--no-ecmp", default=None, help="Spread flows over equal-cost paths."),
        click.option("--dataset-size", "dataset_size", type=int, help="Samples per epoch N (default the model's)."),
        click.option("--tp", type=int, help="Transformers: tensor-parallel ranks (Megatron column/row split)."),
        click.option("--cp", type=int, help="Transformers: context-parallel ranks (ring attention)."),
        click.option("--pp", type=int, help="Transformers: pipeline stages."),
        click.option("--dp", type=int, help="Transformers: data-parallel replicas (default procs/(tp*cp*pp))."),
        click.option("--sp/--no-sp", "sp", default=None, help="Transformers: sequence parallelism in the TP group "
                                                             "(default on)."),
        click.option("--microbatch", type=int, help="Transformers: sequences per micro-batch (default 1)."),
        click.option("--schedule", help="Transformers: gpipe | 1f1b | interleaved (default 1f1b)."),
        click.option("--virtual-stages", "virtual_stages", type=int,
                     help="Transformers: model chunks per stage, interleaved schedule (default 1)."),
        click.option("--pp-split", "pp_split",
                     help="Transformers: blocks | embedding | loss | embedding+loss: what the pipeline split "
                          "counts besides the transformer blocks (default blocks; docs/transformers.md)."),
        click.option("--cp-comm", "cp_comm",
                     help="Transformers: p2p | allgather | a2a: how context parallelism exchanges keys and "
                          "values (default p2p, ring attention; docs/transformers.md)."),
        click.option("--zero", type=int, help="Transformers: ZeRO stage 0 | 1 | 2 | 3 (default 0)."),
        click.option("--recompute", help="Transformers: none | selective | full activation recomputation."),
        click.option("--seq-len", "seq_len", type=int, help="Transformers: tokens per sequence (default the model's)."),
        click.option("--tp-overlap/--no-tp-overlap", "tp_overlap", default=None,
                     help="Transformers: overlap TP collectives with their pass's compute (default off)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set any config key (repeatable)."),
    ]

    def decorate(func: Callable) -> Callable:
        for opt in reversed(opts):
            func = opt(func)
        return func

    return decorate


def _overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("model", "input_shape", "batch", "procs", "strategy", "grid", "conv_grid", "conv", "fc", "topology",
            "network", "collectives",
            "compute", "precision", "memory_format", "dtype_bytes", "overlap", "bucket_mb", "host_overhead", "placement", "ecmp",
            "dataset_size", "tp", "cp", "pp", "dp", "sp", "microbatch", "schedule", "virtual_stages", "pp_split", "cp_comm",
            "zero", "recompute", "seq_len", "require_fit", "tp_overlap")
    return {k: kwargs.get(k) for k in keys if kwargs.get(k) is not None}


def _print_table(summary, layers) -> None:
    emit(summary, "table", vertical=True)
    sys.stdout.write("\n")
    if summary["strategy"].iloc[0] == "4d" and len(layers):
        # a transformer has hundreds of layers: the terminal gets the chunk rows, layers.csv (--out) all of them
        chunks = layers[layers["kind"] == "chunk"].dropna(axis=1, how="all")
        emit(chunks.drop(columns=["shard"], errors="ignore"), "table")
        sys.stdout.write(f"({len(layers) - len(chunks)} per-layer rows in layers.csv with --out)\n")
        return
    emit(layers, "table")


@click.command("run")
@_shared_options(with_grid=True)
@click.option("--out", type=click.Path(file_okay=False),
              help="Write summary.csv, layers.csv, trace.json, config.yaml, timeline.png, critical_path.csv "
                   "and (flow and step networks) links.csv into this directory (created if missing; an "
                   "existing non-empty one needs --overwrite).")
@click.option("--overwrite", is_flag=True,
              help="Let --out replace those files in an existing directory (other files are kept).")
@click.option("--require-fit", "require_fit", is_flag=True, default=None,
              help="Transformers (4d): refuse a layout whose memory per rank exceeds the device's.")
@links_option
@format_option
def run(config_file: str | None, sets: tuple[str, ...], out: str | None, overwrite: bool, links_top: int | None,
        fmt: str, **kwargs: Any) -> None:
    """Simulate one training iteration (and its epoch) of CONFIG_FILE and/or the flags."""
    from sim.api import check_out_dir, simulate, write_outputs

    config = load_config(config_file, _overrides(kwargs), sets)
    if links_top is not None and fmt != "table":
        print_links(None, fmt)
    if out:
        check_out_dir(Path(out), overwrite)  # refuse before simulating, not after
    measure = links_top is not None or (bool(out) and config.network != "analytic")
    result = simulate(config, links=measure, link_series=bool(out))  # the series feed the trace
    if out:
        write_outputs(result, Path(out), overwrite=overwrite)
        ranks = int(result.records["rank"].nunique()) if len(result.records) else 0
        if ranks > 64:
            click.echo(f"note: trace.json shows 64 of the {ranks} simulated ranks (evenly spaced, plus the "
                       "critical one)", err=True)
    if fmt == "table":
        _print_table(result.summary, result.layers)
        if links_top is not None:
            print_links(result.links(links_top), fmt)
    else:
        emit(result.summary, fmt, single=True)


@click.command("best")
@_shared_options(with_grid=False)
@click.option("--top", type=int, default=None,
              help="Rows to show (the pure-batch row is shown as well); above --exact-up-to candidates on a "
                   "network other than analytic, also how many of the screen's best are re-timed (default 5).")
@click.option("--exact-up-to", "exact_up_to", type=int, default=None, metavar="N",
              help="Re-time every candidate on --network when there are at most N (default 32; 0: never).")
@click.option("--show-unfit", "show_unfit", is_flag=True,
              help="Transformers: also list the layouts whose memory per rank exceeds the device's (fits false, "
                   "unfit_reason), after the ranked rows.")
@format_option
def best(config_file: str | None, sets: tuple[str, ...], top: int | None, exact_up_to: int | None,
         show_unfit: bool, fmt: str, **kwargs: Any) -> None:
    """Rank every strategy and grid of CONFIG_FILE and/or the flags by iteration time.

    \b
    Every candidate is screened by the fast path (screen_iteration_s): under --network analytic by the
    closed forms, which is the result; otherwise with each collective priced on its groups' actual routes
    and link classes (NVLink inside a node, NICs between nodes, ...), the slowest group of each kind.
    Guarantee: with at most N candidates (--exact-up-to, default 32) every one is re-timed on --network,
    so the first row is the best an exhaustive `dnnsim run` over every candidate finds. Above N, the top K
    (--top, default 5) of the routed screen are re-timed; the screen ignores contention between groups,
    so the best may be missed. The pure-batch row (1xP) is always listed; speedup_vs_batch is its
    iteration_s over each row's.

    \b
    A transformer model is searched on the TP x CP x PP x DP grid instead (docs/transformers.md, "best"):
    --tp --cp --pp --dp --microbatch --schedule --virtual-stages --zero --recompute --sp/--no-sp --cp-comm
    fix their dimension, the others are searched (--pp-split is kept, never searched); only layouts that
    fit the device's memory are ranked (--show-unfit lists the others); each is screened without the
    engine (every pipeline action timed in order; on analytic the simulator's own time) and the top K
    re-timed on --network.
    """
    from sim.best import EXACT_UP_TO, rank_best

    overrides = _overrides(kwargs)
    overrides["strategy"] = "integrated"  # accepts every conv/fc restriction; best tries all strategies
    config = load_config(config_file, overrides, sets, ignore=("grid", "conv_grid"))
    table = rank_best(config, top, EXACT_UP_TO if exact_up_to is None else exact_up_to, show_unfit=show_unfit)
    if fmt == "table" and "tp" in table.columns and (table["strategy"] == "4d").all():
        cols = ["rank", "tp", "cp", "pp", "dp", "microbatch", "schedule", "virtual_stages", "zero", "recompute", "sp",
                "pp_split", "cp_comm", "screen_iteration_s", "iteration_s", "tokens_per_s", "mfu", "tp_comm_s",
                "cp_comm_s", "pp_comm_s", "dp_comm_s", "bubble_s", "memory_per_rank_bytes", "fits", "unfit_reason"]
        emit(table[[c for c in cols if c in table.columns]], "table")
    elif fmt == "table":
        cols = ["rank", "strategy", "pr", "pc", "conv_pr", "conv_pc", "conv", "fc", "screen_iteration_s",
                "iteration_s", "speedup_vs_batch", "epoch_s", "compute_s", "batch_comm_s", "model_comm_s",
                "domain_comm_s", "redistribute_s", "memory_per_rank_bytes"]
        emit(table[cols], "table")
    else:
        emit(table, fmt)
