"""The one place that knows what a secret looks like. Every writer (store, report, log, capture, repr) goes through it.

Three mechanisms, each catching what the others miss:
- patterns: token shapes (``sk-ant-oat01-…``, ``sk-ant-ort01-…``, API keys, JWTs, ``Bearer …``);
- sensitive keys: JSON fields and headers whose value is a secret whatever it looks like (``code``, ``code_verifier``…);
- a registry of known secrets: anything the kit has handled as a secret (an authorization code, a verifier, a token of
  an unfamiliar shape) is registered once and masked wherever it appears afterwards.

A mask keeps a token's public prefix and its last four characters, never eight consecutive secret characters, so a
masked value can be recognised by its owner and matched across records without being usable.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "…"

# Token shapes. The prefix group is kept in the mask; the rest is secret.
_TOKEN_RE = re.compile(
    r"(?P<prefix>sk-ant-(?:oat|ort|api|admin|sid)\d{2}-)(?P<secret>[A-Za-z0-9_\-]{6,})"
    r"|(?P<jwt>eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]*)?)"
    r"|(?P<bearer>(?i:bearer)\s+)(?P<bsecret>(?!sk-ant-)(?!…)[A-Za-z0-9_\-.~+/=]{12,})"
)

#: Keys (JSON fields, query parameters, form fields, headers) whose values are always secret.
SENSITIVE_KEYS = frozenset(
    k.lower()
    for k in (
        "authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie",
        "access_token", "refresh_token", "id_token", "accessToken", "refreshToken", "api_key", "apiKey",
        "raw_key", "code", "code_verifier", "verifier", "client_secret", "password", "token", "secret",
        "session_key", "sessionKey",
    )
)

def _may_hold_token(text: str) -> bool:
    """A cheap literal pre-check: can the token pattern match at all? (Most text has no token; the regex is slow.)"""
    return "sk-ant-" in text or "eyJ" in text or "bearer" in text.lower()


_registry_lock = threading.Lock()
_registry: set[str] = set()


class SecretLeak(RuntimeError):
    """Raised by writers that refuse to write text which still contains a secret."""


def register_secret(value: str | None) -> None:
    """Remember ``value`` as secret so that every later redaction masks it, whatever its shape."""
    if value and len(value) >= 8:
        with _registry_lock:
            _registry.add(value)


def snapshot() -> frozenset[str]:
    """The registered secrets right now (tests restore it so that one test's secrets do not follow it around)."""
    with _registry_lock:
        return frozenset(_registry)


def restore(saved: frozenset[str]) -> None:
    """Put the registry back as :func:`snapshot` found it."""
    with _registry_lock:
        _registry.clear()
        _registry.update(saved)


def forget_secrets() -> None:
    """Clear the registry (tests)."""
    with _registry_lock:
        _registry.clear()


def mask(value: str | None) -> str:
    """A short, recognisable, unusable stand-in for a secret: public prefix, an ellipsis, the last 4 characters."""
    if value is None:
        return "None"
    value = str(value)
    m = re.match(r"(sk-ant-(?:oat|ort|api|admin|sid)\d{2}-)", value)
    prefix = m.group(1) if m else ""
    rest = value[len(prefix):]
    if len(rest) <= 8:
        return f"{prefix}{MASK}"
    return f"{prefix}{MASK}{rest[-4:]}"


def _mask_match(m: re.Match[str]) -> str:
    if m.group("prefix"):
        return mask(m.group(0))
    if m.group("jwt"):
        return "eyJ" + MASK + m.group("jwt")[-4:]
    return m.group("bearer") + mask(m.group("bsecret"))


def redact_text(text: str) -> str:
    """Mask every secret found in free text (log lines, exception messages, HTML, Markdown, notebook outputs)."""
    if len(text) < 8:  # shorter than any secret the registry keeps or the patterns match
        return text
    with _registry_lock:
        known = sorted(_registry, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return _TOKEN_RE.sub(_mask_match, text) if _may_hold_token(text) else text


def is_sensitive_key(key: str) -> bool:
    return key.lower() in SENSITIVE_KEYS


def redact_obj(obj: Any) -> Any:
    """A redacted deep copy of JSON-like data: sensitive keys masked, every string scanned."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and is_sensitive_key(k) and isinstance(v, str):
                out[k] = _mask_header_value(v)
            else:
                out[k] = redact_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def _mask_header_value(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {mask(rest)}"
    return mask(value)


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers as a plain dict with secret values masked (accepts dicts, httpx.Headers or pairs)."""
    items: Iterable[tuple[str, str]]
    if hasattr(headers, "multi_items"):
        items = headers.multi_items()
    elif isinstance(headers, dict):
        items = headers.items()
    else:
        items = headers
    out: dict[str, str] = {}
    for k, v in items:
        v = _mask_header_value(v) if is_sensitive_key(k) else redact_text(v)
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def find_secrets(text: str, extra: Iterable[str] = ()) -> list[str]:
    """Masked descriptions of the secrets still present in ``text`` (empty when clean)."""
    hits: list[str] = []
    with _registry_lock:
        known = list(_registry)
    for secret in [*known, *extra]:
        if secret and secret in text:
            hits.append(mask(secret))
    for m in _TOKEN_RE.finditer(text) if _may_hold_token(text) else ():
        secret = m.group("secret") or m.group("jwt") or m.group("bsecret") or ""
        if MASK not in secret and len(secret) > 8:
            hits.append(_mask_match(m))
    return hits


def assert_clean(text: str, where: str = "output", extra: Iterable[str] = ()) -> None:
    """Raise :class:`SecretLeak` (naming only masked forms) when ``text`` still holds a secret."""
    hits = find_secrets(text, extra)
    if hits:
        raise SecretLeak(
            f"Refusing to write {where}: it still contains {len(hits)} secret(s) ({', '.join(sorted(set(hits))[:3])}). "
            "Pass the content through lanelab.redact before writing."
        )
