"""Network models register themselves; algorithms' declared placement facts become their keywords."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sim.network as network_pkg
from sim.errors import UserError
from sim.network import MODELS, make_network
from sim.network.base import REGISTRY, NetworkModel, register_model
from topologies import build_topology


def test_every_model_module_registered_its_class():
    assert MODELS == ("analytic", "flow", "step") == tuple(REGISTRY)
    graph = build_topology("ideal", 4)
    for name in MODELS:
        model = make_network(f" {name.upper()} ", graph)
        assert type(model) is REGISTRY[name] and model.name == name
    with pytest.raises(UserError) as info:
        make_network("packet", graph)
    assert info.value.field == "network" and info.value.allowed == "analytic|flow|step"


def test_register_model_refuses_a_taken_name_and_a_missing_one():
    class Impostor(NetworkModel):
        name = "flow"

        def session(self, env):
            raise NotImplementedError

    class Nameless(NetworkModel):
        def session(self, env):
            raise NotImplementedError

    with pytest.raises(ValueError, match="registered twice"):
        register_model(Impostor)
    with pytest.raises(ValueError, match="name"):
        register_model(Nameless)
    assert REGISTRY["flow"].__module__ == "sim.network.flow"
    assert register_model(REGISTRY["flow"]) is REGISTRY["flow"]  # registering the same class again is a no-op


def test_the_factory_module_imports_no_model():
    """No import cycle: sim.network.base names no concrete model module."""
    tree = ast.parse(Path(network_pkg.base.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not imported & {"sim.network.analytic", "sim.network.flow", "sim.network.step", "sim.network"}
    # and a fresh interpreter can import the base module on its own and still build every model
    code = ("from sim.network.base import make_network\nfrom topologies import build_topology\n"
            "print([make_network(m, build_topology('ideal', 2)).name for m in ('analytic', 'flow', 'step')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "['analytic', 'flow', 'step']"


def test_placement_facts_become_keywords():
    dgx = make_network("analytic", build_topology("dgx-a100", 16))
    whole, split = tuple(range(16)), tuple(range(12))
    # hierarchical declares local_size: 8 GPUs per node for whole nodes, 1 otherwise (the flat fallback)
    assert dgx.algo_kwargs("allreduce", "hierarchical", whole) == (("local_size", 8),)
    assert dgx.algo_kwargs("allreduce", "hierarchical", split) == (("local_size", 1),)
    # halo algorithms declare dims: the given grid, or the chain (p,)
    assert dgx.algo_kwargs("halo", "direct", whole, (4, 4)) == (("dims", (4, 4)),)
    assert dgx.algo_kwargs("halo", "paper", whole) == (("dims", (16,)),)
    # algorithms that declare nothing get no keywords, whatever the placement
    assert dgx.algo_kwargs("allreduce", "ring", whole) == ()
    assert dgx.algo_kwargs("allgather", "bruck", split, (3, 4)) == ()
    # without nodes, local_size is left to the algorithm's default
    ideal = make_network("analytic", build_topology("ideal", 8))
    assert ideal.algo_kwargs("allreduce", "hierarchical", tuple(range(8))) == ()
