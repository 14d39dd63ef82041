"""What happens to every request before and after its route: a request id, the faults that fire for it, and one
redacted line in the request log.

Request bodies are capped (:mod:`lanelab.limits`): one larger than the limit is answered ``413 request_too_large``
without being read into memory, and logged with its size only. The log keeps a bounded prefix of each body, with its
size and SHA-256.

Faults may delay a request (``latency``), drop its connection (``reset``), answer in place of the route (``http500``,
``http529``, ``http429``) or damage the route's answer in flight (``malformed_json``, ``sse_cut``; the streamed-error
faults are the route's to deliver). The log line is written just before the last body chunk leaves, so a client
never outruns it; a request that ends without a response (a reset, or a client that left before its body was in:
``client_disconnected``, not an error of the server) is logged when it ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from lanelab import limits
from lanelab.sim import faults as faults_mod
from lanelab.sim.ids import new_request_id
from lanelab.sim.outcomes import Reply
from lanelab.sim.requestlog import LOG_PARSE_LIMIT, log_entry
from lanelab.sim.simulator import Simulator

__all__ = ["RequestMiddleware", "read_body_first"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

def _drop_connection(send: Send) -> None:
    """Close the client's connection without a response (an RST), as a flaky network would."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        raise RuntimeError("reset fault: this server does not expose its transport; run the simulator on uvicorn.")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    cycle.disconnected = True


#: Read the whole body now, replay it to the route (shared with the capture proxy).
read_body_first = limits.read_body_first


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


@dataclass
class _Exchange:
    """One request on its way through: what its log line needs, gathered as it happens."""

    scope: MutableMapping[str, Any]
    request_id: str
    headers: dict[str, str]
    meta: dict[str, Any]
    started: float
    body_prefix: bytearray = field(default_factory=bytearray)  # the first LOG_PARSE_LIMIT + 1 bytes of the body
    body_size: int = 0
    body_hash: Any = field(default_factory=hashlib.sha256)
    body_refused: str | None = None
    status: int | None = None
    faults: list[faults_mod.Fault] = field(default_factory=list)
    logged: bool = False
    left: bool = False  # the client disconnected before any answer began


@dataclass
class _Held:
    """What the send wrapper keeps between the messages of one response."""

    start: Message | None = None  # a response start held back until the whole JSON body is in (malformed_json)
    body: bytes = b""  # that body so far
    sse: bool = False  # the response is an event stream
    deltas: int = 0  # content_block_delta events sent so far (sse_cut)
    done: bool = False  # the response was ended early; later messages are dropped


class RequestMiddleware:
    """The ASGI app around the routes: request id, faults and log line for every HTTP request."""

    def __init__(self, app: ASGIApp, sim: Simulator, max_body: int | None = None):
        self.app = app
        self.sim = sim
        self.max_body = max_body if max_body is not None else limits.max_body_bytes()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        meta: dict[str, Any] = {}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scope.setdefault("state", {}).update(request_id=rid, lanelab=meta, headers=headers)
        ex = _Exchange(scope, rid, headers, meta, time.time())

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                ex.body_size += len(chunk)
                ex.body_hash.update(chunk)
                room = LOG_PARSE_LIMIT + 1 - len(ex.body_prefix)
                if room > 0:
                    ex.body_prefix += chunk[:room]
            elif message["type"] == "http.disconnect" and ex.status is None:  # gone before any answer began
                ex.left = True
                meta.update(rule="client", outcome="client_disconnected", lane="none")
            return message

        declared = limits.declared_length(scope)
        try:
            if declared is not None and declared > self.max_body:
                raise limits.BodyTooLarge(self.max_body, 0, declared)
            body_receive: Receive = limits.capped_receive(recording_receive, self.max_body)
            if declared is None:  # a chunked body: read it now, so one over the limit never reaches a route
                body_receive = await read_body_first(body_receive)
        except limits.BodyTooLarge as exc:
            await self._too_large(ex, send, exc)
        else:
            try:
                ex.faults = self.sim.faults.select(scope["path"], headers.get(faults_mod.HEADER))
            except faults_mod.FaultSpecError as exc:
                meta.update(rule="fault_header", outcome="bad_fault_header")
                reply = Reply.error(400, "invalid_request_error", self.sim.state.redactor.redact_text(str(exc)))
                await self._answer(ex, send, reply, {})
            else:
                await self._serve(ex, body_receive, send)
        self._write_log(ex)  # requests that ended without a response (a reset) are logged here

    async def _too_large(self, ex: _Exchange, send: Send, exc: limits.BodyTooLarge) -> None:
        """413 ``request_too_large`` in the API's shape; the rest of the body is discarded by the server unread."""
        size = exc.declared if exc.declared is not None else exc.seen
        ex.body_refused = f"larger than the simulator's limit of {self.max_body} bytes"
        ex.body_size = size
        ex.meta.update(rule="body_limit", outcome="request_too_large", lane="none")
        reply = Reply.error(413, "request_too_large", limits.too_large_message(self.max_body, "lanelab simulator"))
        await self._answer(ex, send, reply, {})

    def _write_log(self, ex: _Exchange) -> None:
        path = ex.scope["path"]
        if ex.logged or path.startswith("/_sim/"):
            return
        ex.logged = True
        state = self.sim.state
        state.log.record(log_entry(
            state.redactor, started=ex.started, method=ex.scope["method"], path=path,
            query_string=ex.scope.get("query_string", b""), headers=ex.headers, body=bytes(ex.body_prefix),
            status=ex.status, meta=ex.meta, request_id=ex.request_id, faults=[f.describe() for f in ex.faults],
            body_size=ex.body_size, body_sha256=ex.body_hash.hexdigest(), body_refused=ex.body_refused))

    async def _answer(self, ex: _Exchange, send: Send, reply: Reply, headers: dict[str, str]) -> None:
        """Answer in place of the route with ``reply``'s error."""
        response = JSONResponse(reply.error_body(ex.request_id), status_code=reply.status, headers=headers)
        await response(ex.scope, _no_body, self._wrap_send(send, ex, malformed=False, cut=None))

    async def _serve(self, ex: _Exchange, receive: Receive, send: Send) -> None:
        chosen = ex.faults
        delay = sum(f.latency_s for f in chosen if f.kind == "latency")
        if delay:
            receive = await read_body_first(receive)  # a client that gives up during the delay is still logged
            await asyncio.sleep(delay)
        terminal = next((f for f in chosen if f.kind in faults_mod.TERMINAL), None)
        if terminal is not None and terminal.kind == "reset":
            ex.meta.update(rule="fault", outcome="fault:reset", lane="none")
            _drop_connection(send)
            return
        if terminal is not None and not terminal.mid_stream:
            reply = self.sim.render(faults_mod.FAULT_OUTCOMES[terminal.kind])
            ex.meta.update(rule="fault", outcome=f"fault:{terminal.kind}", lane="none")
            extra = self.sim.reply_headers(reply)
            if terminal.kind == "http429":
                extra["retry-after"] = str(terminal.retry_after)
            await self._answer(ex, send, reply, extra)
            return
        if terminal is not None:
            ex.meta["stream_fault"] = terminal  # the route delivers it as an SSE error event
        malformed = any(f.kind == "malformed_json" for f in chosen)
        cut = next((f for f in chosen if f.kind == "sse_cut"), None)
        try:
            await self.app(ex.scope, receive, self._wrap_send(send, ex, malformed=malformed, cut=cut))
        except ClientDisconnect:  # the client left before its body was in (an interrupted run): no one to answer,
            pass  # and no server error (the log line says client_disconnected)

    def _wrap_send(self, send: Send, ex: _Exchange, malformed: bool, cut: faults_mod.Fault | None) -> Send:
        """A ``send`` that stamps the request id, applies the in-flight faults (malformed JSON, SSE cut) and writes
        the log line just before the last body chunk leaves."""
        held = _Held()
        request_id = ex.request_id.encode()

        async def finish(message: Message) -> None:
            self._write_log(ex)
            await send(message)

        async def wrapped(message: Message) -> None:
            if held.done or ex.left:  # (ex.left: the answer to a client that is gone, e.g. a 500 for its disconnect)
                return
            kind = message["type"]
            if kind == "http.response.start":
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                hdrs.append((b"request-id", request_id))
                ctype = next((v for k, v in hdrs if k.lower() == b"content-type"), b"")
                held.sse = b"text/event-stream" in ctype
                message = {**message, "headers": hdrs}
                ex.status = message["status"]
                if malformed and b"json" in ctype:
                    held.start = message
                    return
                await send(message)
                return
            if kind == "http.response.body" and held.start is not None:
                held.body += message.get("body", b"")
                if message.get("more_body"):
                    return
                broken = held.body[: max(1, len(held.body) // 2)]
                start = held.start
                hdrs = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                hdrs.append((b"content-length", str(len(broken)).encode()))
                ex.status = 200
                await send({**start, "status": 200, "headers": hdrs})
                await finish({"type": "http.response.body", "body": broken, "more_body": False})
                held.done = True
                return
            if (kind == "http.response.body" and cut is not None and held.sse
                    and b"event: content_block_delta" in message.get("body", b"")):
                held.deltas += 1
                if held.deltas > cut.cut_after:
                    await finish({"type": "http.response.body", "body": b"", "more_body": False})
                    held.done = True
                    return
            if kind == "http.response.body" and not message.get("more_body"):
                await finish(message)
                return
            await send(message)

        return wrapped
