"""Max-min fair rates of flows sharing directed links, by vectorized progressive filling.

Every flow crosses a set of links; every link has a capacity. Max-min fairness (as in SimGrid's fluid
model) raises the rates of all flows together until some link is full; the flows crossing a full link are
frozen at that level and the others keep rising. Each round is a handful of numpy operations over the
flow-link incidence arrays (``np.bincount`` counts the unfrozen flows per link), so the cost is
``rounds × incidences`` with ``rounds`` the number of distinct bottleneck levels, never a Python loop per
flow.

Examples
--------
Two flows on one link of 10 B/s get 5 B/s each; a third flow alone on another link gets its 4 B/s:

>>> import numpy as np
>>> maxmin_rates(np.array([0, 1, 2]), np.array([0, 0, 1]), 3, np.array([10.0, 4.0])).tolist()
[5.0, 5.0, 4.0]
"""

from __future__ import annotations

import numpy as np

#: links whose fair share is within this relative margin of the smallest share saturate in the same round
_REL = 1e-12


def maxmin_rates(inc_flow: np.ndarray, inc_link: np.ndarray, n_flows: int,
                 capacity_Bps: np.ndarray) -> np.ndarray:
    """Max-min fair rate of each flow.

    Parameters
    ----------
    inc_flow, inc_link : ndarray of int
        One entry per (flow, link) incidence; ``inc_link`` indexes ``capacity_Bps`` (compact ids).
    n_flows : int
        Number of flows; every flow must cross at least one link.
    capacity_Bps : ndarray of float
        Capacity of each (compact) link.

    Returns
    -------
    ndarray of float
        Rate of each flow, bytes/s.
    """
    n_links = len(capacity_Bps)
    rate = np.zeros(n_flows, dtype=np.float64)
    frozen = np.zeros(n_flows, dtype=bool)
    saturated = np.zeros(n_links, dtype=bool)
    remaining = capacity_Bps.astype(np.float64, copy=True)
    level = 0.0
    f_act, l_act = inc_flow, inc_link
    while len(f_act):
        count = np.bincount(l_act, minlength=n_links)
        used = np.flatnonzero(count)
        n_used = count[used]
        share = remaining[used] / n_used
        delta = float(share.min())
        level += delta
        remaining[used] -= delta * n_used
        saturated[used[share <= delta * (1.0 + _REL)]] = True
        hit = f_act[saturated[l_act]]
        rate[hit] = level
        frozen[hit] = True
        keep = ~frozen[f_act]
        f_act, l_act = f_act[keep], l_act[keep]
    return rate
