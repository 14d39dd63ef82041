"""The ``anthropic-ratelimit-unified-*`` response headers, parsed into typed fields, and the billing lane they imply.

Names and formats: references/protocol.md §3.1 (Claude Code ``claudeAiLimits.ts``; CLIProxyAPI; HER PR #75147).
The simulator builds these headers from its account state and the kit reads them back with the same names,
so a mismatch between the two shows up in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LANES", "LANE_EXTRA", "LANE_PLAN", "LANE_REJECTED", "LANE_UNKNOWN", "PREFIX", "UnifiedLimits", "Window",
           "parse_unified"]

PREFIX = "anthropic-ratelimit-unified-"

#: Billing lanes, as the kit reports them.
LANE_PLAN = "plan"
LANE_EXTRA = "extra_usage"
LANE_REJECTED = "rejected"
LANE_UNKNOWN = "unknown"
LANES = (LANE_PLAN, LANE_EXTRA, LANE_REJECTED, LANE_UNKNOWN)


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    f = _float(v)
    return int(f) if f is not None else None


@dataclass
class Window:
    """One rate-limit window (5-hour, 7-day…): status, utilization as a fraction 0–1, reset in epoch seconds."""

    status: str | None = None
    utilization: float | None = None
    reset: int | None = None
    surpassed_threshold: float | None = None


@dataclass
class UnifiedLimits:
    """Everything the unified headers of one response say, typed. ``raw`` keeps every unified header verbatim."""

    status: str | None = None
    reset: int | None = None
    representative_claim: str | None = None
    five_hour: Window = field(default_factory=Window)
    seven_day: Window = field(default_factory=Window)
    overage_status: str | None = None
    overage_disabled_reason: str | None = None
    overage_utilization: float | None = None
    overage_reset: int | None = None
    overage_in_use: bool | None = None
    fallback_percentage: float | None = None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """True when the response carried any unified header."""
        return bool(self.raw)

    @property
    def lane(self) -> str:
        """Which pool paid (or would have paid) for the request, read from the headers alone.

        - ``extra_usage``: the representative claim is ``overage``, or overage is in use, or the summary status is
          ``rejected`` while overage is allowed (Claude Code's own reading, references/protocol.md §3.1);
        - ``plan``: allowed, and the binding claim is a plan window (five_hour, seven_day…);
        - ``rejected``: the summary status is ``rejected`` and overage is not available;
        - ``unknown``: no unified headers (a burst 429 carries none).
        """
        if not self.present:
            return LANE_UNKNOWN
        overage_ok = self.overage_status in ("allowed", "allowed_warning")
        if self.representative_claim == "overage" or self.overage_in_use:
            return LANE_EXTRA
        if self.status == "rejected":
            return LANE_EXTRA if overage_ok else LANE_REJECTED
        if self.status in ("allowed", "allowed_warning"):
            return LANE_PLAN
        return LANE_UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data, plus the derived ``lane``."""
        d = asdict(self)
        d["lane"] = self.lane
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> UnifiedLimits:
        """Limits from :meth:`to_dict`'s output (``lane`` is recomputed, not read); empty for None."""
        if not d:
            return cls()
        d = dict(d)
        d.pop("lane", None)
        five = Window(**d.pop("five_hour", {}) or {})
        seven = Window(**d.pop("seven_day", {}) or {})
        return cls(five_hour=five, seven_day=seven, **d)


def _window(h: Mapping[str, str], key: str) -> Window:
    return Window(
        status=h.get(f"{PREFIX}{key}-status"),
        utilization=_float(h.get(f"{PREFIX}{key}-utilization")),
        reset=_int(h.get(f"{PREFIX}{key}-reset")),
        surpassed_threshold=_float(h.get(f"{PREFIX}{key}-surpassed-threshold")),
    )


def parse_unified(headers: Mapping[str, str]) -> UnifiedLimits:
    """Parse the unified headers out of any header mapping (names compared case-insensitively).

    Never raises: a missing or unparsable value becomes None, and every unified header is kept verbatim in ``raw``.
    """
    h = {str(k).lower(): str(v) for k, v in headers.items() if str(k).lower().startswith(PREFIX)}
    in_use = h.get(f"{PREFIX}overage-in-use")
    return UnifiedLimits(
        status=h.get(f"{PREFIX}status"),
        reset=_int(h.get(f"{PREFIX}reset")),
        representative_claim=h.get(f"{PREFIX}representative-claim"),
        five_hour=_window(h, "5h"),
        seven_day=_window(h, "7d"),
        overage_status=h.get(f"{PREFIX}overage-status"),
        overage_disabled_reason=h.get(f"{PREFIX}overage-disabled-reason"),
        overage_utilization=_float(h.get(f"{PREFIX}overage-utilization")),
        overage_reset=_int(h.get(f"{PREFIX}overage-reset")),
        overage_in_use=None if in_use is None else in_use.strip().lower() == "true",
        fallback_percentage=_float(h.get(f"{PREFIX}fallback-percentage")),
        raw=h,
    )
