"""The paper's measured compute: AlexNet epoch times on one Intel KNL by batch size (the paper's Fig. 4;
docs/paper-model.md).

Per-iteration compute of the whole AlexNet at per-process batch ``b`` is ``T(b) = epoch(b) * b / N`` with
N = 1,200,000 (the paper's ImageNet size). Between table points ``T`` is interpolated log-log in ``b``;
outside the table (b < 1 or b > 2048) the time per sample of the nearest end is kept
(:func:`workloads.interp.loglog_interp`).

Split over layers and phases (our rule; the paper gives only totals): a layer's share is its forward FLOPs
over the forward FLOPs of the paper's AlexNet (``workloads.zoo.alexnet``); forward takes 1/3 and backward
2/3 of it (backward = ΔX + ΔW, twice the forward work); a rank doing a fraction ``shard`` takes that
fraction::

    t(layer, phase, b, shard) = T(b) * flops(layer) / flops(alexnet) * (1/3 | 2/3) * shard

For AlexNet the layers sum to ``T(b)`` exactly. For any other model the same per-FLOP cost is used, so its
iteration takes ``T(b) * flops(model) / flops(alexnet)``: the KNL is assumed as efficient on it as on AlexNet.
"""

from __future__ import annotations

from workloads.interp import loglog_interp
from workloads.layer import Layer
from workloads.roofline import _phase_factor

#: the paper's Fig. 4 table: per-process batch b -> epoch seconds of AlexNet on one KNL
EPOCH_S_BY_BATCH: dict[int, float] = {
    1: 30742.0, 2: 17292.0, 4: 9608.0, 8: 5924.0, 16: 3922.0, 32: 2843.0, 64: 2322.0,
    128: 2032.0, 256: 1777.0, 512: 1827.0, 1024: 1922.0, 2048: 2434.0,
}
#: N the table's epochs are made of
PAPER_N = 1_200_000


def iteration_s(b: float) -> float:
    """Per-iteration compute ``T(b)`` of AlexNet on one KNL at per-process batch ``b`` (module docstring)."""
    xs = list(EPOCH_S_BY_BATCH)
    ys = [EPOCH_S_BY_BATCH[x] * x / PAPER_N for x in xs]
    return loglog_interp(xs, ys, b)


class PaperKNLCompute:
    """The paper's KNL measurements, split over layers by forward FLOPs (module docstring)."""

    name = "paper-knl"

    def __init__(self) -> None:
        from workloads.zoo import alexnet

        self.reference_flops = alexnet().fwd_flops_per_sample

    def time(self, layer: Layer, phase: str, local_batch: float, shard: float = 1.0) -> float:
        """Seconds for ``phase`` of ``layer`` at ``local_batch`` samples, doing fraction ``shard``."""
        share = _phase_factor(phase) / 3.0
        if local_batch <= 0:
            return 0.0
        return iteration_s(local_batch) * (layer.fwd_flops_per_sample / self.reference_flops) * share * shard
