"""The repository stands alone: no tracked file cites a document that is not in it, and docs/cli.md names
every command, every run-config key and every summary field the code has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from sim.cli import COMMANDS
from sim.config import RunConfig
from sim.results import LAYER_FIELDS, SUMMARY_FIELDS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# spelled out at run time, so that this file does not cite them itself
MISSING = [name.upper() + ".md" for name in ("contract", "paper", "design")] + ["/".join(("..", "shared"))]


def _tracked_files() -> list[Path]:
    """The files git tracks (untracked scratch files do not ship); every file under ROOT outside hidden
    folders when this is not a git checkout (an unpacked source archive)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob("*") if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_cites_a_document_outside_the_repository():
    files = [p for p in _tracked_files() if p.is_file()]
    assert len(files) > 50 and ROOT / "README.md" in files
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in files for name in MISSING
                 if name.encode() in p.read_bytes()]
    assert offenders == []


@pytest.mark.parametrize("page", ["cli.md", "paper-model.md", "distributed.md"])
def test_docs_links_resolve(page):
    text = (DOCS / page).read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", text):  # relative links only (no http:, no #anchor)
        assert (DOCS / target).exists(), f"{page} links to missing {target}"


def test_cli_page_names_every_command_key_and_field():
    text = (DOCS / "cli.md").read_text()
    for command in COMMANDS:
        assert f"### `dnnsim {command}" in text, command
    for key in RunConfig.model_fields:
        assert f"`{key}`" in text, key
    for name in [*SUMMARY_FIELDS, *LAYER_FIELDS]:  # as a whole word: comm_s is not batch_comm_s
        assert re.search(rf"(?<![\w]){name}(?![\w])", text), name


def test_readme_points_at_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert "docs/cli.md" in readme and "docs/paper-model.md" in readme
