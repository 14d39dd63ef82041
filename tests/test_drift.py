"""Drift made visible: whatever a response carries that the data files do not know is flagged on the observation,
verbatim, and collected across runs with the cells where it appeared (issue 14 A)."""

from __future__ import annotations

import json
import shutil

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.config import data_dir
from lanelab.runs import RunWriter, load_run, load_runs, make_header
from lanelab.wire import drift
from lanelab.wire.observe import observe_response
from lanelab.wire.spec import Observation, RequestSpec
from lanelab.wire.unified import PREFIX, parse_unified

PLAN = {f"{PREFIX}status": "allowed", f"{PREFIX}representative-claim": "five_hour", f"{PREFIX}5h-status": "allowed",
        f"{PREFIX}5h-utilization": "0.03", f"{PREFIX}5h-reset": "1795580152", f"{PREFIX}7d-status": "allowed",
        f"{PREFIX}7d-utilization": "0.0", f"{PREFIX}7d-reset": "1796166952", f"{PREFIX}overage-status": "rejected",
        f"{PREFIX}overage-disabled-reason": "out_of_credits", f"{PREFIX}overage-utilization": "1.0",
        f"{PREFIX}overage-reset": "1796083200", f"{PREFIX}fallback-percentage": "0.5"}


def error_obs(status: int, error: dict, headers: dict | None = None, endpoint: str = "/v1/messages") -> Observation:
    body = {"type": "error", "error": error, "request_id": "req_1"}
    return observe_response(status, {"content-type": "application/json", **(headers or {})},
                            json.dumps(body).encode(), 1.0, endpoint=endpoint)


def flags(obs: Observation) -> list[tuple[str, str, str]]:
    return [(u.kind, u.name, u.value) for u in obs.unknown]


def test_a_response_the_kit_knows_carries_no_flags():
    served = observe_response(200, {"content-type": "application/json", **PLAN}, b'{"type": "message"}', 1.0,
                              endpoint="/v1/messages")
    assert served.unified.lane == "plan" and served.unknown == []
    refused = error_obs(400, {"type": "invalid_request_error", "message": "You're out of extra usage. Add more at "
                              "claude.ai/settings/usage and keep going."}, PLAN)
    assert refused.unknown == []


def test_new_headers_claims_and_values_are_flagged_verbatim():
    headers = {**PLAN, f"{PREFIX}representative-claim": "seven_day_promo", f"{PREFIX}30d-utilization": "0.2",
               f"{PREFIX}overage-disabled-reason": "org_moon_disabled"}
    obs = observe_response(200, {"content-type": "application/json", **headers}, b"{}", 1.0)
    assert obs.unified.lane == "unknown"
    assert sorted(flags(obs)) == sorted([
        ("claim", f"{PREFIX}representative-claim", "seven_day_promo"),
        ("unified_header", f"{PREFIX}30d-utilization", "0.2"),
        ("unified_value", f"{PREFIX}overage-disabled-reason", "org_moon_disabled"),
    ])


def test_new_error_type_code_and_message_are_flagged():
    obs = error_obs(400, {"type": "quota_error", "message": "Your weekly Fable allowance is used up.",
                          "details": {"error_code": "fable_weekly_exhausted"}})
    assert flags(obs) == [("error_type", "error.type", "quota_error"),
                          ("error_code", "details.error_code", "fable_weekly_exhausted"),
                          ("message", "error.message", "Your weekly Fable allowance is used up.")]


def test_a_known_message_under_a_new_code_flags_only_the_code_and_new_wording_of_a_known_code_only_the_message():
    obs = error_obs(400, {"type": "invalid_request_error", "message": "You're out of extra usage. Add more at "
                          "claude.ai/settings/usage and keep going.", "details": {"error_code": "credits_gone"}})
    assert flags(obs) == [("error_code", "details.error_code", "credits_gone")]
    obs = error_obs(400, {"type": "invalid_request_error", "message": "Update Claude Code to keep using this model.",
                          "details": {"error_code": "claude_code_version_too_old"}})
    assert flags(obs) == [("message", "error.message", "Update Claude Code to keep using this model.")]


def test_messages_of_rules_that_decide_by_status_are_not_drift():
    assert error_obs(529, {"type": "overloaded_error", "message": "Overloaded, try the other galaxy"}).unknown == []
    assert error_obs(500, {"type": "api_error", "message": "Internal server error"}).unknown == []
    page = observe_response(502, {"content-type": "text/html"}, b"<html>bad gateway</html>", 1.0)
    assert page.error_type == "malformed_response" and page.unknown == []


def test_oauth_token_endpoint_errors_are_checked_too():
    obs = observe_response(400, {"content-type": "application/json"},
                           json.dumps({"error": "slow_down", "error_description": "Too many token requests"}).encode(),
                           1.0, endpoint="/v1/oauth/token")
    assert flags(obs) == [("error_type", "error", "slow_down"),
                          ("message", "error_description", "Too many token requests")]
    known = observe_response(400, {"content-type": "application/json"}, json.dumps(
        {"error": "invalid_grant", "error_description": "Invalid 'redirect_uri' in request."}).encode(), 1.0)
    assert known.unknown == []


def test_known_comes_from_the_data_files(tmp_path, monkeypatch):
    obs = error_obs(400, {"type": "quota_error", "message": "Your weekly Fable allowance is used up."})
    assert len(obs.unknown) == 2
    data = tmp_path / "data"
    shutil.copytree(data_dir(), data, ignore=shutil.ignore_patterns("runs"))
    with open(data / "outcomes.toml", "a") as fh:
        fh.write('\n[[known]]\nwhat = "error_type"\nvalues = ["quota_error"]\nsource = "test"\n'
                 '\n[[known]]\nwhat = "message"\nvalues = ["^Your weekly \\\\w+ allowance"]\nsource = "test"\n')
    monkeypatch.setenv("LANELAB_DATA", str(data))
    assert drift.scan(obs) == []


# ------------------------------------------------------------------------------------------------ across runs


def write_run(path, run_id, cells, usage=None):
    writer = RunWriter(path, make_header(run_id, mode="sim", host="http://127.0.0.1:1", policy="2026-11",
                                         profile="p", design="ofat", factors=["f"], credentials=["c"]))
    for cell_id, obs in cells:
        writer.cell(cell_id=cell_id, profile="p", levels={"f": cell_id}, credential="c",
                    spec=RequestSpec(path="/v1/messages"), observation=obs, outcome="x", lane="unknown")
    if usage is not None:
        writer.append({"record": "usage", "when": "before", "usage": usage})
    return path


def test_new_to_kit_collects_items_with_their_cells_and_runs(tmp_path):
    promo = {**PLAN, f"{PREFIX}representative-claim": "seven_day_promo"}
    served = observe_response(200, {"content-type": "application/json", **promo}, b"{}", 1.0, endpoint="/v1/messages")
    moon = error_obs(400, {"type": "invalid_request_error", "message": "Billing moved to the moon."})
    a = write_run(tmp_path / "a.jsonl", "run-a", [("c1", served), ("c2", moon), ("c3", served)])
    # a record written before the flags existed: no "unknown" key; it is checked now, against the data files
    old = served.to_dict()
    del old["unknown"], old["endpoint"]
    b = write_run(tmp_path / "b.jsonl", "run-b", [("c9", old)], usage={"five_hour": None, "quantum_quota": 3})
    df = drift.new_to_kit(load_runs([a, b]))
    assert list(df.columns) == list(drift.COLUMNS)
    rows = {(r.kind, r.value): r for r in df.itertuples()}
    claim = rows[("claim", "seven_day_promo")]
    assert (claim.count, claim.cells, claim.runs, claim.recorded) == (3, ["c1", "c3", "c9"], ["run-a", "run-b"], False)
    message = rows[("message", "Billing moved to the moon.")]
    assert (message.name, message.count, message.cells, message.recorded) == ("error.message", 1, ["c2"], True)
    usage = rows[("usage_field", "3")]
    assert (usage.name, usage.cells, usage.runs) == ("quantum_quota", ["usage:before"], ["run-b"])
    assert list(df["kind"]) == ["claim", "message", "usage_field"]  # ordered by kind
    # the same from runs loaded one by one
    again = drift.new_to_kit([load_run(a), load_run(b)])
    assert again[["kind", "name", "value", "count"]].equals(df[["kind", "name", "value", "count"]])


def test_the_curated_samples_hold_nothing_new():
    paths = sorted((data_dir() / "runs" / "samples").glob("*.jsonl"))
    df = drift.new_to_kit(load_runs(paths))
    assert len(paths) == 2 and df.empty and list(df.columns) == list(drift.COLUMNS)


header_names = st.sampled_from([f"{PREFIX}status", f"{PREFIX}representative-claim", f"{PREFIX}5h-status",
                                f"{PREFIX}7d_oi-utilization", f"{PREFIX}grace-5h-utilization", f"{PREFIX}x",
                                f"{PREFIX}", f"{PREFIX}-", f"{PREFIX}overage-in-use"])


@settings(max_examples=examples(200), deadline=None)
@given(status=st.one_of(st.none(), st.integers(100, 599)), headers=st.dictionaries(header_names, st.text(max_size=20)),
       etype=st.one_of(st.none(), st.text(max_size=20)), msg=st.one_of(st.none(), st.text(max_size=80)),
       code=st.one_of(st.none(), st.text(max_size=10)),
       body=st.one_of(st.none(), st.text(max_size=20), st.dictionaries(st.text(max_size=5), st.none() | st.integers())),
       endpoint=st.sampled_from([None, "/v1/messages", "/api/oauth/usage"]))
def test_scan_never_raises_and_flags_each_item_once(status, headers, etype, msg, code, body, endpoint):
    obs = Observation(status=status, headers=headers, unified=parse_unified(headers), error_type=etype,
                      error_message=msg, error_code=code, body=body, endpoint=endpoint)
    found = drift.scan(obs)
    assert len(found) == len(set(found)) and all(u.kind in drift.KINDS for u in found)


@pytest.mark.parametrize("value", ["x" * 3000])
def test_long_values_are_bounded(value):
    obs = error_obs(400, {"type": "invalid_request_error", "message": value})
    assert flags(obs)[0][0] == "message" and len(obs.unknown[0].value) < 600
