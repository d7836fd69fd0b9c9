"""``dnnsim calibrate``: fit dnnsim's parameters to real measurements (docs/calibrate.md).

``dnnsim calibrate nccl FILE... -o topo.yaml`` reads nccl-tests output (:mod:`sim.calibrate.nccltests`),
fits each link class's per-call latency and bus bandwidth (:mod:`sim.calibrate.fit`), prints every
row's residual and the fit per class, and writes a topology YAML that ``--topology`` takes
(:mod:`sim.calibrate.topofile`).
"""

from __future__ import annotations

import shlex
import sys

import click

from sim.cli.output import emit, format_option


@click.group("calibrate")
def calibrate() -> None:
    """Fit dnnsim's parameters to real measurements (nccl: nccl-tests output)."""


def _reference(preset: str | None, intra: str | None, inter: str | None) -> dict[str, float]:
    """Reference bandwidth per link class: a hier preset's (intra: ``intra``; inter: ``nics_per_node`` x
    ``inter``, one ring per NIC), then the explicit flags."""
    from sim.errors import UserError
    from sim.units import parse_rate

    out: dict[str, float] = {}
    if preset is not None:
        from topologies import load_preset

        data = load_preset(preset)
        params = data.get("params") or {}
        if data.get("kind") != "hier":
            raise UserError("reference", f"preset {preset!r} is of kind {data.get('kind')!r}, not hier",
                            "a hier preset such as dgx-a100 or dgx-h100")
        out["intra"] = parse_rate(params["intra"], "reference.intra")
        out["inter"] = parse_rate(params["inter"], "reference.inter") * int(params.get("nics_per_node", 1))
    if intra is not None:
        out["intra"] = parse_rate(intra, "intra-bandwidth")
    if inter is not None:
        out["inter"] = parse_rate(inter, "inter-bandwidth")
    return out


@calibrate.command("nccl")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The topology YAML to write (use it as --topology FILE).")
@click.option("--op", help="The collective of tables that name none: allreduce, allgather, reduce_scatter, "
                           "broadcast, reduce or alltoall.")
@click.option("--link-class", "link_class", type=click.Choice(["intra", "inter"]),
              help="Class of tables whose file lists no devices (one host: intra, several: inter).")
@click.option("--min-bytes", "min_bytes", default="0", show_default=True,
              help="Fit only rows of at least this size (e.g. 1MiB).")
@click.option("--reference", help="A hier preset whose nominal bandwidths the bus efficiency is relative to "
                                  "(intra: its intra; inter: nics_per_node x inter).")
@click.option("--intra-bandwidth", "intra_bw", help="Reference bandwidth of the intra class, e.g. 450GB/s.")
@click.option("--inter-bandwidth", "inter_bw", help="Reference bandwidth of the inter class, e.g. 400GB/s.")
@format_option
def nccl(files: tuple[str, ...], output: str, op: str | None, link_class: str | None, min_bytes: str,
         reference: str | None, intra_bw: str | None, inter_bw: str | None, fmt: str) -> None:
    """Fit per-call latency and bus bandwidth per link class to nccl-tests FILES; write a topology YAML.

    \b
    The model: t(S) = alpha_c + S * busbw_factor(op, n) / (eff_c * B_c) per link class c (intra: one
    host, inter: several). Prints each row's residual, then the fit per class; -o gets a star topology
    on which a ring all-reduce takes the fitted time, plus an nccl: block with base_latency_us and
    bus_efficiency per class (docs/calibrate.md).
    """
    from sim.calibrate.fit import fit_tables
    from sim.calibrate.nccltests import read_files
    from sim.calibrate.topofile import topology_dict, write_topology
    from sim.units import parse_bytes

    tables = read_files(files, op)
    refs = _reference(reference, intra_bw, inter_bw)
    fits, residuals = fit_tables(tables, link_class, parse_bytes(min_bytes, "min-bytes", allow_zero=True), refs)
    rows = [{"file": r.source, "op": r.op, "ranks": r.ranks, "class": r.link_class, "bytes": r.size_bytes,
             "measured_s": r.measured_s, "fitted_s": r.fitted_s, "error_pct": round(100 * r.rel_error, 2)}
            for r in residuals]
    summary = [{"class": f.link_class, "alpha_s": f.alpha_s, "busbw_Bps": f.bus_Bps,
                "reference_Bps": f.reference_Bps, "efficiency": f.efficiency, "ranks": f.ranks, "rows": f.rows,
                "rms_error_pct": round(100 * f.rms_rel_error, 2), "max_error_pct": round(100 * f.max_rel_error, 2)}
               for f in fits.values()]
    command = "dnnsim calibrate nccl " + " ".join(shlex.quote(str(f)) for f in files)
    write_topology(output, topology_dict(fits, [str(f) for f in files], command))
    emit(rows, fmt)
    if fmt == "table":
        sys.stdout.write("\n")
        emit(summary, fmt)
        click.echo(f"\nwrote {output}", err=True)
