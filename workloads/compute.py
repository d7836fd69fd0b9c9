"""Compute models: how long one rank takes for a layer's forward or backward pass.

Every compute model has a ``name`` and ``time(layer, phase, local_batch, shard=1.0) -> seconds`` with
``phase`` in ``{"fwd", "bwd"}``, ``local_batch`` the samples this rank processes and ``shard`` the fraction
of the layer's per-sample work it does (1/Pr for model- or domain-split layers). Specs
(:func:`make_compute_model`):

``none``
    zero: communication only.
``roofline:DEVICE``
    :class:`workloads.roofline.RooflineCompute` on a device of ``workloads/devices/`` (or a .yaml path).
``profile:FILE``
    :class:`workloads.profiled.ProfileCompute`, measured by ``dnnsim profile``.
``paper-knl``
    :class:`workloads.paper_knl.PaperKNLCompute`, the paper's AlexNet epoch times on one KNL.

Backward is twice forward wherever a model has no better figure (stated in each class).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sim.errors import UserError
from workloads.layer import Layer, Model

SPECS = ("none", "roofline:DEVICE", "profile:FILE", "paper-knl")


@runtime_checkable
class ComputeModel(Protocol):
    """Interface of every compute model."""

    name: str

    def time(self, layer: Layer, phase: str, local_batch: float, shard: float = 1.0) -> float:
        """Seconds one rank spends on ``phase`` of ``layer`` for ``local_batch`` samples and fraction ``shard``."""
        ...


class NoCompute:
    """Compute takes no time (``none``): isolates communication."""

    name = "none"

    def time(self, layer: Layer, phase: str, local_batch: float, shard: float = 1.0) -> float:
        """Always 0.0 for a valid phase."""
        if phase not in ("fwd", "bwd"):
            raise UserError("phase", f"{phase!r} is not a phase", "fwd or bwd")
        return 0.0


def make_compute_model(spec: str, model: Model | None = None, dtype_bytes: int | None = None,
                       precision: str = "fp32", memory_format: str = "nchw") -> ComputeModel:
    """Build the compute model named by ``spec``.

    Parameters
    ----------
    spec : str
        ``none``, ``roofline:DEVICE``, ``profile:FILE`` or ``paper-knl``.
    model : Model, optional
        The model to be timed; lets ``profile:`` check that every layer was measured.
    dtype_bytes : int, optional
        Bytes per value for ``roofline``; default the precision's word (4 for fp32).
    precision : str
        ``fp32`` (default), ``tf32``, ``bf16``, ``fp16``, ``fp8`` or ``amp`` (:mod:`workloads.precision`):
        the peak ``roofline`` computes at. ``profile:`` and ``paper-knl`` times are as measured.
    memory_format : str
        ``nchw`` (default, PyTorch's) or ``nhwc``: for ``roofline``, whether tensor-core convolutions pay
        layout transposes (:mod:`workloads.roofline`). Measured times already include whatever layout ran.

    Returns
    -------
    ComputeModel

    Raises
    ------
    UserError
        ``compute`` field for an unknown spec, ``device`` for an unknown device, ``precision`` for an
        unknown precision or one the device has no peak for, ``dtype_bytes`` for a bad override,
        ``memory_format`` for an unknown layout.

    Examples
    --------
    >>> make_compute_model("roofline:v100").name
    'roofline:v100'
    """
    from workloads.precision import get_precision, with_dtype_bytes

    chosen = with_dtype_bytes(get_precision(precision), dtype_bytes)
    text = str(spec).strip()
    kind, _, arg = text.partition(":")
    if kind == "none" and not arg:
        return NoCompute()
    if kind == "paper-knl" and not arg:
        from workloads.paper_knl import PaperKNLCompute

        return PaperKNLCompute()
    if kind == "roofline" and arg:
        from workloads.device_specs import load_device
        from workloads.roofline import RooflineCompute

        return RooflineCompute(load_device(arg), chosen.word_bytes, chosen.peak, memory_format)
    if kind == "profile" and arg:
        from workloads.profiled import ProfileCompute

        return ProfileCompute(arg, model)
    raise UserError("compute", f"{text!r} is not a compute model", f"one of {', '.join(SPECS)}")
