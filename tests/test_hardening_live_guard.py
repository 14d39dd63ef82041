"""The live guard (issue 7), through the CLI: opt-in, budget, the responsible-use notice, a dry run that shows every
request redacted, and a mistyped base URL refused. Nothing here may open a network connection: every test runs with
socket connects and httpx transports replaced by tripwires.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import httpx
import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.auth.credential import Credential
from lanelab.auth.store import CredentialStore
from lanelab.cli import main
from lanelab.config import LIVE_HOSTS, Settings, host_allowed
from lanelab.matrix import live_guard
from lanelab.matrix.plan import MatrixPlan
from lanelab.wire.spec import HostNotAllowed, RequestSpec, build_request

pytestmark = pytest.mark.hardening

CANARY_SECRET = "Lg7QwE2rTy9UiO4pAs6DfG1hJk3LzX8cVb5NmQ0"
CANARY = "sk-ant-oat01-" + CANARY_SECRET
#: A credential of an unfamiliar shape: only the redaction registry can recognise it.
ODD_SECRET = "Pm4Nb8Vc2Xz6Lk1Jh9Gf3Ds7Aq5Wr0Ty"


def assert_no_secret(text: str, secret: str) -> None:
    hits = [secret[i:i + 8] for i in range(len(secret) - 7) if secret[i:i + 8] in text]
    assert not hits, f"output leaks secret characters {hits[:3]}"


class Tripwire:
    """Fails on any attempt to open a connection (socket or httpx transport), and remembers the attempts."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def trip(self, what: str) -> None:
        self.attempts.append(what)
        raise AssertionError(f"network attempt during a test that must send nothing: {what}")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    wire = Tripwire()
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: wire.trip(f"socket.connect {addr}"))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, addr: wire.trip(f"socket.connect_ex {addr}"))
    monkeypatch.setattr(socket, "create_connection", lambda addr, *a, **k: wire.trip(f"create_connection {addr}"))
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda self, req: wire.trip(f"httpx {req.url}"))
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request",
                        lambda self, req: wire.trip(f"httpx async {req.url}"))
    return wire


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no opt-in, no base URL, a private home, store and output; no real credential files."""
    for name in ("LANELAB_LIVE_OPT_IN", "LANELAB_BASE_URL", "LANELAB_MODE", "CLAUDE_CODE_OAUTH_TOKEN",
                 "ANTHROPIC_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    return tmp_path


def nothing_written(env: Path) -> bool:
    runs = env / "out" / "runs"
    return not runs.exists() or not any(runs.iterdir())


def test_live_without_opt_in_is_refused_and_says_how(env, no_network, capsys):
    assert main(["matrix", "--live", "--budget", "3", "--factors", "x_app"]) == 2
    err = capsys.readouterr().err
    assert "LANELAB_LIVE_OPT_IN=1" in err and "opt-in" in err and "nothing was sent" in err
    assert "diagnoses; it does not evade" in err  # the notice comes with the refusal
    assert no_network.attempts == [] and nothing_written(env)


def test_live_mode_from_the_environment_needs_the_opt_in_too(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_MODE", "live")
    for argv in (["matrix", "--budget", "3"], ["matrix", "--budget", "3", "--dry-run"]):
        assert main(argv) == 2
        assert "LANELAB_LIVE_OPT_IN=1" in capsys.readouterr().err
    assert no_network.attempts == [] and nothing_written(env)


def test_live_without_opt_in_is_refused_whatever_the_budget(env, no_network, capsys):
    assert main(["matrix", "--live"]) == 2
    err = capsys.readouterr().err
    assert "LANELAB_LIVE_OPT_IN=1" in err and "nothing was sent" in err
    assert no_network.attempts == []


@pytest.mark.parametrize("opt_in", ["1", "yes", "true"])
def test_opt_in_without_budget_gets_the_default_budget_and_still_needs_a_confirmation(env, no_network, capsys,
                                                                                     monkeypatch, opt_in):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", opt_in)
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", CANARY)
    assert main(["matrix", "--live", "--factors", "x_app", "--credential", "env-CLAUDE_CODE_OAUTH_TOKEN"]) == 2
    out, err = capsys.readouterr()
    assert "budget: 10 inference requests, retries included (the default; --budget N to change)" in out
    assert "cost: 3 inference requests" in out and "sk-ant-oat01-…" + CANARY[-4:] in out
    assert "--yes" in err and "nothing was sent" in err
    assert_no_secret(out + err, CANARY_SECRET)
    assert no_network.attempts == [] and nothing_written(env)


@pytest.mark.parametrize("value", ["0", "no", "", "maybe"])
def test_anything_but_an_explicit_yes_is_no_opt_in(env, no_network, capsys, monkeypatch, value):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", value)
    assert main(["matrix", "--live", "--budget", "3"]) == 2
    assert "LANELAB_LIVE_OPT_IN=1" in capsys.readouterr().err


def _dry_run(capsys) -> str:
    code = main(["matrix", "--live", "--budget", "5", "--dry-run", "--factors", "x_app",
                 "--credential", "env-CLAUDE_CODE_OAUTH_TOKEN"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out + captured.err


def test_dry_run_shows_notice_host_budget_and_every_request_redacted(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", CANARY)
    out = _dry_run(capsys)
    assert live_guard.NOTICE in out
    assert "host: https://api.anthropic.com" in out and "budget: 5 inference requests" in out
    assert "fits within 5" in out
    blocks = out.split("--- request ")[1:]
    cells = [line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] in
             ("baseline", "x_app=on", "x_app=off")]
    assert len(blocks) == len(cells) == 3, "every cell's request is printed"
    for block, cell_id in zip(blocks, cells):
        assert f"(cell {cell_id})" in block
        assert "POST https://api.anthropic.com/v1/messages" in block
        assert "authorization: Bearer sk-ant-oat01-…" + CANARY[-4:] in block
        body = json.loads(block.split("\n\n", 1)[1].split("\n--- ")[0].strip())
        assert body["max_tokens"] == 1 and "messages" in body  # live minimal spend, the exact JSON that is sent
    assert_no_secret(out, CANARY_SECRET)
    assert no_network.attempts == [] and nothing_written(env)


def test_dry_run_prints_exactly_what_build_request_would_send(env, no_network, capsys, monkeypatch):
    """The printed headers and body are the request's own, credential aside (same code path as a real send)."""
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", CANARY)
    out = _dry_run(capsys)
    plan = MatrixPlan.build("hermes-0.14.0", "ofat", ["x_app"], Settings.from_env({"LANELAB_MODE": "live"}))
    for cell in plan.planned():
        request = build_request(cell.spec, "https://api.anthropic.com", CANARY)
        block = out.split(f"(cell {cell.cell_id}) ---\n", 1)[1].split("\n--- request")[0]
        head, body = block.split("\n\n", 1)
        printed = dict(line.split(": ", 1) for line in head.splitlines()[1:])
        sent = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert {k: v for k, v in printed.items() if k != "authorization"} == sent
        assert body.strip() == request.content.decode()


def test_dry_run_with_a_saved_credential_of_an_unfamiliar_shape(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    path = CredentialStore(env / "home").save(Credential(label="mine", access_token=ODD_SECRET,
                                                         refresh_token=ODD_SECRET[::-1], mode="live",
                                                         issuer="https://platform.claude.com"))
    assert ODD_SECRET in path.read_text()  # the secret really is available to the kit
    assert main(["matrix", "--live", "--budget", "20", "--dry-run", "--factors", "auth",
                 "--credential", "mine"]) == 0
    out = capsys.readouterr().out
    assert "--- request 1" in out and ("authorization: Bearer …" in out or "x-api-key: …" in out)
    assert_no_secret(out, ODD_SECRET)
    assert no_network.attempts == []


def test_dry_run_over_budget_says_the_real_run_would_be_refused(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", CANARY)
    assert main(["matrix", "--live", "--budget", "1", "--dry-run", "--factors", "x_app",
                 "--credential", "env-CLAUDE_CODE_OAUTH_TOKEN"]) == 0
    out = capsys.readouterr().out
    assert "would be refused" in out and "limit of 1" in out
    assert no_network.attempts == []


def test_live_dry_run_without_the_credential_is_a_clear_error(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    assert main(["matrix", "--live", "--budget", "5", "--dry-run", "--factors", "x_app",
                 "--credential", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "'nobody'" in err and "lanelab login" in err
    assert no_network.attempts == []


def test_dry_run_refuses_a_credential_of_unknown_origin_for_the_live_host(env, no_network, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    CredentialStore(env / "home").save(Credential(label="old", access_token=CANARY))
    assert main(["matrix", "--live", "--dry-run", "--factors", "x_app", "--credential", "old"]) == 2
    err = capsys.readouterr().err
    assert "'old' does not record who issued it" in err and "lanelab login --label live-pkce" in err
    assert_no_secret(err, CANARY_SECRET)
    assert no_network.attempts == []


def test_sim_dry_run_can_show_requests_without_minting(env, no_network, capsys):
    assert main(["matrix", "--dry-run", "--show-requests", "--factors", "x_app"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- request ") == 3 and f"Bearer {live_guard.LATER}" in out
    assert "POST http://127.0.0.1/v1/messages" in out and live_guard.NOTICE not in out
    assert no_network.attempts == []


@pytest.mark.parametrize("url", ["https://api.anthropic.co", "https://api.anthropic.com.evil.example",
                                 "http://api.anthropic.com", "https://anthropic.com@evil.example",
                                 "http://127.0.0.1.nip.io:8080"])
@pytest.mark.parametrize("live", [False, True])
def test_a_mistyped_base_url_is_refused_before_anything_is_sent(env, no_network, capsys, monkeypatch, url, live):
    monkeypatch.setenv("LANELAB_BASE_URL", url)
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", CANARY)
    argv = ["matrix", "--factors", "x_app", "--no-progress"] + (["--live", "--budget", "5"] if live else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "LANELAB_BASE_URL" in err and "typo" in err and "refuses to send a credential" in err
    assert "Traceback" not in err
    assert no_network.attempts == [] and nothing_written(env)


def test_the_wire_refuses_to_attach_a_token_for_a_foreign_host(no_network):
    with pytest.raises(HostNotAllowed, match="typo"):
        build_request(RequestSpec(), "https://api.anthropic.co", CANARY)
    assert no_network.attempts == []


def _allowed_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host in LIVE_HOSTS or host == "localhost"


@settings(max_examples=examples(300), deadline=None)
@given(scheme=st.sampled_from(["http", "https", "HTTPS", "ftp"]),
       host=st.one_of(st.sampled_from(sorted(LIVE_HOSTS | {"127.0.0.1", "localhost", "[::1]", "127.9.9.9"})),
                      st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=20)),
       junk=st.sampled_from(["", "@evil.example", ".evil.example", "\\@evil.example", "#@evil.example",
                             "?@evil.example", ":443@evil.example", "%2e", ".", "\t"]),
       tail=st.sampled_from(["", "/v1/messages", ":8443/v1"]))
def test_an_allowed_url_only_ever_reaches_an_allowed_host(scheme, host, junk, tail):
    """Whatever the URL looks like, when the allow-list accepts it httpx (which sends) connects to an allowed host."""
    url = f"{scheme}://{host}{junk}{tail}"
    if not host_allowed(url):
        return
    try:
        target = httpx.URL(url).host
    except httpx.InvalidURL:
        return  # httpx refuses it too: nothing would be sent
    assert _allowed_host(target), f"{url!r} passes the allow-list but httpx would connect to {target!r}"
