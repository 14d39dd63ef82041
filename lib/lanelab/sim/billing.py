"""The simulator's billing: the account's plan windows and extra usage, what a served request costs, and the values
the server reports about them (the ``anthropic-ratelimit-unified-*`` headers, per-key rate-limit headers).

Every view of the account (these headers, ``/api/oauth/usage``, ``/_sim/account``) reads the same numbers here, so
the views can never disagree. The capacity and credit-rate constants are knobs of the model, not facts about the real
service.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lanelab.sim.service import Service

__all__ = ["CREDITS_PER_KTOKENS", "FIVE_HOUR_CAPACITY_TOKENS", "SEVEN_DAY_CAPACITY_TOKENS", "UNIFIED_PREFIX",
           "Billing", "Charge", "deep_merge", "iso"]

#: Tokens it takes to fill each plan window (model knobs: small enough that a demo moves the needle).
FIVE_HOUR_CAPACITY_TOKENS = 1_000_000
SEVEN_DAY_CAPACITY_TOKENS = 10_000_000
#: Extra-usage cost in credits (minor currency units) per 1,000 tokens (model knob).
CREDITS_PER_KTOKENS = 1.5
#: The prefix of the unified rate-limit headers the server emits (the client parses them in lanelab.wire.unified;
#: the simulator keeps its own copy, as a separate server would).
UNIFIED_PREFIX = "anthropic-ratelimit-unified-"


def iso(epoch: float) -> str:
    """An epoch time as ISO-8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``patch`` merged in (nested dicts merge too)."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@dataclass
class Charge:
    """What one served request cost, for the request log and for tests."""

    lane: str
    tokens: int
    credits: float = 0.0


class Billing:
    """One account's numbers: the account dict (docs/contracts.md §1.1), per-family utilization and the windows'
    start. Thread-safe (the lock is shared with the rest of the simulator's state)."""

    def __init__(self, account: dict[str, Any], lock: threading.RLock | None = None) -> None:
        self._lock = lock or threading.RLock()
        self.account = copy.deepcopy(account)
        self._baseline = copy.deepcopy(account)
        self.family_utilization: dict[str, float] = {}
        self.window_start = time.time()
        #: What the active policy says about plans and windows (set with the policy).
        self.service = Service()
        self._resets: tuple[float, dict[str, int]] | None = None  # (window start, its resets)

    def has_five_hour(self) -> bool:
        """Whether the account's plan has a 5-hour window under the active policy (Ultra has none since 2026-11)."""
        with self._lock:
            return self.service.has_five_hour(self.account.get("plan"))

    # ---- the account ---------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the account as it stands."""
        with self._lock:
            return copy.deepcopy(self.account)

    def update(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge a partial account (nested dicts merge too) into the live one; returns a copy of the result."""
        with self._lock:
            self.account = deep_merge(self.account, patch)
            return copy.deepcopy(self.account)

    def set_baseline(self) -> None:
        """Make the current account the one :meth:`reset` returns to."""
        with self._lock:
            self._baseline = copy.deepcopy(self.account)

    def reset(self) -> None:
        """Back to the baseline account, nothing spent, windows starting now."""
        with self._lock:
            self.account = copy.deepcopy(self._baseline)
            self.family_utilization.clear()
            self.window_start = time.time()

    def utilizations(self) -> tuple[float, float, dict[str, float]]:
        """The 5-hour and 7-day fractions and a copy of the per-family ones (``included_overage`` among them)."""
        with self._lock:
            fam = dict(self.family_utilization)
            fam["included_overage"] = _num(self.account.get("included_overage_utilization"))
            return (_num(self.account.get("five_hour_utilization")),
                    _num(self.account.get("seven_day_utilization")), fam)

    # ---- what a request costs ------------------------------------------------------------------------------
    def charge(self, lane: str, tokens: int, model: str = "") -> Charge:
        """Apply a served request's effect: plan windows grow (the 5-hour one only where the plan has it), or the
        included-overage bucket, or extra-usage credits are spent; API keys cost nothing."""
        with self._lock:
            if lane == "plan":
                if self.service.has_five_hour(self.account.get("plan")):
                    self.account["five_hour_utilization"] = min(
                        1.0, _num(self.account.get("five_hour_utilization")) + tokens / FIVE_HOUR_CAPACITY_TOKENS)
                self.account["seven_day_utilization"] = min(
                    1.0, _num(self.account.get("seven_day_utilization")) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                family = "opus" if "opus" in model else "sonnet" if "sonnet" in model else None
                if family:
                    self.family_utilization[family] = min(
                        1.0, self.family_utilization.get(family, 0.0) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                return Charge(lane, tokens)
            if lane == "included_overage":
                self.account["included_overage_utilization"] = min(
                    1.0, _num(self.account.get("included_overage_utilization")) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                return Charge(lane, tokens)
            if lane == "extra_usage":
                credits = round(tokens * CREDITS_PER_KTOKENS / 1000, 4)
                extra = self.account.setdefault("extra_usage", {})
                extra["used_credits"] = round(float(extra.get("used_credits", 0) or 0) + credits, 4)
                self.family_utilization["oauth_apps"] = min(
                    1.0, self.family_utilization.get("oauth_apps", 0.0) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                return Charge(lane, tokens, credits)
            return Charge(lane, tokens)

    # ---- derived values ------------------------------------------------------------------------------------
    def resets(self) -> dict[str, int]:
        """Epoch-second resets of each window (fixed from the windows' start; worked out once per start)."""
        start = self.window_start
        known = self._resets
        if known is None or known[0] != start:
            month = datetime.fromtimestamp(start, tz=UTC)
            next_month = (month.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                          .replace(month=month.month % 12 + 1, year=month.year + (month.month == 12)))
            known = self._resets = (start, {"five_hour": int(start + 5 * 3600), "seven_day": int(start + 7 * 86400),
                                            "overage": int(next_month.timestamp())})
        return dict(known[1])

    def overage(self) -> dict[str, Any]:
        """Extra-usage standing: allowed or rejected, why, and the fraction spent."""
        with self._lock:
            return _overage(dict(self.account.get("extra_usage") or {}))

    @staticmethod
    def api_key_headers() -> dict[str, str]:
        """Per-key rate-limit headers of API-key traffic (docs.anthropic.com/en/api/rate-limits); model values."""
        reset = iso(time.time() + 60)
        return {"anthropic-ratelimit-requests-limit": "4000", "anthropic-ratelimit-requests-remaining": "3999",
                "anthropic-ratelimit-requests-reset": reset, "anthropic-ratelimit-tokens-limit": "400000",
                "anthropic-ratelimit-tokens-remaining": "399000", "anthropic-ratelimit-tokens-reset": reset}

    def unified_headers(self, lane: str, status: int) -> dict[str, str]:
        """The ``anthropic-ratelimit-unified-*`` headers for a response in ``lane`` with HTTP ``status``.

        The windows follow the active policy (:attr:`service`): no ``5h-*`` for a plan without a 5-hour window, and
        the extra windows it names (``7d_oi``, ``slow``, ``grace``). The account may force the representative claim
        (``unified_claim``) and add headers verbatim (``unified_extra``): how tests show the client a claim or header
        it has never seen."""
        with self._lock:
            five = _num(self.account.get("five_hour_utilization"))
            seven = _num(self.account.get("seven_day_utilization"))
            oi = _num(self.account.get("included_overage_utilization"))
            fallback = self.account.get("fallback_percentage", 0.5)
            claim_override = self.account.get("unified_claim")
            extra_headers = dict(self.account.get("unified_extra") or {})
            service = self.service
            has_five = service.has_five_hour(self.account.get("plan"))
            over = _overage(dict(self.account.get("extra_usage") or {}))
        resets = self.resets()
        if not has_five:
            five = 0.0
        claim = "seven_day" if seven > five or not has_five else "five_hour"
        p = UNIFIED_PREFIX  # every name below carries it
        h: dict[str, str] = {}
        if has_five:
            h[p + "5h-status"] = "allowed" if five < 1 else "rejected"
            h[p + "5h-utilization"] = f"{five:.4f}"
            h[p + "5h-reset"] = str(resets["five_hour"])
        h[p + "7d-status"] = "allowed" if seven < 1 else "rejected"
        h[p + "7d-utilization"] = f"{seven:.4f}"
        h[p + "7d-reset"] = str(resets["seven_day"])
        h[p + "overage-status"] = over["status"]
        h[p + "overage-utilization"] = f"{over['utilization']:.4f}"
        h[p + "overage-reset"] = str(resets["overage"])
        h[p + "fallback-percentage"] = str(fallback)
        if over["reason"]:
            h[p + "overage-disabled-reason"] = over["reason"]
        for window in service.unified_windows:
            h.update({p + k: v for k, v in self._extra_window(window, oi, resets).items()})
        plan_open = five < 1 and seven < 1
        if lane == "extra_usage" and status < 400:
            h[p + "status"] = "allowed"
            h[p + "representative-claim"] = "overage"
            h[p + "overage-in-use"] = "true"
            h[p + "reset"] = str(resets["overage"])
        elif lane == "included_overage" and status < 400:
            h[p + "status"] = "allowed_warning" if oi >= 0.9 else "allowed"
            h[p + "representative-claim"] = "seven_day_overage_included"
            h[p + "reset"] = str(resets["seven_day"])
        elif status < 400 and plan_open:
            h[p + "status"] = "allowed_warning" if max(five, seven) >= 0.9 else "allowed"
            h[p + "representative-claim"] = claim
            h[p + "reset"] = str(resets[claim])
        elif plan_open and status != 429:
            # Refused for its billing lane (the third-party 400): the overage pool it was routed to said no.
            h[p + "status"] = "rejected"
            h[p + "reset"] = str(resets["overage"])
        else:
            # A plan window is full, or limited for another reason (a burst, a spend cap, the included-overage
            # bucket): the plan windows as they stand.
            h[p + "status"] = "rejected"
            h[p + "representative-claim"] = claim
            h[p + "reset"] = str(resets[claim])
        if isinstance(claim_override, str) and claim_override:
            h[p + "representative-claim"] = claim_override
        for k, v in extra_headers.items():
            h[p + str(k)] = str(v)
        return h

    @staticmethod
    def _extra_window(window: str, oi: float, resets: dict[str, int]) -> dict[str, str]:
        """The headers of one extra window. ``7d_oi`` carries the included-overage bucket (askalf/dario #672,
        #1262); the fields and values of ``slow`` and ``grace`` are model assumptions (only the names are reported,
        askalf/dario v6.23.13)."""
        if window == "7d_oi":
            return {"7d_oi-status": "allowed" if oi < 1 else "rejected", "7d_oi-utilization": f"{oi:.4f}",
                    "7d_oi-reset": str(resets["seven_day"])}
        return {f"{window}-status": "allowed", f"{window}-utilization": "0.0000"}


def _num(value: Any) -> float:
    """A number from an account value (junk and None are 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _overage(extra: dict[str, Any]) -> dict[str, Any]:
    """:meth:`Billing.overage` of an account's ``extra_usage`` table."""
    enabled = bool(extra.get("is_enabled"))
    limit = float(extra.get("monthly_limit") or 0)
    used = float(extra.get("used_credits") or 0)
    utilization = min(1.0, used / limit) if limit > 0 else (1.0 if enabled else 0.0)
    if not enabled:
        return {"status": "rejected", "reason": "overage_not_provisioned", "utilization": utilization,
                "enabled": False, "limit": limit, "used": used}
    if used >= limit:
        return {"status": "rejected", "reason": "out_of_credits", "utilization": utilization,
                "enabled": True, "limit": limit, "used": used}
    return {"status": "allowed", "reason": None, "utilization": utilization, "enabled": True,
            "limit": limit, "used": used}
