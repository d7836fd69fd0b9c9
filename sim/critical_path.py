"""The critical path of a run: the chain of operations that sets the iteration time, derived from the records.

No second simulation is needed: in the engine every operation starts when its rank *arrives* at it (its
stream is free and its ``deps`` have ended), except a collective, which starts when its last member arrives,
and the receiver of a ``send``, whose record starts at the later of its arrival and the sender's (the
transfer starts when the sender arrives). So, walking back from the operation that ends last:

* a collective whose start is later than this rank's arrival was waiting for a *straggler*: the path moves
  to the member that arrived last (the same collective on that rank), and the row says whom it waited for
  (a receiver that arrived before its sender: the sender, whose arrival started the transfer);
* otherwise the operation's arrival is the end of one of its predecessors on the same rank — the previous
  operation of its stream or one of its ``deps`` — and the path continues with the one that ended then
  (ties: the stream predecessor, then the lowest dep index).

The rows, in time order, tile ``[0, iteration_s]`` with no gap: the sum of their durations equals the
iteration time (a test holds this on every strategy). :func:`critical_split` divides that time into the
critical rank's own compute and communication, and the time the path spends on other ranks — the time the
critical rank was waiting for a straggler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: columns of :func:`critical_path`'s frame
PATH_COLUMNS = ["rank", "stream", "kind", "op", "algorithm", "layer", "phase", "category", "key", "start_s",
                "end_s", "duration_s", "waiting_for"]


def critical_path(records: Any, ops: Sequence[Sequence[Any]]) -> Any:
    """The chain of operations that sets the makespan of ``records`` (:func:`walk`, then :func:`path_frame`).

    Parameters
    ----------
    records : pandas.DataFrame
        Engine-shaped records (:data:`sim.engine.RECORD_COLUMNS`): ranks ascending, each rank's operations
        in list order (as the engine and the fast path emit them).
    ops : sequence of sequences
        ``ops[r][i]`` is rank ``r``'s i-th operation, with ``stream`` and ``deps`` (and ``group`` for a
        collective): a :class:`~sim.program.Program`'s ``ops``, or ``[steps]`` for the fast path's rank 0.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PATH_COLUMNS`, in time order; ``waiting_for`` names what the operation started
        after: ``start``, ``stream`` (the previous op of its stream), ``dep N`` (op N of its rank), or
        ``straggler rank M`` (a collective that waited for rank M to arrive).
    """
    return path_frame(records, *walk(records, ops))


def walk(records: Any, ops: Sequence[Sequence[Any]]) -> tuple[list[int], list[str]]:
    """The critical path as record positions in time order, and each one's ``waiting_for``."""
    if len(records) == 0:
        return [], []
    rank = records["rank"].to_numpy()
    arrive = records["arrive_s"].to_numpy(dtype=float)
    start = records["start_s"].to_numpy(dtype=float)
    end = records["end_s"].to_numpy(dtype=float)
    kind = records["kind"].to_numpy()
    key = records["key"].to_numpy()
    ranks = np.unique(rank)
    first = {int(r): int(i) for r, i in zip(ranks, np.searchsorted(rank, ranks), strict=True)}
    key_index: dict[int, dict[str, int]] = {}

    def row_of(r: int, key_: str) -> int:
        table = key_index.get(r)
        if table is None:
            lo = first[r]
            table = key_index[r] = {str(key[lo + i]): lo + i for i in range(len(ops[r]))
                                    if kind[lo + i] == "collective"}
        return table[key_]

    prev_tables: dict[int, list[int]] = {}

    def prev_in_stream(r: int, i: int) -> int | None:
        table = prev_tables.get(r)
        if table is None:
            last: dict[str, int] = {}
            table = prev_tables[r] = []
            for j, op in enumerate(ops[r]):
                table.append(last.get(op.stream, -1))
                last[op.stream] = j
        j = table[i]
        return None if j < 0 else j

    def predecessor(r: int, i: int) -> tuple[int, str] | None:
        """The row whose end is rank ``r``'s arrival at its op ``i`` (None at time 0)."""
        lo = first[r]
        t = arrive[lo + i]
        candidates: list[tuple[int, str]] = []
        j = prev_in_stream(r, i)
        if j is not None:
            candidates.append((lo + j, "stream"))
        candidates += [(lo + d, f"dep {d}") for d in sorted(ops[r][i].deps)]
        best = max(candidates, key=lambda c: end[c[0]], default=None)
        if best is None or t <= 0.0 or end[best[0]] < t:
            return None
        return best

    row = int(np.argmax(end))  # first row with the largest end (the lowest such rank)
    path: list[tuple[int, str]] = []
    while True:
        r = int(rank[row])
        i = row - first[r]
        if kind[row] == "collective" and start[row] > arrive[row]:
            rows = [row_of(int(m), str(key[row])) for m in ops[r][i].group]
            straggler = max(rows, key=lambda k: (arrive[k], -rank[k]))
            path.append((row, f"straggler rank {int(rank[straggler])}"))
            r = int(rank[straggler])
            pred = predecessor(r, straggler - first[r])
        else:
            pred = predecessor(r, i)
            path.append((row, pred[1] if pred is not None else "start"))
        if pred is None:
            break
        row = pred[0]
    return [row for row, _ in reversed(path)], [why for _, why in reversed(path)]


def path_frame(records: Any, rows: list[int], reasons: list[str]) -> Any:
    """The frame (:data:`PATH_COLUMNS`) of the record positions ``rows`` with their ``reasons``."""
    import pandas as pd

    cols = {c: records[c].to_numpy()[rows] for c in PATH_COLUMNS[:11]}
    cols["duration_s"] = cols["end_s"] - cols["start_s"]
    cols["waiting_for"] = reasons
    return pd.DataFrame(cols, columns=PATH_COLUMNS)


def split_rows(records: Any, rows: list[int]) -> dict[str, float]:
    """:func:`critical_split` from the record positions of the path (no frame built)."""
    if not rows:
        return {"critical_compute_s": 0.0, "critical_comm_s": 0.0, "critical_wait_s": 0.0}
    rank = records["rank"].to_numpy()[rows]
    kind = records["kind"].to_numpy()[rows]
    dur = records["end_s"].to_numpy(dtype=float)[rows] - records["start_s"].to_numpy(dtype=float)[rows]
    own = rank == rank[-1]
    return {"critical_compute_s": float(dur[own & (kind == "compute")].sum()),
            "critical_comm_s": float(dur[own & (kind == "collective")].sum()),
            "critical_wait_s": float(dur[~own].sum())}


def critical_split(path: Any) -> dict[str, float]:
    """``critical_compute_s``, ``critical_comm_s`` (the critical rank's own work on the path: the rank of
    its last row) and ``critical_wait_s`` (path time on other ranks: waiting for stragglers); they add up to
    the path's length."""
    if len(path) == 0:
        return {"critical_compute_s": 0.0, "critical_comm_s": 0.0, "critical_wait_s": 0.0}
    rank = path["rank"].to_numpy()
    kind = path["kind"].to_numpy()
    dur = path["duration_s"].to_numpy(dtype=float)
    own = rank == rank[-1]
    return {"critical_compute_s": float(dur[own & (kind == "compute")].sum()),
            "critical_comm_s": float(dur[own & (kind == "collective")].sum()),
            "critical_wait_s": float(dur[~own].sum())}
