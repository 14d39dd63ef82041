"""Issue 12, item 14: size and time limits in the capture proxy and the simulator.

Bodies over the limit get the API's 413 ``request_too_large`` and are never held in memory; a large body is recorded
as a bounded prefix with its size and SHA-256 (the capture file and the simulator's request log); capture records are
written off the event loop; connections that owe the server bytes are closed after the read timeout.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import body_memory
import httpx
import pytest
from lanelab import limits, serve
from lanelab.errors import ConfigError
from lanelab.walkthrough import capture as capture_mod
from lanelab.walkthrough.capture import running_capture
from lanelab.wire.exchanges import load_exchanges

MB = 1024 * 1024


@pytest.fixture
def upstream() -> Iterator[body_memory.DiscardUpstream]:
    with body_memory.DiscardUpstream() as up:
        yield up


def _pieces(size: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    left = size
    while left > 0:
        yield b"y" * min(piece, left)
        left -= piece


# ---- the cap --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_proxy_answers_413_for_a_body_over_the_limit_and_forwards_nothing(upstream, tmp_path: Path,
                                                                          declared: bool) -> None:
    size = 6 * MB
    out = tmp_path / "cap.jsonl"
    with running_capture(upstream.base_url, out, max_body=1 * MB) as proxy:
        headers = {"content-type": "application/json", **({"content-length": str(size)} if declared else {})}
        r = httpx.post(proxy.base_url + "/v1/messages", content=_pieces(size), headers=headers, timeout=60)
        ok = httpx.post(proxy.base_url + "/v1/messages", json={"model": "m"}, timeout=30)  # the proxy goes on
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["type"] == "request_too_large" and str(1 * MB) in error["message"]
    assert "LANELAB_MAX_BODY_BYTES" in error["message"]
    assert ok.status_code == 200 and len(upstream.received) == 1, "only the second request was forwarded"
    refused, forwarded = load_exchanges(out)
    assert refused["response"]["status"] == 413 and "refused" in refused["request"]["body"]
    assert refused["request"]["body"]["bytes"] == size if declared else refused["request"]["body"]["bytes"] > 1 * MB
    assert "json" not in refused["request"]["body"] and "text" not in refused["request"]["body"]
    assert forwarded["response"]["status"] == 200


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_simulator_answers_413_and_logs_the_size_only(declared: bool, monkeypatch) -> None:
    from lanelab.sim.server import running_simulator

    monkeypatch.setenv(limits.ENV_MAX_BODY, str(1 * MB))
    size = 3 * MB
    with running_simulator() as sim:  # its own server: the body limit is read when the server starts
        token = sim.mint_token()["access_token"]
        headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01",
                   "anthropic-beta": "oauth-2025-04-20", "content-type": "application/json"}
        r = httpx.post(f"{sim.base_url}/v1/messages", content=_pieces(size), timeout=60,
                       headers={**headers, **({"content-length": str(size)} if declared else {})})
        after = httpx.post(f"{sim.base_url}/v1/messages", headers=headers, timeout=30,
                           json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                                 "messages": [{"role": "user", "content": "ping"}]})
        entries = sim.state.requests()
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large" and r.json()["request_id"]
    assert after.status_code == 200, "the simulator is unharmed"
    logged = entries[-2]
    assert logged["status"] == 413 and logged["outcome"] == "request_too_large"
    assert logged["body"]["refused"] and logged["body"]["bytes"] > 1 * MB


def test_the_limit_setting_is_checked(monkeypatch) -> None:
    monkeypatch.delenv(limits.ENV_MAX_BODY, raising=False)
    assert limits.max_body_bytes() == limits.MAX_BODY_BYTES == 32 * MB
    monkeypatch.setenv(limits.ENV_MAX_BODY, "12345")
    assert limits.max_body_bytes() == 12345
    for bad in ("-1", "0", "12k", "1e9"):
        monkeypatch.setenv(limits.ENV_MAX_BODY, bad)
        with pytest.raises(ConfigError, match=limits.ENV_MAX_BODY):
            limits.max_body_bytes()


# ---- bounded records ------------------------------------------------------------------------------------------


def test_a_large_body_is_forwarded_whole_and_recorded_as_a_bounded_prefix(upstream, tmp_path: Path) -> None:
    size = 3 * MB
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "z" * size}]}).encode()
    out = tmp_path / "cap.jsonl"
    with running_capture(upstream.base_url, out) as proxy:
        r = httpx.post(proxy.base_url + "/v1/messages", content=body, headers={"content-type": "application/json"},
                       timeout=60)
    assert r.status_code == 200 and upstream.received == [len(body)], "forwarding is never cut"
    recorded = load_exchanges(out)[-1]["request"]["body"]
    assert recorded["bytes"] == len(body) and recorded["sha256"] == hashlib.sha256(body).hexdigest()
    assert recorded["truncated"] is True and recorded["recorded_bytes"] == capture_mod.BODY_RECORD_LIMIT
    assert len(recorded["text"]) <= capture_mod.BODY_RECORD_LIMIT and "json" not in recorded
    assert out.stat().st_size < 2 * capture_mod.BODY_RECORD_LIMIT < len(body)


def test_the_simulator_log_keeps_a_bounded_prefix_with_size_and_hash(sim, oauth_headers) -> None:
    token = sim.mint_token()["access_token"]
    body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 1,
                       "messages": [{"role": "user", "content": "w" * (3 * MB)}]}).encode()
    r = httpx.post(f"{sim.base_url}/v1/messages", content=body, timeout=60,
                   headers={**oauth_headers(token), "content-type": "application/json"})
    assert r.status_code == 200
    logged = sim.state.requests()[-1]["body"]
    assert logged["truncated"] is True and logged["bytes"] == len(body)
    assert logged["sha256"] == hashlib.sha256(body).hexdigest() and len(logged["preview"]) <= 16_000


def test_capture_records_are_written_off_the_event_loop(upstream, tmp_path: Path, monkeypatch) -> None:
    """Every exchange record is serialised and written by the writer thread, never on the proxy's event loop."""
    writers: list[str] = []
    real_append = capture_mod.CaptureLog._append

    def spy(self, line: str) -> None:
        writers.append(threading.current_thread().name)
        real_append(self, line)

    monkeypatch.setattr(capture_mod.CaptureLog, "_append", spy)
    out = tmp_path / "cap.jsonl"
    with running_capture(upstream.base_url, out) as proxy:
        for _ in range(3):
            httpx.post(proxy.base_url + "/v1/messages", json={"model": "m"}, timeout=30)
    assert len(load_exchanges(out)) == 3
    assert writers[0] == threading.main_thread().name, "the header line is written at start-up"
    assert writers[1:] and all(name.startswith("capture-writer") for name in writers[1:]), writers


def test_awaiting_a_write_returns_once_the_line_is_on_disk(tmp_path: Path) -> None:
    import asyncio

    log = capture_mod.CaptureLog(tmp_path / "c.jsonl", "http://127.0.0.1:1")

    async def go() -> bool:
        return await log.awrite({"record": "exchange", "seq": 1, "note": "x" * 100_000})

    try:
        assert asyncio.run(go()) is True
        assert '"seq": 1' in (tmp_path / "c.jsonl").read_text(), "on disk when the await returns"
        assert log.write({"record": "exchange", "seq": 2, "bad": object()}).result(timeout=10) is False
        assert log.failures and "exchange 2" in log.failures[0]
    finally:
        log.close()


# ---- time limits ----------------------------------------------------------------------------------------------


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) before ``seconds`` pass."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.fixture
def short_read_timeout(monkeypatch) -> float:
    monkeypatch.setattr(limits, "READ_TIMEOUT_S", 0.5)
    return 0.5


@pytest.mark.slow  # waits out the servers' read timeout
@pytest.mark.parametrize("owed", ["nothing sent", "half the headers", "half the body"])
@pytest.mark.parametrize("server", ["simulator", "proxy"])
def test_a_client_that_stops_sending_is_closed(short_read_timeout, upstream, tmp_path: Path, owed: str,
                                               server: str) -> None:
    from lanelab.sim.server import running_simulator

    partial = {"nothing sent": b"",
               "half the headers": b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-ty",
               "half the body": b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json"
                                b"\r\ncontent-length: 100\r\n\r\n{\"model\": "}[owed]
    if server == "simulator":
        ctx = running_simulator()  # its own server: the read timeout is read when the server starts
    else:
        ctx = running_capture(upstream.base_url, tmp_path / "cap.jsonl")
    with ctx as running:
        port = running.port if server == "simulator" else int(running.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(partial)
            assert _closed_within(sock, 20), f"{server} kept a connection that owes it bytes ({owed})"
        # a client that keeps its connection open but is owed an answer is not cut: the server is busy, not it
        with socket.create_connection(("127.0.0.1", port)) as busy:
            busy.sendall(b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            busy.settimeout(20)
            assert busy.recv(4096).startswith(b"HTTP/1.1 ")


@pytest.mark.slow  # waits out an answer slower than three read timeouts
def test_a_slow_answer_is_not_cut_by_the_read_timeout(short_read_timeout, oauth_headers) -> None:
    """Positive control: the simulator takes 3 read timeouts to answer (a latency fault); the client owes nothing
    meanwhile, so the connection stays and the answer arrives."""
    from lanelab.sim.server import running_simulator

    with running_simulator(faults="latency=1.5s") as sim:  # its own server: the short read timeout is read at start
        token = sim.mint_token()["access_token"]
        started = time.monotonic()
        r = httpx.post(f"{sim.base_url}/v1/messages", headers=oauth_headers(token), timeout=30,
                       json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                             "messages": [{"role": "user", "content": "ping"}]})
    assert r.status_code == 200 and time.monotonic() - started >= 1.5


def test_servers_use_the_timed_protocol() -> None:
    config = serve._config(lambda *a: None, None, "off")
    assert issubclass(config.http, __import__("uvicorn").protocols.http.h11_impl.H11Protocol)
    assert config.http.read_timeout_s == limits.READ_TIMEOUT_S


# ---- the figure for make audit --------------------------------------------------------------------------------


@pytest.mark.hardening
@pytest.mark.slow
def test_memory_for_a_200mb_body_through_the_proxy() -> None:
    """A 200 MB body through the capture proxy: refused at the default limit (413) for about nothing, and with the
    limit raised above it, forwarded whole while the capture stays small. The peak-RSS figures go to make audit."""
    from lanelab.devtools import audit

    refused = body_memory.measure(200 * MB)
    forwarded = body_memory.measure(200 * MB, max_body=256 * MB)
    audit.record("body_limits", body_200mb_rss_bytes=refused["peak_rss_delta"],
                 body_200mb_forwarded_rss_bytes=forwarded["peak_rss_delta"],
                 detail={"refused": refused, "forwarded": forwarded})
    assert refused["status"] == 413 and refused["upstream_received"] == 0 and refused["recorded"] == 1
    assert refused["peak_rss_delta"] < 32 * MB and refused["capture_bytes"] < 64 * 1024
    assert forwarded["status"] == 200 and forwarded["upstream_received"] == 200 * MB
    assert forwarded["recorded"] == 1 and forwarded["capture_bytes"] < 2 * MB
    assert forwarded["peak_rss_delta"] < 5 * 200 * MB  # the body, once joined and once framed by the HTTP library
