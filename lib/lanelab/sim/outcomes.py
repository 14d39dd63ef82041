"""How each simulator outcome looks on the wire, and the account state that picks between its variants.

A policy (lanelab.sim.policy) only names an outcome id; this module turns it into a concrete reply using the
templates in data/sim_outcomes.toml, so the verbatim error strings live in one data file with their sources and
the same request can answer differently as the account changes (extra usage enabled, credit left, Team plan).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, load_cached, read_toml
from lanelab.errors import NotFound
from lanelab.version_gate import load_version_gate

__all__ = ["ACCOUNT_CONDITIONS", "CONTENT_TYPES", "DEFAULT_ACCOUNT", "EXTRA_USAGE_STATES", "LANES", "PLANS",
           "REPLY_FIELDS", "REPLY_FIELD_TYPES",
           "OutcomeFileError", "Replies", "Reply", "UnknownOutcome", "account_facts", "default_account", "extra_usage_state",
           "identity_line", "load_outcomes", "normalized_account", "outcome_ids", "outcomes_path", "render",
           "template"]

#: The account shape shared with the simulator's state (docs/contracts.md §1.1). Max 5x, nearly unused plan
#: (#15080 probe: 5-hour 0.03, 7-day 0.0), extra usage enabled with a monthly limit of 0 (PR #75147: out_of_credits).
DEFAULT_ACCOUNT: dict[str, Any] = {
    "plan": "max_5x",
    "rate_limit_tier": "default_claude_max_5x",
    "five_hour_utilization": 0.03,
    "seven_day_utilization": 0.0,
    "extra_usage": {"is_enabled": True, "monthly_limit": 0.0, "used_credits": 0.0},
}

#: Plan names the simulator's account may hold: the 2026 names (Pro, Max 5x, Max 20x, Team) and, since 2026-10-30,
#: Max (formerly Max 5x) and Ultra (formerly Max 20x) (references/autumn-2026.md §2.6).
PLANS = ("max_5x", "max_20x", "pro", "team", "max", "ultra")
LANES = ("plan", "extra_usage", "included_overage", "api", "none")
EXTRA_USAGE_STATES = ("available", "exhausted", "disabled")
ACCOUNT_CONDITIONS = frozenset({"extra_usage", "team", "window_exhausted", "included_overage_exhausted"})
REPLY_FIELDS = frozenset({"status", "error_type", "message", "error_code", "lane", "unified", "retry_after",
                          "content_type"})
#: What each reply field must hold (the file is checked against it when read).
REPLY_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,), "error_type": (str,), "message": (str,), "error_code": (str,), "lane": (str,),
    "unified": (bool,), "retry_after": (int,), "content_type": (str,), "source": (str,), "note": (str,),
    "description": (str,), "from_gate": (bool,),
}
_TYPE_WORDS = {int: "an integer", str: "a string", bool: "true or false"}
_META_FIELDS = frozenset({"source", "note", "description", "variant", "from_gate"})
#: Content types a reply may have: the API's JSON error, or an edge page (Cloudflare's 1010).
CONTENT_TYPES = ("application/json", "text/html")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class OutcomeFileError(DataFileError):
    """data/sim_outcomes.toml is missing or malformed."""

    hint = "Fix the file (see the comment at its top for the format) or point LANELAB_DATA at a good data directory."


class UnknownOutcome(NotFound):
    """A policy or caller named an outcome id the templates do not define."""

    hint = "Use one of the outcome ids listed in docs/contracts.md §1.1 and data/sim_outcomes.toml."


@dataclass(frozen=True)
class Reply:
    """The simulator's answer for one outcome: what the app puts on the wire."""

    status: int
    error_type: str | None
    message: str | None
    error_code: str | None
    lane: str
    unified: bool
    retry_after: int | None
    content_type: str = "application/json"

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Reply:
        """An error no outcome template describes (an unknown route, bad input to a control route, a bad fault
        header): same wire shape, no lane, no unified headers."""
        return cls(status=status, error_type=error_type, message=message, error_code=None, lane="none",
                   unified=False, retry_after=None)

    def error_body(self, request_id: str | None = None) -> dict[str, Any]:
        """The Messages API error JSON for this reply (``details.error_code`` when there is one)."""
        error: dict[str, Any] = {"type": self.error_type or "api_error", "message": self.message or "Error"}
        if self.error_code:
            error["details"] = {"error_code": self.error_code}
        body: dict[str, Any] = {"type": "error", "error": error}
        if request_id:
            body["request_id"] = request_id
        return body


def default_account() -> dict[str, Any]:
    """A fresh, independent copy of DEFAULT_ACCOUNT."""
    return copy.deepcopy(DEFAULT_ACCOUNT)


def normalized_account(account: Mapping[str, Any] | None) -> dict[str, Any]:
    """``account`` merged over the default, so partial or junk dicts still render (a new dict; values are shared)."""
    if not isinstance(account, Mapping):
        return {**DEFAULT_ACCOUNT, "extra_usage": dict(DEFAULT_ACCOUNT["extra_usage"])}  # the defaults' only nested dict
    out = {**DEFAULT_ACCOUNT, **account}
    extra = account.get("extra_usage")
    # the defaults' only nested dict merges too; anything but a table there is junk: keep the default
    out["extra_usage"] = {**DEFAULT_ACCOUNT["extra_usage"], **extra} if isinstance(extra, Mapping) \
        else dict(DEFAULT_ACCOUNT["extra_usage"])
    return out


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def extra_usage_state(account: Mapping[str, Any] | None) -> str:
    """available (enabled, credit left) / exhausted (enabled, no credit) / disabled (not enabled)."""
    return _extra_state(normalized_account(account)["extra_usage"])


def _extra_state(extra: Mapping[str, Any]) -> str:
    """:func:`extra_usage_state` of a normalized account's ``extra_usage``."""
    if not extra.get("is_enabled"):
        return "disabled"
    return "available" if _num(extra.get("used_credits")) < _num(extra.get("monthly_limit")) else "exhausted"


def account_facts(account: Mapping[str, Any] | None) -> dict[str, Any]:
    """The account conditions variants match on."""
    acc = normalized_account(account)
    return {
        "extra_usage": _extra_state(acc["extra_usage"]),
        "team": acc.get("plan") == "team",
        "window_exhausted": max(_num(acc.get("five_hour_utilization")), _num(acc.get("seven_day_utilization"))) >= 1.0,
        "included_overage_exhausted": _num(acc.get("included_overage_utilization")) >= 1.0,
    }


def _variant_matches(when: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    for key, wanted in when.items():
        have = facts[key]
        if isinstance(wanted, list):
            if have not in wanted:
                return False
        elif have != wanted:
            return False
    return True


# ------------------------------------------------------------------------------------------------ loading


def outcomes_path() -> Path:
    return data_file("sim_outcomes.toml")


def _check_reply_fields(where: str, table: Any, path: Path) -> None:
    if not isinstance(table, Mapping):
        raise OutcomeFileError(f"{path}: {where} must be a table.")
    unknown = set(table) - REPLY_FIELDS - _META_FIELDS - {"when"}
    if unknown:
        raise OutcomeFileError(f"{path}: {where} has unknown field(s) {sorted(unknown)}; known: "
                               f"{', '.join(sorted(REPLY_FIELDS | _META_FIELDS))}.")
    for key, kinds in REPLY_FIELD_TYPES.items():
        value = table.get(key)
        if key in table and (not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool))):
            raise OutcomeFileError(f"{path}: {where}.{key} must be {_TYPE_WORDS[kinds[0]]}.")
    if "lane" in table and table["lane"] not in LANES:
        shown = repr(table["lane"]) if re.fullmatch(r"[\w-]{1,24}", table["lane"]) else "another string"
        raise OutcomeFileError(f"{path}: {where}.lane must be one of {', '.join(LANES)} (found {shown}).")
    if "status" in table and not 100 <= table["status"] <= 599:
        raise OutcomeFileError(f"{path}: {where}.status must be an HTTP status code, 100-599 (found "
                               f"{table['status']}).")
    if "retry_after" in table and table["retry_after"] < 0:
        raise OutcomeFileError(f"{path}: {where}.retry_after must be a whole number of seconds (0 or more).")
    if "content_type" in table and table["content_type"] not in CONTENT_TYPES:
        raise OutcomeFileError(f"{path}: {where}.content_type must be one of {', '.join(CONTENT_TYPES)}.")


def _check_when(where: str, when: Any, path: Path) -> None:
    if not isinstance(when, Mapping) or not when:
        raise OutcomeFileError(f"{path}: {where}.when must be a non-empty table of account conditions.")
    unknown = set(when) - ACCOUNT_CONDITIONS
    if unknown:
        raise OutcomeFileError(
            f"{path}: {where} uses unknown account condition(s) {sorted(unknown)}; "
            f"known: {sorted(ACCOUNT_CONDITIONS)}."
        )
    for key, wanted in when.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if key == "extra_usage":
            if not values or any(v not in EXTRA_USAGE_STATES for v in values):
                raise OutcomeFileError(f"{path}: {where}.when.extra_usage must be one of "
                                       f"{', '.join(EXTRA_USAGE_STATES)} (or a list of them).")
        elif not isinstance(wanted, bool):
            raise OutcomeFileError(f"{path}: {where}.when.{key} must be true or false.")


def _validate(doc: Mapping[str, Any], path: Path) -> None:
    outcomes = doc.get("outcome")
    if not isinstance(outcomes, Mapping) or not outcomes:
        raise OutcomeFileError(f"{path}: outcome must be a table of [outcome.<id>] tables (none found).")
    facts = doc.get("wire_facts")
    facts_line = facts.get("identity_line") if isinstance(facts, Mapping) else None
    if not isinstance(facts_line, str) or not facts_line:
        raise OutcomeFileError(f"{path}: wire_facts.identity_line must be a non-empty string.")
    for oid, table in outcomes.items():
        where = f"outcome.{oid}"
        _check_reply_fields(where, table, path)
        required = ("lane", "source") if table.get("from_gate") else ("status", "lane", "source")
        for key in required:
            if key not in table:
                raise OutcomeFileError(f"{path}: {where}.{key} is missing.")
        variants = table.get("variant", [])
        if not isinstance(variants, list):
            raise OutcomeFileError(f"{path}: {where}.variant must be an array of tables ([[{where}.variant]]).")
        for i, variant in enumerate(variants):
            vwhere = f"{where}.variant[{i}]"
            _check_reply_fields(vwhere, variant, path)
            _check_when(vwhere, variant.get("when"), path)
            if "source" not in variant:
                raise OutcomeFileError(f"{path}: {vwhere}.source is missing.")


def load_outcomes(path: Path | None = None) -> dict[str, Any]:
    """The parsed and validated templates file (cached until the file changes)."""
    path = Path(path) if path is not None else outcomes_path()
    return load_cached(path, _parse_outcomes, "simulator outcome templates", OutcomeFileError)


def _parse_outcomes(path: Path) -> dict[str, Any]:
    doc = read_toml(path, "simulator outcome templates", OutcomeFileError)
    _validate(doc, path)
    return doc


def outcome_ids() -> tuple[str, ...]:
    """Every outcome id the templates define (policies may name only these)."""
    return tuple(load_outcomes()["outcome"])


def identity_line() -> str:
    """Claude Code's identity text, as the templates file records it (wire fact with its source)."""
    return load_outcomes()["wire_facts"]["identity_line"]


def template(outcome: str, doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The raw template table of one outcome (with source and note), for reports and /_sim/policy; from ``doc`` (a
    :func:`load_outcomes` result the caller holds) or the templates file as it is now. Raises :class:`UnknownOutcome`."""
    return dict(_table(outcome, doc))


def _table(outcome: str, doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """:func:`template`'s table itself, not a copy (for reading only)."""
    try:
        return (doc if doc is not None else load_outcomes())["outcome"][outcome]
    except KeyError:
        raise UnknownOutcome(f"Unknown simulator outcome {outcome!r}.") from None


def _fill(text: str | None, details: Mapping[str, str] | None) -> str | None:
    """``text`` with each ``{name}`` that ``details`` names filled in (others stay as they are)."""
    if not text or not details:
        return text
    return _PLACEHOLDER.sub(lambda m: str(details.get(m.group(1), m.group(0))), text)


def render(outcome: str, account: Mapping[str, Any] | None = None, doc: Mapping[str, Any] | None = None,
           details: Mapping[str, str] | None = None) -> Reply:
    """The reply for ``outcome`` given the account state (first matching variant overrides the defaults), from
    ``doc`` when given (a running simulator holds the templates it started with) or the templates file.

    ``details`` fill the message's placeholders (``{claimed}``/``{floor}`` of the version gate, ``{problem}`` of an
    invalid request). An outcome marked ``from_gate`` takes status, error type, code and message from
    data/version_gate.toml, the one place the gate is described."""
    table = _table(outcome, doc)
    fields = {k: v for k, v in table.items() if k in REPLY_FIELDS}
    if table.get("from_gate"):
        gate = load_version_gate()
        fields.update(status=gate.status, error_type=gate.error_type, error_code=gate.error_code,
                      message=gate.message)
    variants = table.get("variant")
    if variants:  # the account matters only to an outcome with variants
        facts = account_facts(account)
        for variant in variants:
            if _variant_matches(variant["when"], facts):
                fields.update({k: v for k, v in variant.items() if k in REPLY_FIELDS})
                break
    retry = fields.get("retry_after")
    return Reply(
        status=int(fields["status"]),
        error_type=fields.get("error_type") or None,
        message=_fill(fields.get("message"), details) or None,
        error_code=fields.get("error_code") or None,
        lane=str(fields["lane"]),
        unified=bool(fields.get("unified", False)),
        retry_after=int(retry) if retry is not None else None,
        content_type=str(fields.get("content_type") or "application/json"),
    )


class Replies:
    """The replies of one templates document (a :func:`load_outcomes` result), each rendered once per outcome and
    account facts: a reply depends on nothing else unless its message has details to fill in or it comes from the
    version gate (data/version_gate.toml, read as it is now), and those are rendered every time. Thread-safe."""

    def __init__(self, doc: Mapping[str, Any]):
        self.doc = doc
        self._kept: dict[tuple[Any, ...], Reply] = {}

    def render(self, outcome: str, account: Mapping[str, Any] | None = None,
               details: Mapping[str, str] | None = None) -> Reply:
        """:func:`render` with this document (same reply, same errors)."""
        table = _table(outcome, self.doc)
        if details or table.get("from_gate"):
            return render(outcome, account, self.doc, details)
        key = (outcome, *account_facts(account).values()) if table.get("variant") else (outcome,)
        reply = self._kept.get(key)
        if reply is None:
            reply = self._kept[key] = render(outcome, account, self.doc)
        return reply
