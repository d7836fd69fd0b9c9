"""Write a file whole or not at all: through a fresh temporary name in the same folder and a rename.

An interrupted or failing write leaves the destination as it was (absent, or its old content), never
half-written. Unlike :mod:`tempfile` (files 0600, directories 0700), the temporary names are created with
modes 0o666/0o777, so the process umask applies and results stay readable by the group on a shared cluster.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def create_fresh(parent: Path, prefix: str, suffix: str, create: Callable[[Path], T]) -> tuple[Path, T]:
    """``create(path)`` on a new random name in ``parent``; ``create`` raises FileExistsError on a clash."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")  # not reachable in practice


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder, mode 0o666 & ~umask."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    tmp, fd = create_fresh(target.parent, f".{target.name}.", ".tmp", lambda name: os.open(name, flags, 0o666))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
