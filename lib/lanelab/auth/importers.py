"""Read-only importers for credentials other clients keep (Claude Code, Hermes, environment variables).

They open files for reading only and never write, refresh or touch them: refresh tokens are single-use, so using one
here would log the other client out (references/protocol.md §1.3). File layouts: references/hermes.md §3.
A malformed file becomes a :class:`CredentialFileError` naming the file, never a crash, never a secret.
Every imported credential is live (``imported=True``, ``mode="live"``): another client got it from Anthropic, so
:func:`lanelab.auth.issuer.check_destination` lets it go to Anthropic's API only.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from lanelab import errors, redact
from lanelab.auth.credential import Credential
from lanelab.errors import StateError

__all__ = ["CLAUDE_CODE_FILE", "ENV_VARS", "HERMES_AUTH_FILE", "HERMES_PKCE_FILE", "MAX_FILE_BYTES", "CredentialEnvError",
           "CredentialFileError", "Discovery", "discover", "import_claude_code", "import_env", "import_hermes_pkce",
           "import_hermes_pool"]

CLAUDE_CODE_FILE = Path(".claude/.credentials.json")
HERMES_AUTH_FILE = Path(".hermes/auth.json")
HERMES_PKCE_FILE = Path(".hermes/.anthropic_oauth.json")
ENV_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_TOKEN")
#: Credential files are a few hundred bytes; anything this large is not one (and is not read into memory).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: What a Hermes pool entry id may be, so that ``hermes-pool-<id>`` is a valid credential label.
_POOL_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")


class CredentialFileError(StateError):
    """Another client's credential file exists but cannot be understood."""

    hint = "The kit left the file untouched; check it with that client (or ignore this if you do not use it)."


class CredentialEnvError(CredentialFileError):
    """A credential environment variable is set but does not hold a usable token."""

    hint = "Set it to the token alone (no spaces, quotes or line breaks), or unset it."


@dataclass
class Discovery:
    """What the importers found: usable credentials and files that could not be read."""

    credentials: list[Credential] = field(default_factory=list)
    problems: list[CredentialFileError] = field(default_factory=list)

    def labels(self) -> list[str]:
        """The labels of the usable credentials, in discovery order."""
        return [c.label for c in self.credentials]


def _ms_or_s(value: Any) -> float | None:
    """Epoch seconds from a timestamp in milliseconds or seconds (files disagree)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expiry is not a number")
    try:
        seconds = value / 1000 if value > 1e11 else float(value)
    except OverflowError:
        raise ValueError("expiry is out of range") from None
    if not math.isfinite(seconds):
        raise ValueError("expiry is not a finite number")
    return seconds


def _looks_like_token(value: str) -> bool:
    """The kit's one token-shape rule (:func:`lanelab.redact.token_shape_problem`)."""
    return redact.token_shape_problem(value) is None


#: What :func:`_read_json` returns for a file that does not exist (``None`` is a file holding ``null``).
_ABSENT = object()


def _read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, or :data:`_ABSENT` when it does not exist. Opened read-only."""
    if not os.path.lexists(path):
        return _ABSENT
    try:
        if not path.is_file():  # a directory, a FIFO (reading would block), a dangling symlink…
            what = "a directory" if path.is_dir() else "not a regular file"
            raise CredentialFileError(f"{path} is {what}; a credential file was expected there.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CredentialFileError(f"{path} is {size} bytes, far too large to be a credential file.")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CredentialFileError(f"Cannot read {path} ({exc.strerror or type(exc).__name__}).") from None
    if not raw.strip():
        raise CredentialFileError(f"{path} is empty.")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CredentialFileError(f"{path} is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:  # the message holds only a position, never content
        raise CredentialFileError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise CredentialFileError(f"{path} is nested too deeply to be a credential file.") from None
    except ValueError:  # e.g. an integer with more digits than Python converts
        raise CredentialFileError(f"{path} is not valid JSON (a value cannot be converted).") from None


def _str(d: Mapping[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise TypeError(f"{where}: field {key!r} is {'missing' if value is None else 'not a string'}")
    return value


@overload
def _token(d: Mapping[str, Any], key: str, where: str, required: Literal[True]) -> str: ...
@overload
def _token(d: Mapping[str, Any], key: str, where: str, required: bool = False) -> str | None: ...
def _token(d: Mapping[str, Any], key: str, where: str, required: bool = False) -> str | None:
    """A token field: a string, and one that can go into an HTTP header (never echoed in the error)."""
    value = _str(d, key, where, required)
    if value == "" and not required:
        return None
    if value is not None and not _looks_like_token(value):
        errors.check_token_shape(value, f"{where}: field {key!r}", error=ValueError)  # registers it, then raises
    return value


def _scopes(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise TypeError(f"{where}: field 'scopes' is not a list of strings")


def _guard(path: Path, build: Callable[[Any], list[Credential]]) -> list[Credential]:
    data = _read_json(path)
    if data is _ABSENT:
        return []
    try:
        return build(data)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CredentialFileError(f"{path} does not have the expected shape ({exc}).") from None


def import_claude_code(user_home: Path) -> list[Credential]:
    """``~/.claude/.credentials.json`` → ``claudeAiOauth`` (label ``claude-code``); ``[]`` when absent.

    Raises :class:`CredentialFileError` (naming the file, never a secret) when it exists but cannot be understood.
    """

    def build(data: Any) -> list[Credential]:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        block = data.get("claudeAiOauth")
        if block is None:
            return []
        if not isinstance(block, dict):
            raise TypeError("'claudeAiOauth' is not an object")
        w = "claudeAiOauth"
        return [Credential(
            label="claude-code", access_token=_token(block, "accessToken", w, required=True),
            refresh_token=_token(block, "refreshToken", w), expires_at=_ms_or_s(block.get("expiresAt")),
            scopes=_scopes(block.get("scopes"), w), subscription_type=_str(block, "subscriptionType", w),
            rate_limit_tier=_str(block, "rateLimitTier", w), source="claude_code", imported=True, mode="live",
            extra={"file": str(user_home / CLAUDE_CODE_FILE)})]

    return _guard(user_home / CLAUDE_CODE_FILE, build)


def import_hermes_pool(user_home: Path) -> list[Credential]:
    """``~/.hermes/auth.json`` → each ``credential_pool.anthropic`` entry (label ``hermes-pool-ID``), keeping its
    ``source``; ``[]`` when absent. Raises :class:`CredentialFileError` when it exists but cannot be understood."""

    def build(data: Any) -> list[Credential]:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        pool = data.get("credential_pool") or {}
        if not isinstance(pool, dict):
            raise TypeError("'credential_pool' is not an object")
        entries = pool.get("anthropic") or []
        if not isinstance(entries, list):
            raise TypeError("'credential_pool.anthropic' is not a list")
        out = []
        for i, entry in enumerate(entries):
            w = f"credential_pool.anthropic[{i}]"
            if not isinstance(entry, dict):
                raise TypeError(f"{w} is not an object")
            ident = entry.get("id", i)
            if not isinstance(ident, (str, int)) or isinstance(ident, bool):
                raise TypeError(f"{w}: field 'id' is not a string")
            if not _POOL_ID_RE.match(str(ident)):
                raise ValueError(f"{w}: field 'id' is not a short identifier (letters, digits, '.', '_', '-')")
            priority = entry.get("priority")
            if priority is not None and (isinstance(priority, bool) or not isinstance(priority, (int, float))):
                raise TypeError(f"{w}: field 'priority' is not a number")
            out.append(Credential(
                label=f"hermes-pool-{ident}", access_token=_token(entry, "access_token", w, required=True),
                refresh_token=_token(entry, "refresh_token", w), expires_at=_ms_or_s(entry.get("expires_at_ms")),
                scopes=_scopes(entry.get("scopes"), w), source=_str(entry, "source", w) or "hermes",
                imported=True, mode="live", extra={"file": str(user_home / HERMES_AUTH_FILE),
                                      "hermes_label": _str(entry, "label", w),
                                      "auth_type": _str(entry, "auth_type", w), "priority": priority}))
        return out

    return _guard(user_home / HERMES_AUTH_FILE, build)


def import_hermes_pkce(user_home: Path) -> list[Credential]:
    """``~/.hermes/.anthropic_oauth.json`` (the hermes_pkce singleton; label ``hermes-pkce``); ``[]`` when absent.

    Raises :class:`CredentialFileError` when it exists but cannot be understood."""

    def build(data: Any) -> list[Credential]:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        w = "top level"
        return [Credential(
            label="hermes-pkce", access_token=_token(data, "accessToken", w, required=True),
            refresh_token=_token(data, "refreshToken", w), expires_at=_ms_or_s(data.get("expiresAt")),
            scopes=_scopes(data.get("scopes"), w), source="hermes_pkce", imported=True, mode="live",
            extra={"file": str(user_home / HERMES_PKCE_FILE)})]

    return _guard(user_home / HERMES_PKCE_FILE, build)


def import_env(environ: Mapping[str, str]) -> list[Credential]:
    """``CLAUDE_CODE_OAUTH_TOKEN`` and ``ANTHROPIC_TOKEN`` (labels ``env-NAME``).

    Raises :class:`CredentialEnvError` (naming the variable, never its value) when one is set to something that is
    not a token, e.g. two lines pasted at once: sending it would fail later in a far less clear way.
    """
    out = []
    for name in ENV_VARS:
        raw = environ.get(name)
        value = raw.strip() if isinstance(raw, str) else ""
        if raw is not None and not isinstance(raw, str):
            raise CredentialEnvError(f"The environment variable {name} is not text.")
        if value and not _looks_like_token(value):
            errors.check_token_shape(value, f"environment variable {name}", error=CredentialEnvError)
        if value:
            out.append(Credential(label=f"env-{name}", access_token=value, source=f"env:{name}", imported=True,
                                  mode="live"))
    return out


def discover(user_home: Path | None = None, environ: Mapping[str, str] | None = None) -> Discovery:
    """Run every importer (``user_home`` defaults to the user's home, ``environ`` to ``os.environ``).

    Returns a :class:`Discovery`; never raises for a broken file: it is reported in ``problems`` and does not hide
    the others.
    """
    home = Path(user_home) if user_home is not None else Path.home()
    env = os.environ if environ is None else environ
    found = Discovery()
    for importer in (import_claude_code, import_hermes_pool, import_hermes_pkce):
        try:
            found.credentials.extend(importer(home))
        except CredentialFileError as exc:
            found.problems.append(exc)
    try:
        found.credentials.extend(import_env(env))
    except CredentialEnvError as exc:
        found.problems.append(exc)
    return found
