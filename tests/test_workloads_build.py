"""Layer constructors: shapes, parameters and FLOPs against the formulas in workloads/build.py."""

from __future__ import annotations

import pytest

from sim.errors import UserError
from workloads import build


def test_conv_formula():
    c = build.conv("c", (8, 20, 30), 12, (3, 5), stride=(2, 1), padding=(1, 2), groups=4)
    ho, wo = (20 + 2 - 3) // 2 + 1, (30 + 4 - 5) // 1 + 1
    assert c.out_shape == (12, ho, wo)
    assert c.params == 3 * 5 * (8 // 4) * 12 + 12
    assert c.fwd_flops_per_sample == 2 * 3 * 5 * (8 // 4) * 12 * ho * wo
    assert build.conv("c", (8, 20, 30), 12, 3, bias=False).params == 3 * 3 * 8 * 12
    assert (c.kernel, c.stride, c.padding, c.groups) == ((3, 5), (2, 1), (1, 2), 4)


def test_fc_flattens_and_counts():
    f = build.fc("f", (4, 3, 3), 10)
    assert f.out_shape == (10,) and f.params == 36 * 10 + 10 and f.fwd_flops_per_sample == 2 * 36 * 10
    assert f.in_elems_per_sample == 36 and f.out_elems_per_sample == 10 and f.has_weights


def test_pool_floor_and_ceil():
    assert build.pool("p", (3, 55, 55), 3, 2).out_shape == (3, 27, 27)
    assert build.pool("p", (3, 6, 6), 3, 2).out_shape == (3, 2, 2)  # floor((6-3)/2)+1
    assert build.pool("p", (3, 6, 6), 3, 2, ceil_mode=True).out_shape == (3, 3, 3)  # ceil((6-3)/2)+1
    p = build.pool("p", (3, 112, 112), 3, 2, padding=1)
    assert p.out_shape == (3, 56, 56) and p.fwd_flops_per_sample == 9 * 3 * 56 * 56 and p.params == 0


def test_elementwise_rules():
    shape = (4, 5, 5)
    assert build.norm("n", shape).params == 2 * 4
    assert build.norm("n", shape).fwd_flops_per_sample == 2 * 100
    assert build.act("a", shape).fwd_flops_per_sample == 100
    assert build.lrn("l", shape, size=5).fwd_flops_per_sample == (2 * 5 + 2) * 100
    assert build.add("s", [shape, shape, shape], ("a", "b", "c")).fwd_flops_per_sample == 2 * 100
    assert build.flatten("f", shape).out_shape == (100,)
    assert build.concat("c", [shape, (6, 5, 5)], ("a", "b")).out_shape == (10, 5, 5)


@pytest.mark.parametrize("call", [
    lambda: build.conv("c", (3, 5, 5), 8, 7),                   # kernel bigger than input
    lambda: build.conv("c", (3, 9, 9), 8, 3, groups=2),         # groups do not divide Cin
    lambda: build.conv("c", (3, 9, 9), 0, 3),                   # no output channels
    lambda: build.conv("c", (3, 9, 9), 8, 3, stride=0),
    lambda: build.conv("c", (27,), 8, 3),                       # conv after flatten
    lambda: build.pool("p", (3, 9, 9), 3, op="median"),
    lambda: build.act("a", (3,), fn="swish"),
    lambda: build.dropout("d", (3,), p=1.0),
    lambda: build.add("s", [(3, 4, 4), (4, 4, 4)], ("a", "b")),
    lambda: build.add("s", [(3, 4, 4)], ("a",)),
    lambda: build.concat("c", [(3, 4, 4), (3, 5, 4)], ("a", "b")),
])
def test_bad_arguments_are_user_errors(call):
    with pytest.raises(UserError) as exc:
        call()
    assert exc.value.field.startswith("layer ")
