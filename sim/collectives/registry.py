"""The registry: which algorithms exist for which op, lookup by name, and the ``--collectives`` parser.

``ALGORITHMS[op][name]`` is the algorithm object (read-only mappings). ``paper`` exists for every op and is
the default: the costs the paper assumes (docs/paper-model.md) (Bruck all-gather, 2× that for all-reduce, α + βh halos), with
documented stand-ins for the ops the paper never costs (reduce-scatter: half its all-reduce; broadcast and
reduce: binomial tree; all-to-all: pairwise exchange; send: the one transfer).

``nccl`` (:mod:`sim.collectives.nccl`, docs/nccl.md) is a *model* rather than one schedule: per call it
picks NCCL's algorithm and protocol and runs a multi-channel schedule that depends on the topology. It is
looked up like an algorithm (``get_algorithm(op, "nccl")``, ``--collectives nccl``) for the ops it models
(:data:`MODELS`; for ``send``, :class:`~sim.collectives.send.NcclSend`), but is not listed in ``ALGORITHMS``/``algorithms_for`` (the MPI-style schedules, each
one send and one receive per rank per step).
"""

from __future__ import annotations

from types import MappingProxyType

from sim.collectives.algorithm import CollectiveAlgorithm
from sim.collectives.allgather import (
    BruckAllgather,
    PaperAllgather,
    RecursiveDoublingAllgather,
    RingAllgather,
)
from sim.collectives.allreduce import (
    HierarchicalAllreduce,
    PaperAllreduce,
    RabenseifnerAllreduce,
    RecursiveDoublingAllreduce,
    RingAllreduce,
    TreeAllreduce,
)
from sim.collectives.alltoall import BruckAlltoall, DirectAlltoall, PaperAlltoall
from sim.collectives.halo import DirectHalo, PaperHalo
from sim.collectives.nccl import NCCL
from sim.collectives.reduce_scatter import REDUCE_SCATTER
from sim.collectives.rooted import REDUCE, PaperBroadcast, TreeBroadcast
from sim.collectives.send import SEND, NcclSend
from sim.errors import UserError
from sim.program import COLLECTIVE_OPS

#: the collective ops, in sim.program.COLLECTIVE_OPS order
OPS: tuple[str, ...] = tuple(COLLECTIVE_OPS)

_ALL: tuple[CollectiveAlgorithm, ...] = (
    RingAllgather(), RecursiveDoublingAllgather(), BruckAllgather(), PaperAllgather(),
    *REDUCE_SCATTER,
    RingAllreduce(), RecursiveDoublingAllreduce(), RabenseifnerAllreduce(),
    RabenseifnerAllreduce(name="rabenseifner_far", far=True), TreeAllreduce(),
    HierarchicalAllreduce(), PaperAllreduce(),
    TreeBroadcast(), PaperBroadcast(), *REDUCE,
    DirectAlltoall(), BruckAlltoall(), PaperAlltoall(),
    DirectHalo(), PaperHalo(),
    *SEND,
)

#: ``ALGORITHMS[op][name]`` → algorithm object
ALGORITHMS: MappingProxyType = MappingProxyType({
    op: MappingProxyType({a.name: a for a in _ALL if a.op == op}) for op in OPS})

#: every algorithm name, in first-seen order
ALGORITHM_NAMES: tuple[str, ...] = tuple(dict.fromkeys(a.name for a in _ALL))

_NCCL_BY_OP: dict = {**NCCL, "send": NcclSend()}

#: ``MODELS[op][name]``: collective models (``nccl``) of the ops they cover
MODELS: MappingProxyType = MappingProxyType({
    op: MappingProxyType({"nccl": _NCCL_BY_OP[op]} if op in _NCCL_BY_OP else {}) for op in OPS})


def _lookup(op: str) -> dict:
    """Every name ``op`` accepts: its algorithms, then its models."""
    return {**ALGORITHMS[op], **MODELS[op]}


def _norm(text: str) -> str:
    return str(text).strip().lower().replace("-", "_")


def _op(op: str) -> str:
    key = _norm(op)
    if key not in ALGORITHMS:
        raise UserError("op", f"unknown collective op {op!r}", "one of " + ", ".join(OPS))
    return key


def algorithms_for(op: str) -> list[str]:
    """Names of the algorithms of ``op``.

    Examples
    --------
    >>> algorithms_for("allgather")
    ['ring', 'recursive_doubling', 'bruck', 'paper']
    """
    return list(ALGORITHMS[_op(op)])


def get_algorithm(op: str, name: str) -> CollectiveAlgorithm:
    """The algorithm ``name`` of ``op``; UserError listing the allowed names if there is none.

    Examples
    --------
    >>> get_algorithm("allreduce", "ring").cost_s(4, 4e6, 0.0, 1e9)  # 2(p-1)(α + n/(p·bw))
    0.006
    """
    key = _op(op)
    algs = _lookup(key)
    alg = _norm(name)
    if alg not in algs:
        raise UserError("algorithm", f"{name!r} is not an algorithm for {key}", "one of " + ", ".join(algs))
    return algs[alg]


def bus_factor(op: str, p: int) -> float:
    """nccl-tests' bus-bandwidth factor, busbw = algbw × factor (nccl-tests doc/PERFORMANCE.md).

    allreduce 2(p-1)/p; allgather, reduce_scatter, alltoall (p-1)/p; broadcast, reduce 1; halo 1 (each
    neighbour transfer is a point-to-point message, as nccl-tests' sendrecv); send 1 (one message).
    """
    key = _op(op)
    p = int(p)
    if key == "allreduce":
        return 2 * (p - 1) / p
    if key in ("allgather", "reduce_scatter", "alltoall"):
        return (p - 1) / p
    return 1.0


def parse_collectives(spec: str | None) -> dict[str, str]:
    """Resolve the ``--collectives`` flag to one algorithm name per op.

    ``spec`` is one ALG (``"ring"``), ``op=ALG`` pairs (``"allreduce=ring,allgather=bruck"``), or both
    (``"ring,halo=direct"``). A bare ALG applies to every op that has it; the other ops keep ``paper``
    (``ring`` sets all-gather, reduce-scatter and all-reduce, and leaves broadcast, reduce, all-to-all,
    halo and send on ``paper``; ``nccl`` sets the three ops it models and send). ``op=ALG`` pairs override it. Empty or None: ``paper`` everywhere.

    Examples
    --------
    >>> r = parse_collectives("ring,allgather=bruck")
    >>> r["allreduce"], r["allgather"], r["halo"]
    ('ring', 'bruck', 'paper')
    """
    names = (*ALGORITHM_NAMES, "nccl")
    allowed = "one ALG for every op (" + "|".join(names) + ") or op=ALG,... with op in " + \
        "|".join(OPS)
    bare: str | None = None
    explicit: dict[str, str] = {}
    for item in str(spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            op_text, _, alg_text = item.partition("=")
            op = _norm(op_text)
            if op not in ALGORITHMS:
                raise UserError("collectives", f"unknown op {op_text.strip()!r} in {spec!r}", allowed)
            alg = _norm(alg_text)
            if alg not in _lookup(op):
                raise UserError("collectives", f"{alg_text.strip()!r} is not an algorithm for {op}",
                                f"for {op}: " + "|".join(_lookup(op)))
            if op in explicit:
                raise UserError("collectives", f"{op} is given twice in {spec!r}", "each op at most once")
            explicit[op] = alg
        else:
            alg = _norm(item)
            if alg not in names:
                raise UserError("collectives", f"unknown algorithm {item!r}", allowed)
            if bare is not None:
                raise UserError("collectives", f"two algorithms for every op in {spec!r}",
                                "at most one bare ALG, plus op=ALG pairs")
            bare = alg
    return {op: explicit.get(op) or (bare if bare in _lookup(op) else "paper") for op in OPS}
