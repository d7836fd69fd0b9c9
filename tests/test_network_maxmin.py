"""Max-min fair allocation (sim.network.maxmin): hand-computed cases and the defining properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.network.maxmin import maxmin_rates


def test_two_flows_share_one_link_equally():
    rates = maxmin_rates(np.array([0, 1]), np.array([0, 0]), 2, np.array([10.0]))
    assert rates.tolist() == [10.0 / 2, 10.0 / 2]


def test_classic_three_link_example():
    # link 0 (cap 1) carries flows A, B; link 1 (cap 2) carries A, C.
    # Progressive filling: level 1/2 saturates link 0 -> A = B = 0.5; C gets the rest of link 1: 2 - 0.5.
    inc_flow = np.array([0, 0, 1, 2])
    inc_link = np.array([0, 1, 0, 1])
    rates = maxmin_rates(inc_flow, inc_link, 3, np.array([1.0, 2.0]))
    assert np.allclose(rates, [0.5, 0.5, 2.0 - 0.5], rtol=0, atol=1e-15)


def test_path_bottleneck_is_the_smallest_link():
    # one flow over links of 4, 1 and 3 B/s
    rates = maxmin_rates(np.array([0, 0, 0]), np.array([0, 1, 2]), 1, np.array([4.0, 1.0, 3.0]))
    assert rates.tolist() == [1.0]


@st.composite
def instances(draw):
    n_links = draw(st.integers(1, 6))
    n_flows = draw(st.integers(1, 8))
    caps = np.array(draw(st.lists(st.floats(0.5, 100.0), min_size=n_links, max_size=n_links)))
    inc_f, inc_l = [], []
    for f in range(n_flows):
        links = draw(st.sets(st.integers(0, n_links - 1), min_size=1, max_size=n_links))
        for link in sorted(links):
            inc_f.append(f)
            inc_l.append(link)
    return np.array(inc_f), np.array(inc_l), n_flows, caps


@settings(max_examples=150, deadline=None)
@given(instances())
def test_feasible_and_every_flow_has_a_bottleneck(inst):
    inc_f, inc_l, n, caps = inst
    rates = maxmin_rates(inc_f, inc_l, n, caps)
    load = np.bincount(inc_l, weights=rates[inc_f], minlength=len(caps))
    assert (rates > 0).all()
    assert (load <= caps * (1 + 1e-9)).all()
    # max-min optimality: each flow crosses a saturated link on which no flow has a larger rate
    for f in range(n):
        links = inc_l[inc_f == f]
        ok = False
        for link in links:
            on = inc_f[inc_l == link]
            if load[link] >= caps[link] * (1 - 1e-9) and rates[f] >= rates[on].max() * (1 - 1e-9):
                ok = True
        assert ok, (f, rates, load, caps)
