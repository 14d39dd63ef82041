"""The body of ``GET /api/oauth/usage``, read as data/usage_fields.toml describes it, with whatever else it holds flagged.

The shape moves (references/autumn-2026.md §2.4: dollar amounts per window, a ``limits[]`` array, new ``extra_usage``
fields, code-named keys), so the known keys and fields live in the data file with their sources. Units are kept
apart: utilization and ``percent`` are percent of the window (0–100); money is in the currency it names and is shown
as reported, never converted or added to a percentage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, ListOf, MapOf, Str, Table, load_cached, read_toml, validate
from lanelab.wire.spec import Unknown

__all__ = ["KEY_KINDS", "KIND_FIELD", "PERCENT", "ExtraUsage", "KeySpec", "ObjectSpec", "UsageLimit", "UsageReading",
           "UsageShape", "UsageShapeError", "UsageWindow", "load_usage_shape", "parse_usage_shape", "read_usage",
           "usage_path"]

KIND_FIELD = "usage_field"
KEY_KINDS = ("window", "extra_usage", "limits", "opaque")
PERCENT = "% of window"


class UsageShapeError(DataFileError):
    """data/usage_fields.toml is inconsistent; the message names the entry."""


@dataclass(frozen=True)
class KeySpec:
    """One top-level key of the usage body: its kind (window, extra_usage, limits, opaque), label, code name or not."""

    name: str
    kind: str
    label: str
    codename: bool = False


@dataclass(frozen=True)
class ObjectSpec:
    """The fields the kit knows inside one kind of object, which are percentages and which are money (and in what
    currency), and for ``limits[]`` the known ``kind`` values."""

    fields: frozenset[str]
    percent: tuple[str, ...] = ()
    money: tuple[str, ...] = ()
    currency: str | None = None
    currency_field: str | None = None
    currency_note: str = ""
    kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UsageShape:
    """What the kit knows of the usage body: the top-level keys and the fields of each kind of object."""

    keys: dict[str, KeySpec]
    objects: dict[str, ObjectSpec]

    def obj(self, kind: str) -> ObjectSpec:
        """The object spec for ``kind`` (``window``, ``extra_usage``, ``limit``…); an empty one when not listed."""
        return self.objects.get(kind) or ObjectSpec(fields=frozenset())


_NAME = Str(nonempty=True)

#: The shape of data/usage_fields.toml (see lanelab.datafiles for the vocabulary).
SCHEMA = Table({
    "key": ListOf(Table({"name": _NAME, "kind": str, "label?": str, "codename?": bool, "source": _NAME}), nonempty=True),
    "object": MapOf(Table({"fields?": [str], "percent?": [str], "money?": [str], "currency?": str,
                            "currency_field?": str, "currency_note?": str, "kinds?": [str], "source": _NAME})),
})


def parse_usage_shape(doc: Mapping[str, Any], path: Path | None = None) -> UsageShape:
    """Build a :class:`UsageShape` from the parsed usage-fields TOML; raises :class:`UsageShapeError` naming the key
    and the expected type when the document is not the shape :data:`SCHEMA` describes (an entry without a source,
    an unknown kind …)."""
    validate(doc, SCHEMA, "The usage field list" + (f" at {path}" if path else ""), UsageShapeError)
    keys = {}
    for entry in doc.get("key", []):
        name, kind = entry.get("name"), entry.get("kind")
        if not name or not entry.get("source"):
            raise UsageShapeError(f"{path}: every [[key]] needs a name and a source.")
        if kind not in KEY_KINDS:
            raise UsageShapeError(f"{path}: key {name!r} has kind {kind!r}; expected one of {', '.join(KEY_KINDS)}.")
        keys[str(name)] = KeySpec(str(name), str(kind), str(entry.get("label") or name), bool(entry.get("codename")))
    objects = {}
    for kind, spec in (doc.get("object") or {}).items():
        if not spec.get("source"):
            raise UsageShapeError(f"{path}: [object.{kind}] does not name its public source.")
        objects[str(kind)] = ObjectSpec(
            fields=frozenset(spec.get("fields", [])), percent=tuple(spec.get("percent", [])),
            money=tuple(spec.get("money", [])), currency=spec.get("currency"), currency_field=spec.get("currency_field"),
            currency_note=str(spec.get("currency_note", "")), kinds=frozenset(spec.get("kinds", [])))
    return UsageShape(keys=keys, objects=objects)


def load_usage_shape(path: Path | None = None) -> UsageShape:
    """The usage shape in ``path`` (default: data/usage_fields.toml), parsed once per version of the file."""
    path = path or data_file("usage_fields.toml")
    return load_cached(path, lambda p: parse_usage_shape(read_toml(p, "usage field list", UsageShapeError), p),
                       "usage field list", UsageShapeError)


#: The part of data/oauth.toml read here (lanelab.auth.oauth checks the whole file).
_PROBES_SCHEMA = Table({"probes?": Table({"usage_path?": Str(pattern=r"/.*", meaning="a path starting with /")})})


def _read_usage_path(path: Path) -> str:
    probes = read_toml(path, "OAuth endpoint sets", schema=_PROBES_SCHEMA).get("probes") or {}
    return str(probes.get("usage_path") or "/api/oauth/usage")


def usage_path() -> str:
    """The usage endpoint's path (data/oauth.toml ``[probes] usage_path``)."""
    return load_cached(data_file("oauth.toml"), _read_usage_path, "OAuth settings")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


@dataclass
class UsageWindow:
    """One usage window: utilization in percent of the window (0–100), its reset, and dollar amounts when reported.

    ``known`` is False for a window-shaped key the kit has never seen (also flagged in ``UsageReading.unknown``)."""

    name: str
    utilization: float | None  # percent 0-100, as the usage endpoint reports it
    resets_at: str | None
    label: str = ""
    limit_dollars: float | None = None
    used_dollars: float | None = None
    remaining_dollars: float | None = None
    currency: str | None = None
    currency_note: str = ""
    codename: bool = False
    known: bool = True

    @property
    def has_money(self) -> bool:
        """True when the window reported any dollar amount."""
        return any(v is not None for v in (self.limit_dollars, self.used_dollars, self.remaining_dollars))


@dataclass
class UsageLimit:
    """One entry of ``limits[]``: ``kind`` (session, weekly_all, weekly_scoped…), percent of the window, scope."""

    kind: str | None
    percent: float | None
    resets_at: str | None = None
    group: str | None = None
    severity: str | None = None
    scope: str | None = None  # the scoped model's display name (or id), e.g. "Fable"
    is_active: bool | None = None
    known: bool = True


@dataclass
class ExtraUsage:
    """The ``extra_usage`` block: money in ``currency`` (as reported), utilization in percent, and the switches."""

    is_enabled: bool | None = None
    monthly_limit: float | None = None
    used_credits: float | None = None
    utilization: float | None = None
    currency: str | None = None
    disabled_reason: str | None = None
    user_disabled: bool | None = None
    spend_limit_reached: bool | None = None
    credits_ever_enabled: bool | None = None
    currency_note: str = ""


@dataclass
class UsageReading:
    """Everything one usage body said: windows, limits, extra usage, the known keys the kit does not read (verbatim),
    and what the kit has never seen (``unknown``, also flagged on the observation)."""

    windows: list[UsageWindow] = field(default_factory=list)
    limits: list[UsageLimit] = field(default_factory=list)
    extra_usage: ExtraUsage | None = None
    opaque: dict[str, Any] = field(default_factory=dict)
    unknown: list[Unknown] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the unknown items as ``{"kind", "name", "value"}``)."""
        d = asdict(self)
        d["unknown"] = [u.to_dict() for u in self.unknown]
        return d

    def to_frame(self):  # -> pandas.DataFrame
        """One row per value: ``section``, ``name``, ``field``, ``value``, ``unit`` (percent of the window, a currency,
        or blank) and ``note`` (how sure the unit is); unknown keys come last with section ``new to this kit`` and
        their verbatim value."""
        import pandas as pd

        rows: list[tuple[str, str, str, Any, str, str]] = []
        for w in self.windows:
            section = "window" if w.known else "new to this kit"
            rows.append((section, w.name, "utilization", w.utilization, PERCENT, ""))
            rows.append((section, w.name, "resets_at", w.resets_at, "", ""))
            for f in ("limit_dollars", "used_dollars", "remaining_dollars"):
                if getattr(w, f) is not None:
                    rows.append((section, w.name, f, getattr(w, f), w.currency or "", w.currency_note))
        for i, lim in enumerate(self.limits):
            name = f"limits[{i}] {lim.kind}" + (f" ({lim.scope})" if lim.scope else "")
            rows.append(("limit", name, "percent", lim.percent, PERCENT, ""))
            rows.append(("limit", name, "resets_at", lim.resets_at, "", ""))
            rows.append(("limit", name, "is_active", lim.is_active, "", ""))
        if self.extra_usage is not None:
            e = self.extra_usage
            for f in ("is_enabled", "disabled_reason", "user_disabled", "spend_limit_reached", "credits_ever_enabled"):
                rows.append(("extra_usage", "extra_usage", f, getattr(e, f), "", ""))
            for f in ("monthly_limit", "used_credits"):
                rows.append(("extra_usage", "extra_usage", f, getattr(e, f), e.currency or "currency not reported",
                             e.currency_note))
            rows.append(("extra_usage", "extra_usage", "utilization", e.utilization, "% of monthly limit", ""))
        for u in self.unknown:
            rows.append(("new to this kit", u.name, "", u.value, "", "verbatim; not in data/usage_fields.toml"))
        return pd.DataFrame(rows, columns=["section", "name", "field", "value", "unit", "note"])


def _extra_fields(obj: Mapping[str, Any], spec: ObjectSpec, where: str, out: list[Unknown]) -> None:
    for k, v in obj.items():
        if k not in spec.fields:
            out.append(Unknown.of(KIND_FIELD, f"{where}.{k}", v))


def _window(name: str, value: Any, key: KeySpec | None, shape: UsageShape, out: list[Unknown]) -> UsageWindow:
    spec = shape.obj("window")
    v = value if isinstance(value, Mapping) else {}
    if key is not None:
        _extra_fields(v, spec, name, out)
    w = UsageWindow(name=name, utilization=_num(v.get("utilization")), resets_at=_str(v.get("resets_at")),
                    label=key.label if key else "new to this kit", limit_dollars=_num(v.get("limit_dollars")),
                    used_dollars=_num(v.get("used_dollars")), remaining_dollars=_num(v.get("remaining_dollars")),
                    codename=bool(key and key.codename), known=key is not None)
    if w.has_money:
        w.currency, w.currency_note = spec.currency, spec.currency_note
    return w


def _limit(i: int, entry: Any, shape: UsageShape, out: list[Unknown]) -> UsageLimit | None:
    where = f"limits[{i}]"
    if not isinstance(entry, Mapping):
        out.append(Unknown.of(KIND_FIELD, where, entry))
        return None
    spec = shape.obj("limit")
    _extra_fields(entry, spec, where, out)
    kind = _str(entry.get("kind"))
    known = kind in spec.kinds
    if not known:
        out.append(Unknown.of(KIND_FIELD, f"{where}.kind", entry.get("kind")))
    scope_name = None
    scope = entry.get("scope")
    if isinstance(scope, Mapping):
        _extra_fields(scope, shape.obj("limit_scope"), f"{where}.scope", out)
        model = scope.get("model")
        if isinstance(model, Mapping):
            _extra_fields(model, shape.obj("limit_scope_model"), f"{where}.scope.model", out)
            scope_name = _str(model.get("display_name")) or _str(model.get("id"))
    return UsageLimit(kind=kind, percent=_num(entry.get("percent")), resets_at=_str(entry.get("resets_at")),
                      group=_str(entry.get("group")), severity=_str(entry.get("severity")), scope=scope_name,
                      is_active=_bool(entry.get("is_active")), known=known)


def _extra_usage(value: Any, shape: UsageShape, out: list[Unknown]) -> ExtraUsage | None:
    if not isinstance(value, Mapping):
        return None
    spec = shape.obj("extra_usage")
    _extra_fields(value, spec, "extra_usage", out)
    currency = _str(value.get(spec.currency_field or "currency"))
    return ExtraUsage(
        is_enabled=_bool(value.get("is_enabled")), monthly_limit=_num(value.get("monthly_limit")),
        used_credits=_num(value.get("used_credits")), utilization=_num(value.get("utilization")),
        currency=currency, disabled_reason=_str(value.get("disabled_reason")),
        user_disabled=_bool(value.get("user_disabled")), spend_limit_reached=_bool(value.get("spend_limit_reached")),
        credits_ever_enabled=_bool(value.get("credits_ever_enabled")), currency_note=spec.currency_note)


def read_usage(body: Any, shape: UsageShape | None = None) -> UsageReading:
    """Read a usage body (the parsed JSON of ``GET /api/oauth/usage``); never raises, whatever it holds.

    Known window keys (even when null) become :class:`UsageWindow` rows in body order; an unknown key is flagged in
    ``unknown`` with its verbatim value, and also listed as a window (``known=False``) when it looks like one."""
    shape = shape or load_usage_shape()
    out = UsageReading()
    if not isinstance(body, Mapping):
        return out
    for name, value in body.items():
        name = str(name)
        key = shape.keys.get(name)
        if key is None:
            out.unknown.append(Unknown.of(KIND_FIELD, name, value))
            if isinstance(value, Mapping) and ({"utilization", "resets_at"} & value.keys()):
                out.windows.append(_window(name, value, None, shape, out.unknown))
        elif key.kind == "window":
            out.windows.append(_window(name, value, key, shape, out.unknown))
        elif key.kind == "extra_usage":
            out.extra_usage = _extra_usage(value, shape, out.unknown)
        elif key.kind == "limits":
            for i, entry in enumerate(value if isinstance(value, list) else []):
                lim = _limit(i, entry, shape, out.unknown)
                if lim is not None:
                    out.limits.append(lim)
        else:
            out.opaque[name] = value
    return out
