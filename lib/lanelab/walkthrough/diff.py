"""A structural diff of two requests, so a maintainer sees what differs on the wire and which differences matter.

Each difference is an atomic edit with a location inside a :class:`RequestSpec` (a header, a query parameter, a
system block, one field of one tool, a top-level body field). :func:`apply_differences` moves any subset of them from
one side to the other, which is what :mod:`lanelab.walkthrough.bisect` needs. Rows are annotated from
``data/diff_annotations.toml`` with what public reports say about that kind of difference, and their sources.

The kit only *reports* whether a request carries Claude Code's billing attestation block; it never writes one, and the
table never shows one's content.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pandas as pd

from lanelab import redact
from lanelab.config import data_dir
from lanelab.datafiles import ListOf, Str, Table, read_toml
from lanelab.wire.spec import RequestSpec

__all__ = ["ATTESTATION_PREFIX", "MISSING", "SHOW_CHARS", "Annotation", "Difference", "Loc", "SpecDiff",
           "apply_differences", "carries_attestation", "diff_specs", "differences", "is_attestation",
           "load_annotations", "show"]

#: The prefix of a system text block that is a billing attestation (references/hermes.md F7). Detection only.
ATTESTATION_PREFIX = "x-anthropic-billing-header:"
#: Longest value shown in a table cell.
SHOW_CHARS = 90


class _Missing:
    """Stands for "absent on this side" (distinct from a JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> Self:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __deepcopy__(self, memo: dict) -> _Missing:
        return self


MISSING: Any = _Missing()

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class Annotation:
    """What public reports say about one kind of difference."""

    id: str
    part: str
    key: str
    note: str
    source: str
    confidence: str = ""
    value_pattern: str | None = None

    def matches(self, diff: Difference) -> bool:
        if self.part != "*" and self.part != diff.part:
            return False
        if not re.fullmatch(re.escape(self.key).replace(r"\*", ".*"), diff.key):
            return False
        if self.value_pattern is None:
            return True
        pattern = re.compile(self.value_pattern)
        return any(v is not MISSING and pattern.search(_text_of(v)) for v in (diff.a, diff.b))


@dataclass(frozen=True)
class Difference:
    """One atomic difference: the value at ``loc`` is ``a`` in the first request and ``b`` in the second."""

    part: str
    key: str
    loc: Loc
    a: Any
    b: Any
    annotations: tuple[Annotation, ...] = ()

    @property
    def change(self) -> str:
        if self.a is MISSING:
            return "added"
        if self.b is MISSING:
            return "removed"
        return "changed"

    @property
    def label(self) -> str:
        return f"{self.part}: {self.key}"

    def __repr__(self) -> str:
        return f"<Difference {self.label} ({self.change})>"


def is_attestation(block: Any) -> bool:
    """True for a system block (or string) that is a billing attestation line."""
    text = block.get("text") if isinstance(block, dict) else block
    return isinstance(text, str) and text.lstrip().lower().startswith(ATTESTATION_PREFIX)


def carries_attestation(spec: RequestSpec) -> bool:
    """Whether ``spec`` carries a billing attestation block in its system prompt (reported, never generated)."""
    body = spec.body if isinstance(spec.body, dict) else {}
    system = body.get("system")
    if isinstance(system, list):
        return any(is_attestation(b) for b in system)
    return is_attestation(system)


#: The shape of data/diff_annotations.toml (see lanelab.datafiles for the vocabulary).
ANNOTATIONS_SCHEMA = Table({"annotation": ListOf(Table({
    "id": Str(nonempty=True), "part?": Str(nonempty=True), "key?": Str(nonempty=True), "note": Str(nonempty=True),
    "source": Str(nonempty=True), "confidence?": str, "value_pattern?": Str(regex=True)}), nonempty=True)})


def load_annotations(path: Path | None = None) -> list[Annotation]:
    """The annotation catalog (``data/diff_annotations.toml``); every entry names its public source.

    Raises :class:`~lanelab.datafiles.DataFileError` naming the key and the expected type for a malformed file."""
    path = path or data_dir() / "diff_annotations.toml"
    raw = read_toml(path, "diff annotations", schema=ANNOTATIONS_SCHEMA)
    out = []
    for entry in raw.get("annotation", []):
        out.append(Annotation(
            id=entry["id"], part=entry.get("part", "*"), key=entry.get("key", "*"), note=entry["note"],
            source=entry["source"], confidence=entry.get("confidence", ""), value_pattern=entry.get("value_pattern"),
        ))
    return out


# --- computing differences ---------------------------------------------------------------------------------------

_REQUEST_FIELDS = ("method", "path", "auth")


def _dict_diffs(part: str, prefix: Loc, a: dict, b: dict, key_fmt: str = "{k}") -> Iterator[Difference]:
    for k in sorted(set(a) | set(b), key=str):
        va, vb = a.get(k, MISSING), b.get(k, MISSING)
        if va != vb:
            yield Difference(part, key_fmt.format(k=k), (*prefix, k), va, vb)


def _list_diffs(part: str, name: str, loc: Loc, a: list, b: list, split_fields: bool) -> Iterator[Difference]:
    """Index-aligned element differences; with ``split_fields``, dict elements on both sides differ per field."""
    for i in range(max(len(a), len(b))):
        va = a[i] if i < len(a) else MISSING
        vb = b[i] if i < len(b) else MISSING
        if va == vb:
            continue
        if split_fields and isinstance(va, dict) and isinstance(vb, dict):
            yield from _dict_diffs(part, (*loc, i), va, vb, key_fmt=f"{name}[{i}].{{k}}")
        else:
            yield Difference(part, f"{name}[{i}]", (*loc, i), va, vb)


def _body_diffs(a: Any, b: Any) -> Iterator[Difference]:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        if a != b:
            yield Difference("body", "body", ("body",), MISSING if a is None else a, MISSING if b is None else b)
        return
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, MISSING), b.get(k, MISSING)
        if va == vb:
            continue
        if k == "system" and isinstance(va, list) and isinstance(vb, list):
            yield from _list_diffs("system", "system", ("body", "system"), va, vb, split_fields=False)
        elif k == "tools" and isinstance(va, list) and isinstance(vb, list):
            yield from _list_diffs("tools", "tools", ("body", "tools"), va, vb, split_fields=True)
        elif k == "messages" and isinstance(va, list) and isinstance(vb, list):
            yield from _list_diffs("messages", "messages", ("body", "messages"), va, vb, split_fields=False)
        else:
            part = {"system": "system", "tools": "tools", "messages": "messages"}.get(k, "body")
            yield Difference(part, k, ("body", k), va, vb)


def differences(a: RequestSpec, b: RequestSpec) -> list[Difference]:
    """The atomic differences between two specs, in a stable order (request line, query, headers, body)."""
    out: list[Difference] = []
    for name in _REQUEST_FIELDS:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out.append(Difference("request", name, (name,), va, vb))
    out.extend(_dict_diffs("query", ("query",), a.query or {}, b.query or {}))
    lower_a = {k.lower(): v for k, v in (a.headers or {}).items()}
    lower_b = {k.lower(): v for k, v in (b.headers or {}).items()}
    out.extend(_dict_diffs("header", ("headers",), lower_a, lower_b))
    out.extend(_body_diffs(a.body, b.body))
    return out


# --- applying differences ----------------------------------------------------------------------------------------

def _purge(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_purge(v) for v in obj if v is not MISSING]
    if isinstance(obj, dict):
        return {k: _purge(v) for k, v in obj.items() if v is not MISSING}
    return obj


def _set(root: dict, loc: Loc, value: Any) -> None:
    node: Any = root
    for step in loc[:-1]:
        node = node[step]
    last = loc[-1]
    if isinstance(node, list):
        while len(node) <= last:
            node.append(MISSING)
        node[last] = value
    else:
        node[last] = value


def apply_differences(spec: RequestSpec, diffs: Iterable[Difference], side: str = "b") -> RequestSpec:
    """A copy of ``spec`` with each difference's location set to its ``side`` value ("a" or "b").

    Applied to the first spec of :func:`differences`, all of them give the second, none of them the first, and any
    subset a request in between; list elements keep their order.
    """
    if side not in ("a", "b"):
        raise ValueError("side must be 'a' or 'b'")
    d = {"method": spec.method, "path": spec.path, "auth": spec.auth, "query": dict(spec.query or {}),
         "headers": {k.lower(): v for k, v in (spec.headers or {}).items()}, "body": spec.copy().body}
    for diff in diffs:
        value = diff.b if side == "b" else diff.a
        if diff.loc == ("body",):
            d["body"] = None if value is MISSING else value
            continue
        if diff.loc[0] == "body" and not isinstance(d["body"], dict):
            d["body"] = {}
        _set(d, diff.loc, json.loads(json.dumps(value)) if value is not MISSING else MISSING)
    d = {k: (_purge(v) if k in ("query", "headers", "body") else v) for k, v in d.items()}
    return RequestSpec(method=d["method"], path=d["path"], query=d["query"], headers=d["headers"], body=d["body"],
                       auth=d["auth"], credential=spec.credential)


# --- presentation ------------------------------------------------------------------------------------------------

def _text_of(value: Any) -> str:
    """The text an annotation pattern is matched against: a block's text, a tool's name, else compact JSON."""
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return value["text"]
    return _flat(value)


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def show(value: Any, limit: int = SHOW_CHARS) -> str:
    """A short, redacted rendering of a value for a table cell; attestation blocks are described, never shown."""
    if value is MISSING:
        return "—"
    if is_attestation(value):
        text = value.get("text") if isinstance(value, dict) else value
        return f"[billing attestation block, {len(text)} chars, not shown]"
    if isinstance(value, dict) and value.get("type") == "text" and isinstance(value.get("text"), str):
        extra = " +cache_control" if "cache_control" in value else ""
        text = value["text"]
        body = text if len(text) <= limit else text[: limit - 1] + "…"
        return redact.redact_text(f"{body!r} ({len(text)} chars{extra})")
    if isinstance(value, list) and value and all(isinstance(t, dict) and "name" in t for t in value):
        names = ", ".join(str(t["name"]) for t in value)
        names = names if len(names) <= limit else names[: limit - 1] + "…"
        return redact.redact_text(f"{len(value)} tool(s): {names}")
    if isinstance(value, dict) and "name" in value:
        return redact.redact_text(f"tool {value['name']!r} ({len(_flat(value))} chars)")
    text = _flat(value)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return redact.redact_text(text)


@dataclass
class SpecDiff:
    """The differences between two requests, with annotations and attestation flags; renders as a table."""

    a_label: str
    b_label: str
    rows: list[Difference] = field(default_factory=list)
    a_attestation: bool = False
    b_attestation: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Difference]:
        return iter(self.rows)

    def keys(self) -> list[str]:
        return [d.label for d in self.rows]

    def find(self, part: str, key: str) -> Difference | None:
        return next((d for d in self.rows if d.part == part and d.key == key), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per difference: part, field, kind of change, both values, what reports say, their sources."""
        records = []
        for d in self.rows:
            records.append({
                "part": d.part, "field": d.key, "change": d.change,
                self.a_label: show(d.a), self.b_label: show(d.b),
                "what reports say": " · ".join(f"{an.note} [{an.confidence}]" if an.confidence else an.note
                                               for an in d.annotations),
                "sources": "; ".join(an.source for an in d.annotations),
            })
        cols = ["part", "field", "change", self.a_label, self.b_label, "what reports say", "sources"]
        return pd.DataFrame.from_records(records, columns=cols)

    def attestation_summary(self) -> str:
        def say(label: str, flag: bool) -> str:
            return f"{label} {'carries' if flag else 'does not carry'} a billing attestation block"
        return f"{say(self.a_label, self.a_attestation)}; {say(self.b_label, self.b_attestation)}."

    def to_markdown(self) -> str:
        return f"{self.attestation_summary()}\n\n{self.to_frame().to_markdown(index=False)}"

    def _repr_html_(self) -> str:
        head = (f"<p><b>{html.escape(self.a_label)}</b> vs <b>{html.escape(self.b_label)}</b>: "
                f"{len(self.rows)} difference(s). {html.escape(self.attestation_summary())}</p>")
        return redact.redact_text(head + self.to_frame().to_html(index=False, escape=True))

    def __repr__(self) -> str:
        return f"<SpecDiff {self.a_label} vs {self.b_label}: {len(self.rows)} difference(s)>"


def diff_specs(a: RequestSpec, b: RequestSpec, a_label: str = "A", b_label: str = "B",
               annotations: Sequence[Annotation] | None = None) -> SpecDiff:
    """Structural diff of two requests, each difference annotated from ``data/diff_annotations.toml``.

    Returns a :class:`SpecDiff` (renders as a table in a notebook; ``to_frame()``, ``to_markdown()``). Raises
    :class:`lanelab.datafiles.DataFileError` when the annotation catalog cannot be read.
    """
    if a_label == b_label:
        b_label = b_label + " (2)"
    catalog = load_annotations() if annotations is None else list(annotations)
    rows = []
    for d in differences(a, b):
        found = tuple(an for an in catalog if an.matches(d))
        rows.append(Difference(d.part, d.key, d.loc, d.a, d.b, found))
    return SpecDiff(a_label, b_label, rows, carries_attestation(a), carries_attestation(b))
