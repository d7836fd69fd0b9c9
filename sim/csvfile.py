"""Read a user's CSV file (sweep results, measured profiles) with every problem as one :class:`UserError`.

The plots and the ``profile:`` compute model both read CSVs a user names; a missing file or one that is
not a readable CSV reads the same way in both: ``error: <field>: <problem>; <allowed>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.errors import UserError


def read_csv_file(path: str | Path, field: str, what: str, allowed: str, comment: str | None = None,
                  skipinitialspace: bool = False) -> Any:
    """The pandas frame of the CSV file ``path``.

    ``field`` is named in errors, ``what`` says what the file is (``"profile"``, ``"results"``) and
    ``allowed`` what it should be (``"a CSV written by dnnsim sweep"``); lines starting with ``comment``
    (when given) are skipped, and ``skipinitialspace`` drops spaces after each comma (hand-written files).
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise UserError(field, f"{what} file {str(p)!r} does not exist", allowed)
    try:
        return pd.read_csv(p, comment=comment, skipinitialspace=skipinitialspace)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(field, f"{what} {str(p)!r} is not a readable CSV ({' '.join(str(exc).split())})",
                        allowed) from None
