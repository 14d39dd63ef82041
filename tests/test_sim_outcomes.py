"""Outcome templates: every contract outcome renders, third_party follows the account state, the file is validated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lanelab.sim import outcomes
from lanelab.sim.outcomes import DEFAULT_ACCOUNT, OutcomeFileError, UnknownOutcome, render

#: docs/contracts.md §1.1, verbatim.
CONTRACT_OUTCOMES = ["plan", "third_party", "api_key", "oauth_unsupported", "invalid_x_api_key", "invalid_bearer", "token_expired", "scope_insufficient", "inference_scope_missing", "not_found", "generic_error", "claude_code_only", "long_context_unavailable", "long_context_auth_incompatible", "version_too_old", "monthly_spend_limit", "rate_limited", "burst_limited", "overloaded", "server_error", "token_not_found", "token_rate_limited", "token_forbidden", "token_bad_request", "token_invalid_format", "invalid_request", "long_context_extra_usage", "included_overage", "usage_rate_limited", "token_edge_banned"]

OUT_OF_EXTRA = "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."
THIRD_PARTY = ("Third-party apps now draw from your extra usage, not your plan limits. "
               "Add more at claude.ai/settings/usage and keep going.")
TEAM_OUT = "You're out of extra usage. Ask your workspace admin to add more so you can keep going."
TEAM_THIRD = "Third-party apps now draw from extra usage, not plan limits. Ask your workspace admin to add more and keep going."
REFERENCES = Path(__file__).resolve().parents[1] / "docs" / "references"


def account(**changes: Any) -> dict[str, Any]:
    acc = copy.deepcopy(DEFAULT_ACCOUNT)
    extra = changes.pop("extra_usage", None)
    acc.update(changes)
    if extra:
        acc["extra_usage"].update(extra)
    return acc


def test_templates_define_exactly_the_contract_outcomes() -> None:
    assert set(outcomes.outcome_ids()) == set(CONTRACT_OUTCOMES)


@pytest.mark.parametrize("outcome", CONTRACT_OUTCOMES)
def test_every_outcome_renders_consistently(outcome: str) -> None:
    reply = render(outcome, DEFAULT_ACCOUNT)
    assert 100 <= reply.status <= 599
    assert reply.lane in ("plan", "extra_usage", "included_overage", "api", "none")
    if reply.ok:
        assert reply.lane != "none" and reply.message is None and reply.error_type is None
    else:
        assert reply.lane == "none" and reply.message and reply.error_type
        body = reply.error_body("req_011test")
        assert body["type"] == "error" and body["request_id"] == "req_011test"
        assert body["error"] == {"type": reply.error_type, "message": reply.message,
                                 **({"details": {"error_code": reply.error_code}} if reply.error_code else {})}
    assert outcomes.template(outcome)["source"]


@pytest.mark.parametrize(("outcome", "status", "error_type", "message"), [
    ("oauth_unsupported", 401, "authentication_error", "OAuth authentication is currently not supported."),
    ("invalid_x_api_key", 401, "authentication_error", "invalid x-api-key"),
    ("invalid_bearer", 401, "authentication_error", "Invalid bearer token"),
    ("monthly_spend_limit", 429, "rate_limit_error",
     "This request would exceed your account's monthly spend limit. Please try again later."),
    ("burst_limited", 429, "rate_limit_error", "Error"),
    ("long_context_unavailable", 400, "invalid_request_error",
     "The long context beta is not yet available for this subscription."),
    ("token_invalid_format", 400, "invalid_request_error", "Invalid request format"),
])
def test_reported_messages(outcome: str, status: int, error_type: str, message: str) -> None:
    reply = render(outcome, None)
    assert (reply.status, reply.error_type, reply.message) == (status, error_type, message)


def test_version_gate_carries_its_error_code() -> None:
    reply = render("version_too_old", DEFAULT_ACCOUNT)
    assert reply.error_code == "claude_code_version_too_old"
    assert reply.error_body()["error"]["details"] == {"error_code": "claude_code_version_too_old"}


def test_burst_limit_has_no_unified_headers_but_rate_limit_does() -> None:
    assert not render("burst_limited", None).unified
    limited = render("rate_limited", None)
    assert limited.unified and limited.retry_after is not None and limited.retry_after > 0


@pytest.mark.parametrize(("acc", "status", "lane", "message"), [
    (account(), 400, "none", OUT_OF_EXTRA),  # the default: enabled, monthly limit 0
    (account(extra_usage={"monthly_limit": 50.0, "used_credits": 50.0}), 400, "none", OUT_OF_EXTRA),
    (account(extra_usage={"is_enabled": False}), 400, "none", THIRD_PARTY),
    (account(extra_usage={"monthly_limit": 50.0, "used_credits": 12.5}), 200, "extra_usage", None),
    (account(plan="team"), 400, "none", TEAM_OUT),
    (account(plan="team", extra_usage={"is_enabled": False, "monthly_limit": 100.0}), 400, "none", TEAM_THIRD),
    (account(plan="team", extra_usage={"monthly_limit": 100.0}), 200, "extra_usage", None),
    (account(plan="pro", extra_usage={"is_enabled": False}), 400, "none", THIRD_PARTY),
])
def test_third_party_follows_account_state(acc: dict[str, Any], status: int, lane: str, message: str | None) -> None:
    reply = render("third_party", acc)
    assert (reply.status, reply.lane, reply.message) == (status, lane, message)
    if status == 400:
        assert reply.error_type == "invalid_request_error"


def test_plan_window_exhausted() -> None:
    full = account(five_hour_utilization=1.0)
    limited = render("plan", full)
    assert (limited.status, limited.error_type, limited.lane) == (429, "rate_limit_error", "none")
    overage = render("plan", account(seven_day_utilization=1.2, extra_usage={"monthly_limit": 10.0}))
    assert (overage.status, overage.lane) == (200, "extra_usage")
    assert render("plan", account(five_hour_utilization=0.99)).lane == "plan"


def test_default_account_shape_and_copies() -> None:
    assert DEFAULT_ACCOUNT == {
        "plan": "max_5x", "rate_limit_tier": "default_claude_max_5x", "five_hour_utilization": 0.03,
        "seven_day_utilization": 0.0, "extra_usage": {"is_enabled": True, "monthly_limit": 0.0, "used_credits": 0.0},
    }
    fresh = outcomes.default_account()
    fresh["extra_usage"]["monthly_limit"] = 99.0
    assert DEFAULT_ACCOUNT["extra_usage"]["monthly_limit"] == 0.0
    assert outcomes.extra_usage_state(DEFAULT_ACCOUNT) == "exhausted"


@pytest.mark.parametrize("junk", [None, {}, {"extra_usage": "yes"}, {"five_hour_utilization": "lots"},
                                  {"extra_usage": {"monthly_limit": None}}, {"plan": 3}])
def test_render_tolerates_partial_or_junk_accounts(junk: Any) -> None:
    assert render("third_party", junk).status in (200, 400)
    assert render("plan", junk).status in (200, 429)


def test_unknown_outcome_is_a_clear_error() -> None:
    with pytest.raises(UnknownOutcome, match="served_plan"):
        render("served_plan", None)


def test_third_party_messages_are_verbatim_in_the_references() -> None:
    text = " ".join((REFERENCES / n).read_text(encoding="utf-8") for n in ("hermes.md", "protocol.md"))
    text = " ".join(text.split())
    gate = render("version_too_old", None, details={"claimed": "2.1.75", "floor": "2.1.251"}).message
    for msg in (OUT_OF_EXTRA, THIRD_PARTY, TEAM_OUT, TEAM_THIRD, gate,
                render("inference_scope_missing", None).message, render("claude_code_only", None).message):
        assert msg in text


def test_identity_line_is_a_wire_fact_with_a_source() -> None:
    doc = outcomes.load_outcomes()
    assert outcomes.identity_line() == doc["wire_facts"]["identity_line"]
    assert len(outcomes.identity_line()) == 57 and doc["wire_facts"]["identity_line_source"]


@pytest.mark.parametrize(("text", "expected"), [
    ('[wire_facts]\nidentity_line = "x"\n[outcome.a]\nstatus = 200\nlane = "sideways"\nsource = "s"\n', "sideways"),
    (('[wire_facts]\nidentity_line = "x"\n[outcome.a]\nstatus = 200\nlane = "plan"\nsource = "s"\n'
      '[[outcome.a.variant]]\nwhen = { moon = "full" }\nsource = "s"\n'), "moon"),
    ('[wire_facts]\nidentity_line = "x"\n[outcome.a]\nstatus = 200\nlane = "plan"\n', "source"),
    ('[outcome.a]\nstatus = 200\nlane = "plan"\nsource = "s"\n', "identity_line"),
    ('[wire_facts]\nidentity_line = "x"\n[outcome.a]\nstatus = 9000\nlane = "plan"\nsource = "s"\n', "9000"),
])
def test_bad_outcome_file_is_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "sim_outcomes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OutcomeFileError) as err:
        outcomes.load_outcomes(path)
    assert expected in str(err.value) and str(path) in str(err.value)
