"""Layer constructors: compute a layer's output shape, parameter count and forward FLOPs from its arguments.

Every function here takes the per-sample input shape (channels first, ``(C, H, W)`` or ``(F,)``) and
returns a frozen :class:`~workloads.layer.Layer`. Bad arguments (non-positive sizes, a kernel larger than
its padded input, channels not divisible by groups, shapes that do not match) raise
:class:`~sim.errors.UserError` with ``field`` set to ``layer <name>``, so model files get one-line errors.

FLOP convention (2 FLOPs per multiply-add; the published totals we test against count only the
multiply-adds of convolutions and fully connected layers, so bias additions are *not* counted):

========  ==================================================================================
conv      ``2 * kh * kw * (Cin / groups) * Cout * Hout * Wout``
fc        ``2 * in_features * out_features``
pool      ``kh * kw`` per output element (one compare or add per window element)
norm      ``2`` per element (batch-norm folded to scale and shift at inference cost)
act       ``1`` per element
lrn       ``2 * size + 2`` per element (sum of ``size`` squares, then scale and power)
add       ``n_inputs - 1`` per element
softmax   ``3`` per element (exp, sum, divide)
dropout   ``1`` per element (mask multiply)
concat    ``0`` (a copy); flatten ``0`` (a view)
========  ==================================================================================

Parameters: conv ``kh*kw*(Cin/groups)*Cout`` plus ``Cout`` bias; fc ``in*out`` plus ``out`` bias;
batch-norm ``2*C`` (scale and shift; running statistics are buffers, not parameters).

Examples
--------
>>> c = conv("conv1", (3, 227, 227), 96, 11, stride=4)
>>> c.out_shape, c.params
((96, 55, 55), 34944)
>>> c.fwd_flops_per_sample == 2 * 11 * 11 * 3 * 96 * 55 * 55
True
>>> fc("fc8", (4096,), 1000).params
4097000
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sim.errors import UserError
from workloads.layer import Layer

ACT_FUNCTIONS = ("relu", "sigmoid", "tanh", "gelu")
POOL_OPS = ("max", "avg")


def _pair(value: int | Sequence[int], name: str, what: str, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``[3, 5] -> (3, 5)``; each entry an int >= ``minimum``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or any(not isinstance(v, int) or isinstance(v, bool) or v < minimum for v in pair)):
        raise UserError(f"layer {name}", f"{what} {value!r} is not valid",
                        f"an integer >= {minimum} or a pair [h, w] of them")
    return int(pair[0]), int(pair[1])


def _positive(value: object, name: str, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"layer {name}", f"{what} {value!r} is not a positive integer", f"{what} >= 1")
    return value


def _spatial(in_shape: tuple[int, ...], name: str, kind: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise UserError(f"layer {name}", f"{kind} needs a (C, H, W) input but gets shape {_fmt(in_shape)}",
                        "put it before any flatten/fc layer")
    c, h, w = in_shape
    return c, h, w


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def _window_out(size: int, k: int, s: int, p: int, ceil_mode: bool, name: str, axis: str) -> int:
    """Output length of a sliding window (PyTorch / Caffe formula)."""
    span = size + 2 * p - k
    if span < 0:
        raise UserError(f"layer {name}", f"kernel {k} is larger than the padded input {axis} {size}+2*{p}",
                        "a kernel no larger than the input plus padding")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # last window must start inside the input (PyTorch rule)
        out -= 1
    return out


def conv(name: str, in_shape: tuple[int, ...], out_channels: int, kernel: int | Sequence[int],
         stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, groups: int = 1,
         bias: bool = True, inputs: tuple[str, ...] = ()) -> Layer:
    """A 2-D convolution.

    Parameters
    ----------
    name : str
        Layer name.
    in_shape : tuple of int
        ``(Cin, H, W)``.
    out_channels : int
        ``Cout``.
    kernel, stride, padding : int or pair of int
        ``k`` or ``(kh, kw)``; padding may be 0.
    groups : int
        Grouped convolution; must divide ``Cin`` and ``Cout``.
    bias : bool
        Whether a bias of ``Cout`` values is added (counted in ``params``, not in FLOPs).
    inputs : tuple of str
        Producer layer names; empty means the previous layer.

    Returns
    -------
    Layer
        ``kind="conv"``, output ``(Cout, Hout, Wout)`` with ``Hout = (H + 2ph - kh) // sh + 1``.
    """
    cin, h, w = _spatial(tuple(in_shape), name, "conv")
    cout = _positive(out_channels, name, "out_channels")
    kh, kw = _pair(kernel, name, "kernel")
    sh, sw = _pair(stride, name, "stride")
    ph, pw = _pair(padding, name, "padding", minimum=0)
    g = _positive(groups, name, "groups")
    if cin % g or cout % g:
        raise UserError(f"layer {name}", f"groups={g} does not divide in channels {cin} and out channels {cout}",
                        "groups dividing both channel counts")
    ho = _window_out(h, kh, sh, ph, False, name, "height")
    wo = _window_out(w, kw, sw, pw, False, name, "width")
    weights = kh * kw * (cin // g) * cout
    params = weights + (cout if bias else 0)
    flops = 2.0 * weights * ho * wo
    return Layer(name, "conv", (cin, h, w), (cout, ho, wo), (kh, kw), (sh, sw), (ph, pw), g, params, flops,
                 tuple(inputs))


def fc(name: str, in_shape: tuple[int, ...], out_features: int, bias: bool = True,
       inputs: tuple[str, ...] = ()) -> Layer:
    """A fully connected (inner product) layer.

    A multi-dimensional input is flattened implicitly, as Caffe's InnerProduct does:
    ``in_features = prod(in_shape)``.

    Parameters
    ----------
    name : str
    in_shape : tuple of int
    out_features : int
    bias : bool
        Adds ``out_features`` parameters (no FLOPs counted).
    inputs : tuple of str

    Returns
    -------
    Layer
        ``kind="fc"``, output ``(out_features,)``, ``2 * in * out`` forward FLOPs.
    """
    fin = math.prod(in_shape)
    fout = _positive(out_features, name, "out_features")
    params = fin * fout + (fout if bias else 0)
    return Layer(name, "fc", tuple(in_shape), (fout,), params=params, fwd_flops_per_sample=2.0 * fin * fout,
                 inputs=tuple(inputs))


def pool(name: str, in_shape: tuple[int, ...], kernel: int | Sequence[int], stride: int | Sequence[int] | None = None,
         padding: int | Sequence[int] = 0, op: str = "max", ceil_mode: bool = False,
         inputs: tuple[str, ...] = ()) -> Layer:
    """Max or average pooling over windows of each channel.

    Parameters
    ----------
    name : str
    in_shape : tuple of int
        ``(C, H, W)``.
    kernel : int or pair
    stride : int or pair, optional
        Defaults to ``kernel``.
    padding : int or pair
    op : {"max", "avg"}
    ceil_mode : bool
        Round the output size up (Caffe's rule) instead of down (PyTorch's default).
    inputs : tuple of str

    Returns
    -------
    Layer
        ``kind="pool"``, ``kh * kw`` FLOPs per output element, no parameters.
    """
    c, h, w = _spatial(tuple(in_shape), name, "pool")
    if op not in POOL_OPS:
        raise UserError(f"layer {name}", f"pool op {op!r} is unknown", f"one of {', '.join(POOL_OPS)}")
    kh, kw = _pair(kernel, name, "kernel")
    sh, sw = _pair(kernel if stride is None else stride, name, "stride")
    ph, pw = _pair(padding, name, "padding", minimum=0)
    ho = _window_out(h, kh, sh, ph, ceil_mode, name, "height")
    wo = _window_out(w, kw, sw, pw, ceil_mode, name, "width")
    return Layer(name, "pool", (c, h, w), (c, ho, wo), (kh, kw), (sh, sw), (ph, pw),
                 fwd_flops_per_sample=float(kh * kw * c * ho * wo), inputs=tuple(inputs), op=op)


def _elementwise(name: str, kind: str, in_shape: tuple[int, ...], per_elem: float, params: int = 0,
                 inputs: tuple[str, ...] = (), op: str = "") -> Layer:
    shape = tuple(in_shape)
    return Layer(name, kind, shape, shape, params=params, fwd_flops_per_sample=per_elem * math.prod(shape),
                 inputs=tuple(inputs), op=op)


def norm(name: str, in_shape: tuple[int, ...], inputs: tuple[str, ...] = ()) -> Layer:
    """Batch normalization over channels: ``2*C`` parameters (scale, shift), 2 FLOPs per element."""
    return _elementwise(name, "norm", in_shape, 2.0, params=2 * int(in_shape[0]), inputs=inputs)


def act(name: str, in_shape: tuple[int, ...], fn: str = "relu", inputs: tuple[str, ...] = ()) -> Layer:
    """An elementwise activation (``relu``, ``sigmoid``, ``tanh``, ``gelu``): 1 FLOP per element."""
    if fn not in ACT_FUNCTIONS:
        raise UserError(f"layer {name}", f"activation {fn!r} is unknown", f"one of {', '.join(ACT_FUNCTIONS)}")
    return _elementwise(name, "act", in_shape, 1.0, inputs=inputs, op=fn)


def lrn(name: str, in_shape: tuple[int, ...], size: int = 5, inputs: tuple[str, ...] = ()) -> Layer:
    """Local response normalization across ``size`` channels (AlexNet): ``2*size + 2`` FLOPs per element."""
    _spatial(tuple(in_shape), name, "lrn")
    size = _positive(size, name, "size")
    return _elementwise(name, "lrn", in_shape, 2.0 * size + 2.0, inputs=inputs, op=f"size={size}")


def dropout(name: str, in_shape: tuple[int, ...], p: float = 0.5, inputs: tuple[str, ...] = ()) -> Layer:
    """Dropout with drop probability ``0 <= p < 1``: 1 FLOP per element (the mask multiply)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise UserError(f"layer {name}", f"dropout p={p!r} is out of range", "0 <= p < 1")
    return _elementwise(name, "dropout", in_shape, 1.0, inputs=inputs, op=f"p={p}")


def softmax(name: str, in_shape: tuple[int, ...], inputs: tuple[str, ...] = ()) -> Layer:
    """Softmax over the features: 3 FLOPs per element."""
    return _elementwise(name, "softmax", in_shape, 3.0, inputs=inputs)


def flatten(name: str, in_shape: tuple[int, ...], inputs: tuple[str, ...] = ()) -> Layer:
    """Reshape ``(C, H, W)`` to ``(C*H*W,)``: no FLOPs."""
    return Layer(name, "flatten", tuple(in_shape), (math.prod(in_shape),), inputs=tuple(inputs))


def add(name: str, in_shapes: Sequence[tuple[int, ...]], inputs: tuple[str, ...]) -> Layer:
    """Elementwise sum of two or more tensors of one shape (a residual join).

    Parameters
    ----------
    name : str
    in_shapes : sequence of tuple of int
        Shapes of the summed tensors, all equal.
    inputs : tuple of str
        Names of the producers, one per entry of ``in_shapes``.

    Returns
    -------
    Layer
        ``kind="add"``, ``len(inputs) - 1`` FLOPs per element.
    """
    shapes = [tuple(s) for s in in_shapes]
    if len(shapes) < 2 or len(shapes) != len(inputs):
        raise UserError(f"layer {name}", f"add needs two or more inputs, gets {list(inputs)}",
                        "inputs: a list of at least two layer names")
    if any(s != shapes[0] for s in shapes):
        raise UserError(f"layer {name}", f"add inputs have different shapes {[_fmt(s) for s in shapes]}",
                        "inputs of one shape")
    return _elementwise(name, "add", shapes[0], float(len(shapes) - 1), inputs=tuple(inputs))


def concat(name: str, in_shapes: Sequence[tuple[int, ...]], inputs: tuple[str, ...]) -> Layer:
    """Concatenate tensors along channels (all other dimensions equal); no FLOPs.

    ``in_shape`` of the layer is the concatenated shape (what it holds), as is ``out_shape``.
    """
    shapes = [tuple(s) for s in in_shapes]
    if len(shapes) < 2 or len(shapes) != len(inputs):
        raise UserError(f"layer {name}", f"concat needs two or more inputs, gets {list(inputs)}",
                        "inputs: a list of at least two layer names")
    if any(len(s) != len(shapes[0]) or s[1:] != shapes[0][1:] for s in shapes):
        raise UserError(f"layer {name}", f"concat inputs differ beyond channels: {[_fmt(s) for s in shapes]}",
                        "inputs with equal height and width")
    out = (sum(s[0] for s in shapes), *shapes[0][1:])
    return Layer(name, "concat", out, out, inputs=tuple(inputs))
