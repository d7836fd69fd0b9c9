"""Interpolation of a time measured at a few batch sizes: log-log between points, proportional beyond.

Between two measured batches ``b0 < b < b1`` the time follows the power law through both points
(straight line in log-log). Outside the measured range the time per sample of the nearest end point is
kept, i.e. the time is extrapolated linearly in the batch through the origin: ``t(b) = t(b_end) * b / b_end``.
A series with a zero time is interpolated linearly instead (a log of 0 does not exist).

Examples
--------
>>> round(loglog_interp([1.0, 4.0], [2.0, 8.0], 2.0), 12)
4.0
>>> loglog_interp([1.0, 4.0], [2.0, 8.0], 8.0)
16.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def loglog_interp(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Value at ``x`` of the series ``(xs, ys)``.

    Parameters
    ----------
    xs : sequence of float
        Strictly increasing positive batch sizes.
    ys : sequence of float
        Non-negative times at ``xs``.
    x : float
        Batch size > 0.

    Returns
    -------
    float
        ``ys[i]`` exactly where ``x == xs[i]``; log-log interpolation inside; proportional outside.
    """
    xa = np.asarray(xs, dtype=float)
    ya = np.asarray(ys, dtype=float)
    i = int(np.searchsorted(xa, x))
    if i < len(xa) and xa[i] == x:
        return float(ya[i])
    if i == 0:
        return float(ya[0] * (x / xa[0]))
    if i == len(xa):
        return float(ya[-1] * (x / xa[-1]))
    x0, x1, y0, y1 = xa[i - 1], xa[i], ya[i - 1], ya[i]
    if y0 <= 0.0 or y1 <= 0.0:
        return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    frac = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return float(math.exp(math.log(y0) + frac * (math.log(y1) - math.log(y0))))
