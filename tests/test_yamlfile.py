"""The shared YAML reader: every way a user's file can be wrong is one UserError naming the field."""

from __future__ import annotations

import pytest

from sim.cli import main
from sim.errors import UserError
from sim.yamlfile import read_yaml_mapping


def test_reads_a_mapping(tmp_path):
    (tmp_path / "a.yaml").write_text("batch: 512\nprocs: 8\n")
    assert read_yaml_mapping(tmp_path / "a.yaml", "config", "x") == {"batch": 512, "procs": 8}
    (tmp_path / "explicit.yaml").write_text("{}  # every default, asked for in so many words\n")
    assert read_yaml_mapping(tmp_path / "explicit.yaml", "config", "x") == {}


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n# a document of comments\n"])
def test_an_empty_or_comment_only_file_is_refused(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match="is empty") as info:
        read_yaml_mapping(path, "config", "a run config")
    assert info.value.field == "config" and str(path) in info.value.problem


@pytest.mark.parametrize("text, problem", [
    ("batch: [1, 2\n", "malformed YAML"),
    ("- 1\n- 2\n", "holds a list, not a mapping"),
])
def test_bad_files(tmp_path, text, problem):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UserError, match=problem) as info:
        read_yaml_mapping(tmp_path / "bad.yaml", "sweep", "a sweep file")
    assert info.value.field == "sweep" and info.value.allowed == "a sweep file"


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_yaml_mapping(tmp_path / "nope.yaml", "model", "a model file")


@pytest.mark.parametrize("argv, field", [
    (["run", "{path}"], "config"),
    (["sweep", "{path}", "--out", "{out}"], "sweep"),
    (["show-model", "{path}"], "model"),
    (["show-topology", "{path}"], "topology"),
])
def test_every_yaml_input_of_the_cli_reports_malformed_yaml_the_same_way(tmp_path, capsys, argv, field):
    path = tmp_path / "bad.yaml"
    path.write_text("key: [unclosed\n")
    args = [a.format(path=path, out=tmp_path / "r.csv") for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}: malformed YAML") and err.count("\n") == 1
    assert not (tmp_path / "r.csv").exists()
