"""The small registry of transformation kinds: how a factor level rewrites a request spec.

A factor level in ``data/factors.toml`` names a *kind* and its *args*; the kind is a pure function here that takes a
spec and returns a new one. New factors are data edits; only a genuinely new way of rewriting a request needs a new
kind (one decorated function below). Every kind touches only its own part of the request (a header, a body key, the
path), which is what lets a matrix attribute a changed verdict to one change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lanelab.errors import NotFound
from lanelab.wire.spec import AUTH_STYLES, RequestSpec

__all__ = ["Transform", "TransformContext", "UnknownTransform", "apply", "kinds", "to_openai_body",
           "transform"]

Transform = Callable[[RequestSpec, Mapping[str, Any], "TransformContext"], None]

_KINDS: dict[str, Transform] = {}


class UnknownTransform(NotFound):
    """A level names a kind of transformation the kit does not have."""


@dataclass(frozen=True)
class TransformContext:
    """What a level may consult besides the spec it rewrites.

    ``profile`` is the profile's original spec (for "the profile's …" levels); ``identity_texts`` are the system
    texts that count as an identity block (so "further blocks" levels can leave it alone).
    """

    profile: RequestSpec = field(default_factory=RequestSpec)
    identity_texts: tuple[str, ...] = ()


def transform(kind: str) -> Callable[[Transform], Transform]:
    """Register ``fn`` as the implementation of ``kind``. The function mutates the copy it is given."""

    def register(fn: Transform) -> Transform:
        _KINDS[kind] = fn
        return fn

    return register


def kinds() -> list[str]:
    return sorted(_KINDS)


def apply(spec: RequestSpec, kind: str, args: Mapping[str, Any], context: TransformContext) -> RequestSpec:
    """A new spec: ``spec`` rewritten by ``kind`` with ``args``. ``spec`` itself is never modified."""
    fn = _KINDS.get(kind)
    if fn is None:
        raise UnknownTransform(
            f"No transformation kind {kind!r}.",
            hint=f"Use one of: {', '.join(kinds())}, or register a new kind in lanelab.matrix.transforms.",
        )
    out = _copy(spec)
    fn(out, args, context)
    return out


def _copy(spec: RequestSpec) -> RequestSpec:
    """A deep copy; JSON bodies round-trip through json, several times faster than copy.deepcopy."""
    try:
        body = json.loads(json.dumps(spec.body))
    except (TypeError, ValueError):
        return spec.copy()
    return RequestSpec(method=spec.method, path=spec.path, query=dict(spec.query), headers=dict(spec.headers),
                       body=body, auth=spec.auth, credential=spec.credential)


# ----------------------------------------------------------------------------------------------- helpers


def _body(spec: RequestSpec) -> dict[str, Any]:
    if not isinstance(spec.body, dict):
        spec.body = {}
    return spec.body


def _system_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The system prompt as a list of text blocks (a plain string becomes one block)."""
    system = body.get("system")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return [dict(b) for b in system]


def _set_system(body: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    if blocks:
        body["system"] = blocks
    else:
        body.pop("system", None)


def _is_identity(block: Mapping[str, Any], texts: tuple[str, ...]) -> bool:
    return str(block.get("text", "")).strip() in texts


def _betas(spec: RequestSpec) -> list[str]:
    raw = spec.headers.get("anthropic-beta", "")
    return [b.strip() for b in raw.split(",") if b.strip()]


def _set_betas(spec: RequestSpec, betas: list[str]) -> None:
    if betas:
        spec.headers["anthropic-beta"] = ",".join(betas)
    else:
        spec.headers.pop("anthropic-beta", None)


def _bare_name(name: str, prefixes: list[str]) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


# ----------------------------------------------------------------------------------------------- kinds


@transform("keep")
def _keep(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """The level that leaves the request as the profile shapes it (every factor's baseline)."""


@transform("header")
def _header(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """Set one header to ``value``, or remove it when ``value`` is absent."""
    name = str(args["name"]).lower()
    if args.get("value") is None:
        spec.headers.pop(name, None)
    else:
        spec.headers[name] = str(args["value"])


@transform("auth")
def _auth(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """How the credential is attached: ``bearer``, ``x-api-key``, ``both`` or ``none`` (wire.apply_auth does it)."""
    style = str(args["style"])
    if style not in AUTH_STYLES:
        raise ValueError(f"auth style {style!r} is not one of {AUTH_STYLES}")
    spec.auth = style


@transform("credential")
def _credential(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """Which saved or imported credential (a label, never a token) the request is sent with."""
    spec.credential = str(args["label"])


@transform("betas")
def _betas_kind(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """The ``anthropic-beta`` list: from ``base`` (none, current, profile or a given list), minus ``remove``, plus
    ``add`` (appended in order, skipping ones present). An empty result removes the header."""
    base = args.get("base", "current")
    if base == "none":
        betas: list[str] = []
    elif base == "profile":
        betas = _betas(ctx.profile)
    elif base == "current":
        betas = _betas(spec)
    else:
        betas = [str(b) for b in base]
    removed = {str(b) for b in args.get("remove", ())}
    betas = [b for b in betas if b not in removed]
    for b in args.get("add", ()):
        if b not in betas:
            betas.append(str(b))
    _set_betas(spec, betas)


@transform("identity")
def _identity(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """Identity block on (``text`` becomes ``system[0]`` unless an identity block is already first) or off (every
    identity block removed). Other system blocks are left exactly as they were."""
    texts = tuple(ctx.identity_texts) + ((str(args["text"]),) if args.get("text") else ())
    body = _body(spec)
    blocks = _system_blocks(body)
    if args.get("on"):
        if blocks and _is_identity(blocks[0], texts):
            return
        block: dict[str, Any] = {"type": "text", "text": str(args["text"])}
        if args.get("cache_control"):
            block["cache_control"] = dict(args["cache_control"])
        _set_system(body, [block, *blocks])
    else:
        if any(_is_identity(b, texts) for b in blocks):
            _set_system(body, [b for b in blocks if not _is_identity(b, texts)])


@transform("system_extra")
def _system_extra(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """The system blocks after the identity block: removed (no ``text``) or replaced by one block holding ``text``,
    so that a reported trigger sentence is tested on its own. Identity blocks stay where they are."""
    body = _body(spec)
    blocks = _system_blocks(body)
    kept = [b for b in blocks if _is_identity(b, ctx.identity_texts)]
    if args.get("text"):
        kept.append({"type": "text", "text": str(args["text"])})
    if kept != blocks:
        _set_system(body, kept)


def _rename_tools(body: dict[str, Any], rename: Callable[[str], str]) -> None:
    """Rename every tool and a forced ``tool_choice`` alike (a forced name must match one in ``tools``)."""
    if isinstance(body.get("tools"), list):
        body["tools"] = [{**t, "name": rename(str(t.get("name", "")))} for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and "name" in choice:
        body["tool_choice"] = {**choice, "name": rename(str(choice["name"]))}


@transform("tools")
def _tools(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """The tool list: ``remove`` (no tools, so no ``tool_choice`` either), ``rename`` (strip the ``strip`` prefixes,
    then add ``prefix``), or ``replace`` with the given ``tools`` (a forced choice then points at the first one)."""
    body = _body(spec)
    mode = args["mode"]
    if mode == "remove":
        body.pop("tools", None)
        body.pop("tool_choice", None)
    elif mode == "rename":
        strip = [str(p) for p in args.get("strip", ())]
        prefix = str(args.get("prefix", ""))
        _rename_tools(body, lambda n: prefix + _bare_name(n, strip))
    elif mode == "replace":
        tools = [dict(t) for t in args["tools"]]
        body["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool":
            body["tool_choice"] = {**choice, "name": tools[0]["name"]}
    else:
        raise ValueError(f"tools mode {mode!r} is not remove, rename or replace")


@transform("tool_choice")
def _tool_choice(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """``tool_choice`` set to ``{"type": choice}``, removed (``absent``), or forced to the first tool
    (``forced_first``; nothing to force without tools, so then it is removed)."""
    body = _body(spec)
    choice = args["choice"]
    if choice == "absent":
        body.pop("tool_choice", None)
    elif choice == "forced_first":
        tools = body.get("tools") or []
        if tools:
            body["tool_choice"] = {"type": "tool", "name": tools[0]["name"]}
        else:
            body.pop("tool_choice", None)
    else:
        body["tool_choice"] = {"type": str(choice)}


@transform("body_set")
def _body_set(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """One top-level body key set to ``value``, or removed when ``value`` is absent."""
    body = _body(spec)
    if "value" in args:
        body[str(args["key"])] = args["value"]
    else:
        body.pop(str(args["key"]), None)


@transform("body_from_profile")
def _body_from_profile(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """One top-level body key restored to the profile's value (removed when the profile has none)."""
    key = str(args["key"])
    body = _body(spec)
    source = ctx.profile.body if isinstance(ctx.profile.body, dict) else {}
    if key in source:
        body[key] = source[key]
    else:
        body.pop(key, None)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n\n".join(str(b.get("text", "")) for b in content or () if isinstance(b, dict) and "text" in b)


def to_openai_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages body in the OpenAI chat-completions shape (what an OpenAI-SDK client sends to a compat layer):
    system blocks joined into one ``system`` message, text content flattened, tools as ``function`` tools,
    ``cache_control`` and ``metadata`` dropped (no place for them there)."""
    messages: list[dict[str, Any]] = []
    system = _system_blocks(dict(body))
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for m in body.get("messages", ()):
        messages.append({"role": m.get("role", "user"), "content": _text_of(m.get("content"))})
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for key in ("max_tokens", "stream", "temperature"):
        if key in body:
            out[key] = body[key]
    if body.get("tools"):
        out["tools"] = [
            {"type": "function", "function": {"name": t.get("name"), "description": t.get("description", ""),
                                              "parameters": t.get("input_schema", {"type": "object"})}}
            for t in body["tools"]
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif kind == "any":
            out["tool_choice"] = "required"
        elif kind in ("auto", "none"):
            out["tool_choice"] = kind
    return out


@transform("endpoint")
def _endpoint(spec: RequestSpec, args: Mapping[str, Any], ctx: TransformContext) -> None:
    """Where the request goes: ``path`` and ``query``; the body follows the endpoint's shape (``keep_body_keys``
    for count_tokens, ``body_shape = "openai"`` for chat completions). Headers and auth are left alone."""
    spec.path = str(args["path"])
    spec.query = {str(k): str(v) for k, v in dict(args.get("query", {})).items()}
    if not isinstance(spec.body, dict):
        return
    keep = args.get("keep_body_keys")
    if keep is not None:
        spec.body = {k: v for k, v in spec.body.items() if k in set(keep)}
    if args.get("body_shape") == "openai":
        spec.body = to_openai_body(spec.body)
