"""Run the examples in the docstrings of the workloads modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["workloads.build", "workloads.chain", "workloads.zoo", "workloads.interp", "workloads.compute"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
