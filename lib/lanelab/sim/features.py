"""What the simulator's policy rules look at: one request, reduced to plain, typed features.

The app hands over whatever arrived on the wire (headers possibly repeated, a body that may be junk); this module
derives every field a policy condition matches on, and never raises: a field that cannot be derived keeps its
empty default. Keeping extraction apart from the rules means the rules stay declarative data (data/policies/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

from lanelab.sim import outcomes, validation

__all__ = ["AUTH_STYLES", "BODY_SHAPES", "MODEL_FAMILIES", "OPENAI_PATHS", "TOKEN_KINDS", "HeaderFeatures",
           "RequestFeatures", "TokenInfo",
           "compact_json", "extract", "header_pairs", "host_name", "model_family", "tool_base_name"]

TOKEN_KINDS = ("oauth", "api_key", "unknown", "none")
AUTH_STYLES = ("bearer", "x-api-key", "both", "none")
MODEL_FAMILIES = ("haiku", "sonnet", "opus", "other")
BODY_SHAPES = ("anthropic", "openai", "none", "invalid")

#: Paths whose bodies use the OpenAI chat shape (references/protocol.md §5).
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})

_MCP_SERVER_TOOL = re.compile(r"^mcp__(?:[^_].*?__)?(?P<tool>.+)$")
_MCP_SINGLE = re.compile(r"^mcp_(?!_)(?P<tool>.+)$")


@dataclass(frozen=True)
class TokenInfo:
    """What the simulator knows about the credential a request carried (never the credential itself)."""

    kind: str = "none"
    valid: bool = False
    expired: bool = False
    scopes: tuple[str, ...] = ()
    source: str | None = None

    @classmethod
    def none(cls) -> TokenInfo:
        return cls(kind="none", valid=False)


@dataclass
class RequestFeatures:
    """One request as the rules see it: the raw parts plus everything derived from them.

    A record that :func:`extract` makes once per request and the rules only read (not frozen: a frozen dataclass's
    constructor costs several times as much, on every request). The joined system text and the tools' base names are
    worked out when first read and kept."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    token: TokenInfo
    beta_query: bool = False
    auth_style: str = "none"
    betas: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()
    x_app: str | None = None
    anthropic_version: str | None = None
    body_shape: str = "none"
    model: str | None = None
    model_family: str = "other"
    stream: bool = False
    max_tokens: int | None = None
    system_texts: tuple[str, ...] = ()
    first_system_is_identity: bool = False
    system_chars: int = 0
    tool_names: tuple[str, ...] = ()
    tools_json_size: int = 0
    tool_choice_type: str | None = None
    tool_choice_name: str | None = None
    has_metadata_user_id: bool = False
    messages_count: int = 0
    message_roles: tuple[str, ...] = field(default=())
    host: str = ""
    request_problem: str | None = None

    @property
    def user_agent(self) -> str | None:
        """The last user-agent header (what most servers keep when a client sends two)."""
        return self.user_agents[-1] if self.user_agents else None

    @property
    def tools_present(self) -> bool:
        return bool(self.tool_names) or self.tools_json_size > 2

    @cached_property
    def tool_base_names(self) -> tuple[str, ...]:
        """Tool names with any ``mcp__server__`` / ``mcp__`` / ``mcp_`` wrapper removed (``mcp__memory`` → ``memory``)."""
        return tuple(tool_base_name(n) for n in self.tool_names)

    @cached_property
    def system_text(self) -> str:
        return "\n".join(self.system_texts)


def tool_base_name(name: str) -> str:
    """The tool a wire name refers to, whichever MCP-style prefix a client wrapped it in."""
    m = _MCP_SERVER_TOOL.match(name) or _MCP_SINGLE.match(name)
    return m.group("tool") if m else name


def model_family(model: Any) -> str:
    """haiku / sonnet / opus from a model id; anything else (or junk) is "other"."""
    if not isinstance(model, str):
        return "other"
    lowered = model.lower()
    for fam in ("haiku", "sonnet", "opus"):
        if fam in lowered:
            return fam
    return "other"


def header_pairs(headers: Any) -> list[tuple[str, str]]:
    """(lower-case name, value) pairs, keeping repeats, from a dict, Starlette ``Headers`` or a list of pairs."""
    if headers is None:
        return []
    try:
        if hasattr(headers, "multi_items"):
            items: Iterable[Any] = headers.multi_items()
        elif isinstance(headers, Mapping):
            items = headers.items()
        else:
            items = headers
        pairs = []
        for item in items:
            try:
                name, value = item
            except (TypeError, ValueError):
                continue
            if type(name) is not str:
                name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            if type(value) is not str:
                value = value.decode("latin-1") if isinstance(value, bytes) else "" if value is None else str(value)
            pairs.append((name.lower(), value))
        return pairs
    except Exception:  # noqa: BLE001 - junk headers give no features, never an error
        return []


def _query_dict(query: Any) -> dict[str, str]:
    if query is None:
        return {}
    try:
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        if isinstance(query, str):
            return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))
        if isinstance(query, Mapping):
            return {str(k): str(v) for k, v in query.items()}
    except Exception:  # noqa: BLE001 - junk query strings give no features, never an error
        return {}
    return {}


def _parse_body(body: Any) -> Any:
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read, junk all the same
            return body
    return body


def _texts_of_content(content: Any) -> list[str]:
    """Texts in an Anthropic/OpenAI content value: a string, or a list of blocks with ``text``."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        out = []
        for block in content:
            if isinstance(block, str):
                out.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                out.append(block["text"])
        return out
    return []


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, Mapping):
        return None
    name = tool.get("name")
    if isinstance(name, str):
        return name
    fn = tool.get("function")  # OpenAI shape
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return fn["name"]
    return None


#: Compact JSON, as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` writes it (one encoder, made once).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text (no spaces, non-ASCII kept); raises as ``json.dumps`` does."""
    return _COMPACT.encode(value)


def _json_size(value: Any) -> int:
    try:
        return len(compact_json(value))
    except (TypeError, ValueError, RecursionError):
        return 0


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):  # inf, nan
        return None


def _auth_style(headers: dict[str, str]) -> str:
    bearer = "authorization" in headers
    api_key = "x-api-key" in headers
    if bearer and api_key:
        return "both"
    return "bearer" if bearer else "x-api-key" if api_key else "none"


class HeaderFeatures:
    """The features of a request's headers, for the last header dict seen (one simulator's: it holds the values,
    its credential among them, so it lives and goes with the simulator). A client sends the same headers request
    after request: the same dict again is not read again."""

    def __init__(self) -> None:
        self._last: tuple[tuple[tuple[str, str], ...], dict[str, Any]] | None = None

    def of(self, headers: Any) -> dict[str, Any]:
        """The header features of ``headers`` (a fresh ``headers`` dict each time: rules may keep it)."""
        key = tuple(headers.items()) if type(headers) is dict else None
        last = self._last
        if key is not None and last is not None and last[0] == key:
            found = last[1]
        else:
            found = _header_features(headers)
            if key is not None:
                self._last = (key, found)
        return {**found, "headers": dict(found["headers"])}


def _header_features(headers: Any) -> dict[str, Any]:
    merged: dict[str, str] = {}
    betas: list[str] = []
    user_agents: list[str] = []
    for name, value in header_pairs(headers):  # one pass: repeats merged, betas split, non-empty user agents
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
        if name == "anthropic-beta":
            betas.extend(b for b in (part.strip() for part in value.split(",")) if b)
        elif name == "user-agent" and value.strip():
            user_agents.append(value.strip())
    return {"headers": merged, "auth_style": _auth_style(merged), "betas": tuple(betas),
            "user_agents": tuple(user_agents), "x_app": merged.get("x-app"),
            "anthropic_version": merged.get("anthropic-version"), "host": host_name(merged.get("host"))}


def extract(method: str, path: str, query: Any, headers: Any, body: Any, token: TokenInfo | None,
            header_features: HeaderFeatures | None = None) -> RequestFeatures:
    """Derive every feature the policy rules match on. Never raises: junk yields empty features. ``header_features``
    is the simulator's :class:`HeaderFeatures` (the same headers again are not read again)."""
    from_headers = header_features.of(headers) if header_features is not None else _header_features(headers)
    query_d = _query_dict(query)
    path_s = path if isinstance(path, str) else ""
    path_s = path_s.split("?", 1)[0] or "/"
    method_s = str(method or "").upper()
    parsed = _parse_body(body)
    if parsed is None:
        derived: dict[str, Any] = {"body_shape": "none"}
    elif not isinstance(parsed, Mapping):
        derived = {"body_shape": "invalid"}
    else:
        derived = _body_features(parsed, path_s in OPENAI_PATHS)
        if method_s == "POST":
            derived["request_problem"] = validation.problem(path_s, parsed)
    return RequestFeatures(
        method=method_s, path=path_s, query=query_d, body=body,
        token=token if isinstance(token, TokenInfo) else TokenInfo.none(),
        beta_query=query_d.get("beta", "").lower() == "true", **from_headers, **derived)


def host_name(value: Any) -> str:
    """The host name of a ``Host`` header value, lower-case, without the port (``""`` for junk)."""
    if not isinstance(value, str):
        return ""
    text = value.strip().lower()
    if text.startswith("["):  # an IPv6 literal
        return text.split("]", 1)[0] + "]"
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def _body_features(body: Mapping[str, Any], openai: bool) -> dict[str, Any]:
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    roles = tuple(m.get("role") for m in messages if isinstance(m, Mapping) and isinstance(m.get("role"), str))
    if openai:
        # OpenAI shape: system prompts are messages with role system/developer (references/protocol.md §5).
        system_texts = [
            t for m in messages if isinstance(m, Mapping) and m.get("role") in ("system", "developer")
            for t in _texts_of_content(m.get("content"))
        ]
    else:
        system_texts = _texts_of_content(body.get("system"))
    tools = body.get("tools")
    tools = tools if isinstance(tools, list) else []
    names = tuple(n for n in (_tool_name(t) for t in tools) if n is not None)
    choice = body.get("tool_choice")
    choice_type = choice_name = None
    if isinstance(choice, Mapping):
        choice_type = choice.get("type") if isinstance(choice.get("type"), str) else None
        choice_name = _tool_name(choice)
    elif isinstance(choice, str):
        choice_type = choice
    metadata = body.get("metadata")
    model = body.get("model") if isinstance(body.get("model"), str) else None
    return {
        "body_shape": "openai" if openai else "anthropic",
        "model": model,
        "model_family": model_family(model),
        "stream": body.get("stream") is True,
        "max_tokens": _int_or_none(body.get("max_tokens", body.get("max_completion_tokens"))),
        "system_texts": tuple(system_texts),
        "first_system_is_identity": bool(system_texts) and system_texts[0] == outcomes.identity_line(),
        "system_chars": sum(len(t) for t in system_texts),
        "tool_names": names,
        "tools_json_size": _json_size(tools) if tools else 0,
        "tool_choice_type": choice_type,
        "tool_choice_name": choice_name,
        "has_metadata_user_id": isinstance(metadata, Mapping) and metadata.get("user_id") not in (None, ""),
        "messages_count": len(messages),
        "message_roles": roles,
    }
