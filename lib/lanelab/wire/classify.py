"""Name what a response said: an outcome class and a billing lane, from rules kept as data (data/outcomes.toml).

The rules are data because the server's wording moves every few weeks (references/hermes.md §6); a new message is a
data edit with its source, not a code change. A response no rule knows is ``unclassified`` and its message stays
verbatim in the observation, so nothing new is ever hidden behind a guess. The same file says which error types,
codes and messages the kit has seen (its rules and ``[[known]]`` entries): lanelab.wire.drift flags the others.
A rule can also read values out of a message (named groups), e.g. the two versions of the version gate, which come
back in ``Classified.details``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, Either, OneOf, Str, Table, load_cached, read_toml, validate
from lanelab.wire.spec import Observation
from lanelab.wire.unified import LANE_UNKNOWN

__all__ = ["KNOWN_KINDS", "LANE_API", "LANE_NONE", "UNCLASSIFIED", "Classified", "OutcomeClass", "Rule", "Taxonomy",
           "TaxonomyError", "classify", "error_message", "load_taxonomy", "normalise_message", "outcome_classes",
           "palette", "parse_taxonomy"]

UNCLASSIFIED = "unclassified"
#: The lane recorded for a refused request whose response names none.
LANE_NONE = "none"
LANE_API = "api"


@dataclass(frozen=True)
class OutcomeClass:
    """One outcome class: how tables and heatmaps show it, and whether it says anything about billing."""

    id: str
    label: str
    short: str
    colour: str
    description: str
    transient: bool = False


@dataclass(frozen=True)
class Rule:
    """One match rule; every condition that is set must hold."""

    id: str
    outcome: str
    source: str
    served: bool | None = None
    status: tuple[int, ...] = ()
    error_type: tuple[str, ...] = ()
    error_code: tuple[str, ...] = ()
    message: re.Pattern[str] | None = None
    transport: bool | None = None
    unified: bool | None = None
    unified_lane: tuple[str, ...] = ()
    header_present: str | None = None
    endpoint: re.Pattern[str] | None = None
    body: re.Pattern[str] | None = None
    any_message: bool = False
    capture: re.Pattern[str] | None = None
    lane: str | None = None

    def details(self, message: str) -> dict[str, str]:
        """Named groups of the ``message`` (or ``capture``) pattern in ``message``: e.g. the versions of the gate."""
        found: dict[str, str] = {}
        for pattern in (self.message, self.capture):
            m = pattern.search(message) if pattern is not None else None
            if m:
                found.update({k: v for k, v in m.groupdict().items() if v is not None})
        return found

    def matches(self, obs: Observation, message: str) -> bool:
        """True when every condition this rule sets holds for ``obs`` (``message``: its normalised error text)."""
        has_response = obs.status is not None and not obs.transport_error
        if self.transport is not None and self.transport == has_response:
            return False
        if self.transport is None and not has_response:
            return False
        if self.served is not None and self.served != obs.ok:
            return False
        if self.status and obs.status not in self.status:
            return False
        if self.error_type and obs.error_type not in self.error_type:
            return False
        if self.error_code and obs.error_code not in self.error_code:
            return False
        if self.message is not None and not _found(self.message, message):
            return False
        if self.unified is not None and self.unified != obs.unified.present:
            return False
        if self.header_present and self.header_present not in obs.headers:
            return False
        if self.endpoint is not None and not (obs.endpoint and _found(self.endpoint, obs.endpoint)):
            return False
        if self.body is not None and not (self.body.search(_body_text(obs)) or self.body.search(message)):
            return False
        return not (self.unified_lane and obs.unified.lane not in self.unified_lane)


@functools.lru_cache(maxsize=4096)
def _found(pattern: re.Pattern[str], text: str) -> bool:
    """``pattern.search(text)`` found something. Remembered: a run meets the same few messages and endpoints in
    every cell, and each is tried against most rules' patterns (a response's body is not: it differs each time)."""
    return pattern.search(text) is not None


def _body_text(obs: Observation) -> str:
    """The response body as text, for ``body`` patterns (an edge page is kept as text, a JSON body is serialised)."""
    body = obs.body
    if body is None or isinstance(body, str):
        return body or ""
    try:
        return json.dumps(body, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return ""


@dataclass(frozen=True)
class Taxonomy:
    """The ordered outcome classes and the ordered rules of one outcomes file."""

    classes: tuple[OutcomeClass, ...]
    rules: tuple[Rule, ...]
    path: Path | None = None
    by_id: dict[str, OutcomeClass] = field(default_factory=dict, compare=False)
    #: ``[[known]]`` entries: error types and codes seen in public reports besides those the rules name.
    known: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)
    known_messages: tuple[re.Pattern[str], ...] = ()

    def __post_init__(self) -> None:
        self.by_id.update({c.id: c for c in self.classes})

    @property
    def ids(self) -> list[str]:
        """The outcome class ids, in display order."""
        return [c.id for c in self.classes]

    def palette(self) -> dict[str, str]:
        """Outcome id → colour, in display order (for plots)."""
        return {c.id: c.colour for c in self.classes}

    def is_transient(self, outcome: str) -> bool:
        """True when ``outcome`` is a class marked transient (worth a retry; says nothing about billing)."""
        cls = self.by_id.get(outcome)
        return bool(cls and cls.transient)

    def knows_error_type(self, error_type: str) -> bool:
        """True when a rule or a ``[[known]]`` entry names this error type."""
        return error_type in self.known.get("error_type", ()) or any(error_type in r.error_type for r in self.rules)

    def knows_error_code(self, code: str) -> bool:
        """True when a rule or a ``[[known]]`` entry names this ``details.error_code``."""
        return code in self.known.get("error_code", ()) or any(code in r.error_code for r in self.rules)

    def knows_message(self, message: str) -> bool:
        """True when some rule's ``message`` pattern, or a ``[[known]]`` message pattern, matches ``message``."""
        message = normalise_message(message)
        return any(_found(r.message, message) for r in self.rules if r.message is not None) or any(
            _found(p, message) for p in self.known_messages)

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with id ``rule_id``, or None (``unclassified`` is no rule)."""
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass(frozen=True)
class Classified:
    """The verdict on one observation: outcome class, billing lane, the id of the rule that decided, and what that
    rule read out of the message (``details``: e.g. ``client_version`` and ``required_version`` of the version gate)."""

    outcome: str
    lane: str
    rule: str
    details: dict[str, str] = field(default_factory=dict, compare=False)


class TaxonomyError(DataFileError):
    """The outcomes file is inconsistent; the message names the entry."""


def _tuple(v: Any) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def parse_taxonomy(doc: Mapping[str, Any], path: Path | None = None) -> Taxonomy:
    """Build a :class:`Taxonomy` from a parsed outcomes TOML document, checking every rule names a known class.

    Raises :class:`TaxonomyError` when the document is not the shape :data:`SCHEMA` describes (naming the key and
    the expected type), ``unclassified`` is missing, a rule names an unknown class or no source.
    """
    validate(doc, SCHEMA, "The outcome taxonomy" + (f" at {path}" if path else ""), TaxonomyError)
    classes = tuple(
        OutcomeClass(id=c["id"], label=c["label"], short=c["short"], colour=c["colour"],
                     description=c.get("description", ""), transient=bool(c.get("transient", False)))
        for c in doc.get("class", [])
    )
    known = {c.id for c in classes}
    if UNCLASSIFIED not in known:
        raise TaxonomyError(f"{path}: the outcome classes must include {UNCLASSIFIED!r}.")
    rules = []
    for r in doc.get("rule", []):
        if r.get("outcome") not in known:
            raise TaxonomyError(f"{path}: rule {r.get('id')!r} names unknown outcome {r.get('outcome')!r}.")
        if not r.get("source"):
            raise TaxonomyError(f"{path}: rule {r.get('id')!r} does not name its public source.")
        rules.append(Rule(
            id=r["id"], outcome=r["outcome"], source=r["source"], served=r.get("served"),
            status=tuple(int(s) for s in _tuple(r.get("status"))), error_type=_tuple(r.get("error_type")),
            error_code=_tuple(r.get("error_code")),
            message=_pattern(r, "message", path),
            transport=r.get("transport"), unified=r.get("unified"), unified_lane=_tuple(r.get("unified_lane")),
            header_present=(r.get("header_present") or "").lower() or None,
            endpoint=_pattern(r, "endpoint", path), body=_pattern(r, "body", path),
            any_message=bool(r.get("any_message", False)), capture=_pattern(r, "capture", path), lane=r.get("lane"),
        ))
    known_sets: dict[str, set[str]] = {}
    messages = []
    for k in doc.get("known", []):
        what = k.get("what")
        if what not in KNOWN_KINDS or not k.get("source"):
            raise TaxonomyError(f"{path}: every [[known]] needs `what` (one of {', '.join(KNOWN_KINDS)}) and a source "
                                f"({k!r}).")
        if what == "message":
            messages += [_compile(v, path, "a [[known]] message") for v in _tuple(k.get("values"))]
        else:
            known_sets.setdefault(what, set()).update(str(v) for v in _tuple(k.get("values")))
    return Taxonomy(classes=classes, rules=tuple(rules), path=path,
                    known={w: frozenset(v) for w, v in known_sets.items()}, known_messages=tuple(messages))


#: What a ``[[known]]`` entry can list.
KNOWN_KINDS = ("error_type", "error_code", "message")


_TEXTS = Either(str, [str])
_PATTERN = Str(regex=True)

#: The shape of data/outcomes.toml (see lanelab.datafiles for the vocabulary); ``parse_taxonomy`` adds the semantic
#: checks (rules name known classes and a source, ``unclassified`` exists).
SCHEMA = Table({
    "palette?": str,
    "class": [Table({"id": Str(nonempty=True), "label": str, "short": str,
                     "colour": Str(pattern=r"#[0-9A-Fa-f]{6}(?:[0-9A-Fa-f]{2})?", meaning="a colour like #009E73"),
                     "description?": str, "transient?": bool})],
    "rule?": [Table({"id": Str(nonempty=True), "outcome": Str(nonempty=True), "source": str, "served?": bool,
                     "status?": Either(int, [int]), "error_type?": _TEXTS, "error_code?": _TEXTS, "message?": _PATTERN,
                     "transport?": bool, "unified?": bool, "unified_lane?": _TEXTS, "header_present?": str,
                     "endpoint?": _PATTERN, "body?": _PATTERN, "any_message?": bool, "capture?": _PATTERN,
                     "lane?": Str(nonempty=True)})],
    "known?": [Table({"what": OneOf(*KNOWN_KINDS), "source": str, "values?": _TEXTS})],
})


def _compile(pattern: str, path: Path | None, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TaxonomyError(f"{path}: {where} has an invalid pattern {pattern!r} ({exc}).") from None


def _pattern(rule: Mapping[str, Any], key: str, path: Path | None) -> re.Pattern[str] | None:
    value = rule.get(key)
    return _compile(str(value), path, f"rule {rule.get('id')!r} ({key})") if value else None


def _load(path: Path) -> Taxonomy:
    return load_cached(path, _parse_file, "outcome taxonomy", TaxonomyError)


def _parse_file(path: Path) -> Taxonomy:
    return parse_taxonomy(read_toml(path, "outcome taxonomy", TaxonomyError), path)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy in ``path`` (default: data/outcomes.toml), parsed once per process.

    Raises :class:`TaxonomyError` when the file is missing, unreadable or inconsistent.
    """
    return _load(path or data_file("outcomes.toml"))


def normalise_message(message: str) -> str:
    """``message`` with typographic apostrophes made plain (servers and copies differ)."""
    return message.replace("\u2019", "'").replace("\u2018", "'")


def error_message(obs: Observation) -> str:
    """The error message a rule matches: for the OAuth token endpoint's shape ``{"error": "invalid_grant",
    "error_description": "…"}`` the description (the wire layer keeps such a body's raw text as the message), else
    the error's own message."""
    body = obs.body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body.get("error_description") or body["error"])
    return obs.error_message or ""


def _message(obs: Observation) -> str:
    return normalise_message(error_message(obs))


def _lane(obs: Observation, rule: Rule | None) -> str:
    if rule is not None and rule.lane:
        return rule.lane
    lane = obs.unified.lane
    if obs.ok:
        return lane
    return lane if lane != LANE_UNKNOWN else LANE_NONE


def classify(obs: Observation, taxonomy: Taxonomy | None = None) -> Classified:
    """The outcome class and billing lane of ``obs``; never raises, whatever the observation holds."""
    tax = taxonomy or load_taxonomy()
    message = _message(obs)
    for rule in tax.rules:
        if rule.matches(obs, message):
            return Classified(rule.outcome, _lane(obs, rule), rule.id, rule.details(message))
    return Classified(UNCLASSIFIED, _lane(obs, None), UNCLASSIFIED)


def outcome_classes() -> list[OutcomeClass]:
    """The outcome classes in display order. Raises :class:`TaxonomyError` for a bad outcomes file."""
    return list(load_taxonomy().classes)


def palette() -> dict[str, str]:
    """Outcome id → colour, in display order. Raises :class:`TaxonomyError` for a bad outcomes file."""
    return load_taxonomy().palette()
