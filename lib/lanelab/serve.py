"""The one way the kit serves HTTP: an ASGI app on a loopback socket, in a background thread or in the foreground.

The simulator, the capture proxy (and the watch built on it) all start through here, so binding, start-up, shutdown,
connection timeouts and TLS behave the same everywhere. The socket is bound before uvicorn starts (port 0 picks a
free port), so the base URL is known at once and a client that connects early simply waits in the listen backlog.

Stopping takes no idle time (:class:`_Server`): uvicorn's own server looks at its stop flag every 0.1 s and sleeps
0.1 s more while shutting down, a fifth of a second for every server the tests start and stop.

TLS is optional (:class:`TLS`): with a certificate for a real host name (say ``api.anthropic.com``, from a test CA)
and a private network namespace where that name resolves to loopback, a client reaches the server under the real
host name with nothing changed but name resolution and trust (the offline rehearsal, and capturing real clients).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from lanelab import limits, redact
from lanelab.errors import InputError, ServiceError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 10.0
#: How often a stopping server looks whether its connections and tasks are done.
STOP_POLL_S = 0.002
#: How often a running server does uvicorn's periodic work (the ``date`` header, the request limit).
TICK_S = 0.1
#: Idle keep-alive connections are closed after this many seconds; a client that owes the server bytes (a request,
#: the rest of its headers or body) is closed after :data:`lanelab.limits.READ_TIMEOUT_S` without one.
KEEP_ALIVE_S = 5

_log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: the kit's redacting filter is on its handlers

__all__ = ["HOST", "TLS", "Served", "ServerStartError", "bind_loopback", "check_port", "running_server",
           "serve_forever", "wait_for_stop"]


class ServerStartError(ServiceError):
    """A loopback server could not start (port taken, bad port, start-up failure)."""


@dataclass(frozen=True)
class TLS:
    """A certificate and key (PEM files) to serve https with, and the host name the certificate is for."""

    certfile: Path
    keyfile: Path
    hostname: str = HOST


@dataclass(frozen=True)
class Served:
    """Where a running server listens."""

    base_url: str
    port: int


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as asked and shutting down without fixed sleeps.

    :meth:`stop` (any thread) and a SIGINT/SIGTERM in the foreground wake the main loop at once instead of at its next
    0.1 s tick. The shutdown does what uvicorn's does (stop listening, ask every connection to close once its response
    is sent, wait for connections and tasks up to ``timeout_graceful_shutdown``, cancel what is left, then the
    lifespan shutdown unless forced) but polls every :data:`STOP_POLL_S` without uvicorn's fixed 0.1 s sleeps.

    It relies on these attributes of :class:`uvicorn.Server` (all present from uvicorn 0.29, the floor in
    pyproject.toml, to 0.54): ``servers`` (the asyncio servers, set by ``startup``), ``server_state`` (its
    ``connections`` and ``tasks``), ``lifespan``, ``should_exit``/``force_exit``, ``on_tick`` and ``handle_exit``.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def stop(self) -> None:
        """Ask the server to stop (thread-safe); it wakes at once."""
        self.should_exit = True
        self._wake_up()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self._wake_up()

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has already closed: nothing left to wake
                pass

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # on_tick reads should_exit, which stop() set before waking us
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            except TimeoutError:
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _log.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes an idle connection now, a busy one once its response is sent
        try:
            await asyncio.wait_for(self._drain(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            tasks = list(self.server_state.tasks)
            _log.warning("Stopping: %s request(s) still in progress were cut short.", len(tasks))
            for task in tasks:
                task.cancel(msg=CUT_SHORT)
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drain(self) -> None:
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            await asyncio.sleep(STOP_POLL_S)
        for server in self.servers:
            await server.wait_closed()


def check_port(port: object) -> int:
    """``port`` when it is a TCP port number (0 … 65535; 0 picks a free one), else :class:`InputError`."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InputError(f"Port {port!r} is not a TCP port.", "Use a number from 1 to 65535, or 0 for a free one.")
    return port


def bind_loopback(port: int = 0, host: str = HOST) -> socket.socket:
    """A listening TCP socket on ``host`` (loopback; ``port=0``: a free one), or :class:`ServerStartError`
    (:class:`InputError` for a number that is no port, see :func:`check_port`)."""
    check_port(port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio then turns Nagle off
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"Cannot listen on {host}:{port} ({exc.strerror}).",
                               "Pick another --port, or use --port 0 for a free one.") from None
    sock.listen(128)
    return sock


def _base_url(sock: socket.socket, tls: TLS | None) -> str:
    port = sock.getsockname()[1]
    if tls is None:
        return f"http://{HOST}:{port}"
    return f"https://{tls.hostname}" + ("" if port == 443 else f":{port}")


#: Why a request still running when its server stopped was cancelled (the server was asked to stop: no error).
CUT_SHORT = "the server was stopped while this request was in progress"


class CutShortFilter(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" record for a request cancelled because its server was asked
    to stop (:data:`CUT_SHORT`): a stop the user asked for is no server error, and its traceback would reach them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, asyncio.CancelledError) and CUT_SHORT in str(exc))


def _log_config() -> dict[str, Any]:
    """uvicorn's logging set-up with the kit's redacting filter on each of its handlers, and the filter that drops
    the traceback of a request cut short by a stop (:class:`CutShortFilter`)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"lanelab_redact": {"()": "lanelab.redact.LogFilter"},
                         "lanelab_cut_short": {"()": "lanelab.serve.CutShortFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["lanelab_cut_short", "lanelab_redact"]
    return config


def _config(app: ASGIApp, tls: TLS | None, lifespan: str, **extra: Any) -> uvicorn.Config:
    redact.guard_logging()
    # http: the h11 protocol with a read timeout (limits.READ_TIMEOUT_S), so half-open and slow clients are closed
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": lifespan,
                               "timeout_graceful_shutdown": 2, "timeout_keep_alive": KEEP_ALIVE_S,
                               "http": limits.http_protocol(), "log_config": _log_config()}
    if tls is not None:
        options.update(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile))
    options.update(extra)
    return uvicorn.Config(app, **options)


@contextmanager
def running_server(app: ASGIApp, port: int = 0, *, tls: TLS | None = None, lifespan: str = "off",
                   name: str = "lanelab", sock: socket.socket | None = None,
                   **uvicorn_options: Any) -> Iterator[Served]:
    """Serve ``app`` in a background thread for the ``with`` block; on exit the thread is joined and the port closed.

    ``sock``: serve on this listening socket instead of binding ``port`` (one bound inside a private network
    namespace, see :mod:`lanelab.walkthrough.namespace`); it is closed on exit too.
    Raises :class:`ServerStartError` when the port cannot be bound or the server does not come up.
    """
    sock = sock if sock is not None else bind_loopback(port)
    server = _Server(_config(app, tls, lifespan, **uvicorn_options))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True,
                              name=f"{name}:{sock.getsockname()[1]}")
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServerStartError(f"The {name} server did not start on {HOST}:{sock.getsockname()[1]}.",
                                       "Run the command on its own to see its error output.")
            time.sleep(0.005)
        yield Served(base_url=_base_url(sock, tls), port=sock.getsockname()[1])
    finally:
        server.stop()
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()


def serve_forever(app: ASGIApp, port: int = 0, *, tls: TLS | None = None, lifespan: str = "off",
                  on_ready: Callable[[Served], None] | None = None, **uvicorn_options: Any) -> None:
    """Serve ``app`` in the foreground until SIGINT/SIGTERM; ``on_ready`` runs once the socket listens."""
    sock = bind_loopback(port)
    try:
        if on_ready is not None:
            on_ready(Served(base_url=_base_url(sock, tls), port=sock.getsockname()[1]))
        _Server(_config(app, tls, lifespan, **uvicorn_options)).run(sockets=[sock])
    finally:
        sock.close()


def wait_for_stop(poll_s: float = 0.1) -> int:
    """Block the main thread until SIGINT or SIGTERM arrives; returns the signal number.

    The handlers only set a flag, and the main thread polls it: a handler that called ``threading.Event.set`` could
    deadlock, since it runs in the main thread, possibly while that thread holds the event's own lock inside
    ``wait``. The previous handlers are restored on return.
    """
    got: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: got.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not got:
            time.sleep(poll_s)
        return got[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
