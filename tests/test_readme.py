"""The README's two commands stay true: the demo command runs and writes what the README says, and CI
runs the README's test command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_install_demo_and_install_test_commands():
    demo, tests = _bash_blocks()[:2]
    assert "pip install ." in demo and "dnnsim run" in demo
    assert "pip install '.[dev]'" in tests and "python -m pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet '.[dev]'" in ci
    assert re.search(r"^python -m pytest\b", ci, flags=re.M)
    # and, after the tests, the README's demo command (the last step of its first block) in a scratch folder
    assert ci.index("python -m pytest") < ci.index('eval "$demo"')
    assert 'findall(r"```bash\\n(.*?)```"' in ci and 'split("&&")[-1]' in ci
    # with the CPU build of torch so that dnnsim profile's tests run
    assert "pip install --quiet 'torch==2.13.0'" in ci


def test_readme_demo_command_writes_its_table_csv_and_plot(tmp_path, capsys, monkeypatch):
    demo = _bash_blocks()[0].strip().split("&&")[-1].strip()
    argv = shlex.split(demo)
    assert argv[0] == "dnnsim"
    monkeypatch.chdir(tmp_path)
    assert main(argv[1:]) == 0
    printed = capsys.readouterr().out
    assert "iteration_s" in printed and "conv1" in printed  # summary and per-layer tables
    out = tmp_path / argv[argv.index("--out") + 1]
    assert {p.name for p in out.iterdir()} == {"summary.csv", "layers.csv", "trace.json", "config.yaml",
                                              "timeline.png", "critical_path.csv"}
    summary = pd.read_csv(out / "summary.csv")
    # epoch_s = iteration_s * N / B (the run summary's definition), N = 1.2M for the paper's AlexNet
    row = summary.iloc[0]
    assert row["epoch_s"] == __import__("pytest").approx(row["iteration_s"] * 1_200_000 / row["batch"], rel=1e-12)
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
