"""``dnnsim models`` (the zoo with sizes) and ``dnnsim show-model`` (one model, layer by layer)."""

from __future__ import annotations

import click

from sim.cli.output import emit, format_option


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


@click.command("models")
@format_option
def models(fmt: str) -> None:
    """List the model zoo: name, layers, params, fwd_flops_per_sample (2 FLOPs per multiply-add).

    Also input_shape and dataset_size (training samples N). Any of these names, or a .yaml model file,
    is accepted by --model and show-model.
    """
    from workloads.zoo import get_model, list_models

    rows = []
    for name in list_models():
        m = get_model(name)
        rows.append({"name": name, "layers": len(m.layers), "params": m.params,
                     "fwd_flops_per_sample": m.fwd_flops_per_sample, "input_shape": _shape(m.input_shape),
                     "dataset_size": m.dataset_size})
    emit(rows, fmt)


@click.command("show-model")
@click.argument("model")
@click.option("--input-shape", "input_shape", help="Per-sample input of a torch: model, e.g. 3x224x224.")
@format_option
def show_model(model: str, input_shape: str | None, fmt: str) -> None:
    """Print MODEL (a zoo name, a .yaml/.yml file or torch:FILE_OR_MODULE:FACTORY) layer by layer.

    A torch: model needs --input-shape, the shape of one sample (CxHxW, e.g. 3x224x224).

    Fields: layer, kind, in_shape, out_shape (CxHxW per sample), params (incl. bias), fwd_flops_per_sample,
    out_elems_per_sample, inputs (producers when not the previous layer).
    """
    from workloads.loader import load_model

    m = load_model(model, input_shape)
    rows = [{"layer": layer.name, "kind": layer.kind, "in_shape": _shape(layer.in_shape),
             "out_shape": _shape(layer.out_shape), "params": layer.params,
             "fwd_flops_per_sample": layer.fwd_flops_per_sample,
             "out_elems_per_sample": layer.out_elems_per_sample, "inputs": ",".join(layer.inputs)}
            for layer in m.layers]
    emit(rows, fmt)
