"""The runnable examples in the sim.network docstrings hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["sim.network.base", "sim.network.maxmin", "sim.network.fluid", "sim.network.flow"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
