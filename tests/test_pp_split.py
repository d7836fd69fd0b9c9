"""``pp_split``: the embedding and the output layer counted as pipeline blocks, as Megatron-LM's
``account_for_embedding_in_pipeline_split`` / ``account_for_loss_in_pipeline_split`` count them.

Megatron-LM's rule (``get_num_layers_to_build``, megatron/core/transformer/transformer_block.py, commit
d98e8a6): with L blocks and ``e`` (embedding) + ``l`` (loss) extra slots dividing evenly over pp * v chunks,
every chunk builds (L + e + l) / (pp * v) blocks, one fewer on the first chunk of the first stage when the
embedding is counted and one fewer on the last chunk of the last stage when the loss is. Llama 3 405B
(Llama Team 2024, Sec. 3.3.2): 126 blocks, the first chunk only the embedding and the last only the output
and loss, so 128 chunks of one slot = PP 16 x V 8.
"""

from __future__ import annotations

import pytest

from sim.api import simulate
from sim.cli import main
from sim.llm.memory import layer_params_per_rank, stage_params_per_rank
from sim.llm.parallel import Parallel, chunk_blocks
from workloads.zoo import TRANSFORMERS


def _par(pp: int, v: int, split: str) -> Parallel:
    return Parallel(pp=pp, schedule="interleaved" if v > 1 else "1f1b", virtual_stages=v, pp_split=split)


def _megatron_sizes(layers: int, pp: int, v: int, split: str) -> list[int]:
    """Blocks per global chunk by Megatron-LM's rule (module docstring), for an even split."""
    lead, tail = int("embedding" in split), int("loss" in split)
    per, rest = divmod(layers + lead + tail, pp * v)
    assert rest == 0
    sizes = [per] * (pp * v)
    sizes[0] -= lead
    sizes[-1] -= tail
    return sizes


@pytest.mark.parametrize("layers,pp,v,split", [(126, 16, 8, "embedding+loss"), (30, 4, 2, "embedding+loss"),
                                               (17, 2, 3, "embedding"), (23, 4, 3, "loss"),
                                               (62, 16, 2, "embedding+loss"), (12, 4, 1, "blocks")])
def test_even_splits_build_what_megatron_builds(layers, pp, v, split):
    ranges = chunk_blocks(layers, _par(pp, v, split))
    assert [len(r) for r in ranges] == _megatron_sizes(layers, pp, v, split)
    # consecutive, every block exactly once
    assert [i for r in ranges for i in r] == list(range(layers))


def test_llama3_405b_first_chunk_is_the_embedding_alone():
    ranges = chunk_blocks(126, _par(16, 8, "embedding+loss"))
    assert len(ranges) == 128 and len(ranges[0]) == 0 and len(ranges[-1]) == 0
    assert all(len(r) == 1 for r in ranges[1:-1])
    # stage 0 holds global chunks 0, 16, ..., 112: 7 blocks; stage 15 chunks 15, 31, ..., 127: 7 blocks
    assert sum(len(ranges[j * 16]) for j in range(8)) == 7
    assert sum(len(ranges[j * 16 + 15]) for j in range(8)) == 7


@pytest.mark.parametrize("layers,chunks", [(12, 5), (126, 16), (7, 7), (40, 12)])
def test_blocks_is_the_split_as_before(layers, chunks):
    """The default cuts L blocks into consecutive runs, the first L mod chunks one block longer."""
    base, extra = divmod(layers, chunks)
    ranges = chunk_blocks(layers, Parallel(pp=chunks))
    assert [len(r) for r in ranges] == [base + (c < extra) for c in range(chunks)]


def test_uneven_split_gives_the_remainder_to_the_first_slots():
    """12 blocks + 2 slots over 4 stages: slots 4, 4, 3, 3, so blocks 3 (embedding first), 4, 3, 2 (loss last)."""
    assert [len(r) for r in chunk_blocks(12, _par(4, 1, "embedding+loss"))] == [3, 4, 3, 2]


def test_stage_parameters_follow_the_split():
    """gpt3-125m, pp 4: blocks 3, 3, 3, 3 by default, 3, 4, 3, 2 with embedding+loss (previous test); stage 1
    holds one block's parameters more, stage 3 one fewer, stages 0 and 2 the same."""
    cfg = TRANSFORMERS["gpt3-125m"]
    one = layer_params_per_rank(cfg, 1)
    plain, split = Parallel(pp=4), _par(4, 1, "embedding+loss")
    diff = [stage_params_per_rank(cfg, split, s) - stage_params_per_rank(cfg, plain, s) for s in range(4)]
    assert diff == pytest.approx([0.0, one, 0.0, -one], abs=1e-6)


def test_a_run_reports_the_split_and_its_chunks():
    """gpt3-125m (12 blocks) on pp 2 x v 7 = 14 chunks: only with embedding and loss counted (14 slots);
    the first chunk then holds the embedding alone and the last the final norm and the output layer."""
    res = simulate({"model": "gpt3-125m", "procs": 2, "batch": 4, "pp": 2, "schedule": "interleaved",
                    "virtual_stages": 7, "pp_split": "embedding+loss", "compute": "roofline:a100",
                    "precision": "bf16", "topology": "ideal:latency=2us,bandwidth=10GB/s"})
    assert res.summary.iloc[0]["pp_split"] == "embedding+loss"
    chunks = res.layers[res.layers["kind"] == "chunk"]
    assert list(chunks["blocks"]) == [0] + [1] * 12 + [0]
    first = res.layers[(res.layers["kind"] != "chunk") & (res.layers["chunk"] == 0)]
    assert list(first["kind"]) == ["embedding"]


@pytest.mark.parametrize("args,field", [
    (["--pp", "2", "--schedule", "interleaved", "--virtual-stages", "7"], "virtual_stages"),  # 14 > 12 blocks
    (["--pp", "2", "--schedule", "interleaved", "--virtual-stages", "8", "--pp-split", "embedding+loss"],
     "virtual_stages"),  # 16 chunks > 12 + 2
    (["--pp", "2", "--pp-split", "head"], "pp_split"),
])
def test_bad_splits_are_one_line_errors(args, field, capsys):
    code = main(["run", "--model", "gpt3-125m", "--procs", "2", "--batch", "4", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {field}:") and err.count("\n") == 1, err


def test_pp_split_is_refused_without_a_4d_layout(capsys):
    code = main(["run", "--model", "alexnet", "--procs", "4", "--pp-split", "embedding"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: pp_split:"), err
