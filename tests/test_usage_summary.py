"""The usage summary reads the current /api/oauth/usage shape (references/autumn-2026.md §2.4): dollar amounts per window,
limits[], the extra_usage fields and the new window keys; units stay apart, and unknown keys are shown as such.

tests/fixtures/oauth_usage_2026-11.json is a made-up body in the shape of the 2026-08-27 capture the research notes
describe (fake values throughout)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from lanelab import redact
from lanelab.auth.introspect import summarize
from lanelab.config import data_dir
from lanelab.datafiles import read_toml
from lanelab.wire.classify import classify
from lanelab.wire.observe import observe_response
from lanelab.wire.usage import (
    PERCENT,
    UsageShapeError,
    load_usage_shape,
    parse_usage_shape,
    read_usage,
    usage_path,
)

FIXTURE = Path(__file__).parent / "fixtures" / "oauth_usage_2026-11.json"
TOKEN = "sk-ant-oat01-" + "canaryUSAGE" * 6


def body() -> dict:
    return json.loads(FIXTURE.read_text())


def usage_obs(b: dict, status: int = 200, endpoint: str | None = None):
    return observe_response(status, {"content-type": "application/json"}, json.dumps(b).encode(), 1.0,
                            endpoint=endpoint or usage_path())


def test_current_shape_is_read_completely_and_nothing_in_it_is_new():
    obs = usage_obs(body())
    assert obs.unknown == []
    s = summarize(None, obs)
    assert not s.errors and s.unknown == []
    windows = {w.name: w for w in s.windows}
    assert windows["five_hour"].utilization == 12.0 and windows["seven_day"].utilization == 34.0
    assert windows["seven_day_oauth_apps"].utilization == 3.0 and windows["seven_day_sonnet_max"].utilization == 8.0
    assert "seven_day_cowork" in windows and windows["seven_day_cowork"].utilization is None
    cove = windows["cinder_cove"]
    assert cove.codename and (cove.limit_dollars, cove.used_dollars, cove.remaining_dollars) == (50.0, 20.0, 30.0)
    assert cove.currency == "USD" and not windows["five_hour"].has_money
    assert [(lim.kind, lim.percent, lim.scope, lim.is_active) for lim in s.limits] == [
        ("session", 12.0, None, False), ("weekly_all", 34.0, None, False), ("weekly_scoped", 61.0, "Fable", True)]
    e = s.extra_usage
    assert (e.is_enabled, e.monthly_limit, e.used_credits, e.utilization, e.currency) == (True, 5000.0, 1250.0, 25.0,
                                                                                         "USD")
    assert (e.disabled_reason, e.user_disabled, e.spend_limit_reached, e.credits_ever_enabled) == (None, False, False,
                                                                                                   True)
    assert (s.extra_usage_enabled, s.extra_usage_monthly_limit, s.extra_usage_used, s.extra_usage_utilization) == (
        True, 5000.0, 1250.0, 25.0)


def test_units_are_never_mixed():
    s = summarize(None, usage_obs(body()))
    rows = dict(s.rows())
    assert rows["window five_hour"].startswith(f"12 {PERCENT}") and "USD" not in rows["window five_hour"]
    assert "20 used of 50, 30 left (USD)" in rows["window cinder_cove"]
    assert rows["extra usage used / limit"] == "1250 / 5000 USD, as reported"
    assert rows["extra usage utilization"] == "25 % of the monthly limit"
    assert rows["limit weekly_scoped (Fable)"].startswith(f"61 {PERCENT}") and "binding" in rows[
        "limit weekly_scoped (Fable)"]
    assert "window tangelo" not in rows  # an empty code-named slot is not shown
    frame = s.to_frame()
    assert list(frame.columns) == ["section", "name", "field", "value", "unit", "note"]
    percent = frame[frame["field"].isin(["utilization", "percent"]) & (frame["section"] != "extra_usage")]
    assert set(percent["unit"]) == {PERCENT}
    money = frame[frame["field"].isin(["limit_dollars", "used_dollars", "remaining_dollars", "monthly_limit",
                                       "used_credits"])]
    assert set(money["unit"]) == {"USD"} and money["note"].str.len().min() > 0


def test_unknown_keys_and_fields_are_flagged_verbatim_and_shown_as_such():
    b = body()
    b["seven_day_fable_max"] = {"utilization": 5.0, "resets_at": "2026-11-24T09:00:00+00:00"}
    b["quantum_quota"] = None
    b["extra_usage"]["decimal_places"] = 2
    b["five_hour"]["locked_reason"] = "promo"
    b["limits"].append({"kind": "monthly_cap", "percent": 3, "is_active": False})
    b["limits"][2]["scope"]["model"]["family"] = "fable"
    obs = usage_obs(b)
    flagged = [(u.kind, u.name, u.value) for u in obs.unknown]
    assert flagged == [
        ("usage_field", "five_hour.locked_reason", "promo"),
        ("usage_field", "extra_usage.decimal_places", "2"),
        ("usage_field", "limits[2].scope.model.family", "fable"),
        ("usage_field", "limits[3].kind", "monthly_cap"),
        ("usage_field", "seven_day_fable_max", '{"utilization": 5.0, "resets_at": "2026-11-24T09:00:00+00:00"}'),
        ("usage_field", "quantum_quota", "null"),
    ]
    s = summarize(None, obs)
    assert [(u.kind, u.name, u.value) for u in s.unknown] == flagged
    new = next(w for w in s.windows if w.name == "seven_day_fable_max")
    assert not new.known and new.utilization == 5.0
    rows = s.rows()
    assert ("window seven_day_fable_max (new to this kit)", f"5 {PERCENT}, resets 2026-11-24T09:00:00+00:00") in rows
    assert ("new to this kit", "extra_usage.decimal_places = 2") in rows
    assert s.limits[-1].kind == "monthly_cap" and not s.limits[-1].known
    assert "new to this kit" in set(s.to_frame()["section"])


def test_usage_fields_are_only_checked_on_the_usage_endpoint():
    b = body()
    b["quantum_quota"] = 1
    assert [u.name for u in usage_obs(b).unknown] == ["quantum_quota"]
    assert usage_obs(b, endpoint="/api/oauth/profile").unknown == []
    assert observe_response(200, {"content-type": "application/json"}, json.dumps(b).encode(), 1.0).unknown == []


def test_older_shape_and_disabled_extra_usage_still_read():
    old = {"five_hour": {"utilization": 7, "resets_at": "2026-05-25T10:00:00Z"}, "seven_day": None,
           "seven_day_oauth_apps": None, "seven_day_opus": None, "seven_day_sonnet": None,
           "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None,
                           "disabled_reason": "org_level_disabled"}}
    s = summarize(None, usage_obs(old))
    assert s.unknown == [] and s.limits == [] and s.extra_usage_enabled is False
    rows = dict(s.rows())
    assert rows["extra usage used / limit"] == "— / — (currency not reported), as reported"
    assert rows["extra usage disabled reason"] == "org_level_disabled"


def test_a_rate_limited_usage_read_is_an_error_line_and_its_own_outcome():
    denied = usage_obs({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}, 429)
    s = summarize(None, denied)
    assert len(s.errors) == 1 and "HTTP 429" in s.errors[0] and s.windows == []
    assert classify(denied).outcome == "usage_rate_limited"


def test_secrets_in_unknown_values_never_reach_the_summary_output():
    redact.register_secret(TOKEN)
    b = body()
    b["echo"] = f"Bearer {TOKEN}"
    s = summarize(None, usage_obs(b))
    assert [u.name for u in s.unknown] == ["echo"]
    assert TOKEN not in repr(s) + s._repr_html_() + json.dumps(s.to_dict())
    redact.forget_secrets()


def test_read_usage_never_raises_on_odd_bodies():
    for odd in (None, [], "text", {"limits": "x"}, {"limits": [1, None]}, {"extra_usage": 5},
                {"five_hour": [1]}, {"limits": [{"kind": None, "scope": {"model": 3}}]}):
        reading = read_usage(odd)
        assert isinstance(reading.unknown, list)
    assert [u.name for u in read_usage({"limits": [1]}).unknown] == ["limits[0]"]


def test_every_usage_entry_names_its_source():
    shape = load_usage_shape()
    assert {"five_hour", "seven_day_oauth_apps", "seven_day_cowork", "seven_day_sonnet_max", "extra_usage",
            "limits"} <= set(shape.keys)
    assert shape.obj("limit").kinds == {"session", "weekly_all", "weekly_scoped"}
    doc = read_toml(data_dir() / "usage_fields.toml")
    bad = copy.deepcopy(doc)
    bad["key"].append({"name": "x", "kind": "window"})
    with pytest.raises(UsageShapeError, match="source"):
        parse_usage_shape(bad)
    bad = copy.deepcopy(doc)
    bad["key"].append({"name": "x", "kind": "galaxy", "source": "s"})
    with pytest.raises(UsageShapeError, match="kind 'galaxy'"):
        parse_usage_shape(bad)
