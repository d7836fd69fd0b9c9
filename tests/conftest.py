"""Test-session settings: hypothesis runs derandomized, so every run draws the same examples.

A property test that fails does so on every run (CI and a developer's machine alike); none passes or fails
by the luck of its random seed. ``HYPOTHESIS_PROFILE=explore`` turns the random search back on locally, to
hunt for new counterexamples (then pin any found with ``@example``).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("explore", derandomize=False, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
