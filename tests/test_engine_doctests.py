"""The runnable examples in the engine's and ``dnnsim collective``'s docstrings hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["sim.engine.run", "sim.engine.rules", "sim.engine.collective", "sim.simclock", "sim.cli.collective_cmd"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
