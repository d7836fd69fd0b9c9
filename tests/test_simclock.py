"""The SimPy adapter's assumptions about SimPy internals hold for the installed SimPy (fails loudly if not).

:mod:`sim.simclock` writes ``Event._ok``/``Event._value`` and pushes ``(time, priority, id, event)`` onto
``Environment._queue`` numbered by ``Environment._eid``; these checks pin each of those facts, and that
an event fired at an absolute time lands on exactly that float.
"""

from __future__ import annotations

import itertools

import pytest
import simpy
from simpy.core import NORMAL

from sim.simclock import TESTED_SIMPY, Clock, succeed_after


def test_installed_simpy_is_the_tested_series():
    assert simpy.__version__.split(".")[:2] == TESTED_SIMPY.split("."), (
        f"SimPy {simpy.__version__} is installed, sim/simclock.py was checked against {TESTED_SIMPY}.x: "
        "re-check the internals it uses, then update TESTED_SIMPY and the pin in pyproject.toml")


def test_environment_internals_have_the_expected_shapes():
    env = Clock()
    assert isinstance(env._queue, list) and env._queue == []
    assert isinstance(env._eid, itertools.count)
    ev = env.timeout(1.5)
    (entry,) = env._queue
    # Environment.schedule pushes (time, priority, event id, event): the layout fire_at writes
    assert entry == (1.5, NORMAL, 0, ev)
    assert ev._ok is True and ev._value is None


def test_event_succeed_sets_what_the_adapter_sets():
    """Event.succeed marks _ok and _value (then schedules): the adapter sets the same two attributes."""
    env = simpy.Environment()
    ev = env.event()
    assert not ev.triggered
    ev.succeed()
    assert (ev._ok, ev._value, ev.triggered) == (True, None, True)


def test_fire_at_lands_exactly_on_the_absolute_time():
    clock = Clock()
    clock.timeout(0.1)
    clock.run()
    target = 0.1 + 0.2  # 0.30000000000000004, not a multiple of anything the clock has seen
    fired = []
    ev = clock.at(target)
    ev.callbacks.append(lambda _e: fired.append(clock.now))
    assert clock._queue[0] == (target, NORMAL, 1, ev)  # queued at the absolute time itself
    clock.run()
    assert fired == [target] and clock.now == target


def test_fire_at_an_existing_event_and_count_events():
    clock = Clock()
    ev = clock.event()
    got = []

    def waiter():
        got.append((yield ev))

    clock.process(waiter())  # one event: the process' initialization
    clock.fire_at(ev, 2.0)  # one event
    clock.run()
    # events scheduled: process start, ev, process end
    assert got == [None] and clock.now == 2.0 and clock.scheduled() == 3


def test_succeed_after_is_one_event_after_the_delay():
    env = simpy.Environment()
    ev = env.event()
    succeed_after(env, ev, 0.25)
    with pytest.raises(RuntimeError):
        ev.succeed()  # already triggered, as after Event.succeed
    env.run()
    assert env.now == 0.25 and ev.processed and ev.value is None
