"""A tiny builder that chains layer constructors: each new layer reads the shape of its producers.

Used by the model zoo and the YAML loader. A layer without explicit ``inputs`` consumes the previous
layer (or the model input); with ``inputs`` it consumes the named layers, which must already exist.

Examples
--------
>>> ch = Chain("toy", (3, 8, 8), dataset_size=10)
>>> _ = ch.add("conv", "c1", out_channels=4, kernel=3, padding=1)
>>> _ = ch.add("act", "r1")
>>> _ = ch.add("fc", "fc", out_features=2)
>>> m = ch.model()
>>> [layer.out_shape for layer in m.layers]
[(4, 8, 8), (4, 8, 8), (2,)]
"""

from __future__ import annotations

from typing import Any

from sim.errors import UserError
from workloads import build
from workloads.layer import Layer, Model

#: kind -> constructor taking (name, in_shape, **kwargs); add/concat take a list of shapes
BUILDERS = {
    "conv": build.conv,
    "fc": build.fc,
    "pool": build.pool,
    "norm": build.norm,
    "act": build.act,
    "lrn": build.lrn,
    "dropout": build.dropout,
    "softmax": build.softmax,
    "flatten": build.flatten,
    "add": build.add,
    "concat": build.concat,
}

#: kinds that join several producers
JOIN_KINDS = ("add", "concat")


class Chain:
    """Accumulates layers for one model.

    Parameters
    ----------
    name : str
        Model name.
    input_shape : tuple of int
        Per-sample input, channels first.
    dataset_size : int
        Training samples N.
    """

    def __init__(self, name: str, input_shape: tuple[int, ...], dataset_size: int) -> None:
        self.name = name
        self.input_shape = tuple(input_shape)
        self.dataset_size = dataset_size
        self.layers: list[Layer] = []
        self._by_name: dict[str, Layer] = {}

    @property
    def last(self) -> str:
        """Name of the latest layer (``""`` before the first)."""
        return self.layers[-1].name if self.layers else ""

    def shape_of(self, producer: str) -> tuple[int, ...]:
        """Output shape of layer ``producer`` (``""`` is the model input)."""
        if producer == "":
            return self.input_shape
        if producer not in self._by_name:
            raise UserError("model.layers", f"input {producer!r} names no earlier layer",
                            "names of layers defined above this one")
        return self._by_name[producer].out_shape

    def add(self, kind: str, name: str, inputs: tuple[str, ...] | list[str] = (), **kwargs: Any) -> str:
        """Build a layer of ``kind`` on its producers' shapes and append it; returns its name.

        Parameters
        ----------
        kind : str
            A key of :data:`BUILDERS`.
        name : str
            Unique within the model.
        inputs : sequence of str
            Producers; empty means the previous layer.
        **kwargs
            The constructor's other arguments.

        Returns
        -------
        str
            ``name``, to wire branches.
        """
        if kind not in BUILDERS:
            raise UserError(f"layer {name}", f"kind {kind!r} is unknown", f"one of {', '.join(BUILDERS)}")
        if name in self._by_name:
            raise UserError(f"layer {name}", "the name is used twice", "unique layer names")
        inputs = tuple(inputs)
        if kind in JOIN_KINDS:
            layer = BUILDERS[kind](name, [self.shape_of(p) for p in inputs], inputs=inputs, **kwargs)
        else:
            if len(inputs) > 1:
                raise UserError(f"layer {name}", f"{kind} takes one input, gets {list(inputs)}",
                                "at most one name in inputs (add/concat join several)")
            layer = BUILDERS[kind](name, self.shape_of(inputs[0] if inputs else self.last), inputs=inputs,
                                   **kwargs)
        self.layers.append(layer)
        self._by_name[name] = layer
        return name

    def model(self) -> Model:
        """The finished :class:`Model`."""
        if not self.layers:
            raise UserError("model.layers", "the model has no layers", "a non-empty list of layers")
        return Model(self.name, self.input_shape, tuple(self.layers), self.dataset_size)
