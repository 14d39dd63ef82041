"""``POST /_sim/reset`` returns a simulator to how it started (account, policy, faults, request log, credentials,
planted values, its secret registry), so that tests can share one server; and the simulator keeps its secrets to
itself (its own redactor, never the client's registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from lanelab import pkce, redact
from lanelab.sim.server import SimHandle, running_simulator

MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}
CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
LOOPBACK = "http://localhost:54545/callback"
START_FAULTS = "http429=3@/v1/models#1"
CANARY_ACCESS = "sk-ant-oat01-RESETCANARY" + "a1B2c3D4e5" * 6
CANARY_REFRESH = "sk-ant-ort01-RESETCANARY" + "z9Y8x7W6v5" * 6


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
            "anthropic-version": "2023-06-01"}


def oauth_login(base: str) -> dict:
    """The authorization-code flow against the simulator; returns the token endpoint's JSON."""
    material = pkce.generate()
    params = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": LOOPBACK,
              "scope": "user:inference user:profile", "code_challenge": material.challenge,
              "code_challenge_method": "S256", "state": material.state}
    r = httpx.get(f"{base}/oauth/authorize?{urlencode(params)}")
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    body = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code, "redirect_uri": LOOPBACK,
            "code_verifier": material.verifier}
    tokens = httpx.post(f"{base}/v1/oauth/token", json=body, headers={"user-agent": "axios/1.7.9"})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


@pytest.fixture
def started() -> Iterator[SimHandle]:
    """Its own server: what a reset returns to is what this server was started with (not the shared one's)."""
    with running_simulator(policy="2026-05-25", faults=START_FAULTS, account={"plan": "pro"}, seed=7) as sim:
        yield sim


def mess_everything_up(sim: SimHandle) -> str:
    """Change every part of the simulator's state; returns a token minted before the reset."""
    base = sim.base_url
    token = sim.mint_token()["access_token"]
    assert httpx.get(f"{base}/v1/models", headers=headers(token)).status_code == 429  # the start plan fires once
    other = next(p for p in httpx.get(f"{base}/_sim/policy").json()["available"] if p != "2026-05-25")
    assert httpx.post(f"{base}/_sim/policy", json={"name": other}).json()["name"] == other
    httpx.post(f"{base}/_sim/account", json={"plan": "team", "extra_usage": {"monthly_limit": 99}})
    httpx.post(f"{base}/_sim/faults", json={"spec": "http500@/v1/messages/count_tokens"})
    assert httpx.post(f"{base}/v1/messages", headers=headers(token), json=MINIMAL).status_code == 200
    assert httpx.post(f"{base}/v1/messages/count_tokens", headers=headers(token), json=MINIMAL).status_code == 500
    sim.state.plant(CANARY_ACCESS, CANARY_REFRESH)
    assert sim.state.requests() and sim.state.issued_secrets() and sim.state.redactor.snapshot()
    return token


def check_back_at_the_start(sim: SimHandle, view: dict, old_token: str) -> None:
    base = sim.base_url
    assert view["policy"] == "2026-05-25" and view["tokens"] == [] and view["refresh_tokens"] == []
    assert view["counters"] == {}
    assert view["account"]["plan"] == "pro", "the account the simulator was started with, not the default"
    assert view["account"]["extra_usage"]["monthly_limit"] == 0.0
    assert view["usage"]["five_hour"]["utilization"] == pytest.approx(3.0)  # nothing billed any more
    assert httpx.get(f"{base}/_sim/policy").json()["name"] == "2026-05-25"
    faults = httpx.get(f"{base}/_sim/faults").json()
    assert faults["spec"] == START_FAULTS and [f["fired"] for f in faults["faults"]] == [0]
    assert httpx.get(f"{base}/_sim/requests").json() == []
    assert sim.state.issued_secrets() == [] and sim.state.redactor.snapshot() == frozenset()
    # the old credential is forgotten, and the start fault plan fires again (its counter was reset)
    assert httpx.post(f"{base}/v1/messages", headers=headers(old_token), json=MINIMAL).status_code == 401
    fresh = sim.mint_token()["access_token"]
    assert fresh != CANARY_ACCESS, "the planted canary was dropped: the first issue after the reset is fresh"
    assert httpx.get(f"{base}/v1/models", headers=headers(fresh)).status_code == 429
    assert httpx.get(f"{base}/v1/models", headers=headers(fresh)).status_code == 200
    assert [e["seq"] for e in sim.state.requests()] == [1, 2, 3], "the log numbers from 1 again"
    issued = oauth_login(base)
    assert CANARY_ACCESS not in (issued["access_token"], issued.get("refresh_token"))


def test_http_reset_returns_everything_to_the_start(started: SimHandle) -> None:
    identity = httpx.get(f"{started.base_url}/_sim/account").json()["identity"]
    old = mess_everything_up(started)
    r = httpx.post(f"{started.base_url}/_sim/reset")
    assert r.status_code == 200 and r.json()["identity"] == identity, "the account is still the same account"
    check_back_at_the_start(started, r.json(), old)


def test_handle_reset_is_the_same_reset(started: SimHandle) -> None:
    old = mess_everything_up(started)
    started.reset()
    check_back_at_the_start(started, httpx.get(f"{started.base_url}/_sim/account").json(), old)


def test_reset_replays_the_seeded_fault_coin(sim_with: Callable[..., SimHandle]) -> None:
    """``%probability`` faults draw from a seeded coin; after a reset the same requests meet the same faults."""
    sim = sim_with(faults="http500@/v1/messages%0.5", seed=3)

    def statuses() -> list[int]:
        token = sim.mint_token()["access_token"]
        return [httpx.post(f"{sim.base_url}/v1/messages", headers=headers(token), json=MINIMAL).status_code
                for _ in range(12)]

    first = statuses()
    assert {200, 500} <= set(first), "a fair coin over 12 draws shows both faces (seed 3)"
    httpx.post(f"{sim.base_url}/_sim/reset")
    assert statuses() == first


def test_the_simulator_never_registers_secrets_with_the_client(sim: SimHandle) -> None:
    """Issued tokens, codes and planted values go to the simulator's own registry only."""
    before = redact.snapshot()
    sim.state.plant(CANARY_ACCESS, CANARY_REFRESH)
    issued = oauth_login(sim.base_url)
    minted = sim.mint_token(kind="api_key")["access_token"]
    assert issued["access_token"] == CANARY_ACCESS
    assert redact.snapshot() == before, "nothing new in the client's registry"
    mine = sim.state.redactor.snapshot()
    assert {CANARY_ACCESS, CANARY_REFRESH, minted} <= mine
    secrets_seen = set(sim.state.issued_secrets())
    assert CANARY_ACCESS in secrets_seen and minted in secrets_seen
    # the request log masks what the simulator knows, whatever its shape
    log = httpx.get(f"{sim.base_url}/_sim/requests").text
    assert not any(s in log for s in mine)
