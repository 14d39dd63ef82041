"""Name what a response said: an outcome class and a billing lane, from rules kept as data (data/outcomes.toml).

The rules are data because the server's wording moves every few weeks (references/hermes.md §6); a new message is a
data edit with its source, not a code change. A response no rule knows is ``unclassified`` and its message stays
verbatim in the observation, so nothing new is ever hidden behind a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_dir
from lanelab.datafiles import DataFileError, load_cached, read_toml
from lanelab.wire.spec import Observation
from lanelab.wire.unified import LANE_UNKNOWN

__all__ = ["LANE_API", "LANE_NONE", "UNCLASSIFIED", "Classified", "OutcomeClass", "Rule", "Taxonomy", "TaxonomyError",
           "classify", "load_taxonomy", "outcome_classes", "palette", "parse_taxonomy"]

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
    lane: str | None = None

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
        if self.message is not None and not self.message.search(message):
            return False
        if self.unified is not None and self.unified != obs.unified.present:
            return False
        if self.header_present and self.header_present not in obs.headers:
            return False
        return not (self.unified_lane and obs.unified.lane not in self.unified_lane)


@dataclass(frozen=True)
class Taxonomy:
    """The ordered outcome classes and the ordered rules of one outcomes file."""

    classes: tuple[OutcomeClass, ...]
    rules: tuple[Rule, ...]
    path: Path | None = None
    by_id: dict[str, OutcomeClass] = field(default_factory=dict, compare=False)

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


@dataclass(frozen=True)
class Classified:
    """The verdict on one observation: outcome class, billing lane, and the id of the rule that decided."""

    outcome: str
    lane: str
    rule: str


class TaxonomyError(DataFileError):
    """The outcomes file is inconsistent; the message names the entry."""


def _tuple(v: Any) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def parse_taxonomy(doc: Mapping[str, Any], path: Path | None = None) -> Taxonomy:
    """Build a :class:`Taxonomy` from a parsed outcomes TOML document, checking every rule names a known class.

    Raises :class:`TaxonomyError` when ``unclassified`` is missing, a rule names an unknown class or no source.
    """
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
            message=re.compile(r["message"]) if r.get("message") else None,
            transport=r.get("transport"), unified=r.get("unified"), unified_lane=_tuple(r.get("unified_lane")),
            header_present=(r.get("header_present") or "").lower() or None, lane=r.get("lane"),
        ))
    return Taxonomy(classes=classes, rules=tuple(rules), path=path)


def _load(path: Path) -> Taxonomy:
    return load_cached(path, lambda p: parse_taxonomy(read_toml(p, "outcome taxonomy", TaxonomyError), p),
                       "outcome taxonomy", TaxonomyError)


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The taxonomy in ``path`` (default: data/outcomes.toml), parsed once per process.

    Raises :class:`TaxonomyError` when the file is missing, unreadable or inconsistent.
    """
    return _load((path or data_dir() / "outcomes.toml").resolve())


def _message(obs: Observation) -> str:
    """The error message to match, with typographic apostrophes made plain (servers and copies differ)."""
    msg = obs.error_message or ""
    body = obs.body
    if not msg and isinstance(body, dict) and isinstance(body.get("error"), str):
        # OAuth token-endpoint shape: {"error": "invalid_grant", "error_description": "…"}
        msg = str(body.get("error_description") or body["error"])
    return msg.replace("\u2019", "'").replace("\u2018", "'")


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
            return Classified(rule.outcome, _lane(obs, rule), rule.id)
    return Classified(UNCLASSIFIED, _lane(obs, None), UNCLASSIFIED)


def outcome_classes() -> list[OutcomeClass]:
    """The outcome classes in display order. Raises :class:`TaxonomyError` for a bad outcomes file."""
    return list(load_taxonomy().classes)


def palette() -> dict[str, str]:
    """Outcome id → colour, in display order. Raises :class:`TaxonomyError` for a bad outcomes file."""
    return load_taxonomy().palette()
