"""UserError keeps its one-line message through the ways an exception gets copied."""

from __future__ import annotations

import pickle

from sim.errors import UserError


def test_rebuilt_from_args_and_pickled():
    e = UserError("topology.nccl", "no algorithm left", "add ring")
    # SimPy re-raises an error from a simulated process as type(e)(*e.args); Dask and process pools pickle
    for copy in (type(e)(*e.args), pickle.loads(pickle.dumps(e))):
        assert isinstance(copy, UserError)
        assert str(copy) == "topology.nccl: no algorithm left; add ring"
        assert (copy.field, copy.problem, copy.allowed) == (e.field, e.problem, e.allowed)
