"""How the kit's loopback servers stop (lanelab.serve): at once when asked, yet gracefully.

An answer being sent when the stop comes still arrives whole; idle keep-alive connections are closed; a handler that
never finishes is cancelled once the graceful timeout has passed; the port is free afterwards; the foreground server
stops on SIGTERM and hands the signal on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from lanelab import serve

WAIT_S = 20  # the longest any step may take before the test gives up (a hang, not a timing figure)


async def _answer(send: Callable[..., Any], body: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def _start(send: Callable[..., Any], length: int) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(length).encode())]})


async def _hello(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await _start(send, 5)
    await _answer(send, b"hello")


def _exit_in_thread(ctx: AbstractContextManager[Any]) -> threading.Thread:
    """Leave ``ctx`` (stop the server) in a thread of its own, so the test can act while the server stops."""
    thread = threading.Thread(target=ctx.__exit__, args=(None, None, None), daemon=True)
    thread.start()
    return thread


def _refuses(port: int) -> bool:
    """Whether nothing listens on ``port`` any more."""
    try:
        socket.create_connection((serve.HOST, port), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    return False


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(WAIT_S)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _port_is_free(port: int) -> bool:
    try:
        serve.bind_loopback(port).close()
    except serve.ServerStartError:
        return False
    return True


def test_an_answer_in_flight_completes_when_the_server_is_asked_to_stop() -> None:
    """The answer's first half is out when the stop comes; the server stops listening at once, the handler is let
    finish, and the client gets the whole answer and then the end of the connection."""
    release = threading.Event()

    async def halves(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await _start(send, len(b"first half;second half"))
        await _answer(send, b"first half;", more=True)
        while not release.is_set():
            await asyncio.sleep(0.005)
        await _answer(send, b"second half")

    ctx = serve.running_server(halves)
    served = ctx.__enter__()
    with socket.create_connection((serve.HOST, served.port), timeout=WAIT_S) as client:
        client.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert _until(lambda: b"first half;" in client.recv(65536, socket.MSG_PEEK))
        stopping = _exit_in_thread(ctx)
        assert _until(lambda: _refuses(served.port)), "the server kept listening after it was asked to stop"
        assert stopping.is_alive(), "the server stopped with an answer still being sent"
        release.set()
        answer = _read_all(client)  # ends: the server closes the connection once the answer is sent
    stopping.join(WAIT_S)
    assert not stopping.is_alive()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"second half"), answer
    assert b"first half;" in answer
    assert _port_is_free(served.port)


def test_idle_keep_alive_connections_are_closed_on_stop() -> None:
    with serve.running_server(_hello) as served:
        idle = [socket.create_connection((serve.HOST, served.port), timeout=WAIT_S) for _ in range(2)]
        for sock in idle:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert _until(lambda sock=sock: sock.recv(65536, socket.MSG_PEEK).endswith(b"hello"))
            assert b"connection: close" not in sock.recv(65536).lower()  # kept alive, now idle
    try:
        for sock in idle:
            assert _read_all(sock) == b"", "an idle connection was left open (or sent more) after the stop"
    finally:
        for sock in idle:
            sock.close()
    assert _port_is_free(served.port)


def test_a_handler_that_never_finishes_is_cancelled_after_the_graceful_timeout(
        capfd: pytest.CaptureFixture[str]) -> None:
    """... and the user sees one plain line, not uvicorn's traceback of the cancelled request (a stop they asked
    for is no server error)."""
    started, cancelled = threading.Event(), threading.Event()

    async def forever(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    with serve.running_server(forever, timeout_graceful_shutdown=0.05) as served:
        logging.getLogger("uvicorn.error").addHandler(handler)  # after start: uvicorn's log set-up resets handlers
        client = socket.create_connection((serve.HOST, served.port), timeout=WAIT_S)
        client.sendall(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert started.wait(WAIT_S)
        assert not cancelled.is_set()
    try:
        logging.getLogger("uvicorn.error").removeHandler(handler)
        assert cancelled.is_set(), "the stop returned with the handler still running"
        assert any("1 request(s) still in progress were cut short" in r.getMessage() for r in records), records
        shown = capfd.readouterr().err
        assert "cut short" in shown and "Traceback" not in shown and "Exception in ASGI application" not in shown, shown
        with client:
            assert not _read_all(client).endswith(b"hello")  # no answer came; the connection was closed
    finally:
        client.close()
    assert _port_is_free(served.port)


def test_the_port_is_free_after_the_server_stops() -> None:
    with serve.running_server(_hello) as served:
        assert httpx.get(served.base_url).text == "hello"
        assert not _port_is_free(served.port)  # positive control: a listening port cannot be bound again
    assert _refuses(served.port) and _port_is_free(served.port)


def test_the_foreground_server_stops_on_sigterm_and_hands_the_signal_on() -> None:
    """serve_forever in this (main) thread; a helper sends SIGTERM once the server answers. uvicorn passes a signal it
    caught on to the handler it found installed once it has stopped: here the test's own, which records it."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: got.append(signum))
    answers: list[str] = []
    where: list[serve.Served] = []

    def stop_once_answering() -> None:
        try:
            if _until(lambda: bool(where)):
                answers.append(httpx.get(where[0].base_url, timeout=WAIT_S).text)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # whatever happened: serve_forever must not wait for ever

    helper = threading.Thread(target=stop_once_answering, daemon=True)
    try:
        helper.start()
        serve.serve_forever(_hello, on_ready=where.append)
    finally:
        signal.signal(signal.SIGTERM, previous)
    helper.join(WAIT_S)
    assert answers == ["hello"] and got == [signal.SIGTERM]
    assert _port_is_free(where[0].port)
