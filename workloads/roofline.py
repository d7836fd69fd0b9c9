"""Roofline compute model: a layer takes as long as its FLOPs at the precision's peak or its bytes at memory
bandwidth, whichever is longer, slowed by the achieved efficiency of the call.

For one rank doing a fraction ``shard`` of layer ``l`` on ``b`` local samples, forward::

    flops = fwd_flops_per_sample(l) * b * shard
    bytes = dtype_bytes * (params(l) + (in_elems(l) + out_elems(l)) * b) * shard

with ``peak`` the device's peak of the precision (:mod:`workloads.precision`; fp32 is ``peak_flops``).
Devices with ``efficiency`` curves (:mod:`workloads.efficiency`; the bundled GPUs) key the efficiency on
the work of the call, ``w_c = flops / peak`` and ``w_m = bytes / mem_bandwidth``::

    t_mem = (w_m + memory.half_s) / memory.max
    t_fwd = max((w_c + C.half_s) / C.max, t_mem)     conv and matmul layers (C: their class's curve,
                                                     tensor or simt by the precision's peak)
    t_fwd = t_mem                                    every other layer (memory-bound)

Devices with only ``b_half`` (the KNL fitted to the paper, the illustrative CPU, older user files) keep
the per-sample curve, bit for bit as before::

    t_fwd = max(flops / peak, bytes / mem_bandwidth) / efficiency(b)
    efficiency(b) = b / (b + b_half)          (saturating; 1/2 at b = b_half, -> 1 for large b)

Bytes moved are the weights read once plus the input read and the output written, at ``dtype_bytes``
(4, fp32, as the paper trains; the precision's word otherwise). Backward computes ΔX and ΔW, each about
one forward's work and traffic, so ``t_bwd = 2 * t_fwd`` (the usual rule; no better per-layer figure is
available from a roofline).

Memory format. cuDNN's tensor-core convolution kernels work on channels-last (NHWC) tensors; a
convolution on tensors in PyTorch's default NCHW layout is bracketed by transposes, NCHW -> NHWC of its
input and NHWC -> NCHW of its output ("channels last" in the PyTorch and cuDNN documentation). With
``memory_format="nchw"`` (the default, PyTorch's) a convolution at a tensor-core precision therefore
also pays one read and one write of its input and of its output, as memory-bound kernels::

    t_fwd += t_mem(2 * dtype_bytes * (in_elems + out_elems) * b * shard)

(backward twice that, like the rest of the layer). ``nhwc`` (``channels_last``) pays nothing; neither do
convolutions at non-tensor-core precisions, whose kernels read NCHW directly. Measured on one V100,
ResNet-50 at batch 128 with AMP: 152.2 ms per iteration in NCHW and 110.9 ms in NHWC
(github.com/sandeepkumar-skb/pytorch_experiments, torchvision_exp/README.md); the formula charges
45.6 ms of transposes for the 41.3 ms difference (tests/test_memory_format.py).
"""

from __future__ import annotations

from sim.errors import UserError
from workloads.device_specs import DeviceSpec
from workloads.efficiency import kernel_class
from workloads.layer import Layer

#: backward / forward ratio of FLOPs and bytes
BWD_FACTOR = 2.0
#: tensor layouts of convolution activations: PyTorch's default, and channels-last
MEMORY_FORMATS = ("nchw", "nhwc")


def transpose_bytes(layer: Layer, dtype_bytes: int, local_batch: float, shard: float = 1.0) -> float:
    """Bytes cuDNN's NCHW <-> NHWC transposes move around one forward call of ``layer`` on a tensor-core
    precision in NCHW (module docstring): a read and a write of its input and output; 0 for a non-conv."""
    if layer.kind != "conv":
        return 0.0
    return 2 * dtype_bytes * (layer.in_elems_per_sample + layer.out_elems_per_sample) * local_batch * shard


def batch_efficiency(local_batch: float, b_half: float) -> float:
    """Fraction of the roofline reached at ``local_batch`` samples: ``b / (b + b_half)``."""
    return local_batch / (local_batch + b_half)


class RooflineCompute:
    """Roofline times on one device (module docstring for the formula).

    Parameters
    ----------
    device : DeviceSpec
    dtype_bytes : int
        Bytes per weight and activation value (4 for fp32).
    peak : str
        Which of the device's peaks compute runs at (a precision's ``peak``: fp32, tf32, bf16, fp16, fp8).
    memory_format : str
        ``nchw`` (PyTorch's default) or ``nhwc`` (channels-last): the layout of convolution activations,
        which decides whether tensor-core convolutions pay transposes (module docstring).

    Raises
    ------
    UserError
        ``precision`` field, when the device has no such peak; ``memory_format`` for an unknown layout.
    """

    def __init__(self, device: DeviceSpec, dtype_bytes: int = 4, peak: str = "fp32",
                 memory_format: str = "nchw") -> None:
        if memory_format not in MEMORY_FORMATS:
            raise UserError("memory_format", f"{memory_format!r} is not a memory format", " or ".join(MEMORY_FORMATS))
        self.device = device
        self.dtype_bytes = dtype_bytes
        self.peak_flops, self.tensor_core = device.peak(peak)
        self.memory_format = memory_format
        self.name = f"roofline:{device.name}"

    def time(self, layer: Layer, phase: str, local_batch: float, shard: float = 1.0) -> float:
        """Seconds for ``phase`` ("fwd" or "bwd") of ``layer`` on ``local_batch`` samples, fraction ``shard``."""
        factor = _phase_factor(phase)
        if local_batch <= 0:
            return 0.0
        flops = layer.fwd_flops_per_sample * local_batch * shard
        nbytes = self.dtype_bytes * (layer.params + (layer.in_elems_per_sample + layer.out_elems_per_sample)
                                     * local_batch) * shard
        transposes = self.tensor_core and self.memory_format == "nchw"
        transposed = transpose_bytes(layer, self.dtype_bytes, local_batch, shard) if transposes else 0.0
        efficiency = self.device.efficiency
        bandwidth = self.device.mem_bandwidth_Bps
        if efficiency is None:
            roof = max(flops / self.peak_flops, nbytes / bandwidth)
            return factor * (roof + transposed / bandwidth) / batch_efficiency(local_batch, self.device.b_half)
        t_mem = efficiency.memory.achieved_s(nbytes / bandwidth)
        cls = kernel_class(layer.kind)
        if cls == "memory":
            return factor * t_mem
        t_compute = efficiency.curve(cls, self.tensor_core).achieved_s(flops / self.peak_flops)
        t_transpose = efficiency.memory.achieved_s(transposed / bandwidth) if transposed else 0.0
        return factor * (max(t_compute, t_mem) + t_transpose)


def _phase_factor(phase: str) -> float:
    if phase == "fwd":
        return 1.0
    if phase == "bwd":
        return BWD_FACTOR
    raise UserError("phase", f"{phase!r} is not a phase", "fwd or bwd")
