"""Rehearsal: the CLI's live login, unchanged, under the real host names (scenarios/live_login.py), then ``creds``.

Two endpoint sets: the default (``live-claude-ai``: authorize on claude.ai) and ``live-cai`` (authorize on
claude.com/cai, which redirects to claude.ai). Either way the browser ends on the registered callback host,
platform.claude.com, the token is exchanged there, and only the API host ever sees the token.
"""

from __future__ import annotations

import json
import stat
from urllib.parse import parse_qs, urlsplit

import pytest
from lanelab.config import LIVE_HOSTS

CALLBACK = "https://platform.claude.com/oauth/code/callback"


@pytest.mark.parametrize(("endpoints", "authorize", "hops"), [
    (None, ("claude.ai", "/oauth/authorize"), [("GET", "claude.ai", "/oauth/authorize", 302)]),
    ("live-cai", ("claude.com", "/cai/oauth/authorize"),
     [("GET", "claude.com", "/cai/oauth/authorize", 307), ("GET", "claude.ai", "/oauth/authorize", 302)]),
])
def test_live_login_and_creds_end_to_end(rehearse, endpoints, authorize, hops):
    done = rehearse("live_login", *(["--endpoints", endpoints] if endpoints else []))
    assert done.returncode == 0, done.describe()
    steps = {s["step"]: s for s in done.result()["steps"]}
    login, browser, creds = steps["login"], steps["browser"], steps["creds"]

    # the notice before anything, the endpoint set, the authorize link on the live host
    assert login["stderr"].startswith("Live mode: this logs in to your real Claude account.")
    assert f"Endpoint set: {endpoints or 'live-claude-ai'}" in login["stdout"]
    link = urlsplit(login["authorize_url"])
    assert (link.scheme, link.hostname, link.path) == ("https", *authorize)
    assert parse_qs(link.query)["redirect_uri"] == [CALLBACK]
    # the browser ends on the registered callback host, not on the authorize host
    assert browser["found"] and browser["pages"][-1].startswith(f"200 {CALLBACK}?")

    # saved under live-pkce, recorded as issued live by the token host that answered, private to the user
    saved = done.home / "credentials" / "live-pkce.json"
    assert "Saved 'live-pkce'" in login["stdout"] and saved.is_file()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    stored = json.loads(saved.read_text())
    assert (stored["mode"], stored["issuer"]) == ("live", "https://platform.claude.com")
    token = stored["access_token"]
    assert creds["returncode"] == 0
    row = next(line for line in creds["stdout"].splitlines() if line.startswith("saved"))
    assert row.split()[:2] == ["saved", "live-pkce"] and "live https://platform.claude.com" in row

    # what reached which host: authorize (through claude.com/cai for live-cai) on claude.ai, the callback page and
    # the exchange at platform.claude.com, the profile and usage probes (the only requests carrying the token) at the
    # API host
    seen = [(r["method"], r["headers"].get("host"), r["path"], r["status"]) for r in done.sim_requests]
    assert seen == [*hops, ("GET", "platform.claude.com", "/oauth/code/callback", 200),
                    ("POST", "platform.claude.com", "/v1/oauth/token", 200),
                    ("GET", "api.anthropic.com", "/api/oauth/profile", 200),
                    ("GET", "api.anthropic.com", "/api/oauth/usage", 200)]
    assert {host for _, host, _, _ in seen} <= LIVE_HOSTS
    bearer = [r["headers"].get("host") for r in done.sim_requests if "authorization" in r["headers"]]
    assert bearer == ["api.anthropic.com", "api.anthropic.com"]

    # the token is in the credential file and nowhere else; live-mode messages never mention the simulator
    outputs = login["stdout"] + login["stderr"] + creds["stdout"] + creds["stderr"] + done.stdout + done.stderr
    assert token not in outputs and token not in json.dumps(done.sim_requests)
    for name, path in done.files().items():
        if path != saved:
            assert token not in path.read_text(errors="replace"), name
    assert "simulator" not in outputs.lower()
