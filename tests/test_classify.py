"""The classifier over every error message reported in references/hermes.md §2 and references/protocol.md §3.3."""

from __future__ import annotations

import json
import re

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.config import data_dir
from lanelab.runs import load_run
from lanelab.wire.classify import UNCLASSIFIED, TaxonomyError, classify, load_taxonomy, parse_taxonomy
from lanelab.wire.observe import observe_response
from lanelab.wire.spec import Observation
from lanelab.wire.unified import PREFIX, parse_unified

PLAN_HEADERS = {
    f"{PREFIX}status": "allowed",
    f"{PREFIX}representative-claim": "five_hour",
    f"{PREFIX}5h-utilization": "0.03",
    f"{PREFIX}overage-status": "rejected",
    f"{PREFIX}overage-disabled-reason": "out_of_credits",
}
EXTRA_HEADERS = {f"{PREFIX}status": "rejected", f"{PREFIX}overage-status": "allowed",
                 f"{PREFIX}representative-claim": "overage"}
REJECTED_HEADERS = {f"{PREFIX}status": "rejected", f"{PREFIX}overage-status": "rejected",
                    f"{PREFIX}representative-claim": "five_hour"}


def err(status: int, etype: str | None, message: str, code: str | None = None,
        headers: dict[str, str] | None = None) -> Observation:
    headers = headers or {}
    return Observation(status=status, headers=headers, error_type=etype, error_message=message, error_code=code,
                       unified=parse_unified(headers))


# (status, error type, verbatim message, error_code, expected outcome, where it was reported)
REPORTED = [
    (400, "invalid_request_error",
     "You're out of extra usage. Add more at claude.ai/settings/usage and keep going.", None,
     "extra_usage_exhausted", "hermes #32243, #15080, #29125, #33192, #65564"),
    (400, "invalid_request_error",
     "You're out of extra usage. Ask your workspace admin to add more so you can keep going.", None,
     "extra_usage_exhausted", "opencode-anthropic-auth #118, rakazo #926"),
    (400, "invalid_request_error",
     "You're out of extra usage. Add more at claude.ai/admin-settings/usage and keep going.", None,
     "extra_usage_exhausted", "references/protocol.md §3.3 Team variant"),
    (400, "invalid_request_error",
     "You\u2019re out of extra usage. Add more at claude.ai/settings/usage and keep going.", None,
     "extra_usage_exhausted", "same, typographic apostrophe"),
    (400, "invalid_request_error",
     ("Third-party apps now draw from your extra usage, not your plan limits. Add more at "
     "claude.ai/settings/usage and keep going."), None,
     "third_party_extra_usage", "hermes #31668, #46675, #79758"),
    (400, "invalid_request_error",
     "Third-party apps now draw from extra usage, not plan limits. Ask your workspace admin to add more and keep going.",
     None, "third_party_extra_usage", "hermes #48176"),
    (400, "invalid_request_error",
     ("Third-party apps now draw from your extra usage, not your plan limits. We've added a $200 credit to get you "
     "started. Claim it at claude.ai/settings/usage"), None, "third_party_extra_usage", "claude-code #45326"),
    (400, "invalid_request_error", "We've added a $20 credit to get you started. Claim it at claude.ai/settings/usage",
     None, "third_party_extra_usage", "references/protocol.md §3.3 banner"),
    (400, "invalid_request_error", "Third-party apps now draw from your extra usage, not your plan limits.", None,
     "third_party_extra_usage", "claude-code #45048"),
    (429, "rate_limit_error",
     "This request would exceed your account's monthly spend limit. Please try again later.", None,
     "monthly_spend_limit", "hermes #53212, #72171"),
    (429, "rate_limit_error", "Error", None, "burst_limited", "hermes #15080, #70039, PR #99842 (no unified headers)"),
    (400, "invalid_request_error",
     "This credential is only authorized for use with Claude Code and cannot be used for other API requests.", None,
     "claude_code_only", "Claudable #45, claude-code #11252, peekaboo #46"),
    (400, "invalid_request_error",
     "Your OAuth token is restricted to Claude Code and can't be used for external API calls.", None,
     "claude_code_only", "claude-code #23703"),
    (401, "authentication_error", "OAuth authentication is currently not supported.", None,
     "oauth_not_supported", "claude-code #5983, #6131"),
    (401, "authentication_error", "OAuth authentication is currently not allowed for this organization.", None,
     "oauth_not_supported", "claude-code #6752"),
    (401, "authentication_error", "OAuth token has been revoked", None, "token_expired", "CC errors.ts"),
    (401, "authentication_error", "invalid x-api-key", None, "invalid_api_key", "hermes #2962"),
    (401, "authentication_error", "Invalid bearer token", None, "invalid_bearer", "hermes #2741, #12905"),
    (400, "invalid_request_error", "Error", None, "generic_error", "hermes PR #1670"),
    (400, "invalid_request_error",
     ("Claude Code 2.1.75 does not support this model; version 2.1.251 or newer is required. Run 'claude update', "
     "or update the Claude desktop app, then try again."), "claude_code_version_too_old",
     "version_too_old", "pi #8981, jcode #1134"),
    (400, "invalid_request_error",
     ("Claude Code 2.1.75 does not support this model; version 2.1.251 or newer is required. Run 'claude update', "
     "or update the Claude desktop app, then try again."), None, "version_too_old", "same, without error_code"),
    (400, "invalid_request_error", "The long context beta is not yet available for this subscription.", None,
     "long_context", "hermes #17442"),
    (400, "invalid_request_error", "This authentication style is incompatible with the long context beta header.",
     None, "long_context", "hermes #17680"),
    (400, "invalid_request_error", "Extra usage is required for long context", None, "long_context", "CC errors.ts"),
    (429, "rate_limit_error", "Extra usage is required for 1M context", None, "long_context", "references/hermes.md F3"),
    (500, "api_error", "Internal server error", None, "server_error", "hermes PR #1597"),
    (403, "forbidden", "forbidden", None, "generic_error", "oh-my-pi #9559"),
    (403, "permission_error", "OAuth token does not meet scope requirement user:profile", None,
     "scope_insufficient", "cc-usage-stats; CLIProxyAPI 8aa6868d0"),
    (403, "permission_error",
     ("OAuth token does not meet scope requirement any_of(user:inference, user:ccr_inference, user:voice, "
     "org:service_key_inference)"), None, "scope_insufficient", "oh-my-pi #38"),
    (400, "invalid_request_error", "role 'system' is not supported on this model", None, "invalid_request",
     "CLIProxyAPI"),
    (429, "rate_limit_error", "This request would exceed your account's rate limit. Please try again later.", None,
     "rate_limited", "claude-code #14415"),
    (400, "invalid_request_error", "Invalid request format", None, "invalid_request", "hermes #96561"),
    (400, "invalid_request_error", "x", "credits_required", "extra_usage_exhausted", "2.1.206 port plan"),
    (404, "not_found_error", "Not Found", None, "not_found", "hermes #45250"),
    (404, "http_404", "", None, "not_found", "hermes #48534"),
    (400, "invalid_request", "Bad Request", None, "invalid_request", "hermes #48534"),
    (529, "overloaded_error", "Overloaded", None, "overloaded", "docs errors"),
]


@pytest.mark.parametrize("status,etype,message,code,expected,source", REPORTED,
                         ids=[f"{r[4]}:{r[2][:30]}" for r in REPORTED])
def test_every_reported_message_is_classified(status, etype, message, code, expected, source):
    got = classify(err(status, etype, message, code))
    assert got.outcome == expected, f"{message!r} ({source}) classified as {got}"
    assert got.rule != UNCLASSIFIED


def test_billing_refusals_record_the_extra_usage_lane():
    got = classify(err(400, "invalid_request_error",
                       "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."))
    assert got.lane == "extra_usage"


def test_a_bare_429_error_with_unified_headers_is_a_generic_refusal():
    assert classify(err(429, "rate_limit_error", "Error", headers=REJECTED_HEADERS)).outcome == "generic_error"


def test_token_endpoint_oauth_error_shape():
    obs = Observation(status=400, error_type="http_400",
                      body={"error": "invalid_grant", "error_description": "Invalid 'redirect_uri' in request."})
    assert classify(obs).outcome == "invalid_request"


@pytest.mark.parametrize("headers,outcome,lane", [
    (PLAN_HEADERS, "served_plan", "plan"),
    (EXTRA_HEADERS, "served_extra", "extra_usage"),
    ({"anthropic-ratelimit-requests-limit": "4000"}, "served_api", "api"),
    ({}, "served_no_lane", "none"),
    (REJECTED_HEADERS, "served_unknown", "rejected"),
])
def test_served_responses_take_their_lane_from_the_unified_headers(headers, outcome, lane):
    obs = Observation(status=200, headers=headers, body={"type": "message"}, unified=parse_unified(headers))
    got = classify(obs)
    assert (got.outcome, got.lane) == (outcome, lane)


def test_rate_limit_with_unified_headers_is_rate_limited_without_is_burst():
    msg = "Number of requests has exceeded your rate limit."
    assert classify(err(429, "rate_limit_error", msg, headers=REJECTED_HEADERS)).outcome == "rate_limited"
    assert classify(err(429, "rate_limit_error", msg)).outcome == "burst_limited"


def test_transport_error_and_broken_bodies():
    assert classify(Observation(status=None, transport_error="ConnectError: refused")).outcome == "transport_error"
    assert classify(Observation(status=200, error_type="stream_truncated")).outcome == "stream_truncated"
    assert classify(Observation(status=200, error_type="malformed_response")).outcome == "malformed_response"


def test_a_new_message_is_unclassified_and_kept_verbatim():
    message = "Your plan now bills third-party traffic to the moon."
    obs = err(400, "invalid_request_error", message)
    got = classify(obs)
    assert got.outcome == UNCLASSIFIED and got.rule == UNCLASSIFIED
    assert obs.error_message == message


def test_taxonomy_is_ordered_coloured_and_sourced():
    tax = load_taxonomy()
    assert tax.ids[0] == "served_plan" and tax.ids[-1] == UNCLASSIFIED
    assert len(set(tax.ids)) == len(tax.ids)
    for c in tax.classes:
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", c.colour) and c.label and c.short
    assert len({c.colour for c in tax.classes}) == len(tax.classes)
    assert all(r.source for r in tax.rules)
    # every class that is not a catch-all can be produced by some rule
    assert {r.outcome for r in tax.rules} == set(tax.ids) - {UNCLASSIFIED}


def test_a_rule_naming_an_unknown_outcome_is_refused():
    doc = {"class": [{"id": UNCLASSIFIED, "label": "?", "short": "?", "colour": "#000000"}],
           "rule": [{"id": "r", "outcome": "nope", "source": "x"}]}
    with pytest.raises(TaxonomyError, match="unknown outcome"):
        parse_taxonomy(doc)


header_names = st.sampled_from([f"{PREFIX}status", f"{PREFIX}representative-claim", f"{PREFIX}overage-status",
                                f"{PREFIX}5h-utilization", f"{PREFIX}overage-in-use", "retry-after", "x-other"])
observations = st.builds(
    lambda status, etype, msg, code, headers, transport: Observation(
        status=status, error_type=etype, error_message=msg, error_code=code, headers=headers,
        unified=parse_unified(headers), transport_error=transport),
    status=st.one_of(st.none(), st.integers(0, 999)),
    etype=st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["api_error", "overloaded_error"])),
    msg=st.one_of(st.none(), st.text(max_size=200)),
    code=st.one_of(st.none(), st.text(max_size=20)),
    headers=st.dictionaries(header_names, st.text(max_size=12), max_size=5),
    transport=st.one_of(st.none(), st.text(max_size=30)),
)


@settings(max_examples=examples(300), deadline=None)
@given(observations)
def test_classify_never_raises_and_names_a_known_class(obs):
    tax = load_taxonomy()
    got = classify(obs)
    assert got.outcome in tax.ids
    assert isinstance(got.lane, str) and got.lane


# Every simulator outcome id and the class the kit must read it as (docs/contracts.md §1.1).
SIM_TO_CLASS = {
    "plan": "served_plan", "api_key": "served_api", "oauth_unsupported": "oauth_not_supported",
    "invalid_x_api_key": "invalid_api_key", "invalid_bearer": "invalid_bearer", "token_expired": "token_expired",
    "scope_insufficient": "scope_insufficient", "inference_scope_missing": "scope_insufficient",
    "not_found": "not_found", "generic_error": "generic_error", "claude_code_only": "claude_code_only",
    "long_context_unavailable": "long_context", "long_context_auth_incompatible": "long_context",
    "version_too_old": "version_too_old", "monthly_spend_limit": "monthly_spend_limit",
    "rate_limited": "rate_limited", "burst_limited": "burst_limited", "overloaded": "overloaded",
    "server_error": "server_error", "token_not_found": "not_found", "token_rate_limited": "burst_limited",
    "token_forbidden": "generic_error", "token_bad_request": "invalid_request",
    "token_invalid_format": "invalid_request",
}


def test_every_simulator_reply_is_read_as_the_class_it_models():
    sim_outcomes = pytest.importorskip("lanelab.sim.outcomes")
    unified = {**REJECTED_HEADERS}
    for sim_id, expected in SIM_TO_CLASS.items():
        reply = sim_outcomes.render(sim_id)
        headers = (PLAN_HEADERS if reply.status < 300 else unified) if reply.unified else {}
        if reply.lane == "api":
            headers = {"anthropic-ratelimit-requests-limit": "4000"}
        obs = Observation(status=reply.status, error_type=reply.error_type or None,
                          error_message=reply.message or None, error_code=reply.error_code or None,
                          headers=headers, unified=parse_unified(headers))
        assert classify(obs).outcome == expected, (sim_id, reply)
    # the third-party reply under the default account (extra usage on, no credit) is the #32243 400
    reply = sim_outcomes.render("third_party")
    obs = err(reply.status, reply.error_type, reply.message)
    assert classify(obs).outcome == "extra_usage_exhausted"


# ------------------------------------------------------------------------------------ September–November 2026
GATE = ("Claude Code 2.1.250 does not support this model; version 2.1.251 or newer is required. Run 'claude update', "
        "or update the Claude desktop app, then try again.")


@pytest.mark.parametrize("code,rule", [("claude_code_version_too_old", "version_too_old_code"),
                                       (None, "version_too_old_message")])
def test_version_gate_is_classified_and_its_versions_captured(code, rule):
    """references/autumn-2026.md §2.1: 400 details.error_code claude_code_version_too_old, the message names both versions."""
    got = classify(err(400, "invalid_request_error", GATE, code))
    assert (got.outcome, got.rule) == ("version_too_old", rule)
    assert got.details == {"client_version": "2.1.250", "required_version": "2.1.251"}


def test_version_gate_with_new_wording_is_still_the_gate_by_its_code():
    got = classify(err(400, "invalid_request_error", "Please update Claude Code to use Opus 5.5.",
                       "claude_code_version_too_old"))
    assert got.outcome == "version_too_old" and got.details == {}


def test_version_gate_from_a_served_body_through_the_wire():
    body = {"type": "error", "request_id": "req_1", "error": {
        "type": "invalid_request_error", "message": GATE, "details": {"error_code": "claude_code_version_too_old"}}}
    obs = observe_response(400, {"content-type": "application/json"}, json.dumps(body).encode(), 1.0,
                           endpoint="/v1/messages")
    got = classify(obs)
    assert obs.error_code == "claude_code_version_too_old" and got.outcome == "version_too_old"
    assert got.details["required_version"] == "2.1.251" and obs.unknown == []


@pytest.mark.parametrize("message,outcome,rule", [
    ("Third-party apps now draw from extra usage, not plan limits. Ask your workspace admin to add more and keep going.",
     "third_party_extra_usage", "third_party_extra_usage_team"),
    (("Third-party apps now draw from extra usage, not plan limits. Add more at claude.ai/admin-settings/usage and keep "
      "going."), "third_party_extra_usage", "third_party_extra_usage_admin"),
    (("Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage and "
      "keep going."), "third_party_extra_usage", "third_party_extra_usage"),
    ("You're out of extra usage. Ask your workspace admin to add more so you can keep going.",
     "extra_usage_exhausted", "out_of_extra_usage_team"),
    ("You're out of extra usage. Add more at claude.ai/admin-settings/usage and keep going.",
     "extra_usage_exhausted", "out_of_extra_usage_admin"),
    ("You're out of extra usage. Add more at claude.ai/settings/usage and keep going.",
     "extra_usage_exhausted", "out_of_extra_usage"),
])
def test_team_and_admin_variants_are_told_apart_by_rule(message, outcome, rule):
    got = classify(err(400, "invalid_request_error", message))
    assert (got.outcome, got.rule, got.lane) == (outcome, rule, "extra_usage")


def test_monthly_spend_limit_and_long_context_429_are_extra_usage_refusals():
    spend = classify(err(429, "rate_limit_error",
                         "This request would exceed your account's monthly spend limit. Please try again later.",
                         headers=REJECTED_HEADERS))
    assert (spend.outcome, spend.lane) == ("monthly_spend_limit", "extra_usage")
    long = classify(err(429, "rate_limit_error", "Extra usage is required for long context requests.",
                        headers=REJECTED_HEADERS))
    assert (long.outcome, long.lane, long.rule) == ("long_context", "extra_usage", "long_context_extra_usage")
    beta = classify(err(400, "invalid_request_error", "The long context beta is not yet available for this subscription."))
    assert (beta.outcome, beta.lane) == ("long_context", "none")


def test_usage_endpoint_429_is_its_own_class_and_only_there():
    body = json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}).encode()
    usage = observe_response(429, {"content-type": "application/json", "retry-after": "1200"}, body, 1.0,
                             endpoint="/api/oauth/usage")
    got = classify(usage)
    assert (got.outcome, got.lane) == ("usage_rate_limited", "none")
    assert load_taxonomy().is_transient("usage_rate_limited")
    messages = observe_response(429, {"content-type": "application/json"}, body, 1.0, endpoint="/v1/messages")
    assert classify(messages).outcome == "burst_limited"


EDGE_PAGES = [
    ("text/html", (b"<!DOCTYPE html><html><head><title>Access denied | platform.claude.com used Cloudflare to restrict "
                   b"access</title></head><body><h1>Error 1010</h1><p>Access denied</p></body></html>")),
    ("text/plain", b"error code: 1010"),
    ("application/json", json.dumps({"title": "Error 1010: Access denied", "status": 403, "error_code": 1010,
                                     "error_name": "browser_signature_banned"}).encode()),
]


@pytest.mark.parametrize("ctype,content", EDGE_PAGES, ids=["html", "text", "json"])
def test_token_endpoint_cloudflare_1010_is_classified_whatever_the_page_shape(ctype, content):
    """pleaseai/shunt #644: a token POST without a User-Agent gets 403, Error 1010, browser_signature_banned."""
    obs = observe_response(403, {"content-type": ctype}, content, 1.0, endpoint="/v1/oauth/token")
    got = classify(obs)
    assert (got.outcome, got.rule) == ("edge_signature_banned", "edge_browser_signature_banned")
    assert not load_taxonomy().is_transient(got.outcome)
    assert obs.unknown == []  # the page is known, and its kit-made error text is not a server message


def test_other_403_pages_are_not_taken_for_1010():
    assert classify(err(403, "forbidden", "forbidden")).outcome == "generic_error"
    html = observe_response(403, {"content-type": "text/html"}, b"<html>Sorry, error 1020</html>", 1.0)
    assert classify(html).outcome == "malformed_response"


def test_included_overage_and_unknown_claims_on_served_responses():
    included = {f"{PREFIX}status": "allowed", f"{PREFIX}representative-claim": "seven_day_overage_included",
                f"{PREFIX}7d_oi-status": "allowed", f"{PREFIX}7d_oi-utilization": "0.2"}
    obs = Observation(status=200, headers=included, body={"type": "message"}, unified=parse_unified(included))
    assert (classify(obs).outcome, classify(obs).lane) == ("served_included_overage", "included_overage")
    new = {f"{PREFIX}status": "allowed", f"{PREFIX}representative-claim": "three_day_promo"}
    obs = Observation(status=200, headers=new, body={"type": "message"}, unified=parse_unified(new))
    assert (classify(obs).outcome, classify(obs).lane) == ("served_unknown", "unknown")


def test_curated_sample_runs_classify_as_recorded():
    paths = sorted((data_dir() / "runs" / "samples").glob("*.jsonl"))
    cells = [c for p in paths for c in load_run(p).cells.values()]
    assert len(paths) == 2 and cells
    for cell in cells:
        got = classify(Observation.from_dict(cell["observation"]))
        assert (got.outcome, got.lane, got.rule) == (cell["outcome"], cell["lane"], cell["rule"]), cell["cell_id"]


def test_known_lists_need_a_source_and_patterns_must_compile():
    base = {"class": [{"id": UNCLASSIFIED, "label": "?", "short": "?", "colour": "#000000"}]}
    with pytest.raises(TaxonomyError, match="known"):
        parse_taxonomy({**base, "known": [{"what": "error_type", "values": ["x"]}]})
    with pytest.raises(TaxonomyError, match="invalid pattern"):
        parse_taxonomy({**base, "rule": [{"id": "r", "outcome": UNCLASSIFIED, "source": "s", "message": "(["}]})
    tax = parse_taxonomy({**base, "known": [{"what": "error_type", "values": ["teapot_error"], "source": "s"},
                                            {"what": "message", "values": ["^I'm a teapot"], "source": "s"}]})
    assert tax.knows_error_type("teapot_error") and not tax.knows_error_type("kettle_error")
    assert tax.knows_message("I\u2019m a teapot, short and stout") and not tax.knows_message("A kettle")


@pytest.mark.parametrize("error,description,status,outcome", [
    ("invalid_request_error", "Invalid request format", 400, "invalid_request"),
    ("invalid_request", "Bad Request", 400, "invalid_request"),
    ("forbidden", "Forbidden", 403, "generic_error"),
    ("invalid_grant", "Invalid 'redirect_uri' in request.", 400, "invalid_request"),
])
def test_token_endpoint_error_bodies_through_the_wire_are_read_by_their_description(error, description, status,
                                                                                       outcome):
    body = json.dumps({"error": error, "error_description": description}).encode()
    obs = observe_response(status, {"content-type": "application/json"}, body, 1.0, endpoint="/v1/oauth/token")
    assert classify(obs).outcome == outcome


@settings(max_examples=examples(80))
@given(st.lists(st.tuples(st.sampled_from(["Set-Cookie", "set-cookie", "X-A", "x-a", "Date", "VIA",
                                           "anthropic-ratelimit-unified-status"]),
                          st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=12)),
                max_size=8))
def test_response_headers_are_read_as_httpx_items_reads_them(pairs):
    """The observation reads httpx's raw header pairs directly (once per response); what it gets is what
    ``Headers.items()`` gives: lower-case names, repeated headers joined, the same decoding."""
    import httpx
    from lanelab.wire.observe import _lower_headers

    headers = httpx.Headers([(name, value.encode("latin-1")) for name, value in pairs])
    assert _lower_headers(headers) == {str(k).lower(): str(v) for k, v in headers.items()}
