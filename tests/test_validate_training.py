"""Training rows of the validation table: the published-value conversions, pinned to numbers printed in
the sources and to hand computations; row checking; a row run end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sim import validate
from sim.cli import main
from sim.errors import UserError
from sim.validate import (
    DEFAULT_ROWS,
    load_rows,
    megatron2024_flops,
    narayanan2021_flops,
    palm_flops_per_token,
    published_iteration_s,
    run_rows,
    summarize,
)
from workloads.loader import load_model


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict]:
    return {row["id"]: row for row in load_rows(DEFAULT_ROWS)}


def test_narayanan_eq3_megatron_1t_by_hand(shipped):
    # Megatron-LM README (2021) 1T row: 3072 A100, batch 3072, 163 TFLOP/s per GPU; GPT with l = 128,
    # h = 25600, V = 51200, s = 2048. Narayanan et al. 2021 eq. 3 (with recomputation):
    # F = 96 B s l h^2 (1 + s/(6h) + V/(16 l h)); iteration time = F / (163e12 * 3072)
    flops = 96 * 3072 * 2048 * 128 * 25600**2 * (1 + 2048 / (6 * 25600) + 51200 / (16 * 128 * 25600))
    assert math.isclose(flops, 5.139048e19, rel_tol=1e-6)
    assert math.isclose(narayanan2021_flops(3072, 2048, 128, 25600, 51200, recompute=True), flops, rel_tol=1e-12)
    seconds = flops / (163e12 * 3072)
    assert math.isclose(seconds, 102.63, rel_tol=1e-4)
    assert math.isclose(published_iteration_s(shipped["megatron2021-1t"]), seconds, rel_tol=1e-12)


# Megatron-LM README (commit 2e90a342f5, May 2022): "Model FLOPs Utilization" of the runs of Korthikanti
# et al. 2022, data-parallel size one: 22B 41.5 %, 175B 51.4 %, 530B 56.0 %, 1T 56.3 %.
README_MFU_PCT = {"22b": (41.5, 48, 6144), "175b": (51.4, 96, 12288), "530b": (56.0, 105, 20480),
                  "1t": (56.3, 128, 25600)}


@pytest.mark.parametrize("name", sorted(README_MFU_PCT))
def test_korthikanti_times_give_the_readme_mfu(shipped, name):
    # The Table 5 "present work" time (calculon's transcription, copied into the row) through the model-FLOP
    # count without recomputation, 72 B s l h^2 (1 + s/(6h) + V/(12 l h)), over procs x the A100's 312 TFLOP/s
    # (dense fp16/bf16) gives the MFU the README prints, to its one decimal: two sources agree on each run.
    mfu_pct, layers, hidden = README_MFU_PCT[name]
    row = shipped[f"korthikanti2022-{name}-selective-sp"]
    s = row["setting"]
    flops = 72 * s["batch"] * 2048 * layers * hidden**2 * (1 + 2048 / (6 * hidden) + 51200 / (12 * layers * hidden))
    assert math.isclose(narayanan2021_flops(s["batch"], 2048, layers, hidden, 51200, recompute=False), flops,
                        rel_tol=1e-12)
    # Table 5 prints seconds to two decimals, the README one decimal of a percent: agree within both roundings
    seconds = published_iteration_s(row)
    slowest, fastest = (100 * flops / ((seconds + d) * s["procs"] * 312e12) for d in (0.005, -0.005))
    assert slowest - 0.05 <= mfu_pct <= fastest + 0.05
    # full recomputation is slower on every model (Table 5: the paper's 29-32 % throughput gain)
    assert shipped[f"korthikanti2022-{name}-full"]["measured"]["value"] > row["measured"]["value"]


def test_megatron2024_count_is_the_72_form_for_gpt_blocks():
    # num_floating_point_operations with g = H, H d = h, f = 4h, no SwiGLU:
    # 12 B s l h^2 ((2 + s/h) + 4 + V/(2 l h)) = 72 B s l h^2 (1 + s/(6h) + V/(12 l h))
    for b, s, lay, h, v, heads in [(3, 4096, 7, 1024, 131072, 8), (3072, 4096, 112, 18432, 131072, 144)]:
        assert math.isclose(megatron2024_flops(b, s, lay, h, v, heads, heads, h // heads, 4 * h, swiglu=False),
                            narayanan2021_flops(b, s, lay, h, v, recompute=False), rel_tol=1e-12)
    # GQA and SwiGLU by the formula's terms: Llama 3 8B (l 32, h 4096, 32 heads, 8 kv, d 128, f 14336, V 128256)
    b, s, lay, h = 1, 8192, 32, 4096
    by_hand = 12 * b * s * lay * h * h * ((1 + 8 / 32 + s / h) * 1 + (14336 / h) * 1.5 + 128256 / (2 * lay * h))
    assert math.isclose(megatron2024_flops(b, s, lay, h, 128256, 32, 8, 128, 14336, swiglu=True), by_hand,
                        rel_tol=1e-12)


def test_megatron2024_h100_462b_by_hand(shipped):
    # README 2024 row: 462B, l 112, h 18432, 6144 H100, batch 3072, sequence 4096, V 131072, 459.9 TFLOP/s
    flops = 72 * 3072 * 4096 * 112 * 18432**2 * (1 + 4096 / (6 * 18432) + 131072 / (12 * 112 * 18432))
    assert math.isclose(published_iteration_s(shipped["megatron2024-h100-462b"]), flops / (459.9e12 * 6144),
                        rel_tol=1e-12)


def test_llama3_mfu_to_seconds_by_hand(shipped):
    # Llama 3 Table 4, first row: 8,192 H100, DP 64 x 32 sequences of 8,192 tokens, BF16 MFU 43 %. PaLM's count
    # per token 6 N + 12 L H Q T with Llama 3 405B's N = 405,853,388,800 (docs/transformers.md), L 126, H 128,
    # Q 128, T 8192; peak the H100 SXM datasheet's dense BF16, 1,979 / 2 TFLOP/s (with sparsity halved).
    per_token = 6 * 405_853_388_800 + 12 * 126 * 128 * 128 * 8192
    assert palm_flops_per_token(405_853_388_800, 126, 128, 128, 8192) == per_token
    seconds = 64 * 32 * 8192 * per_token / (8192 * 1979e12 / 2 * 0.43)
    assert math.isclose(published_iteration_s(shipped["llama3-405b-8k-gpus"]), seconds, rel_tol=1e-12)
    # the 131,072-token rows: 8 x 16 sequences = 16.8M tokens per batch, as the 8K rows (Table 4: 16M each)
    for name in ("8k-gpus", "16k-gpus", "16k-gpus-cp16"):
        s = shipped[f"llama3-405b-{name}"]["setting"]
        assert s["batch"] * s["seq_len"] == 16 * 2**20


# The other columns of the README tables, copied here to check the TFLOP/s copied into the rows:
# 2021 (images/cases_april2021.png): "Achieved aggregate petaFLOPs"; the per-GPU value is rounded to an
# integer, so the product agrees to that rounding (0.5 / 135 < 0.4 %).
AGGREGATE_2021_PF = {"1.7b": 4.4, "3.6b": 8.8, "7.5b": 18.2, "18b": 34.6, "39b": 70.8, "76b": 143.8,
                     "145b": 227.1, "310b": 297.4, "530b": 410.2, "1t": 502.0}
# 2024 (images/model_table.png): "Aggregate petaFLOP/s" and "MFU" (per-GPU over the H100's 989 TFLOP/s)
AGGREGATE_2024 = {"1.7b": (19.6, 41), "7.1b": (44.7, 47), "16b": (93.9, 49), "32b": (176.5, 46),
                  "70b": (322.3, 42), "119b": (645.9, 43), "177b": (997.2, 44), "314b": (1457.4, 48),
                  "462b": (2825.6, 47)}
# 2021: "Number of parameters (billion)"
PARAMS_2021_B = {"1.7b": 1.7, "3.6b": 3.6, "7.5b": 7.5, "18b": 18.4, "39b": 39.1, "76b": 76.1, "145b": 145.6,
                 "310b": 310.1, "530b": 529.6, "1t": 1008.0}


def test_copied_tflops_agree_with_the_tables_other_columns(shipped):
    for name, aggregate in AGGREGATE_2021_PF.items():
        row = shipped[f"megatron2021-{name}"]
        product = row["measured"]["value"] * row["setting"]["procs"] / 1000
        assert math.isclose(product, aggregate, rel_tol=0.004), name
    for name, (aggregate, mfu_pct) in AGGREGATE_2024.items():
        row = shipped[f"megatron2024-h100-{name}"]
        assert abs(row["measured"]["value"] * row["setting"]["procs"] / 1000 - aggregate) < 0.06, name
        assert round(row["measured"]["value"] / 989 * 100) == mfu_pct, name


def test_model_files_have_the_published_parameter_counts():
    models = Path(DEFAULT_ROWS).parent / "models"
    for name, billions in PARAMS_2021_B.items():
        assert round(load_model(str(models / f"megatron-gpt-{name}.yaml")).params / 1e9, 1) == billions, name


def test_bloom_rows_agree_with_the_logs_tflops(shipped):
    """BLOOM's logs print, beside each iteration time, Megatron-DeepSpeed's TFLOPs (megatron/training.py at
    e52bdabbde: 24 * 4 (recomputation) * B * s * l * h^2 * (1 + s/(6h) + V/(16 l h)) / (t * GPUs * 1e12)):
    149.02 beside 105.22 s (chronicles.md), 153.68 beside 102.03 s and 128.92 beside 121.63 s
    (chronicles-prequel.md). The copied times reproduce the printed TFLOPs, and the model files have the
    176B parameters of the name."""
    b, s, layers, h, v = 2048, 2048, 70, 14336, 250880
    flops = 24 * 4 * b * s * layers * h**2 * (1 + s / (6 * h) + v / (16 * layers * h))
    for row_id, tflops in (("bloom176b-production", 149.02), ("bloom176b-prequel-tp4-dp8", 153.68),
                           ("bloom176b-prequel-tp8-dp4", 128.92)):
        row = shipped[row_id]
        assert (row["setting"]["batch"], row["setting"]["seq_len"], row["setting"]["procs"]) == (b, s, 384)
        assert round(flops / (row["measured"]["value"] * 384 * 1e12), 2) == tflops, row_id
    models = Path(DEFAULT_ROWS).parent / "models"
    for name in ("bloom-176b", "bloom-176b-64heads"):
        assert round(load_model(str(models / f"{name}.yaml")).params / 1e9) == 176, name


def test_shipped_training_rows(shipped):
    training = [row for row in shipped.values() if row["kind"] == "training"]
    run = [row for row in training if "missing" not in row]
    assert len(run) >= 12
    assert all("arXiv" in row["source"] or "Megatron-LM" in row["source"] or "github.com/" in row["source"]
               for row in run)
    for row in run:
        s = row["setting"]
        assert s["tp"] * s.get("cp", 1) * s["pp"] * s["dp"] == s["procs"]


FIXTURE = """
rows:
  - id: tiny
    kind: training
    setting: {model: models/tiny.yaml, procs: 8, batch: 8, seq_len: 64, tp: 2, cp: 1, pp: 2, dp: 2,
              recompute: none, compute: "roofline:h100", precision: bf16}
    measured: {value: 50, unit: mfu_pct, flops: palm}
    source: fixture
"""
TINY = """
name: tiny
dataset_size: 100
transformer: {layers: 2, hidden: 64, heads: 4, ffn: 256, vocab: 100, seq_len: 64}
"""


def _fixture(tmp_path: Path, text: str = FIXTURE) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "tiny.yaml").write_text(TINY)
    path = tmp_path / "rows.yaml"
    path.write_text(text)
    return path


def test_mfu_conversion_on_a_tiny_model(tmp_path):
    # the tiny model: 2 (4 h^2 + 2 h f + 2 h) + 2 V h + h parameters (docs/transformers.md, rmsnorm, swiglu is
    # 3 h f: 2 * (4*64*64 + 3*64*256 + 2*64) + 2*100*64 + 64), PaLM count per token 6 N + 12 * 2 * 4 * 16 * 64
    (row,) = load_rows(_fixture(tmp_path))
    n = 2 * (4 * 64 * 64 + 3 * 64 * 256 + 2 * 64) + 2 * 100 * 64 + 64
    seconds = 8 * 64 * (6 * n + 12 * 2 * 4 * 16 * 64) / (8 * 989.5e12 * 0.5)
    assert math.isclose(published_iteration_s(row), seconds, rel_tol=1e-12)


def test_a_training_row_runs(tmp_path, monkeypatch, capsys):
    """The fixture row runs on the 4-D strategy: its prediction is simulate's iteration_s of its setting (the
    model path resolved against the rows file), and error = predicted / measured - 1."""
    from sim.api import simulate

    path = _fixture(tmp_path)
    (row,) = load_rows(path)
    (result,) = run_rows([row])
    config = {**row["setting"], "model": str(tmp_path / "models" / "tiny.yaml")}
    assert result["status"] == "run" and result["published"] == "50 mfu_pct"
    assert result["predicted"] == simulate(config).iteration_s
    assert math.isclose(result["error"], result["predicted"] / result["measured"] - 1, rel_tol=1e-12)
    assert summarize([result])["rows"] == 1 and summarize([result])["missing"] == 0
    assert main(["validate", "--rows", str(path)]) == 0
    assert "# 1 rows run, 0 missing" in capsys.readouterr().out

    seen = []
    measured = result["measured"]
    monkeypatch.setattr(validate, "_iteration_s", lambda config: seen.append(config) or 2 * measured)
    (result,) = run_rows(load_rows(path))
    assert math.isclose(result["error"], 1.0, rel_tol=1e-12) and seen[0]["tp"] == 2


def test_other_refusals_are_errors(tmp_path, monkeypatch, capsys):
    def refuses(config):
        raise UserError("batch", "batch=8 is not a multiple of something", "a multiple")

    monkeypatch.setattr(validate, "_iteration_s", refuses)
    assert main(["validate", "--rows", str(_fixture(tmp_path))]) == 2
    assert capsys.readouterr().err == "error: batch: batch=8 is not a multiple of something; a multiple\n"


@pytest.mark.parametrize("old, new", [
    ("dp: 2,", "dp: 2, typo: 1,"),                                  # unknown setting key
    ("dp: 2,", "dp: 1,"),                                           # tp*cp*pp*dp != procs
    ("batch: 8", "batch: 7"),                                       # batch not a multiple of dp
    ("flops: palm", "flops: narayanan2021"),                        # an MFU is not counted that way
    ("unit: mfu_pct, flops: palm", "unit: tflops_per_gpu"),         # a rate without its count
    ("unit: mfu_pct, flops: palm", "unit: iteration_s, flops: palm"),
    ("unit: mfu_pct", "unit: samples/s"),
    ("models/tiny.yaml", "models/absent.yaml"),
    ("seq_len: 64, ", ""),
])
def test_malformed_training_rows(tmp_path, capsys, old, new):
    assert old in FIXTURE
    assert main(["validate", "--rows", str(_fixture(tmp_path, FIXTURE.replace(old, new)))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: rows[tiny]: ") and err.count("\n") == 1


def test_mfu_needs_a_device_peak(tmp_path, capsys):
    path = _fixture(tmp_path, FIXTURE.replace('"roofline:h100"', "none"))
    with pytest.raises(UserError, match="compute: roofline:DEVICE"):
        published_iteration_s(load_rows(path)[0])
