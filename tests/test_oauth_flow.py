"""Authorize URL, exchange and refresh (unit, with httpx.MockTransport), then the whole flow and the login CLI
against the real simulator (the ``sim`` fixture from conftest)."""

import io
import json
import os
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import disk_faults
import httpx
import pytest
from lanelab import cli, pkce
from lanelab.auth import oauth
from lanelab.auth.credential import Credential
from lanelab.auth.paste import PastedCode, parse_paste
from lanelab.auth.store import CredentialStore, StoreNotWritable
from lanelab.config import Settings, host_allowed
from lanelab.errors import UserError

BASE = "http://127.0.0.1:9"
CODE = "authcode_" + "q" * 30
NEW_ACCESS = "sk-ant-oat01-" + "N" * 60
NEW_REFRESH = "sk-ant-ort01-" + "R" * 60
OLD_REFRESH = "sk-ant-ort01-" + "O" * 60


def token_reply(refresh=NEW_REFRESH, **extra):
    body = {"access_token": NEW_ACCESS, "expires_in": 28800, "scope": "user:inference user:profile",
            "token_type": "Bearer", "account": {"uuid": "acc-1", "email_address": "u@example.com"},
            "organization": {"uuid": "org-1", "name": "Org"}}
    if refresh:
        body["refresh_token"] = refresh
    body.update(extra)
    return body


def recorder(replies):
    """A MockTransport answering with ``replies`` in turn (the last one repeats), recording requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body = replies[min(len(seen) - 1, len(replies) - 1)]
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def fields_of(request: httpx.Request) -> dict:
    if request.headers["content-type"] == "application/json":
        return json.loads(request.content)
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


# ---------------------------------------------------------------------------------------------------------------
# Endpoint sets and the authorize URL

def test_endpoint_sets_are_data_with_sources():
    sets = oauth.load_endpoint_sets()
    assert {"sim", "live-claude-ai", "live-cai", "live-console-legacy"} <= set(sets)
    for e in sets.values():
        assert e.source and e.client_id and e.scopes and e.code_param
        if not e.relative:
            assert all(host_allowed(u) for u in (e.authorize_url, *e.token_urls, e.redirect_uri))
    hosts = {urlsplit(u).hostname for e in sets.values() for u in (e.authorize_url, *e.token_urls)}
    assert {"claude.ai", "claude.com", "platform.claude.com", "console.anthropic.com"} <= hosts
    assert set(sets["live-claude-ai"].scopes) == {"org:create_api_key", "user:profile", "user:inference"}
    assert "user:sessions:claude_code" in sets["live-cai"].scopes
    assert {v.body for v in oauth.load_client_variants().values()} == {"json", "form"}


def test_sim_set_resolves_against_base_url_and_needs_one():
    e = oauth.endpoint_set("sim", BASE + "/")
    assert e.authorize_url == BASE + "/oauth/authorize" and e.token_urls == (BASE + "/v1/oauth/token",)
    with pytest.raises(oauth.EndpointSetError, match="LANELAB_BASE_URL"):
        oauth.endpoint_set("sim", None)
    with pytest.raises(oauth.EndpointSetError, match="live-cai"):
        oauth.endpoint_set("no-such-set")


def test_authorize_url_carries_pkce_state_and_code_true():
    auth = oauth.start(oauth.endpoint_set("live-claude-ai"))
    parts = urlsplit(auth.url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.hostname}{parts.path}" == "https://claude.ai/oauth/authorize"
    assert q["code"] == "true" and q["response_type"] == "code" and q["code_challenge_method"] == "S256"
    assert q["code_challenge"] == pkce.challenge_for(auth.pkce.verifier)
    assert q["state"] == auth.pkce.state != auth.pkce.verifier
    assert q["redirect_uri"] == "https://platform.claude.com/oauth/code/callback"
    assert q["scope"].split() == list(auth.endpoints.scopes)
    assert auth.pkce.verifier not in auth.url and auth.pkce.verifier not in repr(auth)


# ---------------------------------------------------------------------------------------------------------------
# Exchange

@pytest.mark.parametrize("variant,ctype", [("axios-json", "application/json"),
                                           ("axios-form", "application/x-www-form-urlencoded")])
def test_exchange_body_styles_and_user_agent(variant, ctype):
    client, seen = recorder([(200, token_reply())])
    ep = oauth.endpoint_set("sim", BASE)
    cred = oauth.exchange(ep, PastedCode(CODE, "st"), "verifier-" + "v" * 40, oauth.client_variant(variant),
                          label="x", client=client)
    [req] = seen
    assert req.headers["content-type"] == ctype and req.headers["user-agent"] == "axios/1.7.9"
    assert fields_of(req) == {"grant_type": "authorization_code", "client_id": ep.client_id, "code": CODE,
                              "state": "st", "redirect_uri": ep.redirect_uri, "code_verifier": "verifier-" + "v" * 40}
    assert (cred.access_token, cred.refresh_token, cred.email, cred.organization_name) == \
        (NEW_ACCESS, NEW_REFRESH, "u@example.com", "Org")
    assert cred.scopes == ("user:inference", "user:profile") and 28000 < cred.expires_in() <= 28800
    assert NEW_ACCESS not in repr(cred) and NEW_REFRESH not in repr(cred)


def test_exchange_without_expires_in_assumes_an_hour():
    client, _ = recorder([(200, token_reply(expires_in=None))])
    cred = oauth.exchange(oauth.endpoint_set("sim", BASE), PastedCode(CODE, "s"), "v" * 43,
                          oauth.client_variant("axios-json"), client=client)
    assert 3500 < cred.expires_in() <= 3600
    assert (cred.label, cred.mode, cred.issuer) == ("sim-pkce", "sim", BASE)  # who issued it, and the mode's label


def test_token_urls_are_tried_in_order_on_404():
    ep = oauth.endpoint_set("live-claude-ai")
    client, seen = recorder([(404, {"error": "not_found"}), (200, token_reply())])
    cred = oauth.exchange(ep, PastedCode(CODE, "s"), "v" * 43, oauth.client_variant("axios-json"), client=client)
    assert [str(r.url) for r in seen] == list(ep.token_urls)
    # the issuer is the token host that answered (the fallback here), and a live login defaults to live-pkce
    assert (cred.label, cred.mode, cred.issuer) == ("live-pkce", "live", "https://console.anthropic.com")


def test_token_error_is_clear_and_never_repeats_the_code():
    client, _ = recorder([(400, {"error": "invalid_grant", "error_description": f"Invalid code {CODE}"})])
    with pytest.raises(oauth.TokenEndpointError) as info:
        oauth.exchange(oauth.endpoint_set("sim", BASE), PastedCode(CODE, "s"), "v" * 43,
                       oauth.client_variant("axios-json"), client=client)
    msg = str(info.value)
    assert "HTTP 400" in msg and "invalid_grant" in msg and "start the flow again" in msg and CODE not in msg


def test_secrets_go_only_to_allow_listed_hosts():
    ep = oauth.EndpointSet(name="evil", description="", authorize_url="https://evil.example/a",
                           token_urls=("https://evil.example/token",), redirect_uri="https://evil.example/cb",
                           scopes=("user:inference",), client_id="c")
    client, seen = recorder([(200, token_reply())])
    with pytest.raises(oauth.UnsafeHost):
        oauth.exchange(ep, PastedCode(CODE, "s"), "v" * 43, oauth.client_variant("axios-json"), client=client)
    assert seen == []
    with pytest.raises(oauth.EndpointSetError):
        oauth.sim_paste_value("https://claude.ai/oauth/authorize?x=1")


# ---------------------------------------------------------------------------------------------------------------
# Refresh

def saved_cred(**kw):
    base = {"label": "mine", "access_token": "sk-ant-oat01-" + "A" * 50, "refresh_token": OLD_REFRESH,
            "expires_at": 0.0, "scopes": ("user:inference",), "email": "keep@example.com"}
    base.update(kw)
    return Credential(**base)


def test_refresh_rotates_reports_masked_and_saves(tmp_path):
    client, seen = recorder([(200, token_reply())])
    store = CredentialStore(tmp_path)
    result = oauth.refresh(saved_cred(), oauth.endpoint_set("sim", BASE), oauth.client_variant("axios-form"),
                           store=store, client=client)
    assert fields_of(seen[0]) == {"grant_type": "refresh_token", "refresh_token": OLD_REFRESH,
                                  "client_id": oauth.endpoint_set("sim", BASE).client_id}
    assert result.rotated and not result.kept_old
    text = repr(result)
    assert "rotated" in text and OLD_REFRESH[-4:] in text and NEW_REFRESH[-4:] in text
    assert OLD_REFRESH not in text and NEW_REFRESH not in text
    assert store.load("mine").refresh_token == NEW_REFRESH and store.load("mine").access_token == NEW_ACCESS
    assert (store.load("mine").mode, store.load("mine").issuer) == ("sim", BASE)


def test_refresh_keeps_old_refresh_token_when_none_returned():
    client, _ = recorder([(200, token_reply(refresh=None, account=None))])
    result = oauth.refresh(saved_cred(), oauth.endpoint_set("sim", BASE), oauth.client_variant("axios-json"),
                           client=client)
    assert result.kept_old and not result.rotated
    assert result.credential.refresh_token == OLD_REFRESH and result.credential.email == "keep@example.com"
    assert "kept" in repr(result)


def test_refresh_refuses_imported_credentials_unless_allowed():
    client, seen = recorder([(200, token_reply())])
    cred = saved_cred(imported=True, source="claude_code")
    ep, v = oauth.endpoint_set("sim", BASE), oauth.client_variant("axios-form")
    with pytest.raises(oauth.RefreshRefused) as info:
        oauth.refresh(cred, ep, v, client=client)
    assert "single-use" in str(info.value) and "logged out" in str(info.value).replace("log that client out",
                                                                                      "logged out")
    assert seen == []
    assert oauth.refresh(cred, ep, v, allow_imported=True, client=client).credential.imported
    assert len(seen) == 1


def test_refresh_without_refresh_token_is_refused():
    with pytest.raises(oauth.RefreshRefused, match="no refresh token"):
        oauth.refresh(saved_cred(refresh_token=None), oauth.endpoint_set("sim", BASE),
                      oauth.client_variant("axios-json"))


def test_refresh_is_single_flight():
    """Five concurrent refreshes of one credential: one POST, one shared result."""
    n = 5
    release = threading.Event()
    calls = []

    def handler(request):
        calls.append(request)
        release.wait()
        return httpx.Response(200, json=token_reply())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    cred, ep, v = saved_cred(), oauth.endpoint_set("sim", BASE), oauth.client_variant("axios-json")
    results, errors = [], []

    def worker():
        try:
            results.append(oauth.refresh(cred, ep, v, client=client))
        except UserError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    key = oauth._flight_key(cred)
    while True:  # wait (without a clock) until every follower has joined the leader's flight
        with oauth._flights_lock:
            flight = oauth._flights.get(key)
            if flight is not None and flight.waiters == n - 1:
                break
    release.set()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and len(results) == n
    assert all(r is results[0] for r in results)
    assert oauth._flights == {}


def test_single_flight_shares_the_error_too():
    client, _ = recorder([(400, {"error": "invalid_grant", "error_description": "Refresh token already used"})])
    with pytest.raises(oauth.TokenEndpointError, match="already used"):
        oauth.refresh(saved_cred(), oauth.endpoint_set("sim", BASE), oauth.client_variant("axios-json"),
                      client=client)
    assert oauth._flights == {}


# ---------------------------------------------------------------------------------------------------------------
# Against the simulator

@pytest.mark.parametrize("variant", ["axios-json", "axios-form"])
def test_full_flow_against_simulator(sim, tmp_path, variant):
    ep = oauth.endpoint_set("sim", sim.base_url)
    auth = oauth.start(ep)
    pasted = parse_paste(oauth.sim_paste_value(auth.url), expected_state=auth.pkce.state)
    cred = oauth.exchange(ep, pasted, auth.pkce.verifier, oauth.client_variant(variant), label="t")
    assert cred.access_token.startswith("sk-ant-oat01-") and cred.refresh_token.startswith("sk-ant-ort01-")
    assert "user:profile" in cred.scopes and cred.account_uuid and cred.organization_uuid
    with pytest.raises(oauth.TokenEndpointError):  # codes are single-use
        oauth.exchange(ep, pasted, auth.pkce.verifier, oauth.client_variant(variant), label="t")
    rotated = oauth.refresh(cred, ep, oauth.client_variant(variant))
    assert rotated.rotated and rotated.credential.access_token != cred.access_token
    with pytest.raises(oauth.TokenEndpointError, match="HTTP 4"):  # the old refresh token is spent
        oauth.refresh(cred, ep, oauth.client_variant(variant))
    from lanelab.auth.introspect import inspect_account

    account = inspect_account(rotated.credential.access_token, sim.base_url)
    assert not account.errors and account.organization_type and account.windows
    text = repr(account) + account._repr_html_()
    for secret in (cred.access_token, cred.refresh_token, rotated.credential.refresh_token):
        assert secret not in text


def test_wrong_verifier_is_refused_by_simulator(sim):
    ep = oauth.endpoint_set("sim", sim.base_url)
    auth = oauth.start(ep)
    pasted = parse_paste(oauth.sim_paste_value(auth.url), expected_state=auth.pkce.state)
    with pytest.raises(oauth.TokenEndpointError, match="HTTP 400"):
        oauth.exchange(ep, pasted, pkce.make_verifier(), oauth.client_variant("axios-json"))


def test_usage_probe_with_inference_only_token_reports_scope_error(sim):
    from lanelab.auth.introspect import inspect_account

    token = sim.mint_token(scopes=["user:inference"], kind="setup-token")["access_token"]
    account = inspect_account(token, sim.base_url)
    assert account.errors and any("user:profile" in e for e in account.errors)
    assert token not in repr(account)


def _env(sim, tmp_path):
    return {**os.environ, "LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url,
            "LANELAB_HOME": str(tmp_path / "home")}


class PastingStdin:
    """Standard input that answers like a person: a token pasted by mistake, then the callback page's value."""

    def __init__(self, stdout: io.StringIO):
        self.stdout, self.lines, self.value = stdout, 0, None

    def readline(self) -> str:
        self.lines += 1
        if self.lines == 1:
            return f"sk-ant-oat01-{'x' * 40}\n"
        url = next(line for line in self.stdout.getvalue().splitlines() if line.startswith("http"))
        self.value = oauth.sim_paste_value(url)
        return f"  '{self.value}'\n"


@pytest.mark.parametrize("body", ["json", "form"])
def test_cli_login_reads_paste_from_stdin_with_retry(sim, tmp_path, monkeypatch, body):
    """The interactive path: a bad paste is refused with a retry, the good one accepted, the credential saved."""
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    stdin = PastingStdin(out)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(["login", "--body", body, "--label", f"cli-{body}"]) == 0, err.getvalue()
    assert cli.main(["creds", "--user-home", str(tmp_path)]) == 0
    out, err = out.getvalue(), err.getvalue()
    assert stdin.lines == 2 and "not an authorization code" in err and "2 more tries" in err
    assert f"({body} body)" in out
    cred = CredentialStore(tmp_path / "home").load(f"cli-{body}")
    assert cred.source == "lanelab:pkce" and not cred.imported
    assert (cred.mode, cred.issuer) == ("sim", sim.base_url.rstrip("/"))
    listing = out.split("Store:")[-1]
    assert f"cli-{body}" in listing and "lanelab:pkce" in listing and f"sim {sim.base_url.rstrip('/')}" in listing
    for secret in (cred.access_token, cred.refresh_token, stdin.value.split("#")[0], "x" * 40):
        assert secret not in out + err


@pytest.mark.parametrize("body", ["json", "form"])
def test_cli_login_auto_in_process(sim, tmp_path, monkeypatch, capsys, body):
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    assert cli.main(["login", "--auto", "--body", body, "--label", "auto"]) == 0
    out = capsys.readouterr().out
    cred = CredentialStore(tmp_path / "home").load("auto")
    assert "Saved 'auto'" in out and cred.access_token not in out and "claude_max" in out


def test_cli_login_and_creds_use_the_default_label_of_the_mode(sim, tmp_path, monkeypatch, capsys):
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    assert cli.main(["creds", "--user-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Nothing is saved under 'sim-pkce', the default label in sim mode" in out
    assert f"LANELAB_BASE_URL={sim.base_url} python -m lanelab login --auto --label sim-pkce" in out
    assert cli.main(["login", "--auto"]) == 0
    assert "Saved 'sim-pkce'" in capsys.readouterr().out
    assert CredentialStore(tmp_path / "home").labels() == ["sim-pkce"]
    assert cli.main(["creds", "--user-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Nothing is saved" not in out and "sim-pkce" in out
    assert cli.main(["creds", "--json", "--user-home", str(tmp_path)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert (listing["default_label"], listing["mode"]) == ("sim-pkce", "sim")
    [row] = listing["credentials"]
    assert (row["label"], row["where"], row["issuer"]) == ("sim-pkce", "saved", f"sim {sim.base_url.rstrip('/')}")
    assert listing["problems"] == []
    monkeypatch.setenv("LANELAB_MODE", "live")
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert cli.main(["creds", "--user-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "'live-pkce', the default label in live mode" in out
    assert "LANELAB_MODE=live LANELAB_LIVE_OPT_IN=1 python -m lanelab login --label live-pkce" in out


def test_cli_login_errors_are_clear(sim, tmp_path, monkeypatch, capsys):
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(""))
    assert cli.main(["login"]) == 2
    assert "standard input ended" in capsys.readouterr().err
    assert cli.main(["login", "--endpoints", "live-claude-ai", "--auto"]) == 2
    assert "LANELAB_MODE=live" in capsys.readouterr().err
    assert cli.main(["login", "--label", "../bad", "--auto"]) == 2
    assert "not a valid credential label" in capsys.readouterr().err
    monkeypatch.setenv("LANELAB_MODE", "live")
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert cli.main(["login", "--endpoints", "live-claude-ai"]) == 2
    assert "LANELAB_LIVE_OPT_IN" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Introspection (no server)

@pytest.mark.parametrize("token,kind", [("sk-ant-oat01-abc", "oauth_access"), ("sk-ant-ort01-abc", "oauth_refresh"),
                                        ("sk-ant-api03-abc", "api_key"), ("eyJabc.def", "unknown"), ("", "unknown"),
                                        (None, "unknown")])
def test_token_kind(token, kind):
    from lanelab.auth.introspect import token_kind

    assert token_kind(token) == kind


def test_describe_explains_scopes_and_expiry():
    from lanelab.auth.introspect import describe

    s = describe(saved_cred(expires_at=10_000.0, scopes=("user:inference",)), now=10_000.0 - 7200)
    assert s.kind == "oauth_access" and s.expiry_text == "in 2.0 h" and not s.can_probe
    assert "inference" in s.allows["user:inference"]
    assert "need user:profile" in repr(s) and "A" * 50 not in repr(s) + s._repr_html_()
    assert describe(saved_cred(expires_at=100.0), now=400.0).expiry_text == "expired 5 min ago"


def test_summarize_reads_plan_extra_usage_and_windows():
    from lanelab.auth.introspect import summarize
    from lanelab.wire.observe import observe_response

    profile = observe_response(200, {"content-type": "application/json", "request-id": "req_1"}, json.dumps({
        "account": {"uuid": "a", "email": "person@example.com"},
        "organization": {"organization_type": "claude_pro", "rate_limit_tier": "default_claude_pro",
                         "billing_type": "stripe_subscription", "has_extra_usage_enabled": False}}).encode(), 1.0)
    usage = observe_response(200, {"content-type": "application/json"}, json.dumps({
        "five_hour": {"utilization": 12.5, "resets_at": "2026-05-25T10:00:00Z"}, "seven_day": None,
        "extra_usage": {"is_enabled": True, "monthly_limit": 0, "used_credits": 0, "utilization": None}}).encode(),
        1.0)
    s = summarize(profile, usage)
    assert (s.organization_type, s.rate_limit_tier, s.extra_usage_enabled, s.extra_usage_monthly_limit) == \
        ("claude_pro", "default_claude_pro", True, 0.0)
    assert [(w.name, w.utilization) for w in s.windows] == [("five_hour", 12.5), ("seven_day", None)]
    assert s.email == "p…@example.com" and s.request_ids == ["req_1"] and not s.errors
    denied = observe_response(403, {"content-type": "application/json"}, json.dumps({
        "type": "error", "error": {"type": "permission_error",
                                   "message": "OAuth token does not meet scope requirement user:profile"}}).encode(), 1)
    s2 = summarize(denied, denied)
    assert len(s2.errors) == 2 and "user:profile" in s2.errors[0] and s2.organization_type is None
    assert "probe error" in repr(s2) and "<table>" in s2._repr_html_()


# ---------------------------------------------------------------------------------------------------------------
# Disk faults: a single-use code or refresh token is never spent when its result cannot be kept (issue 12, item 8)

def sim_login(sim, variant="axios-json"):
    ep = oauth.endpoint_set("sim", sim.base_url)
    auth = oauth.start(ep)
    pasted = parse_paste(oauth.sim_paste_value(auth.url), expected_state=auth.pkce.state)
    return ep, oauth.exchange(ep, pasted, auth.pkce.verifier, oauth.client_variant(variant), label="mine")


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_refresh_with_an_unwritable_store_spends_nothing(sim, tmp_path, monkeypatch, kind):
    """It used to rotate the refresh token at the server, then lose the new one (OSError), so the next refresh
    failed with "already used"."""
    ep, cred = sim_login(sim)
    store = CredentialStore(tmp_path / "home")
    store.save(cred)
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", kind)
    v = oauth.client_variant("axios-json")
    with pytest.raises(StoreNotWritable, match="no login code or refresh token was spent"):
        oauth.refresh(store.load("mine"), ep, v, store=store)
    assert oauth._flights == {}
    fault.active = False
    result = oauth.refresh(store.load("mine"), ep, v, store=store)  # the saved refresh token still works
    assert result.rotated and not result.unsaved and result.saved_to == store.path("mine")
    assert store.load("mine").refresh_token == result.credential.refresh_token != cred.refresh_token


def test_refresh_whose_save_fails_after_the_check_keeps_the_new_tokens_usable(sim, tmp_path, monkeypatch, caplog):
    ep, cred = sim_login(sim)
    store = CredentialStore(tmp_path / "home")
    store.save(cred)
    # the disk fills up between the check and the save: the probe goes through, the credential's file does not
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", "full", only=lambda p: ".mine." in p)
    v = oauth.client_variant("axios-json")
    result = oauth.refresh(store.load("mine"), ep, v, store=store)  # no traceback: the result holds the tokens
    assert result.rotated and result.unsaved and result.saved_to is None and fault.hits
    text = repr(result)
    assert "NOT SAVED" in text and "ENOSPC" in text and "result.save()" in text and "only in this result" in text
    assert result.credential.refresh_token not in text + caplog.text and "NOT SAVED" in caplog.text
    assert store.load("mine").refresh_token == cred.refresh_token  # the old file is intact (and its token spent)
    # the new credential works meanwhile
    from lanelab.auth.introspect import inspect_account

    assert not inspect_account(result.credential.access_token, sim.base_url).errors
    with pytest.raises(StoreNotWritable):
        result.save()  # still full: says so again, keeps the tokens
    assert result.unsaved
    fault.active = False
    assert result.save() == store.path("mine") and not result.unsaved and "NOT SAVED" not in repr(result)
    again = oauth.refresh(store.load("mine"), ep, v, store=store)  # the saved (rotated) token is the live one
    assert again.rotated and not again.unsaved


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_login_flow_checks_the_store_before_spending_the_code(sim, tmp_path, monkeypatch, kind):
    from lanelab.auth.flow import LoginFlow

    flow = LoginFlow(Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home"), label="mine")
    flow.start()
    value = flow.headless_paste(auto=True)
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", kind)
    assert flow.submit(value) is False
    assert "cannot be written" in flow.error and "nothing was sent" in flow.error and flow.credential is None
    fault.active = False
    assert flow.submit(value) is True  # the same code: it was never sent, so it is not spent
    assert flow.save() == CredentialStore(tmp_path / "home").path("mine")


def test_login_flow_save_failure_keeps_the_credential_and_says_how_to_save_it(sim, tmp_path, monkeypatch):
    from lanelab.auth.flow import LoginFlow

    flow = LoginFlow(Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home"), label="mine")
    flow.start()
    assert flow.submit(flow.headless_paste(auto=True))
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", "full")
    with pytest.raises(StoreNotWritable) as info:
        flow.save()
    text = str(info.value)
    assert "ENOSPC" in text and "flow.credential" in text and "flow.save()" in text and flow.error == text
    assert "save" not in flow.done and flow.credential is not None and flow.saved_path is None
    assert flow.credential.access_token not in text + repr(flow)
    fault.active = False
    path = flow.save()
    assert CredentialStore(tmp_path / "home").load("mine").access_token == flow.credential.access_token
    assert "save" in flow.done and flow.error is None and path.exists()


def test_cli_login_refuses_an_unwritable_store_before_showing_the_link(sim, tmp_path, monkeypatch, capsys):
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    disk_faults.inject(monkeypatch, tmp_path / "home", "read-only")
    assert cli.main(["login", "--auto"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "EROFS" in err and "Traceback" not in err


class EnterAfterFix:
    """Standard input of a person who fixes the folder, then presses Enter (or Ctrl-D when ``give_up``)."""

    def __init__(self, fault, give_up=False):
        self.fault, self.give_up, self.lines = fault, give_up, 0

    def readline(self) -> str:
        self.lines += 1
        if self.give_up:
            return ""
        self.fault.active = False
        return "\n"


@pytest.mark.parametrize("give_up", [False, True])
def test_cli_login_save_failure_waits_for_the_fix(sim, tmp_path, monkeypatch, capsys, give_up):
    for k, v in _env(sim, tmp_path).items():
        monkeypatch.setenv(k, v)
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", "full", only=lambda p: ".mine." in p)
    stdin = EnterAfterFix(fault, give_up)
    monkeypatch.setattr(sys, "stdin", stdin)
    code = cli.main(["login", "--auto", "--label", "mine", "--no-probe"])
    out, err = capsys.readouterr()
    assert stdin.lines == 1 and "could not save 'mine'" in err and "ENOSPC" in err and "press Enter" in err
    assert "Traceback" not in err
    store = CredentialStore(tmp_path / "home")
    if give_up:
        assert code == 2 and "is gone now that login ends" in err and "run 'python -m lanelab login' again" in err
        assert store.labels() == []
    else:
        assert code == 0 and "Saved 'mine'" in out and store.load("mine").mode == "sim"


def test_a_label_the_store_could_not_take_is_refused_when_the_flow_is_made_not_after_the_code_is_spent(tmp_path):
    from lanelab.auth.credential import InvalidLabel
    from lanelab.auth.flow import LoginFlow

    settings = Settings(mode="sim", base_url="http://127.0.0.1:9", home=tmp_path / "home", out=tmp_path / "out")
    for label in ("../evil", "a b", 5):
        with pytest.raises(InvalidLabel):
            LoginFlow(settings, label=label)
    assert LoginFlow(settings, label="mine").label == "mine"
