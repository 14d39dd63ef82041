"""A loopback recording reverse proxy: see what a client really sends on the wire, not what its debug dump claims.

Point a client's base URL (``ANTHROPIC_BASE_URL``, the SDK's ``base_url``, Hermes' provider base URL) at the proxy.
It forwards each request to the upstream exactly as received (same method, target, header values, body bytes; only
the hop-by-hop headers and ``host`` are the proxy's own), streams the response back chunk by chunk without buffering,
and appends one redacted JSON line per exchange with timing (written before the answer's closing message, so a
chunked answer ends only once its exchange is recorded; hooks for a watcher, :class:`CaptureHooks`, never change
what is forwarded). The upstream is the simulator, or the real API only with
the live opt-in and only on an allow-listed host, so a credential passing through goes nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from lanelab import __version__, limits, redact
from lanelab import http as lanelab_http
from lanelab.config import Settings, host_allowed, host_refusal, is_loopback
from lanelab.errors import Refused
from lanelab.serve import TLS, running_server
from lanelab.wire.exchanges import exchanges_frame, load_exchanges
from lanelab.wire.observe import observe_response

if TYPE_CHECKING:
    import pandas as pd
    from starlette.types import Receive, Scope, Send

__all__ = ["BODY_RECORD_LIMIT", "HOP_BY_HOP", "RECORD_LIMIT", "CaptureApp", "CaptureHooks", "CaptureLog", "CaptureProxy",
           "CaptureRefused", "check_upstream", "running_capture",
           "target_refusal"]

#: Headers that belong to one connection, not to the request; never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                        "upgrade", "proxy-authenticate"})
#: At most this much of a response is kept (in memory) to build the recorded observation; forwarding is unaffected.
RECORD_LIMIT = 4 * 1024 * 1024
#: A request body longer than this is recorded as its first so many bytes (text), its size and its SHA-256; shorter
#: ones are recorded whole (parsed and redacted). Forwarding always sends the whole body.
BODY_RECORD_LIMIT = redact.BODY_RECORD_LIMIT
_log = logging.getLogger("lanelab.capture")


class CaptureRefused(Refused):
    """The proxy will not forward to this upstream."""


def check_upstream(upstream: str, settings: Settings | None = None) -> str:
    """The upstream URL, normalised (no trailing slash).

    Raises :class:`CaptureRefused` when a credential must not be sent there: not http(s), a host off the allow-list,
    or a non-loopback host without the live opt-in.
    """
    upstream = upstream.rstrip("/")
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CaptureRefused(f"Upstream {upstream!r} is not an http(s) URL.",
                             "Pass the simulator's base URL, e.g. http://127.0.0.1:PORT.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        raise CaptureRefused(f"Upstream {upstream!r} has no valid port (a number from 0 to 65535).",
                             "Pass the simulator's base URL, e.g. http://127.0.0.1:PORT.") from None
    if not host_allowed(upstream):
        raise CaptureRefused(f"Upstream {upstream!r} {host_refusal(upstream)}.",
                             "The proxy forwards credentials only to the simulator or https://api.anthropic.com.")
    if not is_loopback(parts.hostname) and not (settings or Settings.from_env()).live_opt_in:
        raise CaptureRefused(f"Forwarding to {parts.hostname} would spend your real account.",
                             "Set LANELAB_LIVE_OPT_IN=1 to opt in to live mode, or capture against the simulator.")
    return upstream


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _decode_for_record(content: bytes, encoding: str) -> bytes:
    """The response body as text bytes for the record (gzip/deflate undone); forwarding always sends it raw."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(content)
    except zlib.error:
        return b""
    return content


def _pairs(headers: list[tuple[str, str]]) -> list[list[str]]:
    """Headers as redacted [name, value] pairs, duplicates kept (a client may send a header twice)."""
    return [[k, next(iter(redact.redact_headers([(k, v)]).values()))] for k, v in headers]


@dataclass
class CaptureHooks:
    """What a watcher (lanelab.walkthrough.watch) may add to the proxy; forwarding itself never changes.

    ``gate(record)`` runs before forwarding, with the request part of the exchange record: it returns None to
    forward, or ``(status, headers, body)`` for the proxy to answer itself (the answer is recorded, flagged with
    ``"answered_by": "proxy"``, and nothing goes upstream). ``on_response(record, status, headers)`` runs when the
    upstream's status line and headers arrive, before the body is relayed. ``on_record(record)`` runs after each
    exchange record is written. Hooks run on the proxy's event loop: keep them quick, and never raise.
    """

    gate: Callable[[dict[str, Any]], tuple[int, list[tuple[str, str]], bytes] | None] | None = None
    on_response: Callable[[dict[str, Any], int, list[tuple[str, str]]], None] | None = None
    on_record: Callable[[dict[str, Any]], None] | None = None


class CaptureApp:
    """The ASGI proxy: forwards each exchange to ``upstream`` and hands its record to ``sink``."""

    def __init__(self, upstream: str, sink: CaptureLog, hooks: CaptureHooks | None = None, max_body: int | None = None):
        self.upstream = upstream
        self.sink = sink
        self.hooks = hooks or CaptureHooks()
        self.max_body = max_body if max_body is not None else limits.max_body_bytes()
        self.client: httpx.AsyncClient | None = None
        self._seq = 0
        self._open = 0  # exchanges whose record is not handed to the sink yet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.client = lanelab_http.async_client(self.upstream, timeout=httpx.Timeout(300.0, connect=5.0))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.client is not None:
                        await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self._open += 1
        try:
            declared = limits.declared_length(scope)
            try:
                if declared is not None and declared > self.max_body:
                    raise limits.BodyTooLarge(self.max_body, 0, declared)
                capped = limits.capped_receive(receive, self.max_body)
                if declared is None:  # a chunked body: read it all (capped) before anything is forwarded
                    capped = await limits.read_body_first(capped)
            except limits.BodyTooLarge as exc:
                await self._too_large(scope, send, exc)
                return
            try:
                await self._proxy(scope, capped, send)
            except limits.ClientGone:
                return  # the client left before its body was complete: nothing was forwarded, nothing to answer
        finally:
            self._open -= 1

    @property
    def busy(self) -> bool:
        """True while an exchange is in progress (its record not yet handed to the capture log)."""
        return self._open > 0

    async def _too_large(self, scope: Scope, send: Send, exc: limits.BodyTooLarge) -> None:
        """Answer 413 (the API's ``request_too_large``) without reading the rest of the body (the server discards
        it as it arrives), and record the refused exchange with the body's size only."""
        started = time.perf_counter()
        self._seq += 1
        payload = limits.too_large_body(self.max_body, "lanelab capture proxy")
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        await send({"type": "http.response.body", "body": payload})
        received = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        record = _request_record(self._seq, self.upstream, scope, scope.get("query_string", b"").decode("latin-1"),
                                 received, [], b"")
        record["request"]["body"] = {"bytes": exc.declared if exc.declared is not None else exc.seen,
                                     "refused": f"larger than the proxy's limit of {self.max_body} bytes",
                                     "received_before_refusal": exc.seen}
        relayed = _Relayed(status=413, headers=headers, kept=bytearray(payload),
                           error=f"request body over the limit of {self.max_body} bytes; nothing was forwarded")
        self.sink.write(_complete_record(record, relayed, started))

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One exchange: read the client's request, forward it, stream the answer back, then record both."""
        started = time.perf_counter()
        self._seq += 1
        seq = self._seq
        body = await _read_body(receive)
        received = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        forwarded = [(k, v) for k, v in received if k.lower() not in HOP_BY_HOP and k.lower() != "host"]
        query = scope.get("query_string", b"").decode("latin-1")
        record = _request_record(seq, self.upstream, scope, query, received, forwarded, body)
        refusal = target_refusal(scope)
        request = None
        if refusal is None:
            request = self._upstream_request(scope, query, received, forwarded, body)
            refusal = self._off_origin(request)
        answer = self.hooks.gate(record) if refusal is None and self.hooks.gate is not None else None
        if refusal is not None or request is None:
            relayed = await self._refuse(send, refusal or "the target cannot be forwarded")
        elif answer is not None:
            relayed = await self._answer(send, *answer)
            record["answered_by"] = "proxy"
        else:
            relayed = await self._relay(request, send, started, record)
        done = _complete_record(record, relayed, started)
        try:
            await self.sink.awrite(done)
            if self.hooks.on_record is not None:
                self.hooks.on_record(done)
        finally:
            if relayed.open_body:  # the client sees the end of the answer once the exchange is recorded
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _answer(self, send: Send, status: int, headers: list[tuple[str, str]],
                      payload: bytes) -> _Relayed:
        """Answer the client with the proxy's own response (a hook's), instead of forwarding."""
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        await send({"type": "http.response.body", "body": payload})
        return _Relayed(status=status, headers=list(headers), kept=bytearray(payload))

    def _upstream_request(self, scope: Scope, query: str, received: list[tuple[str, str]],
                          forwarded: list[tuple[str, str]], body: bytes) -> httpx.Request | None:
        """The request to the upstream: the client's method, raw target, header values and body bytes (None when
        no valid URL can be built from them)."""
        assert self.client is not None
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        url = self.upstream + target + (f"?{query}" if query else "")
        try:
            request = self.client.build_request(scope["method"], url, content=body)
        except (httpx.InvalidURL, ValueError, TypeError):
            return None
        # Send exactly the client's headers (duplicates and order kept), not httpx's defaults.
        request.headers = httpx.Headers([*forwarded, ("host", request.url.netloc.decode("ascii"))])
        if body or "content-length" in {k.lower() for k, _ in received}:
            request.headers["content-length"] = str(len(body))
        return request

    def _off_origin(self, request: httpx.Request | None) -> str | None:
        """Why the built URL may not be used (not the upstream's scheme, host and port, or off the allow-list)."""
        if request is None:
            return "the target does not make a valid URL on the upstream"
        up = httpx.URL(self.upstream)
        if (request.url.scheme, request.url.host, request.url.port) != (up.scheme, up.host, up.port):
            return "the target would leave the upstream's origin"
        try:
            lanelab_http.check_url(request.url)
        except Refused:
            return "the target would leave the allowed hosts"
        return None

    async def _refuse(self, send: Send, reason: str) -> _Relayed:
        """Answer the client with the proxy's own 400 (nothing is forwarded) and say why in an Anthropic-shaped body."""
        relayed = _Relayed(status=400, error=f"refused: {reason}; nothing was forwarded")
        message = (f"lanelab capture forwards only origin-form request targets (a path starting with /): {reason}. "
                   "Nothing was forwarded. Point the client's base URL at the proxy; do not use it as an HTTP proxy.")
        payload = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}}).encode()
        relayed.headers = [("content-type", "application/json"), ("content-length", str(len(payload))),
                           ("connection", "close")]
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in relayed.headers]})
        await send({"type": "http.response.body", "body": payload})
        relayed.kept.extend(payload)
        return relayed

    async def _relay(self, request: httpx.Request, send: Send, started: float,
                     record: dict[str, Any] | None = None) -> _Relayed:
        """Send ``request`` upstream and stream its answer to the client; a 502 when the upstream is unreachable."""
        assert self.client is not None
        relayed = _Relayed()
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            relayed.error = f"{type(exc).__name__}: {redact.redact_text(str(exc)) or 'upstream unreachable'}"
            await self._unreachable(send, relayed)
            return relayed
        relayed.status = response.status_code
        relayed.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        relayed.headers_ms = (time.perf_counter() - started) * 1000
        if self.hooks.on_response is not None and record is not None:
            self.hooks.on_response(record, relayed.status, relayed.headers)
        try:
            await _stream(response, send, relayed, started)
        except (httpx.HTTPError, OSError) as exc:
            relayed.error = f"{type(exc).__name__}: {redact.redact_text(str(exc)) or 'stream broken'}"
        finally:
            await response.aclose()
        return relayed

    async def _unreachable(self, send: Send, relayed: _Relayed) -> None:
        """Answer the client with the proxy's own 502 (an Anthropic-shaped error body naming the upstream)."""
        payload = json.dumps({"type": "error", "error": {"type": "capture_proxy_error", "message":
                              f"lanelab capture could not reach the upstream {self.upstream}: {relayed.error}"}}
                             ).encode()
        await send({"type": "http.response.start", "status": 502,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})
        relayed.kept.extend(payload)
        relayed.headers = [("content-type", "application/json")]


def target_refusal(scope: Scope) -> str | None:
    """Why the proxy will not forward this request target, or None for an origin-form target (``/path?query``).

    A reverse proxy forwards only paths: an absolute-form target (``http://other/…``), an authority-form one
    (``CONNECT host:443``), the asterisk form (``OPTIONS *``, the HTTP/2 preface ``PRI *``) or anything else not
    starting with ``/`` (``@other:PORT/…``, ``.evil.example/…``) could make ``upstream + target`` name another host.
    """
    method = str(scope.get("method", ""))
    raw = scope.get("raw_path") or str(scope.get("path", "")).encode("latin-1", "replace")
    target = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    if method == "PRI" or scope.get("http_version") == "2":
        return "an HTTP/2 connection preface (the proxy speaks HTTP/1.1)"
    if method == "CONNECT":
        return "CONNECT (an authority-form target; the proxy is not a tunnel)"
    if target == "*" or target.startswith("*"):
        return "an asterisk-form target (*)"
    if "://" in target.split("/", 1)[0] or target.split("?", 1)[0].lower().startswith(("http:", "https:")):
        return "an absolute-form target (scheme://host/…)"
    if not target.startswith("/"):
        return "a target that does not start with /"
    if any(c in target for c in "\\#") or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return "a target with characters a path may not hold"
    return None


@dataclass
class _Relayed:
    """What the client was sent back for one exchange, and when (``kept``: the first RECORD_LIMIT bytes)."""

    status: int = 502
    headers: list[tuple[str, str]] = field(default_factory=list)
    kept: bytearray = field(default_factory=bytearray)
    headers_ms: float | None = None
    first_chunk_ms: float | None = None
    error: str | None = None
    open_body: bool = False  # every chunk relayed; the closing (empty) body message is still to be sent


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, however many ASGI messages it came in.

    The proxy hands a capped ``receive`` (:func:`lanelab.limits.capped_receive`): past the body limit it raises
    :class:`~lanelab.limits.BodyTooLarge`, and :class:`~lanelab.limits.ClientGone` if the client leaves mid-body,
    so a partial body is never forwarded as if it were whole.
    """
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise limits.ClientGone()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _stream(response: httpx.Response, send: Send, relayed: _Relayed, started: float) -> None:
    """Relay the upstream's status, headers (hop-by-hop dropped) and raw body chunk by chunk, without buffering."""
    out_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in relayed.headers
                   if k.lower() not in HOP_BY_HOP]
    await send({"type": "http.response.start", "status": relayed.status, "headers": out_headers})
    async for chunk in response.aiter_raw():
        if relayed.first_chunk_ms is None:
            relayed.first_chunk_ms = (time.perf_counter() - started) * 1000
        if len(relayed.kept) < RECORD_LIMIT:
            relayed.kept.extend(chunk[: RECORD_LIMIT - len(relayed.kept)])
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    relayed.open_body = True


def _request_record(seq: int, upstream: str, scope: Scope, query: str, received: list[tuple[str, str]],
                    forwarded: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """The exchange record as far as the request goes, every part redacted.

    Every secret the request carries is learned first (the values of the Authorization, x-api-key, cookie and other
    sensitive headers, sensitive query parameters, an OAuth body's code, verifier and refresh token), so it is masked
    wherever it turns up afterwards, in this record or a later one. A body over :data:`BODY_RECORD_LIMIT` is recorded
    as its first bytes, its size and its SHA-256.
    """
    redact.learn_headers(received)
    redact.learn_text(query)
    redact.learn_text(scope["path"])
    ctype = next((v for k, v in received if k.lower() == "content-type"), "")
    body_record = redact.redact_body(body, ctype, limit=BODY_RECORD_LIMIT)
    return {
        "record": "exchange", "seq": seq, "started_at": _now(), "upstream": upstream,
        "request": {"method": scope["method"], "path": redact.redact_text(scope["path"]),
                    "query": redact.redact_text(query),
                    "query_params": redact.redact_obj(dict(parse_qsl(query, keep_blank_values=True))),
                    "headers": _pairs(received), "forwarded_headers": [k for k, _ in forwarded],
                    "body": body_record},
    }


def _complete_record(record: dict[str, Any], relayed: _Relayed, started: float) -> dict[str, Any]:
    """``record`` with the response (its observation read from the kept bytes), the timing and any error."""
    if relayed.headers_ms is not None:
        record["timing"] = {"upstream_headers_ms": round(relayed.headers_ms, 2)}
    total_ms = (time.perf_counter() - started) * 1000
    lower = {k.lower(): v for k, v in relayed.headers}
    content = _decode_for_record(bytes(relayed.kept), lower.get("content-encoding", ""))
    # what the answer hands out (tokens of a token endpoint, JSON or form; cookies; a location with ?code=) is
    # learned before anything of it is recorded
    redact.learn_headers(relayed.headers)
    redact.learn_body(content, lower.get("content-type", ""))
    observation = observe_response(relayed.status, lower, content, total_ms)
    record["response"] = {"status": relayed.status, "headers": _pairs(relayed.headers), "bytes": len(relayed.kept),
                          "streamed": "text/event-stream" in lower.get("content-type", ""),
                          "observation": observation.to_dict()}
    timing = record.setdefault("timing", {})
    timing.update({"first_chunk_ms": round(relayed.first_chunk_ms, 2) if relayed.first_chunk_ms is not None
                   else None, "total_ms": round(total_ms, 2)})
    record["error"] = relayed.error
    return record


class CaptureLog:
    """Appends redacted, leak-checked JSON lines to the capture file (billing attestation blocks as a marker).

    Lines are serialised, checked and written by a writer thread, in the order :meth:`write` was called, so a large
    record never holds up the proxy's event loop (another client's event stream keeps flowing). :meth:`write` returns
    a future that is done once the line is on disk; on the event loop, ``await log.awrite(record)`` waits for that
    without blocking the loop (e.g. to end an answer only once its exchange is recorded). :meth:`flush` waits for
    what was handed over; :meth:`close` flushes and stops the thread. A record that cannot be written (it would leak
    a secret, or the disk refuses) is left out, counted in ``failures`` and logged, never raised at a client (its
    future's result is then False).
    """

    def __init__(self, path: Path, upstream: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[dict[str, Any], Future[bool]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.failures: list[str] = []
        self._append(self._line({"record": "capture", "kit_version": __version__, "upstream": upstream,
                                 "started_at": _now()}))

    def _line(self, record: dict[str, Any]) -> str:
        # A billing attestation block is recorded as a marker, never its value (DESIGN.md, responsible use).
        from lanelab.wire.attestation import mark_attestation

        line = json.dumps(mark_attestation(redact.redact_obj(record)), ensure_ascii=False)
        redact.assert_clean(line, where=f"capture file {self.path}")
        return line

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def write(self, record: dict[str, Any]) -> Future[bool]:
        """Hand ``record`` to the writer thread (started on first use) and return at once: a future whose result is
        True once the line is written, False when it could not be (see ``failures``)."""
        done: Future[bool] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"capture-writer:{self.path.name}",
                                                daemon=True)
                self._thread.start()
        self._queue.put((record, done))
        return done

    async def awrite(self, record: dict[str, Any]) -> bool:
        """:meth:`write`, awaited on the event loop without blocking it: returns once the line is on disk."""
        return await asyncio.wrap_future(self.write(record))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                record, done = item
                try:
                    self._append(self._line(record))
                    done.set_result(True)
                except (redact.SecretLeak, OSError, TypeError, ValueError) as exc:
                    what = f"exchange {record.get('seq')}" if isinstance(record, dict) else "a record"
                    reason = redact.redact_text(f"{type(exc).__name__}: {exc}")
                    self.failures.append(f"{what}: {reason}")
                    _log.warning("lanelab capture: %s was not recorded (%s)", what, reason)
                    done.set_result(False)
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every record handed over so far is written (or counted in ``failures``)."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Flush and stop the writer thread."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join()


@dataclass
class CaptureProxy:
    """A running proxy: its base URL, where it records, and the recorded exchanges so far."""

    base_url: str
    upstream: str
    out_path: Path
    app: CaptureApp | None = field(default=None, repr=False, compare=False)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) until the exchanges in progress are recorded and written."""
        if self.app is None:
            return
        deadline = time.monotonic() + timeout
        while self.app.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        self.app.sink.flush()

    def exchanges(self) -> list[dict[str, Any]]:
        """The exchange records recorded so far (see :func:`load_exchanges`); waits briefly for those in progress."""
        self.settle()
        return load_exchanges(self.out_path)

    def to_frame(self) -> pd.DataFrame:
        """The exchanges recorded so far, one row each (see :func:`exchanges_frame`)."""
        return exchanges_frame(self.exchanges())

    def __repr__(self) -> str:
        return f"<CaptureProxy {self.base_url} → {self.upstream}, recording to {self.out_path}>"


@contextlib.contextmanager
def running_capture(upstream: str, out_path: str | Path, port: int = 0,
                    settings: Settings | None = None, tls: TLS | None = None, *, hooks: CaptureHooks | None = None,
                    sock: socket.socket | None = None, max_body: int | None = None) -> Iterator[CaptureProxy]:
    """Run the proxy on 127.0.0.1 (a free port when 0) in a background thread for the ``with`` block.

    ``max_body`` caps request bodies (default :func:`lanelab.limits.max_body_bytes`): a larger one is answered 413
    and recorded with its size only. Every record is written by the time the block ends.

    ``tls`` serves https under the certificate's host name (capturing a client under the real host name).
    ``hooks`` (:class:`CaptureHooks`) let a watcher see each exchange and answer requests itself; ``sock`` serves a
    listening socket made elsewhere (one bound inside a private network namespace) instead of binding ``port``.
    Yields a :class:`CaptureProxy` (point the client at its ``base_url``). Raises :class:`CaptureRefused` for an
    upstream off the allow-list (or live without the opt-in) and :class:`lanelab.serve.ServerStartError` when the
    proxy cannot start.
    """
    upstream = check_upstream(upstream, settings)
    out_path = Path(out_path)
    existed = out_path.exists()
    log = CaptureLog(out_path, upstream)
    app = CaptureApp(upstream, log, hooks, max_body=max_body)
    started = False
    try:
        with running_server(app, port, tls=tls, lifespan="on", name="lanelab-capture", server_header=False,
                            date_header=False, sock=sock) as served:
            started = True
            yield CaptureProxy(served.base_url, upstream, out_path, app)
    finally:
        log.close()
        if not started and not existed:  # a proxy that never started recorded nothing: no header-only file is left
            out_path.unlink(missing_ok=True)
