"""Live mode's gates: the responsible-use notice, the explicit opt-in, and the confirmation before anything is sent.

Live mode spends the user's own plan or extra usage, so nothing is sent to Anthropic's hosts until the user has read
what the kit is for (it diagnoses, it does not evade; DESIGN.md "Responsible use") and opted in with
``LANELAB_LIVE_OPT_IN=1``. Every entry point that can reach the live service calls :func:`require_live_opt_in`.

Every entry point that *spends* (a matrix, a bisect, notebook 02 and 04) then shows one :class:`Confirmation` (the
notice, the host, the credential masked, the cost in requests and worst-case tokens, the budget) and sends nothing
until the user says yes. This module holds that one rule:

- on a terminal, :func:`confirm_cli` asks ``Send N requests to HOST with 'LABEL' (sk-ant-oat01-…abcd)? [y/N]``;
  without a terminal it needs ``--yes`` (else :class:`NotConfirmed`, exit 2, nothing sent);
- in a notebook, a :class:`LiveGate` holds the state: confirmed by the ``CONFIRM_LIVE`` parameter (false by default)
  or by the button of :class:`lanelab.matrix.confirm.ConfirmWidget`; :meth:`LiveGate.require` raises
  :class:`NotConfirmed` (one line, no traceback) until then. Sim mode spends nothing and needs no confirmation.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from lanelab import redact
from lanelab.config import Settings
from lanelab.errors import LiveNotOptedIn, Refused

NOTICE = (
    "Responsible use: live mode sends requests with your own credential to Anthropic's API and spends your plan "
    "or your extra usage. Anthropic reserves subscription OAuth for its own apps and routes third-party traffic to "
    "extra usage. This kit diagnoses; it does not evade: it never disguises requests as Claude Code and never "
    "generates Claude Code's billing attestation. The remedies that exist: fix a malformed request, enable extra "
    "usage, use an API key, or use Anthropic's own clients."
)

OPT_IN_HOW = "To go ahead, set LANELAB_LIVE_OPT_IN=1 and run again (add --dry-run first to see every request)."

__all__ = ["NOTICE", "OPT_IN_HOW", "Confirmation", "LiveGate", "NotConfirmed", "confirm_cli", "env_flag",
           "require_live_opt_in"]

_YES = ("1", "yes", "true", "y", "on")


def env_flag(value: str | None) -> bool:
    """Whether an environment value means yes (``1``, ``yes``, ``true``, ``y``, ``on``; any case)."""
    return (value or "").strip().lower() in _YES


def require_live_opt_in(settings: Settings, action: str = "Live mode spends your own plan and is opt-in") -> None:
    """Return when ``settings`` is not live, or is live with the opt-in; else raise :class:`LiveNotOptedIn`.

    ``action`` is the start of the message (what was about to happen); the notice and how to opt in follow.
    """
    if settings.mode != "live" or settings.live_opt_in:
        return
    raise LiveNotOptedIn(f"{action}; nothing was sent. {NOTICE}", OPT_IN_HOW)


class NotConfirmed(Refused):
    """Live requests were not confirmed, so nothing was sent.

    In a notebook it renders as its one line (IPython's ``_render_traceback_``), not as a traceback.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"Not sent: {self}"]


@dataclass(frozen=True)
class Confirmation:
    """What a user confirms before live requests are sent: where, with which credential, at what cost.

    ``masked`` is the credential already masked (:func:`lanelab.redact.mask`); nothing here holds a secret.
    ``requests`` and ``tokens`` are the cost (inference requests; worst-case tokens: input estimate plus
    ``max_tokens`` of each). ``budget`` describes the cap (retries included), ``extra`` adds lines (e.g. what a
    bisect does).
    """

    base_url: str
    label: str
    masked: str
    requests: int
    tokens: int
    budget: str = ""
    what: str = "requests"
    extra: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        """The host the requests go to (``api.anthropic.com``)."""
        return urlsplit(self.base_url).hostname or self.base_url

    @property
    def cost(self) -> str:
        """``6 inference requests, at most ~7,118 tokens (worst case: input estimate + max_tokens)``."""
        return (f"{self.requests} inference request{'s' if self.requests != 1 else ''}, at most ~{self.tokens:,} "
                "tokens (worst case: input estimate + max_tokens)")

    @property
    def credential(self) -> str:
        """``'live-pkce' (sk-ant-oat01-…abcd)``."""
        return f"{self.label!r} ({self.masked})"

    def lines(self) -> list[str]:
        """The notice, then one line each for host, credential, cost, budget and any extra."""
        out = [NOTICE, f"host: {self.host} ({self.base_url})", f"credential: {self.credential}",
               f"cost: {self.cost}"]
        if self.budget:
            out.append(f"budget: {self.budget}")
        out += list(self.extra)
        return [redact.redact_text(line) for line in out]

    def question(self) -> str:
        """``Send 6 requests to api.anthropic.com with 'live-pkce' (sk-ant-oat01-…abcd)? [y/N] ``."""
        return redact.redact_text(f"Send {self.requests} {self.what} to {self.host} with {self.credential}? [y/N] ")

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines()[1:])
        return (f"<div style='border-left:4px solid #c60;padding-left:8px'><p>{html.escape(NOTICE)}</p>"
                f"<ul>{rows}</ul></div>")


def confirm_cli(confirmation: Confirmation, yes: bool, *, stdin: IO[str] | None = None,
                stdout: IO[str] | None = None) -> None:
    """Show ``confirmation`` and return once the user has confirmed; raise :class:`NotConfirmed` otherwise.

    ``yes`` (the CLI's ``--yes``) confirms without asking. Else, on a terminal, asks the question and accepts ``y``
    or ``yes``; anything else, end of input, or no terminal at all raises :class:`NotConfirmed` (the CLI exits 2;
    nothing was sent). The confirmation is printed on ``stdout`` before anything is decided.
    """
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    print(confirmation, file=stdout, flush=True)
    if yes:
        print("confirmed with --yes", file=stdout, flush=True)
        return
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise NotConfirmed(f"{confirmation.requests} live {confirmation.what} need a confirmation and there is no "
                           "terminal to ask on; nothing was sent.",
                           "Read the notice and the cost above, then run again with --yes to confirm.")
    print(confirmation.question(), end="", file=stdout, flush=True)
    answer = stdin.readline()
    if answer.strip().lower() in ("y", "yes"):
        return
    raise NotConfirmed("Not confirmed; nothing was sent.", "Answer y to send, or pass --yes.")


class LiveGate:
    """The notebooks' confirmation state, as a plain object (the widget only drives it).

    ``confirmation`` None means nothing to confirm (sim mode). ``confirmed`` starts as the ``CONFIRM_LIVE``
    parameter; :meth:`confirm` sets it (the widget's button calls it). :meth:`require` is called by the cell that
    sends.
    """

    def __init__(self, confirmation: Confirmation | None, confirmed: bool = False):
        self.confirmation = confirmation
        self.confirmed = bool(confirmed) or confirmation is None
        self.by = "sim mode: nothing to confirm" if confirmation is None else (
            "the CONFIRM_LIVE parameter" if confirmed else None)

    @property
    def needed(self) -> bool:
        """Whether anything spends (live mode)."""
        return self.confirmation is not None

    def confirm(self, by: str = "the button") -> None:
        """Confirm: the next :meth:`require` passes."""
        self.confirmed, self.by = True, by

    def require(self) -> None:
        """Return when confirmed; raise :class:`NotConfirmed` (nothing sent) otherwise."""
        if self.confirmed:
            return
        assert self.confirmation is not None
        raise NotConfirmed(
            f"{self.confirmation.requests} live {self.confirmation.what} to {self.confirmation.host} are waiting "
            "for your confirmation.",
            "Press the confirm button above (or set CONFIRM_LIVE = True in the parameters cell), then run this "
            "cell again.")

    def status(self) -> str:
        """One line: confirmed by what, or waiting."""
        if not self.needed:
            return "Sim mode: the simulator spends nothing; no confirmation needed."
        return f"Confirmed ({self.by})." if self.confirmed else "Waiting for your confirmation: nothing sent yet."

    def __repr__(self) -> str:
        return f"{self.confirmation}\n{self.status()}" if self.needed else self.status()

    def _repr_html_(self) -> str:
        head = self.confirmation._repr_html_() if self.confirmation is not None else ""
        return f"{head}<p><b>{html.escape(self.status())}</b></p>"
