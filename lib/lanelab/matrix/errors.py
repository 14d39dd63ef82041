"""The errors of the matrix stage: a run that cannot start as asked (no server, no budget in live mode, a foreign
host, an unknown factor, a simulator that will not mint a token), and an option of a plan or run of the wrong name,
type or range. Both are user errors (:class:`lanelab.errors.UserError`): the CLI prints the message and a notebook
shows it, never a traceback.
"""

from __future__ import annotations

from lanelab.errors import InputError, StateError

__all__ = ["InvalidOption", "RunnerError"]


class RunnerError(StateError):
    """A matrix run cannot start as asked."""


class InvalidOption(InputError, TypeError):
    """An option of a plan or run that does not exist, or a value of the wrong type or range (``concurrency="4"``,
    ``budget=-3``, ``settings="sim"``); a ``TypeError`` as well, as Python's own for a wrong keyword."""
