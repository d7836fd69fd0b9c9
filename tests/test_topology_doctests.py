"""The runnable examples in the topologies docstrings hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["topologies.basic", "topologies.fattree", "topologies.torus", "topologies.dragonfly",
           "topologies.hier", "topologies.routing", "topologies.spec", "topologies.stats"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
