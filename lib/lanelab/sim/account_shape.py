"""What the simulator's account may hold, checked before anything is merged (``POST /_sim/account``,
``sim --account``, ``running_simulator(account=…)``): a wrong type is one clear message and the account is left as
it was, instead of a simulator that fails every later request.

The shape (docs/contracts.md §1.1) as a table of key → what it must be; a patch is partial, so only the keys it names
are checked. ``unified_claim`` and ``unified_extra`` let a test show the client a representative claim or a unified
header the kit has never seen (drift made visible end to end).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from lanelab.datafiles import kind_of
from lanelab.errors import InputError
from lanelab.sim.outcomes import PLANS

__all__ = ["ACCOUNT_KEYS", "EXTRA_USAGE_KEYS", "AccountShapeError", "check_account"]

#: Header-name suffixes ``unified_extra`` may add (after ``anthropic-ratelimit-unified-``).
_SUFFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class AccountShapeError(InputError):
    """An account patch of the wrong shape; the message names the key and what it must be."""

    hint = ("The account takes plan, rate_limit_tier, five_hour_utilization, seven_day_utilization, "
            "included_overage_utilization, fallback_percentage (numbers 0 to 1), extra_usage {is_enabled, "
            "monthly_limit, used_credits, …}, unified_claim (a string) and unified_extra (header suffix → value).")



def _number(low: float, high: float | None) -> tuple[str, Any]:
    words = f"a number from {low:g} to {high:g}" if high is not None else f"a number of at least {low:g}"

    def ok(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return value >= low and (high is None or value <= high)

    return words, ok


def _string(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


#: Top-level keys: what each must be (words) and the check.
ACCOUNT_KEYS: dict[str, tuple[str, Any]] = {
    "plan": (f"one of {', '.join(PLANS)}", lambda v: v in PLANS),
    "rate_limit_tier": ("a non-empty string", _string),
    "five_hour_utilization": _number(0, 1),
    "seven_day_utilization": _number(0, 1),
    "included_overage_utilization": _number(0, 1),
    "fallback_percentage": _number(0, 1),
    "unified_claim": ("a non-empty string or null", lambda v: v is None or _string(v)),
    "unified_extra": ("an object of header-name suffix → string value", None),
    "extra_usage": ("an object", None),
}
#: Keys inside ``extra_usage``.
EXTRA_USAGE_KEYS: dict[str, tuple[str, Any]] = {
    "is_enabled": ("true or false", lambda v: isinstance(v, bool)),
    "monthly_limit": _number(0, None),
    "used_credits": _number(0, None),
    "currency": ("a three-letter currency code", lambda v: isinstance(v, str) and bool(re.fullmatch("[A-Z]{3}", v))),
    "disabled_reason": ("a non-empty string or null", lambda v: v is None or _string(v)),
    "user_disabled": ("true or false", lambda v: isinstance(v, bool)),
}


def _check_table(patch: Mapping[str, Any], keys: Mapping[str, tuple[str, Any]], where: str) -> None:
    for key, value in patch.items():
        if key not in keys:
            raise AccountShapeError(f"{where}{key} is not an account key; known: {', '.join(keys)}.")
        words, ok = keys[key]
        if ok is not None and not ok(value):
            raise AccountShapeError(f"{where}{key} must be {words} (found {kind_of(value)}).")


def check_account(patch: Any) -> dict[str, Any]:
    """``patch`` when it is a valid partial account (a dict), else :class:`AccountShapeError` naming the key."""
    if not isinstance(patch, Mapping):
        raise AccountShapeError(f"The account must be a JSON object (found {kind_of(patch)}).")
    _check_table(patch, ACCOUNT_KEYS, "")
    extra = patch.get("extra_usage")
    if "extra_usage" in patch:
        if not isinstance(extra, Mapping):
            raise AccountShapeError(f"extra_usage must be an object (found {kind_of(extra)}).")
        _check_table(extra, EXTRA_USAGE_KEYS, "extra_usage.")
    if "unified_extra" in patch:
        headers = patch["unified_extra"]
        if not isinstance(headers, Mapping):
            raise AccountShapeError(f"unified_extra must be an object (found {kind_of(headers)}).")
        for name, value in headers.items():
            if not isinstance(name, str) or not _SUFFIX.match(name):
                raise AccountShapeError("unified_extra keys must be header-name suffixes (lower-case letters, "
                                        "digits, - and _), e.g. \"quux-status\".")
            if not isinstance(value, str) or "\n" in value or "\r" in value:
                raise AccountShapeError(f"unified_extra.{name} must be a one-line string (found {kind_of(value)}).")
    return dict(patch)
