"""Which host serves which part: under the real names each host serves only its own part; on plain loopback every path
is one origin. The authorize step sends the browser to the registered callback host; claude.com/cai redirects."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from lanelab.serve import running_server
from lanelab.sim.app import SimApp, create_app
from lanelab.sim.oauth_server import CLIENT_IDS
from lanelab.sim.server import SimHandle

CLIENT_ID = next(iter(CLIENT_IDS))
RealNames = Callable[..., tuple[str, SimApp]]
PLATFORM_CALLBACK = "https://platform.claude.com/oauth/code/callback"
CONSOLE_CALLBACK = "https://console.anthropic.com/oauth/code/callback"


@pytest.fixture(scope="module")
def real_names_server() -> Iterator[tuple[str, SimApp]]:
    """The simulator as it answers under the real names (the rehearsal serves it with TLS; the Host header is what
    routes, so plain http on loopback with a Host header exercises the same code). Its own server: the host map is
    chosen when the app is made; one for the module, reset before each test."""
    app = create_app(policy="2026-11", real_hosts=True)
    with running_server(app, name="lanelab-sim") as served:
        yield served.base_url, app


@pytest.fixture
def real_names(real_names_server: tuple[str, SimApp]) -> Iterator[RealNames]:
    """``real_names(policy)``: the real-names simulator, reset, with that policy (its base URL and app)."""
    base, app = real_names_server

    def configure(policy: str = "2026-11") -> tuple[str, SimApp]:
        app.simulator.reset()
        app.simulator.set_policy(policy)
        return base, app

    yield configure
    app.simulator.reset()


def get(base: str, host: str, path: str, **kw) -> httpx.Response:
    return httpx.get(base + path, headers={"host": host, **kw.pop("headers", {})}, timeout=10, **kw)


def authorize_query(redirect_uri: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri,
                       "scope": "user:profile user:inference", "code_challenge": challenge,
                       "code_challenge_method": "S256", "state": "st4te", "code": "true"})
    return query, verifier


@pytest.mark.parametrize(("host", "path", "method", "served"), [
    ("api.anthropic.com", "/v1/models", "GET", True),
    ("platform.claude.com", "/v1/models", "GET", False),
    ("claude.ai", "/v1/messages", "POST", False),
    ("api.anthropic.com", "/v1/oauth/token", "POST", True),  # OmniRoute PR #3203: the API host answers too
    ("platform.claude.com", "/v1/oauth/token", "POST", True),
    ("claude.ai", "/v1/oauth/token", "POST", False),
    ("claude.com", "/v1/oauth/token", "POST", False),
    ("claude.ai", "/oauth/authorize", "GET", True),
    ("api.anthropic.com", "/oauth/authorize", "GET", False),
    ("platform.claude.com", "/oauth/code/callback", "GET", True),
    ("claude.ai", "/oauth/code/callback", "GET", False),
    ("127.0.0.1", "/v1/models", "GET", True),  # a name the table does not list: one origin, as on loopback
])
def test_each_real_host_serves_only_its_part(host: str, path: str, method: str, served: bool,
                                             real_names: RealNames) -> None:
    base, _ = real_names()
    r = httpx.request(method, base + path, headers={"host": host}, timeout=10)
    if served:  # answered by the route itself (without a credential or parameters: a 400 or 401, never 404)
        assert r.status_code in (400, 401)
    else:
        assert r.status_code == 404 and r.json()["error"] == {"type": "not_found_error", "message": f"Not found: {path}"}


def test_host_refusals_are_logged_with_their_rule(real_names: RealNames) -> None:
    base, app = real_names()
    httpx.get(base + "/v1/models", headers={"host": "claude.ai"}, timeout=10)
    entry = app.state.requests()[-1]
    assert (entry["status"], entry["rule"], entry["outcome"]) == (404, "hosts", "not_found")


def test_claude_com_cai_redirects_to_claude_ai_with_the_query(real_names: RealNames) -> None:
    query, _ = authorize_query(PLATFORM_CALLBACK)
    base, _ = real_names()
    r = get(base, "claude.com", f"/cai/oauth/authorize?{query}")
    elsewhere = get(base, "claude.ai", f"/cai/oauth/authorize?{query}")
    assert r.status_code == 307 and r.headers["location"] == f"https://claude.ai/oauth/authorize?{query}"
    assert elsewhere.status_code == 404


@pytest.mark.parametrize("callback", [PLATFORM_CALLBACK, CONSOLE_CALLBACK])
def test_authorize_sends_the_browser_to_the_registered_callback_host(callback: str,
                                                                     real_names: RealNames) -> None:
    query, _ = authorize_query(callback)
    base, _ = real_names()
    r = get(base, "claude.ai", f"/oauth/authorize?{query}")
    target = urlsplit(r.headers["location"])
    page = get(base, target.hostname, f"{target.path}?{target.query}")
    assert r.status_code == 302 and f"{target.scheme}://{target.hostname}{target.path}" == callback
    assert parse_qs(target.query)["state"] == ["st4te"] and parse_qs(target.query)["code"]
    assert page.status_code == 200 and "paste-value" in page.text


def test_under_the_real_names_the_simulators_own_callback_is_not_registered(real_names: RealNames) -> None:
    query, _ = authorize_query("https://claude.ai/oauth/code/callback")
    base, _ = real_names()
    r = get(base, "claude.ai", f"/oauth/authorize?{query}")
    assert r.status_code == 400 and "not registered" in r.text


def exchange(base: str, host: str, redirect_uri: str) -> httpx.Response:
    query, verifier = authorize_query(redirect_uri)
    code = parse_qs(urlsplit(get(base, "claude.ai", f"/oauth/authorize?{query}").headers["location"]).query)["code"][0]
    body = urlencode({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                      "redirect_uri": redirect_uri, "client_id": CLIENT_ID, "state": "st4te"})
    return httpx.post(base + "/v1/oauth/token", content=body, timeout=10,
                      headers={"host": host, "content-type": "application/x-www-form-urlencoded",
                               "user-agent": "axios/1.7.9"})


@pytest.mark.parametrize(("policy", "console_status"), [("2026-05-25", 200), ("2026-08", 404), ("2026-11", 404)])
def test_the_console_token_host_404s_for_code_exchange_from_june(policy: str, console_status: int,
                                                                 real_names: RealNames) -> None:
    base, app = real_names(policy)
    console = exchange(base, "console.anthropic.com", CONSOLE_CALLBACK)
    platform = exchange(base, "platform.claude.com", PLATFORM_CALLBACK)
    rules = [e["rule"] for e in app.state.requests() if e["path"] == "/v1/oauth/token"]
    assert console.status_code == console_status and platform.status_code == 200
    assert ("token_console_code_exchange" in rules) == (console_status == 404)


# ------------------------------------------------------------------------------------------------ plain loopback
def test_on_plain_loopback_every_path_is_one_origin(sim_with: Callable[..., SimHandle]) -> None:
    query, _ = authorize_query(PLATFORM_CALLBACK)
    sim = sim_with(policy="2026-11")
    cai = httpx.get(f"{sim.base_url}/cai/oauth/authorize?{query}", timeout=10)
    authorized = httpx.get(cai.headers["location"], timeout=10)
    page = httpx.get(authorized.headers["location"], timeout=10)
    models = httpx.get(sim.base_url + "/v1/models", headers={"host": "claude.ai"}, timeout=10)
    assert cai.status_code == 307 and cai.headers["location"] == f"{sim.base_url}/oauth/authorize?{query}"
    assert authorized.status_code == 302 and authorized.headers["location"].startswith(
        f"{sim.base_url}/oauth/code/callback?")
    assert page.status_code == 200 and "paste-value" in page.text
    assert models.status_code == 401  # no credential, but served: no host map on plain loopback


def test_the_tls_simulator_serves_real_names_only_for_a_real_host_name(tmp_path) -> None:
    from lanelab.serve import TLS
    from lanelab.sim.server import _real_names

    assert _real_names(TLS(tmp_path / "c.pem", tmp_path / "k.pem", "api.anthropic.com"))
    assert not _real_names(TLS(tmp_path / "c.pem", tmp_path / "k.pem", "127.0.0.1")) and not _real_names(None)
