"""The factor catalogue: the ways one request can be varied, read from ``data/factors.toml``.

A factor (user agent, beta set, tools …) has named levels; a level is a transformation kind plus its arguments
(:mod:`lanelab.matrix.transforms`), the public report it comes from, and the parts of the wire request it may change. Every
factor has a baseline level ("as the profile sends it"), which is what one-factor-at-a-time designs start from.

Order: levels are applied in a canonical order (each factor's ``stage``, then its name), so a cell's request never
depends on how its levels were listed. Factors that touch disjoint parts of the request commute anyway (tested); the
stage only matters where parts overlap: tool renames before a forced ``tool_choice``, and the endpoint, which reshapes
the whole body, last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import (
    DataFileError,
    Either,
    MapOf,
    OneOf,
    Str,
    Table,
    key_path,
    load_cached,
    read_toml,
    validate,
)
from lanelab.errors import NotFound, UserError
from lanelab.matrix import transforms
from lanelab.matrix.transforms import TransformContext
from lanelab.wire.spec import AUTH_STYLES, RequestSpec

__all__ = ["PROFILE_LEVEL", "Factor", "Level", "UnknownFactor", "apply_level", "apply_levels",
           "baseline_levels", "canonical_order", "context_for", "factors_path", "identity_texts",
           "load_factors", "resolve", "with_credentials"]

#: A level name reserved for "as the profile sends it".
PROFILE_LEVEL = "profile"


class UnknownFactor(NotFound):
    """A factor or level name that the catalogue does not have."""


@dataclass(frozen=True)
class Level:
    """One way to set a factor. ``changes`` names the wire parts it may alter (``url.path``, ``headers.x-app``,
    ``body.tools`` …); the tests hold every level to it."""

    name: str
    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    changes: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Factor:
    """A named dimension of variation with its levels (in data order) and its baseline level."""

    name: str
    description: str
    levels: dict[str, Level]
    baseline: str = PROFILE_LEVEL
    stage: int = 50
    spend_key: str | None = None  # the body key whose minimal-spend default this factor can override

    def level(self, name: str) -> Level:
        try:
            return self.levels[name]
        except KeyError:
            raise UnknownFactor(
                f"Factor {self.name!r} has no level {name!r}.",
                hint=f"Known levels: {', '.join(self.levels)}.",
            ) from None

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{lv.name}{' (baseline)' if lv.name == self.baseline else ''}</td><td>{lv.kind}</td>"
            f"<td>{lv.source}</td></tr>"
            for lv in self.levels.values()
        )
        return (f"<b>{self.name}</b>: {self.description}<table><tr><th>level</th><th>kind</th><th>source</th></tr>"
                f"{rows}</table>")


def factors_path() -> Path:
    return data_file("factors.toml")


#: The shape of data/factors.toml (see lanelab.datafiles for the vocabulary).
SCHEMA = Table({
    "identity?": Table({"texts?": [str]}),
    "factors": MapOf(Table({
        "description?": str,
        "stage?": int,
        "baseline?": Str(nonempty=True),
        "spend_key?": str,
        "levels": MapOf(Table({"kind": Str(nonempty=True), "args?": Table({}), "source": str, "changes": [str],
                               "description?": str}), nonempty=True),
    })),
})

#: The arguments each transformation kind takes (kinds not listed here take any table).
LEVEL_ARGS = {
    "keep": Table({}),
    "header": Table({"name": Str(nonempty=True), "value?": Either(str, int, float, bool)}),
    "auth": Table({"style": OneOf(*AUTH_STYLES)}),
    "credential": Table({"label": Str(nonempty=True)}),
    "betas": Table({"base?": Either(OneOf("none", "current", "profile"), [str]), "remove?": [str], "add?": [str]}),
    "identity": Table({"on?": bool, "text?": Str(nonempty=True), "cache_control?": Table({})}),
    "system_extra": Table({"text?": str}),
    "tools": Table({"mode": OneOf("remove", "rename", "replace"), "strip?": [str], "prefix?": str,
                    "tools?": [Table({"name": Str(nonempty=True)})]}),
    "tool_choice": Table({"choice": Str(nonempty=True)}),
    "body_set": Table({"key": Str(nonempty=True), "value?": object}),
    "body_from_profile": Table({"key": Str(nonempty=True)}),
    "endpoint": Table({"path": Str(pattern=r"/.*", meaning="a path starting with /"),
                       "query?": MapOf(Either(str, int, float, bool)), "keep_body_keys?": [str],
                       "body_shape?": OneOf("openai")}),
}


def _parse(path: Path) -> dict[str, Any]:
    return read_toml(path, "factor catalogue", schema=SCHEMA)


def _read(path: Path | None = None, fresh: bool = True) -> dict[str, Any]:
    """The parsed catalogue file; ``fresh=False`` returns the shared cached parse (callers must not modify it)."""
    path = path or factors_path()
    if fresh:
        return _parse(path)
    return load_cached(path, _parse, "factor catalogue")


def _check_args(path: Path, fname: str, lname: str, kind: str, args: Mapping[str, Any]) -> None:
    """A level's ``args`` match its kind (a missing or wrong argument would fail only when a cell is built)."""
    where, at = f"The factor catalogue at {path}", key_path("factors", fname, "levels", lname, "args")
    schema = LEVEL_ARGS.get(kind)
    if schema is not None:
        validate(args, schema, where, DataFileError, at=at)
    if kind == "identity" and args.get("on") and not args.get("text"):
        raise DataFileError(f"{where}: {at}: an identity level with on = true needs text.")
    if kind == "tools" and args.get("mode") == "replace" and not args.get("tools"):
        raise DataFileError(f"{where}: {at}: mode = \"replace\" needs a non-empty tools list.")


def load_factors(path: Path | None = None) -> dict[str, Factor]:
    """The catalogue, in data order. Each level must name a known kind, its source and its expected changes."""
    path = path or factors_path()
    raw = _read(path)
    known_kinds = set(transforms.kinds())
    catalog: dict[str, Factor] = {}
    for fname, fdata in raw.get("factors", {}).items():
        levels: dict[str, Level] = {}
        for lname, ldata in fdata.get("levels", {}).items():
            kind = ldata.get("kind")
            if kind not in known_kinds:
                raise DataFileError(f"The factor catalogue at {path}: {key_path('factors', fname, 'levels', lname)} "
                                    f"has kind {kind!r}, which lanelab.matrix.transforms does not know.",
                                    hint=f"Use one of: {', '.join(sorted(known_kinds))}.")
            _check_args(path, fname, lname, kind, ldata.get("args", {}))
            levels[lname] = Level(
                name=lname, kind=kind, args=dict(ldata.get("args", {})), source=str(ldata["source"]),
                changes=tuple(ldata["changes"]), description=str(ldata.get("description", "")),
            )
        baseline = fdata.get("baseline", PROFILE_LEVEL)
        if baseline not in levels:
            raise DataFileError(f"The factor catalogue at {path}: factor {fname!r} names baseline {baseline!r}, "
                                "which is not one of its levels.")
        catalog[fname] = Factor(name=fname, description=str(fdata.get("description", "")), levels=levels,
                                baseline=baseline, stage=int(fdata.get("stage", 50)),
                                spend_key=fdata.get("spend_key"))
    return catalog


def identity_texts(path: Path | None = None) -> tuple[str, ...]:
    """The system texts that count as an identity block (so other levels can tell it from further blocks)."""
    return tuple(_read(path, fresh=False).get("identity", {}).get("texts", ()))


def context_for(profile_spec: RequestSpec, path: Path | None = None) -> TransformContext:
    """The context levels are applied in: the profile's original spec plus the identity texts from data."""
    return TransformContext(profile=transforms.apply(profile_spec, "keep", {}, TransformContext()),
                            identity_texts=identity_texts(path))


def with_credentials(catalog: Mapping[str, Factor], labels: Iterable[str],
                     factor: str = "credential") -> dict[str, Factor]:
    """The catalogue with one level per credential label added to the credential factor (labels are only known at
    design time: whatever the user saved or imported)."""
    out = dict(catalog)
    base = out.get(factor)
    if base is None:
        raise UnknownFactor(f"The catalogue has no {factor!r} factor.", hint="Check data/factors.toml.")
    levels = dict(base.levels)
    for label in labels:
        if label in levels:
            raise UserError(f"Credential label {label!r} clashes with a level of the same name.",
                            hint="Rename the credential (lanelab credentials) and try again.")
        levels[label] = Level(name=label, kind="credential", args={"label": label},
                              source="credential label supplied at design time",
                              changes=("headers.authorization", "headers.x-api-key"))
    out[factor] = replace(base, levels=levels)
    return out


def resolve(catalog: Mapping[str, Factor], factor: str, level: str) -> Level:
    """``catalog[factor].levels[level]``, with a message naming the known ones when either is unknown."""
    if factor not in catalog:
        raise UnknownFactor(f"No factor {factor!r}.", hint=f"Known factors: {', '.join(catalog)}.")
    return catalog[factor].level(level)


def apply_level(spec: RequestSpec, level: Level, context: TransformContext | RequestSpec) -> RequestSpec:
    """A new spec with ``level`` applied (pure). ``context`` may be a bare profile spec for convenience."""
    if isinstance(context, RequestSpec):
        context = context_for(context)
    return transforms.apply(spec, level.kind, level.args, context)


def canonical_order(catalog: Mapping[str, Factor], names: Iterable[str]) -> list[str]:
    """Factor names in the order their levels are applied: by stage, then by name."""
    return sorted(names, key=lambda n: (catalog[n].stage, n))


def apply_levels(spec: RequestSpec, levels: Mapping[str, str], catalog: Mapping[str, Factor],
                 context: TransformContext | RequestSpec) -> RequestSpec:
    """Apply a cell's ``{factor: level}`` choices in canonical order."""
    if isinstance(context, RequestSpec):
        context = context_for(context)
    for name in canonical_order(catalog, [n for n in levels if _known(catalog, n)]):
        spec = apply_level(spec, resolve(catalog, name, levels[name]), context)
    return spec


def _known(catalog: Mapping[str, Factor], name: str) -> bool:
    if name not in catalog:
        raise UnknownFactor(f"No factor {name!r}.", hint=f"Known factors: {', '.join(catalog)}.")
    return True


def baseline_levels(catalog: Mapping[str, Factor], names: Iterable[str] | None = None) -> dict[str, str]:
    """``{factor: baseline level}`` for the chosen factors (all when ``names`` is None)."""
    names = list(catalog) if names is None else list(names)
    return {n: catalog[n].baseline for n in names if _known(catalog, n)}

