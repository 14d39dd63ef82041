"""The ``anthropic-ratelimit-unified-*`` response headers, parsed into typed fields, and the billing lane they imply.

Names and formats: references/protocol.md §3.1 (Claude Code ``claudeAiLimits.ts``; CLIProxyAPI; HER PR #75147) and
references/autumn-2026.md §2.3. Which representative claim means which lane, and which windows, fields and values the kit
knows, live in data/lanes.toml: a claim that file does not list gives lane ``unknown``, never ``plan``.

Every header is parsed generically as ``…-<window>-<field>`` (``5h``, ``7d``, ``7d_oi``, ``slow``, ``grace`` or any
window the service adds), so a window that is absent (Ultra has no ``5h-*``) is simply not there, and a window or field
the kit has never seen is kept verbatim in ``raw`` and reported by :func:`unknown_headers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, Str, Table, load_cached, read_toml, validate

__all__ = ["KIND_CLAIM", "KIND_HEADER", "KIND_VALUE", "LANES", "LANE_EXTRA", "LANE_INCLUDED", "LANE_PLAN", "LANE_REJECTED",
           "LANE_UNKNOWN", "PREFIX", "LaneFileError", "LaneTable", "UnifiedLimits", "Window", "load_lane_table",
           "parse_lane_table", "parse_unified", "parse_windows", "split_header", "unknown_headers"]

PREFIX = "anthropic-ratelimit-unified-"

#: Billing lanes, as the kit reports them (the code reads these; data/lanes.toml describes them with sources).
LANE_PLAN = "plan"
LANE_EXTRA = "extra_usage"
LANE_INCLUDED = "included_overage"
LANE_REJECTED = "rejected"
LANE_UNKNOWN = "unknown"
LANES = (LANE_PLAN, LANE_EXTRA, LANE_INCLUDED, LANE_REJECTED, LANE_UNKNOWN)

#: Kinds of unknown items :func:`unknown_headers` reports (see lanelab.wire.spec.Unknown).
KIND_HEADER = "unified_header"
KIND_VALUE = "unified_value"
KIND_CLAIM = "claim"


class LaneFileError(DataFileError):
    """data/lanes.toml is inconsistent; the message names the entry."""


#: How many header names a lane table remembers its verdict for.
_CHECKS_MAX = 1024


@dataclass(frozen=True)
class LaneTable:
    """The contents of data/lanes.toml: lanes, claims (claim → lane, window), known windows, fields and values."""

    lanes: dict[str, str]  # id -> label
    claims: dict[str, str]  # claim -> lane
    claim_windows: dict[str, str]  # claim -> header window key
    windows: dict[str, frozenset[str]]  # window key -> the fields it may carry
    window_labels: dict[str, str]
    top_level: frozenset[str]
    values: dict[str, frozenset[str]]  # header suffix ("status", "overage-disabled-reason"…) -> known values
    path: Path | None = None
    #: header name -> what :meth:`check_of` found (filled as names are met; a response repeats the same names)
    _checks: dict[str, tuple[str, frozenset[str] | None] | None] = field(default_factory=dict, init=False,
                                                                         repr=False, compare=False)

    def lane_of_claim(self, claim: str | None) -> str:
        """The lane a representative claim names; ``unknown`` for a missing or unlisted claim."""
        return self.claims.get(claim, LANE_UNKNOWN) if claim else LANE_UNKNOWN

    def window_of_claim(self, claim: str | None) -> str | None:
        """The header window key that carries ``claim`` (``7d_oi``…), or None when the public record names none."""
        return self.claim_windows.get(claim or "")

    def check_of(self, name: str) -> tuple[str, frozenset[str] | None] | None:
        """What :func:`unknown_headers` checks for the unified header ``name`` (prefixed, lower case): None when the
        table knows the name and lists no values for it, ``(KIND_HEADER, None)`` when the name itself is unknown, else
        the kind to flag and the values the table knows. Worked out once per name."""
        if name in self._checks:
            return self._checks[name]
        rest = name.removeprefix(PREFIX)
        key, fld = split_header(name, self.top_level)
        check: tuple[str, frozenset[str] | None] | None
        if (rest not in self.top_level) if key is None else (key not in self.windows or fld not in self.windows[key]):
            check = (KIND_HEADER, None)
        else:
            known = self.values.get(rest)
            check = None if known is None else (KIND_CLAIM if rest == "representative-claim" else KIND_VALUE, known)
        if len(self._checks) < _CHECKS_MAX:  # names come from responses: keep the memory bounded
            self._checks[name] = check
        return check


_NAME = Str(nonempty=True)

#: The shape of data/lanes.toml (see lanelab.datafiles for the vocabulary); ``parse_lane_table`` adds the semantic
#: checks (every lane the code reads exists, claims and windows name declared lanes and windows).
SCHEMA = Table({
    "lane": [Table({"id": _NAME, "label?": str, "description?": str, "source": _NAME})],
    "claim?": [Table({"claim": _NAME, "lane": _NAME, "window?": str, "source": _NAME})],
    "windows?": Table({"common_fields?": [str]}),
    "window?": [Table({"key": _NAME, "label?": str, "fields?": [str], "source": _NAME})],
    "headers?": Table({"status_values?": [str], "fallback_values?": [str], "disabled_reasons?": [str],
                       "in_use_values?": [str], "top_level?": [str]}),
})


def parse_lane_table(doc: Mapping[str, Any], path: Path | None = None) -> LaneTable:
    """Build a :class:`LaneTable` from a parsed lanes TOML document, checking every entry names its source.

    Raises :class:`LaneFileError` naming the key and the expected type when the document is not the shape
    :data:`SCHEMA` describes, or naming the entry when it is inconsistent."""
    validate(doc, SCHEMA, "The lane table" + (f" at {path}" if path else ""), LaneFileError)
    lanes = {}
    for entry in doc.get("lane", []):
        if not entry.get("id") or not entry.get("source"):
            raise LaneFileError(f"{path}: every [[lane]] needs an id and a source.")
        lanes[str(entry["id"])] = str(entry.get("label") or entry["id"])
    missing = set(LANES) - set(lanes)
    if missing:
        raise LaneFileError(f"{path}: the lanes must include {', '.join(sorted(missing))} (the kit's code reads them).")
    claims, claim_windows = {}, {}
    for entry in doc.get("claim", []):
        claim, lane = entry.get("claim"), entry.get("lane")
        if not claim or not entry.get("source"):
            raise LaneFileError(f"{path}: every [[claim]] needs a claim and a source.")
        if lane not in lanes:
            raise LaneFileError(f"{path}: claim {claim!r} names lane {lane!r}, which no [[lane]] declares.")
        claims[str(claim)] = str(lane)
        if entry.get("window"):
            claim_windows[str(claim)] = str(entry["window"])
    common = frozenset(str(f) for f in (doc.get("windows") or {}).get("common_fields", []))
    windows, labels = {}, {}
    for entry in doc.get("window", []):
        if not entry.get("key") or not entry.get("source"):
            raise LaneFileError(f"{path}: every [[window]] needs a key and a source.")
        key = str(entry["key"])
        windows[key] = common | frozenset(str(f) for f in entry.get("fields", []))
        labels[key] = str(entry.get("label") or key)
    for claim, window in claim_windows.items():
        if window not in windows:
            raise LaneFileError(f"{path}: claim {claim!r} names window {window!r}, which no [[window]] declares.")
    headers = doc.get("headers") or {}
    status = frozenset(headers.get("status_values", []))
    values: dict[str, frozenset[str]] = {"status": status, "representative-claim": frozenset(claims)}
    values.update({f"{key}-status": status for key in windows})
    values["fallback"] = frozenset(headers.get("fallback_values", []))
    values["overage-disabled-reason"] = frozenset(headers.get("disabled_reasons", []))
    values["overage-in-use"] = frozenset(headers.get("in_use_values", []))
    return LaneTable(lanes=lanes, claims=claims, claim_windows=claim_windows, windows=windows, window_labels=labels,
                     top_level=frozenset(headers.get("top_level", [])), values=values, path=path)


def load_lane_table(path: Path | None = None) -> LaneTable:
    """The lane table in ``path`` (default: data/lanes.toml), parsed once per version of the file."""
    path = path or data_file("lanes.toml")
    return load_cached(path, lambda p: parse_lane_table(read_toml(p, "lane table", LaneFileError), p),
                       "lane table", LaneFileError)


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    f = _float(v)
    try:
        return int(f) if f is not None else None
    except (OverflowError, ValueError):  # inf, nan
        return None


@dataclass
class Window:
    """One rate-limit window (5-hour, 7-day…): status, utilization as a fraction 0–1, reset in epoch seconds.

    ``extra`` keeps the window's other fields verbatim (``disabled-reason``, ``5h-utilization``…)."""

    status: str | None = None
    utilization: float | None = None
    reset: int | None = None
    surpassed_threshold: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        """True when the response carried any header of this window."""
        return any(v is not None for v in (self.status, self.utilization, self.reset, self.surpassed_threshold)) \
            or bool(self.extra)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Window:
        """The window stored in ``d``; keys this version does not know are dropped."""
        d = d or {}
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _flat(window: Window) -> dict[str, Any]:
    """``asdict(window)`` without its deep copy: a window's fields are numbers, strings and None but for ``extra``,
    a flat map of strings (copied)."""
    d = {name: getattr(window, name) for name in window.__dataclass_fields__}
    d["extra"] = dict(window.extra)
    return d


def split_header(name: str, top_level: frozenset[str]) -> tuple[str | None, str]:
    """``(window, field)`` of a unified header name with or without the prefix: ``("5h", "utilization")``; a header
    outside any window gives ``(None, name)``. The window key is what precedes the first ``-`` (keys use ``_``)."""
    rest = name.removeprefix(PREFIX)
    if rest in top_level or "-" not in rest:
        return None, rest
    window, _, fld = rest.partition("-")
    return window, fld


def parse_windows(raw: Mapping[str, str], top_level: frozenset[str] | None = None) -> dict[str, Window]:
    """Every window the headers mention, known to the kit or not, keyed by its header key (``5h``, ``7d_oi``…)."""
    top = load_lane_table().top_level if top_level is None else top_level
    windows: dict[str, Window] = {}
    for name, value in raw.items():
        key, fld = split_header(name, top)
        if key is None:
            continue
        w = windows.setdefault(key, Window())
        if fld == "status":
            w.status = value
        elif fld == "utilization":
            w.utilization = _float(value)
        elif fld == "reset":
            w.reset = _int(value)
        elif fld == "surpassed-threshold":
            w.surpassed_threshold = _float(value)
        else:
            w.extra[fld] = value
    return windows


@dataclass
class UnifiedLimits:
    """Everything the unified headers of one response say, typed. ``raw`` keeps every unified header verbatim.

    ``five_hour`` and ``seven_day`` stay as typed fields for the readers of stored runs; :attr:`windows` has every
    window (``7d_oi``, ``slow``, ``grace``…), and a window the response did not carry is absent there (and all ``None``
    in the typed fields)."""

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
    def windows(self) -> dict[str, Window]:
        """Every window the headers carried, keyed by header key (``5h``, ``7d``, ``7d_oi``, ``overage``…)."""
        return parse_windows(self.raw)

    def window(self, key: str) -> Window | None:
        """The window with header key ``key``, or None when the response did not carry it (Ultra has no ``5h``)."""
        return self.windows.get(key)

    @property
    def claim_lane(self) -> str:
        """The lane data/lanes.toml gives the representative claim (``unknown`` when missing or not listed)."""
        return load_lane_table().lane_of_claim(self.representative_claim) if self.present else LANE_UNKNOWN

    @property
    def lane(self) -> str:
        """Which pool paid (or would have paid) for the request, read from the headers alone.

        - ``extra_usage``: overage is in use, or the claim's lane is extra usage (``overage``), or the summary status
          is ``rejected`` while overage is allowed (Claude Code's own reading, references/protocol.md §3.1);
        - ``rejected``: the summary status is ``rejected`` and overage is not available;
        - otherwise, with an allowed status, the lane data/lanes.toml gives the representative claim: ``plan`` for a
          plan window, ``included_overage`` for the included-overage claims;
        - ``unknown``: no unified headers (a burst 429 carries none), a missing or unlisted claim, or a summary status
          the kit does not know.
        """
        if not self.present:
            return LANE_UNKNOWN
        claim_lane = self.claim_lane
        if self.overage_in_use or claim_lane == LANE_EXTRA:
            return LANE_EXTRA
        if self.status == "rejected":
            return LANE_EXTRA if self.overage_status in ("allowed", "allowed_warning") else LANE_REJECTED
        if self.status in ("allowed", "allowed_warning"):
            return claim_lane
        return LANE_UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data, plus the derived ``lane``."""
        # asdict() without its recursive deep copy (this runs once per stored cell): the windows are flat (_flat),
        # and ``raw`` maps strings to strings, so a copy of each is the same data.
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["five_hour"], d["seven_day"], d["raw"] = _flat(self.five_hour), _flat(self.seven_day), dict(self.raw)
        d["lane"] = self.lane
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> UnifiedLimits:
        """The inverse of :meth:`to_dict`; derived keys (``lane``) and keys this version does not know are dropped."""
        if not d:
            return cls()
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        five = Window.from_dict(d.pop("five_hour", None))
        seven = Window.from_dict(d.pop("seven_day", None))
        return cls(five_hour=five, seven_day=seven, **d)


# The header names parse_unified reads, made once (it runs once per response).
_STATUS, _RESET, _CLAIM = f"{PREFIX}status", f"{PREFIX}reset", f"{PREFIX}representative-claim"
_IN_USE, _FALLBACK = f"{PREFIX}overage-in-use", f"{PREFIX}fallback-percentage"
_OVERAGE_STATUS, _OVERAGE_REASON = f"{PREFIX}overage-status", f"{PREFIX}overage-disabled-reason"
_OVERAGE_UTILIZATION, _OVERAGE_RESET = f"{PREFIX}overage-utilization", f"{PREFIX}overage-reset"
#: A typed window's four header names (status, utilization, reset, surpassed threshold), by window key.
_WINDOW_NAMES = {key: tuple(f"{PREFIX}{key}-{name}" for name in ("status", "utilization", "reset",
                                                                  "surpassed-threshold"))
                 for key in ("5h", "7d")}


def parse_unified(headers: Mapping[str, str]) -> UnifiedLimits:
    """Parse the unified headers out of any header mapping (names compared case-insensitively).

    Never raises: a missing or unparsable value becomes None, and every unified header is kept verbatim in ``raw``.
    """
    h: dict[str, str] = {}
    for k, v in headers.items():
        name = k.lower() if isinstance(k, str) else str(k).lower()
        if name.startswith(PREFIX):
            h[name] = str(v)
    if not h:
        return UnifiedLimits()
    in_use = h.get(_IN_USE)
    return UnifiedLimits(
        status=h.get(_STATUS),
        reset=_int(h.get(_RESET)),
        representative_claim=h.get(_CLAIM),
        five_hour=_typed(h, _WINDOW_NAMES["5h"]),
        seven_day=_typed(h, _WINDOW_NAMES["7d"]),
        overage_status=h.get(_OVERAGE_STATUS),
        overage_disabled_reason=h.get(_OVERAGE_REASON),
        overage_utilization=_float(h.get(_OVERAGE_UTILIZATION)),
        overage_reset=_int(h.get(_OVERAGE_RESET)),
        overage_in_use=None if in_use is None else in_use.strip().lower() == "true",
        fallback_percentage=_float(h.get(_FALLBACK)),
        raw=h,
    )


def _typed(h: Mapping[str, str], names: tuple[str, ...]) -> Window:
    """The four typed fields of one window (the stored ``five_hour``/``seven_day`` shape); all None when absent.
    ``names``: the window's header names (:data:`_WINDOW_NAMES`)."""
    status, utilization, reset, surpassed = names
    if status not in h and utilization not in h and reset not in h and surpassed not in h:
        return Window()
    return Window(status=h.get(status), utilization=_float(h.get(utilization)), reset=_int(h.get(reset)),
                  surpassed_threshold=_float(h.get(surpassed)))


def unknown_headers(raw: Mapping[str, str], table: LaneTable | None = None) -> list[tuple[str, str, str]]:
    """``(kind, header name, verbatim value)`` for every unified header, claim or enumerated value the lane table does
    not know: ``unified_header`` (a window, field or name never seen), ``claim`` (a representative claim no
    ``[[claim]]`` lists) and ``unified_value`` (a status, fallback or disabled reason outside the known values)."""
    table = table or load_lane_table()
    out: list[tuple[str, str, str]] = []
    for name, value in raw.items():
        check = table.check_of(name)
        if check is not None and (check[1] is None or value.strip() not in check[1]):
            out.append((check[0], name, value))
    return out
