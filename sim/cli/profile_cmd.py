"""``dnnsim profile``: measure per-layer forward/backward seconds with PyTorch into a CSV for ``profile:FILE``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from sim.cli.output import emit, format_option
from sim.errors import UserError


def parse_batches(text: str) -> list[int]:
    """``"1,8,64"`` -> ``[1, 8, 64]`` (sorted, unique); UserError ``batch`` otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise UserError("batch", f"{text!r} is not a list of batch sizes", "positive integers such as 1,8,64")
    return sorted(set(values))


def write_csv_atomically(rows: list[dict], path: str) -> None:
    """Write ``rows`` as CSV to ``path`` through a temporary file in the same folder and a rename."""
    import pandas as pd

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            pd.DataFrame(rows).to_csv(handle, index=False, lineterminator="\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("profile")
@click.option("--model", "model_name", required=True, help="Zoo name or .yaml model file.")
@click.option("--batch", "batch", required=True, help="Batch sizes to measure, comma-separated, e.g. 1,8,64.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="CSV to write.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed calls.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed calls; the median is kept.")
@click.option("--memory-format", "memory_format", type=click.Choice(["nchw", "nhwc"]), default="nchw",
              show_default=True, help="Layout of 4-d activations and weights: PyTorch's default or channels_last.")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16", "fp16", "amp"]), default="fp32",
              show_default=True, help="What the layers compute in: fp32 (TF32 off), tf32, bf16, fp16, amp (float16 "
                                      "kernels).")
@format_option
def profile(model_name: str, batch: str, device: str, output: str, warmup: int, repeats: int, memory_format: str,
            precision: str, fmt: str) -> None:
    """Measure every layer's forward and backward seconds with PyTorch (needs torch: pip install torch).

    Writes OUTPUT with columns layer, kind, batch, fwd_s, bwd_s, device, precision, memory_format, usable as
    --compute profile:OUTPUT and by dnnsim calibrate compute, and prints the same rows.
    """
    from workloads.loader import load_model
    from workloads.torch_profile import profile_model, require_torch

    batches = parse_batches(batch)
    model = load_model(model_name)
    out_dir = Path(output).parent
    if not out_dir.is_dir():
        raise UserError("output", f"folder {str(out_dir)!r} does not exist", "a path in an existing folder")
    require_torch()
    rows = profile_model(model, batches, device=device, warmup=warmup, repeats=repeats, memory_format=memory_format,
                         precision=precision)
    write_csv_atomically(rows, output)
    emit(rows, fmt)
