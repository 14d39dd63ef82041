"""The one place that knows what a secret looks like. Every writer (store, report, log, capture, repr) goes through it.

Four mechanisms, each catching what the others miss:
- patterns: token shapes (``sk-ant-oat01-…``, ``sk-ant-ort01-…``, API keys, JWTs, ``Bearer …``);
- sensitive keys: JSON fields, form and query parameters and headers whose value is a secret whatever it looks like
  (``code``, ``code_verifier``, anything ending in ``token``, ``api-key``, ``secret``…, see :func:`is_sensitive_key`);
- the same keys inside free text: ``access_token=…`` in a URL or a form body, ``"refresh_token": "…"`` in JSON held
  in a string or an error message, ``x-goog-api-key: …`` in a header line, ``(b'authorization', b'…')`` in a debug log;
- a registry of known secrets: anything the kit has handled as a secret (an authorization code, a verifier, a token of
  an unfamiliar shape) is registered once and masked wherever it appears afterwards. Whoever sees a secret go by
  (the capture proxy, the simulator, the OAuth client) *learns* it (:meth:`Redactor.learn_headers`,
  :meth:`Redactor.learn_text`, :meth:`Redactor.learn_obj`) before anything about it is written.

The registry belongs to a :class:`Redactor`. The module-level functions use the kit's default one; a part that must
keep its secrets apart (the embedded simulator is a separate party: the server's secrets are not the client's) makes
its own ``Redactor()`` and redacts through it, with the same patterns and keys.

A mask keeps a token's public prefix and its last four characters, never eight consecutive secret characters, so a
masked value can be recognised by its owner and matched across records without being usable.

Also here, because they are the same rules applied at the edges: :func:`token_shape_problem` (a token that cannot go
into an HTTP header is refused at every entry, with a message that never shows it), :meth:`Redactor.redact_body` (a
request or response body for a record: bounded, hashed, learned and redacted) and :func:`guard_logging` (the
third-party loggers that print URLs and headers are quiet by default and redacted when turned up).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

MASK = "…"

#: ``str.translate`` table lower-casing ASCII letters only (indexes kept, unlike ``str.lower`` on "İ").
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}

# Token shapes. The prefix group is kept in the mask; the rest is secret.
_TOKEN_RE = re.compile(
    r"(?P<prefix>sk-ant-(?:oat|ort|api|admin|sid)\d{2}-)(?P<secret>[A-Za-z0-9_\-]{6,})"
    r"|(?P<jwt>eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]*)?)"
    r"|(?P<bearer>(?i:bearer)\s+)(?P<bsecret>(?!sk-ant-)(?!…)[A-Za-z0-9_\-.~+/=]{12,})"
)

#: Keys (JSON fields, query parameters, form fields, headers) whose values are always secret. Beyond these, any key
#: ending in one of :data:`SENSITIVE_SUFFIXES` or containing ``authorization`` or ``cookie`` is (see
#: :func:`is_sensitive_key`).
SENSITIVE_KEYS = frozenset(
    k.lower()
    for k in (
        "authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie",
        "access_token", "refresh_token", "id_token", "accessToken", "refreshToken", "api_key", "apiKey",
        "raw_key", "code", "code_verifier", "verifier", "client_secret", "password", "token", "secret",
        "session_key", "sessionKey",
    )
)
#: Key endings that make a key sensitive (compared lower-case, ``-`` read as ``_``): ``x-goog-api-key``,
#: ``sessionToken``, ``webhook_secret``… Plurals (``max_tokens``, ``input_tokens``) do not end so and stay visible.
SENSITIVE_SUFFIXES = ("token", "api_key", "apikey", "secret", "password", "passwd", "passphrase", "private_key",
                      "access_key", "session_key", "sessionkey", "verifier")
_SENSITIVE_PARTS = ("authorization", "cookie")
_SENSITIVE_NORMALISED = frozenset(k.replace("-", "_") for k in SENSITIVE_KEYS)
#: ``code`` is also an ordinary word (a tool's parameter, a JSON-schema property): its value is masked where it is a
#: string, but what is nested under it is a secret only in an OAuth body (see :func:`_is_oauth_body`).
_WEAK_KEYS = frozenset({"code"})
#: The labels the environment importer gives (``env-CLAUDE_CODE_OAUTH_TOKEN``) end in TOKEN but name a credential.
_ENV_LABEL_RE = re.compile(r"env-[A-Z][A-Z0-9_]*$")
#: Fields that mark a dict as an OAuth request or answer (then ``code`` under it is the authorization code).
_OAUTH_FIELDS = frozenset({"grant_type", "code_verifier", "redirect_uri", "refresh_token", "access_token",
                           "client_id"})

#: What a token may be: printable ASCII without spaces (anything else cannot go into an HTTP header) ...
_TOKEN_SHAPE_RE = re.compile(r"[\x21-\x7e]+")
#: ... and at most this long.
TOKEN_MAX_CHARS = 8192
#: A body longer than this is recorded as its first so many bytes (as text), its size and its SHA-256.
BODY_RECORD_LIMIT = 1024 * 1024
#: JSON nested deeper than this is recorded as text (deep data would overflow recursive redaction).
MAX_JSON_DEPTH = 64
#: A redactor remembers texts it found clean (see :meth:`Redactor.redact_text`): each at most this long, and at most
#: this many characters in all (then it starts over), so the memory it takes stays small.
CLEAN_TEXT_MAX = 64 * 1024
CLEAN_CHARS_MAX = 4 * 1024 * 1024

__all__ = ["BODY_RECORD_LIMIT", "MASK", "MAX_JSON_DEPTH", "SENSITIVE_KEYS", "SENSITIVE_SUFFIXES",
           "TOKEN_MAX_CHARS", "LogFilter", "Redactor", "SecretLeak", "assert_clean", "assert_clean_parts", "clean_json",
           "clean_json_all", "find_secrets", "forget_secrets", "guard_logging", "is_sensitive_key", "learn_body",
           "learn_headers", "learn_obj", "learn_text", "loads_bounded", "mask", "redact_body",
           "redact_headers", "redact_json", "redact_obj", "redact_text", "register_secret", "restore",
           "snapshot", "token_shape_problem"]


#: Every match of :data:`_TOKEN_RE` starts with one of these literals (``bearer`` in any case).
_TOKEN_STARTS = ("sk-ant-", "eyJ")


#: ``json.dumps(value, ensure_ascii=False, default=str)``, with one encoder made once (dumps makes one per call).
_JSON = json.JSONEncoder(ensure_ascii=False, default=str)

# The last text lowered and the stems found in the last lowered text: the scans of one text (the sensitive-key search,
# the pairs, the tokens) run one after another, and each needs both. Kept as one tuple each (read and replaced whole,
# so threads never see half of one). The one text each holds stays in memory until the next scan replaces it; it is
# never written anywhere from here.
_last_lowered: tuple[str, str, bool] = ("", "", True)
_last_stems: tuple[str, list[tuple[int, int]]] = ("", [])


def _lowered(text: str) -> tuple[str, bool]:
    """``(text.lower(), True)``, or, when a character's lower case is longer ("İ"), the text with only its ASCII
    letters lower-cased and False: indexes line up with ``text`` either way."""
    global _last_lowered
    last = _last_lowered
    if last[0] is text:
        return last[1], last[2]
    low = text.lower()
    exact = len(low) == len(text)
    if not exact:
        low = text.translate(_ASCII_LOWER)
    _last_lowered = (text, low, exact)
    return low, exact


def _stem_hits(low: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every occurrence of every :data:`_STEMS` word in ``low`` (a lowered text), in order."""
    global _last_stems
    last = _last_stems
    if last[0] is low:
        return last[1]
    hits: list[tuple[int, int]] = []
    for stem in _STEMS:
        i = low.find(stem)
        while i >= 0:
            hits.append((i, i + len(stem)))
            i = low.find(stem, i + 1)
    hits.sort()
    _last_stems = (low, hits)
    return hits


def _token_matches(text: str) -> Iterator[re.Match[str]]:
    """The matches of :data:`_TOKEN_RE` in ``text``, exactly as ``_TOKEN_RE.finditer(text)`` yields them, found ~20×
    faster: the regex is tried only where one of its literal starts (``sk-ant-``, ``eyJ``, ``bearer`` in any case) is.

    Why this is the same: every alternative of the pattern begins with one of those literals, so a match can begin
    nowhere else; trying the candidates left to right and skipping those inside the previous match is what
    ``finditer`` does position by position. ``(?i:bearer)`` matches only the ASCII letters (no other character
    folds to b, e, a or r), and the lower-casing keeps indexes (ASCII-only when a character's lower case is longer).
    """
    starts: list[int] = []
    for literal in _TOKEN_STARTS:
        i = text.find(literal)
        while i >= 0:
            starts.append(i)
            i = text.find(literal, i + 1)
    low, _ = _lowered(text)
    i = low.find("bearer")
    while i >= 0:
        starts.append(i)
        i = low.find("bearer", i + 1)
    if not starts:
        return
    starts.sort()
    end = 0
    for i in starts:
        if i < end:
            continue
        m = _TOKEN_RE.match(text, i)
        if m is not None:
            yield m
            end = m.end()


def _mask_tokens(text: str) -> str:
    """``_TOKEN_RE.sub(_mask_match, text)``, through :func:`_token_matches`."""
    pieces: list[str] = []
    last = 0
    for m in _token_matches(text):
        pieces += [text[last:m.start()], _mask_match(m)]
        last = m.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


class SecretLeak(RuntimeError):
    """Raised by writers that refuse to write text which still contains a secret (``hits``: their masked forms)."""

    def __init__(self, message: str, hits: Iterable[str] = ()):
        super().__init__(message)
        self.hits = list(hits)


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


def _normal_key(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when the value under ``key`` (a JSON field, a form or query parameter, a header name) is a secret.

    The listed :data:`SENSITIVE_KEYS`, any key ending in one of :data:`SENSITIVE_SUFFIXES` (``x-goog-api-key``,
    ``sessionToken``…) and any key containing ``authorization`` or ``cookie``; case and ``-``/``_`` do not matter.
    """
    if _ENV_LABEL_RE.match(key):
        return False
    k = _normal_key(key)
    return k in _SENSITIVE_NORMALISED or k.endswith(SENSITIVE_SUFFIXES) or any(p in k for p in _SENSITIVE_PARTS)


def _is_weak_key(key: str) -> bool:
    return _normal_key(key) in _WEAK_KEYS


def _split_scheme(value: str) -> tuple[str, str]:
    """``("Bearer ", "abc")`` for ``"Bearer abc"``; ``("", value)`` when there is no auth scheme."""
    scheme, sep, rest = value.partition(" ")
    if sep and rest and scheme.lower() in ("bearer", "basic", "token"):
        return f"{scheme} ", rest.strip()
    return "", value


def _mask_header_value(value: str) -> str:
    if MASK in value:  # masked already (redacting twice keeps the recognisable tail)
        return value
    scheme, rest = _split_scheme(value)
    return f"{scheme}{mask(rest)}"


# ---- sensitive keys inside free text --------------------------------------------------------------------------

#: Every sensitive key contains one of these (lower-case); text without any of them holds no sensitive pair.
_STEMS = ("token", "key", "secret", "passw", "passphrase", "verifier", "authorization", "cookie", "code")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# After a quoted key: ``"key": "value"``, ``'key': 'value'``, ``\"key\": \"value\"`` (JSON inside a string),
# ``key = "value"`` (TOML) and ``(b'key', b'value')`` (a header pair in a repr).
_QUOTED_TAIL_RE = re.compile(r"(?P<q1>\\?[\"'])?[ \t]*(?P<sep>[:=,])[ \t]*b?(?P<q2>\\?[\"'])(?P<val>[^\n]{1,8192}?)"
                             r"(?P=q2)")
# After a bare key: ``key=value`` (query strings, form bodies, cookies), ``key: value`` (a header line).
_BARE_TAIL_RE = re.compile(r"[ \t]*[:=][ \t]*(?P<scheme>(?:bearer|basic|token)[ \t]+)?"
                           r"(?P<val>[^\s&\"'#;,<>(){}\[\]\\|`]{1,8192})", re.IGNORECASE)
_PAIR_OPENER_RE = re.compile(r"[\[(][ \t]*b?\\?[\"']$")
_PAIR_CLOSER_RE = re.compile(r"[ \t]*[\])]")


def _pairs_in_text(text: str) -> Iterator[tuple[str, int, int, bool]]:
    """``(key, start, end, quoted)`` of every value under a sensitive key in ``text`` (``start:end`` is the value,
    an auth scheme such as ``Bearer`` included when the value is quoted)."""
    hits = _stem_hits(_lowered(text)[0])
    if not hits:
        return
    pos, n = 0, len(text)
    for a, b in hits:
        if a < pos:
            continue
        while a > 0 and text[a - 1] in _KEY_CHARS:
            a -= 1
        while b < n and text[b] in _KEY_CHARS:
            b += 1
        pos = b
        key = text[a:b]
        if len(key) > 100 or not is_sensitive_key(key):
            continue
        # A quoted key has a quote on both sides (``"token": …``, ``\\"token\\": …``); a quote before it alone opens a
        # string that starts with the pair (``"token='…'"``), where the key is bare.
        opened = a > 0 and text[a - 1] in "\"'" and b < n and text[b] in "\"'\\"
        tail = _QUOTED_TAIL_RE.match(text, b)
        if tail is not None and (tail.group("q1") is not None) == opened:
            if tail.group("sep") == "," and not (opened and _PAIR_OPENER_RE.search(text, max(0, a - 8), a)
                                                 and _PAIR_CLOSER_RE.match(text, tail.end())):
                continue  # a comma after a key is a pair only as a whole ( ) or [ ] of two: ("authorization", "…")
            yield key, tail.start("val"), tail.end("val"), True
            pos = tail.end()
            continue
        # A bare value: ``key=value`` anywhere, also at the start of a quoted string (``"access_token=…"``). After a
        # quoted key (``"token": 1``) the closing quote comes first, so no bare value matches there.
        tail = _BARE_TAIL_RE.match(text, b)
        if tail is not None:
            yield key, tail.start("val"), tail.end("val"), False
            pos = tail.end()


def _has_sensitive_key(text: str) -> bool:
    """True when JSON text that holds no backslash has a key :func:`is_sensitive_key` names: ``json.dumps``'s, or a
    body as its client spaced it.

    There every string sits between two quotes and a key is a string followed by ``:`` (after JSON whitespace, if
    any; a value is followed by ``,``, ``]`` or ``}``). Every sensitive key contains one of :data:`_STEMS` once
    lower-cased, and outside strings JSON has only digits, punctuation, whitespace, ``true``, ``false`` and ``null``;
    so the keys to check are the strings around the stems found, a handful where a pattern over every key would look
    at all of them.
    """
    low, exact = _lowered(text)
    if not exact:  # a character whose lower case is longer ("İ"): look at every key
        return any(map(is_sensitive_key, _JSON_KEY_RE.findall(text)))
    checked = 0  # the end of the last string looked at: a stem before it is in that string
    for i, _ in _stem_hits(low):
        if i < checked:
            continue
        end = text.find('"', i)
        if end < 0:
            return False
        if _KEY_END_RE.match(text, end) and is_sensitive_key(text[text.rfind('"', 0, i) + 1:end]):
            return True
        checked = end
    return False


#: The keys of JSON text that holds no backslash (see :func:`_has_sensitive_key`), and the closing quote of one.
_JSON_KEY_RE = re.compile(r'"([^"]*)"[ \t\n\r]*:')
_KEY_END_RE = re.compile(r'"[ \t\n\r]*:')


def _hidden(value: str) -> bool:
    """True for a value that is no secret to mask: already masked, or too short to be one."""
    return len(value) < 8 or MASK in value


def _masked(text: str, known: Iterable[str]) -> str:
    """``text`` with every registered secret in ``known`` (longest first), value under a sensitive key and token
    shape masked: what :meth:`Redactor.redact_text` gives, without its memory."""
    out = text
    for secret in known:
        if secret in out:
            out = out.replace(secret, mask(secret))
    return _mask_tokens(_mask_pairs(out))


def _mask_pairs(text: str) -> str:
    pieces: list[str] = []
    last = 0
    for _, start, end, quoted in _pairs_in_text(text):
        value = text[start:end]
        if _hidden(_split_scheme(value)[1] if quoted else value):
            continue
        pieces += [text[last:start], _mask_header_value(value) if quoted else mask(value)]
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


# ---- token shape ----------------------------------------------------------------------------------------------


def token_shape_problem(value: Any) -> str | None:
    """What makes ``value`` unusable as a token (``"holds a line break at character 57 of 120"``), or None.

    A token is one line of printable ASCII without spaces, at most :data:`TOKEN_MAX_CHARS` characters: anything else
    cannot go into an HTTP header (and would be cut or echoed by the HTTP library). The answer never quotes the value.
    """
    if not isinstance(value, str):
        return f"is not text ({type(value).__name__})"
    if not value:
        return "is empty"
    if len(value) > TOKEN_MAX_CHARS:
        return f"is {len(value)} characters long, more than any token ({TOKEN_MAX_CHARS})"
    if _TOKEN_SHAPE_RE.fullmatch(value):
        return None
    for i, ch in enumerate(value):
        if "\x21" <= ch <= "\x7e":
            continue
        if ch in "\r\n":
            what = "a line break"
        elif ch in " \t":
            what = "a space" if ch == " " else "a tab"
        elif ch < " " or ch == "\x7f":
            what = "a control character"
        else:
            what = "a non-ASCII character"
        return f"holds {what} at character {i + 1} of {len(value)}"
    return None  # pragma: no cover - the regex and the loop agree


# ---- JSON ---------------------------------------------------------------------------------------------------------


def loads_bounded(text: str) -> Any:
    """``json.loads`` that raises ``ValueError`` for invalid JSON and for data nested deeper than
    :data:`MAX_JSON_DEPTH` (which every recursive walk over it, redaction included, would overflow)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if text.count("{") + text.count("[") <= MAX_JSON_DEPTH:  # each level opens with one of them: none too deep
        return value
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError("JSON nested too deeply")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def _header_items(headers: Any) -> Iterable[tuple[str, str]]:
    if hasattr(headers, "multi_items"):
        return headers.multi_items()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def _join_repeated(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs as a dict, a repeated name's values joined by ``", "``."""
    out: dict[str, str] = {}
    for k, v in items:
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def _is_oauth_body(obj: Mapping[Any, Any]) -> bool:
    return any(k in obj for k in _OAUTH_FIELDS)


class Redactor:
    """A registry of known secrets and the redaction that uses it (thread-safe).

    Patterns and sensitive keys are the module's and shared; only the registry is the instance's own, so two parties
    in one process (the kit and its embedded simulator) never learn each other's secrets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registry: set[str] = set()
        self._sorted: list[str] | None = []
        # Texts redact_text found nothing to mask in, against the registry as it is now (see _changed) ...
        self._clean: set[str] = set()
        # ... texts the leak check found no secret in (assert_clean_parts) ...
        self._checked: set[str] = set()
        # ... and JSON texts clean_json found clean (each also in _clean); all three share one bound
        self._json_clean: set[str] = set()
        self._clean_chars = 0
        self._generation = 0
        # The last header dict learned and the last one redacted, each with the generation it holds for: a client
        # sends the same headers request after request (see :meth:`learn_headers`)
        self._learned_headers: tuple[int, tuple[tuple[str, str], ...]] | None = None
        self._redacted_headers: tuple[int, tuple[tuple[str, str], ...], dict[str, str]] | None = None
        self._resets = 0  # times the registry lost secrets (restore, forget_secrets): learning is undone then

    def __repr__(self) -> str:
        return f"<Redactor: {len(self._registry)} registered secret(s)>"

    def register_secret(self, value: str | None) -> None:
        """Remember ``value`` as secret so that every later redaction masks it, whatever its shape."""
        if value and isinstance(value, str) and len(value) >= 8 and MASK not in value:
            with self._lock:
                if value not in self._registry:
                    self._registry.add(value)
                    self._changed(None)

    def snapshot(self) -> frozenset[str]:
        """The registered secrets right now (tests restore it so that one test's secrets do not follow it around)."""
        with self._lock:
            return frozenset(self._registry)

    def restore(self, saved: frozenset[str]) -> None:
        """Put the registry back as :meth:`snapshot` found it."""
        with self._lock:
            self._registry.clear()
            self._registry.update(saved)
            self._resets += 1
            self._changed(None)

    def forget_secrets(self) -> None:
        """Clear the registry (tests, and a simulator's reset)."""
        with self._lock:
            self._registry.clear()
            self._resets += 1
            self._changed([])

    def _changed(self, sorted_: list[str] | None) -> None:
        """The registry changed (the caller holds the lock): forget its sorted form and every text known clean."""
        self._sorted = sorted_
        self._generation += 1
        self._clean, self._checked, self._json_clean = set(), set(), set()
        self._clean_chars = 0
        self._learned_headers = self._redacted_headers = None  # (they hold the header values: secrets among them)

    def _known(self) -> list[str]:
        return self._known_now()[1]

    def _known_now(self) -> tuple[int, list[str]]:
        """The registry's generation and its secrets, longest first, read together."""
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._registry, key=len, reverse=True)
            return self._generation, self._sorted

    def _remember_clean(self, text: str, generation: int, checked: bool = False) -> None:
        """Remember that ``text`` holds nothing to mask (``checked``: that the leak check found no secret in it), if
        the registry is still the one it was checked against."""
        self._remember([text], generation, "checked" if checked else "clean")

    def _remember(self, texts: Iterable[str], generation: int, kind: str) -> None:
        """Remember ``texts`` as ``clean`` (redact_text masks nothing in them), ``checked`` (the leak check found no
        secret) or ``json`` (clean_json found them clean, so clean as well), if the registry is still the one they
        were checked against."""
        with self._lock:
            if generation != self._generation:
                return  # a secret was learned meanwhile: the check is stale
            for text in texts:
                size = len(text)
                if size > CLEAN_TEXT_MAX:
                    continue
                if self._clean_chars + size > CLEAN_CHARS_MAX:
                    self._clean, self._checked, self._json_clean, self._clean_chars = set(), set(), set(), 0
                if kind == "json":
                    self._json_clean.add(text)
                (self._checked if kind == "checked" else self._clean).add(text)
                self._clean_chars += size

    # ---- learning: what goes by as a secret is registered before anything about it is written ------------------
    def learn_headers(self, headers: Any) -> None:
        """Register the secrets ``headers`` carry (dict, ``httpx.Headers`` or pairs): the value of every sensitive
        header (its auth scheme left out; each cookie of a ``cookie`` header, the cookie of a ``set-cookie``) and
        whatever a value holds under a sensitive key (a ``location`` with ``?code=…``).

        The other values are skipped when known clean (:meth:`redact_headers` remembers each value it found clean:
        there is nothing in it to learn); the rest, when ASCII, are read as one text, one per line, since no pair
        reads across a line break (see :meth:`_all_clean`), so the same values are learned.

        A dict of headers the very same as the last one learned, with no secret registered since, is not read again:
        everything it could teach is registered already (learning it again would register nothing, so it would not
        change the registry either)."""
        key = tuple(headers.items()) if type(headers) is dict else None
        learned = self._learned_headers
        if key is not None and learned is not None and learned[0] == self._generation and learned[1] == key:
            return
        resets = self._resets
        self._learn_headers(headers)
        if key is not None:
            with self._lock:  # (a secret registered meanwhile takes nothing away; a reset does)
                if resets == self._resets:
                    self._learned_headers = (self._generation, key)

    def _learn_headers(self, headers: Any) -> None:
        plain: list[str] = []
        for name, value in _header_items(headers):
            if not isinstance(value, str):
                continue
            if not (isinstance(name, str) and is_sensitive_key(name)):
                plain.append(value)
                continue
            self.register_secret(_split_scheme(value.strip())[1])
            lower = name.lower()
            if "set-cookie" in lower:
                self.register_secret(value.split(";", 1)[0].partition("=")[2].strip().strip('"'))
            elif "cookie" in lower:
                for part in value.split(";"):
                    self.register_secret(part.partition("=")[2].strip().strip('"'))
            self.learn_text(value)
        fresh = [value for value in plain if value not in self._clean]  # (a clean value has nothing to learn)
        joined = "\n".join(fresh)
        for text in [joined] if joined.isascii() else fresh:
            self.learn_text(text)

    def learn_text(self, text: str) -> None:
        """Register every value ``text`` holds under a sensitive key (``access_token=…``, ``"code": "…"``)."""
        if not isinstance(text, str) or len(text) < 8:
            return
        # Safe shortcut: a text redact_text found clean against the registry as it is now (see redact_text) holds
        # no registered secret and no pair whose value is not hidden; every value this loop would register is then
        # hidden, and register_secret ignores hidden values (too short, or masked). So nothing would be learned.
        if text in self._clean:
            return
        for _, start, end, quoted in _pairs_in_text(text):
            value = text[start:end]
            self.register_secret(_split_scheme(value)[1] if quoted else value)

    def learn_obj(self, obj: Any) -> None:
        """Register the secrets in JSON-like data: every string under a sensitive key, nested ones included when they
        look like tokens (``code`` counts in an OAuth body only: elsewhere it may be a tool's parameter)."""
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                oauth = _is_oauth_body(item)
                for k, v in item.items():
                    if isinstance(k, str) and is_sensitive_key(k) and (oauth or not _is_weak_key(k)):
                        self._register_leaves(v)
                    elif isinstance(v, (Mapping, list, tuple)):
                        stack.append(v)
            elif isinstance(item, (list, tuple)):
                stack.extend(v for v in item if isinstance(v, (Mapping, list, tuple)))

    def _register_leaves(self, value: Any) -> None:
        if isinstance(value, str):
            self.register_secret(_split_scheme(value.strip())[1])
            return
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if token_shape_problem(item) is None:
                    self.register_secret(item)
            elif isinstance(item, Mapping):
                stack.extend(item.values())
            elif isinstance(item, (list, tuple)):
                stack.extend(item)

    # ---- redaction ---------------------------------------------------------------------------------------------
    def redact_text(self, text: str) -> str:
        """Mask every secret found in free text (log lines, exception messages, HTML, Markdown, notebook outputs,
        URLs): registered secrets, values under sensitive keys, and token shapes."""
        if len(text) < 8:  # shorter than any secret the registry keeps or the patterns match
            return text
        # Safe shortcut: the answer depends only on the text and the registry, and a text is in _clean only when it
        # was checked against the registry as it is now (any change empties _clean, and a check that raced with a
        # change is not remembered). Clean text comes back unchanged, so a hit returns what the work would. Only
        # texts with nothing to mask are kept, so the set holds no secret. What it saves: the second pass over data
        # redacted once already (an observation, a record), and the strings every cell repeats (headers, models).
        if text in self._clean:
            return text
        generation, known = self._known_now()
        out = _masked(text, known)
        if out == text:
            self._remember_clean(text, generation)
            return text
        return out

    def redact_obj(self, obj: Any) -> Any:
        """A redacted deep copy of JSON-like data: keys scanned like text (a secret may be a key), values under
        sensitive keys masked (all the strings under them but for ``code``, which may be an ordinary parameter),
        every other string scanned."""
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                key = self.redact_text(k) if isinstance(k, str) else k
                if isinstance(k, str) and is_sensitive_key(k):
                    if isinstance(v, str):
                        out[key] = _mask_header_value(v)
                        continue
                    if isinstance(v, (dict, list, tuple)) and not _is_weak_key(k):
                        out[key] = self._mask_leaves(v)
                        continue
                out[key] = self.redact_obj(v)
            return out
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, str):
            return self.redact_text(obj)
        return obj

    def redact_json(self, obj: Any) -> str:
        """``json.dumps(self.redact_obj(obj), ensure_ascii=False, default=str)``: the JSON text of JSON-like data,
        redacted, as record lines hold it. Found as one text where that gives the same answer, which is several
        times faster than walking the data (a run writes one per cell).

        Why the shortcut is the same: when the text has no backslash, every string of the data (key or value) is in
        it verbatim between quotes, and every key is a string followed by ``": "``. If no key is sensitive, the walk
        would only scan each string as text; scanning the whole text finds whatever the walk would (a match cannot
        cross a quote: quotes are no token or value character), so when it finds nothing to mask, the walk would
        mask nothing either and the text is the answer. Anything else (an escaped character, a sensitive key, a
        masked match) takes the walk.
        """
        text = self.clean_json(obj)
        return text if text is not None else _JSON.encode(self.redact_obj(obj))

    def clean_json(self, obj: Any) -> str | None:
        """``json.dumps(obj, ensure_ascii=False, default=str)`` when that text shows :meth:`redact_obj` would change
        nothing in ``obj`` and :meth:`learn_obj` would learn nothing from it (the reasoning is in
        :meth:`redact_json`); None when only the walk can tell."""
        found = self.clean_json_all([obj])
        return found[0] if found is not None else None

    def clean_json_all(self, objs: Iterable[Any]) -> list[str] | None:
        """``[clean_json(o) for o in objs]`` when every one of them is clean, None when one is not: their texts are
        scanned as one (:meth:`_all_clean`), which costs one scan's overhead for all of them (a record's parts). A
        text found clean is remembered, so a text met again (a request's fields, a cell's levels) is not scanned
        again."""
        objs = list(objs)
        texts = [_JSON.encode(obj) for obj in objs]
        # an object's members are scanned without their braces (no pattern holds a brace), so that a writer can join
        # them into a larger object with nothing scanned twice (lanelab.runs.RunWriter.cell_line)
        inners = [text[1:-1] if isinstance(obj, dict) else text for obj, text in zip(objs, texts)]
        return texts if self._all_clean(inners, json=True) else None

    def _all_clean(self, texts: list[str], json: bool = False) -> bool:
        """True when :meth:`redact_text` would mask nothing in any of ``texts`` (``json``: JSON texts, however spaced,
        and :meth:`clean_json` would find each clean: no backslash, no sensitive key either). Texts known clean
        already are not looked at again; the others are scanned as one text, one per line, and each is remembered
        clean.

        Why one text answers for each: no key, value, token or pair pattern reads across a line break (in JSON with
        no backslash, a line break is outside every string), so whatever one text holds, the joined text holds at
        the same place (a registered secret is in it as well). This needs the joined text's lower case to keep its
        length (it does unless a character such as "İ" lowers to two): then each text's lower case is its part of
        the joined one. Otherwise the texts are looked at one by one."""
        todo = [text for text in texts if text not in (self._json_clean if json else self._clean)]
        if not todo:
            return True
        joined = "\n".join(todo)
        if len(todo) > 1 and not _lowered(joined)[1]:
            return all(self._all_clean([text], json) for text in todo)
        generation, known = self._known_now()
        if json and ("\\" in joined or _has_sensitive_key(joined)):
            return False
        if _masked(joined, known) != joined:
            return False
        self._remember(todo, generation, "json" if json else "clean")
        return True

    def _mask_leaves(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {self.redact_text(k) if isinstance(k, str) else k: self._mask_leaves(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self._mask_leaves(v) for v in obj]
        if isinstance(obj, str):
            return _mask_header_value(obj)
        return obj

    def redact_headers(self, headers: Any) -> dict[str, str]:
        """Headers as a plain dict with secret values masked (accepts dicts, httpx.Headers or pairs).

        Values under a sensitive name are masked whole. The others are looked at together (:meth:`_all_clean`: those
        not known clean already, as one text), and kept as they are when nothing is found; anything found takes the
        scan value by value. The answer for a dict the very same as the last one, against the same registry, is the
        one given then (a copy)."""
        key = tuple(headers.items()) if type(headers) is dict else None
        last = self._redacted_headers
        if key is not None and last is not None and last[0] == self._generation and last[1] == key:
            return dict(last[2])
        generation = self._generation
        out = self._redact_headers(headers)
        if key is not None:
            with self._lock:
                if generation == self._generation:  # (no secret was learned meanwhile)
                    self._redacted_headers = (generation, key, dict(out))
        return out

    def _redact_headers(self, headers: Any) -> dict[str, str]:
        items = [(k, v, is_sensitive_key(k)) for k, v in _header_items(headers)]
        plain = [v for _, v, sensitive in items if not sensitive]
        keep = self._all_clean(plain)
        if keep and len(plain) == len(items) and type(headers) is dict:
            return dict(headers)  # (a dict's names are unique and none is sensitive: nothing to join or mask)
        return _join_repeated([(k, _mask_header_value(v) if sensitive else v if keep else self.redact_text(v))
                               for k, v, sensitive in items])

    def learn_body(self, raw: bytes, content_type: str = "", *, limit: int = BODY_RECORD_LIMIT) -> None:
        """Register the secrets a body carries: JSON (:meth:`learn_obj`), form fields (every value of a sensitive
        field) or text (``access_token=…`` pairs, :meth:`learn_text`). Only the first ``limit`` bytes are read."""
        if raw:
            self._parse_and_learn(raw[:limit].decode("utf-8", errors="replace"), content_type)

    def _parse_and_learn(self, text: str, content_type: str) -> tuple[str, Any]:
        """``("form", fields)``, ``("json", data)`` or ``("text", text)``, each learned; ``("clean json", data)`` for
        JSON with nothing to learn and nothing to mask (:meth:`clean_json`)."""
        if "x-www-form-urlencoded" in content_type.lower():
            pairs = parse_qsl(text, keep_blank_values=True)
            fields = dict(pairs)
            self.learn_obj(fields)
            for k, v in pairs:  # a field sent twice: every value is learned (the record keeps the last)
                if is_sensitive_key(k) and (not _is_weak_key(k) or _is_oauth_body(fields)):
                    self.register_secret(v)
            return "form", fields
        try:
            data = loads_bounded(text)
        except ValueError:
            self.learn_text(text)
            return "text", text
        # nothing to learn, and nothing the walk would mask: found in the text as it came (with no backslash, each of
        # the data's strings is in it verbatim, see redact_json), or else in the text of the data
        if self._all_clean([text], json=True) or self.clean_json(data) is not None:
            return "clean json", data
        self.learn_obj(data)
        return "json", data

    def redact_body(self, raw: bytes, content_type: str = "", *, limit: int = BODY_RECORD_LIMIT,
                    size: int | None = None, sha256: str | None = None) -> dict[str, Any]:
        """A body for a record, its secrets learned first: ``{"bytes", "sha256"}`` plus ``json`` (parsed, redacted),
        ``form`` (form fields, redacted) or ``text`` (redacted).

        ``raw`` may be only the first bytes of the body: ``size`` and ``sha256`` then describe the whole of it. A body
        longer than ``limit`` is kept as its first ``limit`` bytes, as text, with ``"truncated": true`` (a JSON prefix
        is no JSON); nothing larger is ever decoded or parsed.
        """
        total = len(raw) if size is None else size
        out: dict[str, Any] = {"bytes": total, "sha256": sha256 or hashlib.sha256(raw).hexdigest()}
        if not raw:
            out["json"] = None
            return out
        if total > limit or len(raw) > limit:
            text = raw[:limit].decode("utf-8", errors="replace")
            self.learn_text(text)
            out.update(truncated=True, recorded_bytes=min(len(raw), limit), text=self.redact_text(text))
            return out
        kind, value = self._parse_and_learn(raw.decode("utf-8", errors="replace"), content_type)
        if kind == "clean json":
            out["json"] = value
        else:
            out[kind] = self.redact_text(value) if kind == "text" else self.redact_obj(value)
        return out

    # ---- checks ------------------------------------------------------------------------------------------------
    def find_secrets(self, text: str, extra: Iterable[str] = ()) -> list[str]:
        """Masked descriptions of the secrets still present in ``text`` (empty when clean)."""
        hits: list[str] = []
        for secret in [*self._known(), *extra]:
            if secret and secret in text:
                hits.append(mask(secret))
        for m in _token_matches(text):
            secret = m.group("secret") or m.group("jwt") or m.group("bsecret") or ""
            if MASK not in secret and len(secret) > 8:
                hits.append(_mask_match(m))
        for key, start, end, quoted in _pairs_in_text(text):
            value = text[start:end]
            if not _hidden(_split_scheme(value)[1] if quoted else value):
                hits.append(f"{key}={mask(value)}")
        return hits

    def assert_clean(self, text: str, where: str = "output", extra: Iterable[str] = ()) -> None:
        """Raise :class:`SecretLeak` (naming only masked forms) when ``text`` still holds a secret."""
        _refuse(self.find_secrets(text, extra), where)

    def assert_clean_parts(self, parts: Iterable[str], where: str = "output") -> None:
        """:meth:`assert_clean` of ``"".join(parts)``, checking each part on its own: a part this registry has
        found clean already (:meth:`redact_text` left it as it was, or this check found no secret in it) is not
        scanned again, and a part found clean now is remembered as such (a writer's punctuation, a request's
        fields that many cells share).

        For parts cut where no pattern can cross, i.e. between complete JSON values and the punctuation and
        ordinary keys around them (a token or a value ends at a quote, a brace or a space): there, whatever the
        whole would show, one of its parts shows. A registered secret may hold any character, so those are looked
        for in the whole text too.
        """
        parts = list(parts)
        whole = "".join(parts)
        generation, known = self._known_now()
        hits = [mask(secret) for secret in known if secret in whole]
        for part in parts:
            if part in self._clean or part in self._checked:
                continue
            found = self.find_secrets(part)
            if found:
                hits += found
            else:
                self._remember_clean(part, generation, checked=True)
        _refuse(hits, where)


def _refuse(hits: list[str], where: str) -> None:
    """Raise :class:`SecretLeak` for ``hits`` (masked forms), if any."""
    if hits:
        shown = sorted(set(hits))[:3]
        raise SecretLeak(
            f"Refusing to write {where}: it still contains {len(hits)} secret(s) "
            f"({', '.join(shown)}). Pass the content through lanelab.redact before writing.", shown)


#: The kit's own registry: what the module-level functions below use.
_default = Redactor()

register_secret = _default.register_secret
snapshot = _default.snapshot
restore = _default.restore
forget_secrets = _default.forget_secrets
learn_headers = _default.learn_headers
learn_text = _default.learn_text
learn_obj = _default.learn_obj
learn_body = _default.learn_body
redact_text = _default.redact_text
redact_obj = _default.redact_obj
redact_json = _default.redact_json
clean_json = _default.clean_json
clean_json_all = _default.clean_json_all
redact_headers = _default.redact_headers
redact_body = _default.redact_body
find_secrets = _default.find_secrets
assert_clean = _default.assert_clean
assert_clean_parts = _default.assert_clean_parts


# ---- logging ------------------------------------------------------------------------------------------------------

#: Third-party loggers that print URLs (with ``?code=``) and response headers (with ``location``) at INFO and DEBUG:
#: quiet (WARNING) unless the user sets a level, and redacted whatever the level.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack")
#: Loggers whose records are redacted where they are made (a filter on the logger itself).
GUARDED_LOGGERS = (*QUIET_LOGGERS, "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
                   "httpcore.socks", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "lanelab",
                   "lanelab.auth", "anthropic", "anthropic._base_client", "asyncio")


def _redact_arg(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = str(value)
    clean = redactor.redact_text(text)
    return value if clean == text else clean


class LogFilter(logging.Filter):
    """Redacts each record it sees, in place, and lets it through: message, arguments, exception and stack text.

    Arguments are redacted one by one (formatters that read them, like uvicorn's access log, keep working); when the
    formatted message still holds a secret split between message and arguments (``"code=%s"``), the record carries
    the redacted message and no arguments.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or _default

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a, r) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redact_arg(v, r) for k, v in record.args.items()}
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a broken format string is the handler's to report
            return True
        clean = r.redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = r.redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact_text(record.stack_info)
        return True


_LOG_FILTER = LogFilter()
_guard_lock = threading.Lock()


def guard_logging() -> None:
    """Make the kit's logging safe; idempotent, cheap, called by the HTTP client factory, the CLI and the servers.

    - ``httpx``, ``httpcore`` and ``hpack`` log at WARNING unless someone set their level (their INFO line prints the
      request URL, ``?code=…`` included; their DEBUG lines print every response header, ``location`` included);
    - a :class:`LogFilter` sits on each of :data:`GUARDED_LOGGERS`, so their records are redacted where they are made
      whoever handles them, and on every handler the root logger has now.
    """
    with _guard_lock:
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)
        for name in GUARDED_LOGGERS:
            logger = logging.getLogger(name)
            if _LOG_FILTER not in logger.filters:
                logger.addFilter(_LOG_FILTER)
        for handler in logging.getLogger().handlers:
            if _LOG_FILTER not in handler.filters:
                handler.addFilter(_LOG_FILTER)
