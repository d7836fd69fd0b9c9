"""RunConfig: defaults, derived grids and modes, YAML + flags + --set layering, one-line errors."""

from __future__ import annotations

import pytest

from sim.config import RunConfig, load_config, make_config, parse_set, validate_against_model
from sim.errors import UserError
from workloads.layer import Layer, Model


def test_defaults_and_resolved():
    cfg = make_config({})
    assert (cfg.model, cfg.batch, cfg.procs, cfg.strategy) == ("alexnet", 256, 16, "batch")
    assert cfg.grid_dims() == (1, 16)
    res = cfg.resolved()
    assert res["grid"] == "1x16" and res["conv"] == "batch" and res["fc"] == "batch"
    assert list(res) == list(RunConfig.model_fields)


@pytest.mark.parametrize("strategy, grid, modes", [
    ("batch", (1, 64), ("batch", "batch")),
    ("model", (64, 1), ("model", "model")),
    ("domain", (64, 1), ("domain", "batch")),
    ("integrated", (8, 8), ("model", "model")),
])
def test_strategy_defaults(strategy, grid, modes):
    cfg = make_config({"procs": 64, "strategy": strategy})
    assert cfg.grid_dims() == grid
    assert cfg.layer_modes() == modes


def test_integrated_default_grid_is_squarest_with_pr_le_pc():
    assert make_config({"procs": 512, "strategy": "integrated"}).grid_dims() == (16, 32)


def test_layering_yaml_flags_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("batch: 512\nprocs: 8\nstrategy: integrated\ngrid: 2x4\n")
    cfg = load_config(str(path), {"procs": 16, "grid": "4x4", "batch": None}, ["overlap=true", "dtype-bytes=2"])
    assert (cfg.batch, cfg.procs, cfg.grid, cfg.overlap, cfg.dtype_bytes) == (512, 16, "4x4", True, 2)


def test_parse_set_values():
    assert parse_set(["batch=512", "overlap=false", "topology=star:bandwidth=1GB/s"]) == {
        "batch": 512, "overlap": False, "topology": "star:bandwidth=1GB/s"}


@pytest.mark.parametrize("data, field", [
    ({"strategy": "pipeline"}, "strategy"),
    ({"batch": 0}, "batch"),
    ({"batch": "many"}, "batch"),
    ({"bogus": 1}, "bogus"),
    ({"grid": "3x5"}, "grid"),
    ({"grid": "4"}, "grid"),
    ({"strategy": "batch", "grid": "2x8"}, "grid"),
    ({"strategy": "model", "grid": "2x8"}, "grid"),
    ({"strategy": "model", "conv": "batch"}, "conv"),
    ({"strategy": "batch", "fc": "model"}, "fc"),
    ({"strategy": "domain", "conv": "model"}, "conv"),
    ({"conv": "pipeline", "strategy": "integrated"}, "conv"),
    ({"fc": "domain", "strategy": "integrated"}, "fc"),
    ({"network": "magic"}, "network"),
    ({"placement": "diagonal"}, "placement"),
    ({"model": "  "}, "model"),
])
def test_errors_are_one_line_user_errors(data, field):
    with pytest.raises(UserError) as info:
        make_config(data)
    assert info.value.field == field
    assert "\n" not in str(info.value)
    assert "pydantic" not in str(info.value).lower()


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch: [1, 2\n")
    with pytest.raises(UserError, match="malformed YAML"):
        load_config(str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="not a mapping"):
        load_config(str(listy))
    with pytest.raises(UserError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(UserError, match="key=value"):
        load_config(None, {}, ["batch"])


def _toy(conv: bool = True) -> Model:
    layers = []
    if conv:
        layers.append(Layer("c1", "conv", (3, 8, 8), (4, 8, 8), (3, 3), (1, 1), (1, 1), 1, 4 * 27 + 4))
        layers.append(Layer("flat", "flatten", (4, 8, 8), (256,)))
    layers.append(Layer("f1", "fc", (256,) if conv else (10,), (6,), params=(256 if conv else 10) * 6 + 6))
    return Model("toy", (3, 8, 8) if conv else (10,), tuple(layers), 100)


@pytest.mark.parametrize("data, field, text", [
    ({"batch": 8, "procs": 16}, "procs", "exceeds batch"),
    ({"batch": 12, "procs": 8, "uneven": "reject"}, "batch", "not a multiple of procs"),
    ({"batch": 2, "procs": 16, "strategy": "integrated", "grid": "4x4"}, "grid", "Pc=4 exceeds batch=2"),
    ({"batch": 6, "procs": 16, "strategy": "integrated", "grid": "4x4", "uneven": "reject"}, "batch",
     "not a multiple of Pc"),
    ({"batch": 16, "procs": 4, "strategy": "model", "uneven": "reject"}, "grid", "does not divide the 6 output rows"),
    ({"batch": 15, "procs": 3, "strategy": "domain", "uneven": "reject"}, "grid", "does not divide the 8 image rows"),
    ({"batch": 16, "procs": 8, "strategy": "model"}, "grid", "exceeds the 4 output rows"),
    ({"batch": 16, "procs": 16, "strategy": "domain", "fc": "model"}, "grid", "exceeds the 8 image rows"),
])
def test_model_checks(data, field, text):
    cfg = make_config(data)
    with pytest.raises(UserError, match=text) as info:
        validate_against_model(cfg, _toy())
    assert info.value.field == field


def test_conv_mode_needs_conv_layers():
    cfg = make_config({"strategy": "integrated", "grid": "2x2", "procs": 4, "batch": 8, "conv": "domain"})
    with pytest.raises(UserError, match="no convolution") as info:
        validate_against_model(cfg, _toy(conv=False))
    assert info.value.field == "conv"
    validate_against_model(cfg.model_copy(update={"conv": None}), _toy(conv=False))
    # a resolved config names the default conv mode explicitly: accepted
    validate_against_model(make_config(cfg.model_copy(update={"conv": None}).resolved()), _toy(conv=False))
    with pytest.raises(UserError, match="no convolution"):
        validate_against_model(make_config({"strategy": "domain", "procs": 2, "batch": 8}), _toy(conv=False))


def test_domain_lets_procs_exceed_batch():
    cfg = make_config({"batch": 2, "procs": 4, "strategy": "integrated", "grid": "4x1", "conv": "domain",
                       "fc": "model"})
    validate_against_model(cfg, _toy())


def test_example_run_configs_load():
    from pathlib import Path

    examples = sorted(Path(__file__).resolve().parent.parent.joinpath("examples").glob("*.yaml"))
    assert examples
    for path in examples:
        cfg = load_config(str(path))
        if cfg.is_4d():  # a transformer layout: its four dimensions multiply to procs
            par = cfg.parallel()
            assert par.tp * par.cp * par.pp * par.dp == cfg.procs, path
        else:
            assert cfg.resolved()["grid"], path


def test_a_sweep_file_given_as_a_run_config_says_so(tmp_path):
    from pathlib import Path

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: {model: alexnet}\nvary: {procs: [4, 8]}\n")
    with pytest.raises(UserError, match=r"is a sweep file \(keys base/vary\); run it with dnnsim sweep") as info:
        load_config(str(path))
    assert info.value.field == "config"
    sweeps = sorted(Path(__file__).resolve().parent.parent.joinpath("examples", "sweeps").glob("*.yaml"))
    assert sweeps
    for sweep in sweeps:  # every shipped sweep file is recognised, none read as a run config
        with pytest.raises(UserError, match="is a sweep file"):
            load_config(str(sweep))


def test_an_empty_run_config_is_refused(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("# batch: 512\n")
    with pytest.raises(UserError, match="is empty") as info:
        load_config(str(path))
    assert info.value.field == "config"
