"""The simulator's request log: one redacted entry per request, kept in memory for ``GET /_sim/requests``.

An entry is redacted when it is made, with the simulator's own :class:`~lanelab.redact.Redactor` and the kit's rules:
the secrets a request carries (its credential headers, cookies, sensitive query parameters and body fields) are
learned first, then path, query, headers and body are redacted, so the log never holds a secret, of whatever shape.
Only a bounded prefix of a body is ever parsed (:data:`LOG_PARSE_LIMIT`); larger bodies are cut to a preview, with
their size and SHA-256.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

from lanelab.redact import BODY_RECORD_LIMIT, Redactor

__all__ = ["LOG_BODY_LIMIT", "LOG_LIMIT", "LOG_PARSE_LIMIT", "LOG_WHOLE_BYTES", "RequestLog", "log_body", "log_entry"]

#: The request log keeps at most this many entries (oldest dropped), so a long-running simulator stays small.
LOG_LIMIT = 10_000
#: Request bodies longer than this (serialised) are truncated in the log.
LOG_BODY_LIMIT = 16_000
#: At most this much of a request body is kept for its log entry and parsed (the rest is counted and hashed only).
LOG_PARSE_LIMIT = BODY_RECORD_LIMIT
#: A body of at most this many bytes is logged whole without being measured: what it parses to, redacted, takes at
#: most 14 characters of JSON per byte (see :func:`log_body`), so it cannot pass :data:`LOG_BODY_LIMIT`.
LOG_WHOLE_BYTES = LOG_BODY_LIMIT // 16
#: ``json.dumps(value, ensure_ascii=False)``, with one encoder made once.
_JSON = json.JSONEncoder(ensure_ascii=False)


def log_body(raw: bytes, content_type: str, redactor: Redactor, *, size: int | None = None,
             sha256: str | None = None) -> Any:
    """A request body fit for the log: parsed and redacted, truncated to a preview when large (``None`` when empty).

    ``raw`` may be the body's first bytes only; ``size`` and ``sha256`` then describe the whole body. A truncated
    body is ``{"truncated": true, "chars", "bytes", "sha256", "preview"}``.

    A body of at most :data:`LOG_WHOLE_BYTES` is never truncated, so it is not written out as JSON to be measured.
    Its JSON is at most 14 characters a byte: a one-byte form body ``\x01`` is ``{"\u0001": ""}``; in a JSON body a
    string's characters are written no longer than the body had them (an escape at most as long), a masked string
    grows by at most one character (an empty secret becomes ``…``), a number by at most 4.5 times (``1e15`` is
    ``1000000000000000.0``), and each ``:`` and ``,`` gains a space; a text body only shrinks when masked.
    """
    if not raw and not size:
        return None
    rec = redactor.redact_body(raw, content_type, limit=LOG_PARSE_LIMIT, size=size, sha256=sha256)
    if rec.get("truncated"):
        return {"truncated": True, "chars": rec["bytes"], "bytes": rec["bytes"], "sha256": rec["sha256"],
                "preview": rec["text"][:LOG_BODY_LIMIT]}
    body = rec["json"] if "json" in rec else rec["form"] if "form" in rec else rec.get("text")
    if rec["bytes"] <= LOG_WHOLE_BYTES:
        return body
    dumped = body if isinstance(body, str) else _JSON.encode(body)
    if len(dumped) > LOG_BODY_LIMIT:
        return {"truncated": True, "chars": len(dumped), "bytes": rec["bytes"], "sha256": rec["sha256"],
                "preview": dumped[:LOG_BODY_LIMIT]}
    return body


def log_entry(redactor: Redactor, *, started: float, method: str, path: str, query_string: bytes,
              headers: dict[str, str], body: bytes, status: int | None, meta: dict[str, Any], request_id: str,
              faults: list[str], body_size: int | None = None, body_sha256: str | None = None,
              body_refused: str | None = None) -> dict[str, Any]:
    """One log entry (without its ``seq``), every part redacted: what came in, and what the simulator decided.

    ``body`` may be the first bytes of the body only (``body_size`` and ``body_sha256`` describe all of it);
    ``body_refused`` says why a body was not read at all (it was over the size limit).
    """
    query = query_string.decode("latin-1")
    redactor.learn_headers(headers)
    redactor.learn_text(query)
    redactor.learn_text(path)
    if body_refused is not None:
        logged_body: Any = {"bytes": body_size, "refused": body_refused}
    else:
        logged_body = log_body(body, headers.get("content-type", ""), redactor, size=body_size, sha256=body_sha256)
    return {
        "time": started, "method": method, "path": redactor.redact_text(path),
        "query": redactor.redact_obj(dict(parse_qsl(query))) if query else {},
        "headers": redactor.redact_headers(headers),
        "body": logged_body,
        "status": status, "rule": meta.get("rule"), "outcome": meta.get("outcome"), "lane": meta.get("lane"),
        "request_id": request_id, "faults": faults,
    }


class RequestLog:
    """The entries, numbered by a sequence that starts at 1 (and again at 1 after :meth:`reset`). Thread-safe."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock or threading.RLock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, entry: dict[str, Any]) -> int:
        """Append an (already redacted) entry and return its sequence number."""
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})
            if len(self._entries) > LOG_LIMIT:
                del self._entries[: len(self._entries) - LOG_LIMIT]
            return self._seq

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Copies of the entries after sequence number ``seq`` (all of them for 0)."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._entries if e["seq"] > seq]

    def clear(self) -> None:
        """Drop the entries; numbering goes on (a client polling with ``since`` misses nothing new)."""
        with self._lock:
            self._entries.clear()

    def reset(self) -> None:
        """Drop the entries and start numbering at 1 again, as a fresh simulator would."""
        with self._lock:
            self._entries.clear()
            self._seq = 0
