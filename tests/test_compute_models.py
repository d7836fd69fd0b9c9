"""Compute models: roofline against a hand calculation from datasheet peaks, paper-knl against the published
KNL epoch times (Gholami et al. 2018, Fig. 4) through epoch(b) * b / N, profile interpolation."""

from __future__ import annotations

import math

import pytest

from sim.errors import UserError
from workloads import build
from workloads.compute import ComputeModel, make_compute_model
from workloads.device_specs import list_devices, load_device
from workloads.zoo import get_model

# Gholami et al., SPAA 2018, Fig. 4: AlexNet epoch seconds on one Intel KNL by per-process batch b;
# one iteration at b takes epoch(b) * b / N with N = 1.2M ImageNet images
PAPER_TABLE = {1: 30742, 2: 17292, 4: 9608, 8: 5924, 16: 3922, 32: 2843, 64: 2322, 128: 2032, 256: 1777,
               512: 1827, 1024: 1922, 2048: 2434}
N = 1_200_000


def test_none_is_zero():
    c = make_compute_model("none")
    layer = get_model("alexnet").layers[0]
    assert c.time(layer, "fwd", 64) == 0.0 and c.time(layer, "bwd", 64, 0.5) == 0.0
    assert isinstance(c, ComputeModel)


# the v100 device file as it was before work-keyed efficiency: a b_half-only file keeps the per-sample curve
OLD_V100 = """name: v100-old
peak_flops: 15.7TFLOP/s
mem_bandwidth: 900GB/s
b_half: 16
"""


def test_roofline_hand_formula(tmp_path):
    path = tmp_path / "v100-old.yaml"
    path.write_text(OLD_V100)
    c = make_compute_model(f"roofline:{path}")
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


def test_roofline_knl_fc6_by_hand():
    """AlexNet fc6 (9216 -> 4096) on a KNL 7250 (6092.8 GFLOP/s fp32 = 68 x 1.4 GHz x 64 FLOP/cycle,
    400 GB/s MCDRAM, b_half 16): memory-bound at b = 1 (the 151 MB of weights), compute-bound at b = 4096."""
    c = make_compute_model("roofline:knl")
    fc6 = next(layer for layer in get_model("alexnet").layers if layer.name == "fc6")
    peak, bw, b_half = 68 * 1.4e9 * 64, 400e9, 16
    weights_bytes = 4 * (9216 * 4096 + 4096)
    at_1 = weights_bytes / bw + 4 * (9216 + 4096) / bw  # 2 * 9216 * 4096 FLOPs take only 12.4 us
    assert c.time(fc6, "fwd", 1) == pytest.approx(at_1 * (1 + b_half), rel=1e-12)
    assert at_1 == pytest.approx(377.6e-6, rel=1e-3)
    b = 4096
    at_b = 2 * 9216 * 4096 * b / peak  # 50.7 ms; its 369 MB of bytes take 0.92 ms
    assert at_b > (weights_bytes + 4 * (9216 + 4096) * b) / bw
    assert c.time(fc6, "fwd", b) == pytest.approx(at_b * (b + b_half) / b, rel=1e-12)


def test_devices_parse():
    names = list_devices()
    assert {"knl-7250", "v100", "a100", "h100", "h200", "cpu"} <= set(names)
    knl = load_device("knl")
    assert knl.peak_flops == 68 * 1.4e9 * 2 * 16 * 2  # Intel ARK: 68 cores, 1.4 GHz, 2 AVX-512 FMA units x 16 fp32
    assert knl.mem_bandwidth_Bps == 400e9  # MCDRAM "over 400 GB/s", Intel Xeon Phi x200 product brief
    datasheets = {  # FP32 non-tensor peak and memory bandwidth, from the vendors' datasheets
        "v100": (15.7e12, 900e9),  # NVIDIA Tesla V100 SXM2: 15.7 TFLOPS, HBM2 900 GB/s
        "a100": (19.5e12, 2039e9),  # NVIDIA A100 80GB SXM: 19.5 TFLOPS, HBM2e 2,039 GB/s
        "h100": (67e12, 3.35e12),  # NVIDIA H100 SXM: 67 TFLOPS, HBM3 3.35 TB/s
        "h200": (67e12, 4.8e12),  # NVIDIA H200 SXM: 67 TFLOPS, HBM3e 4.8 TB/s
        "cpu": (32 * 2.5e9 * 2 * 8 * 2, 8 * 3200e6 * 8),  # 32 cores AVX2 2 FMA units; 8 channels DDR4-3200
    }
    for name, (peak, bandwidth) in datasheets.items():
        d = load_device(name)
        assert d.peak_flops == pytest.approx(peak, rel=1e-12) and d.mem_bandwidth_Bps == pytest.approx(bandwidth, rel=1e-12)
        assert dict(d.sources)


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
