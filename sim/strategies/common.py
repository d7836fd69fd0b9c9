"""What every mode module shares: the build context and the collective-step helper.

:class:`Context` carries the sizes a strategy needs (B, Pr, Pc, bytes per word), the algorithm chosen per
collective op, and ``paper_dx``: with it the backward ΔX all-reduce of model layers is sized ``d_i x B/Pc``
and charged for the first layer too, as the paper's Eqs. 3 and 8 print it; without it (the default, the
only choice a :class:`~sim.config.RunConfig` reaches) it has its true size ``d_{i-1} x B/Pc`` and the
first layer, whose ΔX nobody needs, has none. ``paper_dx`` exists so tests can show both forms.

With a separate conv grid the layers on it get a context of the conv grid's Pr x Pc and ``prefix="conv_"``:
their ``model`` and ``batch`` groups become the conv grid's (``conv_model``, ``conv_batch``); ``all`` stays.

Uneven splits (B not a multiple of Pc, rows or image height not a multiple of Pr; the critical rank's
compute is set in :mod:`sim.strategies.layout`). Sizes depend on the collective's algorithm:

* ``paper`` (the paper's costs): the paper's formulas with B/Pc and 1/Pr as real numbers, e.g. the
  forward all-gather of ``d_i x B/Pc`` words and the ΔW all-reduce of ``|W_i| / Pr`` words;
* any real algorithm: every block padded to the largest one, as the frameworks do: NCCL's
  ``ncclAllGather``/``ncclReduceScatter`` take one count for every rank, so PyTorch FSDP splits with
  ``torch.chunk`` and pads every shard to the first (largest) chunk (``FlatParamHandle._get_shard``,
  torch/distributed/fsdp/_flat_param.py; ``_get_reduce_scatter_tensors``,
  torch/distributed/fsdp/_runtime_utils.py), and ``DistributedSampler(drop_last=False)`` pads the
  data by repeating indices so every rank gets ⌈N/P⌉ samples (torch/utils/data/distributed.py). A ring
  all-gatherv (MPICH's src/mpi/coll/allgatherv/allgatherv_intra_ring.c) costs the same as the padded
  ring: in each of its p-1 steps some rank forwards the largest block. So a grid column carries
  ⌈B/Pc⌉ samples (:meth:`Context.column_batch`), a model-parallel all-gather Pr blocks of ⌈rows/Pr⌉
  rows and a ΔW shard ⌈rows/Pr⌉ rows (:meth:`Context.padded_rows`); an Eq. 6 redistribution is the
  critical column's ``d_{i-1} x ⌈B/Pc⌉`` (its blocks are not padded further: it is an upper bound
  already). Every group is sized as the critical one, so on a contended network the groups with the
  smaller share are slightly overcharged.

When everything divides, both give the same sizes, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.strategies.layout import critical_share
from sim.strategies.steps import Step, group_size


@dataclass(frozen=True)
class Context:
    """Sizes and choices for building one program."""

    batch: int
    pr: int
    pc: int
    dtype_bytes: int
    algorithms: dict[str, str] = field(default_factory=dict)
    paper_dx: bool = False
    prefix: str = ""  #: ``conv_`` for the layers on a separate conv grid (module docstring)
    conv_pr: int = 0  #: the conv grid's Pr, in the fc grid's context when there is a conv grid (sizes ``conv_fc``)

    @property
    def procs(self) -> int:
        return self.pr * self.pc

    def algorithm(self, op: str) -> str:
        return self.algorithms.get(op, "paper")

    def column_batch(self, op: str) -> float:
        """Samples of a grid column for sizing ``op``: B/Pc (real) under the paper's costs or when Pc
        divides B, else the critical column's ⌈B/Pc⌉ (module docstring)."""
        if self.algorithm(op) == "paper" or self.batch % self.pc == 0:
            return self.batch / self.pc
        return float(critical_share(self.batch, self.pc))

    def column_words(self, words_per_sample: float, op: str) -> float:
        """Words of ``words_per_sample`` for every sample of a grid column, for sizing ``op``:
        ``words_per_sample x B/Pc`` or ``x ⌈B/Pc⌉`` as :meth:`column_batch` says."""
        if self.algorithm(op) == "paper" or self.batch % self.pc == 0:
            return words_per_sample * self.batch / self.pc
        return words_per_sample * critical_share(self.batch, self.pc)

    def padded_rows(self, rows: int, op: str) -> float:
        """Rows of W a model group holds for sizing ``op``: ``rows`` under the paper's costs or when Pr
        divides them, else Pr blocks of ⌈rows/Pr⌉ (module docstring)."""
        if self.algorithm(op) == "paper" or rows % self.pr == 0:
            return float(rows)
        return float(self.pr * critical_share(rows, self.pr))

    def collective(self, op: str, group: str, words: float, category: str, layer: str, phase: str,
                   stream: str = "compute", deps: tuple[int, ...] = ()) -> list[Step]:
        """A one-step list for a collective of ``words`` words, or ``[]`` if its group has one member
        or it moves nothing."""
        size = self.pr // self.conv_pr if group == "conv_fc" else group_size(group, self.pr, self.pc)
        if size < 2 or words <= 0:
            return []
        if self.prefix and group != "all":
            group = self.prefix + group
        return [Step("collective", layer, phase, op=op, group=group, nbytes=float(words) * self.dtype_bytes,
                     algorithm=self.algorithm(op), category=category, stream=stream, deps=deps)]


@dataclass(frozen=True)
class Gradient:
    """A ΔW that must be all-reduced: over which group kind, and how many bytes."""

    layer: str
    group: str
    nbytes: float


def compute_step(layer: str, phase: str, seconds: float) -> Step:
    return Step("compute", layer, phase, seconds=float(seconds))
