"""Read-only importers for credentials other clients keep (Claude Code, Hermes, environment variables).

They open files for reading only and never write, refresh or touch them: refresh tokens are single-use, so using one
here would log the other client out (research/protocol.md §1.3). File layouts: research/hermes.md §3.
A malformed file becomes a :class:`CredentialFileError` naming the file, never a crash, never a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .credentials import Credential
from .errors import UserError

CLAUDE_CODE_FILE = Path(".claude/.credentials.json")
HERMES_AUTH_FILE = Path(".hermes/auth.json")
HERMES_PKCE_FILE = Path(".hermes/.anthropic_oauth.json")
ENV_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_TOKEN")


class CredentialFileError(UserError):
    """Another client's credential file exists but cannot be understood."""

    hint = "The kit left the file untouched; check it with that client (or ignore this if you do not use it)."


@dataclass
class Discovery:
    """What the importers found: usable credentials and files that could not be read."""

    credentials: list[Credential] = field(default_factory=list)
    problems: list[CredentialFileError] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [c.label for c in self.credentials]


def _ms_or_s(value: Any) -> float | None:
    """Epoch seconds from a timestamp in milliseconds or seconds (files disagree)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("expiry is not a number")
    return value / 1000 if value > 1e11 else float(value)


def _read_json(path: Path) -> Any:
    """Parsed JSON of ``path``, or ``None`` when it does not exist. Opened read-only."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise CredentialFileError(f"Cannot read {path} ({exc.strerror or type(exc).__name__}).") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CredentialFileError(f"{path} is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:  # the message holds only a position, never content
        raise CredentialFileError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None


def _str(d: Mapping[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise TypeError(f"{where}: field {key!r} is {'missing' if value is None else 'not a string'}")
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
    if data is None:
        return []
    try:
        return build(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise CredentialFileError(f"{path} does not have the expected shape ({exc}).") from None


def import_claude_code(user_home: Path) -> list[Credential]:
    """``~/.claude/.credentials.json`` → ``claudeAiOauth`` (label ``claude-code``)."""

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
            label="claude-code", access_token=_str(block, "accessToken", w, required=True),
            refresh_token=_str(block, "refreshToken", w), expires_at=_ms_or_s(block.get("expiresAt")),
            scopes=_scopes(block.get("scopes"), w), subscription_type=_str(block, "subscriptionType", w),
            rate_limit_tier=_str(block, "rateLimitTier", w), source="claude_code", imported=True,
            extra={"file": str(user_home / CLAUDE_CODE_FILE)})]

    return _guard(user_home / CLAUDE_CODE_FILE, build)


def import_hermes_pool(user_home: Path) -> list[Credential]:
    """``~/.hermes/auth.json`` → each ``credential_pool.anthropic`` entry, keeping its ``source``."""

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
            out.append(Credential(
                label=f"hermes-pool-{ident}", access_token=_str(entry, "access_token", w, required=True),
                refresh_token=_str(entry, "refresh_token", w), expires_at=_ms_or_s(entry.get("expires_at_ms")),
                scopes=_scopes(entry.get("scopes"), w), source=_str(entry, "source", w) or "hermes",
                imported=True, extra={"file": str(user_home / HERMES_AUTH_FILE), "hermes_label": entry.get("label"),
                                      "auth_type": entry.get("auth_type"), "priority": entry.get("priority")}))
        return out

    return _guard(user_home / HERMES_AUTH_FILE, build)


def import_hermes_pkce(user_home: Path) -> list[Credential]:
    """``~/.hermes/.anthropic_oauth.json`` (the hermes_pkce singleton; label ``hermes-pkce``)."""

    def build(data: Any) -> list[Credential]:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        w = "top level"
        return [Credential(
            label="hermes-pkce", access_token=_str(data, "accessToken", w, required=True),
            refresh_token=_str(data, "refreshToken", w), expires_at=_ms_or_s(data.get("expiresAt")),
            scopes=_scopes(data.get("scopes"), w), source="hermes_pkce", imported=True,
            extra={"file": str(user_home / HERMES_PKCE_FILE)})]

    return _guard(user_home / HERMES_PKCE_FILE, build)


def import_env(environ: Mapping[str, str]) -> list[Credential]:
    """``CLAUDE_CODE_OAUTH_TOKEN`` and ``ANTHROPIC_TOKEN`` (labels ``env-NAME``)."""
    out = []
    for name in ENV_VARS:
        value = (environ.get(name) or "").strip()
        if value:
            out.append(Credential(label=f"env-{name}", access_token=value, source=f"env:{name}", imported=True))
    return out


def discover(user_home: Path | None = None, environ: Mapping[str, str] | None = None) -> Discovery:
    """Run every importer; a broken file is reported in ``problems`` and does not hide the others."""
    home = Path(user_home) if user_home is not None else Path.home()
    env = os.environ if environ is None else environ
    found = Discovery()
    for importer in (import_claude_code, import_hermes_pool, import_hermes_pkce):
        try:
            found.credentials.extend(importer(home))
        except CredentialFileError as exc:
            found.problems.append(exc)
    found.credentials.extend(import_env(env))
    return found
