"""Parquet support: one check that pyarrow (the optional ``parquet`` extra) is there, with the command that
installs it, for :meth:`sim.api.Result.to_parquet` and sweeps written as ``.parquet``."""

from __future__ import annotations

from sim.errors import UserError


def require_pyarrow() -> None:
    """Raise a one-line UserError when pyarrow cannot be imported."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("parquet", "pyarrow is not installed",
                        "pip install pyarrow, or pip install '.[parquet]' in a dnnsim checkout") from None
