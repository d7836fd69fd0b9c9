"""sim.atomicfile: a file is written whole or left as it was, with the umask's permissions."""

from __future__ import annotations

import os

import pytest

from sim import atomicfile
from sim.atomicfile import write_text_atomically


def test_writes_and_replaces_whole(tmp_path):
    target = tmp_path / "out.yaml"
    write_text_atomically(target, "a: 1\n")
    write_text_atomically(target, "a: 2\n")
    assert target.read_text() == "a: 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.yaml"
    target.write_text("old\n")

    def fail(src, dst):
        raise KeyboardInterrupt  # an interrupt between writing and renaming

    monkeypatch.setattr(atomicfile.os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]
