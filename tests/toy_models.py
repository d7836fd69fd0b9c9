"""Small hand-built models shared by the strategy and memory tests (their sizes are easy to count)."""

from __future__ import annotations

from workloads.layer import Layer, Model


def toy() -> Model:
    """conv 3x3 (3->8 channels, 16x16), relu, conv 1x1 (8->8), flatten, fc 2048->32, fc 32->10."""
    c1 = Layer("c1", "conv", (3, 16, 16), (8, 16, 16), (3, 3), (1, 1), (1, 1), 1, 8 * 27 + 8)
    relu = Layer("relu", "act", (8, 16, 16), (8, 16, 16))
    c2 = Layer("c2", "conv", (8, 16, 16), (8, 16, 16), (1, 1), (1, 1), (0, 0), 1, 8 * 8 + 8)
    flat = Layer("flat", "flatten", (8, 16, 16), (2048,))
    f1 = Layer("f1", "fc", (2048,), (32,), params=2048 * 32 + 32)
    f2 = Layer("f2", "fc", (32,), (10,), params=32 * 10 + 10)
    return Model("toy", (3, 16, 16), (c1, relu, c2, flat, f1, f2), 1000)
