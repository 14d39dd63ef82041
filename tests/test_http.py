"""The one HTTP client factory: no environment proxies, no redirects, the allow-list on every request."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from lanelab import http as lanelab_http
from lanelab.config import Settings, host_allowed, is_loopback
from lanelab.errors import ConfigError, HostNotAllowed, UserError
from lanelab.wire.send import send
from lanelab.wire.spec import RequestSpec


class Listener:
    """A TCP listener on loopback that records whether anything connected (a stand-in for a rogue proxy)."""

    reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self._stop.is_set():  # close()'s own connection, made to wake this thread: not recorded
                conn.close()
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        try:
            socket.create_connection(self.sock.getsockname(), timeout=2).close()  # wakes the accept at once
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def rogue_proxy():
    listener = Listener()
    yield listener
    listener.close()


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.9.9.9", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.1.example.com", False), ("127.0.0.1.nip.io", False), ("localhost.evil", False), ("", False),
    (None, False), ("2130706433", False), ("api.anthropic.com", False),
])
def test_one_loopback_check(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "HTTPS_PROXY"])
def test_environment_proxies_never_see_a_credential(monkeypatch, sim, rogue_proxy, var):
    monkeypatch.setenv(var, rogue_proxy.url)
    obs = send(RequestSpec(body={"model": "claude-haiku-4-5", "max_tokens": 1,
                                 "messages": [{"role": "user", "content": "hi"}]},
                           headers={"anthropic-version": "2023-06-01"}), sim.base_url, "sk-ant-oat01-" + "x" * 40)
    assert obs.status is not None  # answered by the simulator, directly
    assert rogue_proxy.received == []


def test_matrix_token_minting_ignores_environment_proxies(monkeypatch, sim, rogue_proxy):
    from lanelab.matrix.sim_client import sim_token

    monkeypatch.setenv("HTTP_PROXY", rogue_proxy.url)
    monkeypatch.setenv("ALL_PROXY", rogue_proxy.url)
    assert sim_token(sim.base_url)
    assert rogue_proxy.received == []


def test_redirects_are_returned_not_followed(sim):
    with lanelab_http.client(sim.base_url) as client:
        r = client.get(sim.base_url + "/oauth/authorize", params={
            "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e", "response_type": "code", "code": "true",
            "redirect_uri": "http://localhost:9/callback", "scope": "user:profile user:inference",
            "code_challenge": "a" * 43, "code_challenge_method": "S256", "state": "s" * 20})
    assert r.is_redirect and r.next_request is not None  # not followed


@pytest.mark.parametrize("url", ["http://10.0.0.1/v1/messages", "https://evil.example/x",
                                 "http://api.anthropic.com/v1/messages", "http://127.0.0.1.nip.io/x"])
def test_every_request_is_checked_before_sending(url):
    with lanelab_http.client() as client, pytest.raises(HostNotAllowed):
        client.get(url)


def test_a_plain_http_loopback_client_refuses_https():
    with lanelab_http.client("http://127.0.0.1:1") as client, pytest.raises(HostNotAllowed):
        client.get("https://api.anthropic.com/v1/models")


def test_explicit_proxy_is_refused_for_loopback_and_checked():
    with pytest.raises(ConfigError, match="loopback"):
        Settings.from_env({"LANELAB_PROXY": "http://proxy.corp:3128", "LANELAB_BASE_URL": "http://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="proxy URL"):
        Settings.from_env({"LANELAB_PROXY": "not a url", "LANELAB_MODE": "live"})
    s = Settings.from_env({"LANELAB_PROXY": "http://proxy.corp:3128", "LANELAB_MODE": "live"})
    assert s.proxy == "http://proxy.corp:3128"


def test_explicit_proxy_carries_only_anthropic_hosts(sim, rogue_proxy):
    settings = Settings(mode="live", base_url="https://api.anthropic.com", proxy=rogue_proxy.url)
    with lanelab_http.client(settings=settings, timeout=5) as client:
        assert client.get(sim.base_url + "/v1/models").status_code in (200, 401)  # loopback goes direct
    assert rogue_proxy.received == []


def test_ca_bundle_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="PEM"):
        Settings.from_env({"LANELAB_CA_BUNDLE": str(tmp_path / "missing.pem")})


def test_errors_are_user_errors_with_matching_builtins():
    assert issubclass(ConfigError, UserError) and issubclass(ConfigError, ValueError)
    assert issubclass(HostNotAllowed, UserError) and issubclass(HostNotAllowed, PermissionError)
    assert not host_allowed("http://[::2]/x")
    assert isinstance(httpx.URL("http://[::1]:1").host, str)


class CookieSetter(Listener):
    """A loopback server whose every answer sets a cookie; it records each request it receives."""

    reply = (b"HTTP/1.1 200 OK\r\nset-cookie: session=abcdefghijkl; Path=/\r\nconnection: close\r\n"
             b"content-length: 2\r\n\r\nok")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_cookie_a_server_sets_is_seen_but_never_sent_back(flavour):
    server = CookieSetter()
    try:
        if flavour == "sync":
            with lanelab_http.client(server.url) as c:
                first = c.get(server.url + "/first")
                c.get(server.url + "/second")
                kept = list(c.cookies.jar)
        else:
            import asyncio

            async def twice() -> tuple[httpx.Response, list[object]]:
                async with lanelab_http.async_client(server.url) as c:
                    answer = await c.get(server.url + "/first")
                    await c.get(server.url + "/second")
                    return answer, list(c.cookies.jar)

            first, kept = asyncio.run(twice())
    finally:
        server.close()
    assert first.headers["set-cookie"].startswith("session=")  # recorded with its response ...
    assert len(server.received) == 2 and b"/second" in server.received[1]
    assert b"cookie" not in server.received[1].lower()  # ... and not sent back
    assert kept == []
