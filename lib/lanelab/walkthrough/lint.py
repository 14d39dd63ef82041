"""Lint: match one request against the catalogue of reported triggers, sending nothing at all.

The catalogue is data (``data/triggers.toml``; format in its header): each entry says which part of a request it looks
at and with what pattern, the public reports and dates behind it, which simulator policy snapshots model it, the fix
the reports say works, and the confidence. The version floors of gated models live in ``data/version_gate.toml``,
the one file the simulator's policy reads too.

A request comes from a profile (name or TOML file), a capture (``lanelab capture`` JSONL, one of its inference
requests) or a client's own dump (Hermes' ``request_dump_*.json``, :mod:`lanelab.walkthrough.dumps`). A source that
does not record a part of the request (a dump records no path, auth style or client headers) leaves the entries that
need it *undetermined*: shown as such, never guessed.

Findings of kind ``trigger`` name an element to remove or correct; ``observation`` findings (no Claude Code identity
line or user agent, an attestation block present) are reported with the remedies that exist and never turned into a
recommendation to add first-party identification (DESIGN.md, responsible use). An attestation block is reported as
present; its content is never shown.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanelab import redact
from lanelab.config import data_dir
from lanelab.datafiles import DataFileError, MapOf, OneOf, Str, Table, load_cached, read_toml
from lanelab.errors import InputError, NotFound
from lanelab.findings.remedies import load_remedies
from lanelab.version_gate import GatedModel, load_version_gate
from lanelab.walkthrough.dumps import is_hermes_dump, parse_dump
from lanelab.wire.attestation import is_attestation
from lanelab.wire.diff import sentence_spans, tool_name
from lanelab.wire.spec import RequestSpec

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("trigger", "observation")
CONFIDENCES = ("High", "Med", "Low")
#: The only beta an edit may add: the OAuth protocol's own (not Claude Code identification).
ADDABLE_BETAS = frozenset({"oauth-2025-04-20"})
EDIT_OPS = ("rename_tools", "drop_sentences", "drop_betas", "add_betas", "set_auth")
#: Longest element value shown in text output.
SHOW_CHARS = 240
_DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")


class CatalogueError(DataFileError):
    """``data/triggers.toml`` is missing or malformed (the version gate's errors are :class:`GateError`)."""


class LintInputError(InputError):
    """FILE is not a capture, a profile or a request dump the kit can read."""

    hint = ("FILE is a capture (lanelab capture JSONL), a profile (a name from data/profiles or a .toml file) or a "
            "Hermes request_dump_*.json.")


# ------------------------------------------------------------------------------------------------------ the input

@dataclass(frozen=True)
class LintInput:
    """One request to lint, with where it came from and which parts its source records."""

    label: str
    kind: str
    spec: RequestSpec
    header_pairs: tuple[tuple[str, str], ...] = ()
    unrecorded: frozenset[str] = frozenset()
    recorded_headers: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_spec(cls, spec: RequestSpec, label: str = "request", kind: str = "spec") -> LintInput:
        """A spec the caller built (everything recorded)."""
        return cls(label=label, kind=kind, spec=spec, header_pairs=tuple(spec.headers.items()))

    def knows(self, need: str, header: str | None = None) -> bool:
        """Whether the source records ``need`` (``path``, ``auth`` or ``headers``; a header by name)."""
        if need not in self.unrecorded:
            return True
        return need == "headers" and header is not None and header in self.recorded_headers

    def headers(self, name: str) -> list[str]:
        """Every value sent for header ``name`` (repeats kept, as a capture records them)."""
        pairs = self.header_pairs or tuple(self.spec.headers.items())
        return [v for k, v in pairs if k.lower() == name]


def _profile_input(name: str) -> LintInput:
    from lanelab.matrix.profiles import load_profile, profiles_dir

    profile = load_profile(name)
    return LintInput(label=profile.name, kind="profile", spec=profile.spec,
                     header_pairs=tuple(profile.spec.headers.items()),
                     source=str(profiles_dir() / f"{name}.toml"))


def _profile_file_input(path: Path) -> LintInput:
    from lanelab.matrix.from_capture import load_request
    from lanelab.matrix.profiles import SCHEMA, profiles_dir

    try:
        if path.resolve().parent == profiles_dir().resolve():
            return _profile_input(path.stem)
    except OSError:
        pass
    raw = read_toml(path, "profile file", error=LintInputError, schema=SCHEMA)
    if not isinstance(raw.get("request"), dict):
        raise LintInputError(f"{path} is TOML but has no [request] table, so it is not a profile.")
    label, spec = load_request(str(path))
    return LintInput(label=label, kind="profile", spec=spec, header_pairs=tuple(spec.headers.items()),
                     source=str(path))


def _capture_input(path: Path, index: int) -> LintInput:
    from lanelab.matrix.from_capture import spec_from_exchange
    from lanelab.wire.exchanges import inference_exchange, load_exchanges

    _readable_text(path, "capture")
    loaded = load_exchanges(path)
    exchanges = [e for e in loaded if _is_exchange(e)]
    if not exchanges and loaded.skipped:
        raise LintInputError(f"{path} holds no complete capture exchange record: {loaded.skipped_note()}.")
    if not exchanges:
        raise LintInputError(f"{path} holds no capture exchange records, so it is not a lanelab capture.")
    inference = [e for e in exchanges if e["request"]["method"] == "POST"
                 and e["request"]["path"].rstrip("/").endswith(("/messages", "chat/completions"))]
    if not inference and loaded.skipped:  # the one that was there may be the line that could not be read
        raise LintInputError(f"{path} holds no inference request (POST /v1/messages) that could be read whole: "
                             f"{loaded.skipped_note()}.")
    if inference and not -len(inference) <= index < len(inference):
        raise InputError(f"--index {index} is out of range: {path} holds {len(inference)} inference request(s) "
                             f"(0 … {len(inference) - 1}, or -1 for the last).")
    exchange = inference_exchange(exchanges, index)
    try:
        spec, notes = spec_from_exchange(exchange)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LintInputError(f"Exchange {exchange.get('seq')} of {path} is malformed.") from None
    pairs = tuple((str(k).lower(), str(v)) for k, v in exchange["request"]["headers"]
                  if not redact.is_sensitive_key(str(k)))
    seq = exchange.get("seq")
    if loaded.skipped:  # said, so that a request taken in place of a torn one is not taken for it
        notes = [f"{loaded.skipped_note()} and left out: the request read is exchange {seq}, of those read whole.",
                 *notes]
    return LintInput(label=f"{path.name} exchange {seq}", kind="capture", spec=spec, header_pairs=pairs,
                     notes=tuple(notes), source=str(path))


def _is_exchange(rec: Any) -> bool:
    req = rec.get("request") if isinstance(rec, dict) else None
    if not isinstance(req, dict):
        return False
    headers = req.get("headers")
    return (isinstance(req.get("method"), str) and isinstance(req.get("path"), str) and isinstance(headers, list)
            and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in headers))


def _dump_input(path: Path, obj: Any) -> LintInput:
    dump = parse_dump(obj, path)
    notes = list(dump.notes)
    if dump.error:
        err = dump.error
        what = " ".join(str(x) for x in (err.get("status"), err.get("type"), err.get("error_code")) if x)
        notes.append(f"The dump records the error {what}: {err.get('message', '')}".rstrip(": "))
    return LintInput(label=path.name, kind="dump", spec=dump.spec, header_pairs=tuple(dump.spec.headers.items()),
                     unrecorded=dump.unrecorded, recorded_headers=dump.recorded_headers, notes=tuple(notes),
                     source=str(path))


def _readable_text(path: Path, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise LintInputError(f"{path} is a directory, not a {what}.") from None
    except OSError as exc:
        raise LintInputError(f"Cannot read {path} ({exc.strerror or exc}).") from None
    except UnicodeDecodeError:
        raise LintInputError(f"{path} is not UTF-8 text, so not a {what}.") from None


def _json_or_none(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _classify(path: Path) -> tuple[str, Any]:
    """``(kind, parsed JSON or None)`` for a file: ``capture``, ``dump`` or ``profile``, by suffix, then content."""
    import tomllib

    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "profile", None
    if suffix == ".jsonl":
        return "capture", None
    text = _readable_text(path, "capture, profile or request dump")
    obj = _json_or_none(text)
    if is_hermes_dump(obj):
        return "dump", obj
    first = _json_or_none(next((line for line in text.splitlines() if line.strip()), ""))
    if isinstance(first, dict) and "record" in first:
        return "capture", None
    if suffix == ".json":
        if obj is None:
            raise LintInputError(f"{path} is not valid JSON, so not a capture or a Hermes request dump.")
        return "dump", obj  # parse_dump says precisely what is missing
    try:
        if isinstance(tomllib.loads(text).get("request"), dict):
            return "profile", None
    except tomllib.TOMLDecodeError:
        pass
    raise LintInputError(f"{path} is neither a capture (JSONL), a profile (TOML) nor a Hermes request dump (JSON).")


def load_input(ref: str | Path, index: int | None = None) -> LintInput:
    """The request named by ``ref``: a file (capture, profile TOML or Hermes dump) or a profile name.

    ``index`` picks the inference request of a capture (default -1, the last); it is refused for other sources.
    Returns a :class:`LintInput`. Raises :class:`~lanelab.errors.NotFound` (no such file or profile) or
    :class:`LintInputError` / :class:`~lanelab.walkthrough.dumps.DumpError` (unreadable or the wrong format).
    """
    path = Path(ref)
    if path.is_dir():
        raise LintInputError(f"{path} is a directory, not a capture, profile or request dump.")
    if path.is_file():
        kind, obj = _classify(path)
        if kind != "capture" and index is not None:
            raise InputError(f"--index picks a request of a capture file; {path} is a {kind}.")
        if kind == "capture":
            return _capture_input(path, -1 if index is None else index)
        if kind == "profile":
            return _profile_file_input(path)
        return _dump_input(path, obj)
    ref_s = str(ref)
    if "/" in ref_s or "\\" in ref_s or path.suffix.lower() in (".json", ".jsonl", ".toml"):
        raise NotFound(f"No file at {ref_s}.", "Check the path, or give a profile name from data/profiles.")
    if index is not None:
        raise InputError(f"--index picks a request of a capture file; {ref_s!r} is a profile name.")
    return _profile_input(ref_s)


# ------------------------------------------------------------------------------------------------- request parts

@dataclass(frozen=True)
class Element:
    """One matched piece of a request: where it is (``tools[3].name``, ``system[1]``, ``header user-agent``) and
    its value (an attestation block's value is always a placeholder)."""

    where: str
    value: str
    absent: bool = False


def _body(spec: RequestSpec) -> dict[str, Any]:
    return spec.body if isinstance(spec.body, dict) else {}


def _system_blocks(spec: RequestSpec) -> list[tuple[str, Any]]:
    """(location, block) for every system block: Anthropic ``system`` (string or blocks), else OpenAI system messages."""
    body = _body(spec)
    system = body.get("system")
    if isinstance(system, str):
        return [("system", system)]
    if isinstance(system, list):
        return [(f"system[{i}]", b) for i, b in enumerate(system)]
    if system is None:
        out: list[tuple[str, Any]] = []
        for i, msg in enumerate(body.get("messages") or []):
            if isinstance(msg, dict) and msg.get("role") in ("system", "developer"):
                content = msg.get("content")
                if isinstance(content, str):
                    out.append((f"messages[{i}]", content))
                elif isinstance(content, list):
                    out.extend((f"messages[{i}].content[{j}]", b) for j, b in enumerate(content))
        return out
    return []


def _block_text(block: Any) -> str | None:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and isinstance(block.get("text"), str):
        return block["text"]
    return None


def system_texts(spec: RequestSpec) -> list[tuple[str, str]]:
    """(location, text) of every system text block that is not a billing attestation block."""
    return [(where, text) for where, block in _system_blocks(spec)
            if (text := _block_text(block)) is not None and not is_attestation(block)]


def _tool_names(inp: LintInput) -> list[Element]:
    tools = _body(inp.spec).get("tools")
    out = []
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        name = tool_name(tool)
        if name is not None:
            out.append(Element(f"tools[{i}].name", name))
    return out


def _forced_choice(spec: RequestSpec) -> str | None:
    choice = _body(spec).get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("tool", "function"):
        return tool_name(choice)
    return None


def _tool_choice_unlisted(inp: LintInput) -> list[Element]:
    name = _forced_choice(inp.spec)
    if name is None or name in {e.value for e in _tool_names(inp)}:
        return []
    return [Element("tool_choice.name", name)]


def _system_sentences(inp: LintInput) -> list[Element]:
    out: list[Element] = []
    for where, text in system_texts(inp.spec):
        out.extend(Element(where, text[a:b].strip()) for a, b in sentence_spans(text))
    return out


def _system_first(inp: LintInput) -> list[Element]:
    texts = system_texts(inp.spec)
    return [Element(texts[0][0], texts[0][1])] if texts else []


def _system_chars(inp: LintInput) -> list[Element]:
    return [Element("system (characters)", str(sum(len(t) for _, t in system_texts(inp.spec))))]


def _attestation(inp: LintInput) -> list[Element]:
    return [Element(where, "billing attestation block (present; content not shown)")
            for where, block in _system_blocks(inp.spec) if is_attestation(block)]


def _betas(inp: LintInput) -> list[Element]:
    return [Element("header anthropic-beta", b.strip()) for v in inp.headers("anthropic-beta")
            for b in v.split(",") if b.strip()]


def _user_agents(inp: LintInput) -> list[Element]:
    return [Element("header user-agent", v) for v in inp.headers("user-agent")]


def _model(inp: LintInput) -> list[Element]:
    model = _body(inp.spec).get("model")
    return [Element("model", model)] if isinstance(model, str) else []


def _gated_model(inp: LintInput) -> GatedModel | None:
    model = _body(inp.spec).get("model")
    return load_version_gate().floor_for(model) if isinstance(model, str) else None


def _version_gate(inp: LintInput) -> list[Element]:
    model = _body(inp.spec).get("model")
    return [Element("header user-agent", f"{hit.user_agent} claims Claude Code {hit.claimed}; {hit.model.id} needs "
                                         f"{hit.model.floor} or newer (since {hit.model.since})")
            for hit in load_version_gate().hits(model, inp.headers("user-agent"))]


@dataclass(frozen=True)
class Part:
    """A part of a request a catalogue condition can look at: how to read it and what its source must record."""

    read: Callable[[LintInput], list[Element]]
    needs: str | None = None
    header: str | None = None
    numeric: bool = False
    label: str = ""
    relevant: Callable[[LintInput], bool] | None = None


def _header_part(name: str) -> Part:
    return Part(lambda inp: [Element(f"header {name}", v) for v in inp.headers(name)], "headers", name,
                label=f"header {name}")


PARTS: dict[str, Part] = {
    "method": Part(lambda inp: [Element("method", inp.spec.method)], label="method"),
    "path": Part(lambda inp: [Element("path", inp.spec.path)], "path", label="path"),
    "auth": Part(lambda inp: [Element("auth", inp.spec.auth)], "auth", label="auth style"),
    "betas": Part(_betas, "headers", "anthropic-beta", label="anthropic-beta"),
    "user_agents": Part(_user_agents, "headers", "user-agent", label="user-agent"),
    "model": Part(_model, label="model"),
    "tool_names": Part(_tool_names, label="tool names"),
    "tool_choice_name": Part(lambda inp: [Element("tool_choice.name", n)] if (n := _forced_choice(inp.spec)) else [],
                             label="tool_choice"),
    "tool_choice_unlisted": Part(_tool_choice_unlisted, label="tool_choice"),
    "system_first": Part(_system_first, label="first system block"),
    "system_blocks": Part(lambda inp: [Element(w, t) for w, t in system_texts(inp.spec)], label="system blocks"),
    "system_sentences": Part(_system_sentences, label="system sentences"),
    "system_chars": Part(_system_chars, numeric=True, label="system prompt length"),
    "attestation": Part(_attestation, label="attestation block"),
    "version_gate": Part(_version_gate, "headers", "user-agent", label="claimed Claude Code version",
                         relevant=lambda inp: _gated_model(inp) is not None),
}


def part(name: str) -> Part:
    """The :class:`Part` called ``name`` (``header:<name>`` reads any header). Raises KeyError for an unknown one."""
    if name.startswith("header:") and len(name) > 7:
        return _header_part(name[7:].lower())
    return PARTS[name]


# ------------------------------------------------------------------------------------------------- the catalogue

@dataclass(frozen=True)
class Condition:
    """One ``match`` condition of a catalogue entry."""

    part: str
    pattern: str | None = None
    contains: str | None = None
    ignore_case: bool = False
    absent: bool = False
    over: float | None = None

    def test(self, value: str) -> bool:
        if self.over is not None:
            try:
                return float(value) > self.over
            except ValueError:
                return False
        if self.contains is not None:
            return (self.contains.lower() in value.lower()) if self.ignore_case else self.contains in value
        if self.pattern is not None:
            return re.search(self.pattern, value, re.IGNORECASE if self.ignore_case else 0) is not None
        return True

    def describe(self) -> str:
        if self.over is not None:
            return f"over {self.over:g}"
        if self.contains is not None:
            return repr(self.contains)
        return f"/{self.pattern}/" if self.pattern else "any value"


@dataclass(frozen=True)
class Edit:
    """One machine edit of an entry's fix (see the catalogue header)."""

    op: str
    pattern: str | None = None
    replace: str | None = None
    betas: tuple[str, ...] = ()
    auth: str | None = None


@dataclass(frozen=True)
class Trigger:
    """One catalogue entry (``[[trigger]]`` in ``data/triggers.toml``)."""

    id: str
    kind: str
    title: str
    says: str
    factor: str
    match: tuple[Condition, ...]
    reports: tuple[str, ...]
    seen: tuple[str, ...]
    policies: Mapping[str, tuple[str, ...]]
    confidence: str
    fix: str = ""
    fix_reports: tuple[str, ...] = ()
    edits: tuple[Edit, ...] = ()
    remedies: bool = False
    confidence_note: str = ""
    seen_note: str = ""
    note: str = ""

    def modelled_by(self) -> str:
        """Which simulator snapshots model this entry, in one phrase."""
        if not self.policies:
            return "no simulator snapshot models it yet"
        return "; ".join(f"{p}: {', '.join(ids)}" for p, ids in sorted(self.policies.items()))


@dataclass(frozen=True)
class Catalogue:
    """All entries, in file order, plus the remedies printed for observations (``data/remedies.toml``)."""

    triggers: tuple[Trigger, ...]
    path: Path

    @property
    def remedies(self) -> tuple[str, ...]:
        """The remedies that exist, one line each (what to do and its caveat), from ``data/remedies.toml``."""
        return tuple(r.line for r in load_remedies())

    def __len__(self) -> int:
        return len(self.triggers)

    def __iter__(self):
        return iter(self.triggers)

    def get(self, trigger_id: str) -> Trigger:
        for t in self.triggers:
            if t.id == trigger_id:
                return t
        raise NotFound(f"No catalogue entry {trigger_id!r}.", f"Known: {', '.join(t.id for t in self.triggers)}.")


def _strs(value: Any, where: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{path}: {where} must be a list of strings.")
    return tuple(value)


def _condition(raw: Any, where: str, path: Path) -> Condition:
    if not isinstance(raw, dict) or not isinstance(raw.get("part"), str):
        raise CatalogueError(f"{path}: {where} needs a part.")
    unknown = set(raw) - {"part", "pattern", "contains", "ignore_case", "absent", "over"}
    if unknown:
        raise CatalogueError(f"{path}: {where} has unknown keys {sorted(unknown)}.")
    try:
        p = part(raw["part"])
    except KeyError:
        raise CatalogueError(f"{path}: {where} names unknown part {raw['part']!r}.",
                             f"Known: {', '.join(PARTS)}, header:<name>.") from None
    if "pattern" in raw:
        try:
            re.compile(raw["pattern"])
        except (re.error, TypeError) as exc:
            raise CatalogueError(f"{path}: {where} has an invalid pattern ({exc}).") from None
    over = raw.get("over")
    if over is not None and (not p.numeric or isinstance(over, bool) or not isinstance(over, (int, float))):
        raise CatalogueError(f"{path}: {where}: 'over' needs a number and a numeric part.")
    if p.numeric and over is None:
        raise CatalogueError(f"{path}: {where}: numeric part {raw['part']!r} needs 'over'.")
    return Condition(part=raw["part"], pattern=raw.get("pattern"), contains=raw.get("contains"),
                     ignore_case=bool(raw.get("ignore_case", False)), absent=bool(raw.get("absent", False)),
                     over=None if over is None else float(over))


def _edit(raw: Any, where: str, path: Path) -> Edit:
    if not isinstance(raw, dict) or raw.get("op") not in EDIT_OPS:
        raise CatalogueError(f"{path}: {where} needs op, one of {', '.join(EDIT_OPS)}.")
    op = raw["op"]
    if op in ("rename_tools", "drop_sentences", "drop_betas"):
        try:
            re.compile(raw["pattern"])
        except (KeyError, re.error, TypeError):
            raise CatalogueError(f"{path}: {where} ({op}) needs a valid pattern.") from None
    if op == "rename_tools" and not isinstance(raw.get("replace"), str):
        raise CatalogueError(f"{path}: {where} (rename_tools) needs replace.")
    betas = _strs(raw.get("betas", []), f"{where}.betas", path)
    if op == "add_betas" and (not betas or set(betas) - ADDABLE_BETAS):
        raise CatalogueError(f"{path}: {where}: add_betas may add only {', '.join(sorted(ADDABLE_BETAS))}.",
                             "A fix never adds first-party identification (DESIGN.md, responsible use).")
    if op == "set_auth" and raw.get("auth") != "bearer":
        raise CatalogueError(f"{path}: {where}: set_auth may only set 'bearer'.")
    return Edit(op=op, pattern=raw.get("pattern"), replace=raw.get("replace"), betas=betas, auth=raw.get("auth"))


def _trigger(raw: Any, i: int, path: Path) -> Trigger:
    where = f"trigger #{i + 1}"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise CatalogueError(f"{path}: {where} needs an id.")
    where = f"trigger {raw['id']!r}"
    for key in ("kind", "title", "says", "factor", "confidence"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise CatalogueError(f"{path}: {where} needs {key}.")
    if raw["kind"] not in KINDS:
        raise CatalogueError(f"{path}: {where}: kind must be one of {', '.join(KINDS)}.")
    if raw["confidence"] not in CONFIDENCES:
        raise CatalogueError(f"{path}: {where}: confidence must be one of {', '.join(CONFIDENCES)}.")
    match = raw.get("match")
    if not isinstance(match, list) or not match:
        raise CatalogueError(f"{path}: {where} needs at least one match condition.")
    reports = _strs(raw.get("reports"), f"{where}.reports", path)
    if not reports:
        raise CatalogueError(f"{path}: {where} names no public report.")
    seen = _strs(raw.get("seen", []), f"{where}.seen", path)
    if any(not _DATE.match(d) for d in seen) or list(seen) != sorted(seen):
        raise CatalogueError(f"{path}: {where}: seen must be YYYY-MM[-DD] dates, oldest first.")
    if not seen and not raw.get("seen_note"):
        raise CatalogueError(f"{path}: {where}: an empty seen list needs a seen_note.")
    policies_raw = raw.get("policies", {})
    if not isinstance(policies_raw, dict):
        raise CatalogueError(f"{path}: {where}: policies must map a snapshot name to rule ids.")
    policies = {str(k): _strs(v, f"{where}.policies.{k}", path) for k, v in policies_raw.items()}
    kind = raw["kind"]
    fix = raw.get("fix", "")
    if kind == "trigger" and not (isinstance(fix, str) and fix.strip()):
        raise CatalogueError(f"{path}: {where}: a trigger needs the fix reports say works.")
    if kind == "observation" and fix:
        raise CatalogueError(f"{path}: {where}: an observation carries no fix (the kit recommends no change).")
    edits = tuple(_edit(e, f"{where}.edits[{j}]", path) for j, e in enumerate(raw.get("edits", [])))
    if kind == "observation" and edits:
        raise CatalogueError(f"{path}: {where}: an observation carries no edits.")
    return Trigger(id=raw["id"], kind=kind, title=raw["title"], says=raw["says"], factor=raw["factor"],
                   match=tuple(_condition(c, f"{where}.match[{j}]", path) for j, c in enumerate(match)),
                   reports=reports, seen=seen, policies=policies, confidence=raw["confidence"], fix=fix,
                   fix_reports=_strs(raw.get("fix_reports", []), f"{where}.fix_reports", path), edits=edits,
                   remedies=bool(raw.get("remedies", False)),
                   confidence_note=str(raw.get("confidence_note", "")), seen_note=str(raw.get("seen_note", "")),
                   note=str(raw.get("note", "")))


_TEXT = Str(nonempty=True)

#: The shape of data/triggers.toml (see lanelab.datafiles for the vocabulary); the parser adds the semantic checks
#: (known parts, valid patterns, dates in order, fixes only on triggers, addable betas only …).
CATALOGUE_SCHEMA = Table({
    "remedies?": [str],
    "trigger": [Table({
        "id": _TEXT, "kind": OneOf(*KINDS), "title": _TEXT, "says": _TEXT, "factor": _TEXT,
        "confidence": OneOf(*CONFIDENCES),
        "match": [Table({"part": _TEXT, "pattern?": Str(regex=True), "contains?": str, "ignore_case?": bool,
                         "absent?": bool, "over?": float})],
        "reports": [str], "seen?": [str], "seen_note?": str, "policies?": MapOf([str]), "fix?": str,
        "fix_reports?": [str], "edits?": [Table({"op": OneOf(*EDIT_OPS), "pattern?": Str(regex=True),
                                                   "replace?": str, "betas?": [str], "auth?": str})],
        "remedies?": bool, "confidence_note?": str, "note?": str})],
})

def _parse_catalogue(path: Path) -> Catalogue:
    raw = read_toml(path, "trigger catalogue", error=CatalogueError, schema=CATALOGUE_SCHEMA)
    entries = raw.get("trigger")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path} holds no [[trigger]] entries.")
    triggers = tuple(_trigger(t, i, path) for i, t in enumerate(entries))
    ids = [t.id for t in triggers]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CatalogueError(f"{path}: duplicate trigger ids {dupes}.")
    return Catalogue(triggers=triggers, path=path)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The trigger catalogue (``data/triggers.toml`` unless ``path``), validated; parsed once per file version.

    Raises :class:`CatalogueError` when it is missing or malformed.
    """
    return load_cached(Path(path) if path else data_dir() / "triggers.toml", _parse_catalogue,
                       "trigger catalogue", CatalogueError)


# -------------------------------------------------------------------------------------------------------- matching

@dataclass(frozen=True)
class Finding:
    """One catalogue entry that matched: the entry, the exact elements, and the fix or remedies."""

    trigger: Trigger
    elements: tuple[Element, ...]
    renames: tuple[tuple[str, str], ...] = ()
    model: str = ""
    #: the element its ``says`` line names (``{value}``): the first one the entry's last condition matched (an
    #: entry's first conditions say when it applies, such as the auth style; its last one, what is carried)
    value: str = ""

    @property
    def id(self) -> str:
        return self.trigger.id

    @property
    def kind(self) -> str:
        return self.trigger.kind

    @property
    def verdict(self) -> str:
        """The entry's ``says`` line filled in with this request's elements."""
        counted = [e for e in self.elements if not e.absent]
        named = self.value or (counted[0].value if counted else "")
        try:
            return self.trigger.says.format(count=len(counted), value=_short(named, 80), model=self.model)
        except (KeyError, IndexError, ValueError):
            return self.trigger.says

    def fix_text(self) -> str:
        """The fix the reports say works, with this request's renames spelled out."""
        text = self.trigger.fix
        if self.renames:
            text += " Renames: " + ", ".join(f"{a} → {b}" for a, b in self.renames) + "."
        return text


@dataclass(frozen=True)
class Undetermined:
    """An entry the source cannot settle: its recorded conditions hold, but it needs parts the source lacks."""

    trigger: Trigger
    missing: tuple[str, ...]


def _short(text: str, limit: int = SHOW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _absence(cond: Condition, p: Part, values: list[Element]) -> Element:
    present = ", ".join(_short(e.value, 60) for e in values[:6]) + (" …" if len(values) > 6 else "")
    where = values[0].where if values else (p.label or cond.part)
    return Element(where, f"{present or 'none'} (lacks {cond.describe()})", absent=True)


def _evaluate(trigger: Trigger, inp: LintInput) -> Finding | Undetermined | None:
    elements: list[Element] = []
    missing: list[str] = []
    named = ""
    for cond in trigger.match:
        p = part(cond.part)
        if p.relevant is not None and not p.relevant(inp):
            return None
        if p.needs and not inp.knows(p.needs, p.header):
            missing.append(p.label or cond.part)
            continue
        values = p.read(inp)
        hits = [e for e in values if cond.test(e.value)]
        if cond.absent:
            if hits:
                return None
            elements.append(_absence(cond, p, values))
        else:
            if not hits:
                return None
            elements.extend(hits)
            named = hits[0].value
    if missing:
        return Undetermined(trigger, tuple(dict.fromkeys(missing)))
    renames = tuple(
        (e.value, new) for edit in trigger.edits if edit.op == "rename_tools" for e in elements
        if e.where.startswith("tools[") and (new := re.sub(edit.pattern or "", edit.replace or "", e.value)) != e.value
    )
    model = _body(inp.spec).get("model")
    return Finding(trigger, tuple(elements), renames, model if isinstance(model, str) else "", named)


def _composed_renames(findings: list[Finding]) -> list[Finding]:
    """``findings`` with each rename carried through every finding's renames, in catalogue order: a tool two entries
    flag (``mcp_memory``: its prefix, and its name) is renamed to what satisfies both (``mcp__context_notes``), not to
    a name the other entry still flags."""
    edits = [edit for f in findings for edit in f.trigger.edits if edit.op == "rename_tools"]
    if len(edits) < 2:
        return findings

    def final(name: str) -> str:
        for edit in edits:
            name = re.sub(edit.pattern or "", edit.replace or "", name)
        return name

    return [dataclasses.replace(f, renames=tuple(dict.fromkeys((old, final(old)) for old, _ in f.renames)))
            if f.renames else f for f in findings]


@dataclass
class LintResult:
    """What lint found in one request: findings (triggers, observations), undetermined entries and notes."""

    label: str
    kind: str
    findings: list[Finding]
    undetermined: list[Undetermined]
    notes: list[str]
    catalogue: Catalogue
    spec: RequestSpec
    source: str = ""

    @property
    def triggers(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "trigger"]

    @property
    def observations(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "observation"]

    @property
    def clean(self) -> bool:
        """True when no trigger matched (observations do not count)."""
        return not self.triggers

    @property
    def exit_code(self) -> int:
        return 0 if self.clean else 1

    def __len__(self) -> int:
        return len(self.triggers)

    def find(self, trigger_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == trigger_id), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per finding, then one per undetermined entry: id, kind, verdict, elements, fix or remedies,
        reports, seen, simulator snapshots, confidence."""
        import pandas as pd

        rows = []
        for f in self.findings:
            t = f.trigger
            rows.append({
                "id": t.id, "kind": t.kind, "verdict": f.verdict,
                "elements": "; ".join(f"{e.where}: {e.value}" for e in f.elements),
                "fix": f.fix_text() if t.kind == "trigger" else (
                    " / ".join(self.catalogue.remedies) if t.remedies else t.note),
                "reports": ", ".join(t.reports), "seen": ", ".join(t.seen), "policies": t.modelled_by(),
                "confidence": t.confidence, "factor": t.factor,
            })
        for u in self.undetermined:
            t = u.trigger
            rows.append({"id": t.id, "kind": "undetermined",
                         "verdict": f"cannot tell from this {self.kind}: needs {', '.join(u.missing)}",
                         "elements": "", "fix": t.fix, "reports": ", ".join(t.reports), "seen": ", ".join(t.seen),
                         "policies": t.modelled_by(), "confidence": t.confidence, "factor": t.factor})
        columns = ["id", "kind", "verdict", "elements", "fix", "reports", "seen", "policies", "confidence", "factor"]
        return pd.DataFrame(redact.redact_obj(rows), columns=columns)

    def summary(self) -> str:
        """The one-line summary the CLI prints last."""
        head = f"lint {self.label} ({self.kind}): "
        if self.triggers:
            head += (f"{len(self.triggers)} known trigger(s) matched "
                     f"({', '.join(f.id for f in self.triggers)})")
        else:
            head += "no known trigger matched"
        extra = [f"{len(self.observations)} observation(s)"] if self.observations else []
        if self.undetermined:
            extra.append(f"{len(self.undetermined)} entr{'y' if len(self.undetermined) == 1 else 'ies'} "
                         f"undetermined from this {self.kind}")
        extra.append(f"{len(self.catalogue)} entries checked, no request sent")
        return head + "; " + "; ".join(extra) + "."

    def to_text(self) -> str:
        """Each match with its elements, fix or remedies, sources and confidence; then notes; the summary last."""
        lines = [f"Request: {self.label} ({self.kind}{', ' + self.source if self.source else ''})"]
        for f in self.triggers + self.observations:
            t = f.trigger
            lines.append("")
            lines.append(f"{t.kind.upper()} {t.id}: {f.verdict}")
            for where, values in _grouped(f.elements):
                lines.append(f"  element    {where}: {values}")
            if t.kind == "trigger":
                lines.append(f"  fix        {f.fix_text()}")
                if t.fix_reports:
                    lines.append(f"             (fix reported in {', '.join(t.fix_reports)})")
            elif t.remedies:
                lines.append("  remedies   the remedies that exist, listed once below")
            if t.note:
                lines.append(f"  note       {t.note}")
            seen = ", ".join(t.seen) if t.seen else t.seen_note
            lines.append(f"  reports    {', '.join(t.reports)}; seen {seen}")
            lines.append(f"  simulator  {t.modelled_by()}")
            lines.append(f"  confidence {t.confidence}{' - ' + t.confidence_note if t.confidence_note else ''}")
        if any(f.trigger.remedies for f in self.observations):
            lines += ["", "Remedies that exist:"]
            for i, remedy in enumerate(self.catalogue.remedies, 1):
                lines.append(textwrap.fill(remedy, 100, initial_indent=f"  ({i}) ", subsequent_indent="      ",
                                           break_on_hyphens=False, break_long_words=False))
        if self.undetermined:
            lines.append("")
            lines.append(f"Cannot tell from this {self.kind} (it does not record what these need):")
            for u in self.undetermined:
                lines.append(f"  {u.trigger.id}: needs {', '.join(u.missing)}")
        if self.notes:
            lines.append("")
            lines.extend(f"Note: {n}" for n in self.notes)
        lines.append("")
        lines.append(self.summary())
        return redact.redact_text("\n".join(lines))

    def _repr_html_(self) -> str:
        """The result in a notebook: the summary, then the table (backtick code shown as code, as in the report)."""
        from lanelab.findings.render import Table, html_inline, html_table

        return redact.redact_text(f"<p>{html_inline(self.summary())}</p>{html_table(Table.from_frame(self.to_frame()))}")

    def __repr__(self) -> str:
        return f"<LintResult {self.summary()}>"

    def fixed_spec(self) -> tuple[RequestSpec, list[str]]:
        """The request with every trigger's machine edits applied (catalogue order), and what was changed.

        Only removals and corrections: renames of tool names, dropped sentences or betas, the OAuth beta, Bearer-only
        auth. Nothing identifying Claude Code is ever added. Triggers without edits are listed as not fixed.
        """
        return apply_fixes(self.spec, self.triggers)


def lint(inp: LintInput | RequestSpec, catalogue: Catalogue | None = None) -> LintResult:
    """Match one request against the catalogue; no network, nothing sent.

    ``inp`` is a :class:`LintInput` (from :func:`load_input`) or a bare :class:`RequestSpec`. Returns a
    :class:`LintResult` (``.to_frame()``, ``.to_text()``, ``.exit_code``). Raises :class:`CatalogueError` if the
    catalogue or the version gate is malformed.
    """
    if isinstance(inp, RequestSpec):
        inp = LintInput.from_spec(inp)
    catalogue = catalogue or load_catalogue()
    findings: list[Finding] = []
    undetermined: list[Undetermined] = []
    for trigger in catalogue:
        outcome = _evaluate(trigger, inp)
        if isinstance(outcome, Finding):
            findings.append(outcome)
        elif isinstance(outcome, Undetermined):
            undetermined.append(outcome)
    return LintResult(label=inp.label, kind=inp.kind, findings=_composed_renames(findings), undetermined=undetermined,
                      notes=list(inp.notes), catalogue=catalogue, spec=inp.spec, source=inp.source)


def lint_file(ref: str | Path, index: int | None = None) -> LintResult:
    """:func:`load_input` then :func:`lint`: what a notebook or the CLI calls. Raises what both raise."""
    return lint(load_input(ref, index))


def _grouped(elements: Sequence[Element]) -> Iterable[tuple[str, str]]:
    """Elements grouped by location kind (``tools[].name``), values joined when short."""
    groups: dict[str, list[Element]] = {}
    for e in elements:
        groups.setdefault(re.sub(r"\[\d+\]", "[]", e.where) if e.where.startswith("tools[") else e.where,
                          []).append(e)
    for where, items in groups.items():
        if len(items) > 1 and all(len(e.value) <= 60 for e in items):
            yield f"{where} ({len(items)})", ", ".join(e.value for e in items)
        else:
            for e in items:
                yield e.where, _short(e.value)


# ---------------------------------------------------------------------------------------------------------- fixes

def _rename(name: str, edits: Sequence[Edit]) -> str:
    for edit in edits:
        name = re.sub(edit.pattern or "", edit.replace or "", name)
    return name


def _rename_tools(body: dict[str, Any], edits: Sequence[Edit]) -> list[str]:
    changed = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            holder = tool if isinstance(tool.get("name"), str) else tool.get("function")
            if isinstance(holder, dict) and isinstance(holder.get("name"), str):
                new = _rename(holder["name"], edits)
                if new != holder["name"]:
                    changed.append(f"{holder['name']} → {new}")
                    holder["name"] = new
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        choice["name"] = _rename(choice["name"], edits)
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                block["name"] = _rename(block["name"], edits)
    return changed


def _drop_sentences(text: str, pattern: str) -> tuple[str, int]:
    spans = sentence_spans(text)
    keep, dropped, cut_from = [], 0, 0
    for i, (a, b) in enumerate(spans):
        if re.search(pattern, text[a:b]):
            dropped += 1
            keep.append(text[cut_from:a])
            cut_from = spans[i + 1][0] if i + 1 < len(spans) else len(text)
    keep.append(text[cut_from:])
    return ("".join(keep).strip() if dropped else text), dropped


def _drop_system_sentences(body: dict[str, Any], pattern: str) -> int:
    system = body.get("system")
    total = 0
    if isinstance(system, str):
        body["system"], total = _drop_sentences(system, pattern)
        if not body["system"]:
            del body["system"]
        return total
    if isinstance(system, list):
        kept = []
        for block in system:
            text = _block_text(block)
            if text is None or is_attestation(block):
                kept.append(block)
                continue
            new, n = _drop_sentences(text, pattern)
            total += n
            if new:
                if isinstance(block, dict):
                    block["text"] = new
                    kept.append(block)
                else:
                    kept.append(new)
        body["system"] = kept
    return total


def apply_fixes(spec: RequestSpec, findings: Iterable[Finding]) -> tuple[RequestSpec, list[str]]:
    """``spec`` with the machine edits of ``findings`` applied, and one line per change (or per finding left alone).

    Edits only remove or correct (see :data:`EDIT_OPS`); the catalogue loader refuses any edit that would add
    something other than the OAuth protocol beta.
    """
    out = copy.deepcopy(spec)
    body = out.body if isinstance(out.body, dict) else {}
    done: list[str] = []
    for f in findings:
        if f.kind != "trigger":
            continue
        if not f.trigger.edits:
            done.append(f"{f.id}: no machine edit; see its fix")
            continue
        renames = [e for e in f.trigger.edits if e.op == "rename_tools"]
        if renames:
            changed = _rename_tools(body, renames)
            done.append(f"{f.id}: renamed {len(changed)} tool(s)" + (f" ({', '.join(changed)})" if changed else ""))
        for edit in f.trigger.edits:
            if edit.op == "drop_sentences":
                n = _drop_system_sentences(body, edit.pattern or "")
                done.append(f"{f.id}: dropped {n} system sentence(s)")
            elif edit.op in ("drop_betas", "add_betas"):
                betas = [b.strip() for b in out.headers.get("anthropic-beta", "").split(",") if b.strip()]
                if edit.op == "drop_betas":
                    new = [b for b in betas if not re.search(edit.pattern or "", b)]
                else:
                    new = betas + [b for b in edit.betas if b in ADDABLE_BETAS and b not in betas]
                if new:
                    out.headers["anthropic-beta"] = ",".join(new)
                else:
                    out.headers.pop("anthropic-beta", None)
                done.append(f"{f.id}: anthropic-beta {','.join(betas) or '(none)'} → {','.join(new) or '(none)'}")
            elif edit.op == "set_auth" and edit.auth == "bearer":
                out.auth = "bearer"
                out.headers.pop("x-api-key", None)
                done.append(f"{f.id}: auth → bearer only")
    return out, done
