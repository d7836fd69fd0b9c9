"""``dnnsim calibrate``: fit dnnsim's parameters to real measurements (docs/calibrate.md).

``dnnsim calibrate nccl FILE... -o topo.yaml`` reads nccl-tests output (:mod:`sim.calibrate.nccltests`),
fits each link class's per-call latency and bus bandwidth (:mod:`sim.calibrate.fit`), prints every
row's residual and the fit per class, and writes a topology YAML that ``--topology`` takes
(:mod:`sim.calibrate.topofile`).

``dnnsim calibrate compute PROFILE.csv --model M --device D -o device.yaml`` fits a device file's
efficiency curves to a ``dnnsim profile`` CSV (:mod:`workloads.compute_fit`, docs/compute.md).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from sim.cli.output import emit, format_option
from sim.errors import UserError


@click.group("calibrate")
def calibrate() -> None:
    """Fit dnnsim's parameters to real measurements (nccl: nccl-tests output; compute: a dnnsim profile CSV)."""


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


@calibrate.command("compute")
@click.argument("profile_csv", metavar="PROFILE.csv")
@click.option("--model", "model_name", required=True, help="The profiled model (zoo name or .yaml file).")
@click.option("--device", required=True,
              help="The device measured (name or .yaml): its peaks and bandwidth are kept, its curves refitted.")
@click.option("--precision", default="fp32", show_default=True,
              help="The precision measured: fp32, tf32, bf16, fp16, fp8 or amp.")
@click.option("--dtype-bytes", "dtype_bytes", type=int, default=None, help="Bytes per word, overriding the "
                                                                             "precision's.")
@click.option("--name", default=None, help="Name of the fitted device (default: DEVICE-fit).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Device YAML to write.")
@format_option
def compute(profile_csv: str, model_name: str, device: str, precision: str, dtype_bytes: int | None,
            name: str | None, output: str, fmt: str) -> None:
    """Fit a device file's efficiency curves to a dnnsim profile CSV measured on that device.

    \b
    Every measured (layer, batch) is one point of its kernel class (conv, matmul, memory); each class's
    curve (max, half_s) is the least-squares line of docs/compute.md. Writes OUTPUT, a device YAML in the
    same form as workloads/devices/*.yaml (usable as --compute roofline:OUTPUT), and prints one row per
    class: the curve, how many rows it was fitted to, and the rms relative residual over its rows.
    """
    import yaml

    from workloads.compute_fit import fit_efficiency
    from workloads.device_specs import device_from_mapping, read_device_mapping
    from workloads.loader import load_model
    from workloads.precision import get_precision, with_dtype_bytes
    from workloads.profiled import read_profile

    chosen = with_dtype_bytes(get_precision(precision), dtype_bytes)
    model = load_model(model_name)
    path, raw = read_device_mapping(device)
    base = device_from_mapping(raw, str(path), path.stem)
    out_dir = Path(output).parent
    if not out_dir.is_dir():
        raise UserError("output", f"folder {str(out_dir)!r} does not exist", "a path in an existing folder")
    if not Path(profile_csv).is_file():
        raise UserError("profile", f"file {profile_csv!r} does not exist", "a CSV written by dnnsim profile")
    table = read_profile(profile_csv)
    efficiency, fits = fit_efficiency(model, table, base, chosen)
    data = {k: v for k, v in raw.items() if k not in ("aliases", "b_half", "efficiency", "sources")}
    data["name"] = name or f"{base.name}-fit"
    data["description"] = f"{base.description or base.name}, efficiency fitted to {Path(profile_csv).name}"
    data["efficiency"] = efficiency.as_yaml()
    sources = dict(raw.get("sources") or {})
    which = "tensor" if base.peak(chosen.peak)[1] else "simt"
    for fit in fits:
        key = "efficiency.memory" if fit.cls == "memory" else f"efficiency.{which}.{fit.cls}"
        if fit.status == "fitted":
            sources[key] = (f"fitted by dnnsim calibrate compute to {Path(profile_csv).name} ({model.name}, "
                            f"{chosen.name}): {fit.used} of {fit.rows} rows, rms relative residual "
                            f"{fit.rms_rel_residual:.3g}")
    data["sources"] = sources
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    device_from_mapping(yaml.safe_load(text), output, Path(output).stem)  # what is written loads back
    Path(output).write_text(text)
    rows = [{"class": fit.cls, "set": "memory" if fit.cls == "memory" else which, "status": fit.status,
             "max": fit.curve.max if fit.curve else None, "half_s": fit.curve.half_s if fit.curve else None,
             "rows": fit.rows, "fitted_rows": fit.used, "rms_rel_residual": fit.rms_rel_residual}
            for fit in fits]
    emit(rows, fmt)
