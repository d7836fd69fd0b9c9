"""Memory per rank against a hand formula: 3 copies of the rank's weights + stored activations."""

from __future__ import annotations

from sim.memory import memory_breakdown, memory_per_rank_bytes
from sim.strategies import plan_layers
from workloads.layer import Layer, Model


def toy() -> Model:
    """The toy model of test_strategies: conv 3x3, relu, conv 1x1, flatten, fc, fc."""
    c1 = Layer("c1", "conv", (3, 16, 16), (8, 16, 16), (3, 3), (1, 1), (1, 1), 1, 8 * 27 + 8)
    relu = Layer("relu", "act", (8, 16, 16), (8, 16, 16))
    c2 = Layer("c2", "conv", (8, 16, 16), (8, 16, 16), (1, 1), (1, 1), (0, 0), 1, 8 * 8 + 8)
    flat = Layer("flat", "flatten", (8, 16, 16), (2048,))
    f1 = Layer("f1", "fc", (2048,), (32,), params=2048 * 32 + 32)
    f2 = Layer("f2", "fc", (32,), (10,), params=32 * 10 + 10)
    return Model("toy", (3, 16, 16), (c1, relu, c2, flat, f1, f2), 1000)


def test_batch_parallel_hand_formula():
    B, P, word = 64, 8, 4
    params = 224 + 72 + 65568 + 330
    # input 3*16*16, outputs c1, relu, c2, flat = 2048 each, f1 32, f2 10; B/P = 8 samples
    acts = (768 + 4 * 2048 + 32 + 10) * (B // P)
    got = memory_per_rank_bytes(plan_layers(toy(), "batch", "batch", B, 1, P), word, 1)
    assert got == (3 * params + acts) * word


def test_integrated_model_and_domain_hand_formula():
    B, pr, pc, word = 64, 4, 2, 2
    # model everywhere: W / Pr, activations B/Pc x d (replicated along the model group)
    params = (224 + 72 + 65568 + 330) / pr
    acts = (768 + 4 * 2048 + 32 + 10) * (B / pc)
    parts = memory_breakdown(plan_layers(toy(), "model", "model", B, pr, pc), word, pr)
    assert parts["weights"] == parts["gradients"] == parts["momentum"] == params * word
    assert parts["activations"] == acts * word
    assert parts["total"] == (3 * params + acts) * word
    # domain conv (full conv W, activations split by Pr) + model fc
    params = 224 + 72 + (65568 + 330) / pr
    acts = (768 + 4 * 2048) * (B / pc) / pr + (32 + 10) * (B / pc)
    got = memory_per_rank_bytes(plan_layers(toy(), "domain", "model", B, pr, pc), word, pr)
    assert got == (3 * params + acts) * word
