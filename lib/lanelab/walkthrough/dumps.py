"""Hermes' own request dumps (``request_dump_*.json``) read as a :class:`RequestSpec`, with what a dump cannot say.

The format, as the Hermes source writes it (NousResearch/hermes-agent: ``AIAgent._dump_api_request_debug`` in
``run_agent.py`` up to the 0.14 releases, then ``dump_api_request_debug`` in ``agent/agent_runtime_helpers.py``): one
JSON object in ``<logs_dir>/request_dump_<session_id>_<YYYYmmdd_HHMMSS_ffffff>.json`` (``logs_dir`` is
``~/.hermes/sessions``), written after a non-retryable client error (``reason`` ``non_retryable_client_error``), after
exhausted retries (``max_retries_exhausted``), or before every call with ``HERMES_DUMP_REQUESTS=1`` (``preflight``)::

    {"timestamp": ISO time, "session_id": …, "reason": …,
     "request": {"method": "POST",
                 "url": base URL + "/chat/completions"  (later versions: "/responses" or "/messages" by API mode),
                 "headers": {"Authorization": "Bearer <key masked to 8+4 characters, or None>",
                             "Content-Type": "application/json"},
                 "body": the SDK call's keyword arguments, minus ``timeout`` and None values},
     "error": {"type", "message", "status_code", "request_id", "code", "param", "body", "response_status",
               "response_text"}   (only when an error is passed)}

What a dump does NOT record, so lint never judges it from one (references/hermes.md F1, hermes-agent #91319): the wire
path (older versions write ``/chat/completions`` whatever the API mode, so real ``/v1/messages`` calls dump with that
URL), the auth header style (the Authorization line is synthesised from ``client.api_key``, which is None for an OAuth
``auth_token``: hence "Bearer None"), and the headers set on the SDK client (``anthropic-beta``, ``user-agent``,
``x-app``). Per-call ``extra_headers`` (fast mode's beta list) are in the body and are kept; ``extra_body`` is merged
into the body as the SDK does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lanelab import redact
from lanelab.errors import InputError, NotFound
from lanelab.wire.spec import RequestSpec

#: Body keys that are SDK call options, not JSON fields.
SDK_OPTION_KEYS = frozenset({"extra_headers", "extra_body", "extra_query", "timeout"})
#: The parts of a request a Hermes dump does not record (names as in lanelab.walkthrough.lint.PARTS' needs).
UNRECORDED = frozenset({"path", "auth", "headers"})
#: At most this much of a recorded error message is kept.
ERROR_CHARS = 300


class DumpError(InputError):
    """A file that is not a readable Hermes request dump."""

    hint = ("Pass a request_dump_*.json file as Hermes writes it (~/.hermes/sessions/; HERMES_DUMP_REQUESTS=1 writes "
            "one before every call).")


@dataclass(frozen=True)
class HermesDump:
    """One Hermes request dump: the request as a spec, plus what the dump says and does not say about the wire."""

    path: Path
    spec: RequestSpec
    url: str
    reason: str | None
    timestamp: str | None
    body_shape: str
    authorization: str
    unrecorded: frozenset[str] = UNRECORDED
    recorded_headers: frozenset[str] = frozenset()
    error: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def url_path(self) -> str:
        """The path of the dumped URL (may be a dump artifact; see :attr:`notes`)."""
        return urlsplit(self.url).path or "/"


def is_hermes_dump(obj: Any) -> bool:
    """True when ``obj`` (parsed JSON) has the shape of a Hermes request dump."""
    request = obj.get("request") if isinstance(obj, Mapping) else None
    return (isinstance(request, Mapping) and isinstance(request.get("body"), Mapping)
            and isinstance(request.get("url"), str) and "record" not in obj)


def _body_shape(body: Mapping[str, Any]) -> str:
    tools = t if isinstance(t := body.get("tools"), list) else []
    if "system" in body or any(isinstance(t, Mapping) and "input_schema" in t for t in tools):
        return "anthropic"
    messages = m if isinstance(m := body.get("messages"), list) else []
    if any(isinstance(t, Mapping) and "function" in t for t in tools) or any(
            isinstance(m, Mapping) and m.get("role") in ("system", "developer") for m in messages):
        return "openai"
    return "anthropic"


def _authorization(headers: Any) -> str:
    """How the dump's Authorization line looks, never its value: ``None``, ``masked`` or ``absent``."""
    if not isinstance(headers, Mapping):
        return "absent"
    value = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
    if not isinstance(value, str):
        return "absent"
    return "None" if value.strip().lower() in ("bearer none", "bearer", "none") else "masked"


def _error_summary(error: Any) -> dict[str, Any] | None:
    if not isinstance(error, Mapping):
        return None
    out: dict[str, Any] = {}
    status = error.get("status_code", error.get("response_status"))
    if isinstance(status, int):
        out["status"] = status
    body = error.get("body")
    inner = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(inner, Mapping):
        out["type"] = str(inner.get("type") or "")
        out["message"] = str(inner.get("message") or "")
        details = inner.get("details")
        if isinstance(details, Mapping) and details.get("error_code"):
            out["error_code"] = str(details["error_code"])
    else:
        out["type"] = str(error.get("type") or "")
        out["message"] = str(error.get("message") or "")
    if isinstance(error.get("request_id"), str):
        out["request_id"] = error["request_id"]
    out["message"] = redact.redact_text(out.get("message", ""))[:ERROR_CHARS]
    return out


def parse_dump(obj: Any, path: str | Path = "<dump>") -> HermesDump:
    """A parsed dump object as a :class:`HermesDump`. Raises :class:`DumpError` when ``obj`` is not one."""
    path = Path(path)
    if not isinstance(obj, Mapping):
        raise DumpError(f"{path} is JSON but not an object, so not a Hermes request dump.")
    request = obj.get("request")
    if not isinstance(request, Mapping):
        raise DumpError(f"{path} has no 'request' object, so it is not a Hermes request dump.")
    url, body = request.get("url"), request.get("body")
    if not isinstance(url, str) or not isinstance(body, Mapping):
        missing = "request.url" if not isinstance(url, str) else "request.body (an object)"
        raise DumpError(f"{path} looks like a Hermes request dump but lacks {missing}.")
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        raise DumpError(f"{path}: the dumped body has no model or messages list, so it is not an inference request.")
    method = m if isinstance(m := request.get("method"), str) else "POST"

    clean = {k: copy.deepcopy(v) for k, v in body.items() if k not in SDK_OPTION_KEYS}
    extra_body = body.get("extra_body")
    if isinstance(extra_body, Mapping):
        clean.update(copy.deepcopy(dict(extra_body)))
    headers: dict[str, str] = {}
    extra_headers = body.get("extra_headers")
    if isinstance(extra_headers, Mapping):
        for name, value in extra_headers.items():
            name = str(name).lower()
            if value is not None and not redact.is_sensitive_key(name):
                headers[name] = str(value)
    shape = _body_shape(clean)
    url_path = urlsplit(url).path or "/"
    notes = []
    if shape == "anthropic":
        spec_path = "/v1/messages"
        notes.append(f"The dump's URL says {url_path}; Hermes writes that URL whatever it really called (older "
                     "versions always write /chat/completions), and an Anthropic-shaped body like this one goes to "
                     "POST /v1/messages through the SDK (references/hermes.md F1, hermes-agent #91319). Capture the "
                     "wire ('python -m lanelab capture') to see the real path.")
    else:
        spec_path = url_path
        notes.append(f"The dumped body is OpenAI-shaped (chat completions) and the URL says {url_path}: this request "
                     "went through an OpenAI-compatible endpoint, not the Anthropic Messages API.")
    auth = _authorization(request.get("headers"))
    if auth == "None":
        notes.append("The dump's Authorization line says 'Bearer None': Hermes fills it from client.api_key, which is "
                     "None for an OAuth token (hermes-agent #91319, #12905, #23370). It is not what was sent.")
    notes.append("A dump does not record the auth header style or the headers set on the SDK client "
                 "(anthropic-beta, user-agent, x-app); entries that need them cannot be judged from it."
                 + (f" Per-call headers recorded: {', '.join(sorted(headers))}." if headers else ""))
    error = _error_summary(obj.get("error"))
    spec = RequestSpec(method=method.upper(), path=spec_path, headers=headers, body=redact.redact_obj(clean),
                       auth="bearer")
    return HermesDump(path=path, spec=spec, url=redact.redact_text(url), reason=_str_or_none(obj.get("reason")),
                      timestamp=_str_or_none(obj.get("timestamp")), body_shape=shape, authorization=auth,
                      recorded_headers=frozenset(headers), error=error, notes=tuple(notes))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_json_file(path: str | Path, what: str, error: type[InputError] = DumpError) -> Any:
    """The parsed JSON at ``path``; ``error`` (one clear line) when it is missing, unreadable or not JSON."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"No file at {path}.", "Check the path.")
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise error(f"{path} is a directory, not a {what}.") from None
    except OSError as exc:
        raise error(f"Cannot read {path} ({exc.strerror or exc}).") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text, so not a {what}.") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{path} is JSON nested too deeply to be a {what}.") from None
    except ValueError as exc:
        raise error(f"{path} is not valid JSON ({exc}), so not a {what}.") from None


def load_dump(path: str | Path) -> HermesDump:
    """The Hermes request dump at ``path``.

    Returns a :class:`HermesDump` (``.spec`` is the request; ``.notes`` say what the dump does not record).
    Raises :class:`~lanelab.errors.NotFound` for a missing file and :class:`DumpError` for anything that is not a
    readable dump.
    """
    return parse_dump(read_json_file(path, "Hermes request dump"), path)


def load_request_or_dump(ref: str, prompt: str | None = None, *, as_captured: bool = False,
                         index: int | None = None) -> tuple[str, RequestSpec, tuple[str, ...]]:
    """A request named on the command line: a Hermes request dump (a ``.json`` file of its shape), else what
    :func:`lanelab.matrix.from_capture.load_request` reads (a capture, a profile file or name).

    Returns ``(label, spec, notes)``: the notes say what a dump does not record (none for the others). Raises what
    ``load_request`` raises, and :class:`~lanelab.errors.InputError` for an ``index`` given with a dump (it holds
    one request).
    """
    from lanelab.matrix.from_capture import load_request

    path = Path(ref)
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            obj = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError):  # (not a dump: load_request says what it is not)
            obj = None
        if is_hermes_dump(obj):
            if index is not None:
                raise InputError(f"--index picks a request of a capture file; {path.name} is a Hermes request dump, "
                                 "which holds one request.", "Leave out --index for it.")
            dump = parse_dump(obj, path)
            return path.name, dump.spec, dump.notes
    label, spec = load_request(ref, prompt, as_captured=as_captured, index=index)
    return label, spec, ()
