"""Turning what a user pasted after authorizing into an authorization code, or a clear refusal.

The hosted callback page shows ``code#state``; people also paste the whole callback URL or its query string, often with
stray spaces or quotes. Each way it can go wrong has its own error type with a message that says what to do next and
never repeats the pasted secret (references/protocol.md §1.2; references/hermes.md §3).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from lanelab import errors, redact
from lanelab.errors import InputError

__all__ = ["MAX_PASTE_CHARS", "EmptyPaste", "MissingState", "PasteError", "PastedCode", "StateMismatch",
           "TokenPasted", "UnrecognisedPaste", "clean", "parse_paste"]

#: Characters an authorization code or state may contain (base64url plus the URL-safe extras).
_CODE_RE = re.compile(r"^[A-Za-z0-9_\-.~]+$")
#: A callback URL is a few hundred characters; a paste this long is something else (and is not parsed).
MAX_PASTE_CHARS = 8192
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
_TOKEN_KINDS = (
    ("sk-ant-oat", "an OAuth access token"),
    ("sk-ant-ort", "an OAuth refresh token"),
    ("sk-ant-api", "an API key"),
    ("sk-ant-admin", "an admin API key"),
    ("sk-ant-sid", "a session cookie"),
    ("eyJ", "a JSON web token"),
)


class PasteError(InputError):
    """The pasted value is not an authorization code this flow can use."""


class EmptyPaste(PasteError):
    hint = "Paste the value the callback page shows (it looks like code#state), then press Enter."


class MissingState(PasteError):
    hint = ("Copy the whole value from the callback page, including the part after '#' (or paste the full callback "
            "URL); the kit needs the state to check that the code belongs to this login.")


class StateMismatch(PasteError):
    hint = ("The state protects against a forged callback: a code that belongs to another login (possibly someone "
            "else's) must not be accepted. Start the flow again (new authorize link) and paste the value from that "
            "page.")


class TokenPasted(PasteError):
    hint = ("This step needs the short-lived authorization code from the callback page, not a token. To use a token "
            "you already have, import it instead (python -m lanelab creds lists importable credentials).")


class UnrecognisedPaste(PasteError):
    hint = "Expected code#state, a callback URL with ?code=…&state=…, or such a query string. Copy it again."


@dataclass(frozen=True)
class PastedCode:
    """A parsed paste: the authorization code (secret) and the state it came back with."""

    code: str
    state: str

    def __repr__(self) -> str:
        return f"PastedCode(code={redact.mask(self.code)}, state={redact.mask(self.state)})"


def clean(text: str | None) -> str:
    """Trim whitespace and any surrounding quotes (copied from a terminal, a chat, a JSON dump)."""
    value = (text or "").strip()
    while len(value) >= 1 and value[0] in _QUOTES:
        value = value[1:].strip()
    while len(value) >= 1 and value[-1] in _QUOTES:
        value = value[:-1].strip()
    return value


def _token_kind(value: str) -> str | None:
    for prefix, kind in _TOKEN_KINDS:
        if value.startswith(prefix):
            return kind
    return None


def _split(value: str) -> tuple[str | None, str | None]:
    """``(code, state)`` from any accepted shape; ``(None, None)`` when the shape is not recognised."""
    if value.lower().startswith(("http://", "https://")):
        parts = urlsplit(value)
        query = parse_qs(parts.query, keep_blank_values=True)
        code: str | None = next(iter(query.get("code", [])), None)
        state: str | None = next(iter(query.get("state", [])), None)
        if code and "#" in code and not state:
            code, _, state = code.partition("#")
        if code and not state and parts.fragment:
            state = parts.fragment
        return code, state
    if "code=" in value:
        query = parse_qs(value.lstrip("?&"), keep_blank_values=True)
        return next(iter(query.get("code", [])), None), next(iter(query.get("state", [])), None)
    if "#" in value:
        code, _, state = value.partition("#")
        return code, state
    return value, None


def parse_paste(text: str | None, expected_state: str | None = None) -> PastedCode:
    """Parse a pasted ``code#state``, callback URL or query string; check ``state`` when ``expected_state`` is given.

    Raises a :class:`PasteError` subclass; no message contains the pasted code.
    """
    if text is not None and not isinstance(text, str):
        raise UnrecognisedPaste(f"A paste is text (the code#state, or the callback URL); found {type(text).__name__}.")
    if text is not None and len(text) > 4 * MAX_PASTE_CHARS:  # bound the work before trimming anything
        raise UnrecognisedPaste(f"The pasted value is {len(text)} characters, far longer than a callback URL.")
    value = clean(text)
    if not value:
        raise EmptyPaste("Nothing was pasted.")
    if len(value) > MAX_PASTE_CHARS:
        raise UnrecognisedPaste(f"The pasted value is {len(value)} characters, far longer than a callback URL.")
    kind = _token_kind(value)
    if kind:
        redact.register_secret(value)
        raise TokenPasted(f"That looks like {kind} ({redact.mask(value)}), not an authorization code.")
    code, state = _split(value)
    if code:
        redact.register_secret(code)
    if not code:
        raise UnrecognisedPaste(f"No authorization code found in the pasted value ({len(value)} characters).")
    code_kind = _token_kind(code)
    if code_kind:
        raise TokenPasted(f"The code part looks like {code_kind}, not an authorization code.")
    # a control or non-ASCII character: every piece of the code is registered, the message says where, never what
    errors.check_token_shape(code, "authorization code in the pasted value", error=UnrecognisedPaste)
    if not _CODE_RE.match(code):
        raise UnrecognisedPaste(
            f"The pasted value ({len(value)} characters) contains characters an authorization code never has.")
    if not state:
        raise MissingState("The pasted value has a code but no state.")
    if not _CODE_RE.match(state):
        raise UnrecognisedPaste("The state part of the pasted value contains characters a state never has.")
    if expected_state is not None and not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise StateMismatch(
            f"The pasted state ({redact.mask(state)}) is not the one this login sent ({redact.mask(expected_state)}).")
    return PastedCode(code=code, state=state)
