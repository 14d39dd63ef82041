"""Live mode's one gate: the responsible-use notice and the explicit opt-in.

Live mode spends the user's own plan or extra usage, so nothing is sent to Anthropic's hosts until the user has read
what the kit is for (it diagnoses, it does not evade; DESIGN.md "Responsible use") and opted in with
``LANELAB_LIVE_OPT_IN=1``. Every entry point that can reach the live service calls :func:`require_live_opt_in`.
"""

from __future__ import annotations

from lanelab.config import Settings
from lanelab.errors import LiveNotOptedIn

NOTICE = (
    "Responsible use: live mode sends requests with your own credential to Anthropic's API and spends your plan "
    "or your extra usage. Anthropic reserves subscription OAuth for its own apps and routes third-party traffic to "
    "extra usage. This kit diagnoses; it does not evade: it never disguises requests as Claude Code and never "
    "generates Claude Code's billing attestation. The remedies that exist: fix a malformed request, enable extra "
    "usage, use an API key, or use Anthropic's own clients."
)

OPT_IN_HOW = "To go ahead, set LANELAB_LIVE_OPT_IN=1 and run again (add --dry-run first to see every request)."

__all__ = ["NOTICE", "OPT_IN_HOW", "require_live_opt_in"]


def require_live_opt_in(settings: Settings, action: str = "Live mode spends your own plan and is opt-in") -> None:
    """Return when ``settings`` is not live, or is live with the opt-in; else raise :class:`LiveNotOptedIn`.

    ``action`` is the start of the message (what was about to happen); the notice and how to opt in follow.
    """
    if settings.mode != "live" or settings.live_opt_in:
        return
    raise LiveNotOptedIn(f"{action}; nothing was sent. {NOTICE}", OPT_IN_HOW)
