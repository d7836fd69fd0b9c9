"""How close the 4d screen (``sim.llm.screen``, what ``dnnsim best`` ranks layouts by) is to the
simulator, over enumerations of layouts on ``network: analytic`` (where the screen prices collectives as
the engine does, so every difference is the screen's model of the schedule).

Sets (llama2-7b at 4,096 tokens on 16 H100 of ``dgx-h100``, ``nccl`` collectives, bf16, unless said):

* ``pp1``: pp = 1, TP 1/2/4 × CP 1/2/4, ZeRO 0–2, each recomputation, ``--tp-overlap`` and ``--overlap``
  each on and off, each ``cp_comm`` (CP > 1), one or two sequences per micro-batch, batch 8 (1,296 layouts);
* ``zero3``: the same with ZeRO-3, TP 1/2/4 × CP 1/2, ``p2p`` and ``a2a``, batch 8 and 32 (372 layouts);
* ``zero3-pp2``: ZeRO-3 with pp = 2 (1F1B), batch 16 (216 layouts);
* ``sample``: a seeded random sample of 480 layouts over gpt3-125m on 8 and llama2-7b on 16 H100, TP 1/2 ×
  CP 1/2 × PP 1/2/4, ZeRO 0–3, 1F1B / GPipe / interleaved (v = 2), micro-batch 1/2, both overlaps,
  recomputation none/full (layouts the model refuses are skipped).

For each set: layouts compared, how many agree to 1e-9, within 1 % and 5 %, the largest difference and the
five worst layouts. Run: ``python bench/bench_screen.py [--only SET ...]`` (all four take about 25 minutes on
one core). No timing asserts; the figures are quoted in docs/transformers.md.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from screen_check import screen_vs_simulate  # noqa: E402  (the tests' helper: one config, screen and engine)

from sim.errors import UserError  # noqa: E402

BASE = dict(topology="dgx-h100", network="analytic", compute="roofline:h100", precision="bf16", collectives="nccl")
LLAMA = dict(model="llama2-7b", seq_len=4096, procs=16)


def _pp1() -> Iterator[dict]:
    for tp, cp, zero, rec, tpo, ov, cc, mb in itertools.product(
            (1, 2, 4), (1, 2, 4), (0, 1, 2), ("none", "selective", "full"), (False, True), (False, True),
            ("p2p", "allgather", "a2a"), (1, 2)):
        dp = 16 // (tp * cp)
        if 8 % (dp * mb) or (cc != "p2p" and cp == 1):
            continue
        yield dict(LLAMA, batch=8, tp=tp, cp=cp, dp=dp, pp=1, zero=zero, recompute=rec, tp_overlap=tpo, overlap=ov,
                   cp_comm=cc, microbatch=mb)


def _zero3(pp: int, batches: tuple[int, ...]) -> Iterator[dict]:
    for batch, tp, cp, rec, tpo, ov, cc, mb in itertools.product(
            batches, (1, 2, 4), (1, 2), ("none", "selective", "full"), (False, True), (False, True),
            ("p2p", "a2a"), (1, 2)):
        dp = 16 // (tp * cp * pp)
        if dp < 1 or batch % (dp * mb) or (cc != "p2p" and cp == 1):
            continue
        yield dict(LLAMA, batch=batch, tp=tp, cp=cp, dp=dp, pp=pp, zero=3, recompute=rec, tp_overlap=tpo,
                   overlap=ov, cp_comm=cc, microbatch=mb)


def _sample(n: int = 480, seed: int = 7) -> Iterator[dict]:
    rng = random.Random(seed)
    cases = []
    for (model, seq, procs), tp, cp, pp, zero, sched, mb, ov, tpo, rec in itertools.product(
            (("gpt3-125m", 2048, 8), ("llama2-7b", 4096, 16)), (1, 2), (1, 2), (1, 2, 4), (0, 1, 2, 3),
            ("1f1b", "gpipe", "interleaved"), (1, 2), (False, True), (False, True), ("none", "full")):
        if tp * cp * pp > procs or (sched == "interleaved" and pp == 1):
            continue
        dp = procs // (tp * cp * pp)
        cases.append(dict(model=model, seq_len=seq, procs=procs, tp=tp, cp=cp, pp=pp, dp=dp, zero=zero,
                          schedule=sched, microbatch=mb, overlap=ov, tp_overlap=tpo, recompute=rec,
                          batch=dp * mb * rng.choice((2, 4, 8)),
                          **({"virtual_stages": 2} if sched == "interleaved" else {})))
    rng.shuffle(cases)
    yield from cases[:n]


SETS = {"pp1": _pp1, "zero3": lambda: _zero3(1, (8, 32)), "zero3-pp2": lambda: _zero3(2, (16,)), "sample": _sample}


def run_set(name: str) -> None:
    diffs: list[tuple[float, dict]] = []
    skipped = 0
    for over in SETS[name]():
        try:
            got, want = screen_vs_simulate({**BASE, **over})
        except UserError:
            skipped += 1
            continue
        diffs.append((got / want - 1, over))
    mags = [abs(d) for d, _ in diffs]
    print(f"{name}: {len(diffs)} layouts ({skipped} refused by the model): {sum(m < 1e-9 for m in mags)} agree to "
          f"1e-9, {sum(m < 0.01 for m in mags)} within 1 %, {sum(m < 0.05 for m in mags)} within 5 %; largest "
          f"{max(mags):.2%}", flush=True)
    for d, over in sorted(diffs, key=lambda x: -abs(x[0]))[:5]:
        if abs(d) >= 1e-9:
            shown = {k: v for k, v in over.items() if k not in ("seq_len", "procs")}
            print(f"  screen {d:+.2%}  {shown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=tuple(SETS), help="run only these sets")
    for name in ap.parse_args().only or SETS:
        run_set(name)


if __name__ == "__main__":
    main()
