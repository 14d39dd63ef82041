"""Claude Code's billing attestation block: detected, reported and replaced by a marker; never generated or sent.

Claude Code puts a client-attestation line (``x-anthropic-billing-header: …``) first in its system prompt, and some
third-party clients copy one (references/hermes.md F7; references/clients-2026-11.md §4). The kit diagnoses; it does
not evade (DESIGN.md, responsible use): it may say that a request carries such a block, and it stores a capture or a
profile with :data:`ATTESTATION_MARKER` in the block's place, but nothing here builds a block, and a request that holds
one is sent only without it (:func:`without_attestation`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lanelab.errors import Refused

if TYPE_CHECKING:  # only for annotations: lanelab.wire.spec imports this module
    from lanelab.wire.spec import RequestSpec

__all__ = [
    "ATTESTATION_HEADER",
    "ATTESTATION_MARKER",
    "ATTESTATION_PREFIX",
    "FIRST_PARTY_HEADER_PREFIXES",
    "FirstPartyRequest",
    "attestation_positions",
    "carries_attestation",
    "holds_attestation_value",
    "is_attestation",
    "is_marker",
    "mark_attestation",
    "refuse_first_party",
    "without_attestation",
]

#: The prefix of a system text block that is a billing attestation (references/hermes.md F7). Detection only.
ATTESTATION_PREFIX = "x-anthropic-billing-header:"
#: What stands where a client sent a billing attestation block. It starts with the attestation prefix, so detection
#: (:func:`is_attestation`) still reports it; it carries no value of the block.
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


#: Header names only Claude Code itself sends (seen in its captured request: references/clients-2026-11.md §1, the
#: claude-code profile's capture); no third-party client sends them. A request carrying one is Claude Code's own.
FIRST_PARTY_HEADER_PREFIXES = ("x-claude-code-", "x-claude-1p-")


class FirstPartyRequest(Refused):
    """The kit was asked to send a request that carries Claude Code's own identification or attestation."""

    hint = ("A captured Claude Code request is a reference for diffs and lints only (DESIGN.md, responsible use): "
            "diff your client against it, or lint your client's request; the kit never sends it.")


def refuse_first_party(spec: RequestSpec) -> None:
    """Raise :class:`FirstPartyRequest` when ``spec`` carries a billing attestation block (or the kit's marker for
    one) or a header only Claude Code sends. Called by :func:`lanelab.wire.spec.build_request`, the one place every
    request the kit sends is built, so such a request cannot be sent whatever file it came from."""
    first_party = sorted(h for h in spec.headers if h.lower().startswith(FIRST_PARTY_HEADER_PREFIXES))
    if carries_attestation(spec) or first_party:
        what = f"header(s) {', '.join(first_party)}" if first_party else "a billing attestation block"
        raise FirstPartyRequest(f"Refusing to send a request that carries Claude Code's own {what}.")
