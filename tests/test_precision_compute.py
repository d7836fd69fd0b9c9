"""Precisions and achieved efficiency: each peak and each efficiency default pinned to its published source,
the roofline against its formula written out here, bytes that follow the precision, fp32 unchanged bit for
bit, the transformer per-sample fix, the calibrate round trip, and one-line errors for bad input."""

from __future__ import annotations

import csv
import math

import pytest
from toy_models import toy

from sim.api import simulate
from sim.cli import main
from sim.errors import UserError
from sim.memory import memory_breakdown
from sim.strategies import plan_layers
from workloads import build
from workloads.compute import make_compute_model
from workloads.device_specs import load_device
from workloads.efficiency import kernel_class
from workloads.precision import PRECISIONS, get_precision, with_dtype_bytes
from workloads.zoo import get_model

# ----------------------------------------------------------------------------------------- peaks
# dense peaks in FLOP/s; NVIDIA's datasheets print tensor-core figures "with sparsity", twice the dense ones
DATASHEET_PEAKS = {
    "v100": {"fp32": 15.7e12,  # Tesla V100 SXM2 datasheet: single-precision 15.7 TFLOPS
             "fp16": 125e12},  # Tesla V100 SXM2 datasheet: Tensor Performance 125 TFLOPS
    "a100": {"fp32": 19.5e12,  # A100 datasheet: FP32 19.5 TFLOPS
             "tf32": 312e12 / 2,  # A100 datasheet: TF32 Tensor Core 156 | 312* TFLOPS (* with sparsity)
             "bf16": 624e12 / 2,  # A100 datasheet: BFLOAT16 Tensor Core 312 | 624* TFLOPS
             "fp16": 624e12 / 2},  # A100 datasheet: FP16 Tensor Core 312 | 624* TFLOPS
    "h100": {"fp32": 67e12,  # H100 datasheet (SXM): FP32 67 teraFLOPS
             "tf32": 989e12 / 2,  # H100 datasheet (SXM): TF32 Tensor Core 989 teraFLOPS*
             "bf16": 1979e12 / 2,  # H100 datasheet (SXM): BFLOAT16 Tensor Core 1,979 teraFLOPS*
             "fp16": 1979e12 / 2,  # H100 datasheet (SXM): FP16 Tensor Core 1,979 teraFLOPS*
             "fp8": 3958e12 / 2},  # H100 datasheet (SXM): FP8 Tensor Core 3,958 teraFLOPS*
    "h200": {"fp32": 67e12,  # H200 datasheet (SXM): FP32 67 TFLOPS
             "tf32": 989e12 / 2,  # H200 datasheet (SXM): TF32 Tensor Core 989 TFLOPS*
             "bf16": 1979e12 / 2,  # H200 datasheet (SXM): BFLOAT16 Tensor Core 1,979 TFLOPS*
             "fp16": 1979e12 / 2,  # H200 datasheet (SXM): FP16 Tensor Core 1,979 TFLOPS*
             "fp8": 3958e12 / 2},  # H200 datasheet (SXM): FP8 Tensor Core 3,958 TFLOPS*
}


@pytest.mark.parametrize("device", sorted(DATASHEET_PEAKS))
def test_peaks_pinned_to_datasheets(device):
    d = load_device(device)
    table = {name: (flops, tensor) for name, flops, tensor in d.peaks}
    assert set(table) == set(DATASHEET_PEAKS[device])
    for name, flops in DATASHEET_PEAKS[device].items():
        assert table[name][0] == pytest.approx(flops, rel=1e-12), name
        assert table[name][1] == (name != "fp32")  # tensor cores for everything but fp32
        assert f"peaks.{name}" in dict(d.sources) or name == "fp32"
    assert d.peak("fp32") == (d.peak_flops, False)


def test_missing_peak_is_a_user_error():
    with pytest.raises(UserError) as exc:
        make_compute_model("roofline:v100", precision="bf16")
    assert exc.value.field == "precision" and "fp16" in exc.value.allowed
    with pytest.raises(UserError) as exc:
        make_compute_model("roofline:a100", precision="fp8")
    assert exc.value.field == "precision"
    with pytest.raises(UserError) as exc:
        make_compute_model("roofline:knl", precision="tf32")
    assert exc.value.field == "precision"
    with pytest.raises(UserError) as exc:
        get_precision("fp64")
    assert exc.value.field == "precision" and exc.value.allowed == ", ".join(PRECISIONS)


# ----------------------------------------------------------------------------------------- efficiency defaults
def deepbench_p100_line():
    """DeepBench README, training GEMM results on Tesla P100 (fp32): M=2560 N=64 K=2560 at 5.31 TFLOPS and
    M=5124 N=9124 K=2560 at 8.21 TFLOPS; P100 SXM2 datasheet peak 10.6 TFLOPS. The line
    t = (flops / peak + half_s) / max through both points."""
    peak = 10.6e12
    f1, f2 = 2 * 2560 * 64 * 2560, 2 * 5124 * 9124 * 2560
    t1, t2 = f1 / 5.31e12, f2 / 8.21e12
    peak_fraction = (f2 - f1) / (peak * (t2 - t1))
    return peak_fraction, peak_fraction * t1 - f1 / peak


TENSOR_MATMUL_MAX = {
    "h100": 0.75,  # Shah et al., FlashAttention-3 (arXiv:2407.08608): 740 TFLOPs/s FP16, "75% utilization"
    "h200": 0.75,  # as h100: the same GH100 chip and compute peaks (H200 datasheet)
    "a100": 0.72,  # Dao, FlashAttention-2 (arXiv:2307.08691): 225 TFLOPs/s per A100, "72% model FLOPs utilization"
    "v100": 0.30,  # Shoeybi et al., Megatron-LM (arXiv:1909.08053): 39 TFLOPS, "30% of the theoretical peak"
}


@pytest.mark.parametrize("device", sorted(TENSOR_MATMUL_MAX))
def test_efficiency_defaults_pinned_to_sources(device):
    eff = load_device(device).efficiency
    simt_max, simt_half = deepbench_p100_line()
    assert (simt_max, simt_half) == pytest.approx((0.776, 43.46e-6), rel=1e-3)
    for tensor in (False, True):
        matmul = eff.curve("matmul", tensor)
        assert matmul.max == pytest.approx(TENSOR_MATMUL_MAX[device] if tensor else simt_max, rel=1e-3)
        assert matmul.half_s == pytest.approx(simt_half, rel=1e-3)  # DeepBench's half point, for both sets
    # cuDNN's implicit GEMM: simt conv uses the matmul curve; the tensor conv curve is DeepBench's per-layer
    # V100 fit, pinned in tests/test_memory_format.py
    assert eff.curve("conv", False) == eff.curve("matmul", False)
    # Jia et al., "Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking": 750 of 900 GB/s
    assert eff.memory.max == pytest.approx(750 / 900, rel=1e-3)
    assert eff.memory.half_s == pytest.approx(5e-6, rel=1e-12)  # an assumption, stated as such in the device file
    sources = dict(load_device(device).sources)
    for key in ("efficiency.tensor.matmul", "efficiency.simt.matmul", "efficiency.memory"):
        assert sources[key]


def test_kernel_classes():
    assert [kernel_class(k) for k in ("conv", "fc", "attention", "pool", "norm", "act", "embedding", "glu")] == [
        "conv", "matmul", "matmul", "memory", "memory", "memory", "memory", "memory"]


# ----------------------------------------------------------------------------------------- roofline formula
def test_roofline_work_keyed_hand_formula():
    """H100, bf16, NHWC: conv time = max((flops/989.5T + 19.76us)/0.283, (bytes/3.35TB/s + 5us)/0.833) at 2
    bytes (the tensor conv curve: DeepBench's V100 half_s, the max fitted to milabench's H100 ResNet-50 runs,
    tests/test_memory_format.py); NCHW adds the transposes' read and write of input
    and output as memory traffic."""
    c = make_compute_model("roofline:h100", precision="bf16", memory_format="nhwc")
    layer = build.conv("c", (64, 56, 56), 64, 3, padding=1)
    b, shard = 32.0, 0.25
    flops = 2 * 3 * 3 * 64 * 64 * 56 * 56 * b * shard
    nbytes = 2 * (3 * 3 * 64 * 64 + 64 + (64 * 56 * 56 * 2) * b) * shard
    compute = (flops / 989.5e12 + 19.76e-6) / 0.283
    memory = (nbytes / 3350e9 + 5e-6) / 0.833
    assert c.time(layer, "fwd", b, shard) == pytest.approx(max(compute, memory), rel=1e-12)
    assert c.time(layer, "bwd", b, shard) == pytest.approx(2 * max(compute, memory), rel=1e-12)
    transpose = (2 * 2 * (64 * 56 * 56 * 2) * b * shard / 3350e9 + 5e-6) / 0.833
    nchw = make_compute_model("roofline:h100", precision="bf16")
    assert nchw.time(layer, "fwd", b, shard) == pytest.approx(max(compute, memory) + transpose, rel=1e-12)
    relu = build.act("r", (64, 56, 56))  # memory-bound class: bytes only
    assert c.time(relu, "fwd", b) == pytest.approx((2 * 2 * 64 * 56 * 56 * b / 3350e9 + 5e-6) / 0.833, rel=1e-12)
    # fp32 on the same device: no tensor cores, 4 bytes, the simt curve
    c32 = make_compute_model("roofline:h100")
    compute32 = (flops / 67e12 + 43.46e-6) / 0.776
    assert c32.time(layer, "fwd", b, shard) == pytest.approx(max(compute32, 2 * memory - 5e-6 / 0.833), rel=1e-12)


def test_split_layer_runs_at_the_efficiency_of_its_share():
    """A quarter of a layer's work takes more than a quarter of its time (the per-call cost), and exactly the
    time of a call of that work: efficiency follows the rank's shard, not the local batch."""
    c = make_compute_model("roofline:a100", precision="bf16")
    fc = build.fc("f", (4096,), 4096)
    b = 64
    whole, quarter = c.time(fc, "fwd", b), c.time(fc, "fwd", b, 0.25)
    assert quarter > whole / 4
    flops = 2 * 4096 * 4096 * b / 4
    nbytes = 2 * (4096 * 4096 + 4096 + (4096 + 4096) * b) / 4
    expected = max((flops / 312e12 + 43.46e-6) / 0.72, (nbytes / 2039e9 + 5e-6) / 0.833)
    assert quarter == pytest.approx(expected, rel=1e-12)


def test_transformer_sample_is_not_one_image():
    """llama3-8b, 8 ranks, B=16 (2 sequences per rank), H100 at 2 bytes: the compute is within the curves' bounds
    of the ideal roofline (each layer max(flops/peak, bytes/bw), backward twice forward). The per-sample
    curve b/(b+64) made it ~33x the ideal (470 s); the work-keyed one at most 1/0.776 plus per-call costs."""
    model = get_model("llama3-8b")
    s = simulate({"model": "llama3-8b", "procs": 8, "batch": 16, "compute": "roofline:h100",
                  "dtype_bytes": 2}).summary.iloc[0]
    b = 2
    ideal = 3 * math.fsum(max(layer.fwd_flops_per_sample * b / 67e12,
                              2 * (layer.params + (layer.in_elems_per_sample + layer.out_elems_per_sample) * b)
                              / 3350e9) for layer in model.layers)
    calls = 3 * len(model.layers)
    assert ideal <= s["compute_s"] <= ideal / 0.776 + calls * 43.46e-6 / 0.776
    assert s["compute_s"] < 30  # was 470 s


# ----------------------------------------------------------------------------------------- bytes follow precision
def _summary(**kw):
    cfg = {"model": "alexnet", "batch": 256, "procs": 16}
    cfg.update(kw)
    return simulate(cfg).summary.iloc[0]


@pytest.mark.parametrize("strategy", ["batch", "model", "integrated"])
def test_fp32_default_is_bit_identical(strategy):
    """No precision, precision fp32, and the old explicit dtype_bytes 4 give the same numbers bit for bit, and
    memory equals the old three-copies formula (memory_breakdown without a precision)."""
    runs = [_summary(strategy=strategy), _summary(strategy=strategy, precision="fp32"),
            _summary(strategy=strategy, precision="fp32", dtype_bytes=4)]
    cols = ["iteration_s", "comm_s", "bytes_sent_per_rank", "memory_per_rank_bytes", "dtype_bytes"]
    assert [list(r[cols]) for r in runs[1:]] == [list(runs[0][cols])] * 2
    plans = plan_layers(toy(), "batch", "batch", 64, 1, 8)
    old = memory_breakdown(plans, 4, 1)
    new = memory_breakdown(plans, 4, 1, precision=get_precision("fp32"))
    assert new["total"] == old["total"] and new["master"] == 0.0


def test_knl_roofline_and_paper_knl_unchanged():
    """Devices with b_half keep the per-sample curve; measured compute ignores the precision's peak."""
    for compute in ("roofline:knl", "paper-knl"):
        a = _summary(compute=compute)
        b = _summary(compute=compute, precision="fp32", dtype_bytes=4)
        assert a["compute_s"] == b["compute_s"] and a["iteration_s"] == b["iteration_s"]


def test_communication_and_memory_follow_the_precision():
    """bf16 halves every communicated and stored byte of fp32; amp adds an fp32 master copy and keeps
    fp32 optimizer state: per parameter 2 + 2 + 4 + 4 bytes against bf16's 2 + 2 + 2, i.e. +6 bytes."""
    fp32, bf16, amp = (_summary(precision=p) for p in ("fp32", "bf16", "amp"))
    params = get_model("alexnet").params
    assert bf16["bytes_sent_per_rank"] == fp32["bytes_sent_per_rank"] / 2
    assert amp["bytes_sent_per_rank"] == bf16["bytes_sent_per_rank"]  # amp all-reduces 16-bit gradients
    assert bf16["memory_per_rank_bytes"] == fp32["memory_per_rank_bytes"] / 2
    assert amp["memory_per_rank_bytes"] - bf16["memory_per_rank_bytes"] == pytest.approx(6 * params, rel=1e-12)
    assert (fp32["dtype_bytes"], bf16["dtype_bytes"], amp["dtype_bytes"]) == (4, 2, 2)
    assert amp["precision"] == "amp"


def test_dtype_bytes_overrides_the_precision_bytes_not_its_peak():
    over = _summary(precision="bf16", dtype_bytes=4, compute="roofline:h100")
    fp32 = _summary(precision="fp32", compute="roofline:h100")
    bf16 = _summary(precision="bf16", compute="roofline:h100")
    assert over["bytes_sent_per_rank"] == fp32["bytes_sent_per_rank"]
    assert over["memory_per_rank_bytes"] == fp32["memory_per_rank_bytes"]
    # bf16's peak with fp32's bytes: between the two (AlexNet at 16 samples per rank is mostly memory-bound)
    assert bf16["compute_s"] < over["compute_s"] < fp32["compute_s"]
    amp4 = with_dtype_bytes(get_precision("amp"), 4)
    assert (amp4.word_bytes, amp4.weight_bytes, amp4.grad_bytes, amp4.master_bytes, amp4.optimizer_bytes) == \
        (4, 4, 4, 4, 4)


# ----------------------------------------------------------------------------------------- calibrate round trip
KNOWN = """name: known
peak_flops: 20TFLOP/s
mem_bandwidth: 1TB/s
peaks:
  bf16: {flops: 200TFLOP/s, tensor_core: true}
efficiency:
  tensor:
    conv: {max: 0.65, half_s: 30us}
    matmul: {max: 0.55, half_s: 20us}
  simt:
    conv: {max: 0.9, half_s: 10us}
    matmul: {max: 0.85, half_s: 12us}
  memory: {max: 0.6, half_s: 7us}
"""


def _profile_from(device_path, precision, path, model="alexnet", batches=(1, 4, 16, 64, 256, 1024),
                  memory_format="nchw"):
    c = make_compute_model(f"roofline:{device_path}", precision=precision, memory_format=memory_format)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["layer", "kind", "batch", "fwd_s", "bwd_s", "device"])
        for layer in get_model(model).layers:
            for b in batches:
                out.writerow([layer.name, layer.kind, b, repr(c.time(layer, "fwd", b)), repr(c.time(layer, "bwd", b)),
                              "cuda"])


@pytest.mark.parametrize("precision, which, layout", [("bf16", "tensor", "nchw"), ("bf16", "tensor", "nhwc"),
                                                      ("fp32", "simt", "nchw")])
def test_calibrate_round_trip(tmp_path, capsys, precision, which, layout):
    """A profile generated by the roofline of known curves gives them back; in NCHW at a tensor-core
    precision its convolutions include the layout transposes, which the fit must take off."""
    known = tmp_path / "known.yaml"
    known.write_text(KNOWN)
    profile = tmp_path / "profile.csv"
    _profile_from(known, precision, profile, memory_format=layout)
    # the base device has the known peaks and bandwidth but other curves: only the fit can bring them back
    base = tmp_path / "base.yaml"
    base.write_text(KNOWN.split("efficiency:")[0] + "efficiency:\n  tensor:\n    matmul: {max: 0.5, half_s: 1us}\n"
                    "  simt:\n    matmul: {max: 0.5, half_s: 1us}\n  memory: {max: 0.5, half_s: 1us}\n")
    out = tmp_path / "fit.yaml"
    assert main(["calibrate", "compute", str(profile), "--model", "alexnet", "--device", str(base),
                 "--precision", precision, "--memory-format", layout, "-o", str(out), "--name", "fitted"]) == 0
    assert "rms_rel_residual" in capsys.readouterr().out
    fitted = load_device(str(out))
    truth = load_device(str(known))
    assert fitted.name == "fitted"
    assert fitted.efficiency.memory.max == pytest.approx(truth.efficiency.memory.max, rel=1e-9)
    assert fitted.efficiency.memory.half_s == pytest.approx(truth.efficiency.memory.half_s, rel=1e-9)
    tensor = which == "tensor"
    for cls in ("conv", "matmul"):
        got, want = fitted.efficiency.curve(cls, tensor), truth.efficiency.curve(cls, tensor)
        assert (got.max, got.half_s) == pytest.approx((want.max, want.half_s), rel=1e-9), cls
    # the other set is the base device's, untouched
    assert fitted.efficiency.curve("matmul", not tensor) == load_device(str(base)).efficiency.curve("matmul", not tensor)


def test_calibrate_wrong_device_and_missing_layers(tmp_path, capsys):
    known = tmp_path / "known.yaml"
    known.write_text(KNOWN)
    profile = tmp_path / "profile.csv"
    _profile_from(known, "fp32", profile)
    # measured on a 20 TFLOP/s device, fitted as a 1 TFLOP/s one: faster than its peak
    slow = tmp_path / "slow.yaml"
    slow.write_text(KNOWN.replace("peak_flops: 20TFLOP/s", "peak_flops: 1TFLOP/s"))
    assert main(["calibrate", "compute", str(profile), "--model", "alexnet", "--device", str(slow),
                 "-o", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile:") and err.count("\n") == 1
    rows = profile.read_text().splitlines()
    (tmp_path / "short.csv").write_text("\n".join(r for r in rows if not r.startswith("fc8,")) + "\n")
    assert main(["calibrate", "compute", str(tmp_path / "short.csv"), "--model", "alexnet", "--device", "h100",
                 "-o", str(tmp_path / "y.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile: no rows for layer(s) fc8") and err.count("\n") == 1
    assert not (tmp_path / "y.yaml").exists()


# ----------------------------------------------------------------------------------------- CLI errors
@pytest.mark.parametrize("argv, field", [
    (["run", "--precision", "fp64"], "precision"),
    (["run", "--precision", "bf16", "--compute", "roofline:v100"], "precision"),
    (["run", "--precision", "fp8", "--compute", "roofline:a100"], "precision"),
])
def test_cli_bad_precision_one_line_exit_2(capsys, argv, field):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}:") and err.count("\n") == 1


def test_device_file_needs_one_efficiency_form(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text(KNOWN + "b_half: 16\n")
    neither = tmp_path / "neither.yaml"
    neither.write_text("name: n\npeak_flops: 1TFLOP/s\nmem_bandwidth: 1TB/s\n")
    bad_peak = tmp_path / "bad.yaml"
    bad_peak.write_text(KNOWN.replace("bf16: {", "fp64: {"))
    for path, field in [(both, "device"), (neither, "device"), (bad_peak, "device.peaks")]:
        with pytest.raises(UserError) as exc:
            load_device(str(path))
        assert exc.value.field == field
