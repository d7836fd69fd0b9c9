"""``dnnsim collective``'s driver: time one collective (or the same collective in every group of a grid).

:func:`collective_groups` picks the groups, :func:`collective_program` builds a program in which each
group runs the collective once at time 0, and :func:`simulate_collective` runs it on the engine and
reports nccl-tests style figures. An algorithm that would fall back to another on this placement
(``hierarchical`` on a topology without multi-GPU nodes or on a group that is not node-aligned runs a flat
ring) is refused with a UserError rather than timed under the wrong name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.engine.run import run_program
from sim.errors import UserError
from sim.program import Collective, Program

if TYPE_CHECKING:
    import networkx as nx


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


def send_pairs(groups: Sequence[tuple[int, ...]]) -> tuple[tuple[int, int], ...]:
    """The ``send`` of each group: from its first member to its last (``dnnsim collective --op send``:
    rank 0 to rank procs-1, or with a grid, across each model / batch group); UserError for a group of one.

    Examples
    --------
    >>> send_pairs([(0, 1, 2, 3), (4, 5, 6, 7)])
    ((0, 3), (4, 7))
    """
    out = []
    for members in groups:
        if len(members) < 2:
            raise UserError("procs", f"a send needs 2 ranks, the group {tuple(members)} has {len(members)}",
                            "procs >= 2 (and groups of >= 2 ranks with --grid)")
        out.append((int(members[0]), int(members[-1])))
    return tuple(out)


def collective_program(op: str, algorithm: str, groups: Sequence[tuple[int, ...]], nbytes: float,
                       procs: int) -> Program:
    """A program in which every group runs one ``op`` collective at time 0 (ranks outside groups idle)."""
    ops: list[tuple] = [() for _ in range(procs)]
    for g, members in enumerate(groups):
        c = Collective(op, tuple(members), float(nbytes), algorithm, key=f"{op}:{g}", category="other")
        for r in members:
            ops[r] = (c,)
    return Program(tuple(ops), {"op": op, "algorithm": algorithm})


def _refuse_fallback(model: Any, op: str, algorithm: str, groups: Sequence[tuple[int, ...]]) -> None:
    """UserError when ``algorithm`` would run as another one on some group of this placement."""
    for members in groups:
        fallback = model.algorithm_fallback(op, algorithm, members)
        if fallback is not None:
            ran, why = fallback
            raise UserError("algorithm", f"{algorithm} {op} would run a flat {ran} here: {why}",
                            f"groups of whole nodes on a topology with multi-GPU nodes (e.g. dgx-a100 with "
                            f"procs a multiple of 8), or --algorithm {ran}")


def simulate_collective(op: str, algorithm: str, procs: int, nbytes: float, topology: str | nx.Graph,
                        network: str, grid: str | tuple[int, int] | None = None, along: str | None = None,
                        placement: str = "row-major", ecmp: bool = False, model: Any = None,
                        meter: Any = None) -> dict[str, Any]:
    """Time one collective (or the same collective in every group of a grid at once), like nccl-tests.

    Parameters
    ----------
    op, algorithm : str
        A collective op of :data:`sim.program.COLLECTIVE_OPS` and one of its algorithms.
    procs : int
        Ranks; rank r runs on host r of the topology.
    nbytes : float
        Size as :mod:`sim.collectives` defines it per op (> 0): the full result vector per rank, halo:
        the bytes to each neighbour, send: the bytes sent.
    topology : str or networkx.Graph
        A topology spec (built with ``procs`` hosts where the kind allows) or a built graph.
    network : str
        ``analytic``, ``flow`` or ``step``.
    grid, along, placement
        With a grid ``PrxPc``, the collective runs at once in each model group (``along="pr"``, the
        default) or each batch group (``"pc"``) of :class:`sim.grid.Grid`, ranks placed ``row-major`` or
        ``col-major``. A ``send`` goes from the first member of each group to its last (rank 0 to rank
        procs-1 without a grid: :func:`send_pairs`), so ``procs`` picks the distance.
    ecmp : bool
        Multipath routing where the topology supports it.
    model : NetworkModel, optional
        A network model already built on this topology (reused across sizes; ``network``/``ecmp`` ignored).
    meter : LinkMeter, optional
        Measure the links (:mod:`sim.network.linkmeter`; ``flow`` and ``step`` only).

    Returns
    -------
    dict
        ``op, algorithm, procs, bytes, topology, network, time_s, algbw_Bps, busbw_Bps, events, wall_s``
        (time until the last group finishes; algbw = bytes / time_s; busbw = algbw × bus factor of the
        group size, nccl-tests' definition), plus ``group_size`` and ``groups``; with ``algorithm="nccl"``
        also ``nccl_choice``, the algorithm/protocol NCCL's tuning picked (:func:`nccl_choice`).

    Raises
    ------
    UserError
        For a bad argument, and when ``algorithm`` would fall back to another on some group of this
        placement (``hierarchical`` on a topology without multi-GPU nodes, or on a group that is not
        node-aligned): the figures would be the fallback's under the requested name.

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
    if op == "send":
        groups = send_pairs(groups)
    if model is None:
        graph = build_topology(topology, procs) if isinstance(topology, str) else topology
        model = make_network(network, graph, ecmp=ecmp)
    _refuse_fallback(model, op, algorithm, groups)
    res = run_program(collective_program(op, algorithm, groups, size, procs), model, meter)
    p = len(groups[0])
    t = res.makespan_s
    algbw = size / t if t > 0 else math.inf
    row = {"op": op, "algorithm": algorithm, "procs": procs, "bytes": size,
           "topology": topology if isinstance(topology, str) else str(model.graph.graph.get("name", "graph")),
           "network": model.name, "time_s": t, "algbw_Bps": algbw, "busbw_Bps": algbw * float(bus_factor(op, p)),
           "events": res.events, "wall_s": time.perf_counter() - wall0, "group_size": p, "groups": len(groups)}
    if algorithm == "nccl" and p > 1:
        row["nccl_choice"] = nccl_choice(model, op, groups[0], size)
    return row


def nccl_choice(model, op: str, group: Sequence[int], nbytes: float) -> str:
    """``algorithm/protocol`` the ``nccl`` model runs for ``op`` of ``nbytes`` on ``group`` (what NCCL logs
    under NCCL_DEBUG_SUBSYS=TUNING), e.g. ``tree/LL128``; ``send`` has no choice (``p2p``)."""
    from sim.collectives.nccl import NCCL

    if op not in NCCL:
        return "p2p"
    kw = dict(model.algo_kwargs(op, "nccl", group))
    plan = NCCL[op].plan(len(group), float(nbytes), kw.get("local_size"), kw.get("fabric"))
    return f"{plan.algo}/{plan.proto}"
