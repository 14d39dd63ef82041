"""What a search applies to a request, and how a cause is said in words.

An :class:`Item` is one thing diagnose and bisect may apply to a client's request: a lint fix (applied as lint applies
it) or one fine difference (:func:`lanelab.wire.diff.differences` with ``grain="fine"``) against a reference built
from the client's own request by removal only (:func:`reference_requests`). :func:`describe` and :func:`fix_phrase`
turn items into the words of a verdict ("with `mcp__` instead of `mcp_`"). No request is sent here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lanelab import redact
from lanelab.findings.verdict import code, prefix_rename
from lanelab.walkthrough.lint import Finding, LintResult, apply_fixes
from lanelab.wire.attestation import is_attestation
from lanelab.wire.diff import MISSING, Difference, apply_differences, differences, keep_sentences, tool_name
from lanelab.wire.spec import RequestSpec

__all__ = ["CauseElement", "Item", "apply_items", "code_span", "describe", "fine_items", "fix_phrase", "lint_items",
           "pluralise", "reference_requests"]

#: Lint fixes are tried likeliest first: by the catalogue's confidence, then in catalogue order.
CONFIDENCE_ORDER = {"High": 0, "Med": 1, "Low": 2}
#: Headers the first reference keeps: the client's own identification and the protocol's own headers.
IDENTIFYING_HEADERS = ("user-agent", "x-app")
PROTOCOL_HEADERS = ("anthropic-version", "content-type", "accept")
#: anthropic-beta tokens the first reference keeps (the client's identification beta, the OAuth protocol's beta);
#: the second keeps only the OAuth one.
IDENTIFYING_BETA = re.compile(r"^claude-code-")
PROTOCOL_BETA = re.compile(r"^oauth-")
#: Body fields every reference keeps: what the request is (model, conversation) and how it is answered.
BODY_KEPT = ("model", "messages", "max_tokens", "stream")
#: Longest value shown in a verdict's code span.
CODE_CHARS = 100


@dataclass(frozen=True)
class Item:
    """One thing the search may apply: a lint fix or one fine difference.

    A lint fix is applied as lint applies it (:func:`lanelab.walkthrough.lint.apply_fixes`, after the fine
    differences of the same probe and in catalogue order, so two fixes of one tool name compose); ``diffs`` are the
    fine differences it makes to the request as sent, which describe it. ``order`` is its place in the catalogue."""

    label: str
    diffs: tuple[Difference, ...]
    finding: Finding | None = None
    order: int = 0


@dataclass(frozen=True)
class CauseElement:
    """One element of the cause, in words: where it is, what it is, its value before and after, and the fix."""

    element: str
    what: str
    before: str
    after: str
    fix: str
    lint: str | None = None


def _first_text(system: Any) -> tuple[int | None, str | None]:
    """(index, text) of the first system text block that is not an attestation block; (None, text) for a string."""
    if isinstance(system, str):
        return None, system
    for i, block in enumerate(system if isinstance(system, list) else []):
        if is_attestation(block):
            continue
        text = block.get("text") if isinstance(block, dict) else block
        if isinstance(text, str) and text.strip():
            return i, text
    return None, None


def reference_requests(spec: RequestSpec) -> list[tuple[str, str, RequestSpec]]:
    """The references diagnose bisects against, nearest first: ``(name, description, spec)``.

    Both are ``spec`` with elements removed, nothing added: ``own-identification`` keeps the model, messages,
    ``max_tokens``, ``stream``, the protocol headers, the client's own user agent and ``x-app``, its oauth and
    claude-code betas, and the first sentence of its system prompt; ``minimal`` keeps the model, messages, the
    protocol headers and the OAuth beta only. A reference equal to ``spec`` (or to the one before it) is skipped.
    """
    out: list[tuple[str, str, RequestSpec]] = []
    for name, keep_identity in (("own-identification", True), ("minimal", False)):
        ref = spec.copy()
        ref.query = {}
        headers = {k: v for k, v in spec.headers.items()
                   if k in PROTOCOL_HEADERS or (keep_identity and k in IDENTIFYING_HEADERS)}
        sep = ", " if ", " in spec.headers.get("anthropic-beta", "") else ","
        betas = [b.strip() for b in spec.headers.get("anthropic-beta", "").split(",") if b.strip()]
        kept = [b for b in betas if PROTOCOL_BETA.match(b) or (keep_identity and IDENTIFYING_BETA.match(b))]
        if kept:
            headers["anthropic-beta"] = sep.join(kept)
        ref.headers = headers
        if spec.auth == "both":
            ref.auth = "bearer"
        if isinstance(spec.body, dict):
            body = {k: v for k, v in spec.body.items() if k in BODY_KEPT}
            where, text = _first_text(spec.body.get("system"))
            if keep_identity and text is not None:
                first = keep_sentences(text, [0])
                if where is None:
                    body["system"] = first
                else:
                    block = spec.body["system"][where]
                    body["system"] = [{**block, "text": first} if isinstance(block, dict) else first]
                    if isinstance(block, dict):
                        body["system"][0].pop("cache_control", None)
            ref.body = {k: body[k] for k in spec.body if k in body}
        if ref != spec and all(ref != r for _, _, r in out):
            desc = ("the request cut down to its model, messages and the client's own identification (user agent, "
                    "x-app, its betas, the first system sentence)" if keep_identity else
                    "the request cut down to its model and messages, with the protocol headers and the OAuth beta only")
            out.append((name, desc, ref))
    return out


def lint_items(spec: RequestSpec, result: LintResult) -> list[Item]:
    """Each lint trigger with machine edits as one :class:`Item`: the fine differences its fix makes to ``spec``,
    likeliest first (catalogue confidence, then catalogue order). Triggers without edits are left to the search."""
    order = {id(f): i for i, f in enumerate(result.triggers)}
    findings = sorted((f for f in result.triggers if f.trigger.edits),
                      key=lambda f: CONFIDENCE_ORDER.get(f.trigger.confidence, len(CONFIDENCE_ORDER)))
    items = []
    for f in findings:
        fixed, _ = apply_fixes(spec, [f])
        diffs = tuple(differences(spec, fixed, grain="fine"))
        if diffs:
            items.append(Item(f"lint {f.id}", diffs, f, order[id(f)]))
    return items


def apply_items(spec: RequestSpec, items: Sequence[Item]) -> RequestSpec:
    """``spec`` with ``items`` applied: the fine differences first, then the lint fixes in catalogue order.

    Returns a new spec; raises nothing for items made from ``spec``."""
    fine = list({_diff_key(d): d for item in items if item.finding is None for d in item.diffs}.values())
    out = apply_differences(spec, fine)
    fixes = [i.finding for i in sorted(items, key=lambda i: i.order) if i.finding is not None]
    return apply_fixes(out, fixes)[0] if fixes else out


def _diff_key(d: Difference) -> str:
    return json.dumps([repr(d.loc), repr(d.b)], sort_keys=True)


def fine_items(spec: RequestSpec, reference: RequestSpec, lint: Sequence[Item]) -> list[Item]:
    covered = {_diff_key(d) for item in lint for d in item.diffs}
    return [Item(d.key, (d,)) for d in differences(spec, reference, grain="fine")
            if _diff_key(d) not in covered and not (d.b is not MISSING and is_attestation(d.b))]


def code_span(value: Any, limit: int = CODE_CHARS) -> str:
    """``value`` as a code span (:func:`lanelab.findings.verdict.code`), clipped at this module's longer limit."""
    return code(value, limit)


def _plain(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return redact.redact_text(text)


def _listed(parts: list[str], limit: int = 400) -> str:
    """``parts`` joined by "; ", as many whole ones as fit in about ``limit`` characters, then how many more there
    are (never a part cut in the middle)."""
    shown: list[str] = []
    size = 0
    for part in parts:
        if shown and size + len(part) + 2 > limit:
            break
        shown.append(part if len(part) <= limit else part[:limit - 1] + "…")
        size += len(part) + 2
    more = len(parts) - len(shown)
    return "; ".join(shown) + (f"; … and {more} more" if more else "")


def _tool_name(tool: Any) -> str:
    name = tool_name(tool)
    return name if name is not None else _plain(tool)[:40]


def fix_phrase(diffs: Sequence[Difference], specific: bool = False) -> str:
    """How a set of edits changes the request, as the end of "the same request … is billed to the plan"; with
    ``specific`` a removed sentence is quoted (when several fixes are listed together)."""
    names = [d for d in diffs if d.part == "tools" and d.key.endswith(".name") and isinstance(d.a, str)
             and isinstance(d.b, str)]
    phrases = []
    if names:
        swap = prefix_rename([(d.a, d.b) for d in names])
        if swap and swap[0] and swap[1]:
            phrases.append(f"with {code_span(swap[1])} instead of {code_span(swap[0])}")
        else:
            ex = names[0]
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            phrases.append(f"with the tool names changed ({code_span(ex.a)} → {code_span(ex.b)}{more})")
    rest = [d for d in diffs if d not in names]
    sentences = [d for d in rest if d.part == "system" and "sentence" in d.key and d.b is MISSING]
    if sentences and specific:
        phrases.extend(f"without the sentence {code_span(d.a, 60)}" for d in sentences)
    elif sentences:
        phrases.append("without that sentence" if len(sentences) == 1 else f"without those {len(sentences)} sentences")
    for d in rest:
        if d in sentences:
            continue
        if d.part == "header" and isinstance(d.loc[-1], tuple):
            name = d.loc[1]
            phrases.append(f"without {code_span(d.a)} in {code_span(name)}" if d.b is MISSING
                           else f"with {code_span(d.b)} added to {code_span(name)}")
        elif d.part == "request" and d.key == "auth":
            phrases.append(f"with the credential sent as {code_span(d.b)} only" if d.b == "bearer"
                           else f"with auth {code_span(d.b)}")
        elif d.b is MISSING:
            phrases.append(f"without {_element_name(d)}")
        else:
            phrases.append(f"with {_element_name(d)} set to {code_span(d.b, 60)}")
    phrases = list(dict.fromkeys(phrases))
    if not phrases:
        return "with that change"
    more = f", plus {len(phrases) - 3} more change(s)" if len(phrases) > 3 else ""
    return " and ".join(phrases[:3]) + more


def _element_name(d: Difference) -> str:
    """A short name for the element a difference touches (used after "without" / "with")."""
    if d.part == "tools":
        if d.key.startswith("tools[+"):
            return f"the tool {code_span(_tool_name(d.b))}"
        idx = d.loc[2] if len(d.loc) > 2 and isinstance(d.loc[2], int) else None
        if len(d.loc) == 3:
            return f"the tool {code_span(_tool_name(d.a))}"
        field_name = d.key.split(".", 1)[-1]
        return f"the {code_span(field_name)} of tool #{idx}"
    if d.part == "header":
        return f"the header {code_span(d.key)}"
    if d.part == "system":
        if "sentence" in d.key:
            return f"the system sentence {code_span(d.a if d.a is not MISSING else d.b)}"
        return f"the system block {code_span(d.key)}"
    if d.part == "request":
        return f"the request's {d.key}"
    return f"the body field {code_span(d.key)}"


def describe(item: Item, spec: RequestSpec) -> CauseElement:
    """One item of the cause in words."""
    if item.finding is not None:
        f = item.finding
        what = pluralise(f.verdict)
        if 0 < len(f.elements) <= 3 and not any(e.absent for e in f.elements):
            what += ": " + ", ".join(code_span(e.value, 80) for e in f.elements)
        return CauseElement(element=f.trigger.title, what=what,
                            before=_listed([_plain(f"{e.where}: {e.value}") for e in f.elements]),
                            after=_listed([f"{x.key}: {_plain(x.b) or 'removed'}" for x in item.diffs]),
                            fix=fix_phrase(item.diffs), lint=f.id)
    d = item.diffs[0]
    where = d.key
    if d.part == "system" and "sentence" in d.key:
        what = f"the system sentence {code_span(d.a if d.a is not MISSING else d.b)} ({d.key})"
    elif d.part == "header" and isinstance(d.loc[-1], tuple):
        what = f"the {code_span(d.loc[1])} token {code_span(d.a if d.a is not MISSING else d.b)}"
    elif d.part == "header":
        what = f"the header {code_span(f'{d.key}: {_plain(d.a)}')}"
    elif d.part == "tools" and len(d.loc) == 3:
        what = f"the tool {code_span(_tool_name(d.a))} ({d.key})"
    elif d.part == "tools" and d.key.endswith(".name"):
        what = f"the tool name {code_span(d.a)}"
    elif d.part == "request":
        what = f"the request's {d.key} {code_span(d.a)}"
    else:
        what = f"{_element_name(d)} ({code_span(d.a, 50)})" if d.a is not MISSING else _element_name(d)
    return CauseElement(element=where, what=what, before=_plain(d.a)[:400], after=_plain(d.b)[:400] or "removed",
                        fix=fix_phrase(item.diffs))


def pluralise(text: str) -> str:
    """Lint's "16 tool name(s)" as "16 tool names" ("1 tool name")."""
    def repl(m: re.Match[str]) -> str:
        return f"{m.group(1)} {m.group(2)}{'' if m.group(1) == '1' else 's'}"
    return re.sub(r"\b(\d+) ([\w ]+?)\(s\)", repl, text)
