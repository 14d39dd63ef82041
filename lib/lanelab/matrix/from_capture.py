"""From a captured request to a profile the matrix can use: secrets removed, transport headers dropped, prompt swappable.

A capture records what a client really sent; a profile (``data/profiles/<name>.toml``, read by
:mod:`lanelab.matrix.profiles`) is that request as reusable data. The conversion keeps every header value and body field
except credentials and per-connection headers, and replaces the user's prompt (it may be private) with a chosen one
(or keeps it, for a capture made with a known prompt).

Billing attestation (DESIGN.md, responsible use): the kit never stores, ships or sends Claude Code's billing
attestation block. Wherever one would be recorded, :func:`mark_attestation` puts :data:`ATTESTATION_MARKER` in its
place: the capture proxy does so before a capture line is written, and a profile keeps the marker where the client
sent the block, so diffs and lints still see that the client sends one (:func:`lanelab.wire.diff.is_attestation`
is true for the marker). A profile loads for sending without it (:mod:`lanelab.matrix.profiles`), and so does
:func:`load_request` unless asked for the request as captured.

A profile converted from a real client's capture also records how it was captured (:class:`CaptureInfo`: client,
version, date, exact command, method), every value of a header the client sent more than once (a profile keeps one
value per header name), the header order on the wire, and the client's other requests (probes, model listings).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanelab import redact
from lanelab.datafiles import read_toml
from lanelab.errors import InputError, NotFound, Refused, UserError
from lanelab.wire.attestation import (
    ATTESTATION_HEADER,
    ATTESTATION_MARKER,
    attestation_positions,
    holds_attestation_value,
    mark_attestation,
    without_attestation,
)
from lanelab.wire.exchanges import inference_exchange, load_exchanges
from lanelab.wire.spec import RequestSpec

#: Headers that describe one connection or carry a credential; never part of a profile.
DROPPED_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                             "proxy-connection", "upgrade", "trailer"})
DEFAULT_PROMPT = "ping"
#: Suffixes that make a name a file reference rather than a profile name.
_FILE_SUFFIXES = (".json", ".jsonl", ".toml")


class ProfileExists(Refused):
    """A profile of that name is already there (one the kit ships, or an earlier conversion): never overwritten."""


class SecretInCapture(Refused):
    """A capture holds a secret (one recorded before the kit masked it, or edited in) that a profile would copy."""

    hint = ("Capture the client again with this version of the kit (captures are redacted as they are written), or "
            "remove the value from the capture file.")


@dataclass(frozen=True)
class CaptureInfo:
    """How a profile was captured from a real client; written as the profile's ``[capture]`` table.

    ``reference_only`` is the reason when the client is a first-party one whose request the kit must never send.
    """

    client: str
    package: str
    version: str
    date: str
    command: str
    method: str
    runtime: str = ""
    capture_file: str = ""
    client_status: str = ""
    reference_only: str = ""
    notes: tuple[str, ...] = ()


def wire_facts(exchange: Mapping[str, Any]) -> dict[str, Any]:
    """What a profile cannot hold but the wire showed: header names in order, and every value of a repeated header."""
    names = [k.lower() for k, _ in exchange["request"]["headers"]]
    repeated: dict[str, list[str]] = {}
    for name, value in exchange["request"]["headers"]:
        name = name.lower()
        if names.count(name) > 1 and name not in DROPPED_HEADERS and not redact.is_sensitive_key(name):
            repeated.setdefault(name, []).append(value)
    return {"header_order": names, "repeated_headers": repeated}


def other_requests(exchanges: Sequence[Mapping[str, Any]], chosen: Mapping[str, Any]) -> list[str]:
    """One line per exchange of a capture other than ``chosen``: method, target, user agent, auth, status."""
    out = []
    for e in exchanges:
        if e is chosen or e.get("seq") == chosen.get("seq"):
            continue
        req = e["request"]
        names = {k.lower() for k, _ in req["headers"]}
        agents = [v for k, v in req["headers"] if k.lower() == "user-agent"]
        auth = "bearer" if "authorization" in names else "x-api-key" if "x-api-key" in names else "no auth"
        target = req["path"] + (f"?{req['query']}" if req.get("query") else "")
        status = (e.get("response") or {}).get("status")
        what = ""
        body = (req.get("body") or {}).get("json")
        if isinstance(body, dict) and spec_is_inference(req):
            tools = body.get("tools") or []
            what = f", model {body.get('model')}, max_tokens {body.get('max_tokens')}, {len(tools)} tools"
        out.append(f"#{e.get('seq')} {req['method']} {target} ({' + '.join(agents) or 'no user agent'}, {auth}"
                   f"{what}) -> {status}")
    return out


def spec_body_keys(exchange: Mapping[str, Any]) -> list[str]:
    """The top-level keys of the exchange's JSON body, in the order the client sent them."""
    body = ((exchange["request"].get("body") or {}).get("json"))
    return list(body) if isinstance(body, dict) else []


def spec_is_inference(req: Mapping[str, Any]) -> bool:
    return RequestSpec(method=req["method"], path=req["path"]).is_inference


def spec_from_exchange(exchange: Mapping[str, Any]) -> tuple[RequestSpec, list[str]]:
    """The request of a capture record as a :class:`RequestSpec`, and notes on what was dropped or merged."""
    req = exchange["request"]
    notes: list[str] = []
    headers: dict[str, str] = {}
    names = [k.lower() for k, _ in req["headers"]]
    auth_bearer = "authorization" in names
    auth_key = "x-api-key" in names
    for name, value in req["headers"]:
        name = name.lower()
        if name in DROPPED_HEADERS:
            continue
        if name == ATTESTATION_HEADER:
            notes.append(f"the client sent a {name} header; it is left out (the kit never sends one)")
            continue
        if redact.is_sensitive_key(name):
            if name not in ("authorization", "x-api-key"):
                notes.append(f"dropped secret header {name}")
            continue
        if name in headers:
            notes.append(f"{name} was sent twice ({headers[name]!r}, then {value!r}); the profile keeps the last")
        headers[name] = value
    auth = "both" if auth_bearer and auth_key else "bearer" if auth_bearer else "x-api-key" if auth_key else "none"
    body_rec = req.get("body") or {}
    body = mark_attestation(copy.deepcopy(body_rec.get("json")))
    if body is None and (body_rec.get("text") or body_rec.get("form")):
        raise UserError("The captured request body is not JSON; it cannot become a profile.",
                        "Pick an inference exchange (POST /v1/messages).")
    query = {}
    for k, v in (req.get("query_params") or {}).items():
        if redact.is_sensitive_key(str(k)):
            notes.append(f"dropped secret query parameter {k}")
            continue
        query[str(k)] = str(v)
    spec = RequestSpec(method=req["method"], path=req["path"], query=query, headers=headers, body=body, auth=auth)
    return spec, notes


def with_prompt(spec: RequestSpec, prompt: str) -> RequestSpec:
    """A copy of ``spec`` whose last user message says ``prompt`` (its text blocks' other keys kept)."""
    out = spec.copy()
    body = out.body if isinstance(out.body, dict) else None
    messages = body.get("messages") if body else None
    if not isinstance(messages, list):
        return out
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                msg["content"] = prompt
            elif isinstance(content, list):
                texts = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
                for b in texts[1:]:
                    content.remove(b)
                if texts:
                    texts[0]["text"] = prompt
                else:
                    content.append({"type": "text", "text": prompt})
            break
    return out


def _null_paths(obj: Any, where: str = "") -> list[str]:
    """The places of JSON nulls in ``obj`` (TOML has no null, so the writer leaves them out)."""
    if obj is None:
        return [where or "(root)"]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _null_paths(v, f"{where}.{k}" if where else str(k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _null_paths(v, f"{where}[{i}]")]
    return []


# --- a small TOML writer for JSON-like data (the stdlib reads TOML but does not write it) -----------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        items = [f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _table(name: str, data: Mapping[str, Any]) -> list[str]:
    lines = [f"[{name}]"]
    nested: list[str] = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                nested.append("")
                nested.append(f"[[{name}.{_key(k)}]]")
                nested.extend(f"{_key(ik)} = {_value(iv)}" for ik, iv in item.items() if iv is not None)
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    return lines + nested


def profile_toml(spec: RequestSpec, name: str, description: str, sources: list[str], notes: list[str],
                 extra: Mapping[str, Mapping[str, Any]] | None = None,
                 top: Mapping[str, Any] | None = None) -> str:
    """The TOML text of a profile in the ``data/profiles`` format.

    ``top`` adds top-level keys (e.g. ``reference_only``); ``extra`` adds tables after ``[request]`` (e.g.
    ``capture``, ``attestation``), each written like the request's own tables.
    """
    head = [f"name = {_value(name)}", f"description = {_value(description)}",
            "sources = [" + ", ".join(_value(s) for s in sources) + "]",
            'notes = """\n' + "\n".join(f"- {n}" for n in notes).replace('"""', "'''") + '\n"""']
    head += [f"{_key(k)} = {_value(v)}" for k, v in (top or {}).items() if v is not None] + [""]
    request = ["[request]", f"method = {_value(spec.method)}", f"path = {_value(spec.path)}",
               f"auth = {_value(spec.auth)}", ""]
    parts = head + request
    if spec.query:
        parts += _table("request.query", spec.query) + [""]
    parts += _table("request.headers", spec.headers) + [""]
    if isinstance(spec.body, dict):
        parts += _table("request.body", spec.body) + [""]
    for table, data in (extra or {}).items():
        parts += _table(table, data) + [""]
    text = "\n".join(parts)
    redact.assert_clean(text, where=f"profile {name}")
    if holds_attestation_value(text):
        raise AssertionError(f"profile {name}: a billing attestation value would be written")
    return text


def _capture_tables(info: CaptureInfo, exchange: Mapping[str, Any], exchanges: Sequence[Mapping[str, Any]],
                    positions: list[int]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    facts = wire_facts(exchange)
    capture: dict[str, Any] = {
        "client": info.client, "package": info.package, "version": info.version, "date": info.date,
        "command": info.command, "method": info.method, "runtime": info.runtime or None,
        "file": info.capture_file or None, "exchange": exchange.get("seq"),
        "client_status": info.client_status or None,
        "header_order": facts["header_order"],
        "body_key_order": list(spec_body_keys(exchange)) or None,
        "other_requests": other_requests(exchanges, exchange),
        "repeated_headers": facts["repeated_headers"] or None,
    }
    extra: dict[str, dict[str, Any]] = {"capture": capture}
    if positions:
        extra["attestation"] = {
            "positions": positions, "marker": ATTESTATION_MARKER,
            "note": ("The client sends a billing attestation block at request.body.system"
                     f"{positions}; the profile keeps a marker there and never its value. The kit sends this profile "
                     "without the block, so findings for it are for the request without the block."),
        }
    top: dict[str, Any] = {}
    if info.reference_only:
        top = {"reference_only": True, "reference_reason": info.reference_only}
    return top, extra


def profile_from_capture(capture: str | Path, name: str, *, prompt: str | None = DEFAULT_PROMPT, index: int = -1,
                         description: str | None = None, source: str | None = None,
                         out_dir: str | Path | None = None, info: CaptureInfo | None = None) -> Path:
    """Write the ``index``-th inference request of a capture as ``<out_dir>/<name>.toml`` and return its path.

    ``prompt=None`` keeps the captured prompt (a capture made with a known prompt). A billing attestation block
    stays as :data:`ATTESTATION_MARKER` in its place, with an ``[attestation]`` table saying where. ``info`` (a capture
    of a real client) adds the ``[capture]`` table and, for a first-party client, ``reference_only``. An existing file
    is never replaced. Raises :class:`ProfileExists` when ``<out_dir>/<name>.toml`` is there already (a profile the
    kit ships, or an earlier conversion), and :class:`UserError` for a bad name, a capture without inference request,
    or a non-JSON body.
    """
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise UserError(f"Profile name {name!r} is not a safe file name.", "Use letters, digits, '.', '_', '-'.")
    exchanges = load_exchanges(capture)
    exchange = inference_exchange(exchanges, index)
    spec, notes = spec_from_exchange(exchange)
    positions = attestation_positions(spec)
    if positions:
        notes.append(f"the captured request carried a billing attestation block (system{positions}); the profile "
                     "keeps a marker in its place, never the value, and the kit sends the profile without it")
    if prompt is not None:
        spec = with_prompt(spec, prompt)
        notes.append(f"the user prompt was replaced by {prompt!r}")
    else:
        notes.append("the user prompt is the one the capture was made with")
    dropped = _null_paths(spec.body)
    if dropped:
        notes.append(f"JSON nulls left out (TOML has none): {', '.join(dropped)}")
    top: dict[str, Any] = {}
    extra: dict[str, dict[str, Any]] = {}
    if info is not None:
        if wire_facts(exchange)["repeated_headers"]:
            notes.append("[capture] repeated_headers keeps every value of a header sent more than once, in wire order")
        notes.extend(info.notes)
        top, extra = _capture_tables(info, exchange, exchanges, positions)
    ua = spec.headers.get("user-agent", "unknown client")
    if description is None:
        description = (f"{info.client} {info.version} as captured on {info.date} ({ua})." if info
                       else f"Captured from {ua} with lanelab capture.")
        if info is not None and info.reference_only:
            description += " A first-party reference for diffs and lints only; the kit never sends it."
    if source is None:
        source = (f"{info.package} {info.version}, captured {info.date} with tools/capture_profiles.py "
                  f"({info.capture_file or Path(capture).name}, exchange {exchange['seq']})" if info
                  else f"lanelab capture {Path(capture).name}, exchange {exchange['seq']}")
    try:  # the last guard: a secret the capture still holds (an old or hand-edited file) is never copied
        text = profile_toml(spec, name, description, [source], notes, extra=extra, top=top)
    except redact.SecretLeak as exc:
        raise SecretInCapture(f"The capture {Path(capture).name} holds a secret the profile would copy "
                              f"({', '.join(exc.hits)}); nothing was written.") from None
    from lanelab.matrix.profiles import list_profiles, profiles_dir

    target_dir = Path(out_dir) if out_dir else profiles_dir()
    path = target_dir / f"{name}.toml"
    shipped = name in list_profiles() and path.resolve() == (profiles_dir() / f"{name}.toml").resolve()
    if shipped or path.exists():
        raise ProfileExists(
            f"{path} is {'a profile the kit ships' if shipped else 'already there'}; it is left as it is and nothing "
            "was written.", f"Choose another name (e.g. {name}-mine), or move the old file away first.")
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as fh:  # never replaces a file, even one that appeared meanwhile
            fh.write(text)
    except FileExistsError:
        raise ProfileExists(f"{path} appeared while converting; nothing was written.",
                            f"Choose another name (e.g. {name}-mine).") from None
    return path


@dataclass(frozen=True)
class Picked:
    """Which inference request of a capture was taken: its position (0-based) among the capture's inference
    requests, how many there are, and the exchange record."""

    position: int
    total: int
    exchange: Mapping[str, Any]
    skipped: str = ""  # what could not be read in the file (Exchanges.skipped_note), said with the pick

    @property
    def is_last(self) -> bool:
        return self.position == self.total - 1

    def describe(self, path: str | Path) -> str:
        """One line: ``x.jsonl: inference request 2 of 3, counting from 0, the last (the default) (exchange #5: POST
        /v1/messages?beta=true)``."""
        req = self.exchange.get("request") or {}
        target = str(req.get("path", "?")) + (f"?{req['query']}" if req.get("query") else "")
        where = f"exchange #{self.exchange.get('seq')}: {req.get('method', '?')} {target}"
        skipped = f"; {self.skipped} and was left out" if self.skipped else ""
        if self.total == 1:
            return f"{Path(path).name}: its only complete inference request ({where}){skipped}" if skipped else \
                f"{Path(path).name}: its only inference request ({where})"
        which = ", the last (the default)" if self.is_last else ""
        return (f"{Path(path).name}: inference request {self.position} of {self.total}, counting from 0{which} "
                f"({where}){skipped}")


def is_capture_ref(ref: str | Path) -> bool:
    """Whether ``ref`` names a capture file (a file that is not a ``.toml`` profile)."""
    path = Path(ref)
    return path.is_file() and path.suffix.lower() != ".toml"


def pick_request(capture: str | Path, index: int | None = None) -> Picked:
    """The ``index``-th inference request of a capture file (None or -1: the last), checked.

    Returns the :class:`Picked` request. Raises :class:`InputError` for an index out of range (saying the range)
    and :class:`UserError` for a capture without inference request.
    """
    exchanges = load_exchanges(capture)
    inference_exchange(exchanges)  # raises UserError (one line) when there is none
    found = [e for e in exchanges if e["request"]["method"] == "POST"
             and e["request"]["path"].rstrip("/").endswith(("/messages", "chat/completions"))]
    n = len(found)
    i = -1 if index is None else index
    if not -n <= i < n:
        raise InputError(f"--index {i} is out of range: {Path(capture).name} holds {n} inference request(s) "
                         f"(0 … {n - 1}, or -1 for the last).")
    return Picked(i % n, n, inference_exchange(exchanges, i), exchanges.skipped_note())


def load_request(ref: str, prompt: str | None = None, *, as_captured: bool = False,
                 index: int | None = None) -> tuple[str, RequestSpec]:
    """A request named on the command line: a capture file (its ``index``-th inference request, default the last),
    a profile file or a profile name.

    By default the request as the kit would send it: without a billing attestation block or its marker, and
    refused (:class:`lanelab.matrix.profiles.ReferenceOnlyProfile`) for a first-party reference (a reference-only
    profile, or the stored capture it came from). ``as_captured=True`` is for diffs and lints: the marker stays where
    the client sent the block (an old capture's block value is replaced by the marker, never returned) and a
    reference is allowed. The label is the profile's name, or the capture's file stem (``<stem>-request<i>`` for a
    request other than the last). Raises :class:`UserError` kinds for a missing file, an unknown or bad profile,
    and :class:`InputError` for an ``index`` out of range or given for something that is not a capture.
    """
    from lanelab.matrix import profiles as profiles_mod

    path = Path(ref)
    if index is not None and not is_capture_ref(ref):
        raise InputError(f"--index picks a request of a capture file; {ref!r} is a "
                         f"{'profile file' if path.is_file() else 'profile name'}.")
    if path.is_dir():
        raise InputError(f"{ref} is a directory, not a capture or profile file.")
    if not path.is_file() and ("/" in str(ref) or "\\" in str(ref) or path.suffix.lower() in _FILE_SUFFIXES):
        raise NotFound(f"No file at {ref}.", "Check the path, or give a profile name from data/profiles.")
    if path.is_file():
        if not as_captured:
            reference = profiles_mod.reference_for_capture(path) if path.suffix != ".toml" else None
            if reference is not None:
                raise profiles_mod.reference_refusal(f"{path.name} (the capture of {reference})")
        if path.suffix == ".toml":
            raw = read_toml(path, "profile file", schema=profiles_mod.SCHEMA)
            if not isinstance(raw.get("request"), dict):
                raise InputError(f"{path} is TOML but has no [request] table, so it is not a profile.")
            if raw.get("reference_only") and not as_captured:
                raise profiles_mod.reference_refusal(str(raw.get("name", path.stem)))
            request = raw.get("request", {})
            spec = RequestSpec(method=request.get("method", "POST"), path=request.get("path", "/v1/messages"),
                               query=dict(request.get("query", {})),
                               headers={k.lower(): v for k, v in request.get("headers", {}).items()},
                               body=mark_attestation(request.get("body")), auth=request.get("auth", "bearer"))
            label = str(raw.get("name", path.stem))
        else:
            picked = pick_request(path, index)
            spec, _ = spec_from_exchange(picked.exchange)
            label = path.stem if picked.is_last else f"{path.stem}-request{picked.position}"
        if not as_captured:
            spec, _ = without_attestation(spec)
    else:
        profile = profiles_mod.load_profile(ref)
        if as_captured:
            spec = profile.as_captured()
        else:
            spec = profiles_mod.ensure_sendable(profile).spec
        label = ref
    return label, (with_prompt(spec, prompt) if prompt is not None else spec)


def profile_for(ref: str | Path, *, index: int | None = None) -> Any:
    """The request named by ``ref`` as a :class:`lanelab.matrix.profiles.Profile` the matrix can run: a profile
    name, a profile file, or a capture file (its ``index``-th inference request, default the last), exactly as
    ``diff`` and ``bisect`` read them (:func:`load_request`).

    A shipped profile (by name, or its file under data/profiles) is that profile, with its caveats. A file becomes a
    profile named by its label; its spec is the request as the kit sends it (without a billing attestation block),
    and when the client sent such a block the profile says so in its caveats.

    Returns the ``Profile``. Raises :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a first-party reference
    (a reference-only profile, or the stored capture it came from), and :class:`UserError` kinds for a missing or
    unreadable source or an ``index`` that does not fit (see :func:`load_request`), and :class:`InputError` for a file
    whose request the matrix cannot run (see :func:`check_runnable`).
    """
    from lanelab.matrix import profiles as profiles_mod

    path = Path(ref)
    if not path.is_file() and index is None and not path.is_dir() and "/" not in str(ref) \
            and path.suffix.lower() not in _FILE_SUFFIXES:
        return profiles_mod.ensure_sendable(str(ref))
    try:
        shipped = path.suffix.lower() == ".toml" and path.resolve().parent == profiles_mod.profiles_dir().resolve()
    except OSError:
        shipped = False
    if shipped and index is None and path.is_file():
        return profiles_mod.ensure_sendable(path.stem)
    label, spec = load_request(str(ref), index=index)  # refuses a reference; the spec is without the block
    _, captured = load_request(str(ref), as_captured=True, index=index)
    check_runnable(spec, path.name)
    positions = tuple(attestation_positions(captured))
    if path.suffix.lower() == ".toml":
        raw = dict(read_toml(path, "profile file"))
        kind, sources = "profile file", tuple(str(s) for s in raw.get("sources", ())) or (f"profile file {path}",)
        description = str(raw.get("description", "")).strip() or f"The request of the profile file {path.name}."
    else:
        picked = pick_request(path, index)
        raw = {}
        kind, sources = "capture", (f"capture {path.name}, exchange {picked.exchange.get('seq')}",)
        description = f"The request captured in {picked.describe(path)}."
    raw["ref"] = str(ref)
    raw["kind"] = kind
    return profiles_mod.Profile(name=label, description=description, sources=sources, spec=spec, data=raw,
                                attestation_positions=positions, captured_spec=captured if positions else None)


def check_runnable(spec: RequestSpec, where: str) -> None:
    """Raise :class:`InputError` unless ``spec`` (read from the file ``where``) is a request the matrix can run: an
    inference request with a body and messages, and no secret in it (a profile or capture never carries one)."""
    if not spec.is_inference or not isinstance(spec.body, dict) or not spec.body.get("messages"):
        raise InputError(f"{where} holds no inference request (a [request] with a body and messages).",
                         "Choose a client profile (.toml under data/profiles) or a capture (.jsonl).")
    leaks = redact.find_secrets(json.dumps(spec.to_dict(), default=str))
    if leaks:
        raise InputError(f"{where} holds a secret ({', '.join(leaks)}); the kit does not send it.",
                         "A profile or capture carries no credential: remove it (captures are redacted as written).")


def indexes_for(refs: list[str], indexes: list[int] | None, names: tuple[str, ...] = ("A", "B")) -> list[int | None]:
    """Which inference request to take from each of ``refs`` (the ``--index`` option of ``diff`` and ``bisect``,
    repeatable): none given, the last of each capture; one value, that request of every capture named; one value per
    request, in order (``names`` says the order in messages).

    Returns one index (or None: the default) per ref. Raises :class:`InputError` when no ref is a capture, or when
    more values than refs are given.
    """
    given = list(indexes or [])
    if not given:
        return [None] * len(refs)
    captures = [is_capture_ref(r) for r in refs]
    if not any(captures):
        raise InputError(f"--index picks a request of a capture file; {' and '.join(map(repr, refs))} "
                         f"{'is' if len(refs) == 1 else 'are'} not one.")
    if len(given) == 1:
        return [given[0] if c else None for c in captures]
    if len(given) != len(refs):
        raise InputError(f"--index was given {len(given)} times; give it once (every capture) or once per request "
                         f"({', '.join(names[:len(refs)])}, in that order).")
    return list[int | None](given)
