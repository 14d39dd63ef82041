"""Size and time limits of the kit's loopback servers (the simulator and the capture proxy): one rule for both.

- **Request bodies** are capped (:data:`MAX_BODY_BYTES`, Anthropic's own limit for the Messages API; the setting
  ``LANELAB_MAX_BODY_BYTES`` changes it). A larger body is answered ``413 request_too_large`` in the API's error
  shape as soon as it is known to be too large (from ``content-length``, or once the bytes received pass the cap),
  and is never held in memory: the server discards the rest of it as it arrives.
- **Connections that owe the server bytes** (no request yet, headers half sent, a body that stops arriving) are closed
  after :data:`READ_TIMEOUT_S` seconds without a byte. uvicorn's ``h11`` protocol times out only idle keep-alive
  connections; :func:`http_protocol` adds this read timeout to it. A server busy answering (a long event stream) is
  never timed out by it: the client owes nothing then.

Sources: the 32 MB request limit and the ``request_too_large`` error are from
https://platform.claude.com/docs/en/api/errors ("Request size limits").
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MAX_BODY_BYTES", "READ_TIMEOUT_S", "BodyTooLarge", "ClientGone", "capped_receive", "declared_length",
           "http_protocol", "max_body_bytes", "read_body_first", "too_large_body", "too_large_message"]

#: The largest request body accepted by default: 32 MB, the API's limit for the Messages API.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Seconds a connection may owe the server bytes (a request, the rest of its headers or body) without sending one.
READ_TIMEOUT_S = 30.0
ENV_MAX_BODY = "LANELAB_MAX_BODY_BYTES"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


class BodyTooLarge(Exception):
    """A request body is larger than the cap (``seen`` bytes received so far, ``declared`` by content-length)."""

    def __init__(self, limit: int, seen: int = 0, declared: int | None = None):
        super().__init__(f"request body over {limit} bytes")
        self.limit, self.seen, self.declared = limit, seen, declared


class ClientGone(Exception):
    """The client disconnected before its request body was complete (raised by readers that need the whole body)."""


def max_body_bytes(environ: MutableMapping[str, str] | None = None) -> int:
    """The body cap: ``LANELAB_MAX_BODY_BYTES`` when set, else :data:`MAX_BODY_BYTES`.

    Raises :class:`lanelab.errors.ConfigError` when the setting is not a positive whole number.
    """
    raw = (os.environ if environ is None else environ).get(ENV_MAX_BODY, "").strip()
    if not raw:
        return MAX_BODY_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        from lanelab.errors import ConfigError

        raise ConfigError(f"{ENV_MAX_BODY}={raw[:40]!r} is not a positive number of bytes.",
                          f"Unset it for the default ({MAX_BODY_BYTES}), or give a whole number such as 67108864.")
    return int(raw)


def declared_length(scope: MutableMapping[str, Any]) -> int | None:
    """The request's ``content-length`` as a number, or None when absent or unreadable (a chunked body)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def capped_receive(receive: Receive, limit: int) -> Receive:
    """A ``receive`` that raises :class:`BodyTooLarge` once more than ``limit`` body bytes have come in."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, seen)
        return message

    return wrapped


async def read_body_first(receive: Receive) -> Receive:
    """Read the whole request body now and return a ``receive`` that replays it, then defers to the original.

    Raises what ``receive`` raises (a capped one: :class:`BodyTooLarge`), before anything reaches the app."""
    buffered: list[Message] = []
    while True:
        message = await receive()
        buffered.append(message)
        if message.get("type") != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return replay


def too_large_message(limit: int, server: str) -> str:
    """The 413 message: what the limit is and how to change it."""
    return (f"Request exceeds the maximum allowed number of bytes: the {server} accepts request bodies up to {limit} "
            f"bytes (the API's own limit for the Messages API is {MAX_BODY_BYTES}). Set {ENV_MAX_BODY} to change it.")


def too_large_body(limit: int, server: str, request_id: str | None = None) -> bytes:
    """The 413 body in the API's error shape (``request_too_large``)."""
    body: dict[str, Any] = {"type": "error", "error": {"type": "request_too_large",
                                                       "message": too_large_message(limit, server)}}
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


def http_protocol(read_timeout: float | None = None) -> type:
    """uvicorn's ``h11`` protocol with a read timeout (:data:`READ_TIMEOUT_S` by default; read when called).

    The timer runs while the client owes the server bytes (before a request, inside its headers or body) and restarts
    with every byte received; when it fires the connection is closed. It does not run while the server is busy
    answering, nor while the server itself paused reading (flow control).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    seconds = READ_TIMEOUT_S if read_timeout is None else read_timeout

    class TimedH11Protocol(H11Protocol):
        read_timeout_s = seconds
        _read_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_read_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm_read_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_read_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_read_timer()
            super().connection_lost(exc)

        def _owes_bytes(self) -> bool:
            return (self.transport is not None and not self.transport.is_closing()
                    and self.conn.their_state in (h11.IDLE, h11.SEND_BODY))

        def _disarm_read_timer(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _arm_read_timer(self) -> None:
            self._disarm_read_timer()
            if self._owes_bytes():
                self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if not self._owes_bytes():
                return
            if self.flow is not None and self.flow.read_paused:  # we stopped reading, not the client
                self._arm_read_timer()
                return
            self.transport.close()

    return TimedH11Protocol
