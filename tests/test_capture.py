"""The capture proxy forwards byte for byte, streams without buffering, records redacted, refuses unsafe upstreams."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.config import Settings
from lanelab.errors import HostNotAllowed, UserError
from lanelab.walkthrough.capture import CaptureRefused, check_upstream, running_capture
from lanelab.wire.exchanges import EXCHANGE_COLUMNS, inference_exchange, load_exchanges
from loopback_upstream import LoopbackUpstream


class Upstream(LoopbackUpstream):
    """A throwaway loopback server that keeps exactly what it received and can stream slowly."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.release = threading.Event()
        self.finished = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.received.append({"method": self.command, "target": self.path,
                                       "headers": [(k.lower(), v) for k, v in self.headers.items()], "body": body})
                if self.path.startswith("/slow"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(b'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n')
                    self.wfile.flush()
                    outer.release.wait(timeout=20)
                    self.wfile.write(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
                    self.wfile.flush()
                    outer.finished.set()
                    return
                if self.path.startswith("/cut"):  # promises 100 bytes, sends 10, hangs up
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "100")
                    self.end_headers()
                    self.wfile.write(b'{"partial"')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                payload = json.dumps({"echo_auth": self.headers.get("authorization"), "ok": True}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", "req_011test")
                if self.path.startswith("/cookie"):
                    self.send_header("set-cookie", "edge=abcdefghijkl; Path=/")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

        super().__init__(Handler)

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        super().__exit__(*exc)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


TOKEN = "sk-ant-oat01-" + "Zq3" * 20


def test_forwards_byte_for_byte(upstream: Upstream, tmp_path) -> None:
    body = '{"model": "m",  "messages": [{"role": "user", "content": "h\u00e9llo"}], "tools": [] }'.encode()
    headers = [("authorization", f"Bearer {TOKEN}"), ("user-agent", "Anthropic/Python 0.86.0"),
               ("user-agent", "claude-cli/2.1.74 (external, cli)"), ("anthropic-beta", "a-1,b-2"),
               ("x-odd", "spaced  value;\tq=1"), ("content-type", "application/json")]
    with running_capture(upstream.base_url, tmp_path / "cap.jsonl") as proxy, httpx.Client() as client:
        req = client.build_request("POST", proxy.base_url + "/v1/messages?beta=true&x=%2F", content=body)
        req.headers = httpx.Headers(headers + [("host", "ignored"), ("content-length", str(len(body)))])
        resp = client.send(req)
    assert resp.status_code == 200
    got = upstream.received[-1]
    assert got["method"] == "POST" and got["target"] == "/v1/messages?beta=true&x=%2F"
    assert got["body"] == body
    sent = list(headers)
    received = [(k, v) for k, v in got["headers"] if k not in ("host", "content-length")]
    assert received == sent  # same values, same order, duplicates kept
    assert resp.json()["echo_auth"] == f"Bearer {TOKEN}"  # the response passes back unchanged


def test_capture_is_redacted_and_complete(upstream: Upstream, tmp_path) -> None:
    out = tmp_path / "cap.jsonl"
    odd_secret = "opaque-session-value-1234567890"
    with running_capture(upstream.base_url, out) as proxy:
        httpx.post(proxy.base_url + "/v1/messages", headers={"authorization": f"Bearer {TOKEN}",
                   "cookie": odd_secret}, json={"model": "m", "messages": [{"role": "user", "content": "ping"}]})
        httpx.get(proxy.base_url + "/v1/models", headers={"x-api-key": TOKEN})
    text = out.read_text()
    assert TOKEN not in text and TOKEN[13:] not in text and odd_secret not in text
    assert redact.find_secrets(text) == []
    exchanges = load_exchanges(out)
    assert [e["request"]["path"] for e in exchanges] == ["/v1/messages", "/v1/models"]
    first = exchanges[0]
    assert first["request"]["body"]["json"]["messages"][0]["content"] == "ping"
    assert first["response"]["status"] == 200
    assert first["response"]["observation"]["request_id"] == "req_011test"
    assert first["timing"]["total_ms"] >= first["timing"]["upstream_headers_ms"] >= 0
    assert inference_exchange(exchanges)["seq"] == first["seq"]


def test_streams_without_buffering(upstream: Upstream, tmp_path) -> None:
    with running_capture(upstream.base_url, tmp_path / "cap.jsonl") as proxy:
        with httpx.stream("POST", proxy.base_url + "/slow", json={"stream": True},
                          timeout=httpx.Timeout(10.0)) as resp:
            chunks = resp.iter_raw()
            first = next(chunks)
            assert b"message_start" in first
            assert not upstream.finished.is_set()  # the upstream has not finished: nothing was buffered
            upstream.release.set()
            rest = b"".join(chunks)
        assert b"message_stop" in rest
    record = load_exchanges(tmp_path / "cap.jsonl")[-1]
    assert record["response"]["streamed"] is True
    assert record["response"]["observation"]["stream_events"] == ["message_start", "message_stop"]


def test_unreachable_upstream_gives_502_and_a_record(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with running_capture(dead, tmp_path / "cap.jsonl") as proxy:
        resp = httpx.post(proxy.base_url + "/v1/messages", json={})
    assert resp.status_code == 502 and resp.json()["error"]["type"] == "capture_proxy_error"
    record = load_exchanges(tmp_path / "cap.jsonl")[-1]
    assert record["error"].startswith("ConnectError") and list(record) == [
        "record", "seq", "started_at", "upstream", "request", "response", "timing", "error"]
    assert record["response"]["status"] == 502 and record["response"]["bytes"] == len(resp.content)
    assert record["timing"]["first_chunk_ms"] is None and "upstream_headers_ms" not in record["timing"]


def test_a_stream_broken_by_the_upstream_is_recorded_with_what_arrived(upstream: Upstream, tmp_path) -> None:
    with running_capture(upstream.base_url, tmp_path / "cap.jsonl") as proxy, pytest.raises(httpx.HTTPError):
        httpx.post(proxy.base_url + "/cut", json={})
    record = load_exchanges(tmp_path / "cap.jsonl")[-1]
    assert list(record) == ["record", "seq", "started_at", "upstream", "request", "timing", "response", "error"]
    assert record["error"].startswith("RemoteProtocolError")
    assert record["response"]["status"] == 200 and record["response"]["bytes"] == len(b'{"partial"')
    assert record["timing"]["total_ms"] >= record["timing"]["first_chunk_ms"] >= 0


def test_refuses_unsafe_upstreams() -> None:
    with pytest.raises(CaptureRefused, match="neither loopback"):
        check_upstream("https://evil.example.com", Settings(live_opt_in=True))
    with pytest.raises(CaptureRefused, match="LANELAB_LIVE_OPT_IN"):
        check_upstream("https://api.anthropic.com", Settings(live_opt_in=False))
    assert check_upstream("https://api.anthropic.com/", Settings(live_opt_in=True)) == "https://api.anthropic.com"
    with pytest.raises(CaptureRefused, match="names an Anthropic host over http: a credential goes to it over https"):
        check_upstream("http://api.anthropic.com:80", Settings(live_opt_in=True))  # not "neither … nor Anthropic"
    for port in ("99999", "-1", "x"):
        with pytest.raises(CaptureRefused, match="has no valid port"):
            check_upstream(f"http://127.0.0.1:{port}", Settings())
    with pytest.raises(UserError):
        load_exchanges("/nonexistent/cap.jsonl")


def test_with_the_simulator(tmp_path, sim) -> None:
    with running_capture(sim.base_url, tmp_path / "c.jsonl") as proxy:
        token = sim.mint_token()["access_token"]
        import anthropic

        empty = proxy.to_frame()  # nothing recorded yet: the same columns, no row
        assert len(empty) == 0 and list(empty.columns) == list(EXCHANGE_COLUMNS)
        with anthropic.Anthropic(auth_token=token, base_url=proxy.base_url, max_retries=0,
                                 default_headers={"anthropic-beta": "oauth-2025-04-20"},
                                 http_client=lanelab_http.sdk_client(proxy.base_url)) as client:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=1,
                                   messages=[{"role": "user", "content": "ping"}])
        frame = proxy.to_frame()
    ex = inference_exchange(load_exchanges(tmp_path / "c.jsonl"))
    assert ex["request"]["path"] == "/v1/messages"
    assert list(frame["wire path"]) == ["/v1/messages"] and list(frame["status"]) == [200]
    assert list(frame["error"]) == [""]  # no error: an empty cell, not NaN
    assert frame["user-agent"][0].startswith("Anthropic/Python")
    assert token not in (tmp_path / "c.jsonl").read_text()


def test_the_sdk_with_the_kits_client_cannot_leave_the_allow_list() -> None:
    anthropic = pytest.importorskip("anthropic")
    sdk = anthropic.Anthropic(auth_token=TOKEN, base_url="https://api.anthropic.com.evil.example", max_retries=0,
                              http_client=lanelab_http.sdk_client())
    with sdk, pytest.raises(anthropic.APIConnectionError) as info:
        sdk.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert isinstance(info.value.__cause__, HostNotAllowed)
    assert not sdk._client.follow_redirects and not sdk._client.trust_env


def test_capture_to_profile_round_trip(upstream: Upstream, tmp_path, monkeypatch) -> None:
    from lanelab.cli import main
    from lanelab.matrix.from_capture import load_request, profile_from_capture
    from lanelab.wire.attestation import carries_attestation

    body = {"model": "m", "max_tokens": 5, "system": [
        {"type": "text", "text": "x-anthropic-billing-header: test-fixture;"}, {"type": "text", "text": "Be kind."}],
        "tools": [{"name": "mcp_read", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "my private question"}]}]}
    out = tmp_path / "cap.jsonl"
    with running_capture(upstream.base_url, out) as proxy:
        httpx.post(proxy.base_url + "/v1/messages?beta=true", json=body,
                   headers={"authorization": f"Bearer {TOKEN}", "x-app": "cli"})
    path = profile_from_capture(out, "captured-test", prompt="ping", out_dir=tmp_path / "profiles")
    text = path.read_text()
    assert TOKEN not in text and "private question" not in text and "authorization" not in text
    label, spec = load_request(str(path))
    assert label == "captured-test" and spec.auth == "bearer" and spec.query == {"beta": "true"}
    assert spec.headers["x-app"] == "cli" and "host" not in spec.headers
    assert spec.body["tools"] == body["tools"] and spec.body["messages"][0]["content"][0]["text"] == "ping"
    assert not carries_attestation(spec) and spec.body["system"] == [{"type": "text", "text": "Be kind."}]
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path))
    assert main(["capture", "--to-profile", "cli-made", str(out), "--profiles-dir", str(tmp_path / "p2")]) == 0
    assert (tmp_path / "p2" / "cli-made.toml").is_file()


@pytest.mark.slow  # a CLI process
def test_capture_cli_serves_until_interrupted(upstream: Upstream, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "cli.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "capture", "--upstream", upstream.base_url,
                             "--out", str(out)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LANELAB_OUT": str(tmp_path)})
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        assert httpx.get(base + "/v1/models").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "1 exchange(s) recorded" in rest  # Ctrl-C, as every command ends on it
    assert load_exchanges(out)[0]["request"]["path"] == "/v1/models"


def test_the_proxy_forwards_no_cookie_the_client_did_not_send(upstream: Upstream, tmp_path) -> None:
    """A cookie the upstream sets reaches the client in its answer; the proxy never adds it to a later request
    (the forwarded request is the client's, nothing more)."""
    with running_capture(upstream.base_url, tmp_path / "c.jsonl") as proxy, httpx.Client() as client:
        first = client.get(proxy.base_url + "/cookie")
        client.cookies.clear()  # the client itself sends none
        client.get(proxy.base_url + "/second")
    assert first.headers["set-cookie"].startswith("edge=")
    assert [r["target"] for r in upstream.received] == ["/cookie", "/second"]
    assert not [v for k, v in upstream.received[1]["headers"] if k == "cookie"]


def test_a_proxy_that_cannot_start_leaves_no_file(tmp_path) -> None:
    """A port in use refuses the start in one line; no header-only capture file is left behind (an existing
    capture file, appended to, is kept)."""
    from lanelab.serve import ServerStartError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerStartError), running_capture("http://127.0.0.1:9", tmp_path / "new.jsonl", port=port):
            pass
        assert not (tmp_path / "new.jsonl").exists()
        (tmp_path / "old.jsonl").write_text('{"record": "capture"}\n')
        with pytest.raises(ServerStartError), running_capture("http://127.0.0.1:9", tmp_path / "old.jsonl", port=port):
            pass
        assert (tmp_path / "old.jsonl").read_text().startswith('{"record": "capture"}\n')


def test_a_capture_with_no_inference_request_is_named_in_the_message(tmp_path) -> None:
    from lanelab.errors import NotFound

    for name, text in (("empty.jsonl", ""), ("array.jsonl", '[{"a": 1}]\n')):
        (tmp_path / name).write_text(text)
        with pytest.raises(NotFound, match=f"^{tmp_path / name} holds no inference request"):
            inference_exchange(load_exchanges(tmp_path / name))
