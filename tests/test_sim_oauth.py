"""The simulator's OAuth server over HTTP: authorize, the paste page, code exchange and refresh rotation."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from lanelab import pkce, redact

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPES = "org:create_api_key user:profile user:inference"
LOOPBACK = "http://localhost:54545/callback"
MANUAL = "https://console.anthropic.com/oauth/code/callback"
AXIOS = {"user-agent": "axios/1.7.9", "accept": "application/json, text/plain, */*"}


def pkce_pair() -> tuple[str, str]:
    """A verifier and its challenge, computed here independently of lanelab.pkce."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(sim, redirect_uri=LOOPBACK, **override) -> tuple[httpx.Response, str, str]:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {"code": "true", "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri,
              "scope": SCOPES, "code_challenge": challenge, "code_challenge_method": "S256", "state": state}
    params.update(override)
    r = httpx.get(f"{sim.base_url}/oauth/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}")
    return r, verifier, state


def code_from(response: httpx.Response) -> tuple[str, str]:
    q = parse_qs(urlsplit(response.headers["location"]).query)
    return q["code"][0], q["state"][0]


def exchange(sim, code, verifier, redirect_uri=LOOPBACK, style="json", **extra) -> httpx.Response:
    body = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code,
            "redirect_uri": redirect_uri, "code_verifier": verifier, **extra}
    url = f"{sim.base_url}/v1/oauth/token"
    return httpx.post(url, json=body, headers=AXIOS) if style == "json" else httpx.post(url, data=body, headers=AXIOS)


def test_the_simulator_checks_pkce_with_the_shared_implementation(sim):
    """The RFC 7636 appendix B pair is accepted by the simulator's token endpoint; one character off is not."""
    verifier, challenge = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce.challenge_for(verifier) == challenge
    for presented, status in ((verifier[:-1] + "l", 400), (verifier, 200)):
        r, _, _ = authorize(sim, code_challenge=challenge)
        code, _ = code_from(r)
        assert exchange(sim, code, presented).status_code == status


def test_loopback_flow_json_body_issues_working_tokens(sim):
    r, verifier, state = authorize(sim)
    assert r.status_code == 302 and r.headers["location"].startswith(LOOPBACK + "?")
    code, returned_state = code_from(r)
    assert returned_state == state
    tok = exchange(sim, code, verifier)
    body = tok.json()
    assert tok.status_code == 200
    assert body["access_token"].startswith("sk-ant-oat01-") and body["refresh_token"].startswith("sk-ant-ort01-")
    assert body["expires_in"] == 28800 and body["token_type"] == "Bearer" and body["scope"] == SCOPES
    assert set(body["account"]) == {"uuid", "email_address"} and set(body["organization"]) == {"uuid", "name"}
    served = httpx.post(f"{sim.base_url}/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 8,
                                                              "messages": [{"role": "user", "content": "hi"}]},
                        headers={"authorization": f"Bearer {body['access_token']}",
                                 "anthropic-beta": "oauth-2025-04-20"})
    assert served.status_code == 200
    reused = exchange(sim, code, verifier)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_manual_flow_paste_page_and_form_body(sim):
    r, verifier, state = authorize(sim, redirect_uri=MANUAL)
    assert r.status_code == 302 and r.headers["location"].startswith(f"{sim.base_url}/oauth/code/callback?")
    page = httpx.get(r.headers["location"])
    m = re.search(r'<code id="paste-value">([^<]+)</code>', page.text)
    assert page.status_code == 200 and m
    code, pasted_state = html.unescape(m.group(1)).split("#", 1)
    assert pasted_state == state
    tok = exchange(sim, code, verifier, redirect_uri=MANUAL, style="form", state=state)
    assert tok.status_code == 200 and tok.json()["access_token"].startswith("sk-ant-oat01-")


def test_simulator_own_callback_is_a_manual_redirect(sim):
    own = f"{sim.base_url}/oauth/code/callback"
    r, verifier, _ = authorize(sim, redirect_uri=own)
    assert r.headers["location"].startswith(own + "?")
    code, _ = code_from(r)
    assert exchange(sim, code, verifier, redirect_uri=own).status_code == 200


@pytest.mark.parametrize("override, fragment", [
    ({"client_id": "00000000-0000-0000-0000-000000000000"}, "client_id"),
    ({"response_type": "token"}, "response_type"),
    ({"code_challenge_method": "plain"}, "S256"),
    ({"code_challenge": None}, "S256"),
    ({"state": None}, "state"),
    ({"scope": None}, "scope"),
    ({"redirect_uri": "https://evil.example/callback"}, "redirect_uri"),
])
def test_authorize_rejects_bad_requests_with_a_page(sim, override, fragment):
    r, _, _ = authorize(sim, **override)
    assert r.status_code == 400 and "text/html" in r.headers["content-type"]
    assert fragment in html.unescape(r.text)


def test_exchange_checks_verifier_redirect_and_client(sim):
    r, verifier, _ = authorize(sim)
    code, _ = code_from(r)
    wrong_verifier = exchange(sim, code, pkce_pair()[0])
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    assert "code_verifier" in wrong_verifier.json()["error_description"]
    wrong_redirect = exchange(sim, code, verifier, redirect_uri="http://localhost:1/callback")
    assert wrong_redirect.json() == {"error": "invalid_grant", "error_description": "Invalid 'redirect_uri' in request."}
    wrong_client = exchange(sim, code, verifier, client_id="someone-else")
    assert wrong_client.json()["error"] == "invalid_client"
    assert exchange(sim, code, verifier).status_code == 200  # failures did not burn the code
    unknown = exchange(sim, "not-a-code-at-all", verifier)
    assert unknown.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_old_refresh_token_dies(sim):
    first = sim.mint_token()
    url = f"{sim.base_url}/v1/oauth/token"
    body = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": CLIENT_ID}
    second = httpx.post(url, data=body, headers=AXIOS)  # form, as Hermes refreshes
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"] and new["access_token"] != first["access_token"]
    replay = httpx.post(url, json=body, headers=AXIOS)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    third = httpx.post(url, json={**body, "refresh_token": new["refresh_token"]}, headers=AXIOS)
    assert third.status_code == 200 and third.json()["scope"] == first["scope"]
    wider = httpx.post(url, json={**body, "refresh_token": third.json()["refresh_token"],
                                  "scope": "user:inference user:admin"}, headers=AXIOS)
    assert wider.json()["error"] == "invalid_scope"


def test_token_endpoint_rejects_unsupported_body_style_and_grant(sim):
    url = f"{sim.base_url}/v1/oauth/token"
    plain = httpx.post(url, content=b"grant_type=refresh_token", headers={**AXIOS, "content-type": "text/plain"})
    assert plain.status_code >= 400 and "error" in plain.json()
    weird = httpx.post(url, json={"grant_type": "password", "client_id": CLIENT_ID}, headers=AXIOS)
    assert weird.json()["error"] == "unsupported_grant_type"
    junk = httpx.post(url, content=b"{not json", headers={**AXIOS, "content-type": "application/json"})
    assert junk.json()["error"] == "invalid_request"


def test_issued_secrets_are_registered_with_the_simulator_only_and_the_log_hides_them(sim):
    r, verifier, _ = authorize(sim)
    code, _ = code_from(r)
    tokens = exchange(sim, code, verifier).json()
    client_registry = redact.snapshot()
    for secret in (code, verifier, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in sim.state.redactor.redact_text(f"value={secret}")
        assert secret not in client_registry, "the simulator must not register in the client's registry"
    log = httpx.get(f"{sim.base_url}/_sim/requests")
    for secret in (code, verifier):
        assert secret not in log.text
    token_entry = next(e for e in log.json() if e["path"] == "/v1/oauth/token")
    assert token_entry["outcome"] == "token_issued" and token_entry["status"] == 200
