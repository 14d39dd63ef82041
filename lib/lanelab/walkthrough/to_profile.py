"""From a captured request to a profile the matrix can use: secrets removed, transport headers dropped, prompt swappable.

A capture records what a client really sent; a profile (``data/profiles/<name>.toml``, read by
:mod:`lanelab.matrix.profiles`) is that request as reusable data. The conversion keeps every header value and body field
except credentials and per-connection headers, replaces the user's prompt (it may be private) with a chosen one,
and leaves out a billing attestation block if the client sent one: the kit does not ship requests that present
themselves as Claude Code (DESIGN.md, responsible use).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lanelab import redact
from lanelab.datafiles import read_toml
from lanelab.errors import UserError
from lanelab.walkthrough.capture import inference_exchange, load_exchanges
from lanelab.walkthrough.diff import is_attestation
from lanelab.wire.spec import RequestSpec

#: Headers that describe one connection or carry a credential; never part of a profile.
DROPPED_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                             "proxy-connection", "upgrade", "trailer"})
DEFAULT_PROMPT = "ping"


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
        if redact.is_sensitive_key(name):
            if name not in ("authorization", "x-api-key"):
                notes.append(f"dropped secret header {name}")
            continue
        if name in headers:
            notes.append(f"{name} was sent twice ({headers[name]!r}, then {value!r}); the profile keeps the last")
        headers[name] = value
    auth = "both" if auth_bearer and auth_key else "bearer" if auth_bearer else "x-api-key" if auth_key else "none"
    body_rec = req.get("body") or {}
    body = copy.deepcopy(body_rec.get("json"))
    if body is None and (body_rec.get("text") or body_rec.get("form")):
        raise UserError("The captured request body is not JSON; it cannot become a profile.",
                        "Pick an inference exchange (POST /v1/messages).")
    query = {str(k): str(v) for k, v in (req.get("query_params") or {}).items()}
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


def without_attestation(spec: RequestSpec) -> tuple[RequestSpec, bool]:
    """``spec`` without billing attestation blocks, and whether there was one."""
    out = spec.copy()
    body = out.body if isinstance(out.body, dict) else {}
    system = body.get("system")
    if isinstance(system, list) and any(is_attestation(b) for b in system):
        body["system"] = [b for b in system if not is_attestation(b)]
        return out, True
    if is_attestation(system):
        del body["system"]
        return out, True
    return out, False


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


def profile_toml(spec: RequestSpec, name: str, description: str, sources: list[str], notes: list[str]) -> str:
    """The TOML text of a profile in the ``data/profiles`` format."""
    head = [f"name = {_value(name)}", f"description = {_value(description)}",
            "sources = [" + ", ".join(_value(s) for s in sources) + "]",
            'notes = """\n' + "\n".join(f"- {n}" for n in notes).replace('"""', "'''") + '\n"""', ""]
    request = ["[request]", f"method = {_value(spec.method)}", f"path = {_value(spec.path)}",
               f"auth = {_value(spec.auth)}", ""]
    parts = head + request
    if spec.query:
        parts += _table("request.query", spec.query) + [""]
    parts += _table("request.headers", spec.headers) + [""]
    if isinstance(spec.body, dict):
        parts += _table("request.body", spec.body) + [""]
    text = "\n".join(parts)
    redact.assert_clean(text, where=f"profile {name}")
    return text


def profile_from_capture(capture: str | Path, name: str, *, prompt: str = DEFAULT_PROMPT, index: int = -1,
                         description: str | None = None, source: str | None = None,
                         out_dir: str | Path | None = None) -> Path:
    """Write the ``index``-th inference request of a capture as ``<out_dir>/<name>.toml`` and return its path."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise UserError(f"Profile name {name!r} is not a safe file name.", "Use letters, digits, '.', '_', '-'.")
    exchange = inference_exchange(load_exchanges(capture), index)
    spec, notes = spec_from_exchange(exchange)
    spec, had_block = without_attestation(spec)
    if had_block:
        notes.append("the captured request carried a billing attestation block; it is left out "
                     "(the kit does not replay one)")
    spec = with_prompt(spec, prompt)
    notes.append(f"the user prompt was replaced by {prompt!r}")
    ua = spec.headers.get("user-agent", "unknown client")
    text = profile_toml(spec, name, description or f"Captured from {ua} with lanelab capture.",
                        [source or f"lanelab capture {Path(capture).name}, exchange {exchange['seq']}"], notes)
    from lanelab.matrix.profiles import profiles_dir

    target_dir = Path(out_dir) if out_dir else profiles_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_request(ref: str, prompt: str | None = None) -> tuple[str, RequestSpec]:
    """A request named on the command line: a capture file (its last inference request) or a profile name."""
    path = Path(ref)
    if path.is_file():
        if path.suffix == ".toml":
            raw = read_toml(path, "profile file")
            request = raw.get("request", {})
            spec = RequestSpec(method=request.get("method", "POST"), path=request.get("path", "/v1/messages"),
                               query=dict(request.get("query", {})),
                               headers={k.lower(): v for k, v in request.get("headers", {}).items()},
                               body=request.get("body"), auth=request.get("auth", "bearer"))
            label = str(raw.get("name", path.stem))
        else:
            spec, _ = spec_from_exchange(inference_exchange(load_exchanges(path)))
            label = path.stem
    else:
        from lanelab.matrix.profiles import load_profile

        spec, label = load_profile(ref).spec, ref
    return label, (with_prompt(spec, prompt) if prompt is not None else spec)
