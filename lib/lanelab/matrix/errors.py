"""The errors of the matrix stage: a run that cannot start as asked (no server, no budget in live mode, a foreign
host, an unknown factor, a simulator that will not mint a token), and an option of a plan or run of the wrong name,
type or range. Both are user errors (:class:`lanelab.errors.UserError`): the CLI prints the message and a notebook
shows it, never a traceback.
"""

from __future__ import annotations

from typing import Any

from lanelab.errors import InputError, StateError

__all__ = ["InvalidOption", "RunnerError", "found", "is_whole"]


class RunnerError(StateError):
    """A matrix run cannot start as asked."""


class InvalidOption(InputError, TypeError):
    """An option of a plan or run that does not exist, or a value of the wrong type or range (``concurrency="4"``,
    ``budget=-3``, ``settings="sim"``); a ``TypeError`` as well, as Python's own for a wrong keyword."""


def is_whole(value: Any, least: int | None = None) -> bool:
    """Whether ``value`` is a whole number (an int, not a bool), of at least ``least`` when given."""
    return isinstance(value, int) and not isinstance(value, bool) and (least is None or value >= least)


def found(value: Any) -> str:
    """How an :class:`InvalidOption` message shows what it was given: a whole number as itself, anything else by its
    type's name (never its value, which might be a secret put in the wrong place)."""
    return str(value) if is_whole(value) else type(value).__name__
