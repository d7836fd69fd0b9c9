"""The SimPy adapter: the one module that touches SimPy's private internals.

The engine needs two things SimPy's public API does not give: an event that fires at an *absolute* time
(``env.timeout(t - env.now)`` lands on ``now + (t - now)``, which can differ from ``t`` in the last bit),
and the number of events scheduled in a run. The fluid core needs an existing event to succeed after a
delay as one queue entry (like a ``Timeout``, without creating one). Both rest on SimPy internals:
``Environment._queue`` (the heap of ``(time, priority, id, event)``), ``Environment._eid`` (the
``itertools.count`` numbering scheduled events) and ``Event._ok`` / ``Event._value`` (what
``Event.succeed`` sets before scheduling). They are used here and nowhere else. They were checked against
SimPy 4.1.x, the range ``pyproject.toml`` pins; ``tests/test_simclock.py`` fails loudly if they change.

Examples
--------
>>> clock = Clock()
>>> t = 0.1 + 0.2                      # 0.30000000000000004
>>> _ = clock.timeout(0.1); clock.run(); ev = clock.at(t); clock.run()
>>> clock.now == t, clock.scheduled()
(True, 2)
"""

from __future__ import annotations

from heapq import heappush

import simpy
from simpy.core import NORMAL

#: the SimPy versions whose internals this module was checked against (``major.minor``)
TESTED_SIMPY = "4.1"


def succeed_after(env: simpy.Environment, event: simpy.Event, delay_s: float) -> simpy.Event:
    """Schedule the untriggered ``event`` to succeed (value None) ``delay_s`` seconds from now, as one
    queue entry (what ``Event.succeed`` does, with a delay)."""
    event._ok = True
    event._value = None
    env.schedule(event, delay=delay_s)
    return event


class Clock(simpy.Environment):
    """A SimPy environment that can trigger an event at an absolute time and count its events.

    :meth:`fire_at` puts the event on SimPy's queue at ``at`` itself (as ``Environment.schedule`` does for
    ``now + delay``), so planned ends are exact. :meth:`scheduled` is the number of events put on the
    queue so far (SimPy numbers each one), which after ``run()`` is the number processed.
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
        """Events scheduled so far (each takes one SimPy event id). Takes one id itself: call it after
        ``run()``."""
        return next(self._eid)
