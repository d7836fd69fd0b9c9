"""``dnnsim plot``: draw a results CSV (from ``dnnsim sweep``, or ``best --format csv``) as an image.

Kinds (see :mod:`sim.plots`): ``scaling`` (time vs P, log-log, ideal line), ``breakdown`` (the paper's
stacked bars per grid, best marked with its speedup over 1 x P) and ``grid`` (heat map over grids and one
more column). Only ``status == ok`` rows are plotted. The image (PNG, SVG or PDF by the extension of -o)
is written atomically. Prints one record: ``kind, out, rows``.
"""

from __future__ import annotations

import click

from sim.cli.output import emit, format_option


@click.command("plot")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--kind", required=True, type=click.Choice(["scaling", "breakdown", "grid"]),
              help="scaling: time vs procs, log-log, one line per --hue, ideal line; breakdown: stacked bars "
                   "of computation, model/domain and batch communication per grid Pr x Pc; grid: heat map of "
                   "time over grids (rows) and --x (columns).")
@click.option("--x", "x", default=None,
              help="scaling: the x column (default procs); grid: the column axis (default the first of "
                   "topology, batch, procs, network, compute, ... that varies).")
@click.option("--y", "y", default=None,
              help="The time column: iteration_s (default for scaling and grid) or epoch_s (default for "
                   "breakdown, the paper's unit).")
@click.option("--hue", default=None, help="scaling: one line per value of this column (default strategy).")
@click.option("--mode", type=click.Choice(["auto", "strong", "weak", "none"]), default="auto", show_default=True,
              help="scaling: ideal line t·P0/P (strong), flat (weak), or none; auto detects from batch and procs.")
@click.option("--facet", default=None, metavar="COL[,COL...]",
              help="breakdown: one panel per value of these columns (default: the config columns that vary).")
@click.option("--title", default=None, help="Replace the plot's title.")
@click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False),
              help="Image file: .png, .svg or .pdf.")
@format_option
def plot(results: str, kind: str, x: str | None, y: str | None, hue: str | None, mode: str, facet: str | None,
         title: str | None, output: str, fmt: str) -> None:
    """Plot RESULTS (a CSV written by dnnsim sweep) as --kind scaling, breakdown or grid into -o FILE.

    Examples: dnnsim plot strong.csv --kind scaling -o strong.png; dnnsim plot grids.csv --kind grid
    --x batch -o grids.svg; dnnsim plot strong.csv --kind breakdown --y iteration_s -o breakdown.pdf
    """
    from sim.plots import plot_results

    facets = [c.strip() for c in facet.split(",") if c.strip()] if facet is not None else None
    record = plot_results(results, kind, output, x=x, y=y, hue=hue, mode=mode, facet=facets, title=title)
    emit([record], fmt, single=True)
