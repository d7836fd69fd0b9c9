"""Training precisions: which peak of a device the layers run at, and how many bytes each value takes.

One :class:`Precision` per name of ``--precision``:

========  ==========  ====  ======  =====  ======  =========
name      peak        word  weight  grad   master  optimizer
========  ==========  ====  ======  =====  ======  =========
fp32      fp32        4     4       4      0       4
tf32      tf32        4     4       4      0       4
bf16      bf16        2     2       2      0       2
fp16      fp16        2     2       2      0       2
amp       fp16        2     2       2      4       4
fp8       fp8         2     2       2      4       4
========  ==========  ====  ======  =====  ======  =========

``word`` is the size of every activation and of every communicated value (activations, halos and the ΔW
all-reduces), and of the bytes the roofline moves; ``weight``, ``grad``, ``master`` and ``optimizer`` are
the per-parameter bytes a rank holds (:mod:`sim.memory`).

* ``fp32``: what dnnsim always modelled (the paper trains in fp32): FP32 without tensor cores.
* ``tf32``: FP32 storage, matrix products on TF32 tensor cores (NVIDIA A100 whitepaper).
* ``bf16``/``fp16``: everything in 16 bits, no fp32 copy ("pure" half-precision training).
* ``amp``: mixed precision as in Micikevicius et al., "Mixed Precision Training" (ICLR 2018) and Apex
  O2 / Megatron-LM: half-precision weights, activations and gradients (communicated in 16 bits), fp32
  master weights and fp32 optimizer state. (PyTorch's ``torch.autocast`` alone keeps fp32 parameters and
  gradients; ``--dtype-bytes 4`` models that communication.) Half precision runs at the fp16 peak, which
  equals the bf16 peak on A100 and H100.
* ``fp8``: FP8 matrix products as NVIDIA Transformer Engine runs them (GEMM inputs cast to FP8 inside the
  layer; activations between layers and gradients in 16 bits; fp32 master weights and optimizer state).

``--dtype-bytes N`` (:func:`with_dtype_bytes`) overrides ``word``, ``weight``, ``grad`` and ``optimizer``
with N, as it did before precisions existed; ``master`` stays the precision's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.errors import UserError

#: names accepted by ``--precision``
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "amp")


@dataclass(frozen=True)
class Precision:
    """How one precision computes and stores (module docstring).

    Attributes
    ----------
    name : str
    peak : str
        Key of the device peak the compute-bound layers run at (``fp32``, ``tf32``, ``bf16``, ``fp16``, ``fp8``).
    word_bytes : int
        Bytes per activation and per communicated value.
    weight_bytes, grad_bytes, master_bytes, optimizer_bytes : int
        Bytes per parameter held: the working weights, their gradients, an fp32 master copy (0 if none)
        and the optimizer state (momentum).
    """

    name: str
    peak: str
    word_bytes: int
    weight_bytes: int
    grad_bytes: int
    master_bytes: int
    optimizer_bytes: int

    @property
    def state_bytes_per_param(self) -> int:
        """Bytes a rank holds per parameter: weights, gradients, master copy and optimizer state."""
        return self.weight_bytes + self.grad_bytes + self.master_bytes + self.optimizer_bytes


_TABLE = {
    "fp32": Precision("fp32", "fp32", 4, 4, 4, 0, 4),
    "tf32": Precision("tf32", "tf32", 4, 4, 4, 0, 4),
    "bf16": Precision("bf16", "bf16", 2, 2, 2, 0, 2),
    "fp16": Precision("fp16", "fp16", 2, 2, 2, 0, 2),
    "amp": Precision("amp", "fp16", 2, 2, 2, 4, 4),
    "fp8": Precision("fp8", "fp8", 2, 2, 2, 4, 4),
}


def get_precision(name: str) -> Precision:
    """The precision called ``name``.

    Raises
    ------
    UserError
        ``precision`` field, for a name not in :data:`PRECISIONS`.

    Examples
    --------
    >>> get_precision("amp").master_bytes
    4
    """
    key = str(name).strip().lower()
    if key not in _TABLE:
        raise UserError("precision", f"{name!r} is not a precision", ", ".join(PRECISIONS))
    return _TABLE[key]


def with_dtype_bytes(precision: Precision, dtype_bytes: int | None) -> Precision:
    """``precision`` with ``--dtype-bytes`` applied (module docstring); unchanged when it is None.

    Raises
    ------
    UserError
        ``dtype_bytes`` field, for anything but a positive integer.
    """
    if dtype_bytes is None:
        return precision
    if isinstance(dtype_bytes, bool) or not isinstance(dtype_bytes, int) or dtype_bytes < 1:
        raise UserError("dtype_bytes", f"{dtype_bytes!r} is not a positive integer", "4 (fp32), 2 (fp16/bf16)")
    return replace(precision, word_bytes=dtype_bytes, weight_bytes=dtype_bytes, grad_bytes=dtype_bytes,
                   optimizer_bytes=dtype_bytes)
