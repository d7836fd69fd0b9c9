"""Test-session settings: hypothesis runs derandomized, so every run draws the same examples; the ``torch``
fixture.

A property test that fails does so on every run (CI and a developer's machine alike); none passes or fails
by the luck of its random seed. ``HYPOTHESIS_PROFILE=explore`` turns the random search back on locally, to
hunt for new counterexamples (then pin any found with ``@example``).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("explore", derandomize=False, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def torch():
    """PyTorch for the tests of ``dnnsim profile``: skipped where it is not installed, except under CI
    (env ``CI`` set), whose script installs the CPU build, so there a missing torch fails the test."""
    if os.environ.get("CI"):
        import torch

        return torch
    return pytest.importorskip("torch")
