"""The answer a report opens with: what moves this client's request between billing lanes, the exact element with
its before and after, the evidence (which cells, how many requests) and the remedy, in one or two sentences.

The sentence is never written by hand. It comes, in this order of preference, from

1. a verdict object the caller passes (anything with a ``sentence``, e.g. what a diagnose run returns);
2. a run whose header says ``design = "diagnose"`` and that recorded its verdict as a ``note`` record
   ``{"record": "note", "verdict": {"sentence": …, "evidence": …, "remedy": …, …}}`` (the keys of :class:`Verdict`);
3. the analysis of the matrix runs: the request as the profile sends it (the cell that changes nothing), the single
   changes from it that get it billed to the plan, and, among those, the smallest edit on the wire, described from
   the two stored requests (:mod:`lanelab.wire.diff`), e.g. 16 tool names with the prefix ``mcp_`` → ``mcp__``.

Text conventions: :attr:`Verdict.sentence`, ``evidence`` and ``remedy`` are plain text in which backticks mark code
(a tool name, a header value). Values from run data are put in code spans with :func:`code`, which drops backticks
and line breaks, so the renderers (HTML and Markdown, :mod:`lanelab.findings.render`) can trust every backtick.

Remedies follow DESIGN.md's responsible-use rules: a change that adds Claude Code's own identification (its user
agent, ``x-app``, its beta, its identity text) is reported as what the server reacts to, never recommended; the
remedy is then one of those that exist (enable extra usage, use an API key, use Anthropic's own clients).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from lanelab import redact
from lanelab.findings import frame as an
from lanelab.findings import remedies
from lanelab.runs import DIAGNOSE_DESIGN, Run, split_runs, tidy
from lanelab.wire.diff import MISSING, Difference, differences
from lanelab.wire.spec import RequestSpec

__all__ = ["Verdict", "code", "describe_change", "diagnose_verdict",
           "lead_verdict", "prefix_rename", "verdict_of_runs"]

#: The header design of a run written by a diagnose command; its verdict note outranks the matrix analysis.
#: How many example values a description shows.
EXAMPLES = 1
#: Longest value put in a code span.
CODE_CHARS = 60
#: Text that identifies Claude Code itself; a change that adds it is never recommended.
_FIRST_PARTY = re.compile(r"claude[ -]?code|claude-cli|x-anthropic-billing-header", re.IGNORECASE)


def code(value: Any, limit: int = CODE_CHARS) -> str:
    """``value`` as a code span: redacted, backticks and line breaks removed, clipped to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = " ".join(redact.redact_text(text).replace("`", "'").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`" if text else "`(empty)`"


def _plain(value: Any) -> str:
    """Run data outside a code span: redacted, with no backtick that could open one."""
    return redact.redact_text(str(value)).replace("`", "'")


@dataclass(frozen=True)
class Verdict:
    """The report's opening answer.

    ``sentence`` says what moves the request between lanes (with the exact element, before and after when known),
    ``evidence`` which cells and how many requests support it, ``remedy`` what to do. ``element``, ``before`` and
    ``after`` name the element and its two values (None when the analysis cannot name one); ``cells`` are the
    supporting cell ids, ``requests`` how many requests the verdict rests on (``tokens`` the tokens they used, when a
    diagnosis counted them), ``remedies`` every remedy line (``remedy`` is the first), ``source`` where it came from
    ("analysis", "diagnose" or "none"), ``conclusive`` whether it names what moves the request. Backticks mark code.
    """

    sentence: str
    evidence: str = ""
    remedy: str = ""
    element: str | None = None
    before: str | None = None
    after: str | None = None
    cells: tuple[str, ...] = ()
    requests: int = 0
    tokens: int = 0
    remedies: tuple[str, ...] = ()
    source: str = "analysis"
    conclusive: bool = True

    @classmethod
    def from_obj(cls, obj: Any, source: str = DIAGNOSE_DESIGN) -> Verdict:
        """A verdict from a mapping or an object with a ``sentence`` attribute (other fields optional).

        Raises:
            InputError: ``obj`` has no non-empty ``sentence``.
        """
        from lanelab.errors import InputError

        if isinstance(obj, Verdict):
            return obj
        get = (lambda k: obj.get(k)) if isinstance(obj, Mapping) else (lambda k: getattr(obj, k, None))
        sentence = get("sentence")
        if not isinstance(sentence, str) or not sentence.strip():
            raise InputError("The verdict has no sentence.", "A verdict needs at least a non-empty 'sentence'.")

        def text(k: str) -> str:
            v = get(k)
            return redact.redact_text(str(v)) if v not in (None, "") else ""

        def opt(k: str) -> str | None:
            return text(k) or None

        def count(k: str) -> int:
            v = get(k)
            return int(v) if isinstance(v, int) and not isinstance(v, bool) else 0

        cells, remedies = get("cells") or (), get("remedies") or ()
        return cls(sentence=redact.redact_text(sentence.strip()), evidence=text("evidence"), remedy=text("remedy"),
                   element=opt("element"), before=opt("before"), after=opt("after"),
                   cells=tuple(str(c) for c in cells) if isinstance(cells, (list, tuple)) else (),
                   requests=count("requests"), tokens=count("tokens"),
                   remedies=tuple(redact.redact_text(str(r)) for r in remedies)
                   if isinstance(remedies, (list, tuple)) else (),
                   source=str(get("source") or source), conclusive=get("conclusive") is not False)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON-ready data (lists for tuples), redacted: what a diagnose run records in its
        verdict note."""
        d = asdict(self)
        d["cells"], d["remedies"] = list(self.cells), list(self.remedies)
        return redact.redact_obj(d)

    def lines(self) -> list[str]:
        """Sentence, evidence and remedy, the empty ones left out."""
        return [x for x in (self.sentence, self.evidence, self.remedy) if x]

    def _repr_markdown_(self) -> str:
        from lanelab.findings.render import md_inline

        head, *rest = self.lines()
        return "\n\n".join([f"**{md_inline(head)}**", *(md_inline(x) for x in rest)])

    def __str__(self) -> str:
        return redact.redact_text("\n".join(self.lines()))


# --------------------------------------------------------------------------------------------------------------------
# Describing what a change does on the wire


@dataclass
class Change:
    """A plain description of the differences between two requests."""

    element: str
    before: str
    after: str
    sentence_before: str
    sentence_after: str
    fix: str
    size: int
    first_party: bool = False
    diffs: list[Difference] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is MISSING:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _edit_size(d: Difference) -> int:
    """Characters changed: a string edit counts what differs after the common prefix and suffix."""
    a, b = _text(d.a), _text(d.b)
    if d.a is MISSING or d.b is MISSING or not (isinstance(d.a, str) and isinstance(d.b, str)):
        return len(a) + len(b)
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    return (len(a) - i - j) + (len(b) - i - j)


def _first_party(diffs: Iterable[Difference]) -> bool:
    """Whether the change brings in Claude Code's own identification the request did not carry."""
    return any(_FIRST_PARTY.search(_text(d.b)) and not _FIRST_PARTY.search(_text(d.a)) for d in diffs)


_SEPARATORS = "_-./:"


def prefix_rename(pairs: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The one prefix swap (``mcp_`` → ``mcp__``) that turns every ``a`` into its ``b``, if there is one.

    Each pair keeps its longest common suffix; a separator at the start of that suffix goes with the prefixes, so
    ``mcp_x`` → ``mcp__x`` reads as ``mcp_`` → ``mcp__`` rather than ``mcp`` → ``mcp_``.
    """
    swaps = set()
    for a, b in pairs:
        j = 0
        while j < min(len(a), len(b)) and a[-1 - j] == b[-1 - j]:
            j += 1
        pa, pb = a[: len(a) - j], b[: len(b) - j]
        suffix = a[len(a) - j:]
        if suffix and suffix[0] in _SEPARATORS and (pa or pb):
            pa, pb = pa + suffix[0], pb + suffix[0]
        swaps.add((pa, pb))
    if len(swaps) != 1:
        return None
    before, after = swaps.pop()
    return None if before == after else (before, after)


def _where(d: Difference) -> str:
    if d.part == "header":
        return f"the {code(d.key)} header"
    if d.part == "query":
        return f"the query parameter {code(d.key)}"
    if d.part == "request":
        return {"path": "the endpoint path", "method": "the HTTP method", "auth": "how the token is attached"}.get(
            d.key, f"the request's {d.key}")
    if d.part == "system":
        return f"system prompt block {d.key.removeprefix('system')}".replace("[", "").replace("]", "").strip()
    if d.part == "tools" and d.key == "tools":
        return "the tool list"
    if d.part == "tools":
        return f"tool {d.key.removeprefix('tools')}".replace("[", "").replace("]", "")
    if d.part == "messages":
        return "the messages"
    return f"the body field {code(d.key)}"


def describe_change(a: RequestSpec, b: RequestSpec) -> Change | None:
    """What changes from request ``a`` to request ``b``, in words a user can act on.

    Tool renames that share one prefix swap read "16 tool names: prefix `mcp_` → `mcp__`"; a removed element reads
    "remove …"; anything else "X: `before` → `after`".

    Returns:
        The :class:`Change` (with ``size``, the characters edited, to compare changes; ``first_party`` when the
        change brings in Claude Code's own identification), or None when the requests do not differ.
    """
    diffs = differences(a, b)
    if not diffs:
        return None
    size = sum(_edit_size(d) for d in diffs)
    first_party = _first_party(diffs)
    names = [d for d in diffs if d.part == "tools" and re.fullmatch(r"tools\[\d+\]\.name", d.key)]
    if names and all(isinstance(d.a, str) and isinstance(d.b, str) for d in names) and \
            all(d in names or d.key == "tool_choice" for d in diffs):
        pairs = [(d.a, d.b) for d in names]
        swap = prefix_rename(pairs)
        n = len(names)
        what = f"{n} tool name{'s' if n > 1 else ''}"
        ex_a, ex_b = pairs[0]
        if swap:
            before, after = swap
            return Change(
                element="tool names", before=before, after=after,
                sentence_before=(f"its {what} use the prefix {code(before)} (e.g. {code(ex_a)})" if before
                                 else f"its {what} have no prefix (e.g. {code(ex_a)})"),
                sentence_after=(f"with the prefix {code(after)} instead ({code(ex_b)})" if after
                                else f"with the prefix {code(before)} removed ({code(ex_b)})"),
                fix=(f"rename the client's tools from {code(before + '…')} to {code(after + '…')}" if after
                     else f"drop the prefix {code(before)} from the client's tool names"),
                size=size, first_party=first_party, diffs=diffs)
        return Change(element="tool names", before=ex_a, after=ex_b,
                      sentence_before=f"its {what} (e.g. {code(ex_a)})",
                      sentence_after=f"with them renamed (e.g. {code(ex_b)})",
                      fix="rename the client's tools as in the cell that reaches the plan",
                      size=size, first_party=first_party, diffs=diffs)
    main = max(diffs, key=_edit_size)
    where = _where(main)
    more = f" (and {len(diffs) - 1} other difference{'s' if len(diffs) > 2 else ''})" if len(diffs) > 1 else ""
    if main.b is MISSING:
        return Change(element=where, before=_text(main.a), after="",
                      sentence_before=f"it sends {where} ({code(main.a)})",
                      sentence_after=f"without it{more}", fix=f"remove {where} ({code(main.a)}) from the request",
                      size=size, first_party=first_party, diffs=diffs)
    if main.a is MISSING:
        return Change(element=where, before="", after=_text(main.b),
                      sentence_before=f"it does not send {where}",
                      sentence_after=f"with {where} set to {code(main.b)}{more}",
                      fix=f"add {where} ({code(main.b)}) to the request",
                      size=size, first_party=first_party, diffs=diffs)
    return Change(element=where, before=_text(main.a), after=_text(main.b),
                  sentence_before=f"{where} is {code(main.a)}",
                  sentence_after=f"with {where} set to {code(main.b)}{more}",
                  fix=f"change {where} from {code(main.a)} to {code(main.b)}",
                  size=size, first_party=first_party, diffs=diffs)


# --------------------------------------------------------------------------------------------------------------------
# The verdict


def _spec(row: Mapping[str, Any]) -> RequestSpec | None:
    spec = row.get("spec")
    return RequestSpec.from_dict(spec) if isinstance(spec, Mapping) else None


def _status(row: Mapping[str, Any]) -> str:
    s = row.get("status")
    return "no response" if s is None or pd.isna(s) else f"HTTP {int(s)}"


def _said(row: Mapping[str, Any]) -> str:
    """The status and outcome in words: "HTTP 400 "out of extra usage"", "HTTP 200 (Served, no lane reported)"."""
    label = an.outcome_label(row["outcome"])
    status = row.get("status")
    if status is None or pd.isna(status):
        return f"no response ({label})"
    st = str(int(status))
    return f"HTTP {st} \"{label[len(st) + 1:]}\"" if label.startswith(st + " ") else f"HTTP {st} ({label})"


def _ended(row: Mapping[str, Any]) -> str:
    """How a cell ended, in words: "billed to the plan (HTTP 200)", "refused with HTTP 400 "out of extra usage"."."""
    if an.on_plan(row["outcome"], row["lane"], row["status"]):
        return f"billed to the plan ({_status(row)})"
    status = row.get("status")
    refused = status is not None and not pd.isna(status) and int(status) >= 400
    return f"refused with {_said(row)}" if refused else f"answered with {_said(row)}"


def _server_said(row: Mapping[str, Any]) -> str:
    msg = row.get("error_message")
    return f" The server said: {code(msg, 120)}" if isinstance(msg, str) and msg else ""


def _where_run(row: Mapping[str, Any]) -> str:
    if row.get("mode") == "live":
        return "the live API"
    return f"the simulator's policy {code(row.get('policy') or 'default')}"


def _remedies_besides(base: Mapping[str, Any]) -> str:
    """The remedies that exist, as a phrase, besides fixing the request, and besides extra usage when the request is
    served and billed there already (it is on and has credit: enabling it is no remedy then)."""
    served_extra = str(base.get("lane")) == "extra_usage" and not pd.isna(base.get("status")) \
        and int(base["status"]) < 400
    return remedies.sentence(exclude=("fix", "extra_usage") if served_extra else ("fix",))


def _empty() -> Verdict:
    return Verdict(sentence="These runs hold no requests, so there is nothing to conclude yet.",
                   evidence="0 requests.",
                   remedy="Send the matrix first (notebook 02 or `python -m lanelab matrix`), then build the report "
                          "again.", source="none", conclusive=False)


def _listing(labels: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(code(x) for x in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _analysis(df: pd.DataFrame) -> Verdict:
    """The verdict from the matrix runs of ``df`` (the first run that has the unchanged request)."""
    base_id = None
    for run_id in dict.fromkeys(df["run_id"]):
        base_id = an.baseline_cell(df, run_id)
        if base_id:
            break
    if base_id is None:
        return _without_baseline(df)
    base = an.records(df[df["cell_id"] == base_id])[0]
    run_df = df[df["run_id"] == base["run_id"]]
    run_df.attrs.update(df.attrs)
    profile = _plain(base.get("profile") or "the client")
    changes = an.flips_from_baseline(run_df, base_id, all_changes=True)
    n_requests = len(run_df)
    where = _where_run(base)
    base_spec = _spec(base)
    label = lambda r: f"{r['factor']}={r['level']}"
    rows = {r["cell_id"]: r for r in an.records(run_df)}
    if an.on_plan(base["outcome"], base["lane"], base["status"]):
        off = changes[[not an.on_plan(o, ln, s) for o, ln, s in
                       zip(changes["outcome"], changes["lane"], changes["status"])]] if len(changes) else changes
        sentence = (f"{profile}'s request is billed to the plan as it is sent ({_status(base)}, under {where}), "
                    "so nothing in it sends it to extra usage here.")
        evidence = (f"{len(off)} of {len(changes)} single changes move it off the plan: "
                    f"{_listing([label(r) for r in off.to_dict('records')])}." if len(off)
                    else f"None of the {len(changes)} single changes moves it off the plan.")
        return Verdict(sentence=sentence, evidence=f"Evidence: {evidence} Run {code(base['run_id'])}, "
                       f"{n_requests} requests; the unchanged request is cell {code(base_id)}.",
                       remedy="Nothing to fix in this request under these conditions.", cells=(base_id,),
                       requests=n_requests, conclusive=True)
    onto = changes[changes["onto_plan"]] if len(changes) else changes
    ended = _ended(base)
    if onto.empty:
        moved = changes[changes["outcome"] != str(base["outcome"])] if len(changes) else changes
        sentence = (f"{profile}'s request, as sent, is {ended} under {where}, and no single change in this run "
                    "gets it billed to the plan.")
        evidence = (f"Evidence: {len(changes)} single changes from the unchanged request (cell {code(base_id)}) in "
                    f"run {code(base['run_id'])}; {len(moved)} of them end differently, none on the plan.")
        return Verdict(sentence=sentence, evidence=evidence,
                       remedy=(f"Try changing two things at once (a full design) or diagnose the request; meanwhile "
                               f"the remedies that exist: {_remedies_besides(base)}."),
                       cells=(base_id,), requests=n_requests, conclusive=False)
    described = []
    for r in an.records(onto):
        other = _spec(rows[r["cell_id"]])
        change = describe_change(base_spec, other) if base_spec and other else None
        described.append((change, r))
    usable = [(c, r) for c, r in described if c is not None]
    own = [(c, r) for c, r in usable if not c.first_party]
    pool = own or usable
    if not pool:  # stored specs missing: name the factor only
        r = an.records(onto)[0]
        return Verdict(sentence=(f"{profile}'s request, as sent, is {ended} under {where}; changing only "
                                 f"{code(label(r))} gets it billed to the plan."),
                       evidence=f"Evidence: cells {code(base_id)} and {code(r['cell_id'])} of run "
                                f"{code(base['run_id'])}.",
                       remedy=f"Remedies that exist: {_remedies_besides(base)}.", cells=(base_id, r["cell_id"]),
                       requests=2, conclusive=True)
    change, best = min(pool, key=lambda cr: cr[0].size)
    others = [label(r) for c, r in described if r["cell_id"] != best["cell_id"]]
    not_onto = changes[~changes["onto_plan"]] if len(changes) else changes
    unmoved_factors = sorted(set(not_onto["factor"]) - set(onto["factor"]))
    sentence = (f"{profile}'s request, as sent, is {ended} under {where}: {change.sentence_before}. "
                f"The same request {change.sentence_after} is billed to the plan.")
    evidence = (f"Evidence: 2 requests in run {code(base['run_id'])}, the unchanged request (cell {code(base_id)}) "
                f"and the same with {code(label(best))} (cell {code(best['cell_id'])}), out of {n_requests} sent."
                f"{_server_said(base)}")
    if others:
        evidence += f" {len(others)} other single change{'s' if len(others) > 1 else ''} also reach the plan: " \
                    f"{_listing(others)}."
    if unmoved_factors:
        evidence += f" Changing only {_listing(unmoved_factors)} does not."
    if change.first_party:
        remedy = ("Remedy: that change adds Claude Code's own identification, which the kit never recommends; the "
                  f"remedies that exist: {_remedies_besides(base)}.")
    else:
        remedy = f"Remedy: {change.fix}. Without changing the client: {_remedies_besides(base)}."
    return Verdict(sentence=sentence, evidence=evidence, remedy=remedy, element=change.element,
                   before=change.before, after=change.after, cells=(base_id, str(best["cell_id"])), requests=2,
                   conclusive=True)


def _without_baseline(df: pd.DataFrame) -> Verdict:
    """No cell sends the unchanged request: say which factor moves requests between lanes most, if any."""
    effects = an.factor_effects(df)
    lane = effects[effects["lane_flips"] > 0] if len(effects) else effects
    if len(lane):
        top = lane.iloc[0]
        return Verdict(
            sentence=(f"Changing only {code(top['factor'])} moves requests onto or off the plan most often "
                      f"({top['lane_flips']} of {top['pairs']} pairs of requests that differ in it alone)."),
            evidence=f"Evidence: {len(df)} requests; no request in these runs is the client's unchanged request, so "
                     "the exact element cannot be named from them.",
            remedy=f"Send the unchanged request too (a one-factor-at-a-time design does); meanwhile the remedies "
                   f"that exist: {remedies.sentence(exclude=('fix',))}.",
            cells=tuple(top["cells"][:2]), requests=len(df), conclusive=False)
    return Verdict(sentence="Nothing in these runs moves a request onto or off the plan on its own.",
                   evidence=f"Evidence: {len(df)} requests, {len(effects)} factors varied.",
                   remedy=f"Remedies that exist: {remedies.sentence(exclude=('fix',))}.", requests=len(df), conclusive=False)


def diagnose_verdict(runs: Iterable[Run]) -> Verdict | None:
    """The verdict a diagnose run recorded (the last ``note`` record with a ``verdict`` in the last such run).

    Returns:
        The :class:`Verdict` (source "diagnose"), or None when no run is a diagnose run with a usable verdict.
    """
    found = None
    for run in runs:
        if run.header.get("design") != DIAGNOSE_DESIGN:
            continue
        for note in run.of_kind("note"):
            v = note.get("verdict")
            if isinstance(v, Mapping) and isinstance(v.get("sentence"), str) and v["sentence"].strip():
                found = Verdict.from_obj(v, source=DIAGNOSE_DESIGN)
    return found


def lead_verdict(df: pd.DataFrame, runs: Iterable[Run] = (), verdict: Any = None) -> Verdict:
    """The report's opening answer (see the module docstring for where it comes from).

    ``df`` is the tidy table of the matrix runs; ``runs`` every loaded run (a diagnose run among them supplies the
    verdict); ``verdict`` a verdict object to use as it is (anything :meth:`Verdict.from_obj` accepts).

    Returns:
        The :class:`Verdict`; for an empty table one that says there is nothing to conclude.

    Raises:
        InputError: ``verdict`` has no sentence.
    """
    if verdict is not None:
        return Verdict.from_obj(verdict)
    from_diagnose = diagnose_verdict(runs)
    if from_diagnose is not None:
        return from_diagnose
    if df.empty:
        return _empty()
    return _analysis(df)


def verdict_of_runs(runs: Sequence[Run]) -> Verdict:
    """The opening answer for loaded runs, as a notebook asks for it (matrix runs only in the analysis).

    Returns:
        The :class:`Verdict` of :func:`lead_verdict`.
    """

    matrix, _, _ = split_runs(runs)
    return lead_verdict(tidy(matrix), runs)
