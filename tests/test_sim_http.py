"""The simulator over real HTTP: every endpoint's shape, the seed reproduction, and the agreement of its views."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from lanelab import redact
from lanelab.commands import sim as sim_command
from lanelab.errors import UserError
from lanelab.sim.server import running_simulator
from lanelab.wire.observe import observe_response, parse_sse
from lanelab.wire.unified import parse_unified

REQUEST_ID = re.compile(r"^req_011[0-9A-Za-z]{21}$")
OUT_OF_EXTRA = "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."
THIRD_PARTY = ("Third-party apps now draw from your extra usage, not your plan limits. "
               "Add more at claude.ai/settings/usage and keep going.")
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}


def hermes_0_14_body() -> dict:
    """The shape Hermes 0.14.0 sent (references/hermes.md §4): identity first, every tool prefixed ``mcp_``."""
    tools = [{"name": f"mcp_{n}", "description": n, "input_schema": {"type": "object", "properties": {}}}
             for n in ("terminal", "read_file", "web_search")]
    return {"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": False,
            "system": [{"type": "text", "text": IDENTITY}, {"type": "text", "text": "You are Claude Code, an agent."}],
            "messages": [{"role": "user", "content": "ping"}], "tools": tools}


def hermes_headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01",
            "anthropic-beta": "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14,"
                              "claude-code-20250219,oauth-2025-04-20",
            "user-agent": "claude-cli/2.1.74 (external, cli)", "x-app": "cli"}


def test_messages_json_shape_and_request_id(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=oauth_headers(token), json=MINIMAL)
    assert r.status_code == 200
    body = r.json()
    assert body["id"].startswith("msg_") and body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-sonnet-4-6" and body["stop_reason"] == "end_turn"
    assert body["content"][0]["type"] == "text" and body["content"][0]["text"]
    assert body["usage"]["service_tier"] == "standard"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert REQUEST_ID.match(r.headers["request-id"])


def test_max_tokens_truncates_the_reply(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=oauth_headers(token), json={**MINIMAL, "max_tokens": 2})
    assert r.json()["stop_reason"] == "max_tokens"
    assert len(r.json()["content"][0]["text"]) <= 8


def test_streaming_sequence_matches_the_real_api(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    plain = httpx.post(f"{sim.base_url}/v1/messages", headers=oauth_headers(token), json=MINIMAL).json()
    r = httpx.post(f"{sim.base_url}/v1/messages?beta=true", headers=oauth_headers(token),
                   json={**MINIMAL, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert len(deltas) == names.count("content_block_delta") >= 2
    assert "".join(deltas) == plain["content"][0]["text"]
    assert events[0][1]["message"]["id"].startswith("msg_")
    obs = observe_response(r.status_code, r.headers, r.content, 1.0)
    assert obs.error_type is None and obs.unified.lane == "plan"


def test_count_tokens_estimates_about_four_chars_per_token(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    url = f"{sim.base_url}/v1/messages/count_tokens"
    small = httpx.post(url, headers=oauth_headers(token), json={"model": "m", "messages": [
        {"role": "user", "content": "hi"}]}).json()["input_tokens"]
    big = httpx.post(url, headers=oauth_headers(token), json={"model": "m", "messages": [
        {"role": "user", "content": "x" * 4000}]}).json()["input_tokens"]
    assert 900 <= big - small <= 1100
    assert sim.state.snapshot()["five_hour_utilization"] == pytest.approx(0.03)  # counting spends nothing


def test_models_lists_models_and_needs_a_credential(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    r = httpx.get(f"{sim.base_url}/v1/models", headers=oauth_headers(token))
    ids = [m["id"] for m in r.json()["data"]]
    assert r.status_code == 200 and len(ids) >= 3 and all(m.startswith("claude-") for m in ids)
    anon = httpx.get(f"{sim.base_url}/v1/models")
    assert anon.status_code == 401 and anon.json()["error"]["type"] == "authentication_error"


def test_chat_completions_openai_shape_with_an_api_key(sim):
    key = sim.mint_token(kind="api_key")["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                   json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    stream = httpx.post(f"{sim.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                        json={"model": "claude-sonnet-4-6", "stream": True,
                              "messages": [{"role": "user", "content": "hi"}]})
    assert stream.text.rstrip().endswith("data: [DONE]")


def test_chat_completions_with_oauth_follows_the_policy(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/chat/completions", headers=oauth_headers(token, beta=None),
                   json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401 and "OAuth authentication is currently not supported" in r.json()["error"]["message"]
    unversioned = httpx.post(f"{sim.base_url}/chat/completions", headers=oauth_headers(token), json=MINIMAL)
    assert unversioned.status_code == 404


def test_unknown_path_is_a_json_404_with_matching_request_id(sim):
    r = httpx.get(f"{sim.base_url}/v1/nothing-here")
    body = r.json()
    assert r.status_code == 404 and body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == r.headers["request-id"]


def test_api_key_is_served_without_plan_effect_or_unified_headers(sim):
    key = sim.mint_token(kind="api_key")["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json=MINIMAL)
    assert r.status_code == 200
    assert not parse_unified(r.headers).present
    assert sim.state.snapshot()["five_hour_utilization"] == pytest.approx(0.03)


def test_expired_token_is_refused(sim, oauth_headers):
    token = sim.mint_token()["access_token"]
    sim.state.expire_token(token)
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=oauth_headers(token), json=MINIMAL)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_seed_reproduction_hermes_0_14_refused_minimal_served(sim):
    """#32243: the Hermes 0.14.0 shape gets the 400 while a minimal request with the same token is on the plan."""
    token = sim.mint_token(source="manual:hermes_pkce")["access_token"]
    refused = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=hermes_0_14_body())
    assert refused.status_code == 400
    assert refused.json()["error"] == {"type": "invalid_request_error", "message": OUT_OF_EXTRA}
    limits = parse_unified(refused.headers)
    assert limits.lane == "rejected"
    assert (limits.overage_status, limits.overage_disabled_reason) == ("rejected", "out_of_credits")
    served = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=MINIMAL)
    assert served.status_code == 200
    plan = parse_unified(served.headers)
    assert plan.lane == "plan" and plan.representative_claim == "five_hour" and plan.status == "allowed"
    assert plan.five_hour.status == "allowed" and 0.03 <= plan.five_hour.utilization < 0.1
    log = httpx.get(f"{sim.base_url}/_sim/requests").json()
    assert [e["outcome"] for e in log] == ["third_party", "plan"]
    assert log[0]["rule"] == "mcp_single_underscore_tool"


def test_third_party_without_extra_usage_gets_the_april_message(sim):
    httpx.post(f"{sim.base_url}/_sim/account", json={"extra_usage": {"is_enabled": False}})
    token = sim.mint_token()["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=hermes_0_14_body())
    assert r.status_code == 400 and r.json()["error"]["message"] == THIRD_PARTY
    assert parse_unified(r.headers).overage_disabled_reason == "overage_not_provisioned"
    profile = httpx.get(f"{sim.base_url}/api/oauth/profile", headers=hermes_headers(token)).json()
    assert profile["organization"]["has_extra_usage_enabled"] is False


def _views(sim, token):
    usage = httpx.get(f"{sim.base_url}/api/oauth/usage", headers=hermes_headers(token)).json()
    profile = httpx.get(f"{sim.base_url}/api/oauth/profile", headers=hermes_headers(token)).json()
    account = httpx.get(f"{sim.base_url}/_sim/account").json()["account"]
    return usage, profile, account


def test_headers_usage_and_account_agree_after_plan_requests(sim):
    token = sim.mint_token()["access_token"]
    big = {**MINIMAL, "messages": [{"role": "user", "content": "word " * 20000}]}
    last = None
    for _ in range(3):
        last = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=big)
        assert last.status_code == 200
    limits = parse_unified(last.headers)
    usage, profile, account = _views(sim, token)
    assert limits.five_hour.utilization > 0.03  # the plan window moved
    assert usage["five_hour"]["utilization"] == pytest.approx(limits.five_hour.utilization * 100, abs=0.01)
    assert usage["seven_day"]["utilization"] == pytest.approx(limits.seven_day.utilization * 100, abs=0.01)
    assert account["five_hour_utilization"] == pytest.approx(limits.five_hour.utilization, abs=1e-4)
    assert usage["extra_usage"]["used_credits"] == account["extra_usage"]["used_credits"] == 0
    assert profile["organization"]["has_extra_usage_enabled"] == usage["extra_usage"]["is_enabled"]
    assert profile["organization"]["rate_limit_tier"] == account["rate_limit_tier"]
    assert limits.reset == limits.five_hour.reset


def test_extra_usage_lane_spends_credits_and_says_so_everywhere(sim):
    httpx.post(f"{sim.base_url}/_sim/account", json={"extra_usage": {"monthly_limit": 5000}})
    token = sim.mint_token()["access_token"]
    before = _views(sim, token)[0]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=hermes_0_14_body())
    assert r.status_code == 200
    limits = parse_unified(r.headers)
    assert limits.lane == "extra_usage" and limits.overage_in_use is True
    assert limits.representative_claim == "overage" and limits.overage_status == "allowed"
    assert limits.overage_disabled_reason is None
    usage, _, account = _views(sim, token)
    assert usage["extra_usage"]["used_credits"] > before["extra_usage"]["used_credits"]
    assert usage["extra_usage"]["used_credits"] == account["extra_usage"]["used_credits"]
    assert usage["extra_usage"]["utilization"] == pytest.approx(limits.overage_utilization * 100, abs=0.01)
    assert usage["five_hour"]["utilization"] == before["five_hour"]["utilization"]  # the plan was not touched
    assert usage["seven_day_oauth_apps"]["utilization"] > 0


def test_exhausted_plan_window_is_a_429_with_unified_headers(sim):
    httpx.post(f"{sim.base_url}/_sim/account", json={"five_hour_utilization": 1.0})
    token = sim.mint_token()["access_token"]
    r = httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=MINIMAL)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    assert int(r.headers["retry-after"]) > 0
    limits = parse_unified(r.headers)
    assert limits.status == "rejected" and limits.five_hour.status == "rejected" and limits.lane == "rejected"


def test_burst_limited_reply_carries_no_unified_headers(sim):
    burst = sim.simulator.render("burst_limited")
    assert burst.status == 429
    assert not any(k.startswith("anthropic-ratelimit-unified-") for k in sim.simulator.reply_headers(burst))
    limited = sim.simulator.render("rate_limited")
    assert any(k.startswith("anthropic-ratelimit-unified-") for k in sim.simulator.reply_headers(limited))


def test_usage_and_profile_shapes_and_scope(sim):
    token = sim.mint_token()["access_token"]
    usage, profile, _ = _views(sim, token)
    for window in ("five_hour", "seven_day", "seven_day_oauth_apps", "seven_day_opus", "seven_day_sonnet"):
        assert 0 <= usage[window]["utilization"] <= 100 and usage[window]["resets_at"].endswith("Z")
    assert set(usage["extra_usage"]) == {"is_enabled", "monthly_limit", "used_credits", "utilization"}
    assert set(profile["account"]) == {"uuid", "email", "display_name", "created_at"}
    assert profile["organization"]["organization_type"] == "claude_max"
    setup = sim.mint_token(kind="setup-token")["access_token"]
    r = httpx.get(f"{sim.base_url}/api/oauth/usage", headers=hermes_headers(setup))
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "OAuth token does not meet scope requirement user:profile"


def test_request_log_is_redacted_and_filterable(sim):
    token = sim.mint_token()["access_token"]
    for _ in range(2):
        httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=MINIMAL)
    log = httpx.get(f"{sim.base_url}/_sim/requests")
    text = log.text
    assert token not in text and token[-4:] in text
    entries = log.json()
    assert entries[0]["headers"]["authorization"].startswith("Bearer sk-ant-oat01-…")
    assert entries[0]["body"]["messages"] == MINIMAL["messages"]
    assert entries[0]["request_id"] and entries[0]["status"] == 200 and entries[0]["lane"] == "plan"
    later = httpx.get(f"{sim.base_url}/_sim/requests", params={"since": entries[0]["seq"]}).json()
    assert [e["seq"] for e in later] == [entries[1]["seq"]]
    httpx.delete(f"{sim.base_url}/_sim/requests")
    assert httpx.get(f"{sim.base_url}/_sim/requests").json() == []


def test_large_bodies_are_truncated_in_the_log(sim):
    token = sim.mint_token()["access_token"]
    huge = {**MINIMAL, "messages": [{"role": "user", "content": "y" * 50000}]}
    httpx.post(f"{sim.base_url}/v1/messages", headers=hermes_headers(token), json=huge)
    body = sim.state.requests()[-1]["body"]
    assert body["truncated"] is True and body["chars"] > 50000 and len(body["preview"]) <= 16000


def test_account_view_masks_tokens_and_reset_restores(sim):
    minted = sim.mint_token()
    view = httpx.get(f"{sim.base_url}/_sim/account")
    assert minted["access_token"] not in view.text and minted["refresh_token"] not in view.text
    assert view.json()["tokens"][0]["token"].startswith("sk-ant-oat01-…")
    httpx.post(f"{sim.base_url}/_sim/account", json={"plan": "pro", "extra_usage": {"monthly_limit": 7}})
    merged = httpx.get(f"{sim.base_url}/_sim/account").json()["account"]
    assert merged["plan"] == "pro" and merged["extra_usage"]["monthly_limit"] == 7
    assert merged["extra_usage"]["is_enabled"] is True  # partial merge kept the rest
    reset = httpx.post(f"{sim.base_url}/_sim/reset").json()
    assert reset["account"]["plan"] == "max_5x" and reset["tokens"] == []


def test_mint_endpoint_and_policy_switch(sim):
    minted = httpx.post(f"{sim.base_url}/_sim/tokens", json={"kind": "setup-token", "source": "env"}).json()
    assert minted["access_token"].startswith("sk-ant-oat01-") and minted["scopes"] == ["user:inference"]
    assert redact.mask(minted["access_token"]) in redact.redact_text(minted["access_token"])
    bad_kind = httpx.post(f"{sim.base_url}/_sim/tokens", json={"kind": "cookie"})
    assert bad_kind.status_code == 400
    policy = httpx.get(f"{sim.base_url}/_sim/policy").json()
    assert policy["name"] == "2026-05-25" and "2026-05-25" in policy["available"]
    bad = httpx.post(f"{sim.base_url}/_sim/policy", json={"name": "1999-01-01"})
    assert bad.status_code == 400 and "2026-05-25" in bad.json()["error"]["message"]


def test_port_is_closed_after_exit():
    with running_simulator() as handle:  # its own server: the test is about the port's lifetime
        port = handle.port
        assert httpx.get(f"{handle.base_url}/_sim/ping").json() == {"ok": True}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not any(t.name == f"lanelab-sim:{port}" for t in threading.enumerate())


@pytest.mark.slow  # a CLI process
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_base_url_first_and_stops_on_ctrl_c_or_sigterm(tmp_path: Path, stop: signal.Signals):
    """Either signal stops it as Ctrl-C does: the CLI's one line, exit 130 (SIGTERM used to kill it: exit -15)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "sim", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", first)
        assert httpx.get(f"{first}/_sim/ping", timeout=10).json() == {"ok": True}
    finally:
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "lanelab sim: interrupted; nothing already written was lost."


def test_cli_help_and_bad_account(capsys):
    parser = argparse.ArgumentParser(prog="lanelab sim", description=sim_command.DESCRIPTION)
    sim_command.configure(parser)
    flat = " ".join(parser.format_help().split())
    assert "--faults" in flat and "first line of output is its base URL" in flat
    args = parser.parse_args(["--account", "{nope"])
    with pytest.raises(UserError, match="--account is not valid JSON"):
        sim_command.run(args)
    with pytest.raises(UserError, match="neither a JSON object nor an existing file"):
        sim_command.parse_account("no-such-file.json")
    assert sim_command.parse_account('{"plan": "pro"}') == {"plan": "pro"}


def test_the_bare_route_can_answer_like_the_last_message_served(sim, oauth_headers):
    """``POST /_sim/ping?like=messages`` (the benchmark's yardstick) repeats the last served answer of /v1/messages,
    byte for byte, with its own request id, decides nothing and is not logged."""
    before = httpx.post(f"{sim.base_url}/_sim/ping?like=messages", json=MINIMAL)
    assert before.status_code == 404 and before.json()["type"] == "error"
    headers = oauth_headers(sim.mint_token()["access_token"])
    served = httpx.post(f"{sim.base_url}/v1/messages", json=MINIMAL, headers=headers)
    assert served.status_code == 200
    spent = httpx.get(f"{sim.base_url}/_sim/account").json()
    like = httpx.post(f"{sim.base_url}/_sim/ping?like=messages", json=MINIMAL, headers=headers)
    assert (like.status_code, like.content) == (200, served.content)
    differ = {k for k in {*served.headers, *like.headers} if served.headers.get(k) != like.headers.get(k)}
    assert differ <= {"request-id", "date"} and like.headers["request-id"] != served.headers["request-id"]
    assert httpx.get(f"{sim.base_url}/_sim/account").json() == spent  # nothing charged or counted
    assert [e["path"] for e in httpx.get(f"{sim.base_url}/_sim/requests").json()] == ["/v1/messages"]
    sim.reset()
    assert httpx.post(f"{sim.base_url}/_sim/ping?like=messages").status_code == 404


def test_a_client_that_leaves_before_its_body_is_in_is_logged_and_is_no_server_error(sim):
    """What an interrupted run leaves behind: a request whose body never completes. The simulator logs it as
    ``client_disconnected``; its server logs no error (in a notebook that traceback would land in the cell)."""
    import logging
    import time

    errors: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record)

    keep, logger = Keep(level=logging.ERROR), logging.getLogger("uvicorn.error")
    logger.addHandler(keep)
    try:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
            conn.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{\"model\": ")
        deadline = time.monotonic() + 10
        while not sim.state.requests() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # an error would be logged by now
    finally:
        logger.removeHandler(keep)
    (entry,) = sim.state.requests()
    assert entry["outcome"] == "client_disconnected" and entry["status"] is None and entry["lane"] == "none"
    assert not errors, [r.getMessage() for r in errors]
