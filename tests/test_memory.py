"""Memory per rank against a hand formula: 3 copies of the rank's weights + stored activations."""

from __future__ import annotations

from toy_models import toy

from sim.memory import memory_breakdown, memory_per_rank_bytes
from sim.strategies import plan_layers


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
    # f2's 10 rows do not split evenly over Pr = 4: the critical rank holds ⌈10/4⌉ = 3 rows of 32 + 1 params
    params = (224 + 72 + 65568) / pr + 3 * 33
    acts = (768 + 4 * 2048 + 32 + 10) * (B / pc)
    parts = memory_breakdown(plan_layers(toy(), "model", "model", B, pr, pc), word, pr)
    assert parts["weights"] == parts["gradients"] == parts["momentum"] == params * word
    assert parts["activations"] == acts * word
    assert parts["total"] == (3 * params + acts) * word
    # domain conv (full conv W, activations split by Pr) + model fc
    params = 224 + 72 + 65568 / pr + 3 * 33
    acts = (768 + 4 * 2048) * (B / pc) / pr + (32 + 10) * (B / pc)
    got = memory_per_rank_bytes(plan_layers(toy(), "domain", "model", B, pr, pc), word, pr)
    assert got == (3 * params + acts) * word
