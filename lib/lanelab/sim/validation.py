"""The request shape the Messages API checks before anything else looks at a request, for the simulator.

The real API answers a body that breaks the shape (``messages`` not a list, no ``model``, ``max_tokens`` not an
integer, …) with 400 ``invalid_request_error`` and a message that names the field by its path and says what it should
be, e.g. ``max_tokens: Field required`` (immersive-translate #3993, via an Anthropic-compatible gateway) or
``max_tokens: 10000 > 4096, …`` (ChatGPTNextWeb/NextChat #4964). :func:`problem` returns the first such message in
that style; the wording of the other cases is a model assumption. Only the shape is checked: fields the kit does not
know (clients send many) are never refused here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CHECKED_PATHS", "problem"]

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
CHAT_PATH = "/v1/chat/completions"
#: The paths whose bodies are checked.
CHECKED_PATHS = frozenset({MESSAGES_PATH, COUNT_TOKENS_PATH, CHAT_PATH})

REQUIRED = "Field required"
ROLES = ("user", "assistant")
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()  # False for nan and the infinities


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return "Input should be " + (", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0])


def _content_problem(content: Any, where: str) -> str | None:
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"{where}: Input should be a valid string or a list of content blocks"
    return _entries_problem(content, where, "type")


def _entries_problem(entries: list[Any], where: str, key: str) -> str | None:
    """Each entry a dictionary with a string ``key`` (a content block's ``type``, a tool's ``name``)."""
    for j, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            return f"{where}.{j}: Input should be a valid dictionary"
        if key not in entry:
            return f"{where}.{j}.{key}: {REQUIRED}"
        if not isinstance(entry[key], str):
            return f"{where}.{j}.{key}: Input should be a valid string"
    return None


def _messages_problem(messages: Any, roles: tuple[str, ...], content_required: bool) -> str | None:
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            return f"messages.{i}: Input should be a valid dictionary"
        if "role" not in message:
            return f"messages.{i}.role: {REQUIRED}"
        if message["role"] not in roles:
            return f"messages.{i}.role: {_one_of(roles)}"
        if "content" not in message:
            if content_required:
                return f"messages.{i}.content: {REQUIRED}"
            continue
        if message["content"] is None and not content_required:
            continue
        found = _content_problem(message["content"], f"messages.{i}.content")
        if found:
            return found
    return None


def _anthropic_problem(body: Mapping[str, Any], needs_max_tokens: bool) -> str | None:
    if "model" not in body:
        return f"model: {REQUIRED}"
    if not isinstance(body["model"], str):
        return "model: Input should be a valid string"
    if needs_max_tokens:
        if "max_tokens" not in body:
            return f"max_tokens: {REQUIRED}"
        if not _is_int(body["max_tokens"]):
            return "max_tokens: Input should be a valid integer"
        if body["max_tokens"] < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    if "messages" not in body:
        return f"messages: {REQUIRED}"
    found = _messages_problem(body["messages"], ROLES, content_required=True)
    if found:
        return found
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list):
            return "system: Input should be a valid string or a list of text blocks"
        found = _content_problem(system, "system")
        if found:
            return found
    if "stream" in body and not isinstance(body["stream"], bool):
        return "stream: Input should be a valid boolean"
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        return _entries_problem(tools, "tools", "name")
    return None


def _chat_problem(body: Mapping[str, Any]) -> str | None:
    if "model" not in body:
        return f"model: {REQUIRED}"
    if not isinstance(body["model"], str):
        return "model: Input should be a valid string"
    if "messages" not in body:
        return f"messages: {REQUIRED}"
    found = _messages_problem(body["messages"], CHAT_ROLES, content_required=False)
    if found:
        return found
    for key in ("max_tokens", "max_completion_tokens"):
        if body.get(key) is not None and not _is_int(body[key]):
            return f"{key}: Input should be a valid integer"
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        return "stream: Input should be a valid boolean"
    return None


def problem(path: str, body: Any) -> str | None:
    """The first way ``body`` (a parsed JSON object) breaks the request shape of ``path``, in the API's style, or None.

    Only POST bodies of :data:`CHECKED_PATHS` are checked; anything else (and a body that is not an object, which the
    policy's ``malformed_body`` rule answers) gives None. Never raises.
    """
    if path not in CHECKED_PATHS or not isinstance(body, Mapping):
        return None
    try:
        if path == CHAT_PATH:
            return _chat_problem(body)
        return _anthropic_problem(body, needs_max_tokens=path == MESSAGES_PATH)
    except Exception:  # noqa: BLE001 - junk gives "no verdict", never an error
        return None
