"""A structural diff of two requests, so a maintainer sees what differs on the wire and which differences matter.

Each difference is an atomic edit with a location inside a :class:`RequestSpec` (a header, a query parameter, a
system block, one field of one tool, a top-level body field). :func:`apply_differences` moves any subset of them from
one side to the other, which is what :mod:`lanelab.walkthrough.bisect` needs.

Two grains. ``"field"`` (the default) is the table a person reads: one row per header, body field, system block
and tool field, lists aligned by position. ``"fine"`` is what diagnose bisects over, so that an answer names the
element to act on: each ``anthropic-beta`` token, each system sentence (split as lint splits them), each tool
(lists aligned by tool name, so one removed tool is one difference, not a shifted tail) and each field of a tool
present on both sides. Fine differences are edits of the first request: apply them to it (``side="b"``). Rows are annotated from
``data/diff_annotations.toml`` with what public reports say about that kind of difference, and their sources.

The kit only *reports* whether a request carries Claude Code's billing attestation block; it never writes one, and the
table never shows one's content.
"""

from __future__ import annotations

import difflib
import html
import json
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, final

import pandas as pd

from lanelab import redact
from lanelab.config import data_dir
from lanelab.datafiles import ListOf, Str, Table, read_toml
from lanelab.errors import InputError
from lanelab.wire.attestation import carries_attestation, is_attestation
from lanelab.wire.spec import RequestSpec, require_spec

__all__ = [
    "GRAINS",
    "LIST_HEADERS",
    "MISSING",
    "SHOW_CHARS",
    "Annotation",
    "Difference",
    "Loc",
    "SpecDiff",
    "apply_differences",
    "diff_specs",
    "differences",
    "is_fine",
    "keep_sentences",
    "load_annotations",
    "sentence_spans",
    "show",
    "tool_name",
]

#: Longest value shown in a table cell.
SHOW_CHARS = 90
#: Difference grains (see the module docstring).
GRAINS = ("field", "fine")
#: Headers whose value is a comma-separated list of tokens; at fine grain each token is one difference.
LIST_HEADERS = ("anthropic-beta",)


@final
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
    grain: str = "field"

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


#: The shape of data/diff_annotations.toml (see lanelab.datafiles for the vocabulary).
ANNOTATIONS_SCHEMA = Table({"annotation": ListOf(Table({
    "id": Str(nonempty=True), "part?": Str(nonempty=True), "key?": Str(nonempty=True), "note": Str(nonempty=True),
    "source": Str(nonempty=True), "confidence?": str, "value_pattern?": Str(regex=True)}), nonempty=True)})


#: Where a sentence ends: after . ! or ? and whitespace, or at a line break (one splitter for diff and lint).
_SENTENCE_SEP = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (split after . ! ? and at line breaks)."""
    spans, start = [], 0
    for m in _SENTENCE_SEP.finditer(text):
        if text[start:m.start()].strip():
            spans.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


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


def differences(a: RequestSpec, b: RequestSpec, grain: str = "field") -> list[Difference]:
    """The atomic differences between two specs, in a stable order (request line, query, headers, body).

    ``grain`` is ``"field"`` (the default) or ``"fine"`` (see the module docstring). Raises
    :class:`lanelab.errors.InputError` (a ``ValueError``) for an unknown grain.
    """
    if grain == "fine":
        return _fine_differences(a, b)
    if grain != "field":
        raise InputError(f"Unknown grain {grain!r}; choose one of {', '.join(GRAINS)}.")
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


# --- fine grain --------------------------------------------------------------------------------------------------
# A fine difference's ``loc`` may end in a tuple step, always relative to the FIRST request:
#   ("token", t)     one token of a list header (LIST_HEADERS) at loc[:-1]
#   ("s", j)         sentence j of the text at loc[:-1]
#   ("s+", j, m)     a sentence inserted before sentence j of that text (m: its place in the second request)
#   ("+", i, m)      an element inserted before element i of the list at loc[:-1] (m: its place in the second one)
_TOKEN, _SENT, _SENT_INS, _INS = "token", "s", "s+", "+"


def is_fine(diff: Difference) -> bool:
    """Whether ``diff`` is a fine-grain difference (see :func:`differences`): it applies to the first request only."""
    return diff.grain == "fine"


def _fine(part: str, key: str, loc: Loc, a: Any, b: Any) -> Difference:
    return Difference(part, key, loc, a, b, grain="fine")


def _tokens(value: Any) -> list[str]:
    if value is MISSING or value is None:
        return []
    return [t.strip() for t in str(value).split(",") if t.strip()]


def _sentence_texts(text: str) -> list[str]:
    return [text[x:y] for x, y in sentence_spans(text)]


def _text_diffs(label: str, loc: Loc, a_text: str, b_text: str) -> Iterator[Difference]:
    """Sentence-level differences between two texts of a system prompt (``loc`` is where the text lives); one
    whole-text difference when sentences cannot express the change exactly (spacing between sentences changed)."""
    sa, sb = _sentence_texts(a_text), _sentence_texts(b_text)
    out: list[Difference] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for n in range(paired):
            out.append(_fine("system", f"{label} sentence {i1 + n + 1}", (*loc, (_SENT, i1 + n)), sa[i1 + n],
                             sb[j1 + n]))
        out.extend(_fine("system", f"{label} sentence {i + 1}", (*loc, (_SENT, i)), sa[i], MISSING)
                   for i in range(i1 + paired, i2))
        out.extend(_fine("system", f"{label} added sentence {j + 1}", (*loc, (_SENT_INS, i2, j)), MISSING, sb[j])
                   for j in range(j1 + paired, j2))
    edited = _edit_text(a_text, out)
    if edited == b_text or (not b_text and not edited.strip()):
        yield from out
    elif a_text != b_text:
        yield _fine("system", label, loc, a_text or MISSING, b_text or MISSING)


def _text_block(block: Any) -> bool:
    """A system block whose text can be split into sentences (never an attestation block)."""
    if is_attestation(block):
        return False
    return isinstance(block, str) or (isinstance(block, dict) and isinstance(block.get("text"), str))


def _system_fine(va: Any, vb: Any) -> Iterator[Difference]:
    loc: Loc = ("body", "system")
    if isinstance(va, str) or isinstance(vb, str):
        if all(v is MISSING or (isinstance(v, str) and not is_attestation(v)) for v in (va, vb)):
            yield from _text_diffs("system", loc, "" if va is MISSING else va, "" if vb is MISSING else vb)
        else:
            yield _fine("system", "system", loc, va, vb)
        return
    la, lb = ([] if va is MISSING else va), ([] if vb is MISSING else vb)
    if not (isinstance(la, list) and isinstance(lb, list)) or (not la and va is not MISSING) or \
            (not lb and vb is not MISSING):
        yield _fine("system", "system", loc, va, vb)
        return
    for i in range(max(len(la), len(lb))):
        ba = la[i] if i < len(la) else MISSING
        bb = lb[i] if i < len(lb) else MISSING
        if ba == bb:
            continue
        label = f"system[{i}]"
        if ba is MISSING:
            yield _fine("system", label, (*loc, (_INS, len(la), i)), MISSING, bb)
        elif _text_block(ba) and (bb is MISSING or (_text_block(bb) and isinstance(ba, dict) == isinstance(bb, dict))):
            text_loc: Loc = (*loc, i, "text") if isinstance(ba, dict) else (*loc, i)
            if isinstance(ba, dict) and isinstance(bb, dict):
                rest_a = {k: v for k, v in ba.items() if k != "text"}
                rest_b = {k: v for k, v in bb.items() if k != "text"}
                for d in _dict_diffs("system", (*loc, i), rest_a, rest_b, key_fmt=f"{label}.{{k}}"):
                    yield _fine(d.part, d.key, d.loc, d.a, d.b)
            b_text = "" if bb is MISSING else (bb["text"] if isinstance(bb, dict) else bb)
            yield from _text_diffs(label, text_loc, ba["text"] if isinstance(ba, dict) else ba, b_text)
        else:
            yield _fine("system", label, (*loc, i), ba, bb)


def tool_name(tool: Any) -> str | None:
    """A tool's name: its top-level ``name``, or an OpenAI-style ``function.name``; None when it has neither."""
    if not isinstance(tool, dict):
        return None
    if isinstance(tool.get("name"), str):
        return tool["name"]
    fn = tool.get("function")
    return fn["name"] if isinstance(fn, dict) and isinstance(fn.get("name"), str) else None


def _tool_key(tool: Any) -> str:
    """What aligns tools: the name (top level, or an OpenAI ``function`` name), else the tool itself."""
    name = tool_name(tool)
    return name if name is not None else "#" + _flat(tool)


def _tools_fine(va: Any, vb: Any) -> Iterator[Difference]:
    loc: Loc = ("body", "tools")
    la, lb = ([] if va is MISSING else va), ([] if vb is MISSING else vb)
    if not (isinstance(la, list) and isinstance(lb, list)) or (not la and va is not MISSING) or \
            (not lb and vb is not MISSING):
        yield _fine("tools", "tools", loc, va, vb)
        return

    def pair(i: int, j: int) -> Iterator[Difference]:
        ta, tb = la[i], lb[j]
        if ta == tb:
            return
        if isinstance(ta, dict) and isinstance(tb, dict):
            for d in _dict_diffs("tools", (*loc, i), ta, tb, key_fmt=f"tools[{i}].{{k}}"):
                yield _fine(d.part, d.key, d.loc, d.a, d.b)
        else:
            yield _fine("tools", f"tools[{i}]", (*loc, i), ta, tb)

    ka, kb = [_tool_key(t) for t in la], [_tool_key(t) for t in lb]
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        paired = (i2 - i1) if op == "equal" else min(i2 - i1, j2 - j1) if op == "replace" else 0
        for n in range(paired):
            yield from pair(i1 + n, j1 + n)
        for i in range(i1 + paired, i2):
            yield _fine("tools", f"tools[{i}]", (*loc, i), la[i], MISSING)
        for j in range(j1 + paired, j2):
            yield _fine("tools", f"tools[+{j}]", (*loc, (_INS, i2, j)), MISSING, lb[j])


def _join_tokens(tokens: Sequence[str], like: Any) -> str:
    return (", " if ", " in str("" if like is MISSING else like) else ",").join(tokens)


def _token_diffs(name: str, va: Any, vb: Any) -> list[Difference] | None:
    """One difference per token of a list header, or None when tokens cannot express the change exactly (a repeated
    token, a reordering, other spacing): the header is then one difference."""
    ta, tb = _tokens(va), _tokens(vb)
    if (not ta and not tb) or len(set(ta)) != len(ta) or len(set(tb)) != len(tb):
        return None
    kept = [t for t in ta if t in tb]
    result = _join_tokens(kept + [t for t in tb if t not in ta], va)
    if (result or MISSING) != vb:
        return None
    return ([_fine("header", f"{name}: {t}", ("headers", name, (_TOKEN, t)), t, MISSING) for t in ta if t not in tb]
            + [_fine("header", f"{name}: {t}", ("headers", name, (_TOKEN, t)), MISSING, t) for t in tb if t not in ta])


def _fine_differences(a: RequestSpec, b: RequestSpec) -> list[Difference]:
    out = [_fine(d.part, d.key, d.loc, d.a, d.b) for d in differences(a, b) if d.part in ("request", "query")]
    lower_a = {k.lower(): v for k, v in (a.headers or {}).items()}
    lower_b = {k.lower(): v for k, v in (b.headers or {}).items()}
    for name in sorted(set(lower_a) | set(lower_b)):
        va, vb = lower_a.get(name, MISSING), lower_b.get(name, MISSING)
        if va == vb:
            continue
        tokens = _token_diffs(name, va, vb) if name in LIST_HEADERS else None
        if tokens is not None:
            out.extend(tokens)
            continue
        out.append(_fine("header", name, ("headers", name), va, vb))
    ba, bb = a.body, b.body
    if not (isinstance(ba, dict) and isinstance(bb, dict)):
        out.extend(_fine(d.part, d.key, d.loc, d.a, d.b) for d in _body_diffs(ba, bb))
        return out
    for k in sorted(set(ba) | set(bb)):
        va, vb = ba.get(k, MISSING), bb.get(k, MISSING)
        if va == vb:
            continue
        if k == "system":
            out.extend(_system_fine(va, vb))
        elif k == "tools":
            out.extend(_tools_fine(va, vb))
        elif k == "messages" and isinstance(va, list) and isinstance(vb, list):
            out.extend(_fine(d.part, d.key, d.loc, d.a, d.b)
                       for d in _list_diffs("messages", "messages", ("body", "messages"), va, vb, split_fields=False))
        else:
            out.append(_fine({"messages": "messages"}.get(k, "body"), k, ("body", k), va, vb))
    return out


# --- applying differences ----------------------------------------------------------------------------------------

def _purge(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_purge(v) for v in obj if v is not MISSING]
    if isinstance(obj, dict):
        return {k: _purge(v) for k, v in obj.items() if v is not MISSING}
    return obj


def _get(root: Any, loc: Loc, default: Any = MISSING) -> Any:
    node = root
    for step in loc:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return default
        if node is MISSING:
            return default
    return node


def _set(root: dict, loc: Loc, value: Any) -> None:
    node: Any = root
    for step in loc[:-1]:
        node = node[step]
        if node is MISSING:  # a container removed by a coarser edit of the same set: nothing left to edit
            return
    last = loc[-1]
    if isinstance(node, list):
        while len(node) <= last:
            node.append(MISSING)
        node[last] = value
    else:
        node[last] = value


def _edit_text(text: str, edits: Sequence[Difference]) -> str:
    """``text`` with sentence edits applied (removed, replaced, inserted), separators of the kept sentences kept."""
    spans = sentence_spans(text)
    removed = {d.loc[-1][1] for d in edits if d.loc[-1][0] == _SENT and d.b is MISSING}
    replaced = {d.loc[-1][1]: d.b for d in edits if d.loc[-1][0] == _SENT and d.b is not MISSING}
    inserted: dict[int, list[tuple[int, str]]] = {}
    for d in edits:
        if d.loc[-1][0] == _SENT_INS:
            inserted.setdefault(d.loc[-1][1], []).append((d.loc[-1][2], str(d.b)))
    out = [text[: spans[0][0]] if spans else ""]
    for j in range(len(spans) + 1):
        for _, sentence in sorted(inserted.get(j, [])):
            out.append(sentence + " ")
        if j == len(spans):
            break
        start, end = spans[j]
        if j in removed:
            continue
        sep = text[end: spans[j + 1][0]] if j + 1 < len(spans) else text[end:]
        out.append(str(replaced.get(j, text[start:end])) + sep)
    new = "".join(out)
    return new.rstrip() if (removed or inserted) and not text[-1:].isspace() else new


def keep_sentences(text: str, keep: Iterable[int]) -> str:
    """``text`` with only the sentences numbered in ``keep`` (0-based, as lint splits them), separators kept: the
    text fine differences reach when they remove the other sentences (how diagnose builds a reduced reference)."""
    kept = set(keep)
    drop = [_fine("system", "", ("text", (_SENT, j)), text[a:b], MISSING)
            for j, (a, b) in enumerate(sentence_spans(text)) if j not in kept]
    return _edit_text(text, drop)


def _apply_fine(d: dict[str, Any], diffs: Sequence[Difference]) -> set[Loc]:
    """Apply the special steps (sentences, tokens, inserts) of fine differences to ``d`` in place; the lists that
    lost elements (emptied ones are then removed with their key)."""
    touched: set[Loc] = set()
    by_text: dict[Loc, list[Difference]] = {}
    for diff in diffs:
        if diff.loc and isinstance(diff.loc[-1], tuple) and diff.loc[-1][0] in (_SENT, _SENT_INS):
            by_text.setdefault(diff.loc[:-1], []).append(diff)
    for text_loc, edits in by_text.items():
        current = _get(d, text_loc, "")
        new = _edit_text(current if isinstance(current, str) else "", edits)
        holder = text_loc[:-1] if text_loc[-1] == "text" else text_loc
        if new.strip():
            _set(d, text_loc, new)
        else:  # every sentence went: the block (or a string system prompt) goes with them
            _set(d, holder, MISSING)
            touched.add(holder[:-1])
    return touched


def _apply_tokens(d: dict[str, Any], diffs: Sequence[Difference], original: dict[str, str]) -> None:
    by_header: dict[str, list[Difference]] = {}
    for diff in diffs:
        if diff.loc and isinstance(diff.loc[-1], tuple) and diff.loc[-1][0] == _TOKEN:
            by_header.setdefault(diff.loc[1], []).append(diff)
    for name, edits in by_header.items():
        value = original.get(name, "")
        tokens = _tokens(value)
        drop = {e.a for e in edits if e.b is MISSING}
        tokens = [t for t in tokens if t not in drop] + [e.b for e in edits if e.a is MISSING and e.b not in tokens]
        if tokens:
            d["headers"][name] = _join_tokens(tokens, value)
        else:
            d["headers"].pop(name, None)


def _apply_inserts(d: dict[str, Any], diffs: Sequence[Difference]) -> None:
    by_list: dict[Loc, list[Difference]] = {}
    for diff in diffs:
        if diff.loc and isinstance(diff.loc[-1], tuple) and diff.loc[-1][0] == _INS:
            by_list.setdefault(diff.loc[:-1], []).append(diff)
    for list_loc, edits in by_list.items():
        if list_loc[0] == "body" and not isinstance(d["body"], dict):
            d["body"] = {}
        current = _get(d, list_loc, [])
        current = current if isinstance(current, list) else []
        new: list[Any] = []
        for i in range(len(current) + 1):
            new.extend(json.loads(json.dumps(e.b)) for e in sorted(edits, key=lambda e: e.loc[-1][2])
                       if e.loc[-1][1] == i)
            if i < len(current):
                new.append(current[i])
        _set(d, list_loc, new)


def apply_differences(spec: RequestSpec, diffs: Iterable[Difference], side: str = "b") -> RequestSpec:
    """A copy of ``spec`` with each difference's location set to its ``side`` value ("a" or "b").

    Applied to the first spec of :func:`differences`, all of them give the second, none of them the first, and any
    subset a request in between; list elements keep their order. Fine differences (``grain="fine"``) apply to the
    first spec only: a list emptied by them loses its key, and a ``tool_choice`` left without tools goes too (the
    API refuses one), so every subset is a well-formed request. Raises ``ValueError`` for a bad ``side``, or
    ``side="a"`` with fine differences.
    """
    if side not in ("a", "b"):
        raise ValueError("side must be 'a' or 'b'")
    diffs = list(diffs)
    fine = [x for x in diffs if is_fine(x)]
    if fine and side == "a":
        raise ValueError("Fine-grain differences are edits of the first request; apply them with side='b'.")
    d = {"method": spec.method, "path": spec.path, "auth": spec.auth, "query": dict(spec.query or {}),
         "headers": {k.lower(): v for k, v in (spec.headers or {}).items()}, "body": spec.copy().body}
    original_headers = dict(d["headers"])
    touched = _apply_fine(d, fine) if fine else set()
    plain = [x for x in diffs if not (x.loc and isinstance(x.loc[-1], tuple))]
    # deeper locations first, so removing a whole tool wins over renaming it in the same set
    for diff in sorted(plain, key=lambda x: -len(x.loc)):
        value = diff.b if side == "b" else diff.a
        if diff.loc == ("body",):
            d["body"] = None if value is MISSING else value
            continue
        if diff.loc[0] == "body" and not isinstance(d["body"], dict):
            d["body"] = {}
        if is_fine(diff) and value is MISSING and len(diff.loc) == 3 and diff.loc[0] == "body":
            touched.add(diff.loc[:2])
        _set(d, diff.loc, json.loads(json.dumps(value)) if value is not MISSING else MISSING)
    if fine:
        _apply_tokens(d, fine, original_headers)
        _apply_inserts(d, fine)
    d = {k: (_purge(v) if k in ("query", "headers", "body") else v) for k, v in d.items()}
    body = d["body"]
    if fine and isinstance(body, dict):
        for loc in touched:
            if len(loc) == 2 and body.get(loc[1]) == []:
                del body[loc[1]]
        if ("body", "tools") in touched and "tools" not in body:
            body.pop("tool_choice", None)
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
        return f"[billing attestation block, {len(str(text))} chars, not shown]"
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

    def to_markdown(self, width: int = 24) -> str:
        """The attestation summary, then one row per difference with both values cut to ``width`` characters and a
        note number; then what reports say, each note once with its sources (the whole of it: :meth:`to_frame`)."""
        notes: dict[str, int] = {}
        rows = []
        for d in self.rows:
            said = [f"{an.note} [{an.confidence}] ({an.source})" if an.confidence else f"{an.note} ({an.source})"
                    for an in d.annotations]
            numbers = [notes.setdefault(text, len(notes) + 1) for text in said]
            rows.append({"part": d.part, "field": d.key, "change": d.change,
                         self.a_label: show(d.a, width), self.b_label: show(d.b, width),
                         "reports": ", ".join(f"[{n}]" for n in numbers)})
        cols = ["part", "field", "change", self.a_label, self.b_label, "reports"]
        table = pd.DataFrame.from_records(rows, columns=cols).to_markdown(index=False)
        listed = "\n".join(textwrap.fill(text, 100, initial_indent=f"[{n}] ", subsequent_indent="     ",
                                          break_on_hyphens=False, break_long_words=False)
                            for text, n in notes.items())
        return f"{self.attestation_summary()}\n\n{table}" + (f"\n\nWhat reports say:\n{listed}" if notes else "")

    def _repr_html_(self) -> str:
        head = (f"<p><b>{html.escape(self.a_label)}</b> vs <b>{html.escape(self.b_label)}</b>: "
                f"{len(self.rows)} difference(s). {html.escape(self.attestation_summary())}</p>")
        return redact.redact_text(head + self.to_frame().to_html(index=False, escape=True))

    def __repr__(self) -> str:
        return f"<SpecDiff {self.a_label} vs {self.b_label}: {len(self.rows)} difference(s)>"


def diff_specs(a: RequestSpec, b: RequestSpec, a_label: str = "A", b_label: str = "B",
               annotations: Sequence[Annotation] | None = None, grain: str = "field") -> SpecDiff:
    """Structural diff of two requests, each difference annotated from ``data/diff_annotations.toml``.

    ``grain`` is ``"field"`` (the default) or ``"fine"`` (see :func:`differences`).
    Returns a :class:`SpecDiff` (renders as a table in a notebook; ``to_frame()``, ``to_markdown()``). Raises
    :class:`lanelab.datafiles.DataFileError` when the annotation catalog cannot be read, and
    :class:`lanelab.errors.InputError` for an ``a`` or ``b`` that is no :class:`RequestSpec`.
    """
    require_spec(a, "the first request")
    require_spec(b, "the second request")
    if a_label == b_label:
        b_label = b_label + " (2)"
    catalog = load_annotations() if annotations is None else list(annotations)
    rows = []
    for d in differences(a, b, grain):
        found = tuple(an for an in catalog if an.matches(d))
        rows.append(Difference(d.part, d.key, d.loc, d.a, d.b, found, d.grain))
    return SpecDiff(a_label, b_label, rows, carries_attestation(a), carries_attestation(b))
