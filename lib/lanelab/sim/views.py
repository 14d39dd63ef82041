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

__all__ = ["account_view", "profile_view", "usage_view"]


def usage_view(billing: Billing) -> dict[str, Any]:
    """``GET /api/oauth/usage``: utilizations as percent 0–100, resets as ISO-8601."""
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


def profile_view(billing: Billing, identity: dict[str, str]) -> dict[str, Any]:
    """``GET /api/oauth/profile``: who the account is and what plan it is on."""
    account = billing.snapshot()
    plan = str(account.get("plan", "max_5x"))
    tier = str(account.get("rate_limit_tier", "default_claude_max_5x"))
    enabled = bool((account.get("extra_usage") or {}).get("is_enabled"))
    org_type = plan if plan.startswith("claude_") else (
        "claude_max" if "max" in plan else "claude_pro" if "pro" in plan else
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
