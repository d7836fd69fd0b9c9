"""dnnsim plot and sim.plots: every kind renders from a real sweep CSV (PNG, SVG, PDF), the numbers drawn are
the CSV's (breakdown parts, best grid and its speedup, ideal line, heat-map cells), only ok rows count,
and a missing column or a bad output name is a one-line error with exit status 2 that leaves files alone.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.plots import (
    breakdown_figure,
    breakdown_table,
    grid_figure,
    grid_table,
    scaling_figure,
    timeline_figure,
)
from sim.plots.scaling import detect_mode
from sim.sweep import run_sweep

# A small real sweep (analytic network, AlexNet at B = 64): P = 4 and 8, pure batch and every integrated grid,
# plus one point whose grid does not factor P (an error row that must not be plotted).
SWEEP = {
    "base": {"model": "alexnet", "batch": 64, "compute": "paper-knl", "network": "analytic",
             "topology": "ideal:latency=2us,bandwidth=6GiB/s", "grid": "all"},
    "vary": {"procs": [4, 8], "strategy": ["batch", "integrated"]},
}
MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<?xml"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "results.csv"
    run_sweep(SWEEP, out, workers=0)
    run_sweep([{"model": "alexnet", "batch": 64, "procs": 8, "strategy": "integrated", "grid": "3x3"}], out,
              workers=0, resume=True)
    return out


@pytest.fixture(scope="module")
def frame(results):
    data = pd.read_csv(results)
    return data[data["status"] == "ok"].reset_index(drop=True)


def test_sweep_has_ok_rows_and_one_error(results, frame):
    data = pd.read_csv(results)
    assert len(frame) == (1 + 3) + (1 + 4)  # batch 1xP plus every grid of 4 (3) and of 8 (4)
    assert (data["status"] == "error").sum() == 1


@pytest.mark.parametrize("kind", ["scaling", "breakdown", "grid"])
@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_every_kind_renders_each_format(results, frame, tmp_path, capsys, kind, ext):
    out = tmp_path / f"plot{ext}"
    assert main(["plot", str(results), "--kind", kind, "-o", str(out), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {"kind": kind, "out": str(out), "rows": len(frame)}  # ok rows only
    data = out.read_bytes()
    assert len(data) > 1000 and data.startswith(MAGIC[ext])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_breakdown_parts_are_the_csv_columns_per_epoch(frame):
    table = breakdown_table(frame, "epoch_s")
    scale = frame["epoch_s"] / frame["iteration_s"]  # N / B
    np.testing.assert_allclose(scale, 1.2e6 / 64)
    np.testing.assert_allclose(table["computation"], frame["compute_s"] * scale)
    np.testing.assert_allclose(table["model/domain communication"],
                               (frame["model_comm_s"] + frame["domain_comm_s"] + frame["redistribute_s"]) * scale)
    np.testing.assert_allclose(table["batch communication"], frame["batch_comm_s"] * scale)
    # without overlap the three parts add up to the iteration
    np.testing.assert_allclose(table[["computation", "model/domain communication", "batch communication"]].sum(axis=1),
                               frame["epoch_s"], rtol=1e-9)


def test_breakdown_marks_best_grid_and_speedup_over_pure_batch(frame):
    fig = breakdown_figure(frame, y="epoch_s")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2  # one panel per P
    for ax, procs in zip(axes, (4, 8), strict=True):
        rows = frame[frame["procs"] == procs]
        best = rows.loc[rows["iteration_s"].idxmin()]
        batch = rows.loc[rows["pr"] == 1, "iteration_s"].min()
        texts = [t.get_text() for t in ax.texts if t.get_text().startswith("best")]
        label = f"{int(best['pr'])}x{int(best['pc'])}"
        want = f"best {label} (pure batch)" if best["pr"] == 1 else f"best {label}\n{batch / best['iteration_s']:.2f}x vs 1x{procs}"
        assert texts == [want]
        assert f"procs={procs}" in ax.get_title()
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"{pr}x{procs // pr}" for pr in range(1, procs + 1)
                                                                if procs % pr == 0]


def test_scaling_ideal_line_and_best_per_p(frame):
    fig = scaling_figure(frame, mode="auto")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"batch", "integrated", "ideal (t·P0/P)"}  # B fixed: strong scaling detected
    best = frame.groupby("procs")["iteration_s"].min()
    t0 = best[4]
    np.testing.assert_allclose(lines["ideal (t·P0/P)"].get_ydata(), [t0, t0 * 4 / 8])
    integrated = frame[frame["strategy"] == "integrated"].groupby("procs")["iteration_s"].min()
    np.testing.assert_allclose(lines["integrated"].get_ydata(), integrated.to_numpy())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "processes P" and ax.get_ylabel() == "iteration time (s)"


def test_detect_mode():
    strong = pd.DataFrame({"batch": [64, 64], "procs": [4, 8]})
    weak = pd.DataFrame({"batch": [512, 2048], "procs": [128, 512]})
    other = pd.DataFrame({"batch": [64, 256], "procs": [4, 8]})
    assert [detect_mode(f, "procs") for f in (strong, weak, other)] == ["strong", "weak", "none"]
    weak_fig = scaling_figure(weak.assign(iteration_s=[1.0, 1.5], strategy="batch"))
    flat = [line for line in weak_fig.axes[0].get_lines() if line.get_label() == "ideal (flat)"]
    np.testing.assert_allclose(flat[0].get_ydata(), [1.0, 1.0])


def test_grid_table_is_the_min_per_grid_and_column(frame):
    table = grid_table(frame, "procs", "iteration_s")
    labels = frame["pr"].astype(int).astype(str) + "x" + frame["pc"].astype(int).astype(str)
    want = frame.assign(grid=labels).groupby(["grid", "procs"])["iteration_s"].min()
    for (grid, procs), value in want.items():
        assert table.loc[grid, procs] == value
    assert list(table.index) == ["1x4", "2x2", "4x1", "1x8", "2x4", "4x2", "8x1"]  # by P, then Pr
    fig = grid_figure(frame, x="procs")
    assert fig.axes[0].get_ylabel() == "grid Pr x Pc"


def test_timeline_from_a_real_run():
    from sim.api import simulate

    result = simulate({"model": "alexnet", "batch": 64, "procs": 4, "strategy": "integrated", "grid": "2x2",
                       "compute": "paper-knl"})
    fig = timeline_figure(result)
    ax = fig.axes[0]
    lanes = result.records.groupby(["rank", "stream"]).ngroups
    assert len(ax.get_yticklabels()) == lanes
    spans = sum(len(c.get_paths()) for c in ax.collections)
    assert spans == len(result.records)


@pytest.mark.parametrize("kind, column", [("scaling", "procs"), ("breakdown", "batch_comm_s"), ("grid", "pr")])
def test_missing_column_is_named(results, tmp_path, capsys, kind, column):
    broken = tmp_path / "results.csv"
    pd.read_csv(results).drop(columns=[column]).to_csv(broken, index=False)
    out = tmp_path / "plot.png"
    out.write_bytes(b"old")
    assert main(["plot", str(broken), "--kind", kind, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {column}: missing from results.csv; ") and err.count("\n") == 1
    assert out.read_bytes() == b"old"  # untouched


def test_errors_exit_2(results, tmp_path, capsys):
    cases = [
        (["plot", str(results), "--kind", "scaling", "-o", str(tmp_path / "x.jpg")], "error: output: "),
        (["plot", str(tmp_path / "none.csv"), "--kind", "grid", "-o", str(tmp_path / "x.png")], "error: results: "),
        (["plot", str(results), "--kind", "scaling", "--hue", "nope", "-o", str(tmp_path / "x.png")],
         "error: nope: missing from results.csv"),
        (["plot", str(results), "--kind", "breakdown", "--y", "comm_s", "-o", str(tmp_path / "x.png")], "error: y: "),
        (["plot", str(results), "--kind", "grid", "-o", str(tmp_path / "missing" / "x.png")], "error: output: "),
    ]
    for argv, start in cases:
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.startswith(start), argv
    only_errors = tmp_path / "errors.csv"
    data = pd.read_csv(results)
    data[data["status"] == "error"].to_csv(only_errors, index=False)
    assert main(["plot", str(only_errors), "--kind", "grid", "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.startswith("error: status: no ok rows in errors.csv")


def test_facet_and_title_options(results, tmp_path, capsys):
    frame = pd.read_csv(results)
    fig = breakdown_figure(frame[frame["status"] == "ok"], y="iteration_s", facet=["strategy", "procs"],
                           title="my title")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["strategy=batch, procs=4", "strategy=batch, procs=8",
                      "strategy=integrated, procs=4", "strategy=integrated, procs=8"]
    assert fig._suptitle.get_text() == "my title"
    out = tmp_path / "b.png"
    assert main(["plot", str(results), "--kind", "breakdown", "--facet", "strategy", "-o", str(out)]) == 0
    assert main(["plot", str(results), "--kind", "breakdown", "--facet", "nope", "-o", str(out)]) == 2
    assert "error: nope: missing from results.csv" in capsys.readouterr().err


def test_grid_heat_map_has_one_panel_per_process_count(frame):
    fig = grid_figure(frame, x="procs")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("P = ")]
    assert [ax.get_title() for ax in panels] == ["P = 4", "P = 8"]
    ticks = [[t.get_text() for t in ax.get_yticklabels()] for ax in panels]
    assert ticks == [["1x4", "2x2", "4x1"], ["1x8", "2x4", "4x2", "8x1"]]


def test_scaling_labels_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # three strategies whose best points at one P are 1-2 % apart: their grid labels would collide
    rows = [("batch", 8, 1, 8, 0.445), ("integrated", 8, 1, 8, 0.445), ("model", 8, 8, 1, 0.450),
            ("batch", 32, 1, 32, 0.197), ("integrated", 32, 2, 16, 0.193), ("model", 32, 32, 1, 0.195),
            ("batch", 128, 1, 128, 0.128), ("integrated", 128, 4, 32, 0.127), ("model", 128, 128, 1, 0.126)]
    frame = pd.DataFrame(rows, columns=["strategy", "procs", "pr", "pc", "iteration_s"]).assign(batch=2048)
    fig = scaling_figure(frame)
    FigureCanvasAgg(fig).draw()
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    assert sorted(t.get_text() for t in texts) == ["128x1", "1x128", "1x32", "1x8", "2x16", "32x1", "4x32",
                                                   "8x1"]
    boxes = [t.get_window_extent() for t in texts]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())


def test_long_column_labels_are_wrapped_not_cut():
    spec = "fattree:oversubscription=4,bandwidth=6GiB/s"
    frame = pd.DataFrame({"pr": [1, 2], "pc": [2, 1], "iteration_s": [1.0, 2.0], "topology": [spec, spec]})
    fig = grid_figure(frame, x="topology")
    (text,) = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "…" not in text and text.replace("\n", "") == spec and len(text.splitlines()) > 1


def test_breakdown_and_labels_of_transformer_layouts(tmp_path):
    """A sweep of 4d layouts: each bar and scaling marker is labelled with its layout (the dimensions above
    1), its parts are the CSV's (compute, TP + CP, DP, pipeline communication, bubble) and add up to the
    iteration under pure data parallelism (elsewhere the gradient reduction overlaps the last backward's TP
    collectives or the pipeline's drain, and the iteration is marked apart), and pure data parallelism is
    the reference of the speedup."""
    from sim.plots.breakdown import PARTS, PIPELINE_PARTS
    from sim.plots.common import grid_labels

    out = tmp_path / "llm.csv"
    base = {"model": "gpt3-125m", "batch": 16, "procs": 8, "network": "analytic", "compute": "roofline:h100",
            "precision": "bf16", "topology": "dgx-h100"}
    run_sweep({"base": base, "vary": {"tp": [1, 2], "pp": [1, 2]}}, out, workers=0)
    frame = pd.read_csv(out)
    assert (frame["status"] == "ok").all() and len(frame) == 4
    table = breakdown_table(frame, "iteration_s")
    flat = frame["pp"] == 1
    dp_only = flat & (frame["tp"] == 1)
    np.testing.assert_allclose(table.loc[dp_only, [p for p, _ in PARTS + PIPELINE_PARTS]].sum(axis=1),
                               frame.loc[dp_only, "iteration_s"], rtol=1e-9)
    np.testing.assert_allclose(table["model/domain communication"], frame["tp_comm_s"] + frame["cp_comm_s"])
    np.testing.assert_allclose(table["batch communication"], frame["dp_comm_s"])
    np.testing.assert_allclose(table["pipeline communication"], frame["pp_comm_s"])
    np.testing.assert_allclose(table["pipeline bubble"], frame["bubble_s"])
    assert (table.loc[~flat, "pipeline bubble"] > 0).all()
    assert sorted(grid_labels(frame)) == ["DP8", "PP2·DP4", "TP2·DP4", "TP2·PP2·DP2"]
    ax = breakdown_figure(frame, y="iteration_s").axes[0]
    best = frame.loc[frame["iteration_s"].idxmin()]
    pure = frame.loc[(frame["tp"] == 1) & (frame["pp"] == 1), "iteration_s"].iloc[0]
    want = (f"best {grid_labels(frame)[best.name]}" +
            (" (pure batch)" if best["iteration_s"] == pure else f"\n{pure / best['iteration_s']:.2f}x vs DP8"))
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("best")] == [want]
    assert ax.get_xlabel() == "layout"
    # the heat map groups the layouts by procs (all 8 here: one panel), not by their Pr x Pc
    heat = grid_figure(frame)
    panels = [a for a in heat.axes if a.get_visible() and a.get_ylabel() == "layout"]
    assert len(panels) == 1
    assert sorted(t.get_text() for t in panels[0].get_yticklabels()) == sorted(grid_labels(frame))
    # a CNN sweep keeps its Pr x Pc labels and three parts
    assert list(grid_labels(pd.DataFrame({"pr": [2], "pc": [4], "strategy": ["integrated"], "tp": [float("nan")],
                                          "cp": [float("nan")], "pp": [float("nan")], "dp": [float("nan")]}))) == ["2x4"]
