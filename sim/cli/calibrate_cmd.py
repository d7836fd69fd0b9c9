"""``dnnsim calibrate``: fit dnnsim's parameters to real measurements (docs/calibrate.md).

``dnnsim calibrate nccl FILE... --reference PRESET -o topo.yaml`` reads nccl-tests output
(:mod:`sim.calibrate.nccltests`), fits the ``nccl`` collective model's ``base_latency_us`` and
``bus_efficiency`` per link class by running that model on the reference machine (:mod:`sim.calibrate.fit`),
prints every row's residual and the parameters, and writes the reference with the fitted ``nccl:`` block as
a topology YAML that ``--topology FILE --collectives nccl`` reproduces (:mod:`sim.calibrate.topofile`).

``dnnsim calibrate compute PROFILE.csv --model M --device D -o device.yaml`` fits a device file's
efficiency curves to a ``dnnsim profile`` CSV (:mod:`workloads.compute_fit`, docs/compute.md).

``dnnsim calibrate throughput RUNS.csv --model M --device D --fit conv -o device.yaml`` fits one curve's
``max`` to measured one-GPU training throughputs (:mod:`workloads.throughput_fit`).
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import click

from sim.cli.output import emit, format_option
from sim.errors import UserError


@click.group("calibrate")
def calibrate() -> None:
    """Fit dnnsim's parameters to real measurements (nccl: nccl-tests output; compute: a dnnsim profile CSV;
    throughput: measured one-GPU samples/s)."""


@calibrate.command("nccl")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The topology YAML to write (use it as --topology FILE with --collectives nccl).")
@click.option("--reference",
              help="The machine measured, a hier topology: preset (dgx-h100), PRESET:key=value,..., "
                   "hier:key=value,... or a preset-form YAML file. Its nodes, NICs, bandwidths and nccl "
                   "facts (arch, cpu_vendor, nvls, ...) are kept; base latency and bus efficiencies are fitted.")
@click.option("--op", help="The collective of tables that name none: allreduce, allgather or reduce_scatter.")
@click.option("--min-bytes", "min_bytes", default="0", show_default=True,
              help="Fit only rows of at least this size (e.g. 1MiB).")
@click.option("--max-bytes", "max_bytes", default=None,
              help="Fit only rows of at most this size (e.g. 512KiB, to hold larger sizes out).")
@click.option("--fit", "fit_only", default=None,
              help="Fit only these parameters (comma-separated: base_latency_us, bus_efficiency.nvlink, "
                   "bus_efficiency.nic); the others keep the reference's values. Default: all three.")
@click.option("--intra-bandwidth", "intra_bw", help="Override the reference's NVLink bandwidth per GPU per "
                                                    "direction, e.g. 450GB/s.")
@click.option("--inter-bandwidth", "inter_bw", help="Override the reference's bandwidth per NIC, e.g. 400Gbit/s.")
@format_option
def nccl(files: tuple[str, ...], output: str, reference: str | None, op: str | None, min_bytes: str,
         max_bytes: str | None, fit_only: str | None, intra_bw: str | None, inter_bw: str | None, fmt: str) -> None:
    """Fit the nccl collective model's base latency and bus efficiencies to nccl-tests FILES.

    \b
    Runs dnnsim's own nccl model (NCCL's algorithm/protocol choice, multi-channel phases) on the
    reference machine for every measured (op, ranks, size) and fits base_latency_us (>= 0),
    bus_efficiency.nvlink and bus_efficiency.nic (0 < e <= 1) on the relative error. Prints each
    row's residual, then the parameters; -o gets the reference as a preset-form topology with the
    fitted nccl: block, which --topology FILE --collectives nccl reproduces (docs/calibrate.md).
    """
    from sim.calibrate.fit import fit_nccl
    from sim.calibrate.nccltests import read_files
    from sim.calibrate.reference import load_reference
    from sim.calibrate.topofile import topology_dict, write_topology
    from sim.units import parse_bytes

    if reference is None:
        raise UserError("reference", "no reference machine: the nccl model needs its nodes, NICs and links",
                        "--reference dgx-h100 (or another hier preset, PRESET:key=value, hier:..., a preset-form "
                        "YAML file)")
    ref = load_reference(reference, intra_bw, inter_bw)
    tables = read_files(files, op)
    lo = parse_bytes(min_bytes, "min-bytes", allow_zero=True)
    if max_bytes is not None:
        hi = parse_bytes(max_bytes, "max-bytes")
        for table in tables:
            table.rows = [row for row in table.rows if row.size_bytes <= hi]
    only = tuple(x.strip() for x in fit_only.split(",") if x.strip()) if fit_only else None
    fit = fit_nccl(tables, ref, lo, only)
    rows = [{"file": r.source, "op": r.op, "ranks": r.ranks, "class": r.link_class, "bytes": r.size_bytes,
             "algo": r.algo, "proto": r.proto, "measured_s": r.measured_s, "fitted_s": r.fitted_s,
             "error_pct": round(100 * r.rel_error, 2)} for r in fit.residuals]
    params = [{"parameter": p.name, "value": p.value, "reference": p.start, "status": p.status}
              for p in fit.params]
    stats = [{"class": cls, "rows": s["rows"], "rms_error_pct": round(100 * s["rms_rel_error"], 2),
              "max_error_pct": round(100 * s["max_rel_error"], 2)} for cls, s in fit.stats().items()]
    command = "dnnsim calibrate nccl " + " ".join(shlex.quote(str(f)) for f in files) \
        + f" --reference {shlex.quote(reference)}" + (f" --min-bytes {min_bytes}" if lo else "") \
        + (f" --max-bytes {max_bytes}" if max_bytes else "") + (f" --fit {fit_only}" if fit_only else "")
    write_topology(output, topology_dict(fit, [Path(f).name for f in files], command))
    emit(rows, fmt)
    if fmt == "table":
        sys.stdout.write("\n")
        emit(params, fmt)
        sys.stdout.write("\n")
        emit(stats, fmt)
        click.echo(f"\nwrote {output}", err=True)


@calibrate.command("compute")
@click.argument("profile_csv", metavar="PROFILE.csv")
@click.option("--model", "model_name", required=True, help="The profiled model (zoo name or .yaml file).")
@click.option("--device", required=True,
              help="The device measured (name or .yaml): its peaks and bandwidth are kept, its curves refitted.")
@click.option("--precision", default=None,
              help="The precision measured: fp32, tf32, bf16, fp16, fp8 or amp (default: the profile's "
                   "precision column, else fp32).")
@click.option("--dtype-bytes", "dtype_bytes", type=int, default=None, help="Bytes per word, overriding the "
                                                                             "precision's.")
@click.option("--memory-format", "memory_format", type=click.Choice(["nchw", "nhwc"]), default=None,
              help="The layout the profile ran in (default: its memory_format column, else nchw); nchw "
                   "convolutions at a tensor-core precision include cuDNN's transposes, taken off before the fit.")
@click.option("--name", default=None, help="Name of the fitted device (default: DEVICE-fit).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Device YAML to write.")
@format_option
def compute(profile_csv: str, model_name: str, device: str, precision: str | None, dtype_bytes: int | None,
            memory_format: str | None, name: str | None, output: str, fmt: str) -> None:
    """Fit a device file's efficiency curves to a dnnsim profile CSV measured on that device.

    \b
    Every measured (layer, batch) is one point of its kernel class (conv, matmul, memory); each class's
    curve (max, half_s) is the least-squares line of docs/compute.md. Writes OUTPUT, a device YAML in the
    same form as workloads/devices/*.yaml (usable as --compute roofline:OUTPUT), and prints one row per
    class: the curve, how many rows it was fitted to, and the rms relative residual over its rows.
    """
    from workloads.compute_fit import fit_efficiency
    from workloads.profiled import profile_settings, read_profile

    if not Path(profile_csv).is_file():
        raise UserError("profile", f"file {profile_csv!r} does not exist", "a CSV written by dnnsim profile")
    recorded = profile_settings(profile_csv)
    precision = _measured_setting("precision", precision, recorded, "fp32")
    memory_format = _measured_setting("memory_format", memory_format, recorded, "nchw")
    chosen, model, raw, base = _measured_setup(model_name, device, precision, dtype_bytes, output)
    table = read_profile(profile_csv)
    efficiency, fits = fit_efficiency(model, table, base, chosen, memory_format)
    which = "tensor" if base.peak(chosen.peak)[1] else "simt"
    notes = {("efficiency.memory" if fit.cls == "memory" else f"efficiency.{which}.{fit.cls}"):
             (f"fitted by dnnsim calibrate compute to {Path(profile_csv).name} ({model.name}, {chosen.name}, "
              f"{memory_format}): {fit.used} of {fit.rows} rows, rms relative residual {fit.rms_rel_residual:.3g}")
             for fit in fits if fit.status == "fitted"}
    _write_device(output, raw, base, name, Path(profile_csv).name, efficiency, notes)
    rows = [{"class": fit.cls, "set": "memory" if fit.cls == "memory" else which, "status": fit.status,
             "max": fit.curve.max if fit.curve else None, "half_s": fit.curve.half_s if fit.curve else None,
             "rows": fit.rows, "fitted_rows": fit.used, "rms_rel_residual": fit.rms_rel_residual}
            for fit in fits]
    emit(rows, fmt)


@calibrate.command("throughput")
@click.argument("runs_csv", metavar="RUNS.csv")
@click.option("--model", "model_name", required=True, help="The model the runs trained (zoo name or .yaml file).")
@click.option("--device", required=True,
              help="The device measured (name or .yaml): everything but the fitted max is kept.")
@click.option("--precision", default="fp32", show_default=True,
              help="The precision measured: fp32, tf32, bf16, fp16, fp8 or amp.")
@click.option("--dtype-bytes", "dtype_bytes", type=int, default=None, help="Bytes per word, overriding the "
                                                                             "precision's.")
@click.option("--memory-format", "memory_format", type=click.Choice(["nchw", "nhwc"]), default="nchw",
              show_default=True, help="The layout the runs used (nhwc: channels_last).")
@click.option("--fit", "cls", required=True, help="The kernel class whose max is fitted: conv, matmul or memory.")
@click.option("--name", default=None, help="Name of the fitted device (default: DEVICE-fit).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Device YAML to write.")
@format_option
def throughput(runs_csv: str, model_name: str, device: str, precision: str, dtype_bytes: int | None,
               memory_format: str, cls: str, name: str | None, output: str, fmt: str) -> None:
    """Fit one efficiency curve's max to measured one-GPU training throughputs.

    \b
    RUNS.csv has the columns batch and samples_per_s: training samples per second of MODEL on one
    DEVICE at that batch per iteration (published benchmark tables, your own runs; '#' lines are
    comments). The max of the --fit class's curve (its half_s kept) is the least-squares fit of dnnsim's
    one-GPU iteration time to the runs. Prints each run's prediction and residual, then the curve;
    writes OUTPUT, a device YAML usable as --compute roofline:OUTPUT (docs/calibrate.md).
    """
    from workloads.throughput_fit import fit_class_max, with_class_max

    chosen, model, raw, base = _measured_setup(model_name, device, precision, dtype_bytes, output)
    runs = _read_runs(runs_csv)
    fit = fit_class_max(model, runs, base, chosen, memory_format, cls)
    tensor = base.peak(chosen.peak)[1]
    which = "memory" if cls == "memory" else ("tensor" if tensor else "simt")
    key = "efficiency.memory" if cls == "memory" else f"efficiency.{which}.{cls}"
    worst = max(fit.residuals, key=abs)
    notes = {key: (f"max fitted by dnnsim calibrate throughput to {Path(runs_csv).name} ({model.name}, "
                   f"{chosen.name}, {memory_format}, {len(runs)} runs), half_s kept; residuals "
                   f"{100 * min(fit.residuals):+.1f} % to {100 * max(fit.residuals):+.1f} %")}
    _write_device(output, raw, base, name, Path(runs_csv).name,
                  with_class_max(base.efficiency, cls, tensor, fit.curve.max), notes)
    rows = [{"batch": r.batch, "measured_per_s": r.samples_per_s, "predicted_per_s": p,
             "error_pct": round(100 * e, 2) + 0.0} for r, p, e in zip(runs, fit.predicted_per_s, fit.residuals, strict=True)]
    curve = [{"class": cls, "set": which, "max": fit.curve.max, "half_s": fit.curve.half_s, "runs": len(runs),
              "max_error_pct": round(100 * worst, 2)}]
    emit(rows, fmt)
    if fmt == "table":
        sys.stdout.write("\n")
        emit(curve, fmt)
        click.echo(f"\nwrote {output}", err=True)


def _read_runs(path: str) -> list:
    """The runs of ``dnnsim calibrate throughput``: a CSV with columns batch and samples_per_s."""
    import pandas as pd

    from sim.csvfile import read_csv_file
    from workloads.throughput_fit import Run

    table = read_csv_file(path, "runs", "runs", "a CSV with columns batch, samples_per_s", comment="#",
                          skipinitialspace=True)
    missing = [c for c in ("batch", "samples_per_s") if c not in table.columns]
    if missing:
        raise UserError("runs", f"{path!r} lacks the column(s) {', '.join(missing)}",
                        "a CSV with columns batch, samples_per_s")
    runs = []
    for i, (batch, rate) in enumerate(zip(table["batch"], table["samples_per_s"], strict=True), start=1):
        b, r = pd.to_numeric(batch, errors="coerce"), pd.to_numeric(rate, errors="coerce")
        if not (b > 0 and float(b).is_integer() and r > 0 and math.isfinite(r)):
            raise UserError("runs", f"{path!r} row {i}: batch {batch!r}, samples_per_s {rate!r}",
                            "a positive integer batch and a positive samples_per_s")
        runs.append(Run(int(b), float(r)))
    if not runs:
        raise UserError("runs", f"{path!r} has no rows", "at least one row: batch, samples_per_s")
    return runs


def _measured_setup(model_name: str, device: str, precision: str, dtype_bytes: int | None, output: str):
    """(precision, model, the device file's mapping, the device) of a compute calibration; checks OUTPUT's
    folder exists before anything is fitted."""
    from workloads.device_specs import device_from_mapping, read_device_mapping
    from workloads.loader import load_model
    from workloads.precision import get_precision, with_dtype_bytes

    chosen = with_dtype_bytes(get_precision(precision), dtype_bytes)
    model = load_model(model_name)
    path, raw = read_device_mapping(device)
    base = device_from_mapping(raw, str(path), path.stem)
    out_dir = Path(output).parent
    if not out_dir.is_dir():
        raise UserError("output", f"folder {str(out_dir)!r} does not exist", "a path in an existing folder")
    return chosen, model, raw, base


def _write_device(output: str, raw: dict, base, name: str | None, measured: str, efficiency, notes: dict) -> None:
    """Write the base device file ``raw`` with ``efficiency`` and ``notes`` added to its sources, as OUTPUT
    (checked to load back first, then written whole)."""
    import yaml

    from sim.atomicfile import write_text_atomically
    from workloads.device_specs import device_from_mapping

    data = {k: v for k, v in raw.items() if k not in ("aliases", "b_half", "efficiency", "sources")}
    data["name"] = name or f"{base.name}-fit"
    data["description"] = f"{base.description or base.name}, efficiency fitted to {measured}"
    data["efficiency"] = efficiency.as_yaml()
    data["sources"] = {**dict(raw.get("sources") or {}), **notes}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    device_from_mapping(yaml.safe_load(text), output, Path(output).stem)  # what is written loads back
    write_text_atomically(output, text)


def _measured_setting(field: str, given: str | None, recorded: dict[str, str], default: str) -> str:
    """The profile's ``field`` as the flag gives it, else as the profile records it, else ``default``; a flag
    that contradicts the profile's own record is a UserError (the fit would be of the wrong precision)."""
    if given is not None and field in recorded and given != recorded[field]:
        flag = "--" + field.replace("_", "-")
        raise UserError(field, f"{flag} {given} contradicts the profile, measured in {recorded[field]}",
                        f"{flag} {recorded[field]}, or leave it out")
    return given if given is not None else recorded.get(field, default)
