"""Common layout logic of every strategy: per-layer modes, local batch and shard, redistribution.

A layer runs in one of three *modes* on the Pr x Pc grid (docs/paper-model.md):

``batch``
    batch-parallel over all P: B/P samples per rank, all of W on every rank (Eq. 4).
``model``
    W split by rows over the Pr ranks of a model group (grid column); X and Y split into B/Pc sample
    blocks, each replicated along the model group after the forward all-gather (Eqs. 3, 8).
``domain``
    convolution split along image height over the model group; B/Pc samples per grid column (Eqs. 7, 9).

Weight layers (conv, fc) take their mode from the config (``conv`` / ``fc``). Every other layer (pool,
activation, norm, dropout, flatten, add, ...) inherits the mode of the weight layer before it (the
first weight layer's mode if none) and runs in that layer's data layout with no communication, except
that a layer with parameters of its own (batch-norm scale and shift) all-reduces their gradient like a
replicated weight: over all P in batch and domain regions, over the batch group in model regions.
Residual inputs (``inputs``) are not traced: layouts follow the layer order.

*Activation layouts* between layers, per rank: batch = B/P samples x all features; model = B/Pc samples x
all features (replicated over the model group); domain = B/Pc samples x 1/Pr of the image rows.
Redistribution (Eq. 6, one all-gather over the model group, category ``redistribute``) is charged at the
boundary in front of a weight layer whose mode differs from the previous weight layer's:

* forward, when the consumer's input layout holds data the producer's ranks do not have locally:
  (producer, consumer) in {(batch, model), (domain, model), (batch, domain), (domain, batch)};
* backward, for the gradient flowing the other way: (producer, consumer) in {(model, batch),
  (model, domain), (domain, batch), (batch, domain)}.

Its size is the consumer's input, ``d_{i-1} x B/Pc`` words (the gathered result). batch <-> domain is
really an all-to-all inside the model group; it is charged as the all-gather of Eq. 6, an upper bound.
Model -> batch and model -> domain forward are local selections and free. Nothing is charged when
Pr = 1. The paper calls redistribution "asymptotically free" and leaves it out of Eqs. 3-9, so the
summary reports it apart (``redistribute_s``), never inside batch/model/domain communication.

A separate conv grid (``conv_grid``, Pr_c x Pc_c; the fc layers stay on the Pr x Pc grid, fc mode model)
puts the convolutions, and the layers that follow them up to the first fc layer, on that grid: local
batch B/Pc_c, shard 1/Pr_c. Every convolution must come before every fc layer and Pr_c must divide Pr
(:func:`sim.config.validate_against_model`); then, with either placement, each fc model group (Pr ranks)
is a union of whole conv-grid columns, and the fc sample block of a model group is the union of the
conv sample blocks its ranks hold. At the conv -> fc boundary (the last conv/pool output, d words per
sample) the forward pass needs, on every rank, d x B/Pc words, replicated over its fc model group:

* conv ``domain``: each rank holds B/Pc_c samples x 1/Pr_c of the rows = d B/P words, and the Pr ranks of
  its fc model group hold disjoint pieces that make up the block: one all-gather over the fc model group
  (``model``) of d x B/Pc words. Each rank receives (Pr-1)/Pr of it = d B/Pc - d B/P, exactly what it lacks.
* conv ``model``: each rank holds all d features of B/Pc_c samples, replicated Pr_c times in the fc model
  group; the Pr/Pr_c ranks of the group with the same conv-grid row hold the distinct blocks: one
  all-gather over that group (``conv_fc``) of d x B/Pc words; each receives d B/Pc - d B/Pc_c.

Backward, the first fc layer's ΔX all-reduce over its model group (charged as model communication, Eq. 8)
leaves the whole d x B/Pc gradient on every rank of the group, so each conv-grid rank selects its part
locally: nothing is charged.

Uneven splits
-------------
B need not be a multiple of Pc (or of P), nor a layer's rows or image height a multiple of Pr. Items are
split as ``torch.chunk`` / ``torch.tensor_split`` split them: some ranks get ⌈n/p⌉, the others ⌊n/p⌋.
Every rank runs the same steps, so dnnsim times the *critical rank*, the one with the larger share
(:func:`critical_share`): ``local_batch`` is ⌈B/P⌉ (batch mode) or ⌈B/Pc⌉ (model, domain), an integer
given to the compute model; ``shard`` is ⌈rows/Pr⌉ / rows for a model-split weight layer (rows = output
channels or features) and ⌈H/Pr⌉ / H for a domain layer (H = its output image height; 1/Pr for a layer
without one). Communication sizes are set in :mod:`sim.strategies.common` (:meth:`Context.column_batch`).
When everything divides, these are exactly B/P, B/Pc and 1/Pr, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from workloads.layer import Layer, Model

MODES = ("batch", "model", "domain")

#: layer kinds whose mode the config chooses (the paper's weight layers)
SPLIT_KINDS = ("conv", "fc")


def is_split(layer: Layer) -> bool:
    """True for the layers a strategy splits (convolutions and fully connected layers)."""
    return layer.kind in SPLIT_KINDS

FWD_REDISTRIBUTE = frozenset({("batch", "model"), ("domain", "model"), ("batch", "domain"), ("domain", "batch")})
BWD_REDISTRIBUTE = frozenset({("model", "batch"), ("model", "domain"), ("domain", "batch"), ("batch", "domain")})


@dataclass(frozen=True)
class LayerPlan:
    """How one layer runs on the grid.

    Attributes
    ----------
    layer : Layer
    mode : str
        One of :data:`MODES`.
    local_batch : float
        Samples of the critical rank (⌈B/P⌉ for batch mode, ⌈B/Pc⌉ otherwise; B/P, B/Pc when even).
    shard : float
        Fraction of the layer's work per sample done by the critical rank (⌈rows/Pr⌉/rows for model
        weight layers, ⌈H/Pr⌉/H for domain layers, 1 otherwise; 1/Pr when even).
    first_weight : bool
        True for the first weight layer of the model (it needs no ΔX).
    redistribute_fwd, redistribute_bwd : bool
        Charge an Eq. 6 all-gather in front of this layer in the forward / after it in the backward pass.
    on_conv_grid : bool
        The layer runs on the separate conv grid (module docstring).
    redistribute_group : str
        The group kind of the forward redistribution (``model``; ``conv_fc`` from model-parallel
        convolutions on a conv grid).
    """

    layer: Layer
    mode: str
    local_batch: float
    shard: float
    first_weight: bool = False
    redistribute_fwd: bool = False
    redistribute_bwd: bool = False
    on_conv_grid: bool = False
    redistribute_group: str = "model"


def critical_share(items: int, parts: int) -> int:
    """The larger share ⌈items/parts⌉ of ``items`` split over ``parts`` ranks (the critical rank's).

    >>> critical_share(100, 24), critical_share(4096, 3), critical_share(55, 2), critical_share(256, 16)
    (5, 1366, 28, 16)
    """
    return -(-int(items) // int(parts))


def _split_shard(items: int, parts: int) -> float:
    """The critical rank's fraction ⌈items/parts⌉ / items (exactly 1/parts when parts divides items)."""
    return critical_share(items, parts) / items


def _domain_shard(layer: Layer, pr: int) -> float:
    """Fraction of a domain layer's image rows on the critical rank (1/Pr for a layer with no image)."""
    shape = layer.out_shape if len(layer.out_shape) == 3 else layer.in_shape
    return _split_shard(shape[1], pr) if len(shape) == 3 else 1.0 / pr


def weight_mode(layer: Layer, conv_mode: str, fc_mode: str) -> str:
    """The configured mode of a weight layer: ``conv_mode`` for convolutions, ``fc_mode`` otherwise."""
    return conv_mode if layer.kind == "conv" else fc_mode


def plan_layers(model: Model, conv_mode: str, fc_mode: str, batch: int, pr: int, pc: int,
                conv_grid: tuple[int, int] | None = None) -> list[LayerPlan]:
    """One :class:`LayerPlan` per layer of ``model``, in model order (module docstring for the rules);
    ``conv_grid`` ``(Pr_c, Pc_c)`` puts the convolutions on their own grid."""
    procs = pr * pc
    weights = [layer for layer in model.layers if is_split(layer)]
    current = weight_mode(weights[0], conv_mode, fc_mode) if weights else "batch"
    previous_weight_mode: str | None = None
    on_conv = conv_grid is not None and bool(weights) and weights[0].kind == "conv"
    plans: list[LayerPlan] = []
    for layer in model.layers:
        first = False
        redistribute_fwd = redistribute_bwd = False
        group = "model"
        if is_split(layer):
            mode = weight_mode(layer, conv_mode, fc_mode)
            first = previous_weight_mode is None
            layer_on_conv = conv_grid is not None and layer.kind == "conv"
            if conv_grid is not None and on_conv and not layer_on_conv:
                redistribute_fwd = True  # conv grid -> fc grid (module docstring)
                group = "conv_fc" if previous_weight_mode == "model" else "model"
            elif previous_weight_mode is not None and pr > 1 and mode != previous_weight_mode:
                redistribute_fwd = (previous_weight_mode, mode) in FWD_REDISTRIBUTE
                redistribute_bwd = (previous_weight_mode, mode) in BWD_REDISTRIBUTE
            previous_weight_mode = current = mode
            on_conv = layer_on_conv
        mode = current
        rows, cols = conv_grid if on_conv and conv_grid is not None else (pr, pc)
        if mode == "batch":
            local_batch, shard = float(critical_share(batch, procs)), 1.0
        elif mode == "model":
            local_batch = float(critical_share(batch, cols))
            shard = _split_shard(layer.out_shape[0], rows) if is_split(layer) else 1.0
        else:
            local_batch, shard = float(critical_share(batch, cols)), _domain_shard(layer, rows)
        plans.append(LayerPlan(layer, mode, local_batch, shard, first, redistribute_fwd, redistribute_bwd,
                               on_conv, group))
    return plans
