"""The tutorial notebooks: committed without outputs, equal to what build_notebooks.py generates, each runs
top to bottom (nbclient, kernel python3) without an error, and the numbers each one prints equal the
paper's equations written out here (tests/paper_formulas.py) with the paper's KNL compute.

The KNL compute, written out (Gholami et al. 2018, Fig. 4; N = 1.2M): one AlexNet iteration at per-process
batch b takes ``T(b) = epoch(b) * b / N``. A model-parallel rank (Pr > 1) does 1/Pr of the convolutions'
and fully connected layers' forward FLOPs and all of the other layers' (act, lrn, pool, dropout) on its
B/Pc samples, so its compute is ``T(B/Pc) * (F_w / Pr + F_other) / F`` (F: AlexNet's forward FLOPs).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from paper_formulas import eq4, eq8_true, t_ag, weights

from workloads.zoo import get_model

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01-quickstart", "02-reproduce-the-paper", "03-topology-and-contention", "04-sweeps-at-scale"]

# Gholami et al. 2018, Fig. 4: AlexNet epoch seconds on one KNL by per-process batch
EPOCH_S = {1: 30742, 2: 17292, 4: 9608, 8: 5924, 16: 3922, 32: 2843, 64: 2322, 128: 2032, 256: 1777,
           512: 1827, 1024: 1922, 2048: 2434}
N = 1_200_000
ALEXNET = get_model("alexnet")
WS = weights(ALEXNET)
F_ALL = sum(layer.fwd_flops_per_sample for layer in ALEXNET.layers)
F_WEIGHT = sum(w.fwd_flops_per_sample for w in WS)
PRINTED = 1e-6  # the notebooks' tables print 6 decimals


def knl_compute_s(batch_per_column: int, pr: int) -> float:
    t = EPOCH_S[batch_per_column] * batch_per_column / N
    return t * (F_WEIGHT / pr + (F_ALL - F_WEIGHT)) / F_ALL if pr > 1 else t


def model_model_s(B: int, pr: int, pc: int) -> float:
    """Iteration of AlexNet on a Pr x Pc grid, every layer model x batch (Eq. 8, true ΔX) + KNL compute;
    pure batch (Pr = 1) is Eq. 4."""
    comm = eq4(ALEXNET, pc) if pr == 1 else eq8_true(WS, B, pr, pc)
    return knl_compute_s(B // pc, pr) + comm


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _printed(nb) -> list[str]:
    """Per code cell, what it printed and displayed (stream text and text/plain results), joined."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = [o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                 for o in cell.outputs]
        out.append("\n".join(parts))
    return out


def _number(text: str, pattern: str) -> float:
    found = re.search(pattern, text, flags=re.M)
    assert found, pattern
    return float(found.group(1))


def _row(text: str, *lead: str) -> list[str]:
    """The whitespace-split cells of the first table line (index dropped) starting with ``lead``."""
    for line in text.splitlines():
        cells = line.split()
        for start in (0, 1):  # with or without a leading integer index
            if cells[start:start + len(lead)] == list(lead):
                return cells[start + len(lead):]
    raise AssertionError(f"no row {lead} in\n{text}")


def check_quickstart(printed: list[str]) -> None:
    """B = 2048 on 8 x 16: the summary series of cell 3."""
    series = next(t for t in printed if "Name: seconds" in t)
    compute = knl_compute_s(2048 // 16, 8)
    batch_comm = sum(2 * t_ag(16, w.params / 8) for w in WS)  # ΔW all-reduce along a row, |W|/Pr each
    comm = eq8_true(WS, 2048, 8, 16)
    assert _number(series, r"^compute_s\s+(\S+)$") == pytest.approx(compute, abs=PRINTED)
    assert _number(series, r"^batch_comm_s\s+(\S+)$") == pytest.approx(batch_comm, abs=PRINTED)
    assert _number(series, r"^model_comm_s\s+(\S+)$") == pytest.approx(comm - batch_comm, abs=PRINTED)
    assert _number(series, r"^iteration_s\s+(\S+)$") == pytest.approx(compute + comm, abs=PRINTED)
    assert _number(series, r"^epoch_s\s+(\S+)$") == pytest.approx((compute + comm) * N / 2048, abs=PRINTED)


def check_reproduce(printed: list[str]) -> None:
    """Strong and weak scaling tables: pure batch epochs (Eq. 4 + compute), and the best grid at
    B = 2048, P = 512 found by enumerating every grid here."""
    strong, weak = (t for t in printed if "best grid" in t and "pure batch" in t and "NaN" not in t)
    B, P = 2048, 512
    grids = [(pr, P // pr) for pr in (1, 2, 4, 8, 16, 32, 64)]  # Pr <= 96 (conv1's filters)
    epochs = {g: model_model_s(B, *g) * N / B for g in grids}
    best = min(epochs, key=epochs.get)
    assert best == (8, 64)
    cells = _row(strong, "2048", "512")
    assert cells[0] == "8x64"
    assert float(cells[2]) == pytest.approx(epochs[best], abs=PRINTED)  # 23.42 s
    assert float(cells[3]) == pytest.approx(epochs[(1, 512)], abs=PRINTED)  # 63.21 s: 18.77 compute + 44.44 comm
    cells = _row(weak, "512", "128")
    assert float(cells[3]) == pytest.approx(model_model_s(512, 1, 128) * N / 512, abs=PRINTED)


def check_topology(printed: list[str]) -> None:
    """5 networks x the 6 grids of P = 32; on the ideal network pure batch (1 x 32) costs Eq. 4 + compute
    (no contention: each rank has its own link)."""
    report, pivot = next((t, t) for t in printed if "SweepReport" in t)
    assert "points=30," in report and "ok=30," in report
    header = next(line for line in pivot.splitlines() if line.startswith("topology"))
    columns = [c for c in header.split()[1:] if c != "\\"]
    ideal = columns.index("ideal:latency=2us,bandwidth=6GiB/s")
    cells = _row(pivot, "1", "32")
    assert float(cells[ideal]) == pytest.approx(model_model_s(256, 1, 32), abs=PRINTED)


def check_sweeps(printed: list[str]) -> None:
    """The quick sweep stops after 10 rows, resumes the other 14, and its best grid per (B, P) is
    timed as Eq. 4 / Eq. 8 + compute; the Dask run gives the same values."""
    text = "\n".join(printed)
    assert "24 points;" in text and "stopped: 10 rows written" in text
    assert "skipped=10, ok=14, failed=0" in text and "24 rows, 24 distinct points" in text
    assert "same values: True" in text
    best = next(t for t in printed if "speedup_vs_batch" in t)
    cells = _row(best, "512", "4")
    assert cells[:2] == ["1", "4"]
    assert float(cells[2]) == pytest.approx(model_model_s(512, 1, 4), abs=PRINTED)
    cells = _row(best, "256", "4")
    assert cells[:2] == ["2", "2"]
    assert float(cells[2]) == pytest.approx(model_model_s(256, 2, 2), abs=PRINTED)
    assert float(cells[3]) == pytest.approx(model_model_s(256, 1, 4) / model_model_s(256, 2, 2), abs=PRINTED)


CHECKS = {"01-quickstart": check_quickstart, "02-reproduce-the-paper": check_reproduce,
          "03-topology-and-contention": check_topology, "04-sweeps-at-scale": check_sweeps}


def test_notebooks_are_generated_and_have_no_outputs():
    builder = _builder()
    assert sorted(builder.NOTEBOOKS) == NAMES
    for name in NAMES:
        on_disk = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
        assert on_disk == json.loads(nbformat.writes(builder.build(name))), f"rebuild {name}"
        for cell in on_disk["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
        kinds = [c["cell_type"] for c in on_disk["cells"]]
        assert kinds[0] == "markdown" and kinds.count("markdown") >= 3  # prose between the code


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_prints_the_equations_numbers(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    CHECKS[name](_printed(nb))
