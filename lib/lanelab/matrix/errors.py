"""The error of the matrix stage: a run that cannot start as asked (no server, no budget in live mode, a foreign
host, an unknown factor, a simulator that will not mint a token). It is a :class:`lanelab.errors.StateError`, so the
CLI prints its message and a notebook shows it, never a traceback.
"""

from __future__ import annotations

from lanelab.errors import StateError

__all__ = ["RunnerError"]


class RunnerError(StateError):
    """A matrix run cannot start as asked."""
