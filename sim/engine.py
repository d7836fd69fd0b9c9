"""The SimPy engine: run a :class:`~sim.program.Program` on a network model and record every operation.

Build, run, collect:

1. *build* — validate the program (every collective's members hold it under one ``key``, with the same
   op, group, size and algorithm; each algorithm accepts its group size; the ranks fit the topology), open
   a network :class:`~sim.network.base.Session` on a fresh environment and start one SimPy process per
   rank per stream that has operations;
2. *run* — a stream process runs its operations in list order. Before an operation it waits for the ends
   of the operations named in its ``deps`` (same rank, any stream). Compute operations take their known
   durations: a run of consecutive computes whose deps have known ends is timed by sums (each end is the
   previous end plus the duration, the same floats SimPy's timeouts would give) and costs one event at its
   end; other streams waiting on an op inside the run are woken at that op's end exactly. A collective
   is a rendezvous by ``key``: each member records when it *arrived*; when the last member arrives the
   collective *starts* on the network (``Session.collective``), and when the network's event triggers
   every member is released at once (one shared event);
3. *collect* — one record per rank per operation (:data:`RECORD_COLUMNS`), ranks in order, operations in
   list order.

Events (SimPy events processed) scale with ranks × (compute runs + collectives) + collectives × phases:
a compute run costs one event, a collective one release event plus what the network model schedules,
each process two (start, end); waiting on a dependency whose end is known costs nothing if it has passed
and one event if it has not. Everything runs in a fixed order (ranks ascending, the compute stream before
the comm stream, SimPy's FIFO among equal times), so the same program on the same network gives
bit-identical floats.

Examples
--------
>>> from sim.program import Compute, Program
>>> from topologies import build_topology
>>> from sim.network import make_network
>>> net = make_network("flow", build_topology("ideal", 2))
>>> res = run_program(Program(((Compute(1.0), Compute(2.0)), (Compute(0.5),))), net)
>>> res.makespan_s, res.records["end_s"].tolist()
(3.0, [1.0, 3.0, 0.5])
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from heapq import heappush
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import simpy
from simpy.core import NORMAL

from sim.errors import UserError
from sim.program import STREAMS, Collective, Compute, Program

#: columns of :attr:`EngineResult.records`, in order (shared with :mod:`sim.fastpath`)
RECORD_COLUMNS = ["rank", "stream", "kind", "op", "algorithm", "layer", "phase", "category", "key",
                  "group_size", "arrive_s", "start_s", "end_s", "bytes_sent"]


@dataclass(frozen=True)
class EngineResult:
    """What one engine run produced.

    Attributes
    ----------
    records : pandas.DataFrame
        One row per rank per operation, columns :data:`RECORD_COLUMNS`: ``arrive_s`` is when the rank
        reached the operation (its stream and deps were done), ``start_s`` when it started (a collective:
        when its last member arrived), ``end_s`` when it ended; ``bytes_sent`` the rank's bytes in it.
    events : int
        SimPy events processed.
    makespan_s : float
        The latest ``end_s`` (0 for an empty program).
    wall_s : float
        Wall-clock seconds of the run (build, run and collect).
    """

    records: pd.DataFrame
    events: int
    makespan_s: float
    wall_s: float


class _Environment(simpy.Environment):
    """A SimPy environment that can trigger an event at an absolute time.

    ``env.timeout(t - env.now)`` would land on ``now + (t - now)``, which can differ from ``t`` in the last
    bit; :meth:`at` puts the event on SimPy's queue at ``t`` itself (as ``Environment.schedule`` does for
    ``now + delay``), so planned ends are exact. :meth:`scheduled` is the number of events put on the queue
    so far (SimPy numbers each one), which after ``run()`` is the number processed.
    """

    def fire_at(self, event: simpy.Event, at: float) -> simpy.Event:
        """Schedule the untriggered ``event`` to succeed (value None) at time ``at`` (>= now)."""
        event._ok = True
        event._value = None
        heappush(self._queue, (at, NORMAL, next(self._eid), event))
        return event

    def at(self, at: float) -> simpy.Event:
        """A new event that succeeds at time ``at`` (>= now)."""
        return self.fire_at(simpy.Event(self), at)

    def scheduled(self) -> int:
        """Events scheduled so far (each takes one SimPy event id)."""
        return next(self._eid)


class _Rendezvous:
    """A collective waiting for (then running with) its members."""

    __slots__ = ("op", "waiting", "arrive", "start_s", "release", "sent", "pos")

    def __init__(self, op: Collective, release: simpy.Event) -> None:
        self.op = op
        self.waiting = len(op.group)
        self.start_s = math.nan
        self.release = release
        self.sent: list[float] = []
        self.pos: dict[int, int] | None = None


def _validate(program: Program, network: Any) -> None:
    """Raise UserError for a program the engine cannot run on ``network``."""
    network.check_ranks(program.n_ranks)
    n = program.n_ranks
    first: dict[str, Collective] = {}
    count: dict[str, int] = {}
    sizes: set[tuple[str, str, int, tuple]] = set()
    for r, ops in enumerate(program.ops):
        for i, op in enumerate(ops):
            if op.stream not in STREAMS:
                raise UserError("program.stream", f"rank {r} op {i} has stream {op.stream!r}", ", ".join(STREAMS))
            for d in op.deps:
                if not 0 <= d < len(ops) or d == i:
                    raise UserError("program.deps", f"rank {r} op {i} depends on op {d}",
                                    f"indices of other ops of the rank, 0..{len(ops) - 1}")
            if isinstance(op, Compute):
                if not op.seconds >= 0 or not math.isfinite(op.seconds):
                    raise UserError("program.seconds", f"rank {r} op {i} lasts {op.seconds!r} s",
                                    "a finite duration >= 0")
                continue
            seen = first.get(op.key)
            if seen is None:
                if not op.group or min(op.group) < 0 or max(op.group) >= n or len(set(op.group)) != len(op.group):
                    raise UserError("program.group", f"collective {op.key!r} has group {op.group[:8]}...",
                                    f"distinct ranks in 0..{n - 1}")
                if r not in op.group:
                    raise UserError("program.group", f"rank {r} holds collective {op.key!r} but is not in its group",
                                    "only members hold a collective")
                first[op.key] = op
                count[op.key] = 1
                sizes.add((op.op, op.algorithm, len(op.group), network.algo_kwargs(op.op, op.algorithm, op.group,
                                                                                  op.halo_dims)))
                continue
            if seen is not op and (seen.op, seen.group, seen.nbytes, seen.algorithm, seen.halo_dims) != (
                    op.op, op.group, op.nbytes, op.algorithm, op.halo_dims):
                raise UserError("program.key", f"rank {r} op {i} reuses key {op.key!r} for a different collective",
                                "one key per collective instance")
            count[op.key] += 1
    for key, op in first.items():
        if count[key] != len(op.group):
            raise UserError("program.group", f"collective {key!r} is held by {count[key]} ranks, its group has "
                            f"{len(op.group)}", "every member (and only members) holds it once")
        if not op.nbytes >= 0 or not math.isfinite(op.nbytes):
            raise UserError("program.nbytes", f"collective {key!r} has {op.nbytes!r} bytes", "finite bytes >= 0")
    from sim.collectives import get_algorithm

    for op_name, alg, p, kw in sorted(sizes, key=repr):
        get_algorithm(op_name, alg).check(p, **dict(kw))


def run_program(program: Program, network: Any) -> EngineResult:
    """Run ``program`` on ``network`` and return its records.

    Parameters
    ----------
    program : Program
        Per-rank operation lists (:mod:`sim.program`).
    network : NetworkModel
        From :func:`sim.network.make_network`; rank r runs on host ``placement[r]``.

    Returns
    -------
    EngineResult

    Raises
    ------
    UserError
        When the program does not fit the topology, is malformed, or deadlocks (an operation never ran).
    """
    wall0 = time.perf_counter()
    _validate(program, network)
    env = _Environment()
    session = network.session(env)
    n_ranks = program.n_ranks
    # per rank: end time of each op (nan until known; a compute run's ends are known, and recorded, when
    # the run is planned), events of unfinished ops someone waits for, and the records
    ends = [[math.nan] * len(ops) for ops in program.ops]
    waiters: list[dict[int, simpy.Event]] = [{} for _ in range(n_ranks)]
    rows: list[list[tuple | None]] = [[None] * len(ops) for ops in program.ops]
    rdv: dict[str, _Rendezvous] = {}
    at, fire_at = env.at, env.fire_at

    def start_collective(state: _Rendezvous) -> None:
        op = state.op
        state.start_s = env.now
        state.sent = network.bytes_sent(op.op, op.algorithm, op.group, op.nbytes, op.halo_dims).tolist()
        state.pos = {m: k for k, m in enumerate(op.group)}
        done = session.collective(op.op, op.algorithm, op.group, op.nbytes, op.halo_dims)
        release = state.release
        done.callbacks.append(lambda _e: release.succeed())

    def stream_proc(r: int, idxs: list[int]) -> Generator[simpy.Event, Any, None]:
        ops = program.ops[r]
        my_ends, my_rows, my_waiters = ends[r], rows[r], waiters[r]
        k, n = 0, len(idxs)
        while k < n:
            i = idxs[k]
            op = ops[i]
            for d in op.deps:
                e = my_ends[d]
                if e != e:  # nan: its end is not known yet
                    ev = my_waiters.get(d)
                    if ev is None:
                        ev = my_waiters[d] = env.event()
                    yield ev
                elif e > env.now:  # planned in a compute run of another stream
                    yield at(e)
            t = env.now
            if type(op) is Compute:
                # a run of computes whose deps are known: their times are sums, one event at the end
                while True:
                    end = t + op.seconds
                    my_rows[i] = (r, op.stream, "compute", "", "", op.layer, op.phase, "compute", str(i), 1,
                                  t, t, end, 0.0)
                    my_ends[i] = end
                    if my_waiters:
                        ev = my_waiters.pop(i, None)
                        if ev is not None:
                            fire_at(ev, end)
                    t = end
                    k += 1
                    if k == n:
                        break
                    i = idxs[k]
                    op = ops[i]
                    if type(op) is not Compute or not all(my_ends[d] <= t for d in op.deps):
                        break
                yield at(t)
                continue
            state = rdv.get(op.key)
            if state is None:
                state = rdv[op.key] = _Rendezvous(op, env.event())
            state.waiting -= 1
            if state.waiting == 0:
                start_collective(state)
            yield state.release
            now = env.now
            my_rows[i] = (r, op.stream, "collective", op.op, op.algorithm, op.layer, op.phase, op.category, op.key,
                          len(op.group), t, state.start_s, now, state.sent[state.pos[r]])
            my_ends[i] = now
            if my_waiters:
                ev = my_waiters.pop(i, None)
                if ev is not None:
                    ev.succeed()
            k += 1

    for r, ops in enumerate(program.ops):
        for stream in STREAMS:
            idxs = [i for i, op in enumerate(ops) if op.stream == stream]
            if idxs:
                env.process(stream_proc(r, idxs))
    env.run()
    missing = [(r, i) for r in range(n_ranks) for i, row in enumerate(rows[r]) if row is None]
    if missing:
        r, i = missing[0]
        op = program.ops[r][i]
        what = f"collective {op.key!r}" if isinstance(op, Collective) else "compute"
        raise UserError("program", f"deadlock: {len(missing)} operations never ran (first: rank {r} op {i}, {what})",
                        "deps on ops that can end, and members reaching each collective in a consistent order")
    flat = [row for per_rank in rows for row in per_rank]
    records = pd.DataFrame.from_records(flat, columns=RECORD_COLUMNS)
    makespan = float(records["end_s"].max()) if len(records) else 0.0
    return EngineResult(records, env.scheduled(), makespan, time.perf_counter() - wall0)


# ---------------------------------------------------------------------------------------------- one collective
def collective_groups(procs: int, grid: str | tuple[int, int] | None = None, along: str | None = None,
                      placement: str = "row-major") -> tuple[tuple[int, ...], ...]:
    """The groups that run the collective: all ranks, or every model (``pr``) / batch (``pc``) group of a grid."""
    from sim.grid import Grid, parse_grid

    if grid is None:
        if along is not None:
            raise UserError("along", f"--along {along} without --grid", "give --grid PrxPc with --along")
        return (tuple(range(procs)),)
    pr, pc = parse_grid(grid, procs) if isinstance(grid, str) else (int(grid[0]), int(grid[1]))
    if pr * pc != procs:
        raise UserError("grid", f"{pr}x{pc} = {pr * pc} does not equal procs={procs}", f"Pr x Pc == {procs}")
    g = Grid(pr, pc, placement)
    along = "pr" if along is None else str(along).strip().lower()
    if along == "pr":
        return g.model_groups()
    if along == "pc":
        return g.batch_groups()
    raise UserError("along", f"unknown dimension {along!r}", "pr (model groups) or pc (batch groups)")


def collective_program(op: str, algorithm: str, groups: Sequence[tuple[int, ...]], nbytes: float,
                       procs: int) -> Program:
    """A program in which every group runs one ``op`` collective at time 0 (ranks outside groups idle)."""
    ops: list[tuple] = [() for _ in range(procs)]
    for g, members in enumerate(groups):
        c = Collective(op, tuple(members), float(nbytes), algorithm, key=f"{op}:{g}", category="other")
        for r in members:
            ops[r] = (c,)
    return Program(tuple(ops), {"op": op, "algorithm": algorithm})


def simulate_collective(op: str, algorithm: str, procs: int, nbytes: float, topology: str | nx.Graph,
                        network: str, grid: str | tuple[int, int] | None = None, along: str | None = None,
                        placement: str = "row-major", ecmp: bool = False, model: Any = None) -> dict[str, Any]:
    """Time one collective (or the same collective in every group of a grid at once), like nccl-tests.

    Parameters
    ----------
    op, algorithm : str
        A collective op of :data:`sim.program.COLLECTIVE_OPS` and one of its algorithms.
    procs : int
        Ranks; rank r runs on host r of the topology.
    nbytes : float
        Size as ``sim.program.COLLECTIVE_OPS`` defines it per op (> 0).
    topology : str or networkx.Graph
        A topology spec (built with ``procs`` hosts where the kind allows) or a built graph.
    network : str
        ``analytic``, ``flow`` or ``step``.
    grid, along, placement
        With a grid ``PrxPc``, the collective runs at once in each model group (``along="pr"``, the
        default) or each batch group (``"pc"``) of :class:`sim.grid.Grid`, ranks placed ``row-major`` or
        ``col-major``.
    ecmp : bool
        Multipath routing where the topology supports it.
    model : NetworkModel, optional
        A network model already built on this topology (reused across sizes; ``network``/``ecmp`` ignored).

    Returns
    -------
    dict
        ``op, algorithm, procs, bytes, topology, network, time_s, algbw_Bps, busbw_Bps, events, wall_s``
        (time until the last group finishes; algbw = bytes / time_s; busbw = algbw × bus factor of the
        group size, nccl-tests' definition), plus ``group_size`` and ``groups``.

    Examples
    --------
    Ring all-reduce on 4 ranks of the paper's network: 2(p−1)(α + n/(p·bw)):

    >>> row = simulate_collective("allreduce", "ring", 4, 4e6, "ideal:latency=2us,bandwidth=1GB/s", "flow")
    >>> abs(row["time_s"] - 2 * 3 * (2e-6 + 1e6 / 1e9)) < 1e-15
    True
    """
    from sim.collectives import bus_factor
    from sim.network import make_network
    from sim.program import COLLECTIVE_OPS
    from topologies import build_topology

    wall0 = time.perf_counter()
    if op not in COLLECTIVE_OPS:
        raise UserError("op", f"unknown collective {op!r}", ", ".join(COLLECTIVE_OPS))
    if isinstance(procs, bool) or not isinstance(procs, (int, np.integer)) or procs < 1:
        raise UserError("procs", f"{procs!r} is not a positive integer", "procs >= 1")
    procs = int(procs)
    size = float(nbytes)
    if not size > 0 or not math.isfinite(size):
        raise UserError("bytes", f"{nbytes!r} is not a positive size", "bytes > 0, e.g. 1MiB")
    groups = collective_groups(procs, grid, along, placement)
    if model is None:
        graph = build_topology(topology, procs) if isinstance(topology, str) else topology
        model = make_network(network, graph, ecmp=ecmp)
    res = run_program(collective_program(op, algorithm, groups, size, procs), model)
    p = len(groups[0])
    t = res.makespan_s
    algbw = size / t if t > 0 else math.inf
    return {"op": op, "algorithm": algorithm, "procs": procs, "bytes": size,
            "topology": topology if isinstance(topology, str) else str(model.graph.graph.get("name", "graph")),
            "network": model.name, "time_s": t, "algbw_Bps": algbw, "busbw_Bps": algbw * float(bus_factor(op, p)),
            "events": res.events, "wall_s": time.perf_counter() - wall0, "group_size": p, "groups": len(groups)}
