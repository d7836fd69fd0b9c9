"""What is trained: the :class:`Layer` and :class:`Model` value types.

Shapes are per sample, channels first: ``(C, H, W)`` for spatial tensors, ``(F,)`` for flat ones; a
transformer's sample is one sequence, ``(S,)`` token ids into its embedding and ``(S, F)`` (positions, then
features) after it (:mod:`workloads.transformer_layers`).
FLOPs count 2 per multiply-add. ``params`` includes biases (and the scale and shift of batch-norm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: layer kinds; ``conv`` and ``fc`` carry weights, ``norm`` carries a scale and shift
LAYER_KINDS = ("conv", "fc", "pool", "norm", "act", "add", "concat", "flatten", "dropout", "softmax", "lrn")
#: kinds of the transformer layers (:mod:`workloads.transformer_layers`): ``embedding`` carries its tables;
#: ``attention`` (score and context products) and ``glu`` (gated unit) have no weights
TRANSFORMER_KINDS = ("embedding", "attention", "glu")


@dataclass(frozen=True)
class Layer:
    """One layer of a network.

    Attributes
    ----------
    name : str
        Unique within its model.
    kind : str
        One of :data:`LAYER_KINDS` or :data:`TRANSFORMER_KINDS`.
    in_shape, out_shape : tuple of int
        Per-sample input and output shapes, channels first.
    kernel, stride, padding : tuple of int
        ``(kh, kw)``, ``(sh, sw)``, ``(ph, pw)`` for conv and pool; ``(1, 1)``, ``(1, 1)``, ``(0, 0)`` otherwise.
    groups : int
        Grouped convolution (AlexNet's conv2/4/5 use 2).
    params : int
        Trainable parameters including bias.
    fwd_flops_per_sample : float
        Forward FLOPs for one sample, 2 per multiply-add.
    inputs : tuple of str
        Names of the layers feeding this one; empty means the previous layer (or the model input).
    op : str
        Variant of the kind, for rebuilding the layer in a framework: ``"max"``/``"avg"`` for pool,
        the function (``"relu"``, ...) for act, ``"size=5"`` for lrn, ``"p=0.5"`` for dropout;
        ``"layernorm"``/``"rmsnorm"`` for a transformer's norm, ``"tied=<layer>"`` for a tied fc, the heads
        for attention; ``""`` otherwise. Not used in any count.
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    params: int = 0
    fwd_flops_per_sample: float = 0.0
    inputs: tuple[str, ...] = ()
    op: str = ""

    @property
    def in_elems_per_sample(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_elems_per_sample(self) -> int:
        return math.prod(self.out_shape)

    @property
    def has_weights(self) -> bool:
        return self.params > 0


@dataclass(frozen=True)
class Model:
    """An ordered list of layers with its input shape and training-set size N."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    dataset_size: int
    #: the :class:`~workloads.transformer.TransformerConfig` a transformer was built from (None otherwise)
    transformer: Any = field(default=None, compare=False, repr=False)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def fwd_flops_per_sample(self) -> float:
        return sum(layer.fwd_flops_per_sample for layer in self.layers)

    def weight_layers(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.has_weights)
