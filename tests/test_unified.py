"""Unified rate-limit headers parse generically into windows and typed fields; the lane comes from data/lanes.toml
(references/protocol.md §3.1, references/autumn-2026.md §2.3), and what the table does not know is reported verbatim."""

import shutil

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.datafiles import read_toml
from lanelab.wire.unified import (
    LANE_EXTRA,
    LANE_INCLUDED,
    LANE_PLAN,
    LANE_REJECTED,
    LANE_UNKNOWN,
    LaneFileError,
    UnifiedLimits,
    load_lane_table,
    parse_lane_table,
    parse_unified,
    unknown_headers,
)

P = "anthropic-ratelimit-unified-"


def test_parse_typed_fields_case_insensitively():
    u = parse_unified({f"{P}Status": "allowed", f"{P}5h-utilization": "0.03", f"{P}5h-reset": "1780000000",
                       f"{P}7d-utilization": "0.0", f"{P}representative-claim": "five_hour",
                       f"{P}overage-status": "rejected", f"{P}overage-disabled-reason": "out_of_credits",
                       f"{P}fallback-percentage": "0.5", "request-id": "req_1"})
    assert u.status == "allowed" and u.five_hour.utilization == 0.03 and u.five_hour.reset == 1780000000
    assert u.seven_day.utilization == 0.0 and u.overage_disabled_reason == "out_of_credits"
    assert u.fallback_percentage == 0.5 and "request-id" not in u.raw
    assert u.lane == LANE_PLAN


@pytest.mark.parametrize("headers,lane", [
    ({}, LANE_UNKNOWN),
    ({f"{P}status": "allowed", f"{P}representative-claim": "overage", f"{P}overage-status": "allowed"}, LANE_EXTRA),
    ({f"{P}status": "allowed", f"{P}overage-in-use": "true"}, LANE_EXTRA),
    ({f"{P}status": "rejected", f"{P}overage-status": "allowed_warning"}, LANE_EXTRA),
    ({f"{P}status": "rejected", f"{P}overage-status": "rejected"}, LANE_REJECTED),
    ({f"{P}status": "allowed_warning", f"{P}representative-claim": "seven_day"}, LANE_PLAN),
    ({f"{P}status": "allowed", f"{P}representative-claim": "seven_day_sonnet"}, LANE_PLAN),
    # the included-overage claims are their own lane: not plan, not extra usage
    ({f"{P}status": "allowed", f"{P}representative-claim": "seven_day_overage_included"}, LANE_INCLUDED),
    ({f"{P}status": "allowed", f"{P}representative-claim": "five_hour_overage_included"}, LANE_INCLUDED),
    # an allowed status alone does not say which pool paid: an unknown or missing claim is never "plan"
    ({f"{P}status": "allowed", f"{P}representative-claim": "seven_day_moonshot"}, LANE_UNKNOWN),
    ({f"{P}status": "allowed", f"{P}5h-utilization": "0.2"}, LANE_UNKNOWN),
    ({f"{P}status": "throttled", f"{P}representative-claim": "five_hour"}, LANE_UNKNOWN),
])
def test_lane_reading(headers, lane):
    assert parse_unified(headers).lane == lane


def test_ultra_response_without_five_hour_headers_still_gets_its_lane():
    """Ultra (2026-11, askalf/dario v6.23.13): no 5h-* headers; slow-* and grace-* appear."""
    u = parse_unified({f"{P}status": "allowed", f"{P}representative-claim": "seven_day", f"{P}reset": "1790000000",
                       f"{P}7d-status": "allowed", f"{P}7d-utilization": "0.41", f"{P}7d-reset": "1790000000",
                       f"{P}slow-status": "allowed", f"{P}grace-status": "allowed",
                       f"{P}grace-5h-utilization": "0.0", f"{P}grace-7d-utilization": "0.12"})
    assert u.lane == LANE_PLAN
    assert u.window("5h") is None and not u.five_hour.present and u.five_hour.utilization is None
    assert u.seven_day.utilization == 0.41 and u.window("7d").reset == 1790000000
    assert u.window("slow").status == "allowed"
    assert u.window("grace").extra == {"5h-utilization": "0.0", "7d-utilization": "0.12"}
    assert unknown_headers(u.raw) == []


def test_every_window_is_parsed_generically_and_unknown_ones_kept_verbatim():
    raw = {f"{P}status": "rejected", f"{P}representative-claim": "seven_day_overage_included",
           f"{P}7d_oi-status": "rejected", f"{P}7d_oi-utilization": "1.0", f"{P}7d_oi-surpassed-threshold": "0.9",
           f"{P}14d_xy-utilization": "0.5", f"{P}7d-burn-rate": "fast", f"{P}mystery": "42"}
    u = parse_unified(raw)
    w = u.window("7d_oi")
    assert (w.status, w.utilization, w.surpassed_threshold) == ("rejected", 1.0, 0.9)
    assert u.window("14d_xy").utilization == 0.5 and u.window("7d").extra == {"burn-rate": "fast"}
    assert u.raw[f"{P}mystery"] == "42"
    assert unknown_headers(u.raw) == [
        ("unified_header", f"{P}14d_xy-utilization", "0.5"),
        ("unified_header", f"{P}7d-burn-rate", "fast"),
        ("unified_header", f"{P}mystery", "42"),
    ]


def test_unknown_claims_and_values_are_reported_with_their_kind():
    raw = {f"{P}status": "paused", f"{P}representative-claim": "monthly_moon",
           f"{P}overage-disabled-reason": "org_moon_disabled", f"{P}overage-status": "allowed",
           f"{P}5h-status": "allowed_warning", f"{P}fallback": "available"}
    found = unknown_headers(parse_unified(raw).raw)
    assert ("claim", f"{P}representative-claim", "monthly_moon") in found
    assert ("unified_value", f"{P}status", "paused") in found
    assert ("unified_value", f"{P}overage-disabled-reason", "org_moon_disabled") in found
    assert len(found) == 3  # the known values are not flagged


def test_garbage_values_do_not_crash():
    u = parse_unified({f"{P}5h-utilization": "lots", f"{P}reset": "", f"{P}7d-reset": "inf", f"{P}-": "x"})
    assert u.five_hour.utilization is None and u.reset is None and u.seven_day.reset is None
    assert u.lane == LANE_UNKNOWN


def test_round_trip_through_dict():
    u = parse_unified({f"{P}status": "allowed", f"{P}representative-claim": "five_hour", f"{P}5h-utilization": "0.2",
                       f"{P}overage-in-use": "false", f"{P}7d_oi-utilization": "0.3"})
    again = UnifiedLimits.from_dict(u.to_dict())
    assert again == u and u.to_dict()["lane"] == LANE_PLAN and again.overage_in_use is False
    assert again.window("7d_oi").utilization == 0.3


def test_old_and_future_stored_dicts_load():
    old = {"status": "rejected", "reset": 1, "representative_claim": None,
           "five_hour": {"status": "allowed", "utilization": 0.03, "reset": 2, "surpassed_threshold": None},
           "seven_day": {"status": "allowed", "utilization": 0.0, "reset": 3, "surpassed_threshold": None},
           "overage_status": "rejected", "overage_disabled_reason": "out_of_credits", "overage_utilization": 1.0,
           "overage_reset": 4, "overage_in_use": None, "fallback_percentage": 0.5, "raw": {}, "lane": "rejected"}
    u = UnifiedLimits.from_dict(old)
    assert u.five_hour.utilization == 0.03 and u.overage_disabled_reason == "out_of_credits"
    future = {**old, "windows_v9": {"x": 1}, "five_hour": {**old["five_hour"], "colour": "red"}}
    assert UnifiedLimits.from_dict(future).five_hour.utilization == 0.03


def test_lane_table_has_sourced_claims_for_every_lane_the_code_reads():
    table = load_lane_table()
    assert table.lane_of_claim("seven_day_overage_included") == LANE_INCLUDED
    assert table.lane_of_claim("overage") == LANE_EXTRA and table.lane_of_claim("five_hour") == LANE_PLAN
    assert table.lane_of_claim("brand_new") == LANE_UNKNOWN and table.lane_of_claim(None) == LANE_UNKNOWN
    assert table.window_of_claim("seven_day_overage_included") == "7d_oi"
    doc = read_toml(table.path)
    assert all(entry.get("source") for section in ("lane", "claim", "window") for entry in doc[section])


def test_lane_table_refuses_an_unsourced_or_inconsistent_entry(tmp_path):
    doc = read_toml(load_lane_table().path)
    bad = {**doc, "claim": [*doc["claim"], {"claim": "x", "lane": "moon", "source": "s"}]}
    with pytest.raises(LaneFileError, match="lane 'moon'"):
        parse_lane_table(bad)
    bad = {**doc, "claim": [*doc["claim"], {"claim": "x", "lane": "plan"}]}
    with pytest.raises(LaneFileError, match="source"):
        parse_lane_table(bad)
    bad = {**doc, "lane": [entry for entry in doc["lane"] if entry["id"] != "unknown"]}
    with pytest.raises(LaneFileError, match="unknown"):
        parse_lane_table(bad)


def test_a_claim_added_to_the_data_file_is_read_without_a_code_change(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(load_lane_table().path.parent, data)
    with open(data / "lanes.toml", "a") as fh:
        fh.write('\n[[claim]]\nclaim = "seven_day_moonshot"\nlane = "plan"\nsource = "test"\n')
    headers = {f"{P}status": "allowed", f"{P}representative-claim": "seven_day_moonshot"}
    assert parse_unified(headers).lane == LANE_UNKNOWN
    monkeypatch.setenv("LANELAB_DATA", str(data))
    assert parse_unified(headers).lane == LANE_PLAN
    assert unknown_headers(parse_unified(headers).raw) == []


_UNIFIED_KEYS = st.sampled_from(["status", "reset", "representative-claim", "5h-utilization", "5h-reset", "5h-status",
                                 "7d-utilization", "7d_oi-utilization", "overage-status", "overage-in-use",
                                 "fallback-percentage", "slow-utilization", "x-new"])


@settings(max_examples=examples(300))
@given(st.dictionaries(_UNIFIED_KEYS, st.sampled_from(["allowed", "rejected", "0.5", "123", "true", "five_hour", ""])))
def test_to_dict_is_asdict_plus_the_lane(headers: dict[str, str]) -> None:
    """to_dict skips asdict's deep copy for speed; what it returns is still exactly asdict's data plus the lane."""
    from dataclasses import asdict

    u = parse_unified({f"anthropic-ratelimit-unified-{k}": v for k, v in headers.items()})
    expected = asdict(u)
    expected["lane"] = u.lane
    got = u.to_dict()
    assert got == expected
    got["raw"]["x"] = "changed"  # a copy, not the observation's own dict
    assert "x" not in u.raw
