"""The scheduling rule the engine and the analytic fast path share: when an operation may begin.

A rank's operation *arrives* when its stream is free (the previous operation of the stream has ended)
and every operation it depends on has ended. The engine (:mod:`sim.engine.run`) applies the rule to
decide whether a compute can join a run of computes timed by sums; the fast path (:mod:`sim.fastpath`)
applies it to every step of its representative rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def ready_s(free_s: float, ends_s: Sequence[float], deps: Sequence[int]) -> float:
    """When an operation arrives: the latest of ``free_s`` (its stream is free) and the ends of its
    ``deps`` (indices into ``ends_s``); nan when one of those ends is not known yet (nan).

    Examples
    --------
    >>> ready_s(1.0, [0.5, 2.0, float("nan")], (0, 1))
    2.0
    >>> ready_s(1.0, [0.5, 2.0, float("nan")], (2,))
    nan
    """
    t = free_s
    for d in deps:
        e = ends_s[d]
        if e != e:
            return math.nan
        if e > t:
            t = e
    return t
