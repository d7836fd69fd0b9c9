"""Check a program before the engine runs it: the errors a user can make, as one-line UserErrors.

Every operation has a known stream and deps on other operations of its rank; computes last a finite
time >= 0; every collective is held under one ``key`` by each member of its group exactly once (the set
of holders is the group: a rank holding a collective twice while another never holds it is an error here,
not a deadlock later), with the same op, group, size, algorithm, halo grid and count (an integer >= 1); a
``send``'s group is exactly two distinct ranks (sender, receiver); each algorithm accepts its group size
and the keywords the network gives it; the ranks fit the topology.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.errors import UserError
from sim.program import STREAMS, Collective, Compute, Program


def _check_op(r: int, i: int, op: Any, n_ops: int) -> None:
    """Stream, deps and (computes) duration of op ``i`` of rank ``r``."""
    if op.stream not in STREAMS:
        raise UserError("program.stream", f"rank {r} op {i} has stream {op.stream!r}", ", ".join(STREAMS))
    for d in op.deps:
        if not 0 <= d < n_ops or d == i:
            raise UserError("program.deps", f"rank {r} op {i} depends on op {d}",
                            f"indices of other ops of the rank, 0..{n_ops - 1}")
    if isinstance(op, Compute) and (not op.seconds >= 0 or not math.isfinite(op.seconds)):
        raise UserError("program.seconds", f"rank {r} op {i} lasts {op.seconds!r} s", "a finite duration >= 0")


def _check_group(op: Collective, n_ranks: int) -> None:
    """The group of a collective's first holder: distinct ranks of the program."""
    group = op.group
    if not group or min(group) < 0 or max(group) >= n_ranks or len(set(group)) != len(group):
        raise UserError("program.group", f"collective {op.key!r} has group {group[:8]}...",
                        f"distinct ranks in 0..{n_ranks - 1}")
    if op.op == "send" and len(group) != 2:
        raise UserError("program.group", f"send {op.key!r} has group {group[:8]} of {len(group)} ranks",
                        "exactly 2 distinct ranks: (sender, receiver)")
    if not op.nbytes >= 0 or not math.isfinite(op.nbytes):
        raise UserError("program.nbytes", f"collective {op.key!r} has {op.nbytes!r} bytes", "finite bytes >= 0")
    count = op.count
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UserError("program.count", f"collective {op.key!r} has count {count!r}",
                        "an integer >= 1 (copies run back to back)")


def _same(a: Collective, b: Collective) -> bool:
    return a is b or (a.op, a.group, a.nbytes, a.algorithm, a.halo_dims, a.count) == (
        b.op, b.group, b.nbytes, b.algorithm, b.halo_dims, b.count)


def validate_program(program: Program, network: Any) -> None:
    """Raise UserError for a program the engine cannot run on ``network``."""
    from sim.collectives import get_algorithm

    network.check_ranks(program.n_ranks)
    n_ranks = program.n_ranks
    first: dict[str, Collective] = {}
    members: dict[str, frozenset[int]] = {}
    holders: dict[str, set[int]] = {}
    sizes: set[tuple[str, str, int, tuple]] = set()
    for r, ops in enumerate(program.ops):
        for i, op in enumerate(ops):
            _check_op(r, i, op, len(ops))
            if isinstance(op, Compute):
                continue
            seen = first.get(op.key)
            if seen is None:
                _check_group(op, n_ranks)
                first[op.key] = op
                members[op.key] = frozenset(op.group)
                holders[op.key] = set()
                sizes.add((op.op, op.algorithm, len(op.group),
                           network.algo_kwargs(op.op, op.algorithm, op.group, op.halo_dims)))
            elif not _same(seen, op):
                raise UserError("program.key", f"rank {r} op {i} reuses key {op.key!r} for a different collective",
                                "one key per collective instance")
            if r not in members[op.key]:
                raise UserError("program.group", f"rank {r} holds collective {op.key!r} but is not in its group",
                                "only members hold a collective")
            if r in holders[op.key]:
                raise UserError("program.key", f"rank {r} holds collective {op.key!r} more than once (op {i})",
                                "one key per collective instance, held once by each member")
            holders[op.key].add(r)
    for key, op in first.items():
        if len(holders[key]) != len(op.group):
            missing = sorted(members[key] - holders[key])
            raise UserError("program.group", f"collective {key!r} is not held by rank(s) {missing[:8]} of its group",
                            "every member (and only members) holds it once")
    for op_name, alg, p, kw in sorted(sizes, key=repr):
        get_algorithm(op_name, alg).check(p, **dict(kw))
