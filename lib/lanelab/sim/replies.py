"""What every route of the simulator shares: reading a request body, noting a decision for the log line, and the one
error shape (:meth:`~lanelab.sim.outcomes.Reply.error_body`) on the wire.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from lanelab.sim.outcomes import Reply

__all__ = ["bad_input", "error_response", "note", "plain_error", "read_json", "read_lenient", "read_object",
           "request_headers", "request_id"]


def note(request: Request, **fields: Any) -> None:
    """Attach what the handler decided (rule, outcome, lane) to the request, for the log line."""
    request.scope.setdefault("state", {}).setdefault("lanelab", {}).update(fields)


def request_id(request: Request) -> str:
    """The id the middleware gave this request (``req_011…``)."""
    return str(request.scope["state"]["request_id"])


def request_headers(request: Request) -> dict[str, str]:
    """The request's headers as the middleware read them, once for the route and the log line: lower-case names, a
    repeated header's last value. Read it, never change it."""
    headers: dict[str, str] = request.scope["state"]["headers"]
    return headers


def error_response(request: Request, reply: Reply, headers: dict[str, str] | None = None) -> JSONResponse:
    """``reply`` as an error response: its status and :meth:`Reply.error_body` (the middleware adds ``request-id``)."""
    return JSONResponse(reply.error_body(request_id(request)), status_code=reply.status, headers=headers)


def plain_error(request: Request, status: int, error_type: str, message: str) -> JSONResponse:
    """An error no outcome describes (unknown route, bad control input), in the same shape."""
    return error_response(request, Reply.error(status, error_type, message))


async def read_lenient(request: Request) -> Any:
    """An inference body: parsed JSON, or the raw text when it is not JSON (the policy judges junk); None if empty."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse, judged as junk
        return raw.decode("utf-8", errors="replace")


async def read_json(request: Request) -> tuple[Any, JSONResponse | None]:
    """A control body: ``(parsed JSON or None when empty, None)``, or ``(None, a 400 response)`` when not JSON (or
    nested too deep to parse)."""
    raw = await request.body()
    if not raw:
        return None, None
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError):
        note(request, rule="parser", outcome="invalid_json", lane="none")
        return None, plain_error(request, 400, "invalid_request_error",
                                 "There was an error parsing the body of your request: not valid JSON.")


async def read_object(request: Request, what: str) -> tuple[dict[str, Any], JSONResponse | None]:
    """A control body that must be a JSON object (empty: ``{}``): ``(the object, None)`` or ``({}, a 400)``."""
    body, bad = await read_json(request)
    if bad is not None:
        return {}, bad
    if body is None:
        return {}, None
    if not isinstance(body, dict):
        note(request, rule="control", outcome="bad_control_input", lane="none")
        return {}, plain_error(request, 400, "invalid_request_error", f"{what} takes a JSON object.")
    return body, None


def bad_input(request: Request, message: str) -> JSONResponse:
    """A 400 for control input of the wrong shape (the state is left as it was)."""
    note(request, rule="control", outcome="bad_control_input", lane="none")
    return plain_error(request, 400, "invalid_request_error", message)
