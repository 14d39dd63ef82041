"""Issue 12, items 4-6: no secret reaches a capture file, the simulator's request log, a profile or a log line,
whatever its shape (opaque tokens that look like nothing in particular included), and a token that could not go into
an HTTP header is refused at every entry with a message that never shows it."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from lanelab import errors, redact
from lanelab.errors import InputError
from loopback_upstream import LoopbackUpstream


def opaque(tag: str) -> str:
    """A secret with no recognisable shape (no ``sk-ant-`` prefix, no JWT, no ``Bearer``)."""
    return f"op{tag}" + secrets.token_hex(12)


def windows(secret: str, size: int = 8) -> set[str]:
    """Every ``size`` consecutive characters of the secret part (a public ``sk-ant-oat01-`` prefix is not secret)."""
    body = re.sub(r"^sk-ant-[a-z]+\d{2}-", "", secret)
    return {body[i:i + size] for i in range(len(body) - size + 1)}


def leaked(text: str, secret_values: list[str] | dict[str, str]) -> list[str]:
    """The secrets of which ``text`` holds 8 consecutive characters (their names, or their masks: never values)."""
    named = secret_values.items() if isinstance(secret_values, dict) else ((redact.mask(s), s) for s in secret_values)
    return [name for name, s in named if any(w in text for w in windows(s))]


# ---------------------------------------------------------------------------------------------------------------
# A scripted upstream: each path answers with a canned status, headers and body.


class Upstream(LoopbackUpstream):
    def __init__(self, routes: dict[str, tuple[int, list[tuple[str, str]], bytes]]) -> None:
        self.routes = routes
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                status, headers, body = outer.routes.get(path, (404, [("content-type", "text/plain")], b"no"))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

        super().__init__(Handler)


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.fixture
def forget() -> Iterator[None]:
    """Start with an empty registry: each secret below must be found by the rules, not by luck."""
    redact.forget_secrets()
    yield


def test_capture_file_holds_no_secret_whatever_its_shape_or_place(tmp_path: Path, forget: None) -> None:
    """Item 4: every leak path the issue lists, each with its own opaque secret, through the recording proxy."""
    from lanelab.walkthrough.capture import running_capture

    s = {name: opaque(name[:3]) for name in (
        "location_code", "query_token", "form_access", "form_refresh", "text_access", "unlisted", "nested",
        "as_key", "goog_key", "echoed_key", "sse", "path_token", "cookie_sid", "oauth_code", "oauth_verifier",
        "oauth_refresh", "json_access", "json_refresh", "json_id", "bearer")}
    routes = {
        "/authorize": (302, [("location", f"/callback?code={s['location_code']}&state=st4te")], b""),
        "/form-token": (200, [("content-type", "application/x-www-form-urlencoded")],
                        f"access_token={s['form_access']}&refresh_token={s['form_refresh']}&expires_in=3600".encode()),
        "/text-token": (200, [("content-type", "text/plain")], f"access_token={s['text_access']}".encode()),
        "/json": (200, [("content-type", "application/json")], _json({
            "session_blob_token": s["unlisted"], "refresh_token": {"value": s["nested"]},
            s["as_key"]: {"scopes": ["user:inference"]}, "ok": True})),
        "/error": (401, [("content-type", "application/json")], _json({
            "type": "error", "error": {"type": "authentication_error",
                                       "message": f"invalid key {s['echoed_key']} and cookie {s['cookie_sid']}"}})),
        "/sse": (200, [("content-type", "text/event-stream")],
                 (f'event: message_start\ndata: {{"type": "message_start", "message": {{"id": "m1", '
                  f'"session_token": "{s["sse"]}"}}}}\n\n'
                  f'event: error\ndata: {{"type": "error", "error": {{"type": "x", "message": "token={s["sse"]}"}}}}'
                  "\n\n").encode()),
        "/v1/oauth/token": (200, [("content-type", "application/json")], _json({
            "access_token": s["json_access"], "refresh_token": s["json_refresh"], "id_token": s["json_id"],
            "echo": f"{s['oauth_code']} {s['oauth_verifier']}"})),
        "/v1/oauth/refresh": (400, [("content-type", "application/json")], _json({
            "error": "invalid_grant", "error_description": f"refresh token {s['oauth_refresh']} was used"})),
    }
    out = tmp_path / "cap.jsonl"
    with Upstream(routes) as up, running_capture(up.base_url, out) as proxy, httpx.Client() as client:
        base = proxy.base_url
        client.get(base + "/authorize")
        client.get(base + "/json", headers={"authorization": f"Bearer {s['as_key']}"})
        client.get(base + f"/json?access_token={s['query_token']}&x=1")
        client.post(base + "/form-token", data={"grant_type": "authorization_code"})
        client.post(base + "/text-token", content=b"x")
        client.get(base + "/error", headers={"x-goog-api-key": s["echoed_key"],
                                             "cookie": f"theme=dark; sid={s['cookie_sid']}"})
        client.get(base + "/sse")
        client.get(base + f"/v1/files/{s['path_token']}", headers={"x-api-key": s["path_token"]})
        client.get(base + f"/cb;access_token={s['goog_key']}")
        client.post(base + "/v1/oauth/token", data={
            "grant_type": "authorization_code", "code": s["oauth_code"], "code_verifier": s["oauth_verifier"]})
        client.post(base + "/v1/oauth/refresh", json={"grant_type": "refresh_token",
                                                      "refresh_token": s["oauth_refresh"]})
        client.get(base + "/error", headers={"authorization": f"Bearer {s['bearer']}"})
    text = out.read_text()
    assert len(text.splitlines()) == 13, "the header record and twelve exchanges"
    assert not leaked(text, s), f"leaked: {leaked(text, s)}"
    # positive controls: what is not secret is still there
    records = [json.loads(line) for line in text.splitlines()[1:]]
    assert records[0]["response"]["status"] == 302 and "state=st4te" in json.dumps(records[0])
    assert records[2]["request"]["query"].endswith("&x=1") and "access_token=" in records[2]["request"]["query"]
    assert records[5]["response"]["observation"]["error_type"] == "authentication_error"


def test_every_secret_is_registered_before_the_record_is_written(tmp_path: Path, forget: None) -> None:
    """Secrets from the Authorization/x-api-key/cookie headers and from OAuth bodies (request and response, JSON or
    form) are known to the kit's redactor once the exchange is recorded, so they are masked anywhere later."""
    from lanelab.walkthrough.capture import running_capture

    access, refresh, idt = opaque("acc"), opaque("ref"), opaque("idt")
    code, verifier, cookie, key = opaque("cod"), opaque("ver"), opaque("coo"), opaque("key")
    routes = {"/v1/oauth/token": (200, [("content-type", "application/x-www-form-urlencoded")],
                                  f"access_token={access}&refresh_token={refresh}&id_token={idt}".encode())}
    with Upstream(routes) as up, running_capture(up.base_url, tmp_path / "c.jsonl") as proxy:
        httpx.post(proxy.base_url + "/v1/oauth/token", headers={"x-api-key": key, "cookie": f"a=b; s={cookie}"},
                   json={"grant_type": "authorization_code", "code": code, "code_verifier": verifier})
    secret_values = {"access": access, "refresh": refresh, "id": idt, "code": code, "verifier": verifier,
                     "cookie": cookie, "key": key}
    unknown = [name for name, value in secret_values.items() if value in redact.redact_text(f"later: {value}.")]
    assert not unknown, f"not registered: {unknown}"


def test_to_profile_never_copies_a_secret(tmp_path: Path, forget: None) -> None:
    """A capture written by an older kit (or edited by hand) may hold raw secrets; the profile must not."""
    from lanelab.matrix.from_capture import SecretInCapture, profile_from_capture

    goog, meta, query = opaque("goo"), opaque("met"), opaque("que")
    exchange = {"record": "exchange", "seq": 1, "request": {
        "method": "POST", "path": "/v1/messages", "query": f"beta=true&key={query}",
        "query_params": {"beta": "true", "api_key": query},
        "headers": [["x-goog-api-key", goog], ["anthropic-version", "2023-06-01"], ["user-agent", "t/1"]],
        "body": {"bytes": 10, "sha256": "x", "json": {
            "model": "m", "max_tokens": 1, "metadata": {"user_token": meta},
            "messages": [{"role": "user", "content": "hi"}]}}}}
    capture = tmp_path / "old.jsonl"
    capture.write_text(json.dumps({"record": "capture"}) + "\n" + json.dumps(exchange) + "\n")
    with pytest.raises(SecretInCapture) as info:  # the body's metadata.user_token cannot be dropped: refused
        profile_from_capture(capture, "old-client", out_dir=tmp_path / "profiles")
    assert not list((tmp_path / "profiles").glob("*.toml")), "refused before anything was written"
    assert not leaked(str(info.value), [goog, meta, query])
    del exchange["request"]["body"]["json"]["metadata"]  # what remains is dropped (header, query parameter)
    capture.write_text(json.dumps({"record": "capture"}) + "\n" + json.dumps(exchange) + "\n")
    text = profile_from_capture(capture, "old-client", out_dir=tmp_path / "profiles").read_text()
    assert not leaked(text, [goog, meta, query]), text
    assert "anthropic-version" in text and "dropped secret header x-goog-api-key" in text
    assert "dropped secret query parameter api_key" in text and 'beta = "true"' in text
    # and through the command: one line, exit 2, no traceback
    from lanelab.cli import main

    exchange["request"]["body"]["json"]["metadata"] = {"user_token": meta}
    capture.write_text(json.dumps({"record": "capture"}) + "\n" + json.dumps(exchange) + "\n")
    assert main(["capture", "--to-profile", "cli-old", str(capture), "--profiles-dir", str(tmp_path / "p2")]) == 2
    assert not (tmp_path / "p2" / "cli-old.toml").exists()


def test_simulator_request_log_holds_no_secret(sim, forget: None) -> None:
    """Item 4 for the simulator's own log (its own Redactor): path, query, custom headers, cookies, OAuth bodies."""
    goog, path_token, query, cookie, body_secret = (opaque(t) for t in ("goo", "pat", "que", "coo", "bod"))
    minted = sim.mint_token()["access_token"]
    headers = {"authorization": f"Bearer {minted}", "anthropic-version": "2023-06-01",
               "anthropic-beta": "oauth-2025-04-20", "x-goog-api-key": goog, "cookie": f"theme=dark; sid={cookie}"}
    httpx.post(f"{sim.base_url}/v1/messages?access_token={query}", headers=headers,
               json={"model": "claude-sonnet-4-6", "max_tokens": 1, "metadata": {"session_blob_token": body_secret},
                     "messages": [{"role": "user", "content": f"my key is {goog}"}]})
    httpx.get(f"{sim.base_url}/v1/files/{path_token}", headers={"x-api-key": path_token})
    httpx.post(f"{sim.base_url}/v1/oauth/token", data={"grant_type": "refresh_token", "refresh_token": body_secret,
                                                       "client_id": "x"})
    log = httpx.get(f"{sim.base_url}/_sim/requests").text
    found = leaked(log, [goog, path_token, query, cookie, body_secret, minted])
    assert not found, f"leaked: {found}"
    entries = json.loads(log)
    assert entries[0]["body"]["messages"][0]["content"].startswith("my key is "), "the rest of the body stays"
    assert entries[0]["headers"]["anthropic-version"] == "2023-06-01"


# ---------------------------------------------------------------------------------------------------------------
# Item 5: logs


def test_log_lines_are_redacted_even_when_the_http_loggers_are_turned_up(sim, forget: None,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """httpx's INFO line prints the callback URL with ?code=; httpcore's DEBUG line prints the location header."""
    from lanelab.auth import oauth

    redact.guard_logging()
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # a user who asks for them still gets them, redacted
    try:
        endpoints = oauth.endpoint_set("sim", sim.base_url)
        auth = oauth.start(endpoints)
        redact.forget_secrets()  # the rules must catch the code, not the registry
        value = oauth.sim_paste_value(auth.url)
    finally:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    code = value.partition("#")[0]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in text and "location" in text, "positive control: the lines were logged"
    assert code not in text and not leaked(text, [code])


@pytest.mark.slow  # a CLI process each
@pytest.mark.parametrize("loud", [False, True], ids=["default levels", "http loggers turned up"])
def test_cli_login_with_debug_logging_writes_no_secret(sim, tmp_path: Path, loud: bool) -> None:
    """Item 5 end to end: the login command under ``logging.basicConfig(level=DEBUG)``: no code, verifier, token or
    location value in what it prints, whether httpx and httpcore keep the kit's default (WARNING) or a user turned
    them up to DEBUG (then their lines are there, redacted)."""
    turn_up = ("for n in ('httpx', 'httpcore'):\n    logging.getLogger(n).setLevel(logging.DEBUG)\n" if loud else "")
    script = ("import logging, sys\nlogging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
              "import lanelab.http\n" + turn_up +
              "from lanelab.cli import main\nsys.exit(main(['login', '--auto', '--label', 'dbg', '--no-probe']))\n")
    env = {**os.environ, "LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url,
           "LANELAB_HOME": str(tmp_path / "home"), "LANELAB_OUT": str(tmp_path / "out")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "home" / "credentials" / "dbg.json").read_text())
    found = leaked(proc.stdout + proc.stderr, [saved["access_token"], saved["refresh_token"],
                                               *sim.state.issued_secrets()])
    assert not found, f"leaked: {found}"
    if loud:  # positive control: the lines that used to leak were printed, with the code masked
        assert "HTTP Request: GET" in proc.stderr and "(b'location'" in proc.stderr and "code=…" in proc.stderr
    else:
        assert "HTTP Request" not in proc.stderr and "receive_response_headers" not in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# Item 6: token shape


BAD_TOKENS = {
    "line break": "sk-ant-oat01-" + "A" * 30 + "\nTAILSECRETVALUE123",
    "carriage return": "opaqueHEAD1234\rTAILSECRET5678xyz",
    "non-ASCII": "sk-ant-oat01-" + "B" * 30 + "é" + "TAILSECRETVALUE456",
    "space": "opaqueHEAD1234 TAILSECRET9876abc",
    "NUL": "opaqueHEAD1234\x00TAILSECRET5555abc",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_check_token_shape_refuses_without_showing_the_value(kind: str) -> None:
    value = BAD_TOKENS[kind]
    with pytest.raises(InputError) as info:
        errors.check_token_shape(value, "access token")
    message = str(info.value)
    assert "access token" in message and not leaked(message, [value]) and "TAILSECRET" not in message
    assert "TAILSECRET" not in redact.redact_text(f"later the tail alone: {value.split()[-1][-20:]}")
    assert errors.check_token_shape("sk-ant-oat01-" + "C" * 40, "access token").startswith("sk-ant-oat01-")


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_wire_refuses_a_bad_token_before_sending(kind: str) -> None:
    from lanelab.wire.send import send
    from lanelab.wire.spec import RequestSpec

    with pytest.raises(InputError) as info:
        send(RequestSpec(), "http://127.0.0.1:9", BAD_TOKENS[kind])
    assert "TAILSECRET" not in str(info.value)


def test_token_endpoint_answer_with_a_bad_token_is_refused(tmp_path: Path) -> None:
    from lanelab.auth import oauth

    bad = BAD_TOKENS["line break"]
    routes = {"/v1/oauth/token": (200, [("content-type", "application/json")],
                                  _json({"access_token": bad, "expires_in": 60}))}
    with Upstream(routes) as up:
        endpoints = oauth.endpoint_set("sim", up.base_url)
        with pytest.raises(oauth.TokenEndpointError) as info:
            oauth.post_token(endpoints, {"grant_type": "refresh_token", "refresh_token": "r" * 20},
                             oauth.client_variant("axios-json"))
    assert "TAILSECRET" not in str(info.value) and "access_token" in str(info.value)


def test_store_refuses_to_save_or_load_a_bad_token(tmp_path: Path) -> None:
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CorruptCredential, CredentialStore

    store = CredentialStore(tmp_path)
    with pytest.raises(InputError) as info:
        store.save(Credential(label="bad", access_token=BAD_TOKENS["non-ASCII"]))
    assert "TAILSECRET" not in str(info.value) and not (tmp_path / "credentials" / "bad.json").exists()
    (tmp_path / "credentials").mkdir(parents=True, exist_ok=True)
    (tmp_path / "credentials" / "hand.json").write_text(json.dumps({"access_token": BAD_TOKENS["line break"]}))
    with pytest.raises(CorruptCredential) as info:
        store.load("hand")
    assert "TAILSECRET" not in str(info.value)


def test_environment_importer_refuses_a_bad_token() -> None:
    from lanelab.auth.importers import CredentialEnvError, import_env

    with pytest.raises(CredentialEnvError) as info:
        import_env({"CLAUDE_CODE_OAUTH_TOKEN": BAD_TOKENS["NUL"]})
    assert "TAILSECRET" not in str(info.value)


def test_paste_with_a_control_character_is_refused_without_showing_it() -> None:
    from lanelab.auth.paste import PasteError, parse_paste

    with pytest.raises(PasteError) as info:
        parse_paste("abcdEFGH1234\x07TAILSECRET7777#state12345", expected_state="state12345")
    assert "TAILSECRET" not in str(info.value)
