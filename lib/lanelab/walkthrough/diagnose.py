"""Diagnose one client request: which element keeps it off the plan, verified in a handful of requests.

The steps, each request stored as a cell of a run whose header says ``design = "diagnose"``:

1. Send the request as the client sent it (in live mode with ``max_tokens`` 1 and no streaming, as the matrix does).
   Billed to the plan: there is nothing to diagnose.
2. Lint it (no request). When lint's triggers come with machine edits, send the request with the likeliest fix
   alone (when there are several; likeliest = the catalogue's confidence), then with every fix. Billed to the plan:
   bisect among the lint fixes only. A single trigger whose fix flips it costs two requests in all.
3. Otherwise bisect at fine grain (:func:`lanelab.wire.diff.differences` with ``grain="fine"``: each beta
   token, header, body field, system sentence and tool) against a reference built from the client's OWN request by
   removal only: first the request cut down to its model, messages and the client's own identification (user
   agent, ``x-app``, ``anthropic-version``, its oauth and claude-code betas, the first sentence of its system
   prompt); when that is not billed to the plan either, the same without the identification. The reference is
   never the Claude Code profile and never carries anything the client did not send, so every fix the search can
   find removes or corrects an element (the only thing lint's edits may add is the OAuth protocol's own beta). The
   lint fixes take part as items of their own; the reference itself is sent only when the search needs it.
4. Check that the cause, added alone to the reference, still trips it; when it does not, search for what it needs
   together with (two interacting elements are named together).
5. With a second credential label, send the request as sent once more with that credential and say whether the
   credential's source matters.

The answer is a :class:`Verdict` (a sentence with the exact element, before and after, the cells that confirm it,
the requests and tokens spent) and the remedies of ``data/remedies.toml``. :func:`run_diagnose` does the set-up
(simulator or live, tokens, budget, run file, short Markdown report) that the CLI and the notebook share.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanelab import redact
from lanelab.config import DEFAULT_POLICY, LIVE_API_BASE, Settings
from lanelab.errors import BudgetExceeded, InputError
from lanelab.findings.remedies import Remedy, load_remedies
from lanelab.findings.remedies import sentence as remedy_sentence
from lanelab.findings.verdict import Verdict
from lanelab.runs import DIAGNOSE_DESIGN
from lanelab.walkthrough.bisect import (
    BUDGET,
    DEFAULT_PASS_OUTCOMES,
    FAIL,
    FOUND,
    NO_FLIP,
    PASS,
    UNCLEAR,
    OutOfBudget,
    ProbeSession,
    binary_worst_case,
    search,
)
from lanelab.walkthrough.items import (
    CauseElement,
    Item,
    apply_items,
    code_span,
    describe,
    fine_items,
    fix_phrase,
    lint_items,
    pluralise,
    reference_requests,
)
from lanelab.walkthrough.lint import Finding, LintInput, LintResult, lint
from lanelab.wire.classify import Classified, classify, load_taxonomy
from lanelab.wire.spec import Observation, RequestSpec

if TYPE_CHECKING:
    import pandas as pd

    from lanelab.live import Confirmation, LiveGate
    from lanelab.runs import RunWriter

__all__ = [
    "DESIGN",
    "MAX_CAUSES_PLANNED",
    "CredentialCheck",
    "Diagnosis",
    "Plan",
    "Sent",
    "Source",
    "diagnose",
    "live_gate",
    "load_source",
    "plan_requests",
    "run_diagnose",
]


#: The run header's design for a diagnose run (the findings report shows its verdict first).
DESIGN = DIAGNOSE_DESIGN
#: The worst case a live budget is checked against assumes at most this many causes (the search stops at the budget
#: if there are more, and says where the cause still is).
MAX_CAUSES_PLANNED = 2


def _verdict_of(**fields: Any) -> Verdict:
    """A :class:`~lanelab.findings.verdict.Verdict` whose source is a diagnosis."""
    return Verdict(source=DESIGN, **fields)


# ---------------------------------------------------------------------------------------------------- data types

@dataclass
class Sent:
    """One request diagnose sent: its step, how it differs from the request as sent, and what came back."""

    n: int
    step: str
    change: str
    outcome: str
    lane: str
    status: int | None
    rule: str
    cell_id: str
    credential: str | None
    tokens: int = 0
    estimated: int = 0
    message: str = ""
    claim: str | None = None


@dataclass
class CredentialCheck:
    """The request as sent, with each of two credentials: whether the credential's source changes the answer."""

    labels: tuple[str, str]
    sources: tuple[str, str]
    outcomes: tuple[str, str]
    lanes: tuple[str, str]
    cells: tuple[str, str]

    @property
    def matters(self) -> bool:
        return self.outcomes[0] != self.outcomes[1] or self.lanes[0] != self.lanes[1]

    def sentence(self) -> str:
        (a, b), (sa, sb), (oa, ob) = self.labels, self.sources, self.outcomes
        said = (f"with `{a}` ({sa}) it got `{oa}`, with `{b}` ({sb}) `{ob}`" if self.matters
                else f"both `{a}` ({sa}) and `{b}` ({sb}) got `{oa}`")
        verdict = "the credential's source matters here" if self.matters else \
            "the credential's source does not matter here"
        return redact.redact_text(f"The identical request, once with each credential: {said}; {verdict}.")


@dataclass(frozen=True)
class Source:
    """The request to diagnose: its label, the spec that is sent, the lint input, notes on how it was read."""

    label: str
    spec: RequestSpec
    lint_input: LintInput
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What a diagnosis may cost before anything is sent: requests at least, for one cause, and at worst (for up to
    :data:`MAX_CAUSES_PLANNED` causes), with the number of fine differences to each reference."""

    least: int
    one_cause: int
    worst: int
    lint_fixes: int
    references: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        refs = ", ".join(f"{name}: {n} differences" for name, n in self.references)
        return (f"at least {self.least} request(s), about {self.one_cause} for one cause, at most {self.worst} for up to "
                f"{MAX_CAUSES_PLANNED} causes ({self.lint_fixes} lint fix(es); {refs})")


@dataclass
class Diagnosis:
    """What diagnose found and what it cost.

    ``status``: ``plan`` (billed to the plan as sent), ``lint`` (a lint fix flips it), ``found`` (the fine search
    named the cause), ``no_reference`` (no request built from the client's own elements is billed to the plan),
    ``budget`` (the budget ran out first), ``unclear`` (the server gave no clear answer). ``sent`` lists every
    request, ``cause`` the elements to fix, ``partners`` what they trip it together with.
    """

    label: str
    status: str
    verdict: Verdict
    sent: list[Sent]
    where: str
    lint: LintResult | None = None
    cause: list[CauseElement] = field(default_factory=list)
    partners: list[CauseElement] = field(default_factory=list)
    reference: str | None = None
    examined: int = 0
    credential_check: CredentialCheck | None = None
    notes: list[str] = field(default_factory=list)
    remedies: list[Remedy] = field(default_factory=list)
    run_path: Path | None = None
    report_path: Path | None = None

    @property
    def requests(self) -> int:
        return len(self.sent)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sent)

    def to_frame(self) -> pd.DataFrame:
        """One row per request sent: number, step, what differs from the request as sent, outcome, lane, HTTP
        status, representative claim, tokens, credential label and cell id."""
        import pandas as pd

        cols = ["#", "step", "change", "outcome", "lane", "status", "claim", "tokens", "credential", "cell"]
        rows = [{"#": s.n, "step": s.step, "change": s.change, "outcome": s.outcome, "lane": s.lane,
                 "status": s.status, "claim": s.claim or "", "tokens": s.tokens, "credential": s.credential,
                 "cell": s.cell_id} for s in self.sent]
        return pd.DataFrame(redact.redact_obj(rows), columns=cols)

    def cause_frame(self) -> pd.DataFrame:
        """One row per element of the cause (then its partners): where, what, before, after, the fix, lint entry."""
        import pandas as pd

        cols = ["role", "element", "what", "before", "after", "fix", "lint entry"]
        rows = [{"role": role, "element": c.element, "what": c.what, "before": c.before, "after": c.after,
                 "fix": c.fix, "lint entry": c.lint or ""}
                for role, group in (("cause", self.cause), ("together with", self.partners)) for c in group]
        return pd.DataFrame(redact.redact_obj(rows), columns=cols)

    def summary(self) -> str:
        """The verdict sentence and what was spent, in one line each."""
        return redact.redact_text(f"{self.verdict.sentence}\nspent: {self.requests} request(s), {self.tokens} "
                                  f"token(s) reported by the responses")

    def to_text(self) -> str:
        """What the CLI prints: verdict, evidence, remedies, the requests, notes."""
        lines = [self.verdict.sentence, "", self.verdict.evidence]
        if self.credential_check:
            lines += ["", self.credential_check.sentence()]
        lines += ["", "Remedies:"] + [f"  {i}. {r}" for i, r in enumerate(self.verdict.remedies, 1)]
        table = self.to_frame().drop(columns=["cell"]).to_markdown(index=False)  # aligned, as bisect's
        lines += ["", "Requests:", table]
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        lines += ["", (f"spent {self.requests} request(s) and {self.tokens} token(s) (as the responses report them); "
                       f"under {self.where}")]
        if self.run_path:
            lines.append(f"run: {self.run_path}")
        if self.report_path:
            lines.append(f"report: {self.report_path}")
        return redact.redact_text("\n".join(lines))

    def to_markdown(self) -> str:
        """The short report: verdict first, then evidence, remedies, cause, requests, lint, notes (redacted)."""
        def table(df: pd.DataFrame) -> str:
            return df.to_markdown(index=False) if len(df) else "(none)"

        parts = [f"# Diagnose: {self.label}", "", f"**{self.verdict.sentence}**", "", self.verdict.evidence, ""]
        if self.credential_check:
            parts += [self.credential_check.sentence(), ""]
        parts += ["## Remedies", ""] + [f"{i}. {r}" for i, r in enumerate(self.verdict.remedies, 1)] + [""]
        if self.cause:
            parts += ["## The cause", "", table(self.cause_frame()), ""]
        parts += ["## Requests", "", f"Under {self.where}.", "", table(self.to_frame()), ""]
        if self.lint is not None:
            parts += ["## Lint (no request)", "", self.lint.summary(), ""]
        if self.notes:
            parts += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        parts.append(f"Spent {self.requests} request(s) and {self.tokens} token(s) as the responses report them."
                     + (f" Run file: `{self.run_path.name}`." if self.run_path else ""))
        text = redact.redact_text("\n".join(parts) + "\n")
        redact.assert_clean(text, where="diagnose report")
        return text

    def _repr_html_(self) -> str:
        """The diagnosis in a notebook: the verdict, evidence and remedies (backtick code shown as code, as the
        report shows it), the cause and the requests sent."""
        from lanelab.findings.render import Table, html_inline, html_table

        head = (f"<p><b>{html_inline(self.verdict.sentence)}</b></p><p>{html_inline(self.verdict.evidence)}</p>"
                + "<ol>" + "".join(f"<li>{html_inline(r)}</li>" for r in self.verdict.remedies) + "</ol>")
        if self.credential_check:
            head += f"<p>{html_inline(self.credential_check.sentence())}</p>"
        body = str(html_table(Table.from_frame(self.to_frame())))  # (str: a Markup would escape what it is added to)
        if self.cause:
            body = str(html_table(Table.from_frame(self.cause_frame()))) + body
        return redact.redact_text(head + body)

    def __repr__(self) -> str:
        return f"<Diagnosis {self.label}: {self.status}, {self.requests} request(s)>"


# ---------------------------------------------------------------------------------------------------- the request

def load_source(*, profile: str | None = None, capture: str | Path | None = None, dump: str | Path | None = None,
                index: int | None = None) -> Source:
    """The request to diagnose, from exactly one of a profile name, a capture file or a Hermes request dump.

    A reference-only profile (Claude Code's) and the capture it came from are refused: the kit never sends them. A
    billing attestation block is left out of what is sent. A dump records no client headers: diagnose sends it with
    ``anthropic-version`` and the OAuth protocol's beta only, and says so.

    Returns a :class:`Source`. Raises :class:`~lanelab.errors.InputError` unless exactly one source is given (or for
    an ``index`` without a capture), and
    what :func:`lanelab.walkthrough.lint.load_input` raises (:class:`~lanelab.errors.NotFound`, a lint input error),
    or :class:`lanelab.matrix.profiles.ReferenceOnlyProfile`.
    """
    from lanelab.matrix import profiles as profiles_mod
    from lanelab.walkthrough.lint import load_input
    from lanelab.wire.attestation import without_attestation

    given = [x for x in (profile, capture, dump) if x is not None]
    if len(given) != 1:
        raise InputError("Give exactly one request to diagnose: --profile NAME, --capture FILE or --dump FILE.")
    if index is not None and capture is None:  # (it would be ignored: a profile or a dump is one request)
        raise InputError("--index picks one request of a --capture file; a profile or a dump is one request.")
    notes: list[str] = []
    if profile is not None:
        profiles_mod.ensure_sendable(str(profile))
        inp = load_input(str(profile))
    elif capture is not None:
        path = Path(capture)
        reference = profiles_mod.reference_for_capture(path) if path.is_file() else None
        if reference is not None:
            raise profiles_mod.reference_refusal(f"{path.name} (the capture of {reference})")
        inp = load_input(path, index)
        if inp.kind != "capture":
            raise InputError(f"{path} is a {inp.kind}, not a capture.", "Use --profile or --dump for it.")
    else:
        path = Path(str(dump))
        inp = load_input(path)
        if inp.kind != "dump":
            raise InputError(f"{path} is a {inp.kind}, not a Hermes request dump.", "Use --profile or --capture.")
    spec, had_block = without_attestation(inp.spec)
    if had_block:
        notes.append("The client sends a billing attestation block; the kit never sends one, so this diagnosis is "
                     "for the request without it.")
    if inp.kind == "dump":
        spec.headers.setdefault("anthropic-version", "2023-06-01")
        betas = [b for b in spec.headers.get("anthropic-beta", "").split(",") if b.strip()]
        if "oauth-2025-04-20" not in betas:
            spec.headers["anthropic-beta"] = ",".join([*betas, "oauth-2025-04-20"])
        notes.append("A request dump records no client headers, auth style or wire path: diagnose sends it to "
                     "/v1/messages as Bearer with anthropic-version and the OAuth protocol's beta only, so a cause in "
                     "the client's headers cannot show. Capture the wire ('python -m lanelab watch') to see them.")
    notes.extend(inp.notes)
    return Source(label=inp.label, spec=spec, lint_input=inp, notes=tuple(notes))


def plan_requests(spec: RequestSpec, result: LintResult | None, extra_credentials: int = 0) -> Plan:
    """What a diagnosis of ``spec`` may cost (nothing is sent): see :class:`Plan`. Raises nothing."""
    lint = lint_items(spec, result) if result is not None else []
    m = len(lint)
    lint_cost = (1 if m > 1 else 0) + (1 if m else 0) + (binary_worst_case(m, m) if m > 1 else 0)
    refs = [(name, m + len(fine_items(spec, ref, lint))) for name, _, ref in reference_requests(spec)]
    fine_worst = sum(2 * binary_worst_case(n, MAX_CAUSES_PLANNED) + 1 for _, n in refs)
    first = refs[0][1] if refs else 0
    one = 1 + (2 if m else 0) + (binary_worst_case(first, 1) + 1 if first else 0)
    return Plan(least=1 + extra_credentials, one_cause=min(one, 1 + lint_cost) if m == 1 else one + extra_credentials,
                worst=1 + lint_cost + fine_worst + extra_credentials, lint_fixes=m, references=tuple(refs))


# ---------------------------------------------------------------------------------------------------- sending

def _usage_tokens(obs: Observation | None) -> int:
    body = obs.body if obs is not None else None
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0
    return sum(v for k, v in usage.items() if k.endswith("_tokens") and isinstance(v, int) and not isinstance(v, bool))


def _subset_key(labels: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(labels)).encode()).hexdigest()[:10]


class _Engine:
    """Sends requests for one diagnosis: budget, retries of transient answers, classification, the run's cells."""

    def __init__(self, spec: RequestSpec, probe: Callable[[RequestSpec], Any], *, label: str, credential: str | None,
                 store: RunWriter | None, budget: int | None, pass_outcomes: Sequence[str], retries_unclear: int):
        self.spec, self.probe, self.label, self.credential = spec, probe, label, credential
        self.store, self.budget, self.pass_outcomes = store, budget, tuple(pass_outcomes)
        self.retries_unclear = retries_unclear
        self.sent: list[Sent] = []
        self.taxonomy = load_taxonomy()
        self.as_sent_tries = 0  # how often the request as sent went out (a transient answer is tried again)
        self.retries_cut = False  # the budget ran out before those tries were done

    def remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - len(self.sent))

    def verdict_of(self, outcome: str) -> str:
        if outcome in self.pass_outcomes:
            return PASS
        return UNCLEAR if self.taxonomy.is_transient(outcome) else FAIL

    def send(self, spec: RequestSpec, step: str, change: str, key: str = "", *,
             probe: Callable[[RequestSpec], Any] | None = None, credential: str | None = None) -> Sent:
        """Send ``spec`` once, classify and store it; raises :class:`OutOfBudget` (nothing sent) past the budget."""
        from lanelab.matrix.budget import estimate_tokens
        from lanelab.matrix.designs import cell_id_for

        if self.budget is not None and len(self.sent) >= self.budget:
            raise OutOfBudget
        label = credential or self.credential
        spec = spec.copy()
        spec.credential = label
        answer = (probe or self.probe)(spec)
        verdict, obs = self._classified(answer)
        levels = {"step": step, "change": change, "set": key or "-"}
        if label:
            levels["credential"] = label
        cell_id = cell_id_for(self.label, levels)
        claim = obs.unified.representative_claim if obs is not None else None
        sent = Sent(n=len(self.sent) + 1, step=step, change=change, outcome=verdict.outcome, lane=verdict.lane,
                    status=obs.status if obs is not None else None, rule=verdict.rule, cell_id=cell_id, credential=label,
                    tokens=_usage_tokens(obs), estimated=estimate_tokens(spec),
                    message=redact.redact_text((obs.error_message or obs.transport_error or "") if obs else ""),
                    claim=claim)
        self.sent.append(sent)
        if self.store is not None:
            self.store.cell(cell_id=cell_id, profile=self.label, levels=levels, credential=label, spec=spec.to_dict(),
                            observation=obs if obs is not None else Observation(), outcome=verdict.outcome,
                            lane=verdict.lane, rule=verdict.rule, design=DESIGN, n=sent.n)
        return sent

    def _classified(self, answer: Any) -> tuple[Classified, Observation | None]:
        if isinstance(answer, Observation):
            return classify(answer, self.taxonomy), answer
        if isinstance(answer, Classified):
            return answer, None
        outcome = str(answer)
        return Classified(outcome, "plan" if outcome in self.pass_outcomes else "none", "probe"), None

    def session(self, items: Sequence[Item], step: str, known: dict[frozenset[int], bool] | None = None,
                invert_from: frozenset[int] | None = None) -> ProbeSession:
        """A probe session over ``items``: a subset is applied to the request as sent. With ``invert_from`` (the
        partner search) a subset ``P`` applies ``invert_from - P`` and a refusal counts as the flip."""
        def send(subset: frozenset[int]) -> str:
            applied = sorted(invert_from - subset) if invert_from is not None else sorted(subset)
            chosen = [items[i] for i in applied]
            request = apply_items(self.spec, chosen)
            if len(chosen) == 1:
                change = f"fixed: {chosen[0].label}"
            elif chosen and len(chosen) == len(items):
                change = f"all {len(items)} fixes applied"
            else:
                change = f"{len(chosen)} of {len(items)} fixes applied"
            return self.send(request, step, change, _subset_key([c.label for c in chosen])).outcome

        def verdict_of(outcome: Any) -> tuple[str, str]:
            v = self.verdict_of(str(outcome))
            if invert_from is not None and v != UNCLEAR:
                v = FAIL if v == PASS else PASS
            return str(outcome), v

        return ProbeSession(send, verdict_of, budget=self.remaining(), retries_unclear=self.retries_unclear,
                            known=dict(known or {}))


# ---------------------------------------------------------------------------------------------------- describing

def _words(sent: Sent, taxonomy: Any) -> str:
    """How a request ended, in words: "billed to the plan (HTTP 200)", "refused (400 out of extra usage)"."""
    label = taxonomy.by_id[sent.outcome].label if sent.outcome in taxonomy.by_id else sent.outcome
    status = f"HTTP {sent.status}" if sent.status is not None else "no HTTP status"
    if sent.outcome == "served_plan":
        return f"billed to the plan ({status})"
    if sent.outcome == "served_extra":
        return f"billed to extra usage ({status})"
    if sent.status is not None and sent.status >= 400:
        return f"refused ({label})"
    return f"answered: {label} ({status})"


def _where(settings_mode: str, host: str | None, policy: str | None) -> str:
    if settings_mode == "live":
        return f"the live API ({host or LIVE_API_BASE})"
    return f"the simulator's policy `{policy or DEFAULT_POLICY}`" + (f" at {host}" if host else "")


# ---------------------------------------------------------------------------------------------------- the search

@dataclass
class _Outcome:
    status: str
    cause: list[Item] = field(default_factory=list)
    partners: list[Item] = field(default_factory=list)
    suspects: list[Item] = field(default_factory=list)
    confirm: list[Sent] = field(default_factory=list)
    alone: Sent | None = None
    reference: str | None = None
    examined: int = 0
    notes: list[str] = field(default_factory=list)


def _sent_for(engine: _Engine, before: int, subset: frozenset[int], items: Sequence[Item]) -> Sent | None:
    """The request sent (after index ``before``) that applied exactly ``subset`` of ``items``."""
    key = _subset_key([items[i].label for i in subset])
    return next((s for s in reversed(engine.sent[before:]) if f"set={key}" in _levels_key(s)), None)


def _levels_key(sent: Sent) -> str:
    return sent.step + "|" + sent.change + "|" + sent.cell_id


def _search(engine: _Engine, spec: RequestSpec, lint_items_: list[Item], use_lint: bool) -> _Outcome:
    m = len(lint_items_)
    cache: dict[frozenset[int], bool] = {frozenset(): False}
    notes: list[str] = []
    marks: dict[frozenset[int], Sent] = {}

    def track(session: ProbeSession, items: Sequence[Item]) -> ProbeSession:
        inner = session.send

        def send(subset: frozenset[int]) -> Any:
            answer = inner(subset)
            marks[frozenset(subset)] = engine.sent[-1]
            return answer
        session.send = send
        return session

    if m:
        session = track(engine.session(lint_items_, "lint", known=cache), lint_items_)
        try:
            if m > 1 and session.flips([0]):
                return _Outcome(FOUND, [lint_items_[0]], confirm=[marks[frozenset({0})]], examined=m)
            if session.flips(range(m)):
                if m == 1:
                    return _Outcome(FOUND, [lint_items_[0]], confirm=[marks[frozenset({0})]], examined=m)
                result = search(m, session, "binary")
                if result.status == BUDGET:
                    return _Outcome(BUDGET, suspects=[lint_items_[i] for i in result.suspects], examined=m)
                cause = [lint_items_[i] for i in result.cause]
                mark = marks.get(frozenset(result.cause))
                return _Outcome(FOUND, cause, confirm=[mark] if mark else [], examined=m)
        except OutOfBudget:
            return _Outcome(BUDGET, suspects=list(lint_items_), examined=m)
        cache.update(session.cache)
        notes.append(f"Lint's {m} fix(es) ({', '.join(i.finding.id for i in lint_items_ if i.finding)}) together did "
                     "not get the request billed to the plan, so the search went on at fine grain.")
    elif use_lint:
        notes.append("Lint found no trigger with a machine fix; the search went straight to fine grain.")
    refs = reference_requests(spec)
    for name, desc, ref in refs:
        items = lint_items_ + fine_items(spec, ref, lint_items_)
        n = len(items)
        marks.clear()
        session = track(engine.session(items, f"search ({name})", known=cache), items)
        result = search(n, session, "binary")
        if result.status == NO_FLIP:
            last = marks.get(frozenset(range(n)))
            notes.append(f"The reference '{name}' ({desc}) was not billed to the plan either"
                         + (f" ({last.outcome})" if last else "") + ".")
            cache = {k: v for k, v in session.cache.items() if k <= frozenset(range(m))}
            continue
        if result.status == BUDGET:
            return _Outcome(BUDGET, suspects=[items[i] for i in result.suspects], reference=name, examined=n,
                            notes=notes)
        if result.status != FOUND:
            notes.append(f"The search against '{name}' ended with {result.status}.")
            continue
        cause_idx = frozenset(result.cause)
        confirm = [marks[cause_idx]] if cause_idx in marks else []
        out = _Outcome(FOUND, [items[i] for i in sorted(cause_idx)], confirm=confirm, reference=name, examined=n,
                       notes=notes)
        rest = frozenset(range(n)) - cause_idx
        try:
            passes_without_company = session.flips(rest)
        except OutOfBudget:
            notes.append("The budget ran out before checking that the cause alone trips it.")
            return out
        out.alone = marks.get(rest)
        if passes_without_company and rest:
            rest_items = [items[i] for i in sorted(rest)]
            everything = frozenset(range(len(rest_items)))
            dual = engine.session(rest_items, f"together with ({name})", known={frozenset(): False, everything: True},
                                  invert_from=everything)
            partners = search(len(rest_items), dual, "binary")
            if partners.status == FOUND:
                out.partners = [rest_items[i] for i in partners.cause]
                smaller = frozenset(sorted(rest)[i] for i in partners.cause)
                # interacting elements: removing any side is a fix; prefer the smaller one when it is verified
                try:
                    if len(smaller) < len(cause_idx) and session.flips(smaller):
                        out.cause, out.partners = out.partners, out.cause
                        out.confirm = [marks[smaller]] if smaller in marks else []
                        out.alone = None
                except OutOfBudget:
                    pass
            else:
                notes.append(f"What the cause needs together with it was not isolated ({partners.status}).")
        return out
    return _Outcome(NO_FLIP, notes=notes, examined=0)


# ---------------------------------------------------------------------------------------------------- the verdict

def _remedy_lines(remedies: Sequence[Remedy], fix: str | None) -> tuple[str, ...]:
    return tuple(r.render(fix or "") for r in remedies if r.id != "fix" or fix)


def _verdict(label: str, where: str, out: _Outcome | None, as_sent: Sent, engine: _Engine, spec: RequestSpec,
             remedies: Sequence[Remedy], observations: Sequence[Finding], run_id: str | None
             ) -> tuple[str, Verdict, list[CauseElement], list[CauseElement]]:
    tax = engine.taxonomy
    total, tokens = len(engine.sent), sum(s.tokens for s in engine.sent)
    spent = f"{total} request(s) and {tokens} token(s) spent in all" + (f" (run `{run_id}`)" if run_id else "")
    said = ""
    if as_sent.message:  # no second full stop after a message that ends its own sentence
        said = f" The server said: {code_span(as_sent.message, 160)}"
        said += "" if as_sent.message.rstrip().endswith((".", "!", "?")) else "."
    others = [r for r in remedies if r.id != "fix"]
    other_text = remedy_sentence(exclude=("fix",))  # running prose: the short forms (the full ones are listed)
    if out is None:  # billed to the plan as sent
        claim = f", claim `{as_sent.claim}`" if as_sent.claim else ""
        sentence = (f"{label}'s request is billed to the plan as sent (HTTP {as_sent.status}{claim}) under {where}: "
                    "nothing in it sends it to extra usage here.")
        return "plan", _verdict_of(sentence=sentence, evidence=f"Evidence: request #1 (cell `{as_sent.cell_id}`). {spent}.",
                               remedy="Nothing to fix in this request under these conditions.",
                               cells=(as_sent.cell_id,), requests=total, tokens=tokens,
                               remedies=_remedy_lines(others, None)), [], []
    outcome_words = _words(as_sent, tax)
    if out.status == UNCLEAR:
        tries = f"{engine.as_sent_tries} {'try' if engine.as_sent_tries == 1 else 'tries'}" + (
            ", all the budget allowed" if engine.retries_cut else "")
        sentence = (f"The server gave no clear answer to {label}'s request under {where} ({outcome_words}, after "
                    f"{tries}), so nothing can be concluded yet.")
        return "unclear", _verdict_of(sentence=sentence, evidence=f"Evidence: {spent}.{said}",
                                  remedy="Try again later; a transient answer says nothing about billing.",
                                  cells=(as_sent.cell_id,), requests=total, tokens=tokens, conclusive=False,
                                  remedies=_remedy_lines(others, None)), [], []
    if out.status == BUDGET:
        names = ", ".join(i.label for i in out.suspects[:8]) + (" …" if len(out.suspects) > 8 else "")
        sentence = (f"{label}'s request is {outcome_words} under {where}; the budget ran out before the cause was "
                    f"isolated: it is among {len(out.suspects)} element(s): {names}.")
        return "budget", _verdict_of(sentence=redact.redact_text(sentence), evidence=f"Evidence: {spent}.{said}",
                                 remedy=f"Raise the budget and run diagnose again; meanwhile: {other_text}.",
                                 cells=(as_sent.cell_id,), requests=total, tokens=tokens, conclusive=False,
                                 remedies=_remedy_lines(others, None)), [], []
    if out.status != FOUND:
        missing = [f.verdict for f in observations]
        sentence = (f"{label}'s request is {outcome_words} under {where}, and no request built from its own elements "
                    "by removal is billed to the plan either, so the cause is not an element to remove.")
        evidence = f"Evidence: {spent}.{said}"
        if missing:
            evidence += (" Lint reports what the request lacks (the kit never adds it): "
                         + "; ".join(pluralise(m) for m in missing) + ".")
        return "no_reference", _verdict_of(sentence=redact.redact_text(sentence), evidence=redact.redact_text(evidence),
                                       remedy=f"Remedies that exist: {other_text}.", cells=(as_sent.cell_id,),
                                       requests=total, tokens=tokens, conclusive=False,
                                       remedies=_remedy_lines(others, None)), [], []
    cause = [describe(i, spec) for i in out.cause]
    partners = [describe(i, spec) for i in out.partners]
    all_diffs = [d for i in out.cause for d in i.diffs]
    fix = fix_phrase(all_diffs) if len(out.cause) == 1 else \
        _join([fix_phrase(i.diffs, specific=True) for i in out.cause])
    confirm = [as_sent, *out.confirm] + ([out.alone] if out.alone and not out.partners else [])
    n_confirm = len({s.n for s in confirm})
    if len(cause) == 1 and not partners:
        head = cause[0].what
        if out.cause[0].finding is None:
            head += f" keeps the request off the plan (as sent it is {outcome_words})"
        sentence = f"{head[0].upper()}{head[1:]}; the same request {fix} is billed to the plan " \
                   f"({n_confirm} requests confirm it)."
    elif partners:
        sentence = (f"{_join([c.what for c in cause])} together with {_join([p.what for p in partners])} keep the "
                    f"request off the plan; the same request {fix} is billed to the plan ({n_confirm} requests confirm "
                    "it).")
    else:
        sentence = (f"{len(cause)} elements together keep the request off the plan, each needed: "
                    f"{_join([c.what for c in cause])}; the same request {fix} is billed to the plan "
                    f"({n_confirm} requests confirm it).")
    sentence = sentence[0].upper() + sentence[1:]
    lines = [f"request #{as_sent.n} as sent: {outcome_words} (cell `{as_sent.cell_id}`)"]
    lines += [f"request #{s.n} {fix}: {_words(s, tax)} (cell `{s.cell_id}`)" for s in out.confirm]
    if out.alone is not None:
        lines.append(f"request #{out.alone.n}, the reference request with only the cause left in: "
                     f"{_words(out.alone, tax)} (cell `{out.alone.cell_id}`)"
                     + ("; so it needs its partner(s) to trip" if out.partners else "; so it alone trips it"))
    evidence = "Evidence: " + "; ".join(lines) + f".{said} {spent}."
    lint_fix = " ".join(i.finding.trigger.fix for i in out.cause if i.finding is not None)
    remedy_fix = f"send it {fix}" + (f" (what reports say: {lint_fix})" if lint_fix else "")
    remedy = f"Remedy: send the request {fix}. Without changing the client: {other_text}."
    cells = tuple(dict.fromkeys(s.cell_id for s in confirm))
    first = cause[0]
    return ("lint" if all(i.finding is not None for i in out.cause) else "found",
            _verdict_of(sentence=redact.redact_text(sentence), evidence=redact.redact_text(evidence),
                    remedy=redact.redact_text(remedy), element=", ".join(c.element for c in cause),
                    before=first.before, after=first.after, cells=cells, requests=total, tokens=tokens,
                    remedies=_remedy_lines(remedies, remedy_fix)), cause, partners)


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# ---------------------------------------------------------------------------------------------------- entry points

def diagnose(spec: RequestSpec, probe: Callable[[RequestSpec], Observation | str], *, label: str = "request",
             lint_input: LintInput | None = None, use_lint: bool = True, budget: int | None = None,
             store: RunWriter | None = None, credential: str | None = None,
             second: tuple[str, str, Callable[[RequestSpec], Observation | str]] | None = None,
             first_source: str = "",
             pass_outcomes: Sequence[str] = DEFAULT_PASS_OUTCOMES, retries_unclear: int = 1,
             where: str = "the server", notes: Sequence[str] = ()) -> Diagnosis:
    """Diagnose ``spec`` by sending it and variants of it through ``probe`` (see the module docstring).

    ``probe(spec)`` sends one request and returns its :class:`Observation` (or an outcome id, for tests and the
    benchmark). ``lint_input`` is what lint reads (a capture keeps repeated headers; default: ``spec``);
    ``use_lint=False`` skips the lint stage. ``budget`` caps the requests (the diagnosis stops and says where the
    cause still is). ``store`` (a :class:`lanelab.runs.RunWriter`) receives every request as a cell and the verdict
    as a ``note``. ``second`` = (label, source, probe) sends the request as sent once with a second credential;
    ``first_source`` names the first credential's source.

    Returns a :class:`Diagnosis`. Raises what ``probe`` raises (e.g. :class:`lanelab.errors.HostNotAllowed`).
    """
    result = lint(lint_input or spec) if use_lint else None
    engine = _Engine(spec, probe, label=label, credential=credential, store=store, budget=budget,
                     pass_outcomes=pass_outcomes, retries_unclear=retries_unclear)
    remedies = load_remedies()
    out: _Outcome | None
    try:
        as_sent = engine.send(spec, "as sent", "nothing (the request as the client sent it)")
        engine.as_sent_tries = 1
        while engine.verdict_of(as_sent.outcome) == UNCLEAR and engine.as_sent_tries <= retries_unclear:
            as_sent = engine.send(spec, "as sent", "nothing (sent again after a transient answer)")
            engine.as_sent_tries += 1
    except OutOfBudget:
        if not engine.as_sent_tries:
            raise BudgetExceeded("The budget allows no request at all; nothing was sent.",
                                 "Pass --budget 1 or more.") from None
        engine.retries_cut = True  # a transient answer, and no budget left to try again: the answer is unclear
    verdict_now = engine.verdict_of(as_sent.outcome)
    if verdict_now == PASS:
        out = None
    elif verdict_now == UNCLEAR:
        out = _Outcome(UNCLEAR)
    else:
        out = _search(engine, spec, lint_items(spec, result) if result is not None else [], use_lint)
    check = None
    if second is not None:
        label2, source2, probe2 = second
        try:
            other = engine.send(spec, "other credential", "nothing; sent with the second credential",
                                probe=probe2, credential=label2)
            check = CredentialCheck((credential or "first", label2), (first_source or "unknown", source2),
                                    (as_sent.outcome, other.outcome), (as_sent.lane, other.lane),
                                    (as_sent.cell_id, other.cell_id))
        except OutOfBudget:
            pass
    observations = [f for f in (result.observations if result else []) if f.trigger.remedies]
    run_id = store.path.stem if store is not None else None
    status, verdict, cause, partners = _verdict(label, where, out, as_sent, engine, spec, remedies, observations,
                                                run_id)
    all_notes = [*notes, *(out.notes if out else [])]
    if check is not None and check.matters:
        all_notes.append("The two credentials got different answers to the identical request: the verdict above is "
                         "for the first one.")
    diagnosis = Diagnosis(label=label, status=status, verdict=verdict, sent=list(engine.sent), where=where, lint=result,
                          cause=cause, partners=partners, reference=out.reference if out else None,
                          examined=out.examined if out else 0, credential_check=check, notes=all_notes,
                          remedies=remedies, run_path=store.path if store is not None else None)
    if store is not None:
        store.note(verdict=verdict.to_dict(), status=status, requests=diagnosis.requests, tokens=diagnosis.tokens,
                   credential_check=asdict(check) if check else None)
    return diagnosis


def _run_id(label: str, where: str) -> str:
    digest = hashlib.sha256(f"{label}|{where}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-").lower() or "request"
    return f"diagnose_{slug}_{digest}"


def _credential_source(settings: Settings, label: str, where: str | None) -> str:
    from lanelab.auth.store import CredentialStore

    try:
        cred = CredentialStore(settings.home).load(label)
        return str(getattr(cred, "source", "") or "the kit's store")
    except Exception:  # noqa: BLE001 - only a description; the token itself came through the token source
        return where or "unknown"


@contextlib.contextmanager
def _server(settings: Settings, policy: str, account: dict[str, Any] | None) -> Iterator[tuple[str, str]]:
    """(base URL, where) for the diagnosis: the live API, the simulator at LANELAB_BASE_URL, or one started here."""
    if settings.mode == "live":
        yield str(settings.base_url or LIVE_API_BASE), _where("live", settings.base_url, None)
        return
    if settings.base_url:
        from lanelab.matrix.sim_client import sim_policy

        yield settings.base_url, _where("sim", settings.base_url, sim_policy(settings.base_url) or policy)
        return
    from lanelab.sim.server import running_simulator

    with running_simulator(policy=policy, account=account) as sim:
        yield sim.base_url, _where("sim", None, policy)


def _within_budget(plan: Plan, budget: int | None) -> Plan:
    """``plan`` when a live ``budget`` covers its worst case; else :class:`BudgetExceeded` (nothing was sent)."""
    if budget is None:
        raise BudgetExceeded("Live diagnose needs a budget; nothing was sent.",
                             "Add --budget N (in a notebook: BUDGET), the most requests to send, retries included.")
    if plan.worst > budget:
        raise BudgetExceeded(f"This diagnosis may need up to {plan.worst} requests ({plan.describe()}), more than "
                             f"the budget of {budget}; nothing was sent.",
                             f"Pass --budget {plan.worst} (in a notebook: BUDGET = {plan.worst}); it stops as soon "
                             f"as the cause is found: about {plan.one_cause} requests for one cause.")
    return plan


def _gate(settings: Settings, base_url: str, label: str, token: str, spec: RequestSpec, plan: Plan,
          budget: int | None, confirmed: bool) -> LiveGate:
    from lanelab.matrix.confirm import gate_for

    return gate_for(settings, base_url, label, token, once=[spec] * plan.worst, budget=budget, confirmed=confirmed,
                    what="requests (at most)",
                    extra=(f"diagnose: {plan.describe()}; each request with max_tokens 1 and no streaming",))


def live_gate(*, profile: str | None = None, capture: str | Path | None = None, dump: str | Path | None = None,
              index: int | None = None, credential: str | None = None, budget: int | None = None,
              use_lint: bool = True, settings: Settings | None = None, confirmed: bool = False) -> LiveGate:
    """What a live diagnosis of this request would cost, to confirm before :func:`run_diagnose` sends anything (the
    notebook shows it with :class:`lanelab.matrix.confirm.ConfirmWidget`; the CLI asks instead).

    Returns a :class:`~lanelab.live.LiveGate`: in sim mode one that needs nothing; in live mode the notice, host
    (``LANELAB_BASE_URL`` or the live API), the credential masked and the worst case, confirmed when ``confirmed``.
    Raises :class:`~lanelab.errors.BudgetExceeded` when ``budget`` is None or below the worst case (as
    :func:`run_diagnose` would, so nothing is offered for confirmation that would then be refused; checked before the
    credential is looked up), and what :func:`load_source` and the credential lookup raise; sends nothing.
    """
    from lanelab.auth.issuer import default_label
    from lanelab.live import LiveGate
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.matrix.tokens import TokenSource

    settings = settings or Settings.from_env()
    if settings.mode != "live":
        return LiveGate(None)
    base_url = settings.base_url or LIVE_API_BASE
    label = credential or default_label("live")
    source = load_source(profile=profile, capture=capture, dump=dump, index=index)
    spec = minimal_spend(source.spec)
    plan = _within_budget(plan_requests(spec, lint(source.lint_input) if use_lint else None), budget)
    token = TokenSource(settings, base_url, label).token()
    redact.register_secret(token)
    return _gate(settings, base_url, label, token, spec, plan, budget, confirmed)


def run_diagnose(*, profile: str | None = None, capture: str | Path | None = None, dump: str | Path | None = None,
                 index: int | None = None, credentials: Sequence[str] = (), live: bool = False,
                 budget: int | None = None, policy: str = DEFAULT_POLICY, settings: Settings | None = None,
                 use_lint: bool = True, account: dict[str, Any] | None = None, write_report: bool = True,
                 token_for: Callable[[str], str] | None = None, confirmed: bool = False,
                 confirm: Callable[[Confirmation], None] | None = None,
                 on_sent: Callable[[Observation], None] | None = None) -> Diagnosis:
    """Diagnose a profile's, a capture's or a dump's request end to end: what the CLI and the notebook call.

    Sim mode (the default) uses the simulator at ``LANELAB_BASE_URL`` or starts one with ``policy`` (and
    ``account``, a partial account to merge) for the call; the credential is looked up as the matrix does
    (:class:`lanelab.matrix.tokens.TokenSource`: the store, the importers, else a fresh simulator token). Live mode
    (``live=True`` or ``LANELAB_MODE=live``) needs the opt-in (:func:`lanelab.live.require_live_opt_in`) and a
    ``budget``, and refuses before sending anything when the worst case (:func:`plan_requests`) exceeds it; then the
    notice, host, credential (masked) and worst case go to ``confirm`` (the CLI's prompt, which raises
    :class:`~lanelab.live.NotConfirmed` when the user says no) or, without it, nothing is sent unless ``confirmed``
    (the notebook's button or ``CONFIRM_LIVE``; see :func:`live_gate`). One or two
    ``credentials`` labels (default ``sim-pkce`` / ``live-pkce``); with two, the request as sent goes once with each.
    Every request is a cell of a new run (design ``diagnose``) under LANELAB_OUT/runs (an earlier diagnosis of the
    same request keeps its file; the new run id gets a suffix); with ``write_report`` a
    short redacted Markdown report goes to LANELAB_OUT/diagnose/<run_id>.md. ``on_sent`` is told each answer as it
    comes (a command's progress line).

    Returns the :class:`Diagnosis`. Raises :class:`~lanelab.errors.InputError` for bad arguments, what
    :func:`load_source` raises, :class:`~lanelab.errors.LiveNotOptedIn`, :class:`~lanelab.errors.BudgetExceeded`
    and :class:`~lanelab.live.NotConfirmed` (nothing sent), and what the credential lookup raises.
    """
    import dataclasses

    from lanelab.auth.issuer import default_label
    from lanelab.live import require_live_opt_in
    from lanelab.matrix.budget import as_budget
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.matrix.tokens import TokenSource
    from lanelab.runs import RunWriter, free_run_path, make_header
    from lanelab.walkthrough.bisect import http_probe

    as_budget(budget)  # a number of requests, 1 or more, or None: refused here, before any file or request
    settings = settings or Settings.from_env()
    if live and settings.mode != "live":
        settings = dataclasses.replace(settings, mode="live", base_url=settings.base_url or LIVE_API_BASE)
    if isinstance(credentials, str):  # "A" or "A,B", as the CLI's --credential takes them
        credentials = credentials.split(",")
    labels = list(dict.fromkeys(c.strip() for c in credentials if c and c.strip()))
    if len(labels) > 2:
        raise InputError(f"At most two credential labels, got {len(labels)}.", "--credential A or --credential A,B.")
    labels = labels or [default_label(settings.mode)]
    source = load_source(profile=profile, capture=capture, dump=dump, index=index)
    spec = minimal_spend(source.spec) if settings.mode == "live" else source.spec.copy()
    notes = list(source.notes)
    if settings.mode == "live":
        require_live_opt_in(settings, "Live diagnose spends your real account")
        plan = _within_budget(plan_requests(spec, lint(source.lint_input) if use_lint else None, len(labels) - 1),
                              budget)
        notes.append("Live: every request was sent with max_tokens 1 and no streaming (the kit's cheapest form).")
    with _server(settings, policy, account) as (base_url, where):
        tokens = [TokenSource(settings, base_url, lbl) for lbl in labels] if token_for is None else []
        secrets = [t.token() for t in tokens] if token_for is None else [token_for(lbl) for lbl in labels]
        for s in secrets:
            redact.register_secret(s)
        if settings.mode == "live":  # nothing is sent before the user has seen the cost and said yes
            gate = _gate(settings, base_url, labels[0], secrets[0], spec, plan, budget, confirmed)
            if confirm is not None and not gate.confirmed and gate.confirmation is not None:
                confirm(gate.confirmation)
            else:
                gate.require()
        sources = ([t.where or _credential_source(settings, lbl, None) for t, lbl in zip(tokens, labels, strict=True)]
                   if token_for is None else ["given by the caller"] * len(labels))
        run_id = _run_id(source.label, f"{where}|{','.join(labels)}|{use_lint}")
        path = free_run_path(settings.runs_dir, run_id)  # a new experiment; an earlier one stays as it is
        if path.stem != run_id:
            notes.append(f"An earlier diagnosis of this request is kept in {run_id}.jsonl; this one sent its requests "
                         f"anew, as {path.name} (a diagnosis is not resumed: each request it sends depends on the "
                         "answers before it).")
        run_id = path.stem
        store = RunWriter(path, make_header(run_id, mode=settings.mode, host=base_url if settings.mode == "live"
                                            else where, policy=None if settings.mode == "live" else
                                            where.split("`")[1] if "`" in where else policy,
                                            profile=source.label, design=DESIGN, factors=[], credentials=labels))
        from lanelab import http as lanelab_http

        with lanelab_http.client(base_url, timeout=120) as client:
            probe = http_probe(base_url, secrets[0], labels[0], client, on_sent)
            second = (labels[1], sources[1], http_probe(base_url, secrets[1], labels[1], client, on_sent)) \
                if len(labels) == 2 else None
            diagnosis = diagnose(spec, probe, label=source.label, lint_input=source.lint_input, use_lint=use_lint,
                                 budget=budget, store=store, credential=labels[0], second=second,
                                 first_source=sources[0], where=where, notes=notes)
    if write_report:
        report = settings.out / "diagnose" / f"{run_id}.md"
        report.parent.mkdir(parents=True, exist_ok=True)
        diagnosis.report_path = report
        report.write_text(diagnosis.to_markdown(), encoding="utf-8")
    return diagnosis
