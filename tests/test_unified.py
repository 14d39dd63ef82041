"""Unified rate-limit headers parse into typed fields and the lane reading follows references/protocol.md §3.1."""

import pytest
from lanelab.wire.unified import (
    LANE_EXTRA,
    LANE_PLAN,
    LANE_REJECTED,
    LANE_UNKNOWN,
    UnifiedLimits,
    parse_unified,
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
])
def test_lane_reading(headers, lane):
    assert parse_unified(headers).lane == lane


def test_garbage_values_do_not_crash():
    u = parse_unified({f"{P}5h-utilization": "lots", f"{P}reset": ""})
    assert u.five_hour.utilization is None and u.reset is None


def test_round_trip_through_dict():
    u = parse_unified({f"{P}status": "allowed", f"{P}5h-utilization": "0.2", f"{P}overage-in-use": "false"})
    again = UnifiedLimits.from_dict(u.to_dict())
    assert again == u and u.to_dict()["lane"] == LANE_PLAN and again.overage_in_use is False
