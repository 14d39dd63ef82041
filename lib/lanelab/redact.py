"""The one place that knows what a secret looks like. Every writer (store, report, log, capture, repr) goes through it.

Three mechanisms, each catching what the others miss:
- patterns: token shapes (``sk-ant-oat01-…``, ``sk-ant-ort01-…``, API keys, JWTs, ``Bearer …``);
- sensitive keys: JSON fields and headers whose value is a secret whatever it looks like (``code``, ``code_verifier``…);
- a registry of known secrets: anything the kit has handled as a secret (an authorization code, a verifier, a token of
  an unfamiliar shape) is registered once and masked wherever it appears afterwards.

The registry belongs to a :class:`Redactor`. The module-level functions use the kit's default one; a part that must
keep its secrets apart (the embedded simulator is a separate party: the server's secrets are not the client's) makes
its own ``Redactor()`` and redacts through it, with the same patterns and keys.

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

__all__ = ["MASK", "SENSITIVE_KEYS", "Redactor", "SecretLeak", "assert_clean", "find_secrets", "forget_secrets",
           "is_sensitive_key", "mask", "redact_headers", "redact_obj", "redact_text", "register_secret", "restore",
           "snapshot"]


def _may_hold_token(text: str) -> bool:
    """A cheap literal pre-check: can the token pattern match at all? (Most text has no token; the regex is slow.)"""
    return "sk-ant-" in text or "eyJ" in text or "bearer" in text.lower()


class SecretLeak(RuntimeError):
    """Raised by writers that refuse to write text which still contains a secret."""


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


def is_sensitive_key(key: str) -> bool:
    return key.lower() in SENSITIVE_KEYS


def _mask_header_value(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in ("bearer", "basic"):
        return f"{scheme} {mask(rest)}"
    return mask(value)


class Redactor:
    """A registry of known secrets and the redaction that uses it (thread-safe).

    Patterns and sensitive keys are the module's and shared; only the registry is the instance's own, so two parties
    in one process (the kit and its embedded simulator) never learn each other's secrets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registry: set[str] = set()

    def __repr__(self) -> str:
        return f"<Redactor: {len(self._registry)} registered secret(s)>"

    def register_secret(self, value: str | None) -> None:
        """Remember ``value`` as secret so that every later redaction masks it, whatever its shape."""
        if value and len(value) >= 8:
            with self._lock:
                self._registry.add(value)

    def snapshot(self) -> frozenset[str]:
        """The registered secrets right now (tests restore it so that one test's secrets do not follow it around)."""
        with self._lock:
            return frozenset(self._registry)

    def restore(self, saved: frozenset[str]) -> None:
        """Put the registry back as :meth:`snapshot` found it."""
        with self._lock:
            self._registry.clear()
            self._registry.update(saved)

    def forget_secrets(self) -> None:
        """Clear the registry (tests, and a simulator's reset)."""
        with self._lock:
            self._registry.clear()

    def redact_text(self, text: str) -> str:
        """Mask every secret found in free text (log lines, exception messages, HTML, Markdown, notebook outputs)."""
        if len(text) < 8:  # shorter than any secret the registry keeps or the patterns match
            return text
        with self._lock:
            known = sorted(self._registry, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, mask(secret))
        return _TOKEN_RE.sub(_mask_match, text) if _may_hold_token(text) else text

    def redact_obj(self, obj: Any) -> Any:
        """A redacted deep copy of JSON-like data: sensitive keys masked, every string scanned."""
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if isinstance(k, str) and is_sensitive_key(k) and isinstance(v, str):
                    out[k] = _mask_header_value(v)
                else:
                    out[k] = self.redact_obj(v)
            return out
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, str):
            return self.redact_text(obj)
        return obj

    def redact_headers(self, headers: Any) -> dict[str, str]:
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
            v = _mask_header_value(v) if is_sensitive_key(k) else self.redact_text(v)
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    def find_secrets(self, text: str, extra: Iterable[str] = ()) -> list[str]:
        """Masked descriptions of the secrets still present in ``text`` (empty when clean)."""
        hits: list[str] = []
        with self._lock:
            known = list(self._registry)
        for secret in [*known, *extra]:
            if secret and secret in text:
                hits.append(mask(secret))
        for m in _TOKEN_RE.finditer(text) if _may_hold_token(text) else ():
            secret = m.group("secret") or m.group("jwt") or m.group("bsecret") or ""
            if MASK not in secret and len(secret) > 8:
                hits.append(_mask_match(m))
        return hits

    def assert_clean(self, text: str, where: str = "output", extra: Iterable[str] = ()) -> None:
        """Raise :class:`SecretLeak` (naming only masked forms) when ``text`` still holds a secret."""
        hits = self.find_secrets(text, extra)
        if hits:
            raise SecretLeak(
                f"Refusing to write {where}: it still contains {len(hits)} secret(s) "
                f"({', '.join(sorted(set(hits))[:3])}). Pass the content through lanelab.redact before writing."
            )


#: The kit's own registry: what the module-level functions below use.
_default = Redactor()

register_secret = _default.register_secret
snapshot = _default.snapshot
restore = _default.restore
forget_secrets = _default.forget_secrets
redact_text = _default.redact_text
redact_obj = _default.redact_obj
redact_headers = _default.redact_headers
find_secrets = _default.find_secrets
assert_clean = _default.assert_clean
