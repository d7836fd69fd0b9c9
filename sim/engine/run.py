"""Run a :class:`~sim.program.Program` on a network model and record every operation: build, run, collect.

1. *build* — validate the program (:mod:`sim.engine.validate`), open a network
   :class:`~sim.network.base.Session` on a fresh :class:`~sim.simclock.Clock` and start one SimPy process
   per rank per stream that has operations;
2. *run* — a stream process runs its operations in list order. Before an operation it waits for the ends
   of the operations named in its ``deps`` (same rank, any stream). Compute operations take their known
   durations: a run of consecutive computes whose deps have known ends (:func:`sim.engine.rules.ready_s`)
   is timed by sums (each end is the previous end plus the duration, the same floats SimPy's timeouts
   would give) and costs one event at its end; other streams waiting on an op inside the run are woken at
   that op's end exactly. A collective is a rendezvous by ``key``: each member records when it *arrived*;
   when the last member arrives the collective *starts* on the network (``Session.collective``), and when
   the network's event triggers every member is released at once (one shared event). A ``send``
   starts when its *sender* (``group[0]``) arrives, whether or not the receiver has (its receive is
   posted in advance): the sender is released when the transfer has arrived, the receiver then or, if it
   arrives later, at once (:meth:`_Run._send`);
3. *collect* — one record per rank per operation (:mod:`sim.engine.records`), ranks in order, operations
   in list order; an operation that never ran is reported as a deadlock.

Events (SimPy events processed) scale with ranks × (compute runs + collectives) + collectives × phases:
a compute run costs one event, a collective (a send too) one release event plus what the network model
schedules,
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
from collections.abc import Generator
from typing import Any

import simpy

from sim.engine.records import RECORD_COLUMNS, EngineResult, collective_row, compute_row
from sim.engine.rules import ready_s
from sim.engine.validate import validate_program
from sim.errors import UserError
from sim.program import STREAMS, Collective, Compute, Program
from sim.simclock import Clock

_Proc = Generator[simpy.Event, Any, Any]
#: position of ``end_s`` in a record row
END = RECORD_COLUMNS.index("end_s")


class _Rendezvous:
    """A collective waiting for (then running with) its members."""

    __slots__ = ("op", "waiting", "start_s", "end_s", "release", "sent", "pos", "algorithm")

    def __init__(self, op: Collective, release: simpy.Event) -> None:
        self.op = op
        self.waiting = len(op.group)
        self.start_s = math.nan
        self.end_s = math.nan
        self.release = release
        self.sent: list[float] = []
        self.pos: dict[int, int] = {}
        self.algorithm = op.algorithm


class _Run:
    """One engine run: the clock, the network session and, per rank, the end of each op (nan until
    known; a compute run's ends are known, and recorded, when the run is planned), the events of
    unfinished ops someone waits for, and the records."""

    def __init__(self, program: Program, network: Any, meter: Any = None) -> None:
        self.program = program
        self.network = network
        self.env = Clock()
        self.session = network.session(self.env)
        self.meter = meter
        if meter is not None:
            self.session.attach_meter(meter)
        self.ends = [[math.nan] * len(ops) for ops in program.ops]
        self.waiters: list[dict[int, simpy.Event]] = [{} for _ in range(program.n_ranks)]
        self.rows: list[list[tuple | None]] = [[None] * len(ops) for ops in program.ops]
        self.rdv: dict[str, _Rendezvous] = {}

    # ------------------------------------------------------------------ build
    def start(self) -> None:
        """One process per rank per stream with operations: ranks ascending, streams in STREAMS order."""
        for r, ops in enumerate(self.program.ops):
            for stream in STREAMS:
                idxs = [i for i, op in enumerate(ops) if op.stream == stream]
                if idxs:
                    self.env.process(self._stream(r, idxs))

    # ------------------------------------------------------------------ run
    def _stream(self, r: int, idxs: list[int]) -> _Proc:
        """Run ops ``idxs`` of rank ``r`` in order."""
        ops = self.program.ops[r]
        k, n = 0, len(idxs)
        while k < n:
            op = ops[idxs[k]]
            if op.deps:
                yield from self._wait_deps(r, op.deps)
            if type(op) is Compute:
                k = yield from self._compute_run(r, idxs, k)
            elif op.op == "send":
                yield from self._send(r, idxs[k], op)
                k += 1
            else:
                yield from self._collective(r, idxs[k], op)
                k += 1

    def _wait_deps(self, r: int, deps: tuple[int, ...]) -> _Proc:
        """Until every op of ``deps`` has ended."""
        env, my_ends, my_waiters = self.env, self.ends[r], self.waiters[r]
        for d in deps:
            e = my_ends[d]
            if e != e:  # nan: its end is not known yet
                ev = my_waiters.get(d)
                if ev is None:
                    ev = my_waiters[d] = env.event()
                yield ev
            elif e > env.now:  # planned in a compute run of another stream
                yield env.at(e)

    def _compute_run(self, r: int, idxs: list[int], k: int) -> Generator[simpy.Event, Any, int]:
        """Time the computes from ``idxs[k]`` on whose deps are known by sums, with one event at the end of
        the run; return the position after the run."""
        env, ops = self.env, self.program.ops[r]
        my_ends, my_rows, my_waiters = self.ends[r], self.rows[r], self.waiters[r]
        n = len(idxs)
        t = env.now
        i = idxs[k]
        op = ops[i]
        while True:
            end = t + op.seconds
            my_rows[i] = compute_row(r, i, op, t, end)
            my_ends[i] = end
            if my_waiters:
                ev = my_waiters.pop(i, None)
                if ev is not None:
                    env.fire_at(ev, end)
            t = end
            k += 1
            if k == n:
                break
            i = idxs[k]
            op = ops[i]
            if type(op) is not Compute or ready_s(t, my_ends, op.deps) != t:
                break
        yield env.at(t)
        return k

    def _collective(self, r: int, i: int, op: Collective) -> _Proc:
        """Arrive at collective ``op`` (op ``i`` of rank ``r``), start it if last, wait for its release."""
        env = self.env
        t = env.now
        state = self.rdv.get(op.key)
        if state is None:
            state = self.rdv[op.key] = _Rendezvous(op, env.event())
        state.waiting -= 1
        if state.waiting == 0:
            self._start_collective(state)
        yield state.release
        self._finish(r, i, op, state, t, state.start_s)

    def _send(self, r: int, i: int, op: Collective) -> _Proc:
        """Arrive at send ``op`` (op ``i`` of rank ``r``): the sender starts the transfer at once and waits
        for it; the receiver waits for it unless it has already arrived.

        Records: the sender's ``start_s`` is its arrival (the transfer's start); the receiver's is the later
        of its arrival and the transfer's start, so its ``end_s - start_s`` is the time it spent waiting for
        the data once both it had arrived and the data was on its way, and ``start_s - arrive_s`` the time
        it waited for the sender to arrive.
        """
        env = self.env
        t = env.now
        state = self.rdv.get(op.key)
        if state is None:
            state = self.rdv[op.key] = _Rendezvous(op, env.event())
        if r == op.group[0]:
            self._start_collective(state)
            yield state.release
            start = state.start_s
        else:
            if state.end_s != state.end_s:  # nan: the transfer has not arrived (or not started) yet
                yield state.release
            start = max(t, state.start_s)
        self._finish(r, i, op, state, t, start)

    def _finish(self, r: int, i: int, op: Collective, state: _Rendezvous, arrive_s: float,
                start_s: float) -> None:
        """Record rank ``r``'s part in ``op`` (op ``i``), ending now, and wake whoever waits for it."""
        now = self.env.now
        self.rows[r][i] = collective_row(r, op, op.key, len(op.group), state.algorithm, arrive_s, start_s, now,
                                         state.sent[state.pos[r]])
        self.ends[r][i] = now
        my_waiters = self.waiters[r]
        if my_waiters:
            ev = my_waiters.pop(i, None)
            if ev is not None:
                ev.succeed()

    def _start_collective(self, state: _Rendezvous) -> None:
        """The last member has arrived: start the collective on the network; release all when it ends."""
        op, network = state.op, self.network
        state.start_s = self.env.now
        state.algorithm = network.effective_algorithm(op.op, op.algorithm, op.group)
        count = op.count
        state.sent = network.bytes_sent(op.op, op.algorithm, op.group, op.nbytes, op.halo_dims, count).tolist()
        state.pos = {m: k for k, m in enumerate(op.group)}
        if self.meter is not None:
            label = f"{op.layer} {op.op}" if op.layer else op.key
            self.meter.add_collective(label, *network.link_bytes(op.op, op.algorithm, op.group, op.nbytes,
                                                                 op.halo_dims, count))
        done = self.session.collective(op.op, op.algorithm, op.group, op.nbytes, op.halo_dims, count)
        done.callbacks.append(lambda _e: self._release(state))

    def _release(self, state: _Rendezvous) -> None:
        """The collective's last transfer has arrived: note when, and release the members waiting."""
        state.end_s = self.env.now
        state.release.succeed()

    # ------------------------------------------------------------------ collect
    def collect(self, wall0: float) -> EngineResult:
        """The records (UserError naming the first op that never ran, if any)."""
        program = self.program
        missing = [(r, i) for r, per_rank in enumerate(self.rows) for i, row in enumerate(per_rank) if row is None]
        if missing:
            r, i = missing[0]
            op = program.ops[r][i]
            what = f"collective {op.key!r}" if isinstance(op, Collective) else "compute"
            raise UserError("program", f"deadlock: {len(missing)} operations never ran (first: rank {r} op {i}, "
                            f"{what})", "deps on ops that can end, and members reaching each collective in a "
                            "consistent order")
        rows = [row for per_rank in self.rows for row in per_rank]
        makespan = max((row[END] for row in rows), default=0.0)
        return EngineResult(rows, self.env.scheduled(), float(makespan), time.perf_counter() - wall0, self.meter)


def run_program(program: Program, network: Any, meter: Any = None) -> EngineResult:
    """Run ``program`` on ``network`` and return its records.

    Parameters
    ----------
    program : Program
        Per-rank operation lists (:mod:`sim.program`).
    network : NetworkModel
        From :func:`sim.network.make_network`; rank r runs on host ``placement[r]``.
    meter : LinkMeter, optional
        Measure every link's bytes, busy time and utilisation (:mod:`sim.network.linkmeter`; ``flow`` and
        ``step`` only); returned as ``EngineResult.meter``.

    Returns
    -------
    EngineResult

    Raises
    ------
    UserError
        When the program does not fit the topology, is malformed, or deadlocks (an operation never ran).
    """
    wall0 = time.perf_counter()
    validate_program(program, network)
    run = _Run(program, network, meter)
    run.start()
    run.env.run()
    return run.collect(wall0)
