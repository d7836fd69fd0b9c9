"""What every mode module shares: the build context and the collective-step helper.

:class:`Context` carries the sizes a strategy needs (B, Pr, Pc, bytes per word), the algorithm chosen per
collective op, and ``paper_dx``: with it the backward ΔX all-reduce of model layers is sized ``d_i x B/Pc``
and charged for the first layer too, as the paper's Eqs. 3 and 8 print it; without it (the default, the
only choice a :class:`~sim.config.RunConfig` reaches) it has its true size ``d_{i-1} x B/Pc`` and the
first layer, whose ΔX nobody needs, has none. ``paper_dx`` exists so tests can show both forms.

With a separate conv grid the layers on it get a context of the conv grid's Pr x Pc and ``prefix="conv_"``:
their ``model`` and ``batch`` groups become the conv grid's (``conv_model``, ``conv_batch``); ``all`` stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
