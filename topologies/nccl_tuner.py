"""NCCL tuner rules: the CSV file of NCCL's example tuner plugin, read and matched per call.

A tuner plugin overrides NCCL's own choice (docs/nccl.md). NCCL ships an example plugin whose rules are a CSV
file (NVIDIA/nccl ``ext-tuner/example/README.md`` and ``plugin.c``, tag v2.28.7-1), one rule per line::

    collective_type,min_bytes,max_bytes,algorithm,protocol,channels,nNodes,nRanks[,numPipeOps[,regBuff]]

``#`` starts a comment line; fields may be padded with spaces. A call takes the first rule whose collective
matches, with ``min_bytes <= bytes <= max_bytes`` (NCCL's ``nBytes``: an all-gather's whole output, a
reduce-scatter's whole input, an all-reduce's buffer) and ``nNodes``/``nRanks`` equal to the group's or
``-1``; ``numPipeOps`` must be ``-1`` or 1 and ``regBuff`` ``-1`` or 0 (one call, unregistered buffers).
The plugin then sets that algorithm/protocol's cost to 0, so NCCL runs it, unless NCCL_ALGO/NCCL_PROTO
disabled it (the rule is skipped and the next one tried); ``channels`` other than ``-1`` caps the call's
channels. ``-1`` keeps NCCL's count as the README says (the example's ``plugin.c`` reports 1 channel when
a rule leaves it at -1 or no rule matches; dnnsim follows the README).

dnnsim models tree, ring and NVLS and the LL, LL128 and Simple protocols for all-reduce, all-gather and
reduce-scatter; a rule naming another algorithm is refused, and rules for broadcast or reduce never match
(the ``nccl`` model does not run those ops).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sim.errors import UserError

#: the example plugin's collective names and dnnsim's op names
_OPS = {"allreduce": "allreduce", "allgather": "allgather", "reducescatter": "reduce_scatter",
        "broadcast": "broadcast", "reduce": "reduce"}
_ALGOS = {"tree": "tree", "ring": "ring", "nvls": "nvls", "nvls_tree": "nvls_tree", "pat": "pat"}
_NOT_MODELLED = ("collnet_direct", "collnet_chain")
_PROTOS = {"ll": "LL", "ll128": "LL128", "simple": "Simple"}
_FORMAT = ("NCCL's example tuner CSV: collective_type,min_bytes,max_bytes,algorithm,protocol,channels,"
           "nNodes,nRanks[,numPipeOps[,regBuff]]")


@dataclass(frozen=True)
class TunerRule:
    """One line of the file: which calls it matches and the algorithm, protocol and channels it sets."""

    op: str
    min_bytes: int
    max_bytes: int
    algorithm: str
    protocol: str
    channels: int
    n_nodes: int
    n_ranks: int
    pipe_ops: int = -1
    reg_buff: int = -1

    def matches(self, op: str, nbytes: float, n_nodes: int, n_ranks: int) -> bool:
        """Whether a single call (one pipelined op, unregistered buffers) of ``op`` falls under this rule."""
        return (self.op == op and self.min_bytes <= nbytes <= self.max_bytes
                and self.n_nodes in (-1, n_nodes) and self.n_ranks in (-1, n_ranks)
                and self.pipe_ops in (-1, 1) and self.reg_buff in (-1, 0))


def _int(text: str, where: str, what: str, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError("topology.nccl.tuner", f"{where}: {what} {text!r} is not an integer",
                        f"an integer >= {lowest}") from None
    if value < lowest:
        raise UserError("topology.nccl.tuner", f"{where}: {what} {value} is below {lowest}", _FORMAT)
    return value


def parse_rules(text: str, source: str) -> tuple[TunerRule, ...]:
    """The rules of a tuner file's ``text`` (module docstring); ``source`` names it in errors.

    Examples
    --------
    >>> parse_rules("# 2 nodes: every all-reduce as tree/Simple\\nallreduce,0,4294967295,tree,simple,-1,2,-1\\n", "t")
    (TunerRule(op='allreduce', min_bytes=0, max_bytes=4294967295, algorithm='tree', protocol='Simple', channels=-1, n_nodes=2, n_ranks=-1, pipe_ops=-1, reg_buff=-1),)
    """
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{source} line {number}"
        fields = [f.strip() for f in line.split(",")]
        if not 8 <= len(fields) <= 10:
            raise UserError("topology.nccl.tuner", f"{where}: {len(fields)} fields", _FORMAT)
        op = _OPS.get(fields[0].lower())
        if op is None:
            raise UserError("topology.nccl.tuner", f"{where}: unknown collective {fields[0]!r}", ", ".join(_OPS))
        algo_name = fields[3].lower()
        if algo_name in _NOT_MODELLED:
            raise UserError("topology.nccl.tuner", f"{where}: algorithm {fields[3]!r} is not modelled",
                            "tree, ring, nvls")
        algo = _ALGOS.get(algo_name)
        proto = _PROTOS.get(fields[4].lower())
        if algo is None or proto is None:
            bad, allowed = (fields[3], "tree, ring, nvls") if algo is None else (fields[4], "ll, ll128, simple")
            raise UserError("topology.nccl.tuner", f"{where}: unknown name {bad!r}", allowed)
        lo = _int(fields[1], where, "min_bytes", 0)
        hi = _int(fields[2], where, "max_bytes", lo)
        channels = _int(fields[5], where, "channels", -1)
        if channels == 0:
            raise UserError("topology.nccl.tuner", f"{where}: channels 0", "a positive count, or -1 for NCCL's")
        extra = [_int(f, where, name, -1) for f, name in zip(fields[6:], ("nNodes", "nRanks", "numPipeOps",
                                                                          "regBuff"), strict=False)]
        rules.append(TunerRule(op, lo, hi, algo, proto, channels, *extra))
    if not rules:
        raise UserError("topology.nccl.tuner", f"{source}: no rule", _FORMAT)
    return tuple(rules)


def read_rules(path: str) -> tuple[TunerRule, ...]:
    """The rules of the tuner file at ``path`` (relative to the working directory, as NCCL_TUNER_CONFIG_FILE)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError("topology.nccl.tuner", f"cannot read {path!r} ({type(exc).__name__})",
                        "the path of a tuner rules file") from None
    return parse_rules(text, path)
