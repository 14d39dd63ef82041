"""Delta debugging between a request that fails and one that passes: the smallest difference that flips the verdict.

A *difference* (see :mod:`lanelab.walkthrough.diff`) is an atomic edit that moves one part of the failing request to its value in
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

Responsible use: an edit that would add a billing attestation block is never applied (the kit does not send one on
anyone's behalf); it is listed in ``result.excluded``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.config import Settings
from lanelab.matrix.designs import cell_id_for
from lanelab.runs import RunWriter, make_header, run_path
from lanelab.walkthrough.diff import MISSING, Difference, apply_differences, diff_specs, is_attestation, show
from lanelab.wire.classify import classify, load_taxonomy
from lanelab.wire.spec import Observation, RequestSpec

__all__ = ["ALREADY_PASSES", "BUDGET", "DEFAULT_PASS_OUTCOMES", "FAIL", "FOUND", "NOT_ISOLATED", "NO_FLIP",
           "PASS", "STRATEGIES", "UNCLEAR", "BisectResult", "OutOfBudget", "ProbeRecord", "ProbeSession", "SendFn",
           "Verdict", "binary_worst_case", "bisect", "bisect_run_id", "bisect_to_run", "http_probe", "search"]

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

    @property
    def found(self) -> bool:
        return self.status == FOUND

    @property
    def cause_differences(self) -> list[Difference]:
        return [self.differences[i] for i in self.cause] if self.differences else []

    def summary(self) -> str:
        """One redacted sentence: what was found (or why nothing was) and how many requests it cost."""
        labels = [d.label for d in self.cause_differences] or [f"#{i}" for i in self.cause]
        if self.status == FOUND:
            what = (f"the smallest difference that flips the verdict is {len(labels)} edit(s): {', '.join(labels)}"
                    if labels else "nothing: the failing request passed")
        elif self.status == NO_FLIP:
            what = "applying every difference did not flip the verdict (the passing request may fail now, or a flaky server)"
        elif self.status == ALREADY_PASSES:
            what = "the failing request passed unchanged: nothing to bisect"
        elif self.status == BUDGET:
            sus = [self.differences[i].label if self.differences else f"#{i}" for i in self.suspects]
            what = f"the budget ran out; the cause is among {len(sus)} difference(s): {', '.join(sus[:8])}"
        else:
            what = "no single edit flips the verdict; the cause needs several edits together"
        note = f" ({len(self.excluded)} attestation edit(s) not tried)" if self.excluded else ""
        return redact.redact_text(f"{what}; {self.requests} request(s) spent{note}.")

    def probe_frame(self) -> pd.DataFrame:
        """One row per probe: how many edits it applied, what each send answered, and the verdict."""
        rows = [{"probe": p.n, "edits applied": len(p.applied), "outcomes": ", ".join(p.outcomes),
                 "verdict": p.verdict} for p in self.probes]
        return pd.DataFrame(rows, columns=["probe", "edits applied", "outcomes", "verdict"])

    def to_frame(self) -> pd.DataFrame:
        """One row per difference in the cause: where it is, both values, and what public reports say about it."""
        rows = [{"part": d.part, "field": d.key, "failing": show(d.a), "passing": show(d.b),
                 "what reports say": " · ".join(a.note for a in d.annotations),
                 "sources": "; ".join(a.source for a in d.annotations)} for d in self.cause_differences]
        return pd.DataFrame(rows, columns=["part", "field", "failing", "passing", "what reports say", "sources"])

    def _repr_html_(self) -> str:
        import html

        return redact.redact_text(f"<p><b>bisect ({self.strategy}):</b> {html.escape(self.summary())}</p>"
                                  + self.to_frame().to_html(index=False))

    def __repr__(self) -> str:
        return f"<BisectResult {self.status} cause={self.cause} requests={self.requests}>"


Verdict = str
SendFn = Callable[[frozenset[int]], Any]


class ProbeSession:
    """Sends subsets through a probe with caching, a budget, retries of transient outcomes and majority repeats."""

    def __init__(self, send: SendFn, verdict_of: Callable[[Any], tuple[str, Verdict]], *, budget: int | None = None,
                 repeats: int = 0, retries_unclear: int = 1, known: dict[frozenset[int], bool] | None = None):
        self.send = send
        self.verdict_of = verdict_of
        self.budget = budget
        self.repeats = repeats
        self.retries_unclear = retries_unclear
        self.cache: dict[frozenset[int], bool] = dict(known or {})
        self.requests = 0
        self.probes: list[ProbeRecord] = []

    def _once(self, subset: frozenset[int], outcomes: list[str]) -> Verdict:
        verdict = UNCLEAR
        for _ in range(1 + self.retries_unclear):
            if self.budget is not None and self.requests >= self.budget:
                raise _OutOfBudget
            self.requests += 1
            outcome, verdict = self.verdict_of(self.send(subset))
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
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
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
                        probes=tester.probes, ends_confirmed=confirmed)


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


def bisect(failing: RequestSpec, passing: RequestSpec, probe: Callable[[RequestSpec], Any], *,
           strategy: str = "binary", budget: int | None = None, repeats: int = 0, retries_unclear: int = 1,
           pass_outcomes: Collection[str] = DEFAULT_PASS_OUTCOMES, check_ends: bool = False,
           known_outcomes: tuple[bool | None, bool | None] = (None, None), store: Any = None,
           profile: str = "bisect", diffs: Sequence[Difference] | None = None, grain: str = "field") -> BisectResult:
    """Find a 1-minimal set of differences that turns ``failing`` into a request that passes.

    ``probe(spec)`` sends one request and answers ``True``/``False``, an outcome id (``"served_plan"``…) or an
    :class:`Observation` (then classified, and stored as a cell in ``store``, a :class:`lanelab.runs.RunWriter`).
    ``known_outcomes`` = (failing passes?, passing passes?) when both were already sent, to save requests.
    ``grain="fine"`` bisects over fine-grain differences (each beta token, system sentence and tool; see
    :func:`lanelab.walkthrough.diff.differences`) so the cause names the element to act on.
    :func:`bisect_to_run` does the usual setup (an HTTP probe, a fresh run file) in one call.

    Returns a :class:`BisectResult` (``status``, ``cause``, requests spent, every probe). Raises ``ValueError`` for
    an unknown strategy; a budget that runs out is a status (``budget_exhausted``), not an error.
    """
    all_diffs = list(diffs) if diffs is not None else diff_specs(failing, passing, grain=grain).rows
    excluded = [d for d in all_diffs if d.b is not MISSING and is_attestation(d.b)]
    usable = [d for d in all_diffs if d not in excluded]
    base_verdict = _default_verdict(pass_outcomes)

    def send(subset: frozenset[int]) -> Any:
        chosen = [usable[i] for i in sorted(subset)]
        spec = apply_differences(failing, chosen, side="b")
        answer = probe(spec)
        if isinstance(answer, Observation):
            verdict = classify(answer)
            if store is not None:
                levels = {d.label: ("passing" if i in subset else "failing") for i, d in enumerate(usable)}
                store.cell(cell_id=cell_id_for(profile, levels), profile=profile, levels=levels,
                           credential=spec.credential, spec=spec.to_dict(), observation=answer.to_dict(),
                           outcome=verdict.outcome, lane=verdict.lane, rule=verdict.rule, design="bisect")
            return verdict.outcome
        return answer

    known: dict[frozenset[int], bool] = {}
    if known_outcomes[0] is not None:
        known[frozenset()] = bool(known_outcomes[0])
    if known_outcomes[1] is not None:
        known[frozenset(range(len(usable)))] = bool(known_outcomes[1])
    tester = ProbeSession(send, base_verdict, budget=budget, repeats=repeats, retries_unclear=retries_unclear, known=known)
    result = search(len(usable), tester, strategy=strategy, check_ends=check_ends)
    result.differences = usable
    result.excluded = excluded
    return result


def http_probe(base_url: str, token: str | None = None, credential: str | None = None,
               client: Any = None) -> Callable[[RequestSpec], Observation]:
    """A probe that sends each spec to ``base_url`` (the simulator, or live when allowed) and returns the Observation.

    ``credential`` is the label recorded with each probe; ``client`` an HTTP client from :mod:`lanelab.http` to reuse.
    Returns the probe; sending raises :class:`lanelab.errors.HostNotAllowed` for a host off the allow-list.
    """
    from lanelab.wire.spec import send as wire_send

    def probe(spec: RequestSpec) -> Observation:
        if credential is not None:
            spec.credential = credential
        return wire_send(spec, base_url, token=token, client=client)
    return probe


def bisect_run_id(failing_label: str, passing_label: str, host: str, strategy: str = "binary") -> str:
    """A file-safe run id for one bisect question (the two requests, where they went, the strategy)."""
    key = hashlib.sha256(f"{failing_label}|{passing_label}|{host}|{strategy}".encode()).hexdigest()[:8]
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


def bisect_to_run(failing: RequestSpec, passing: RequestSpec, base_url: str, token: str | None, *,
                  settings: Settings | None = None, failing_label: str = "failing", passing_label: str = "passing",
                  credential: str | None = None, run_id: str | None = None, host: str | None = None,
                  policy: str | None = None, confirmed: bool = False, **options: Any) -> BisectResult:
    """Bisect between two requests by sending probes to ``base_url``, every probe stored as a cell of a run.

    The run file is ``<runs_dir>/<run_id>.jsonl`` (``run_id`` None: :func:`bisect_run_id` of the labels, ``host``
    and the strategy); an earlier file of the same id is replaced, since a bisect is a fresh experiment, not a
    resumable matrix. ``host`` and ``policy`` go into the run header (``host`` defaults to ``base_url``);
    ``credential`` names the label each probe is recorded with. ``options`` go to :func:`bisect` (``strategy``,
    ``budget``, ``repeats``, ``pass_outcomes``, ``check_ends``…). ``token`` is registered as a secret first.

    In live mode the probes spend the user's plan: ``confirmed`` must say the user confirmed them
    (:mod:`lanelab.live`). Requests named by a reference-only profile (or its capture) are never probed.

    Returns the :class:`BisectResult`, with ``path`` set to the run file. Raises
    :class:`lanelab.errors.InputError` for an unsafe ``run_id``, ``ValueError`` for an unknown strategy,
    :class:`lanelab.errors.HostNotAllowed` when ``base_url`` is off the allow-list,
    :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a reference-only label, and
    :class:`lanelab.live.NotConfirmed` in live mode without ``confirmed`` (all before anything is sent).
    """
    settings = settings or Settings.from_env()
    _refuse_references(failing_label, passing_label)
    if settings.mode == "live" and not confirmed:
        from lanelab.live import NotConfirmed

        raise NotConfirmed("Live bisect probes need a confirmation; nothing was sent.",
                           "Confirm first: --yes (CLI), the confirm button or CONFIRM_LIVE = True (notebook).")
    if token is not None:
        redact.register_secret(token)
    host = host or base_url
    run_id = run_id or bisect_run_id(failing_label, passing_label, host, options.get("strategy", "binary"))
    path = run_path(settings.runs_dir, run_id)
    if path.exists():
        path.unlink()  # a bisect is a fresh experiment, not a resumable matrix
    writer = RunWriter(path, make_header(path.stem, mode=settings.mode, host=host, policy=policy,
                                         profile=failing_label, design="bisect", factors=[],
                                         credentials=[credential] if credential else [], passing=passing_label))
    with lanelab_http.client(base_url, timeout=30) as client:
        result = bisect(failing, passing, http_probe(base_url, token, credential, client), store=writer,
                        profile=failing_label, **options)
    result.path = writer.path
    return result
