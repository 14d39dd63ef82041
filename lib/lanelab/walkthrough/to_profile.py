"""From a captured request to a profile the matrix can use: secrets removed, transport headers dropped, prompt swappable.

A capture records what a client really sent; a profile (``data/profiles/<name>.toml``, read by
:mod:`lanelab.matrix.profiles`) is that request as reusable data. The conversion keeps every header value and body field
except credentials and per-connection headers, and replaces the user's prompt (it may be private) with a chosen one
(or keeps it, for a capture made with a known prompt).

Billing attestation (DESIGN.md, responsible use): the kit never stores, ships or sends Claude Code's billing
attestation block. Wherever one would be recorded, :func:`mark_attestation` puts :data:`ATTESTATION_MARKER` in its
place: the capture proxy does so before a capture line is written, and a profile keeps the marker where the client
sent the block, so diffs and lints still see that the client sends one (:func:`lanelab.walkthrough.diff.is_attestation`
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
from lanelab.errors import Refused, UserError
from lanelab.walkthrough.capture import inference_exchange, load_exchanges
from lanelab.walkthrough.diff import ATTESTATION_PREFIX, is_attestation
from lanelab.wire.spec import RequestSpec

#: Headers that describe one connection or carry a credential; never part of a profile.
DROPPED_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                             "proxy-connection", "upgrade", "trailer"})
DEFAULT_PROMPT = "ping"

#: What stands where a client sent a billing attestation block. It starts with the attestation prefix, so detection
#: (:func:`lanelab.walkthrough.diff.is_attestation`) still reports it; it carries no value of the block.
ATTESTATION_MARKER = (f"{ATTESTATION_PREFIX} <lanelab marker: the client sent a billing attestation block here; "
                      "its value is not stored and the kit never sends it>")
#: A header of that name, should a client send one, is recorded with this value instead of its own.
ATTESTATION_HEADER = ATTESTATION_PREFIX.rstrip(":")
_ATTESTATION_LINE = re.compile(re.escape(ATTESTATION_PREFIX) + r"[^\n]*", re.IGNORECASE)


def is_marker(block: Any) -> bool:
    """True for a system block (or string) that is the kit's marker, not a real attestation block."""
    text = block.get("text") if isinstance(block, dict) else block
    return isinstance(text, str) and text.strip() == ATTESTATION_MARKER


def holds_attestation_value(text: str) -> bool:
    """True when ``text`` holds the attestation prefix anywhere other than as the kit's marker."""
    return text.lower().count(ATTESTATION_PREFIX) != text.count(ATTESTATION_MARKER)


def mark_attestation(obj: Any) -> Any:
    """A copy of ``obj`` (JSON-like) with every billing attestation line replaced by :data:`ATTESTATION_MARKER`.

    Any string holding the attestation prefix has that line replaced (the rest of the string is kept), and a
    ``[name, value]`` header pair named ``x-anthropic-billing-header`` gets the marker as its value. Idempotent.
    """
    if isinstance(obj, str):
        return _ATTESTATION_LINE.sub(ATTESTATION_MARKER, obj) if ATTESTATION_PREFIX in obj.lower() else obj
    if isinstance(obj, dict):
        return {k: mark_attestation(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if len(obj) == 2 and all(isinstance(x, str) for x in obj) and obj[0].lower() == ATTESTATION_HEADER:
            return [obj[0], ATTESTATION_MARKER]
        return [mark_attestation(x) for x in obj]
    return obj


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


def attestation_positions(spec: RequestSpec) -> list[int]:
    """Where ``spec``'s system prompt holds a billing attestation block (or the kit's marker): block indexes.

    A string system prompt whose text holds one reports ``[0]``.
    """
    body = spec.body if isinstance(spec.body, dict) else {}
    system = body.get("system")
    if isinstance(system, list):
        return [i for i, b in enumerate(system) if is_attestation(b)]
    if isinstance(system, str) and ATTESTATION_PREFIX in system.lower():
        return [0]
    return []


def without_attestation(spec: RequestSpec) -> tuple[RequestSpec, bool]:
    """``spec`` without billing attestation blocks (or markers), and whether there was one.

    From a string system prompt only the attestation line goes; the rest of the prompt stays. A system prompt with
    nothing left is removed.
    """
    out = spec.copy()
    body = out.body if isinstance(out.body, dict) else {}
    system = body.get("system")
    if isinstance(system, list) and any(is_attestation(b) for b in system):
        body["system"] = [b for b in system if not is_attestation(b)]
        if not body["system"]:
            del body["system"]
        return out, True
    if isinstance(system, str) and ATTESTATION_PREFIX in system.lower():
        rest = _ATTESTATION_LINE.sub("", system).strip("\n")
        if rest:
            body["system"] = rest
        else:
            del body["system"]
        return out, True
    return out, False


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
    of a real client) adds the ``[capture]`` table and, for a first-party client, ``reference_only``. Raises
    :class:`UserError` for a bad name, a capture without inference request, or a non-JSON body.
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
    from lanelab.matrix.profiles import profiles_dir

    target_dir = Path(out_dir) if out_dir else profiles_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_request(ref: str, prompt: str | None = None, *, as_captured: bool = False) -> tuple[str, RequestSpec]:
    """A request named on the command line: a capture file (its last inference request), a profile file or name.

    By default the request as the kit would send it: without a billing attestation block or its marker, and
    refused (:class:`lanelab.matrix.profiles.ReferenceOnlyProfile`) for a first-party reference (a reference-only
    profile, or the stored capture it came from). ``as_captured=True`` is for diffs and lints: the marker stays where
    the client sent the block (an old capture's block value is replaced by the marker, never returned) and a
    reference is allowed. Raises :class:`UserError` kinds for a missing file, an unknown or bad profile.
    """
    from lanelab.matrix import profiles as profiles_mod

    path = Path(ref)
    if path.is_file():
        if not as_captured:
            reference = profiles_mod.reference_for_capture(path) if path.suffix != ".toml" else None
            if reference is not None:
                raise profiles_mod.reference_refusal(f"{path.name} (the capture of {reference})")
        if path.suffix == ".toml":
            raw = read_toml(path, "profile file")
            if raw.get("reference_only") and not as_captured:
                raise profiles_mod.reference_refusal(str(raw.get("name", path.stem)))
            request = raw.get("request", {})
            spec = RequestSpec(method=request.get("method", "POST"), path=request.get("path", "/v1/messages"),
                               query=dict(request.get("query", {})),
                               headers={k.lower(): v for k, v in request.get("headers", {}).items()},
                               body=mark_attestation(request.get("body")), auth=request.get("auth", "bearer"))
            label = str(raw.get("name", path.stem))
        else:
            spec, _ = spec_from_exchange(inference_exchange(load_exchanges(path)))
            label = path.stem
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
