"""What the simulator shows about its account: ``GET /api/oauth/usage``, ``GET /api/oauth/profile`` and the white-box
``GET /_sim/account`` (tokens masked, the whole view redacted with the simulator's own redactor).

All three read the same numbers as the unified headers (:mod:`lanelab.sim.billing`), so they always agree.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from lanelab.redact import mask
from lanelab.sim.billing import Billing, iso

if TYPE_CHECKING:
    from lanelab.sim.account import SimState

__all__ = ["CODENAME_KEYS", "account_view", "profile_view", "usage_view"]


#: Keys of the current usage body whose name is a code name: present, null, meaning not public (data/usage_fields.toml).
CODENAME_KEYS = ("seven_day_omelette", "tangelo", "iguana_necktie", "omelette_promotional", "nimbus_quill",
                 "cinder_cove", "amber_ladder")


def usage_view(billing: Billing) -> dict[str, Any]:
    """``GET /api/oauth/usage``: utilizations as percent 0–100, resets as ISO-8601, in the shape the active policy
    names (``[service] usage_shape``: the older one, or the current one of references/autumn-2026.md §2.4)."""
    if billing.service.usage_shape == "2026-11":
        return _usage_2026_11(billing)
    five, seven, fam = billing.utilizations()
    resets, over = billing.resets(), billing.overage()
    week = iso(resets["seven_day"])

    def window(fraction: float, reset: str) -> dict[str, Any]:
        return {"utilization": round(fraction * 100, 4), "resets_at": reset}

    return {
        "five_hour": window(five, iso(resets["five_hour"])),
        "seven_day": window(seven, week),
        "seven_day_oauth_apps": window(fam.get("oauth_apps", 0.0), week),
        "seven_day_opus": window(fam.get("opus", 0.0), week),
        "seven_day_sonnet": window(fam.get("sonnet", 0.0), week),
        "extra_usage": {"is_enabled": over["enabled"], "monthly_limit": over["limit"],
                        "used_credits": over["used"], "utilization": round(over["utilization"] * 100, 4)},
    }


def _severity(percent: float) -> str:
    """``normal`` / ``warning`` / ``critical`` for a limit entry (thresholds are model assumptions)."""
    return "critical" if percent >= 100 else "warning" if percent >= 80 else "normal"


def _usage_2026_11(billing: Billing) -> dict[str, Any]:
    """The usage body as captured on 2026-08-27 and read since (onlocalhost.dev/dipstick ``testdata/usage.json``;
    riba2534/happyclaw #713): dollar fields per window (null on plan accounts), ``extra_usage`` with currency and
    the spend-limit flags, ``limits[]``, ``spend``, and the code-named keys (null). A plan without a 5-hour window
    (Ultra) reports ``five_hour`` as null and no session limit."""
    five, seven, fam = billing.utilizations()
    resets, over = billing.resets(), billing.overage()
    week = iso(resets["seven_day"])
    has_five = billing.has_five_hour()

    def window(fraction: float, reset: str) -> dict[str, Any]:
        return {"utilization": round(fraction * 100, 4), "resets_at": reset, "limit_dollars": None,
                "used_dollars": None, "remaining_dollars": None}

    def used(key: str) -> dict[str, Any] | None:
        return window(fam[key], week) if fam.get(key) else None

    def limit(kind: str, group: str, fraction: float, reset: str, scope: Any = None) -> dict[str, Any]:
        percent = round(fraction * 100)
        return {"kind": kind, "group": group, "percent": percent, "severity": _severity(percent), "resets_at": reset,
                "scope": scope, "is_active": fraction >= 1.0}

    limits = [limit("session", "session", five, iso(resets["five_hour"]))] if has_five else []
    limits.append(limit("weekly_all", "weekly", seven, week))
    if fam.get("included_overage"):
        limits.append(limit("weekly_scoped", "weekly", fam["included_overage"], week,
                            {"model": {"id": None, "display_name": "Included overage"}, "surface": None}))
    spend_used, spend_limit = over["used"], over["limit"]
    body: dict[str, Any] = {
        "five_hour": window(five, iso(resets["five_hour"])) if has_five else None,
        "seven_day": window(seven, week),
        "seven_day_oauth_apps": used("oauth_apps"),
        "seven_day_opus": used("opus"),
        "seven_day_sonnet": used("sonnet"),
        "seven_day_sonnet_max": None,
        "seven_day_cowork": None,
        **dict.fromkeys(CODENAME_KEYS),
        "extra_usage": {"is_enabled": over["enabled"], "monthly_limit": spend_limit, "used_credits": spend_used,
                        "utilization": round(over["utilization"] * 100, 4), "currency": "USD",
                        "disabled_reason": None if over["status"] == "allowed" else over["reason"],
                        "user_disabled": not over["enabled"],
                        "spend_limit_reached": over["enabled"] and spend_used >= spend_limit,
                        "credits_ever_enabled": over["enabled"]},
        "limits": limits,
        "spend": {"used": {"amount_minor": round(spend_used), "currency": "USD", "exponent": 2},
                  "limit": {"amount_minor": round(spend_limit), "currency": "USD", "exponent": 2},
                  "percent": round(over["utilization"] * 100), "severity": _severity(over["utilization"] * 100),
                  "enabled": over["enabled"]},
        "member_dashboard_available": False,
    }
    return body


def profile_view(billing: Billing, identity: dict[str, str]) -> dict[str, Any]:
    """``GET /api/oauth/profile``: who the account is and what plan it is on."""
    account = billing.snapshot()
    plan = str(account.get("plan", "max_5x"))
    tier = str(account.get("rate_limit_tier", "default_claude_max_5x"))
    enabled = bool((account.get("extra_usage") or {}).get("is_enabled"))
    # Ultra (formerly Max 20x) keeps the claude_max organisation type here: its profile type is not reported
    # (model assumption).
    org_type = plan if plan.startswith("claude_") else (
        "claude_max" if "max" in plan or plan == "ultra" else "claude_pro" if "pro" in plan else
        "claude_team" if "team" in plan else f"claude_{plan}")
    return {
        "account": {"uuid": identity["account_uuid"], "email": identity["email"],
                    "display_name": identity["display_name"], "created_at": identity["created_at"]},
        "organization": {"uuid": identity["organization_uuid"], "organization_type": org_type,
                         "rate_limit_tier": tier, "billing_type": "stripe_subscription",
                         "has_extra_usage_enabled": enabled,
                         "subscription_created_at": identity["subscription_created_at"]},
    }


def account_view(state: SimState) -> dict[str, Any]:
    """``GET /_sim/account``: policy, account, identity, tokens (masked), counters and the usage view, redacted."""
    with state.lock:
        grants = state.grants
        return state.redactor.redact_obj({
            "policy": state.policy_name, "account": copy.deepcopy(state.billing.account),
            "identity": dict(state.identity),
            "tokens": [t.masked() for t in grants.tokens.values()],
            "refresh_tokens": [{"token": mask(r.value), "used": r.used} for r in grants.refresh.values()],
            "counters": dict(state.counters), "usage": usage_view(state.billing),
        })
