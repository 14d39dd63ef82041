"""What a response said, as an :class:`~lanelab.wire.spec.Observation`: status, redacted headers and body, the
error's type, message and code, the unified rate-limit headers, the event stream's shape, and whatever the kit's data
files do not know (flagged by :mod:`lanelab.wire.drift`). Shared by :mod:`lanelab.wire.send`, the capture proxy and
tests; it never raises for a bad body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from lanelab import redact
from lanelab.wire import drift
from lanelab.wire.spec import BODY_SNIPPET, Observation
from lanelab.wire.unified import parse_unified

__all__ = ["observe_response", "parse_sse"]


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Server-sent events as ``(event, data)`` pairs; data is parsed JSON where it is JSON."""
    events: list[tuple[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data_lines = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].lstrip())
        if not data_lines and name == "message":
            continue
        raw = "\n".join(data_lines)
        try:
            data: Any = redact.loads_bounded(raw)
        except ValueError:
            data = raw
        events.append((name, data))
    return events


def _fill_error(obs: Observation, body: Any) -> None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        obs.error_type = str(err.get("type") or "unknown")
        obs.error_message = str(err.get("message") or "")
        details = err.get("details") if isinstance(err.get("details"), dict) else body.get("details")
        if isinstance(details, dict) and details.get("error_code"):
            obs.error_code = str(details["error_code"])
        obs.request_id = obs.request_id or body.get("request_id")


def observe_response(status: int, headers: Mapping[str, str], content: bytes, latency_ms: float,
                     endpoint: str | None = None) -> Observation:
    """Turn a raw response into an :class:`Observation` (shared by ``send``, the capture proxy and tests).

    ``endpoint`` is the request path; with it the usage endpoint's body is checked for fields the kit does not know.
    Whatever the response carried that the data files do not know is listed in ``Observation.unknown``."""
    obs = _observe(status, headers, content, latency_ms)
    obs.endpoint = endpoint
    obs.unknown = drift.scan(obs)
    return obs


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased, values as text, a repeated header's values joined by ``", "`` (what
    ``httpx.Headers.items()`` gives, read straight from its raw pairs: this runs once per response)."""
    if isinstance(headers, httpx.Headers):
        encoding = headers.encoding
        out: dict[str, str] = {}
        for raw_name, raw_value in headers.raw:
            name, value = raw_name.decode(encoding).lower(), raw_value.decode(encoding)
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _observe(status: int, headers: Mapping[str, str], content: bytes, latency_ms: float) -> Observation:
    lower = _lower_headers(headers)
    obs = Observation(status=status, headers=redact.redact_headers(lower), latency_ms=round(latency_ms, 2))
    obs.request_id = lower.get("request-id")
    obs.unified = parse_unified(lower)
    text = content.decode("utf-8", errors="replace")
    ctype = lower.get("content-type", "")
    if "text/event-stream" in ctype:
        events = parse_sse(text)
        obs.stream_events = [name for name, _ in events]
        final: dict[str, Any] = {}
        for name, data in events:
            if name == "message_start" and isinstance(data, dict):
                final = dict(data.get("message") or {})
            elif name == "error":
                _fill_error(obs, data)
        if obs.error_type is None and status >= 400:
            obs.error_type = f"http_{status}"
            obs.error_message = f"HTTP {status} with an event stream that carried no error event."
        elif obs.error_type is None and "message_stop" not in obs.stream_events:
            obs.error_type = "stream_truncated"
            obs.error_message = "The event stream ended before message_stop."
        obs.body = redact.redact_obj(final) if final else None
        return obs
    try:
        body: Any = redact.loads_bounded(text) if text.strip() else None
    except ValueError:
        body = redact.redact_text(text[:BODY_SNIPPET])
        if status >= 400 or "json" in ctype:
            obs.error_type = obs.error_type or "malformed_response"
            obs.error_message = f"Response body is not valid JSON (content-type {ctype or 'missing'})."
    obs.body = redact.redact_obj(body)
    if status >= 400 or (isinstance(body, dict) and body.get("type") == "error"):
        _fill_error(obs, body)
        if obs.error_type is None and status >= 400:
            obs.error_type = f"http_{status}"
            obs.error_message = redact.redact_text(text[:200])
    return obs
