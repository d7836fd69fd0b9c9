"""``dnnsim sweep SWEEP.yaml --out results.csv``: run every point of a sweep file, one CSV row per point.

Points run on a local process pool (``--workers``, default: the cores available) or on a Dask cluster
(``--scheduler tcp://host:8786``, or ``local`` for a LocalCluster here). Rows are appended as points finish;
``--resume`` skips the points already in the CSV. A progress bar (done, failed, remaining, rate) goes to
stderr when it is a terminal. At the end one line per sweep is printed: points, skipped, ok, failed, wall
seconds, points per minute. SIGINT (Ctrl-C, once or more, to the process or its group) and SIGTERM stop the
sweep cleanly: the workers are killed, the CSV keeps every finished row (whole lines only), one line says
how far it got, and the exit status is 130 (SIGINT) or 143 (SIGTERM). Signals after the first are ignored.
"""

from __future__ import annotations

import sys

import click

from sim.cli.output import emit, format_option


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="Results file, one row per point appended as points finish: CSV, or Parquet for a "
                   "name ending in .parquet (needs pyarrow; rows go to a journal beside it until the sweep ends).")
@click.option("--workers", "-j", type=int, default=None,
              help="Local worker processes (default: the cores available; 0: run in this process).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster: scheduler address tcp://host:8786, or 'local'. Needs dask[distributed] (pip install 'dask[distributed]').")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep: skip points already in --out.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--chunksize", type=click.IntRange(min=1), default=None,
              help="Points per task (default: about 8 tasks per worker, at most 32 points each).")
@click.option("--sort", is_flag=True, help="When done, rewrite --out in sweep order.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr (only when it is a terminal).")
@format_option
def sweep(sweep_file: str, out: str, workers: int | None, scheduler: str | None, resume: bool,
          overwrite: bool, chunksize: int | None, sort: bool, progress: bool, fmt: str) -> None:
    """Run every point of SWEEP_FILE (base, vary, zip) and write one row per point to --out."""
    from sim.sweep.interrupts import StopSignals
    from sim.sweep.runner import SweepInterrupted, run_sweep

    # held until the command returns: once a signal has stopped the sweep, later ones are ignored (restore=False)
    with StopSignals(restore=False):
        try:
            report = run_sweep(sweep_file, out, workers=workers, scheduler=scheduler, resume=resume,
                               overwrite=overwrite, chunksize=chunksize, sort=sort, progress=progress)
        except SweepInterrupted as exc:
            r = exc.report
            stop = click.ClickException(f"interrupted after {r.ok + r.failed} new rows ({r.ok} ok, {r.failed} "
                                        f"failed); {out} is intact; run again with --resume to finish")
            stop.exit_code = 128 + exc.signum  # 130 SIGINT, 143 SIGTERM; sim.cli.main prints "error: <message>"
            raise stop from None
    row = report.as_dict()
    row["wall_s"] = round(row["wall_s"], 3)
    row["points_per_min"] = round(row["points_per_min"], 1)
    emit([row], fmt, single=True)
    if report.failed:
        click.echo(f"note: {report.failed} point(s) failed; see the status and error columns of {out}",
                   err=True)
    sys.stdout.flush()
