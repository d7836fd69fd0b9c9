"""User-facing errors: one line naming the field, the bad value and what is allowed.

Every mistake a user can make in a flag, a spec, a YAML file or a Python call is raised as
:class:`UserError`; the CLI prints ``error: <field>: <problem>; <allowed>`` and exits with status 2.
Anything else that escapes is a bug in dnnsim and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in user input.

    Parameters
    ----------
    field : str
        The name of the flag, config key or spec key that is wrong (e.g. ``"grid"``, ``"topology.k"``).
    problem : str
        What is wrong, including the bad value (e.g. ``"'3x5' does not factor procs=16"``).
    allowed : str
        What would be accepted (e.g. ``"Pr x Pc with Pr*Pc == procs"``).

    Examples
    --------
    >>> str(UserError("bytes", "-1 is not positive", "a size > 0 such as 1MiB"))
    'bytes: -1 is not positive; a size > 0 such as 1MiB'
    """

    def __init__(self, field: str, problem: str, allowed: str) -> None:
        self.field = field
        self.problem = problem
        self.allowed = allowed
        # args are the constructor's, so that code re-raising ``type(e)(*e.args)`` (SimPy does, for an
        # error raised inside a simulated process) rebuilds the same error
        super().__init__(field, problem, allowed)

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}; {self.allowed}"

    def __reduce__(self):  # picklable across process pools and Dask workers
        return (type(self), (self.field, self.problem, self.allowed))
