"""``dnnsim validate``: predict every row of the validation table and print predicted vs measured.

Fields: ``id, kind, setting, unit, measured, predicted, error, status`` (error = predicted / measured − 1;
status ``run`` or ``missing`` — rows dnnsim cannot express, ``setting`` = ``missing: ...`` and no numbers).
The table format ends with the median and max ``|error|`` over the rows run. See validation/README.md.

Example::

    $ dnnsim validate --only a100-resnet50-amp-1gpu
"""

from __future__ import annotations

import click

from sim.cli.output import emit, format_option

FIELDS = ["id", "kind", "setting", "unit", "measured", "predicted", "error", "status"]


def _cell(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.1f} %" if pct else f"{value:.4g}"


def format_results(results: list[dict]) -> str:
    """The rows run as an aligned table (setting last, unwrapped), then the missing rows with what they lack."""
    run = [r for r in results if r["error"] is not None]
    width = max([len("id")] + [len(r["id"]) for r in results])
    lines = [f"{'id':<{width}}  {'unit':<10}  {'measured':>9}  {'predicted':>9}  {'error':>8}  setting"]
    lines += [f"{r['id']:<{width}}  {r['unit']:<10}  {_cell(r['measured']):>9}  {_cell(r['predicted']):>9}  "
              f"{_cell(r['error'], pct=True):>8}  {r['setting']}" for r in run]
    missing = [r for r in results if r["error"] is None]
    if missing:
        lines.append("")
        lines.append("# rows dnnsim cannot express yet:")
        lines += [f"#   {r['id']}  {r['setting']}" for r in missing]
    return "\n".join(lines)


@click.command("validate")
@click.option("--rows", "rows_path", default=None, type=click.Path(dir_okay=False),
              help="Rows file (default: validation/rows.yaml of the repository).")
@click.option("--only", default=None, help="Comma list of row ids to run (default: every row).")
@click.option("--workers", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Rows run in parallel on this many local worker processes (0 or 1: in this process).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr (only when it is a terminal).")
@format_option
def validate(rows_path: str | None, only: str | None, workers: int, progress: bool, fmt: str) -> None:
    """Run the validation table: published measurements vs dnnsim's predictions, with median and max error."""
    from sim.validate import DEFAULT_ROWS, load_rows, run_rows, select, summarize

    rows = select(load_rows(rows_path if rows_path is not None else DEFAULT_ROWS), only)
    results = run_rows(rows, workers=workers, progress=progress)
    if fmt != "table":
        emit([{k: r[k] for k in FIELDS} for r in results], fmt)
        return
    click.echo(format_results(results))
    s = summarize(results)
    if s["rows"]:
        click.echo(f"# {s['rows']} rows run, {s['missing']} missing: median |error| "
                   f"{s['median_abs_error'] * 100:.1f} %, max |error| {s['max_abs_error'] * 100:.1f} % "
                   f"({s['worst']})")
    else:
        click.echo(f"# 0 rows run, {s['missing']} missing")
