"""Delta debugging between a request that fails and one that passes: the smallest difference that flips the verdict.

A *difference* (see :mod:`lanelab.wire.diff`) is an atomic edit that moves one part of the failing request to its value in
the passing one. Bisect applies subsets of the edits to the failing request, sends each through a probe, and narrows
to a 1-minimal set that still flips the outcome (removing any one edit from it no longer flips).

The default strategy is *binary reduction*, a ddmin variant that finds each necessary edit by a binary search over
prefixes of the remaining edits, so a single cause costs about ``log2 k + 1`` requests instead of ddmin's more.
Causes that only act together come out as a set (each needed); causes that each suffice come out as the first one
found. The request ends (unchanged, all applied) are probed only when the search needs them; ``check_ends`` probes
them first. Classic ``ddmin``, ``one_at_a_time`` and ``exhaustive`` are there for comparison (bench/bench_bisect.py).

Flaky servers: a transient outcome (429, 529, 5xx, transport error) is re-sent up to ``retries_unclear`` times;
``repeats`` > 0 confirms every verdict with a second send and, when the two disagree, sends up to ``repeats`` more
and lets the majority decide. A budget caps the requests sent; the result always says how many were spent.

Items instead of single differences: ``items`` (:class:`~lanelab.walkthrough.items.Item`: one lint fix,
or one fine difference) are searched as units, so an answer names the element to act on the way diagnose names it
(``16 tool names use the single-underscore mcp_ prefix: with mcp__ instead of mcp_``). :func:`reference_for` builds
the reference diagnose tries first from the client's own request (lint's fixes applied, nothing added) and its items.

Resuming: :func:`bisect_to_run` stores every probe as a cell of a run and, run again on the same question, reads the
stored probes back (keyed by the request each sent, :func:`probe_key`) and reuses their verdicts instead of sending
them again, like the matrix. A run file is never deleted or replaced: a run id that holds another question gets the
next free name (``<run_id>-2`` …), and the result says so.

Responsible use: an edit that would add a billing attestation block is never applied (the kit does not send one on
anyone's behalf); it is listed in ``result.excluded``.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.config import Settings
from lanelab.errors import UserError
from lanelab.matrix.designs import cell_id_for
from lanelab.matrix.errors import InvalidOption
from lanelab.runs import BISECT_DESIGN, Run, RunWriter, free_run_path, load_run, make_header
from lanelab.wire.attestation import is_attestation
from lanelab.wire.classify import classify, load_taxonomy
from lanelab.wire.diff import (
    GRAINS,
    MISSING,
    Difference,
    apply_differences,
    diff_specs,
    differences,
    load_annotations,
    show,
)
from lanelab.wire.spec import Observation, RequestSpec

__all__ = ["ALREADY_PASSES", "BUDGET", "DEFAULT_PASS_OUTCOMES", "FAIL", "FOUND", "NOT_ISOLATED", "NO_FLIP",
           "PASS", "STRATEGIES", "UNCLEAR", "BisectResult", "OutOfBudget", "ProbeRecord", "ProbeSession", "Reference",
           "SendFn", "Verdict", "binary_worst_case", "bisect", "bisect_run_id", "bisect_to_run", "http_probe",
           "probe_key", "reference_for", "search", "stored_probes"]

STRATEGIES = ("binary", "ddmin", "one_at_a_time", "exhaustive")
PASS, FAIL, UNCLEAR = "pass", "fail", "unclear"
#: The outcome the passing request is expected to get, unless the caller says otherwise.
DEFAULT_PASS_OUTCOMES = ("served_plan",)

#: status values of a result
FOUND, NO_FLIP, ALREADY_PASSES, BUDGET, NOT_ISOLATED = (
    "found", "no_flip", "already_passes", "budget_exhausted", "not_isolated")


class _OutOfBudget(Exception):
    pass


#: Raised by :meth:`ProbeSession.flips` when its budget is used up (:func:`search` turns it into ``budget_exhausted``).
OutOfBudget = _OutOfBudget


@dataclass
class ProbeRecord:
    """One probe: which edits were applied, what each send answered, and the verdict drawn from them."""

    n: int
    applied: tuple[int, ...]
    outcomes: list[str]
    verdict: str

    @property
    def requests(self) -> int:
        return len(self.outcomes)


@dataclass
class BisectResult:
    """What bisect found, and what it cost."""

    status: str
    strategy: str
    cause: list[int]
    suspects: list[int]
    requests: int
    probes: list[ProbeRecord]
    differences: list[Difference] = field(default_factory=list)
    excluded: list[Difference] = field(default_factory=list)
    ends_confirmed: bool = False
    path: Path | None = None  # the run file holding every probe, when the probes were stored (bisect_to_run)
    #: the units searched when they were items (lint fixes, fine differences), else empty: ``cause`` indexes them
    items: list[Any] = field(default_factory=list)
    #: probe answers read back from the stored run instead of sent again (a resumed bisect)
    reused: int = 0
    #: what the caller should know (e.g. the run was stored under a new name)
    notes: list[str] = field(default_factory=list)
    #: the failing request, to describe items in diagnose's words
    failing: RequestSpec | None = field(default=None, repr=False)

    @property
    def found(self) -> bool:
        return self.status == FOUND

    @property
    def units(self) -> int:
        """How many units the search went over (items, or differences)."""
        return len(self.items) if self.items else len(self.differences)

    @property
    def cause_differences(self) -> list[Difference]:
        if self.items:
            return [d for i in self.cause for d in self.items[i].diffs]
        return [self.differences[i] for i in self.cause] if self.differences else []

    def unit_label(self, i: int) -> str:
        """Unit ``i`` in words: an item as diagnose describes it (what it is, and the fix), or a difference's label."""
        if self.items:
            return _item_words(self.items[i], self.failing)
        return self.differences[i].label if self.differences else f"#{i}"

    def _ends_said(self) -> str:
        """How the two requests themselves ended, when probed: the answer to "did I swap --fail and --pass?"."""
        n = self.units
        ends = {p.applied: p for p in self.probes}
        said = []
        for name, applied in (("the failing request unchanged", ()), ("the passing one", tuple(range(n)))):
            probe = ends.get(applied)
            if probe is not None and probe.outcomes:
                said.append(f"{name} ended {'/'.join(dict.fromkeys(probe.outcomes))}")
        return (": " + " and ".join(said)) if said else ""

    def summary(self) -> str:
        """One redacted sentence: what was found (or why nothing was) and how many requests it cost."""
        labels = [self.unit_label(i) for i in self.cause]
        if self.status == FOUND:
            what = (f"the smallest difference that flips the verdict is {len(labels)} edit(s): {', '.join(labels)}"
                    if labels else "nothing: the failing request passed")
        elif self.status == NO_FLIP and not (self.items or self.differences or self.excluded):
            what = "the two requests are the same (no difference to apply): nothing to bisect"
        elif self.status == NO_FLIP:
            what = ("applying every difference did not flip the verdict (the passing request may fail now, or a "
                    "flaky server)" + self._ends_said())
        elif self.status == ALREADY_PASSES:
            what = ("the failing request passed unchanged: nothing to bisect (are --fail and --pass the right way "
                    "round?)")
        elif self.status == BUDGET:
            sus = [self.unit_label(i) for i in self.suspects]
            more = f" and {len(sus) - 8} more" if len(sus) > 8 else ""
            what = f"the budget ran out; the cause is among {len(sus)} difference(s): {', '.join(sus[:8])}{more}"
        else:
            what = "no single edit flips the verdict; the cause needs several edits together"
        note = f" ({len(self.excluded)} attestation edit(s) not tried)" if self.excluded else ""
        reused = (f"; {self.reused} probe answer(s) read back from the earlier run, not sent again"
                  if self.reused else "")
        return redact.redact_text(f"{what}; {self.requests} request(s) spent{reused}{note}.")

    def probe_frame(self) -> pd.DataFrame:
        """One row per probe: how many edits it applied, what each send answered, and the verdict."""
        rows = [{"probe": p.n, "edits applied": len(p.applied), "outcomes": ", ".join(p.outcomes),
                 "verdict": p.verdict} for p in self.probes]
        return pd.DataFrame(rows, columns=["probe", "edits applied", "outcomes", "verdict"])

    def to_frame(self) -> pd.DataFrame:
        """One row per difference in the cause: where it is, both values, and what public reports say about it."""
        return _diff_rows(self.cause_differences)

    def differences_frame(self) -> pd.DataFrame:
        """Every difference the search went over (then the attestation edits it never tries), one row each: the unit
        it belongs to (``#``), where it is, both values, what public reports say, and whether it is in the cause."""
        units = ([(i, d) for i, item in enumerate(self.items) for d in item.diffs] if self.items
                 else list(enumerate(self.differences)))
        df = _diff_rows([d for _, d in units] + list(self.excluded))
        cause = set(self.cause)
        df.insert(0, "#", [str(i) for i, _ in units] + ["-"] * len(self.excluded))
        df["in the cause"] = (["yes" if i in cause else "" for i, _ in units]
                              + ["never tried (attestation)"] * len(self.excluded))
        return df

    def _repr_html_(self) -> str:
        """The result in a notebook: the summary (backtick code shown as code) and the table of probes."""
        from lanelab.findings.render import Table, html_inline, html_table

        return redact.redact_text(f"<p><b>bisect ({self.strategy}):</b> {html_inline(self.summary())}</p>"
                                  f"{html_table(Table.from_frame(self.to_frame()))}")

    def __repr__(self) -> str:
        return f"<BisectResult {self.status} cause={self.cause} requests={self.requests}>"


def _diff_rows(diffs: Sequence[Difference]) -> pd.DataFrame:
    """Differences as rows (part, field, failing, passing, what reports say, sources); a difference without
    annotations (a fine one) is annotated from the catalogue here."""
    catalogue = None
    rows = []
    for d in diffs:
        notes = list(d.annotations)
        if not notes:
            catalogue = catalogue if catalogue is not None else load_annotations()
            notes = [a for a in catalogue if a.matches(d)]
        rows.append({"part": d.part, "field": d.key, "failing": show(d.a), "passing": show(d.b),
                     "what reports say": " · ".join(a.note for a in notes),
                     "sources": "; ".join(a.source for a in notes)})
    return pd.DataFrame(rows, columns=["part", "field", "failing", "passing", "what reports say", "sources"])


def _item_words(item: Any, failing: RequestSpec | None) -> str:
    """An item as diagnose words a cause: what it is, then the fix (``16 tool names use … : with `mcp__` …``)."""
    from lanelab.walkthrough.items import describe  # the one description of a cause

    element = describe(item, failing if failing is not None else RequestSpec())
    return f"{element.what} (fix: {element.fix})"


Verdict = str
SendFn = Callable[[frozenset[int]], Any]


class ProbeSession:
    """Sends subsets through a probe with caching, a budget, retries of transient outcomes and majority repeats."""

    def __init__(self, send: SendFn, verdict_of: Callable[[Any], tuple[str, Verdict]], *, budget: int | None = None,
                 repeats: int = 0, retries_unclear: int = 1, known: dict[frozenset[int], bool] | None = None,
                 recall: Callable[[frozenset[int]], Any] | None = None):
        self.send = send
        self.verdict_of = verdict_of
        self.budget = budget
        self.repeats = repeats
        self.retries_unclear = retries_unclear
        self.cache: dict[frozenset[int], bool] = dict(known or {})
        #: ``recall(subset)``: an answer stored by an earlier run for this probe (reused, not sent), or None
        self.recall = recall
        self.requests = 0
        self.reused = 0
        self.probes: list[ProbeRecord] = []

    def _once(self, subset: frozenset[int], outcomes: list[str]) -> Verdict:
        verdict = UNCLEAR
        for _ in range(1 + self.retries_unclear):
            answer = self.recall(subset) if self.recall is not None else None
            if answer is not None:  # read back from the stored run: costs nothing, counts against no budget
                self.reused += 1
            else:
                if self.budget is not None and self.requests >= self.budget:
                    raise _OutOfBudget
                self.requests += 1
                answer = self.send(subset)
            outcome, verdict = self.verdict_of(answer)
            outcomes.append(outcome)
            if verdict != UNCLEAR:
                break
        return verdict

    def flips(self, subset: Iterable[int]) -> bool:
        """Whether applying ``subset`` flips the failing request to passing (cached; may send several requests)."""
        key = frozenset(subset)
        if key in self.cache:
            return self.cache[key]
        record = ProbeRecord(len(self.probes) + 1, tuple(sorted(key)), [], UNCLEAR)
        self.probes.append(record)
        try:
            votes = [self._once(key, record.outcomes)]
            if self.repeats > 0:
                votes.append(self._once(key, record.outcomes))
                extra = 0
                while votes.count(PASS) == votes.count(FAIL) and extra < self.repeats:
                    votes.append(self._once(key, record.outcomes))
                    extra += 1
        except _OutOfBudget:
            if not record.outcomes:
                self.probes.pop()
            raise
        npass, nfail = votes.count(PASS), votes.count(FAIL)
        record.verdict = PASS if npass > nfail else FAIL if nfail else UNCLEAR
        self.cache[key] = record.verdict == PASS
        return self.cache[key]


# --- strategies over indices 0..n-1 ------------------------------------------------------------------------------

def _binary(n: int, t: ProbeSession) -> tuple[str, list[int]]:
    """Binary reduction: repeatedly binary-search the shortest flipping prefix; its last edit is needed."""
    needed: list[int] = []
    rest = list(range(n))
    top_known = frozenset(range(n)) in t.cache
    while True:
        if needed and t.flips(needed):
            return FOUND, sorted(needed)
        if not rest:
            return (FOUND, sorted(needed)) if needed else (ALREADY_PASSES, [])
        lo, hi = 0, len(rest)  # flips(needed + rest[:lo]) is False, flips(needed + rest[:hi]) is True (or assumed)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if t.flips([*needed, *rest[:mid]]):
                hi = mid
            else:
                lo = mid
        if hi == len(rest) and not top_known and not t.flips([*needed, *rest]):
            if not needed and t.flips([]):  # the failing request passes as it is (--fail and --pass swapped?)
                return ALREADY_PASSES, []
            return NO_FLIP, []
        top_known = True
        if lo == 0 and not needed and t.flips([]):
            return ALREADY_PASSES, []
        needed.append(rest[hi - 1])
        rest = rest[: hi - 1]


def _split(items: list[int], parts: int) -> list[list[int]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


def _ddmin(n: int, t: ProbeSession) -> tuple[str, list[int]]:
    """Zeller's ddmin over the edits, testing subsets and complements with growing granularity."""
    if t.flips([]):
        return ALREADY_PASSES, []
    current = list(range(n))
    if not t.flips(current):
        return NO_FLIP, []
    parts = 2
    while len(current) >= 2:
        chunks = _split(current, parts)
        for chunk in chunks:
            if t.flips(chunk):
                current, parts = chunk, 2
                break
        else:
            for chunk in chunks:
                comp = [i for i in current if i not in chunk]
                if len(chunks) > 2 and t.flips(comp):
                    current, parts = comp, max(parts - 1, 2)
                    break
            else:
                if parts >= len(current):
                    break
                parts = min(len(current), parts * 2)
    return FOUND, sorted(current)


def _one_at_a_time(n: int, t: ProbeSession) -> tuple[str, list[int]]:
    """Apply each edit alone; report the first that flips (none: the cause needs several edits)."""
    for i in range(n):
        if t.flips([i]):
            return FOUND, [i]
    return NOT_ISOLATED, []


def _exhaustive(n: int, t: ProbeSession) -> tuple[str, list[int]]:
    """Every subset, smallest first: the first that flips is a minimum (exponential; for comparison only)."""
    for size in range(n + 1):
        for combo in itertools.combinations(range(n), size):
            if t.flips(combo):
                return (FOUND, list(combo)) if combo else (ALREADY_PASSES, [])
    return NO_FLIP, []


def binary_worst_case(n: int, causes: int = 1) -> int:
    """Most requests binary reduction sends over ``n`` edits to isolate ``causes`` needed edits, both ends unknown and
    no retries: per cause a binary search (``ceil(log2 n)`` probes) and one confirming probe, plus the end with every
    edit applied. Returns 0 for ``n`` = 0."""
    if n <= 0:
        return 0
    causes = max(1, min(causes, n))
    return causes * (math.ceil(math.log2(n)) + 1) + 1 if n > 1 else 2


_RUN = {"binary": _binary, "ddmin": _ddmin, "one_at_a_time": _one_at_a_time, "exhaustive": _exhaustive}


def search(n: int, tester: ProbeSession, strategy: str = "binary", check_ends: bool = False) -> BisectResult:
    """Run one strategy over ``n`` edits with ``tester``; the index-level core of :func:`bisect`."""
    if strategy not in _RUN:
        raise InvalidOption(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    status = NO_FLIP
    cause: list[int] = []
    confirmed = False
    try:
        if n == 0:
            raise StopIteration
        if check_ends:
            if tester.flips([]):
                status = ALREADY_PASSES
                raise StopIteration
            if not tester.flips(range(n)):
                status = NO_FLIP
                raise StopIteration
            confirmed = True
        status, cause = _RUN[strategy](n, tester)
    except StopIteration:
        pass
    except _OutOfBudget:
        status = BUDGET
    suspects = _budget_suspects(n, tester) if status == BUDGET else cause
    confirmed = confirmed or (frozenset() in tester.cache and frozenset(range(n)) in tester.cache)
    return BisectResult(status=status, strategy=strategy, cause=cause, suspects=suspects, requests=tester.requests,
                        probes=tester.probes, ends_confirmed=confirmed, reused=tester.reused)


def _budget_suspects(n: int, tester: ProbeSession) -> list[int]:
    """Edits still possibly needed: those in the smallest flipping set seen, minus none (a conservative narrowing)."""
    flipping = [s for s, v in tester.cache.items() if v]
    if not flipping:
        return list(range(n))
    smallest = min(flipping, key=len)
    return sorted(smallest)


# --- the request-level entry point -------------------------------------------------------------------------------

def _default_verdict(pass_outcomes: Collection[str]) -> Callable[[Any], tuple[str, Verdict]]:
    def verdict_of(answer: Any) -> tuple[str, Verdict]:
        if isinstance(answer, bool):
            return ("pass" if answer else "fail"), (PASS if answer else FAIL)
        outcome = str(answer)
        if outcome in pass_outcomes:
            return outcome, PASS
        return outcome, (UNCLEAR if load_taxonomy().is_transient(outcome) else FAIL)
    return verdict_of


def probe_key(spec: RequestSpec | Mapping[str, Any]) -> str:
    """What identifies a probe across runs: a hash of the request it sends (method, path, query, headers, auth,
    body, and the credential label), as the run stores it (redacted), so a stored probe and a new one of the same
    request get the same key."""
    data = dict(spec.to_dict() if isinstance(spec, RequestSpec) else spec)
    data = {k: data.get(k) for k in ("method", "path", "query", "headers", "auth", "body", "credential")}
    text = json.dumps(redact.redact_obj(data), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stored_probes(run: Run | None) -> dict[str, list[str]]:
    """The probes an earlier bisect run stored, as ``{probe_key: [outcome, …]}`` in file order (a probe sent twice,
    with repeats, has two). Only clear answers are kept: a transient one (429, 529, 5xx, transport) is sent again.

    Returns an empty dict for None or a run without probes."""
    out: dict[str, list[str]] = {}
    if run is None:
        return out
    taxonomy = load_taxonomy()
    for rec in run.of_kind("cell"):
        spec, outcome = rec.get("spec"), rec.get("outcome")
        if isinstance(spec, Mapping) and isinstance(outcome, str) and outcome and not taxonomy.is_transient(outcome):
            out.setdefault(probe_key(spec), []).append(outcome)
    return out


def bisect(failing: RequestSpec, passing: RequestSpec, probe: Callable[[RequestSpec], Any], *,
           strategy: str = "binary", budget: int | None = None, repeats: int = 0, retries_unclear: int = 1,
           pass_outcomes: Collection[str] = DEFAULT_PASS_OUTCOMES, check_ends: bool = False,
           known_outcomes: tuple[bool | None, bool | None] = (None, None), store: Any = None,
           profile: str = "bisect", diffs: Sequence[Difference] | None = None, grain: str = "field",
           items: Sequence[Any] | None = None, stored: Mapping[str, Sequence[str]] | None = None) -> BisectResult:
    """Find a 1-minimal set of differences that turns ``failing`` into a request that passes.

    ``probe(spec)`` sends one request and answers ``True``/``False``, an outcome id (``"served_plan"``…) or an
    :class:`Observation` (then classified, and stored as a cell in ``store``, a :class:`lanelab.runs.RunWriter`).
    ``known_outcomes`` = (failing passes?, passing passes?) when both were already sent, to save requests.
    ``grain="fine"`` bisects over fine-grain differences (each beta token, system sentence and tool; see
    :func:`lanelab.wire.diff.differences`) so the cause names the element to act on. ``items`` (diagnose's
    ``Item``: a lint fix or one fine difference; see :func:`reference_for`) are searched as units instead of single
    differences, each probe applying its subset with :func:`~lanelab.walkthrough.items.apply_items`. ``stored`` (see
    :func:`stored_probes`) holds the answers of an earlier run: a probe whose request is there is answered from it
    and not sent again. :func:`bisect_to_run` does the usual setup (an HTTP probe, the run file, resuming) in one call.

    Returns a :class:`BisectResult` (``status``, ``cause``, requests spent and answers reused, every probe). Raises
    ``ValueError`` for an unknown strategy; a budget that runs out is a status (``budget_exhausted``), not an error.
    """
    if items is not None:
        from lanelab.walkthrough.items import apply_items

        units: list[Any] = list(items)
        excluded: list[Difference] = []
        labels = [item.label for item in units]

        def build(subset: frozenset[int]) -> RequestSpec:
            return apply_items(failing, [units[i] for i in sorted(subset)])
    else:
        all_diffs = list(diffs) if diffs is not None else diff_specs(failing, passing, grain=grain).rows
        excluded = [d for d in all_diffs if d.b is not MISSING and is_attestation(d.b)]
        units = [d for d in all_diffs if d not in excluded]
        labels = [d.label for d in units]

        def build(subset: frozenset[int]) -> RequestSpec:
            return apply_differences(failing, [units[i] for i in sorted(subset)], side="b")
    base_verdict = _default_verdict(pass_outcomes)
    earlier = {k: deque(v) for k, v in (stored or {}).items()}

    def keyed(spec: RequestSpec) -> str:
        probed = spec.copy()
        probed.credential = getattr(probe, "credential", None) or probed.credential
        return probe_key(probed)

    def recall(subset: frozenset[int]) -> str | None:
        queue = earlier.get(keyed(build(subset))) if earlier else None
        return queue.popleft() if queue else None

    def send(subset: frozenset[int]) -> Any:
        spec = build(subset)
        answer = probe(spec)
        if isinstance(answer, Observation):
            verdict = classify(answer)
            if store is not None:
                levels = {label: ("passing" if i in subset else "failing") for i, label in enumerate(labels)}
                store.cell(cell_id=cell_id_for(profile, levels), profile=profile, levels=levels,
                           credential=spec.credential, spec=spec.to_dict(), observation=answer.to_dict(),
                           outcome=verdict.outcome, lane=verdict.lane, rule=verdict.rule, design=BISECT_DESIGN)
            return verdict.outcome
        return answer

    known: dict[frozenset[int], bool] = {}
    if known_outcomes[0] is not None:
        known[frozenset()] = bool(known_outcomes[0])
    if known_outcomes[1] is not None:
        known[frozenset(range(len(units)))] = bool(known_outcomes[1])
    tester = ProbeSession(send, base_verdict, budget=budget, repeats=repeats, retries_unclear=retries_unclear,
                          known=known, recall=recall if earlier else None)
    result = search(len(units), tester, strategy=strategy, check_ends=check_ends)
    if items is not None:
        result.items = units
        result.differences = [d for item in units for d in item.diffs]
    else:
        result.differences = units
    result.excluded = excluded
    result.failing = failing
    return result


@dataclass(frozen=True)
class Reference:
    """What notebook 04 bisects against: a request built from the failing one, and the items between them.

    ``name`` and ``description`` say how it was built; ``spec`` is the reference request; ``items`` the units the
    search goes over (see :func:`bisect`)."""

    name: str
    description: str
    spec: RequestSpec
    items: tuple[Any, ...]


def reference_for(spec: RequestSpec) -> Reference:
    """The reference diagnose tries first, built from the client's own request ``spec`` (nothing added that the
    client did not send), and the items between the two.

    With lint triggers that have machine fixes: ``spec`` with those fixes applied, one item per trigger (the fine
    differences its fix makes), likeliest first, so a bisect names the trigger and its fix (``mcp_`` → ``mcp__``)
    rather than "remove all tools". Without: diagnose's first removal reference (the request cut down to its model,
    messages and own identification), one item per fine difference. Returns the :class:`Reference` (no items when
    nothing can be removed or fixed). Raises nothing for a well-formed spec.
    """
    from lanelab.walkthrough.items import Item, apply_items, lint_items, reference_requests
    from lanelab.walkthrough.lint import lint

    fixes = lint_items(spec, lint(spec))
    if fixes:
        ids = ", ".join(i.finding.id for i in fixes if i.finding is not None)
        return Reference("lint-fixed", f"the client's own request with lint's fixes applied ({ids})",
                         apply_items(spec, fixes), tuple(fixes))
    for name, description, ref in reference_requests(spec)[:1]:
        items = tuple(Item(d.key, (d,)) for d in differences(spec, ref, grain="fine")
                      if not (d.b is not MISSING and is_attestation(d.b)))
        return Reference(name, description, ref, items)
    return Reference("as-sent", "the request as sent (nothing to remove or fix)", spec.copy(), ())


def http_probe(base_url: str, token: str | None = None, credential: str | None = None,
               client: Any = None, on_sent: Callable[[Observation], None] | None = None
               ) -> Callable[[RequestSpec], Observation]:
    """A probe that sends each spec to ``base_url`` (the simulator, or live when allowed) and returns the Observation.

    ``credential`` is the label recorded with each probe; ``client`` an HTTP client from :mod:`lanelab.http` to reuse;
    ``on_sent`` is told each answer as it comes (a command's progress line). Returns the probe; sending raises
    :class:`lanelab.errors.HostNotAllowed` for a host off the allow-list.
    """
    from lanelab.wire.send import send as wire_send

    def probe(spec: RequestSpec) -> Observation:
        if credential is not None:
            spec.credential = credential
        obs = wire_send(spec, base_url, token=token, client=client)
        if on_sent is not None:
            on_sent(obs)
        return obs
    probe.credential = credential  # type: ignore[attr-defined]  # the label a stored probe carries (probe_key)
    return probe


def bisect_run_id(failing_label: str, passing_label: str, host: str, strategy: str = "binary",
                  question: str = "") -> str:
    """A file-safe run id for one bisect question (the two requests, where they went, the strategy, and
    ``question``: :func:`_question` of the requests themselves, so a changed request gets its own run)."""
    key = hashlib.sha256(f"{failing_label}|{passing_label}|{host}|{strategy}|{question}".encode()).hexdigest()[:8]
    run_id = f"bisect_{failing_label}_vs_{passing_label}_{key}".replace("/", "-").replace(" ", "-")
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in run_id)


def _refuse_references(*labels: str) -> None:
    """Raise :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` when a label names a reference-only profile or
    the capture it was made from: a first-party client's request is a reference for diffs, never a probe."""
    from lanelab.matrix import profiles as profiles_mod

    known = set(profiles_mod.list_profiles())
    for label in labels:
        if label in known:
            profiles_mod.ensure_sendable(label)
        elif label and Path(label).is_file():
            reference = profiles_mod.reference_for_capture(label)
            if reference is not None:
                raise profiles_mod.reference_refusal(f"{Path(label).name} (the capture of {reference})")


def _question(failing: RequestSpec, passing: RequestSpec, where: str, options: Mapping[str, Any],
              items: Sequence[Any] | None) -> str:
    """What makes two bisects the same question (so the stored answers of one serve the other): both requests,
    where they are sent (the simulator's policy, or the host), and the options that change the search."""
    units = [item.label for item in items] if items is not None else None
    data = {"failing": probe_key(failing), "passing": probe_key(passing), "where": where, "units": units,
            **{k: options.get(k) for k in ("strategy", "grain", "repeats", "retries_unclear", "check_ends")},
            "pass": sorted(options.get("pass_outcomes") or DEFAULT_PASS_OUTCOMES)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _free_path(runs_dir: Path, run_id: str, question: str) -> tuple[Path, str | None]:
    """The run file for ``run_id``: the same file when it is free or holds this question (a resume); else the
    first ``<run_id>-N`` that is, with a note saying why. Nothing is ever deleted or replaced."""
    def same_question(path: Path) -> bool:
        try:
            header = load_run(path).header
        except UserError:  # not a run the kit can read: left alone too
            return False
        return header.get("design") == BISECT_DESIGN and header.get("question") == question

    path = free_run_path(runs_dir, run_id, same_question)
    if path.stem == run_id:
        return path, None
    return path, (f"run id {run_id!r} already holds another experiment; it is left as it is and this bisect is "
                  f"stored as {path.stem!r}")


def _check_options(options: Mapping[str, Any]) -> None:
    """Refuse an option :func:`bisect` does not take, an unknown strategy, grain or passing outcome, or a budget that
    is not a number of requests (1 or more), with :class:`InvalidOption`."""
    from lanelab.matrix.budget import as_budget

    known = sorted(set(inspect.signature(bisect).parameters) - {"failing", "passing", "probe", "store", "profile",
                                                                 "stored"})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidOption(f"No bisect option named {', '.join(unknown)}.", f"The options are: {', '.join(known)}.")
    if options.get("strategy", "binary") not in STRATEGIES:
        raise InvalidOption(f"Unknown strategy {options['strategy']!r}; choose one of {', '.join(STRATEGIES)}.")
    if options.get("grain", "field") not in GRAINS:
        raise InvalidOption(f"Unknown grain {options['grain']!r}; choose one of {', '.join(GRAINS)}.")
    known_outcomes = [c.id for c in load_taxonomy().classes]
    strange = sorted(set(options.get("pass_outcomes") or ()) - set(known_outcomes))
    if strange:
        raise InvalidOption(f"Unknown outcome(s) to count as passing: {', '.join(strange)}.",
                            f"The outcomes are: {', '.join(known_outcomes)} (data/outcomes.toml).")
    as_budget(options.get("budget"))


def bisect_to_run(failing: RequestSpec, passing: RequestSpec, base_url: str, token: str | None, *,
                  settings: Settings | None = None, failing_label: str = "failing", passing_label: str = "passing",
                  credential: str | None = None, run_id: str | None = None, host: str | None = None,
                  policy: str | None = None, confirmed: bool = False,
                  on_sent: Callable[[Observation], None] | None = None, **options: Any) -> BisectResult:
    """Bisect between two requests by sending probes to ``base_url``, every probe stored as a cell of a run.

    The run file is ``<runs_dir>/<run_id>.jsonl`` (``run_id`` None: :func:`bisect_run_id` of the labels, ``host``,
    the strategy and the question). Run again on the same question, it resumes like the matrix: the probes stored
    there are read back and their verdicts reused, so no probe is sent twice (``result.reused`` counts them). A file
    of that id holding another question (other requests, another simulator policy or host, other options) is left
    as it is: this bisect goes to the next free ``<run_id>-N`` and ``result.notes`` says so. ``host`` and ``policy``
    go into the run header (``host`` defaults to ``base_url``; in sim mode the question uses the simulator's policy,
    so a new simulator of the same policy resumes); ``credential`` names the label each probe is recorded with;
    ``on_sent`` is told each answer as it comes (see :func:`http_probe`).
    ``options`` go to :func:`bisect` (``strategy``, ``budget``, ``repeats``, ``pass_outcomes``, ``check_ends``,
    ``grain``, ``items``…). ``token`` is registered as a secret first.

    In live mode the probes spend the user's plan: ``confirmed`` must say the user confirmed them
    (:mod:`lanelab.live`). Requests named by a reference-only profile (or its capture) are never probed.

    Returns the :class:`BisectResult`, with ``path`` set to the run file. Raises
    :class:`lanelab.errors.InputError` for an unsafe ``run_id``, :class:`lanelab.matrix.errors.InvalidOption` (an
    ``InputError``) for an option :func:`bisect` does not take, an unknown strategy or grain, or a budget below 1,
    :class:`lanelab.errors.HostNotAllowed` when ``base_url`` is off the allow-list,
    :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a reference-only label,
    :class:`lanelab.runs.RunLocked` when another process is writing that run, and
    :class:`lanelab.live.NotConfirmed` in live mode without ``confirmed`` (all before anything is sent).
    """
    _check_options(options)  # before any file or request
    settings = settings or Settings.from_env()
    _refuse_references(failing_label, passing_label)
    if settings.mode == "live" and not confirmed:
        from lanelab.live import NotConfirmed

        raise NotConfirmed("Live bisect probes need a confirmation; nothing was sent.",
                           "Confirm first: --yes (CLI), the confirm button or CONFIRM_LIVE = True (notebook).")
    if token is not None:
        redact.register_secret(token)
    host = host or base_url
    if settings.mode == "sim" and policy is None:
        from lanelab.matrix.sim_client import sim_policy

        policy = sim_policy(base_url)
    where = f"sim:{policy}" if settings.mode == "sim" and policy else str(host)
    question = _question(failing, passing, where, options, options.get("items"))
    run_id = run_id or bisect_run_id(failing_label, passing_label, host, options.get("strategy", "binary"), question)
    path, moved = _free_path(settings.runs_dir, run_id, question)
    writer = RunWriter(path, make_header(path.stem, mode=settings.mode, host=host, policy=policy,
                                         profile=failing_label, design=BISECT_DESIGN, factors=[],
                                         credentials=[credential] if credential else [], passing=passing_label,
                                         question=question))
    try:
        earlier = stored_probes(writer.resumed)
        if earlier:
            writer.note(event="resumed", stored=sum(len(v) for v in earlier.values()))
        with lanelab_http.client(base_url, timeout=30) as client:
            result = bisect(failing, passing, http_probe(base_url, token, credential, client, on_sent), store=writer,
                            profile=failing_label, stored=earlier, **options)
    finally:
        writer.close()
    result.path = writer.path
    if moved:
        result.notes.append(moved)
    return result
