"""Compute models: roofline against its hand formula, paper-knl against the paper's Fig. 4 table, profile interpolation."""

from __future__ import annotations

import math

import pytest

from sim.errors import UserError
from workloads import build
from workloads.compute import ComputeModel, make_compute_model
from workloads.device_specs import list_devices, load_device
from workloads.zoo import get_model

# Gholami et al. 2018, Fig. 4: AlexNet epoch time on one KNL by batch (docs/paper-model.md)
PAPER_TABLE = {1: 30742, 2: 17292, 4: 9608, 8: 5924, 16: 3922, 32: 2843, 64: 2322, 128: 2032, 256: 1777,
               512: 1827, 1024: 1922, 2048: 2434}
N = 1_200_000


def test_none_is_zero():
    c = make_compute_model("none")
    layer = get_model("alexnet").layers[0]
    assert c.time(layer, "fwd", 64) == 0.0 and c.time(layer, "bwd", 64, 0.5) == 0.0
    assert isinstance(c, ComputeModel)


def test_roofline_hand_formula():
    c = make_compute_model("roofline:v100")
    layer = build.conv("c", (64, 56, 56), 64, 3, padding=1)
    b, shard = 32.0, 0.25
    peak, bw, b_half = 15.7e12, 900e9, 16  # workloads/devices/v100.yaml (NVIDIA datasheet)
    flops = 2 * 3 * 3 * 64 * 64 * 56 * 56 * b * shard
    nbytes = 4 * (3 * 3 * 64 * 64 + 64 + (64 * 56 * 56 * 2) * b) * shard
    expected = max(flops / peak, nbytes / bw) * (b + b_half) / b
    assert c.time(layer, "fwd", b, shard) == pytest.approx(expected, rel=1e-12)
    assert c.time(layer, "bwd", b, shard) == pytest.approx(2 * expected, rel=1e-12)
    # a memory-bound layer: ReLU moves 2 * 4 bytes per element and does 1 FLOP
    relu = build.act("r", (64, 56, 56))
    assert c.time(relu, "fwd", b) == pytest.approx(4 * 2 * 64 * 56 * 56 * b / bw * (b + b_half) / b, rel=1e-12)


def test_roofline_efficiency_rises_with_batch():
    c = make_compute_model("roofline:knl")
    layer = get_model("alexnet").layers[0]
    per_sample = [c.time(layer, "fwd", b) / b for b in (1, 4, 16, 64, 256)]
    assert per_sample == sorted(per_sample, reverse=True)


def test_devices_parse():
    names = list_devices()
    assert {"knl-7250", "v100", "a100", "h100", "cpu"} <= set(names)
    knl = load_device("knl")
    assert knl.peak_flops == 68 * 1.4e9 * 2 * 16 * 2  # the formula in knl-7250.yaml
    for name in names:
        d = load_device(name)
        assert d.peak_flops > 0 and d.mem_bandwidth_Bps > 0 and dict(d.sources)


@pytest.mark.parametrize("b", sorted(PAPER_TABLE))
def test_paper_knl_sums_to_table(b):
    c = make_compute_model("paper-knl")
    m = get_model("alexnet")
    fwd = math.fsum(c.time(layer, "fwd", b) for layer in m.layers)
    bwd = math.fsum(c.time(layer, "bwd", b) for layer in m.layers)
    assert fwd + bwd == pytest.approx(PAPER_TABLE[b] * b / N, rel=1e-12)
    assert bwd == pytest.approx(2 * fwd, rel=1e-12)


def test_paper_knl_interpolates_and_scales():
    c = make_compute_model("paper-knl")
    m = get_model("alexnet")
    total = lambda model, b, shard=1.0: math.fsum(  # noqa: E731
        c.time(layer, p, b, shard) for layer in model.layers for p in ("fwd", "bwd"))
    t16, t32 = PAPER_TABLE[16] * 16 / N, PAPER_TABLE[32] * 32 / N
    # log-log between 16 and 32: at b = 16 * sqrt(2) the geometric mean
    assert total(m, 16 * math.sqrt(2)) == pytest.approx(math.sqrt(t16 * t32), rel=1e-12)
    assert total(m, 64, shard=0.25) == pytest.approx(PAPER_TABLE[64] * 64 / N / 4, rel=1e-12)
    # beyond the table: constant time per sample of b = 2048
    assert total(m, 4096) == pytest.approx(PAPER_TABLE[2048] * 4096 / N, rel=1e-12)
    vgg = get_model("vgg16")
    ratio = vgg.fwd_flops_per_sample / m.fwd_flops_per_sample
    assert total(vgg, 64) == pytest.approx(PAPER_TABLE[64] * 64 / N * ratio, rel=1e-12)


def _profile(tmp_path, rows, header="layer,batch,fwd_s,bwd_s"):
    path = tmp_path / "p.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_profile_interpolation(tmp_path):
    layer = build.act("r", (10,))
    path = _profile(tmp_path, ["r,8,0.8,1.6", "r,1,0.2,0.5", "r,64,2.0,4.0"])
    c = make_compute_model(f"profile:{path}")
    assert c.time(layer, "fwd", 1) == 0.2 and c.time(layer, "fwd", 8) == 0.8 and c.time(layer, "bwd", 64) == 4.0
    # log-log linear: halfway in log b between 1 and 8 (b = sqrt 8) is the geometric mean
    assert c.time(layer, "fwd", math.sqrt(8)) == pytest.approx(math.sqrt(0.2 * 0.8), rel=1e-12)
    b = 20.0
    slope = math.log(2.0 / 0.8) / math.log(64 / 8)
    assert c.time(layer, "fwd", b) == pytest.approx(0.8 * (b / 8) ** slope, rel=1e-12)
    assert c.time(layer, "bwd", 128) == pytest.approx(4.0 * 128 / 64, rel=1e-12)  # linear beyond
    assert c.time(layer, "fwd", 8, shard=0.5) == 0.4


def test_profile_errors(tmp_path):
    m = get_model("alexnet")
    with pytest.raises(UserError, match="no rows for layer"):
        make_compute_model(f"profile:{_profile(tmp_path, ['conv1,1,0.1,0.2'])}", m)
    c = make_compute_model(f"profile:{_profile(tmp_path, ['conv1,1,0.1,0.2'])}")
    with pytest.raises(UserError):
        c.time(m.layers[1], "fwd", 1)
    for rows, header in [(["conv1,1,0.1"], "layer,batch,fwd_s"), (["conv1,0,0.1,0.2"], "layer,batch,fwd_s,bwd_s"),
                         (["conv1,1,-1,0.2"], "layer,batch,fwd_s,bwd_s"), (["conv1,x,1,0.2"], "layer,batch,fwd_s,bwd_s"),
                         (["conv1,1,1,0.2", "conv1,1,2,0.2"], "layer,batch,fwd_s,bwd_s")]:
        with pytest.raises(UserError) as exc:
            make_compute_model(f"profile:{_profile(tmp_path, rows, header)}")
        assert exc.value.field == "compute"
    with pytest.raises(UserError, match="does not exist"):
        make_compute_model("profile:/no/such.csv")


@pytest.mark.parametrize("spec, field", [
    ("magic", "compute"), ("roofline", "compute"), ("roofline:tpu9", "device"), ("none:1", "compute"),
    ("profile:", "compute"),
])
def test_bad_specs(spec, field):
    with pytest.raises(UserError) as exc:
        make_compute_model(spec)
    assert exc.value.field == field


def test_bad_phase():
    with pytest.raises(UserError):
        make_compute_model("roofline:cpu").time(get_model("alexnet").layers[0], "update", 1)
