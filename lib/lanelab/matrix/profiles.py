"""Named client shapes: what one client version really sends, as data in ``data/profiles/<name>.toml``.

A profile is the starting point of every matrix: the request as the client sent it, which factor levels then vary.
Profiles hold no secret (no token, no credential label; the auth *style* only) and name the public reports they are
built from. A profile may ``extends = "other"``: tables merge key by key, lists and strings replace.

Profiles captured from real clients (``tools/capture_profiles.py``, ``make profiles``) also carry a ``[capture]``
table: client, version, capture date, the exact command and the capture method, plus what a request spec cannot hold
(header order, every value of a repeated header, the body's key order, the client's other requests). Two more keys:

- ``reference_only = true`` (with ``reference_reason``): a first-party client's request (Claude Code), kept as a
  reference for diffs and lints. :func:`ensure_sendable` refuses it, and a profile extending it inherits the flag.
- a billing attestation block is stored only as the marker
  (:data:`lanelab.wire.attestation.ATTESTATION_MARKER`) where the client sent it; ``Profile.spec`` is the request
  without it (what the kit sends), :meth:`Profile.as_captured` the one with the marker (for diffs and lints), and
  :attr:`Profile.caveats` says that findings are for the request without the block. A profile holding anything else
  after the attestation prefix is refused as bad.

Spending: :func:`minimal_spend` turns an inference request into the cheapest one with the same shape (``max_tokens``
1, no streaming). The runner applies it to every built cell spec in live mode, *after* the factor levels, and leaves
alone whatever a cell's levels chose on purpose (a non-baseline level of a factor whose ``spend_key`` is
``max_tokens`` or ``stream``). Cell ids come from the levels, so they do not depend on it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab import redact
from lanelab.config import data_dir
from lanelab.datafiles import DataFileError, Either, MapOf, OneOf, Str, Table, read_toml
from lanelab.errors import NotFound, Refused
from lanelab.wire.spec import AUTH_STYLES, RequestSpec

#: The inference body keys that cost money, and their cheapest setting (None: remove the key).
MINIMAL_SPEND: dict[str, Any] = {"max_tokens": 1, "stream": None}


class UnknownProfile(NotFound):
    """A profile name with no file under data/profiles/."""


class BadProfile(DataFileError):
    """A profile file that cannot be used (invalid TOML, a secret inside, a missing field)."""


class ReferenceOnlyProfile(Refused):
    """A first-party client's profile (``reference_only``): for diffs and lints, never sent."""


@dataclass(frozen=True)
class Profile:
    """A named request shape with its description, its public sources and the spec itself."""

    name: str
    description: str
    sources: tuple[str, ...]
    spec: RequestSpec
    notes: str = ""
    extends: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    reference_only: bool = False
    reference_reason: str = ""
    #: Where the client sent a billing attestation block (system block indexes); the kit sends the spec without it.
    attestation_positions: tuple[int, ...] = ()
    captured_spec: RequestSpec | None = field(default=None, repr=False, compare=False)

    @property
    def capture(self) -> Mapping[str, Any]:
        """The ``[capture]`` table (client, version, date, command, method, …), empty for a hand-written profile."""
        table = self.data.get("capture")
        return table if isinstance(table, Mapping) else {}

    def as_captured(self) -> RequestSpec:
        """The request as the client sent it, with the attestation marker in place (diffs and lints; never sent)."""
        return (self.captured_spec or self.spec).copy()

    @property
    def caveats(self) -> list[str]:
        """What findings for this profile must say about it (empty for most profiles)."""
        out = []
        if self.reference_only:
            out.append(f"{self.name} is a first-party reference for diffs and lints; the kit never sends it.")
        if self.attestation_positions:
            out.append(f"{self.name}: the client sends a billing attestation block (system"
                       f"{list(self.attestation_positions)}); the kit never stores or sends it, so findings for this "
                       "profile are for the request without the block.")
        for header, values in (self.capture.get("repeated_headers") or {}).items():
            out.append(f"{self.name}: the client sends {header} {len(values)} times ({' then '.join(map(repr, values))});"
                       f" the kit sends one ({self.spec.headers.get(header)!r}).")
        return out

    def _repr_html_(self) -> str:
        body = self.spec.body if isinstance(self.spec.body, dict) else {}
        tools = [t.get("name") for t in body.get("tools", [])]
        rows = [
            ("request", f"{self.spec.method} {self.spec.target}"),
            ("auth", self.spec.auth),
            *((k, v) for k, v in self.spec.headers.items()),
            ("model", body.get("model")),
            ("system blocks", len(body.get("system", []) or [])),
            ("tools", f"{len(tools)}: {', '.join(map(str, tools[:6]))}{' …' if len(tools) > 6 else ''}"),
            ("sources", "; ".join(self.sources)),
        ]
        if self.capture:
            captured = (f"{self.capture.get('client')} {self.capture.get('version')} on {self.capture.get('date')}: "
                        f"{self.capture.get('command')}")
            rows.append(("captured", captured))
        rows += [("caveat", c) for c in self.caveats]
        cells = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{_html(v)}</td></tr>" for k, v in rows)
        return f"<b>{self.name}</b>: {_html(self.description)}<table>{cells}</table>"


def _html(value: Any) -> str:
    import html

    return html.escape(redact.redact_text(str(value)))


_SCALAR = Either(str, int, float, bool)

#: The shape of a profile file (see lanelab.datafiles for the vocabulary); ``load_profile`` adds the semantic checks
#: (a source, no secret, no attestation value, no extends cycle).
SCHEMA = Table({
    "name?": Str(nonempty=True),
    "description?": str,
    "sources?": [str],
    "notes?": str,
    "extends?": Str(pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*", meaning="a profile name"),
    "reference_only?": bool,
    "reference_reason?": str,
    "request?": Table({
        "method?": Str(nonempty=True),
        "path?": Str(pattern=r"/.*", meaning="a path starting with /"),
        "query?": MapOf(_SCALAR),
        "headers?": MapOf(_SCALAR),
        "auth?": OneOf(*AUTH_STYLES),
        "body?": Table({"system?": Either(str, [Table({})]), "messages?": [Table({})],
                        "tools?": [Table({"name?": str})]}),
    }),
    "capture?": Table({"file?": str, "body_key_order?": [str], "repeated_headers?": MapOf([str])}),
})


def profiles_dir() -> Path:
    return data_dir() / "profiles"


def list_profiles() -> list[str]:
    """The names of the profiles under data/profiles/, sorted."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _read(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = profiles_dir() / f"{name}.toml"
    if not path.is_file():
        raise UnknownProfile(f"No profile named {name!r}.",
                             hint=f"Known profiles: {', '.join(list_profiles()) or 'none'} (in {profiles_dir()}).")
    raw = read_toml(path, f"profile {name!r}", error=BadProfile, schema=SCHEMA)
    parent = raw.get("extends")
    if parent:
        if parent in seen:
            raise BadProfile(f"Profile {name!r} extends itself through {' → '.join(seen)}.",
                             hint="Break the cycle.")
        base = _read(parent, (*seen, name))
        raw = {**_merge({"request": base.get("request", {})}, {"request": raw.get("request", {})}),
               **{k: v for k, v in raw.items() if k != "request"}}
        if base.get("reference_only"):  # extending a first-party reference does not make it sendable
            raw["reference_only"] = True
            raw["reference_reason"] = base.get("reference_reason", "")
    return raw


def _check_clean(name: str, request: Mapping[str, Any]) -> None:
    if request.get("credential") is not None:
        raise BadProfile(f"Profile {name!r} names a credential.",
                         hint="Profiles carry no credential; choose one at run time (the credential factor).")
    leaks = redact.find_secrets(json.dumps(request, ensure_ascii=False))
    sensitive = [h for h in request.get("headers", {}) if redact.is_sensitive_key(h)]
    if leaks or sensitive:
        raise BadProfile(f"Profile {name!r} contains a secret ({', '.join(leaks + sensitive)}).",
                         hint="Remove it; a token is attached only at send time.")
    from lanelab.wire.attestation import holds_attestation_value  # at call time: keeps matrix light

    if holds_attestation_value(json.dumps(request, ensure_ascii=False)):
        raise BadProfile(f"Profile {name!r} holds a billing attestation value.",
                         hint="The kit never stores or sends one: put the marker from "
                              "lanelab.wire.attestation.ATTESTATION_MARKER in its place.")


def _in_order(body: Any, order: Any) -> Any:
    """``body`` with its top-level keys in the captured order (keys not in ``order`` keep theirs, after them)."""
    if not isinstance(body, dict) or not isinstance(order, list):
        return body
    return {**{k: body[k] for k in order if k in body}, **{k: v for k, v in body.items() if k not in order}}


def load_profile(name: str) -> Profile:
    """The named profile, validated: a known auth style, lower-case headers, no secret, at least one source."""
    raw = _read(name)
    request = dict(raw.get("request", {}))
    _check_clean(name, request)
    sources = tuple(raw.get("sources", ()))
    if not sources:
        raise BadProfile(f"Profile {name!r} names no source.", hint="Add sources = [\"…\"] naming public reports.")
    capture = c if isinstance(c := raw.get("capture"), dict) else {}
    captured = RequestSpec(
        method=str(request.get("method", "POST")).upper(),
        path=str(request.get("path", "/v1/messages")),
        query={str(k): str(v) for k, v in request.get("query", {}).items()},
        headers={str(k).lower(): str(v) for k, v in request.get("headers", {}).items()},
        body=_in_order(copy.deepcopy(request.get("body")), capture.get("body_key_order")),
        auth=str(request.get("auth", "bearer")),
        credential=None,
    )
    from lanelab.wire.attestation import attestation_positions, without_attestation

    positions = tuple(attestation_positions(captured))
    spec = without_attestation(captured)[0] if positions else captured
    return Profile(name=str(raw.get("name", name)), description=str(raw.get("description", "")).strip(),
                   sources=sources, spec=spec, notes=str(raw.get("notes", "")).strip(),
                   extends=raw.get("extends"), data=raw, reference_only=bool(raw.get("reference_only", False)),
                   reference_reason=str(raw.get("reference_reason", "")), attestation_positions=positions,
                   captured_spec=captured if positions else None)


def ensure_sendable(profile: Profile | str) -> Profile:
    """The profile (loaded when given a name) when the kit may send it; :class:`ReferenceOnlyProfile` otherwise.

    Every path that sends a profile's request (the matrix runner, bisect, live probes) calls this first.
    """
    if isinstance(profile, str):
        profile = load_profile(profile)
    if profile.reference_only:
        raise reference_refusal(profile.name)
    return profile


def reference_refusal(name: str) -> ReferenceOnlyProfile:
    """The error for sending the reference-only profile (or its capture) ``name``."""
    return ReferenceOnlyProfile(f"{name} is a first-party reference for diffs and lints; the kit never sends it.",
                                hint=f"Diff against it (python -m lanelab diff OTHER {name}); run the matrix or "
                                     "bisect from a third-party client's profile.")


def reference_for_capture(path: str | Path) -> str | None:
    """The name of the reference-only profile converted from the capture file ``path``, if there is one."""
    target = Path(path).resolve()
    for name in list_profiles():
        raw = read_toml(profiles_dir() / f"{name}.toml", f"profile {name!r}", error=BadProfile, schema=SCHEMA)
        capture = c if isinstance(c := raw.get("capture"), dict) else {}
        stored = capture.get("file")  # relative to the folder holding data/ (the repo)
        if raw.get("reference_only") and stored and (data_dir().parent / str(stored)).resolve() == target:
            return name
    return None


def load_profiles(names: list[str] | None = None) -> dict[str, Profile]:
    """``{name: Profile}`` for the given names (all when None), the mapping ``designs.build_spec`` takes."""
    return {n: load_profile(n) for n in (list_profiles() if names is None else names)}


def minimal_spend(spec: RequestSpec, levels: Mapping[str, str] | None = None,
                  catalog: Mapping[str, Any] | None = None) -> RequestSpec:
    """The cheapest request with the same shape: ``max_tokens`` 1 and no ``stream`` key, for inference requests only.

    A body key is left alone when a cell chose it on purpose: ``levels`` (the cell's ``{factor: level}``) holds a
    non-baseline level of a factor in ``catalog`` whose ``spend_key`` is that key. Pure: returns a new spec.
    """
    out = spec.copy()
    if not out.is_inference or not isinstance(out.body, dict):
        return out
    chosen: set[str] = set()
    for fname, level in (levels or {}).items():
        factor = (catalog or {}).get(fname)
        if factor is not None and factor.spend_key and level != factor.baseline:
            chosen.add(factor.spend_key)
    for key, value in MINIMAL_SPEND.items():
        if key in chosen:
            continue
        if value is None:
            out.body.pop(key, None)
        else:
            out.body[key] = value
    return out
