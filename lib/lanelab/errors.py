"""Errors a user can act on. Each message says what went wrong and what to do next, and never holds a secret."""

from __future__ import annotations

from lanelab import redact


class UserError(Exception):
    """Something the user can fix. ``str(err)`` is already redacted."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint if hint is not None else self.hint
        full = message if not self.hint else f"{message} {self.hint}"
        super().__init__(redact.redact_text(full))


class BudgetExceeded(UserError):
    """A live run would spend, or has spent, more than its budget allows."""
