"""Measure per-layer forward and backward seconds with PyTorch (the optional ``torch`` extra:
``pip install '.[torch]'`` in a dnnsim checkout, or ``pip install torch``).

Each :class:`~workloads.layer.Layer` is rebuilt as a ``torch.nn.Module`` (:func:`layer_module`) and timed
alone on random inputs of its shape: ``warmup`` untimed calls, then the median of ``repeats`` timed calls,
with ``torch.cuda.synchronize()`` around each timed call on CUDA. Forward runs in training mode with
autograd on (as in training); backward is ``out.backward(grad)`` on a retained graph, computing the
gradients of the input and of the parameters. torch is imported only inside these functions.

Precision (``precision``): ``fp32`` runs float32 tensors with TF32 turned off for convolutions and matrix
products (``torch.backends.cudnn.allow_tf32`` and ``torch.backends.cuda.matmul.allow_tf32``, restored
afterwards), so it is FP32 on every GPU; ``tf32`` runs float32 tensors with both turned on; ``bf16`` and
``fp16`` run the module and its inputs in that type; ``amp`` runs them in float16 as well, since under
``torch.autocast`` a layer computes in float16 (the per-call cast of the fp32 master weights is not
timed). ``fp8`` needs Transformer Engine and is refused. Layout (``memory_format``): ``nhwc`` puts 4-d
tensors and weights in ``torch.channels_last``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sim.errors import UserError
from workloads.layer import Layer, Model

#: how to get PyTorch: dnnsim is installed from its repository, not from the package index, so
#: ``pip install 'dnnsim[torch]'`` finds nothing; the extra is installed from a checkout
TORCH_HINT = "pip install torch, or pip install '.[torch]' in a dnnsim checkout"

def require_torch() -> Any:
    """Import and return ``torch``, or raise the UserError that tells how to install it."""
    try:
        import torch
    except ImportError:
        raise UserError("torch", "PyTorch is not installed", TORCH_HINT) from None
    return torch


def layer_module(layer: Layer) -> Any:
    """A ``torch.nn.Module`` computing ``layer``; join layers (add, concat) take several tensors.

    Parameters
    ----------
    layer : Layer

    Returns
    -------
    torch.nn.Module
    """
    torch = require_torch()
    nn = torch.nn
    kind = layer.kind
    if kind == "conv":
        cin, cout = layer.in_shape[0], layer.out_shape[0]
        weights = layer.kernel[0] * layer.kernel[1] * (cin // layer.groups) * cout
        return nn.Conv2d(cin, cout, layer.kernel, layer.stride, layer.padding, groups=layer.groups,
                         bias=layer.params > weights)
    if kind == "fc":
        fin, fout = layer.in_elems_per_sample, layer.out_shape[0]
        return nn.Sequential(nn.Flatten(), nn.Linear(fin, fout, bias=layer.params > fin * fout))
    if kind == "pool":
        floor_h = (layer.in_shape[1] + 2 * layer.padding[0] - layer.kernel[0]) // layer.stride[0] + 1
        ceil_mode = floor_h != layer.out_shape[1]
        cls = nn.AvgPool2d if layer.op == "avg" else nn.MaxPool2d
        return cls(layer.kernel, layer.stride, layer.padding, ceil_mode=ceil_mode)
    if kind == "norm":
        return nn.BatchNorm2d(layer.in_shape[0]) if len(layer.in_shape) == 3 else nn.BatchNorm1d(layer.in_shape[0])
    if kind == "act":
        return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}[layer.op or "relu"]()
    if kind == "lrn":
        return nn.LocalResponseNorm(int(layer.op.partition("=")[2] or 5))
    if kind == "dropout":
        return nn.Dropout(float(layer.op.partition("=")[2] or 0.5))
    if kind == "softmax":
        return nn.Softmax(dim=1)
    if kind == "flatten":
        return nn.Flatten()
    if kind in ("add", "concat"):
        return _join_class()(kind)
    raise UserError(f"layer {layer.name}", f"kind {kind!r} cannot be profiled", "conv, fc, pool, norm, act, ...")


def _join_class() -> Any:
    """The module class summing (add) or concatenating along channels (concat) its inputs."""
    torch = require_torch()

    class Join(torch.nn.Module):
        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind

        def forward(self, *xs: Any) -> Any:
            if self.kind == "concat":
                return torch.cat(xs, dim=1)
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    return Join


def _input_shapes(layer: Layer, model: Model) -> list[tuple[int, ...]]:
    if not layer.inputs:
        return [layer.in_shape]
    by_name = {lyr.name: lyr for lyr in model.layers}
    return [by_name[name].out_shape for name in layer.inputs]


#: the torch dtype each profiled precision runs in (fp32 and tf32 differ by the TF32 switches)
PROFILE_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16", "amp": "float16"}


class _TF32Switches:
    """Set torch's two TF32 switches for the measurement and restore them afterwards (no global change)."""

    def __init__(self, torch: Any, allow: bool) -> None:
        self.torch, self.allow, self.saved = torch, allow, (True, False)

    def __enter__(self) -> None:
        backends = self.torch.backends
        self.saved = (backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32)
        backends.cudnn.allow_tf32 = backends.cuda.matmul.allow_tf32 = self.allow

    def __exit__(self, *exc: Any) -> None:
        backends = self.torch.backends
        backends.cudnn.allow_tf32, backends.cuda.matmul.allow_tf32 = self.saved


def _median_seconds(fn: Any, torch: Any, cuda: bool, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def profile_model(model: Model, batches: list[int], device: str = "cpu", warmup: int = 2,
                  repeats: int = 5, memory_format: str = "nchw", precision: str = "fp32") -> list[dict[str, Any]]:
    """Time every layer of ``model`` at every batch size.

    Parameters
    ----------
    model : Model
    batches : list of int
        Batch sizes to measure.
    device : {"cpu", "cuda"}
    warmup, repeats : int
        Untimed and timed calls per measurement (the median of the timed ones is kept).
    memory_format : {"nchw", "nhwc"}
        Layout of 4-d activations and weights: PyTorch's default, or ``torch.channels_last`` (what
        ``dnnsim calibrate compute --memory-format`` is then told).
    precision : {"fp32", "tf32", "bf16", "fp16", "amp"}
        What the layers compute in (module docstring).

    Returns
    -------
    list of dict
        One row per (layer, batch): ``layer, kind, batch, fwd_s, bwd_s, device, precision,
        memory_format`` (the CSV that ``profile:FILE`` reads).

    Raises
    ------
    UserError
        ``torch`` when PyTorch is missing, ``device`` when CUDA is asked for but absent, ``memory_format``
        for an unknown layout, ``precision`` for one that cannot be profiled or a layer torch cannot run
        in it on this device.
    """
    torch = require_torch()
    if device not in ("cpu", "cuda"):
        raise UserError("device", f"{device!r} is not a profiling device", "cpu or cuda")
    if memory_format not in ("nchw", "nhwc"):
        raise UserError("memory_format", f"{memory_format!r} is not a memory format", "nchw or nhwc")
    if precision not in PROFILE_DTYPES:
        raise UserError("precision", f"{precision!r} cannot be profiled",
                        f"{', '.join(PROFILE_DTYPES)} (fp8 needs Transformer Engine)")
    layout = torch.channels_last if memory_format == "nhwc" else torch.contiguous_format
    dtype = getattr(torch, PROFILE_DTYPES[precision])

    def laid_out(x: Any) -> Any:
        return x.contiguous(memory_format=layout) if x.dim() == 4 else x

    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise UserError("device", "CUDA was asked for but torch sees no GPU", "--device cpu, or a machine with CUDA")
    torch.manual_seed(0)
    rows = []
    with _TF32Switches(torch, precision == "tf32"):
        for layer in model.layers:
            module = layer_module(layer).to(device=device, dtype=dtype).train()
            if memory_format == "nhwc":
                module = module.to(memory_format=layout)
            for b in batches:
                xs = [laid_out(torch.randn((b, *shape), device=device, dtype=dtype)).requires_grad_()
                      for shape in _input_shapes(layer, model)]
                try:
                    fwd_s = _median_seconds(lambda m=module, xs=xs: m(*xs), torch, cuda, warmup, repeats)
                    out = module(*xs)
                    grad = torch.randn_like(out)
                    bwd_s = _median_seconds(lambda out=out, grad=grad: out.backward(grad, retain_graph=True),
                                            torch, cuda, warmup, repeats)
                except (RuntimeError, NotImplementedError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise UserError("precision", f"layer {layer.name!r} ({layer.kind}) does not run in {precision} "
                                    f"on {device}: {reason}", "another --precision or --device") from None
                rows.append({"layer": layer.name, "kind": layer.kind, "batch": b, "fwd_s": fwd_s, "bwd_s": bwd_s,
                             "device": device, "precision": precision, "memory_format": memory_format})
                del out, grad, xs
    return rows
