"""The 2026-11 snapshot end to end over real HTTP, read by the kit's own readers (issue 14's "Done when").

Each test sends through lanelab.wire.send.send (the kit's one client), then reads the answer with
lanelab.wire.classify, the unified-header lane and lanelab.wire.drift, as a run would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from lanelab import http as lanelab_http
from lanelab.config import Settings
from lanelab.matrix.plan import MatrixPlan
from lanelab.matrix.sim_client import sim_token
from lanelab.runs import load_run
from lanelab.sim import outcomes
from lanelab.sim.policy import load_policy
from lanelab.sim.server import SimHandle
from lanelab.version_gate import load_version_gate
from lanelab.wire import drift
from lanelab.wire.classify import classify
from lanelab.wire.observe import observe_response
from lanelab.wire.send import send
from lanelab.wire.spec import RequestSpec
from lanelab.wire.usage import read_usage

FIXTURE = Path(__file__).parent / "fixtures" / "oauth_usage_2026-11.json"
PREFIX = "anthropic-ratelimit-unified-"
FABLE = "claude-fable-5-1"


@pytest.fixture
def nov(sim_with: Callable[..., SimHandle]) -> SimHandle:
    return sim_with(policy="2026-11")


def claude_code_shaped(model: str = "claude-sonnet-4-6", ua: str = "claude-cli/2.1.330 (external, cli)") -> RequestSpec:
    """A request shaped like Claude Code's own (identity line first, its user agent): billed to the plan in 2026-11."""
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}],
            "system": [{"type": "text", "text": outcomes.identity_line()}]}
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,oauth-2025-04-20",
               "user-agent": ua, "x-app": "cli"}
    return RequestSpec(path="/v1/messages", headers=headers, body=body, auth="bearer")


def usage_spec() -> RequestSpec:
    return RequestSpec(method="GET", path="/api/oauth/usage", auth="bearer",
                       headers={"anthropic-beta": "oauth-2025-04-20", "user-agent": "lanelab-test"})


def post(sim: SimHandle, path: str, body: Any) -> httpx.Response:
    return httpx.post(sim.base_url + path, json=body, timeout=10)


# ------------------------------------------------------------------------------------------------ Ultra, 7d_oi, slow, grace
def test_an_ultra_account_gets_no_five_hour_headers_and_its_lane_is_read(nov: SimHandle) -> None:
    assert post(nov, "/_sim/account", {"plan": "ultra", "five_hour_utilization": 0.0}).status_code == 200
    obs = send(claude_code_shaped(), nov.base_url, sim_token(nov.base_url))
    assert obs.status == 200
    names = set(obs.unified.raw)
    assert names and not any(n.startswith(PREFIX + "5h-") for n in names)
    assert obs.unified.window("5h") is None and obs.unified.window("7d") is not None
    assert {"7d_oi", "slow", "grace"} <= set(obs.unified.windows)
    assert obs.unified.representative_claim == "seven_day" and obs.unified.lane == "plan"
    assert (classify(obs).outcome, classify(obs).lane) == ("served_plan", "plan")
    assert obs.unknown == [], "every header the simulator sends in 2026-11 is one the kit knows"
    usage = send(usage_spec(), nov.base_url, sim_token(nov.base_url)).body
    assert usage["five_hour"] is None and [lim["kind"] for lim in usage["limits"]] == ["weekly_all"]


def test_a_max_account_keeps_its_five_hour_window(nov: SimHandle) -> None:
    post(nov, "/_sim/account", {"plan": "max"})
    obs = send(claude_code_shaped(), nov.base_url, sim_token(nov.base_url))
    assert obs.unified.window("5h") is not None and obs.unified.lane == "plan"


def test_older_snapshots_emit_no_november_windows(sim_with: Callable[..., SimHandle]) -> None:
    sim = sim_with(policy="2026-08", account={"plan": "ultra"})
    obs = send(claude_code_shaped(), sim.base_url, sim_token(sim.base_url))
    assert obs.unified.window("5h") is not None  # Ultra had no meaning before 2026-11: every plan had 5h
    assert not {"7d_oi", "slow", "grace"} & set(obs.unified.windows)


def test_fable_is_billed_to_the_included_overage_bucket_and_read_as_its_own_lane(nov: SimHandle) -> None:
    obs = send(claude_code_shaped(FABLE), nov.base_url, sim_token(nov.base_url))
    assert obs.status == 200
    assert obs.unified.representative_claim == "seven_day_overage_included"
    assert obs.unified.lane == "included_overage"
    assert classify(obs).outcome == "served_included_overage" and obs.unknown == []
    assert obs.unified.raw[PREFIX + "7d_oi-status"] == "allowed"
    account = nov.state.snapshot()
    assert account["included_overage_utilization"] > 0, "billed to the bucket"
    assert account["seven_day_utilization"] == 0.0, "not to the plan's week"


def test_a_used_up_included_overage_bucket_gets_a_429_while_the_week_is_open(nov: SimHandle) -> None:
    post(nov, "/_sim/account", {"included_overage_utilization": 1.0})
    obs = send(claude_code_shaped(FABLE), nov.base_url, sim_token(nov.base_url))
    assert obs.status == 429 and obs.unified.raw[PREFIX + "7d-status"] == "allowed"
    assert obs.unified.raw[PREFIX + "7d_oi-status"] == "rejected"
    assert classify(obs).outcome == "rate_limited"


# ------------------------------------------------------------------------------------------------ the version gate
@pytest.mark.parametrize(("model", "claimed", "floor"), [(FABLE, "2.1.74", "2.1.251"),
                                                         ("claude-opus-5-5", "2.1.251", "2.1.280")])
def test_an_old_claude_code_version_for_a_gated_model_gets_the_gate_and_is_classified(
        nov: SimHandle, model: str, claimed: str, floor: str) -> None:
    obs = send(claude_code_shaped(model, f"claude-cli/{claimed} (external, cli)"), nov.base_url,
               sim_token(nov.base_url))
    gate = load_version_gate()
    assert (obs.status, obs.error_type, obs.error_code) == (gate.status, gate.error_type, gate.error_code)
    assert obs.error_message == gate.message.format(claimed=claimed, floor=floor)
    verdict = classify(obs)
    assert verdict.outcome == "version_too_old"
    assert verdict.details == {"client_version": claimed, "required_version": floor}
    assert obs.unknown == []


def test_the_floor_itself_passes_the_gate(nov: SimHandle) -> None:
    obs = send(claude_code_shaped(FABLE, "claude-cli/2.1.251 (external, cli)"), nov.base_url,
               sim_token(nov.base_url))
    assert obs.status == 200 and classify(obs).outcome == "served_included_overage"


def test_the_gate_reads_the_user_agent_not_an_attestation_block(nov: SimHandle) -> None:
    """A request that claims no Claude Code version is not gated; the kit never sends an attestation block."""
    spec = claude_code_shaped(FABLE, "Anthropic/Python 0.86.0")
    obs = send(spec, nov.base_url, sim_token(nov.base_url))
    assert classify(obs).outcome != "version_too_old"
    assert "cc_version" in load_version_gate().reads_conflict  # the other reading is noted, not modelled


def test_the_gate_is_not_in_august(nov: SimHandle) -> None:
    post(nov, "/_sim/policy", {"name": "2026-08"})
    obs = send(claude_code_shaped(FABLE, "claude-cli/2.1.74 (external, cli)"), nov.base_url,
               sim_token(nov.base_url))
    assert obs.error_code != "claude_code_version_too_old"


# ------------------------------------------------------------------------------------------------ drift made visible
def test_a_claim_and_a_header_the_kit_has_never_seen_are_lane_unknown_and_flagged(nov: SimHandle) -> None:
    patch = {"unified_claim": "seven_day_moonlight", "unified_extra": {"quux-status": "allowed"}}
    assert post(nov, "/_sim/account", patch).status_code == 200
    obs = send(claude_code_shaped(), nov.base_url, sim_token(nov.base_url))
    assert obs.status == 200
    assert obs.unified.representative_claim == "seven_day_moonlight" and obs.unified.lane == "unknown"
    assert classify(obs).lane == "unknown"
    flagged = {(u.kind, u.value) for u in obs.unknown}
    assert ("claim", "seven_day_moonlight") in flagged
    assert any(u.name == PREFIX + "quux-status" for u in obs.unknown)
    # the same item across runs, with its cell, for the findings' "new to this kit"
    run = type("Run", (), {"run_id": "r", "cells": [{"cell_id": "c1", "observation": obs.to_dict()}]})()
    new = drift.new_to_kit(run)
    assert "seven_day_moonlight" in set(new["value"]) and new.loc[new["value"] == "seven_day_moonlight",
                                                                  "cells"].iloc[0] == ["c1"]


# ------------------------------------------------------------------------------------------------ the usage endpoint
def test_the_usage_body_has_the_current_shape(nov: SimHandle) -> None:
    obs = send(usage_spec(), nov.base_url, sim_token(nov.base_url))
    assert obs.status == 200
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert set(obs.body) == set(fixture)
    assert set(obs.body["extra_usage"]) == set(fixture["extra_usage"])
    assert set(obs.body["seven_day"]) == set(fixture["seven_day"])
    assert {lim["kind"] for lim in obs.body["limits"]} <= {"session", "weekly_all", "weekly_scoped"}
    assert read_usage(obs.body).unknown == [] and obs.unknown == []


def test_the_31st_usage_read_in_an_hour_gets_429_and_the_next_hour_is_free_again(nov: SimHandle) -> None:
    token = sim_token(nov.base_url)
    with lanelab_http.client(nov.base_url) as http:
        statuses = [send(usage_spec(), nov.base_url, token, http).status for _ in range(30)]
        assert statuses == [200] * 30
        refused = send(usage_spec(), nov.base_url, token, http)
        assert refused.status == 429 and 0 < int(refused.headers["retry-after"]) <= 3600
        assert classify(refused).outcome == "usage_rate_limited"
        clock = post(nov, "/_sim/clock", {"advance": 3600}).json()
        assert clock["offset"] == 3600 and clock["usage_reads_this_hour"] == 0
        assert send(usage_spec(), nov.base_url, token, http).status == 200


def test_older_snapshots_do_not_limit_usage_reads(sim_with: Callable[..., SimHandle]) -> None:
    sim = sim_with(policy="2026-05-25")
    token = sim_token(sim.base_url)
    with lanelab_http.client(sim.base_url) as http:
        assert {send(usage_spec(), sim.base_url, token, http).status for _ in range(31)} == {200}


def test_no_run_fails_when_the_usage_endpoint_is_limited(tmp_path: Path, nov: SimHandle) -> None:
    token = sim_token(nov.base_url)
    with lanelab_http.client(nov.base_url) as http:
        for _ in range(30):
            send(usage_spec(), nov.base_url, token, http)
    settings = Settings(mode="sim", base_url=nov.base_url, home=tmp_path / "h", out=tmp_path / "o")
    plan = MatrixPlan.build("sdk-minimal", "ofat", ["x_app"], settings)
    result = plan.run(token=token, credential="sim-pkce", usage_snapshots=True, progress=False)
    assert result.sent == len(plan.cells) and result.failed == 0
    run = load_run(result.path)
    failed = [n for n in run.of_kind("note") if n.get("event") == "usage_snapshot_failed"]
    # before: the 429 itself; after: not asked again while the endpoint's retry-after runs (the kit spares the
    # endpoint's hourly allowance), said in the note
    assert [n["status"] for n in failed] == [429, None] and "rate limited until" in str(failed[1]["error"])
    assert len(run.cells) == len(plan.cells)


def test_a_setup_token_is_inference_only(nov: SimHandle) -> None:
    token = sim_token(nov.base_url, kind="setup-token")
    usage = send(usage_spec(), nov.base_url, token)
    assert usage.status == 403 and classify(usage).outcome == "scope_insufficient"
    log = httpx.get(nov.base_url + "/_sim/requests").json()
    assert log[-1]["rule"] == "profile_scope_missing"
    assert send(claude_code_shaped(), nov.base_url, token).status == 200


# ------------------------------------------------------------------------------------------------ the token endpoint
def token_post(sim: SimHandle, ua: str | None) -> Any:
    body = "grant_type=refresh_token&refresh_token=nothing&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    with lanelab_http.client(sim.base_url) as http:
        request = http.build_request("POST", sim.base_url + "/v1/oauth/token", content=body,
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        if ua is None:
            del request.headers["user-agent"]
        else:
            request.headers["user-agent"] = ua
        response = http.send(request)
    return observe_response(response.status_code, response.headers, response.content, 1.0, "/v1/oauth/token")


def test_a_token_request_without_a_user_agent_gets_the_1010_page_and_is_classified(nov: SimHandle) -> None:
    obs = token_post(nov, None)
    assert obs.status == 403 and obs.headers["content-type"].startswith("text/html")
    assert "1010" in obs.body and "browser_signature_banned" in obs.body
    assert classify(obs).outcome == "edge_signature_banned"


@pytest.mark.parametrize(("ua", "status", "outcome"), [("claude-code/2.1.330", 429, "burst_limited"),
                                                       ("claude-cli/2.1.330 (external, cli)", 404, "not_found"),
                                                       ("axios/1.7.9", 400, "unclassified")])
def test_token_endpoint_user_agent_rules(nov: SimHandle, ua: str, status: int, outcome: str) -> None:
    obs = token_post(nov, ua)
    assert obs.status == status
    if status == 400:  # axios passes the filter: the bogus refresh token itself is refused
        assert obs.body["error"] == "invalid_grant"
    else:
        assert classify(obs).outcome == outcome


def test_in_august_a_missing_user_agent_was_a_plain_403(sim_with: Callable[..., SimHandle]) -> None:
    obs = token_post(sim_with(policy="2026-08"), None)
    assert obs.status == 403 and isinstance(obs.body, dict) and obs.body["error"] == "forbidden"


# ------------------------------------------------------------------------------------------------ models
def test_models_lists_the_november_models_and_the_factor_has_them(nov: SimHandle) -> None:
    obs = send(RequestSpec(method="GET", path="/v1/models", headers={"anthropic-beta": "oauth-2025-04-20"}),
               nov.base_url, sim_token(nov.base_url))
    ids = [m["id"] for m in obs.body["data"]]
    assert ids == [m.id for m in load_policy("2026-11").models]
    assert {"claude-opus-5-5", FABLE, "claude-opus-5"} <= set(ids)
    from lanelab.matrix.factors import load_factors

    levels = load_factors()["model"].levels
    values = {lvl.args.get("value") for lvl in levels.values()}
    assert set(ids) - {"claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5"} <= values
    assert all(m.id in values for m in load_version_gate().models), "every gated model is a level of the factor"


def test_older_snapshots_list_what_they_listed_before(sim_with: Callable[..., SimHandle]) -> None:
    sim = sim_with(policy="2026-05-25")
    obs = send(RequestSpec(method="GET", path="/v1/models", headers={"anthropic-beta": "oauth-2025-04-20"}),
               sim.base_url, sim_token(sim.base_url))
    assert [m["id"] for m in obs.body["data"]] == ["claude-opus-4-7", "claude-sonnet-4-6", "claude-sonnet-4-5",
                                                   "claude-haiku-4-5"]


# ------------------------------------------------------------------------------------------------ profile caveats
def test_a_profile_with_an_attestation_marker_writes_its_caveat_into_the_run_header(tmp_path: Path,
                                                                                      nov: SimHandle) -> None:
    settings = Settings(mode="sim", base_url=nov.base_url, home=tmp_path / "h", out=tmp_path / "o")
    plan = MatrixPlan.build("openclaw-2026.9.6", "ofat", ["x_app"], settings)
    result = plan.run(token=sim_token(nov.base_url), credential="sim-pkce", progress=False)
    caveats = load_run(result.path).header["profile_caveats"]
    assert any("for the request without the block" in c for c in caveats)
    plain = MatrixPlan.build("sdk-minimal", "ofat", ["x_app"], settings).run(
        token=sim_token(nov.base_url), credential="sim-pkce", progress=False)
    assert "profile_caveats" not in load_run(plain.path).header


def test_every_november_rule_cites_a_reference_section_or_says_it_is_a_model_assumption() -> None:
    policy = load_policy("2026-11")
    for rule in (*policy.rules, *policy.token_rules):
        assert "references/" in rule.source and "§" in rule.source or rule.source.startswith("model assumption"), \
            rule.id
    for key, source in policy.service.sources.items():
        assert "references/autumn-2026.md §" in source, key
    assert all("references/" in m.source for m in policy.models) and "references/" in policy.hosts.source
