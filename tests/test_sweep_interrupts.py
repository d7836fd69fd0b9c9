"""StopSignals: the first SIGINT/SIGTERM raises KeyboardInterrupt once, later ones are ignored, ``hold``
defers it to the end of a block, nested guards share the outer one, handlers come back (or not) on exit.

Signals are raised in this (the main) thread with ``signal.raise_signal``; Python runs the handler right
after that call returns, so each expectation below is deterministic.
"""

from __future__ import annotations

import signal

import pytest

from sim.sweep.interrupts import StopSignals, signals_blocked


def test_first_signal_raises_once_and_later_ones_are_ignored():
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as guard:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)  # the shutdown is under way: nothing is raised
        signal.raise_signal(signal.SIGTERM)
        assert guard.signum == signal.SIGTERM and guard.received == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_hold_defers_the_interrupt_to_the_end_of_the_block():
    done = []
    with StopSignals() as guard:
        with pytest.raises(KeyboardInterrupt), guard.hold():
            signal.raise_signal(signal.SIGINT)
            done.append("rest of the block")
        assert done == ["rest of the block"] and guard.signum == signal.SIGINT


def test_hold_turns_an_error_after_the_signal_into_the_interrupt():
    with StopSignals() as guard, pytest.raises(KeyboardInterrupt) as info, guard.hold():
        signal.raise_signal(signal.SIGINT)
        raise EOFError("the forkserver went away")
    assert isinstance(info.value.__cause__, EOFError)


def test_nested_guard_uses_the_outer_one():
    with StopSignals() as outer:
        handler = signal.getsignal(signal.SIGINT)
        with StopSignals() as inner:
            assert signal.getsignal(signal.SIGINT) == handler  # the inner guard installs nothing
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            assert inner.signum == outer.signum == signal.SIGINT
        assert signal.getsignal(signal.SIGINT) == handler


def test_restore_false_keeps_ignoring_after_a_signal():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with StopSignals(restore=False), pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    with StopSignals(restore=False):  # no signal: the handlers come back
        pass
    assert signal.getsignal(signal.SIGINT) is before[0]


def test_signals_blocked_delays_delivery_until_the_block_ends():
    with StopSignals() as guard, pytest.raises(KeyboardInterrupt), signals_blocked():
        signal.raise_signal(signal.SIGINT)  # to this thread, which blocks it
        assert guard.signum is None  # pending, not delivered
        assert signal.SIGINT in signal.sigpending()
    assert guard.signum == signal.SIGINT


def test_abort_pool_waits_for_the_executor_manager_thread():
    # at interpreter exit concurrent.futures writes to each live manager's wake-up pipe; a manager still
    # closing that pipe then gives "OSError: [Errno 9] Bad file descriptor" under a sweep's one-line
    # interrupt message. abort_pool returns only when the manager has finished (its pipe closed).
    import time as _time
    from concurrent.futures import ProcessPoolExecutor

    from sim.sweep.local import _context, abort_pool

    pool = ProcessPoolExecutor(1, mp_context=_context())
    pool.submit(_time.sleep, 30)
    manager = pool._executor_manager_thread
    assert manager is not None and manager.is_alive()
    abort_pool(pool)
    assert not manager.is_alive()
