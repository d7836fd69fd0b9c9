"""Load a model by zoo name, from a YAML file of layers, validating every field, or from PyTorch.

``torch:FILE_OR_MODULE:FACTORY`` specs with an input shape are traced by :mod:`workloads.torch_import`.

A model file looks like ``examples/models/tiny-cnn.yaml``::

    name: tiny-cnn
    input_shape: [3, 32, 32]        # channels first
    dataset_size: 50000
    layers:
      - {kind: conv, name: conv1, out_channels: 16, kernel: 3, padding: 1}
      - {kind: act, name: relu1}
      - {kind: pool, name: pool1, kernel: 2}
      - {kind: fc, name: fc, out_features: 10}

Each layer is ``kind`` plus that kind's arguments (:data:`LAYER_KEYS`); ``name`` is optional (default
``<kind><index>``); ``inputs`` (a list of earlier layer names) wires branches and is required by
``add`` and ``concat``. Shapes are inferred by chaining; ``fc`` may state ``in_features`` to have it
checked. Every mistake is a :class:`~sim.errors.UserError` naming the layer.

A decoder-only transformer is described by its sizes instead of its layers (see
:mod:`workloads.transformer` and ``docs/transformers.md``)::

    name: gpt2-small
    dataset_size: 1000000           # sequences per epoch (or transformer.dataset_tokens)
    transformer: {layers: 12, hidden: 768, heads: 12, ffn: 3072, vocab: 50257, seq_len: 1024,
                  mlp: gelu, norm: layernorm, bias: true, tied_embeddings: true, positions: learned}

or by a zoo transformer and what differs from it: ``transformer: {base: llama3-8b, seq_len: 4096}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import UserError
from sim.yamlfile import read_yaml_mapping
from workloads.chain import Chain
from workloads.layer import Model
from workloads.torch_import import import_model, is_torch_spec
from workloads.zoo import get_model

#: kind -> (required keys, optional keys), besides ``kind``, ``name`` and ``inputs``
LAYER_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("out_channels", "kernel"), ("stride", "padding", "groups", "bias")),
    "fc": (("out_features",), ("in_features", "bias")),
    "pool": (("kernel",), ("stride", "padding", "op", "ceil_mode")),
    "norm": ((), ()),
    "act": ((), ("fn",)),
    "lrn": ((), ("size",)),
    "dropout": ((), ("p",)),
    "softmax": ((), ()),
    "flatten": ((), ()),
    "add": (("inputs",), ()),
    "concat": (("inputs",), ()),
}
TOP_KEYS = ("name", "input_shape", "dataset_size", "layers", "description")
#: top-level keys of a transformer model file
TRANSFORMER_TOP_KEYS = ("name", "dataset_size", "transformer", "description")


def load_model(path_or_name: str | Path, input_shape: Any = None) -> Model:
    """A zoo model by name, a model read from a ``.yaml`` / ``.yml`` file, or a PyTorch module.

    Parameters
    ----------
    path_or_name : str or Path
        Zoo name (``alexnet``), file path ending in ``.yaml`` or ``.yml``, or
        ``torch:FILE_OR_MODULE:FACTORY`` (:mod:`workloads.torch_import`).
    input_shape : str or sequence of int, optional
        Per-sample input shape (``"3x224x224"``) of a ``torch:`` model: required there, refused elsewhere.

    Returns
    -------
    Model

    Raises
    ------
    UserError
        Unknown name, missing or malformed file, or any invalid layer.
    """
    text = str(path_or_name)
    if is_torch_spec(text):
        return import_model(text, input_shape)
    if input_shape is not None:
        raise UserError("input_shape", f"{input_shape!r} is given but model {text!r} is not a torch: model",
                        "leave input_shape out (zoo and YAML models state their own), or a torch: model")
    if not text.lower().endswith((".yaml", ".yml")):
        return get_model(text)
    data = read_yaml_mapping(text, "model", "a zoo name, or a model YAML file (a mapping with input_shape and layers)")
    return model_from_dict(data, default_name=Path(text).stem)


def _int(value: Any, field: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(field, f"{what} {value!r} is not a positive integer", f"an integer >= 1 for {what}")
    return value


def model_from_dict(data: Any, default_name: str = "custom") -> Model:
    """Build a model from the parsed YAML mapping (see the module docstring for the format).

    Parameters
    ----------
    data : dict
        With ``input_shape``, ``dataset_size``, ``layers`` and optionally ``name``, ``description``.
    default_name : str
        Model name when ``name`` is absent.

    Returns
    -------
    Model
    """
    if not isinstance(data, dict):
        raise UserError("model", f"the file holds a {type(data).__name__}, not a mapping",
                        f"a mapping with keys {', '.join(TOP_KEYS)}")
    if "transformer" in data:
        return _transformer_model(data, default_name)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise UserError("model", f"unknown key(s) {', '.join(map(str, unknown))}", f"keys {', '.join(TOP_KEYS)}")
    for key in ("input_shape", "dataset_size", "layers"):
        if key not in data:
            raise UserError(f"model.{key}", "is missing", "input_shape, dataset_size and layers are required")
    shape = data["input_shape"]
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise UserError("model.input_shape", f"{shape!r} is not [C, H, W] or [F]", "a list of 1 or 3 positive ints")
    shape = tuple(_int(s, "model.input_shape", "size") for s in shape)
    n = _int(data["dataset_size"], "model.dataset_size", "dataset_size")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        raise UserError("model.layers", f"{layers!r} is not a non-empty list", "a list of layer mappings")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise UserError("model.name", f"{name!r} is not a name", "a non-empty string")
    ch = Chain(name, shape, n)
    for index, spec in enumerate(layers):
        _add_layer(ch, index, spec)
    return ch.model()


def _add_layer(ch: Chain, index: int, spec: Any) -> None:
    where = f"model.layers[{index}]"
    if not isinstance(spec, dict):
        raise UserError(where, f"{spec!r} is not a mapping", "a mapping with kind and its arguments")
    kind = spec.get("kind")
    if kind not in LAYER_KEYS:
        raise UserError(where, f"kind {kind!r} is unknown", f"one of {', '.join(LAYER_KEYS)}")
    required, optional = LAYER_KEYS[kind]
    name = spec.get("name", f"{kind}{index}")
    if not isinstance(name, str) or not name:
        raise UserError(where, f"name {name!r} is not a string", "a non-empty layer name")
    field = f"layer {name}"
    allowed = {"kind", "name", "inputs", *required, *optional}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise UserError(field, f"unknown key(s) {', '.join(map(str, unknown))} for {kind}",
                        f"keys {', '.join(sorted(allowed))}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise UserError(field, f"missing key(s) {', '.join(missing)} for {kind}", f"{kind} needs {', '.join(required)}")
    inputs = spec.get("inputs", [])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise UserError(field, f"inputs {inputs!r} is not a list of layer names", "a list of earlier layer names")
    kwargs = {k: v for k, v in spec.items() if k not in ("kind", "name", "inputs", "in_features")}
    for key in ("bias", "ceil_mode"):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise UserError(field, f"{key} {kwargs[key]!r} is not true or false", f"{key}: true or {key}: false")
    for key in ("stride", "kernel", "padding"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    if "in_features" in spec:
        producer = inputs[0] if inputs else ch.last
        have = 1
        for s in ch.shape_of(producer):
            have *= s
        if spec["in_features"] != have:
            raise UserError(field, f"in_features {spec['in_features']!r} does not match its input of {have} features",
                            f"in_features: {have} (or leave it out)")
    try:
        ch.add(kind, name, inputs=tuple(inputs), **kwargs)
    except TypeError as exc:  # a value of the wrong type reaching arithmetic
        raise UserError(field, f"bad argument value ({exc})", f"see the keys of {kind}") from None


def _transformer_model(data: dict, default_name: str) -> Model:
    """A model file with a ``transformer:`` mapping (module docstring)."""
    from workloads.transformer import transformer_from_dict
    from workloads.zoo import TRANSFORMERS

    unknown = sorted(set(map(str, data)) - set(TRANSFORMER_TOP_KEYS))
    if unknown:
        raise UserError("model", f"unknown key(s) {', '.join(unknown)} next to transformer",
                        f"keys {', '.join(TRANSFORMER_TOP_KEYS)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise UserError("model.name", f"{name!r} is not a name", "a non-empty string")
    n = _int(data["dataset_size"], "model.dataset_size", "dataset_size") if "dataset_size" in data else None
    return transformer_from_dict(data["transformer"], name, n, TRANSFORMERS)
