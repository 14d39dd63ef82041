"""The simulator's request log: one redacted entry per request, kept in memory for ``GET /_sim/requests``.

An entry is redacted when it is made (with the simulator's own :class:`~lanelab.redact.Redactor`), so the log never
holds a secret; large bodies are cut to a preview.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any
from urllib.parse import parse_qsl

from lanelab.redact import Redactor

__all__ = ["LOG_BODY_LIMIT", "LOG_LIMIT", "RequestLog", "log_body", "log_entry"]

#: The request log keeps at most this many entries (oldest dropped), so a long-running simulator stays small.
LOG_LIMIT = 10_000
#: Request bodies longer than this (serialised) are truncated in the log.
LOG_BODY_LIMIT = 16_000


def log_body(raw: bytes, content_type: str, redactor: Redactor) -> Any:
    """A request body fit for the log: parsed and redacted, truncated when large (``None`` when empty)."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    body: Any
    if "json" in content_type:
        try:
            body = redactor.redact_obj(json.loads(text))
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read: kept as redacted text
            body = redactor.redact_text(text)
    elif "x-www-form-urlencoded" in content_type:
        body = redactor.redact_obj(dict(parse_qsl(text, keep_blank_values=True)))
    else:
        body = redactor.redact_text(text)
    dumped = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if len(dumped) > LOG_BODY_LIMIT:
        return {"truncated": True, "chars": len(dumped), "preview": redactor.redact_text(dumped[:LOG_BODY_LIMIT])}
    return body


def log_entry(redactor: Redactor, *, started: float, method: str, path: str, query_string: bytes,
              headers: dict[str, str], body: bytes, status: int | None, meta: dict[str, Any], request_id: str,
              faults: list[str]) -> dict[str, Any]:
    """One log entry (without its ``seq``), every part redacted: what came in, and what the simulator decided."""
    return {
        "time": started, "method": method, "path": path,
        "query": redactor.redact_obj(dict(parse_qsl(query_string.decode("latin-1")))),
        "headers": redactor.redact_headers(headers),
        "body": log_body(body, headers.get("content-type", ""), redactor),
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
