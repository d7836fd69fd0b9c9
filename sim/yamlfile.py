"""Read a user's YAML file that must hold a mapping, with every problem as one :class:`UserError`.

Run configs, sweep files, model files, topology files and device specs all come through here, so a
missing file, malformed YAML (with its line), a file with no keys (empty, or only comments) or a top level
that is not a mapping reads the same way everywhere: ``error: <field>: <problem>; <allowed>``. An empty
file is refused rather than read as ``{}``: a run config of no keys would silently run every default, and
an empty sweep file one default point, which is never what a user who named a file meant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import UserError


def read_yaml_mapping(path: str | Path, field: str, allowed: str) -> dict[str, Any]:
    """The mapping at the top of the YAML file ``path``.

    Parameters
    ----------
    path : str or Path
        The file to read.
    field : str
        The field named in errors (``"config"``, ``"sweep"``, ``"model"``, ``"topology"``, ``"device"``).
    allowed : str
        What the file should hold, for the error message (e.g. ``"a YAML mapping of config keys"``).

    Raises
    ------
    UserError
        If the file does not exist or cannot be read, is not valid YAML, holds nothing (empty, blank or
        only comments), or does not hold a mapping.
    """
    import yaml  # only when a file is read: not on the start-up path of commands that read none

    p = Path(path)
    if not p.is_file():
        raise UserError(field, f"file {str(p)!r} does not exist", allowed)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise UserError(field, f"malformed YAML in {str(p)!r}{where}", allowed) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(field, f"cannot read {str(p)!r} ({type(exc).__name__})", allowed) from None
    if data is None:
        raise UserError(field, f"{str(p)!r} is empty (no keys, only blank lines or comments)", allowed)
    if not isinstance(data, dict):
        raise UserError(field, f"{str(p)!r} holds a {type(data).__name__}, not a mapping", allowed)
    return data
