"""Import a PyTorch ``nn.Module`` as a dnnsim :class:`~workloads.layer.Model` (``--model torch:...``).

A spec ``torch:FILE_OR_MODULE:FACTORY`` names a Python module (``torchvision.models``) or a ``.py`` file
(``./mynet.py``) and a callable in it returning an ``nn.Module`` (or the module itself). The module is
traced with ``torch.fx.symbolic_trace``, run once in eval mode on zeros of shape ``(2, *input_shape)``
(a :class:`torch.fx.Interpreter` recording shapes; on the meta device, where the factory builds the module,
so nothing is computed) to learn every tensor's shape, and each traced op becomes
a dnnsim layer whose shape, parameters and FLOPs are computed by dnnsim's own constructors
(:mod:`workloads.build`) from the module's hyper-parameters. Every layer's output shape is checked against
the shape torch propagated. The first op with no mapping is a :class:`~sim.errors.UserError` naming it and
listing what is supported (:data:`SUPPORTED`).

Mapping (per-sample shapes: the traced batch dimension 0 is dropped)
---------------------------------------------------------------------
=====================================  ==============================================================
``nn.Conv2d`` (dilation 1)             ``conv``
``nn.Linear`` on ``(F,)``              ``fc``
``nn.Linear`` on ``(S, F)``            ``fc`` applied per position: ``2*S*Fin*Fout`` FLOPs
``nn.MaxPool2d``, ``nn.AvgPool2d``     ``pool`` (``max``/``avg``)
``nn.Adaptive{Avg,Max}Pool2d``         left out when it is the identity on its input (AlexNet's and
                                       VGG's at 224x224, as the zoo does); else a ``pool`` whose
                                       window divides the input (stride 1 along a single-window axis)
``nn.BatchNorm1d/2d``, ``nn.GroupNorm``  ``norm`` (``2*C`` parameters when affine)
``nn.LayerNorm``                       ``norm`` (op ``layernorm``, 7 FLOPs per element)
``nn.LocalResponseNorm``               ``lrn``
ReLU, Sigmoid, Tanh, GELU              ``act`` (module, ``torch.*``, ``F.*`` or tensor method)
``nn.Dropout``, ``F.dropout``          ``dropout``
``nn.Softmax``, ``softmax``            ``softmax``
``+`` / ``torch.add`` of two tensors   ``add`` (a residual join, ``inputs`` names both producers)
``torch.cat`` along channels           ``concat``
``flatten`` / ``view`` / ``reshape``   ``flatten`` to ``(F,)``; left out when the shape is unchanged
``nn.Identity``, ``contiguous``        left out
``nn.MultiheadAttention``              self-attention, ``batch_first=True``: ``fc`` ``<name>.in_proj``
                                       ``(S,E)->(S,3E)``, ``attention`` ``<name>.attention`` (no
                                       parameters, ``4*S^2*E`` FLOPs: ``Q K^T`` and ``P V``), ``fc``
                                       ``<name>.out_proj`` ``(S,E)->(S,E)``
=====================================  ==============================================================

FLOPs against ``torch.utils.flop_counter.FlopCounterMode``: torch counts 2 per multiply-add of
convolutions, ``mm``/``addmm`` (linear; the bias add is not counted), ``bmm`` and scaled-dot-product
attention, and nothing for elementwise ops, norms or pooling. dnnsim counts the same 2 per multiply-add
for ``conv``, ``fc`` and ``attention`` layers (bias not counted) and, besides, its own per-element
costs for the other kinds (:mod:`workloads.build`), so the sum over ``conv``, ``fc`` and ``attention``
layers equals FlopCounterMode's total per sample. (``nn.MultiheadAttention`` must run with autograd on
for FlopCounterMode to see it: with grad off in eval mode torch takes a fused fast path it does not count.)

Imported models carry ``dataset_size`` N = 1,281,167 (ImageNet-1k's training set, as the zoo's
torchvision models); ``--dataset-size`` overrides it. torch is imported inside the functions only.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import operator
from pathlib import Path
from typing import Any

from sim.errors import UserError
from workloads import build
from workloads.layer import Layer, Model
from workloads.zoo import IMAGENET_1K_TRAIN_N

PREFIX = "torch:"
SPEC_FORM = "torch:FILE_OR_MODULE:FACTORY, e.g. torch:torchvision.models:resnet18 or torch:./mynet.py:build"
SHAPE_FORM = "a per-sample shape such as 3x224x224 (CxHxW), 64x512 (SxF) or 784 (F), positive integers"
#: what the importer maps, for error messages
SUPPORTED = ("Conv2d, Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, BatchNorm1d/2d, "
             "GroupNorm, LayerNorm, LocalResponseNorm, ReLU, Sigmoid, Tanh, GELU, Dropout, Softmax, Flatten, "
             "Identity, MultiheadAttention (self-attention, batch_first), tensor + tensor, torch.cat on "
             "channels, flatten/view/reshape to (N, -1)")
#: traced batch size; 2 so that an op mixing samples is caught
TRACE_BATCH = 2
#: FLOPs per element of layer norm: mean 1, subtract 1, square-and-sum 2, normalize 1, scale and shift 2
LAYERNORM_FLOPS_PER_ELEM = 7.0


def is_torch_spec(text: str) -> bool:
    """True for a ``torch:...`` model spec."""
    return str(text).startswith(PREFIX)


def parse_input_shape(value: Any) -> tuple[int, ...]:
    """``"3x224x224"`` (or a list of ints) -> ``(3, 224, 224)``.

    Examples
    --------
    >>> parse_input_shape("3x32x32"), parse_input_shape(784), parse_input_shape([16, 8])
    ((3, 32, 32), (784,), (16, 8))
    """
    if isinstance(value, int) and not isinstance(value, bool):
        parts: list[Any] = [value]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.lower().split("x")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise UserError("input_shape", f"{value!r} is not a shape", SHAPE_FORM)
    shape = []
    for part in parts:
        if isinstance(part, str) and part.isdigit():
            part = int(part)
        if not isinstance(part, int) or isinstance(part, bool) or part < 1:
            raise UserError("input_shape", f"{value!r} is not a shape", SHAPE_FORM)
        shape.append(part)
    if not 1 <= len(shape) <= 3:
        raise UserError("input_shape", f"{value!r} has {len(shape)} dimensions", SHAPE_FORM)
    return tuple(shape)


def split_spec(spec: str) -> tuple[str, str]:
    """``"torch:pkg.mod:build"`` -> ``("pkg.mod", "build")``."""
    body = str(spec)[len(PREFIX):] if is_torch_spec(spec) else str(spec)
    target, sep, factory = body.rpartition(":")
    if not sep or not target or not factory.isidentifier():
        raise UserError("model", f"{spec!r} is not a torch model spec", SPEC_FORM)
    return target, factory


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_target(target: str) -> Any:
    """The Python module named by ``target`` (a dotted module name or a ``.py`` file)."""
    if _is_file(target):
        path = Path(target)
        if not path.is_file():
            raise UserError("model", f"file {target!r} does not exist", "an existing .py file, " + SPEC_FORM)
        name = f"dnnsim_torch_import_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise UserError("model", f"{target!r} cannot be loaded as Python", "a .py file")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise UserError("model", f"running {target!r} raised {_first_line(exc)}",
                            "a .py file that imports cleanly") from None
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise UserError("model", f"cannot import {target!r} ({_first_line(exc)})",
                        "an importable module (PACKAGE.MODULE) or a .py file, " + SPEC_FORM) from None
    except Exception as exc:
        raise UserError("model", f"importing {target!r} raised {_first_line(exc)}",
                        "a module that imports cleanly") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_module(spec: str) -> Any:
    """The ``nn.Module`` named by ``spec``: the factory called with no arguments (or the module itself).

    The factory runs under ``torch.device("meta")`` so that no weights are allocated; a factory that
    fails there is called again on the default device.

    Raises
    ------
    UserError
        Unimportable target, missing or non-callable factory, a factory that raises or returns no module.
    """
    torch = _require_torch()
    target, factory_name = split_spec(spec)
    module = _import_target(target)
    if not hasattr(module, factory_name):
        raise UserError("model", f"{target!r} has no {factory_name!r}", "a factory function defined in it")
    factory = getattr(module, factory_name)
    if isinstance(factory, torch.nn.Module):
        return factory
    if not callable(factory):
        raise UserError("model", f"{target}:{factory_name} is a {type(factory).__name__}, not callable",
                        "a function or class returning a torch.nn.Module when called with no arguments")
    try:
        with torch.device("meta"):  # shapes only: no weights allocated or initialised
            net = factory()
    except Exception:
        try:  # a factory that needs real tensors (loads weights, builds tensors on a named device)
            net = factory()
        except Exception as exc:
            raise UserError("model", f"{factory_name}() raised {_first_line(exc)}",
                            "a factory callable with no arguments") from None
    if not isinstance(net, torch.nn.Module):
        raise UserError("model", f"{factory_name}() returned a {type(net).__name__}, not a torch.nn.Module",
                        "a factory returning a torch.nn.Module")
    return net


def import_model(spec: str, input_shape: Any, dataset_size: int = IMAGENET_1K_TRAIN_N) -> Model:
    """The dnnsim model of the ``torch:FILE_OR_MODULE:FACTORY`` spec on a per-sample ``input_shape``.

    Parameters
    ----------
    spec : str
        ``torch:FILE_OR_MODULE:FACTORY``.
    input_shape : str or sequence of int or None
        ``"3x224x224"``; required.
    dataset_size : int
        N of the model.

    Returns
    -------
    Model
        Named ``MODULE.FACTORY`` (``mynet.build`` for ``./mynet.py``).
    """
    if input_shape is None or input_shape == "":
        raise UserError("input_shape", f"is missing for {spec}",
                        "--input-shape with " + SHAPE_FORM)
    shape = parse_input_shape(input_shape)
    target, factory = split_spec(spec)
    stem = Path(target).stem if _is_file(target) else target
    return module_to_model(load_module(spec), shape, f"{stem}.{factory}", dataset_size)


def module_to_model(module: Any, input_shape: tuple[int, ...], name: str,
                    dataset_size: int = IMAGENET_1K_TRAIN_N) -> Model:
    """Trace ``module`` with torch.fx and map its ops to dnnsim layers (module docstring).

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : tuple of int
        Per sample, channels first.
    name : str
        Model name.
    dataset_size : int

    Returns
    -------
    Model
    """
    torch = _require_torch()
    from torch.fx import symbolic_trace

    try:
        gm = symbolic_trace(module)
    except Exception as exc:
        raise UserError("model", f"torch.fx cannot trace {name} ({_first_line(exc)})",
                        "a module torch.fx.symbolic_trace can trace: no control flow on tensor values") from None
    gm.eval()
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UserError("model", f"{name}.forward takes {len(placeholders)} inputs",
                        "a forward taking one input tensor")
    tensors = [*module.parameters(), *module.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    shapes = _propagate(gm, torch.zeros((TRACE_BATCH, *input_shape), device=device), name)
    return _Importer(gm, shapes, tuple(input_shape), name).run(dataset_size)


def _propagate(gm: Any, x: Any, name: str) -> dict[Any, Any]:
    """Run ``gm`` on ``x`` node by node: fx node -> full output shape (a tuple), a list of them for a
    node returning several values (``None`` for a non-tensor), or ``None`` for a non-tensor value."""
    import torch
    from torch.fx import Interpreter

    shapes: dict[Any, Any] = {}

    def shape_of(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return tuple(int(s) for s in value.shape)
        if isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
            return [tuple(int(s) for s in v.shape) if isinstance(v, torch.Tensor) else None for v in value]
        return None

    class Recorder(Interpreter):
        def __init__(self, module: Any) -> None:
            super().__init__(module)
            self.extra_traceback = False  # else torch appends its node dump to the UserError's text

        def run_node(self, node: Any) -> Any:
            try:
                result = super().run_node(node)
            except Exception as exc:
                raise UserError("input_shape", f"{name} fails on a {_fmt(tuple(x.shape[1:]))} input at "
                                               f"{_describe(gm, node)} ({_first_line(exc)})",
                                "the per-sample input shape the model expects, channels first") from None
            shapes[node] = shape_of(result)
            return result

    with torch.no_grad():
        Recorder(gm).run(x)
    return shapes


def _describe(gm: Any, node: Any) -> str:
    """``Conv2d (module features.0)``, ``function add (node add_3)``: an fx node for error messages."""
    if node.op == "call_module":
        return f"{type(gm.get_submodule(node.target)).__name__} (module {node.target})"
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    kind = {"call_method": "method", "call_function": "function", "get_attr": "attribute"}.get(node.op, node.op)
    return f"{kind} {target} (node {node.name})"


def _require_torch() -> Any:
    from workloads.torch_profile import require_torch

    return require_torch()


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _unsupported(what: str) -> UserError:
    return UserError("model", f"{what} cannot be mapped to a dnnsim layer", f"supported: {SUPPORTED}")


class _Importer:
    """Walks a shape-propagated graph in order, appending one dnnsim layer per mapped op."""

    def __init__(self, gm: Any, shapes: dict[Any, Any], input_shape: tuple[int, ...], name: str) -> None:
        self.gm = gm
        self.full = shapes  # fx node -> full shape (batch first), list of them, or None
        self.input_shape = input_shape
        self.name = name
        self.layers: list[Layer] = []
        self.names: set[str] = set()
        self.producer: dict[Any, str] = {}  # fx node -> name of the layer holding its value ("" = input)
        self.shape: dict[Any, tuple[int, ...]] = {}  # fx node -> per-sample shape

    # ---------------------------------------------------------------- plumbing
    def run(self, dataset_size: int) -> Model:
        for node in self.gm.graph.nodes:
            self._visit(node)
        if not self.layers:
            raise UserError("model", f"{self.name} maps to no layers", "a module with at least one supported op")
        return Model(self.name, self.input_shape, tuple(self.layers), dataset_size)

    def _describe(self, node: Any) -> str:
        return _describe(self.gm, node)

    def _tensor_shape(self, node: Any) -> tuple[int, ...] | None:
        full = self.full.get(node)
        if not isinstance(full, tuple):
            return None
        if not full or full[0] != TRACE_BATCH:
            raise UserError("model", f"{self._describe(node)} gives a tensor of shape {list(full)} whose first "
                                     f"dimension is not the batch of {TRACE_BATCH}",
                            "ops that keep dimension 0 as the batch")
        return full[1:]

    def _src(self, node: Any) -> str:
        if node not in self.producer:
            raise _unsupported(f"the value of {self._describe(node)}")
        return self.producer[node]

    def _single_input(self, node: Any) -> Any:
        tensors = [a for a in node.args if hasattr(a, "op")]
        if not tensors:
            raise _unsupported(self._describe(node))
        return tensors[0]

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        return name

    def _append(self, layer: Layer, node: Any | None, torch_shape: tuple[int, ...] | None) -> str:
        if torch_shape is not None and tuple(layer.out_shape) != torch_shape:
            raise UserError("model", f"{self._describe(node)}: dnnsim computes output {_fmt(layer.out_shape)} but "
                                     f"torch gives {_fmt(torch_shape)}", f"supported: {SUPPORTED}")
        self.layers.append(layer)
        self.names.add(layer.name)
        return layer.name

    def _chain_inputs(self, src: str) -> tuple[str, ...]:
        """``()`` when ``src`` is the previous layer (or the input before any layer), else ``(src,)``."""
        last = self.layers[-1].name if self.layers else ""
        return () if src == last else (src,)

    # ---------------------------------------------------------------- dispatch
    def _visit(self, node: Any) -> None:
        if node.op == "placeholder":
            self.producer[node] = ""
            self.shape[node] = self.input_shape
            return
        if node.op == "output" or (node.target is operator.getitem and not node.users):
            return
        if node.op == "get_attr":
            raise _unsupported(self._describe(node))
        out = self.full.get(node)
        if out is None:  # size(), dim() and other non-tensor values feed shapes only
            return
        if isinstance(out, list):  # a module returning several tensors
            if node.op == "call_module" and self._is_module(node, "MultiheadAttention"):
                self._attention(node)
                return
            raise _unsupported(self._describe(node) + " returning several tensors")
        if node.target is operator.getitem and isinstance(self.full.get(node.args[0]), tuple):
            raise _unsupported(self._describe(node) + " (tensor indexing)")
        shape = self._tensor_shape(node)
        if node.op == "call_module":
            self._module(node, self.gm.get_submodule(node.target), shape)
        else:
            self._function(node, shape)
        self.shape[node] = shape

    def _is_module(self, node: Any, cls_name: str) -> bool:
        return type(self.gm.get_submodule(node.target)).__name__ == cls_name

    # ---------------------------------------------------------------- modules
    def _module(self, node: Any, mod: Any, shape: tuple[int, ...]) -> None:
        import torch.nn as nn

        arg = self._single_input(node)
        src, in_shape = self._src(arg), self.shape[arg]
        inputs = self._chain_inputs(src)
        name = self._unique(node.target)
        if isinstance(mod, nn.Identity):
            self.producer[node] = src
            return
        if isinstance(mod, nn.Conv2d):
            if tuple(mod.dilation) != (1, 1):
                raise _unsupported(self._describe(node) + f" with dilation {tuple(mod.dilation)}")
            if len(in_shape) != 3:
                raise _unsupported(self._describe(node) + f" on a {_fmt(in_shape)} input")
            padding = mod.padding
            if isinstance(padding, str):
                padding = _same_padding(mod.kernel_size) if padding == "same" else (0, 0)
            layer = build.conv(name, in_shape, mod.out_channels, tuple(mod.kernel_size), tuple(mod.stride),
                               tuple(padding), mod.groups, mod.bias is not None, inputs)
        elif isinstance(mod, nn.Linear):
            layer = self._linear(node, name, in_shape, mod.out_features, mod.bias is not None, inputs)
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            if isinstance(mod, nn.MaxPool2d) and mod.dilation not in (1, (1, 1)):
                raise _unsupported(self._describe(node) + f" with dilation {mod.dilation}")
            op = "max" if isinstance(mod, nn.MaxPool2d) else "avg"
            layer = build.pool(name, in_shape, _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size),
                               _pair(mod.padding), op, bool(mod.ceil_mode), inputs)
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            self._adaptive(node, name, in_shape, shape, "avg" if isinstance(mod, nn.AdaptiveAvgPool2d) else "max",
                           inputs)
            return
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            layer = _with_params(build.norm(name, in_shape, inputs), mod)
        elif isinstance(mod, nn.LayerNorm):
            layer = Layer(name, "norm", in_shape, in_shape, params=_numel(mod),
                          fwd_flops_per_sample=LAYERNORM_FLOPS_PER_ELEM * math.prod(in_shape), inputs=inputs,
                          op="layernorm")
        elif isinstance(mod, nn.LocalResponseNorm):
            layer = build.lrn(name, in_shape, mod.size, inputs)
        elif type(mod) in _act_modules():
            layer = build.act(name, in_shape, _act_modules()[type(mod)], inputs)
        elif isinstance(mod, nn.Dropout):
            layer = build.dropout(name, in_shape, float(mod.p), inputs)
        elif isinstance(mod, nn.Softmax):
            layer = build.softmax(name, in_shape, inputs)
        elif isinstance(mod, nn.Flatten):
            self._reshape(node, name, src, in_shape, shape, inputs, mod.start_dim == 1 and mod.end_dim == -1)
            return
        else:
            raise _unsupported(self._describe(node))
        self.producer[node] = self._append(layer, node, shape)

    def _linear(self, node: Any, name: str, in_shape: tuple[int, ...], out_features: int, bias: bool,
                inputs: tuple[str, ...]) -> Layer:
        if len(in_shape) == 1:
            return build.fc(name, in_shape, out_features, bias, inputs)
        if len(in_shape) == 2:
            return _token_linear(name, in_shape, out_features, bias, inputs)
        raise _unsupported(self._describe(node) + f" on a {_fmt(in_shape)} input (flatten it first)")

    def _adaptive(self, node: Any, name: str, in_shape: tuple[int, ...], shape: tuple[int, ...], op: str,
                  inputs: tuple[str, ...]) -> None:
        """Adaptive pooling: left out when it is the identity, else appended as a fixed window."""
        if shape == in_shape:
            self.producer[node] = self._src(self._single_input(node))
            return
        if len(in_shape) != 3:
            raise _unsupported(self._describe(node) + f" on a {_fmt(in_shape)} input")
        _, h, w = in_shape
        _, oh, ow = shape
        if h % oh or w % ow:
            raise _unsupported(self._describe(node) + f" from {h}x{w} to {oh}x{ow} (uneven windows)")
        kernel = (h // oh, w // ow)
        stride = (1 if oh == 1 else kernel[0], 1 if ow == 1 else kernel[1])
        layer = build.pool(name, in_shape, kernel, stride, 0, op, False, inputs)
        self.producer[node] = self._append(layer, node, shape)

    def _reshape(self, node: Any, name: str, src: str, in_shape: tuple[int, ...], shape: tuple[int, ...],
                 inputs: tuple[str, ...], flat_ok: bool = True) -> None:
        if shape == in_shape:
            self.producer[node] = src
        elif len(shape) == 1 and flat_ok:
            self.producer[node] = self._append(build.flatten(name, in_shape, inputs), node, shape)
        else:
            raise _unsupported(self._describe(node) + f" from {_fmt(in_shape)} to {_fmt(shape)}")

    def _attention(self, node: Any) -> None:
        mod = self.gm.get_submodule(node.target)
        query, key, value = (node.args[i] if i < len(node.args) else node.kwargs.get(k)
                             for i, k in enumerate(("query", "key", "value")))
        if not (query is key is value) or not mod.batch_first or not mod._qkv_same_embed_dim:
            raise _unsupported(self._describe(node) + " other than self-attention with batch_first=True")
        if mod.bias_k is not None or mod.add_zero_attn:
            raise _unsupported(self._describe(node) + " with add_bias_kv or add_zero_attn")
        src, in_shape = self._src(query), self.shape[query]
        if len(in_shape) != 2:
            raise _unsupported(self._describe(node) + f" on a {_fmt(in_shape)} input")
        s, e = in_shape
        heads = mod.num_heads
        bias = mod.in_proj_bias is not None
        base = self._unique(node.target)
        proj = _token_linear(f"{base}.in_proj", in_shape, 3 * e, bias, self._chain_inputs(src))
        self._append(proj, node, None)
        causal = bool(node.kwargs.get("is_causal", False))
        op = f"heads={heads},kv_heads={heads},head_dim={e // heads},causal={'true' if causal else 'false'}"
        self._append(Layer(f"{base}.attention", "attention", (s, 3 * e), (s, e),
                           fwd_flops_per_sample=4.0 * s * s * e, op=op), node, None)
        out = _token_linear(f"{base}.out_proj", (s, e), e, mod.out_proj.bias is not None, ())
        self.producer[node] = self._append(out, node, None)
        self.shape[node] = (s, e)
        for user in node.users:  # attn_output, attn_weights = mha(x, x, x)
            if user.target is not operator.getitem or (user.args[1] != 0 and user.users):
                raise _unsupported(self._describe(node) + " with its attention weights used")

    # ---------------------------------------------------------------- functions and methods
    def _function(self, node: Any, shape: tuple[int, ...]) -> None:
        target = node.target
        fname = target if isinstance(target, str) else getattr(target, "__name__", "")
        if target is operator.getitem:  # output 0 of a MultiheadAttention
            parent = node.args[0]
            if node.args[1] != 0:
                raise _unsupported(self._describe(parent) + " with its attention weights used")
            self.producer[node] = self._src(parent)
            return
        tensors = [a for a in node.args if hasattr(a, "op")]
        if fname == "cat" or fname == "concat":
            tensors = list(node.args[0]) if node.args else list(node.kwargs.get("tensors", []))
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim not in (1, 1 - (len(shape) + 1)):
                raise _unsupported(self._describe(node) + f" along dimension {dim}")
            srcs = tuple(self._src(t) for t in tensors)
            layer = build.concat(self._unique(node.name), [self.shape[t] for t in tensors], srcs)
            self.producer[node] = self._append(layer, node, shape)
            return
        if fname in ("add", "iadd", "add_"):
            others = [a for a in node.args if not hasattr(a, "op")]
            if len(tensors) != 2 or others or node.kwargs:
                raise _unsupported(self._describe(node) + " other than tensor + tensor")
            if self.shape[tensors[0]] != self.shape[tensors[1]]:
                raise _unsupported(self._describe(node) + " of tensors of different shapes (broadcasting)")
            srcs = tuple(self._src(t) for t in tensors)
            layer = build.add(self._unique(node.name), [self.shape[t] for t in tensors], srcs)
            self.producer[node] = self._append(layer, node, shape)
            return
        if not tensors:
            raise _unsupported(self._describe(node))
        arg = tensors[0]
        src, in_shape = self._src(arg), self.shape[arg]
        inputs = self._chain_inputs(src)
        name = self._unique(node.name)
        if fname in ("contiguous", "clone"):
            self.producer[node] = src
        elif fname in ("relu", "relu_", "sigmoid", "tanh", "gelu") and len(tensors) == 1:
            self.producer[node] = self._append(build.act(name, in_shape, fname.rstrip("_"), inputs), node, shape)
        elif fname == "dropout":
            p = node.args[1] if len(node.args) > 1 else node.kwargs.get("p", 0.5)
            self.producer[node] = self._append(build.dropout(name, in_shape, float(p), inputs), node, shape)
        elif fname == "softmax":
            self.producer[node] = self._append(build.softmax(name, in_shape, inputs), node, shape)
        elif fname in ("flatten", "view", "reshape"):
            self._reshape(node, name, src, in_shape, shape, inputs)
        elif fname == "adaptive_avg_pool2d":
            self._adaptive(node, name, in_shape, shape, "avg", inputs)
        else:
            raise _unsupported(self._describe(node))


def _act_modules() -> dict[type, str]:
    import torch.nn as nn

    return {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.GELU: "gelu"}


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _same_padding(kernel: tuple[int, ...]) -> tuple[int, int]:
    if any(k % 2 == 0 for k in kernel):
        raise _unsupported(f"Conv2d padding='same' with an even kernel {tuple(kernel)}")
    return kernel[0] // 2, kernel[1] // 2


def _numel(mod: Any) -> int:
    return sum(p.numel() for p in mod.parameters(recurse=False))


def _with_params(layer: Layer, mod: Any) -> Layer:
    """``norm`` with the module's own affine parameters (0 when ``affine=False``)."""
    if getattr(mod, "affine", True):
        return layer
    return dataclasses.replace(layer, params=0)


def _token_linear(name: str, in_shape: tuple[int, ...], out_features: int, bias: bool,
                  inputs: tuple[str, ...]) -> Layer:
    """``nn.Linear`` on ``(S, Fin)``: applied to every position, kind ``fc``."""
    s, fin = in_shape
    params = fin * out_features + (out_features if bias else 0)
    return Layer(name, "fc", (s, fin), (s, out_features), params=params,
                 fwd_flops_per_sample=2.0 * s * fin * out_features, inputs=tuple(inputs))


__all__ = ["PREFIX", "SUPPORTED", "import_model", "is_torch_spec", "load_module", "module_to_model",
           "parse_input_shape", "split_spec"]
