"""Run a matrix: check where it may go, open (or resume) its run file, send what is missing, and say what happened.

Each cell is sent by :mod:`lanelab.matrix.sender` and appended to the run store before it counts as done, so an
interrupted run loses nothing and a rerun of the same run id sends only what is missing. The same code path serves
the simulator and the live API; only the base URL and the credential differ. A run refuses to start (before anything
is written or sent) without a server, in live mode without the opt-in, a budget or a confirmation, with a plan over
its budget, with a reference-only profile, or when a credential would go to a host off the allow-list or other than
its issuer's.

Sends that never reached the server are not counted as spend; after a few in a row the run stops, and the summary
names the cause and what to check (:mod:`lanelab.matrix.reach`). Usage snapshots go through the cached reader
(:func:`lanelab.auth.introspect.read_usage_cached`): at most one read before and one after, and never fatal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lanelab.auth.credential import validate_label
from lanelab.config import Settings, host_allowed
from lanelab.datafiles import pinned
from lanelab.errors import UserError
from lanelab.live import NotConfirmed, require_live_opt_in
from lanelab.matrix.budget import Budget, BudgetGuard, Spend
from lanelab.matrix.errors import InvalidOption, RunnerError, found, is_whole
from lanelab.matrix.reach import STOP_AFTER, Reachability
from lanelab.matrix.sender import PlannedCell, RetryPolicy, SendContext, Sleep, send_all
from lanelab.matrix.sim_client import sim_account, sim_policy
from lanelab.matrix.tokens import TokenFor, resolve_tokens, token_source
from lanelab.runs import (
    Run,
    RunWriter,
    completed_cells,
    derive_run_id,
    free_run_path,
    load_run,
    make_header,
    run_path,
)
from lanelab.wire.classify import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunOptions", "RunResult", "RunnerError", "run_matrix"]


@dataclass(frozen=True)
class RunOptions:
    """How a run is sent and recorded. Every field has a default a notebook can keep.

    ``settings`` None reads the environment; ``base_url`` None sends to ``settings.base_url``; ``run_id`` None derives
    one from the question (so the same question resumes). ``budget`` is required in live mode, and so is
    ``confirmed`` (the user confirmed the notice, host, credential and cost: :mod:`lanelab.live`). ``cheaper`` names
    the cheaper alternative when the plan is over its budget. ``usage_snapshots`` reads the free usage endpoint before
    and after sending (cached per credential). ``stop_after`` sends in a row that never reached the server stop the
    run (0: never stop). ``on_progress(done, total)`` is called after each cell of this call (from the sending thread;
    ``total`` counts the cells still to send, not those resumed), e.g. by a widget's progress bar. ``durable`` fsyncs
    each cell's record before its concurrency slot is freed; None (the default) does so in live mode only, where a
    cell sent again after a crash is spent twice (:mod:`lanelab.matrix.sender` says what each choice survives).
    ``sleep``, ``rng``, ``client`` and ``taxonomy`` are seams for tests.
    """

    settings: Settings | None = None
    base_url: str | None = None
    run_id: str | None = None
    budget: Budget | None = None
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: bool = True
    on_progress: Callable[[int, int], None] | None = None
    usage_snapshots: bool = False
    confirmed: bool = False
    cheaper: str = ""
    stop_after: int = STOP_AFTER
    durable: bool | None = None
    header_extra: Mapping[str, Any] = field(default_factory=dict)
    sleep: Sleep | None = None
    rng: random.Random | None = None
    client: httpx.AsyncClient | None = None
    taxonomy: Taxonomy | None = None

    def __post_init__(self) -> None:
        """Refuse an option of the wrong type or range when it is given, before anything is written or sent."""
        for name, fits, wanted in _OPTION_CHECKS:
            value = getattr(self, name)
            if not fits(value):
                raise InvalidOption(f"The run option {name} takes {wanted}; found {found(value)}.")

    def with_(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` applied. Raises :class:`InvalidOption` (a ``TypeError`` too) for a name that is
        not an option, or a value of the wrong type or range."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise InvalidOption(f"No run option named {', '.join(unknown)}.",
                                f"The options are: {', '.join(f.name for f in dataclasses.fields(self))}.")
        return dataclasses.replace(self, **changes) if changes else self


#: (option, whether a value fits, what it takes): what RunOptions checks when it is made.
_OPTION_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("settings", lambda v: v is None or isinstance(v, Settings), "a lanelab.config.Settings (or None: the environment)"),
    ("base_url", lambda v: v is None or isinstance(v, str), "a URL as text (or None)"),
    ("run_id", lambda v: v is None or isinstance(v, str), "text (or None: derived from the question)"),
    ("budget", lambda v: v is None or isinstance(v, Budget), "a Budget (plan.run takes a number of requests too)"),
    ("concurrency", lambda v: is_whole(v, 1), "a whole number of 1 or more"),
    ("stop_after", lambda v: is_whole(v, 0), "a whole number of 0 or more (0: never stop)"),
    ("progress", lambda v: isinstance(v, bool), "True or False"),
    ("usage_snapshots", lambda v: isinstance(v, bool), "True or False"),
    ("confirmed", lambda v: isinstance(v, bool), "True or False"),
    ("durable", lambda v: v is None or isinstance(v, bool), "True, False or None (live mode only)"),
    ("on_progress", lambda v: v is None or callable(v), "a function of (done, total), or None"),
    ("cheaper", lambda v: isinstance(v, str), "text"),
    ("header_extra", lambda v: isinstance(v, Mapping), "a dict"),
)


@dataclass(repr=False)
class RunResult:
    """What one call of the runner did; ``str()`` is a short report, :meth:`to_frame` the outcome counts."""

    run_id: str
    path: Path
    cells: int = 0
    sent: int = 0
    resumed: int = 0
    failed: int = 0
    not_sent: int = 0
    requests: int = 0
    outcomes: Counter = field(default_factory=Counter)
    spend: Spend | None = None
    budget_report: str | None = None
    policy: str | None = None
    header: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what loading the earlier run file dropped (a torn line)
    credential_note: str | None = None  # where the run's credential came from, when it was looked up
    unreached: int = 0  # requests that never reached the server (not counted as spend)
    reach_note: str = ""  # their cause and what to check, and whether the run stopped because of them
    stopped: str | None = None  # why the run stopped before the end of the plan
    usage_notes: list[str] = field(default_factory=list)  # cached or failed usage readings
    mode: str = "sim"

    def summary(self) -> str:
        """The report: counts, the run file, warnings, the simulator policy (sim) or host (live), the budget, what
        never reached the server and why, and cells per outcome."""
        unreached = f", {self.unreached} never reached the server" if self.unreached else ""
        lines = [(f"run {self.run_id}: {self.cells} cells, {self.sent} sent ({self.requests} "
                  f"requests{unreached}), {self.resumed} resumed, {self.failed} failed, {self.not_sent} not sent"),
                 f"  file: {self.path}"]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.policy:
            lines.append(f"  simulator policy: {self.policy}")
        elif self.mode == "live":
            lines.append(f"  live: {self.header.get('host') or 'the real API'}")
        if self.budget_report:
            lines.append(f"  budget: {self.budget_report}")
        if self.reach_note:
            lines.append(f"  network: {self.reach_note}")
        if self.stopped:
            lines.append(f"  STOPPED: {self.stopped}; the {self.not_sent} cells not sent can be sent by running "
                         "the same command again")
        lines += [f"  usage: {n}" for n in self.usage_notes]
        for outcome, n in self._by_count():
            lines.append(f"  {n:5d}  {outcome}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Cells sent by this call per outcome, most frequent first (columns ``outcome``, ``cells``)."""
        import pandas as pd

        return pd.DataFrame(self._by_count(), columns=["outcome", "cells"])

    def _by_count(self) -> list[tuple[str, int]]:
        return sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<RunResult {self.run_id}: {self.sent} sent, {self.resumed} resumed, {self.failed} failed, "
                f"{self.not_sent} not sent>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """In a notebook, a result on a cell's last line shows as its report."""
        printer.text(repr(self) if cycle else self.summary())


# --------------------------------------------------------------------------------------------------- the pieces
def _check_target(settings: Settings, options: RunOptions, labels: Iterable[str | None]) -> str:
    """The base URL to send to, once sending there is allowed; raises before anything is written or sent."""
    base_url = (options.base_url or settings.base_url or "").rstrip("/")
    if not base_url:
        raise RunnerError("No server to send to.", "Start a simulator ('python -m lanelab sim' prints its URL) and set "
                          "LANELAB_BASE_URL to that URL, or pass base_url.")
    require_live_opt_in(settings)
    if settings.mode == "live" and options.budget is None:
        raise RunnerError("A live run needs a budget.", "Pass --budget N (CLI) or budget=Budget(max_requests=N).")
    if any(label is not None for label in labels) and not host_allowed(base_url):
        raise RunnerError(f"Refusing to send a credential to {httpx.URL(base_url).host!r}.",
                          "Only loopback and Anthropic's hosts are allowed; check LANELAB_BASE_URL.")
    return base_url


@dataclass
class _Opening:
    """A run file ready to be written: its id, path and header, and the cells still to send."""

    run_id: str
    path: Path
    header: dict[str, Any]
    policy: str | None
    todo: list[PlannedCell]
    warnings: list[str]  # what loading the earlier run file dropped
    notes: list[str]  # why the run is stored under another id than the one asked for


def _open_run(cells: Sequence[PlannedCell], settings: Settings, base_url: str, options: RunOptions,
              taxonomy: Taxonomy, *, profile: str, design: str, factors: list[str], credential: str | None,
              labels: set[str | None]) -> _Opening:
    """Name the run, build its header and find what an earlier run of the same id already completed."""
    policy = None if settings.mode == "live" else sim_policy(base_url)
    asked = options.run_id or derive_run_id(profile, design, settings.mode, policy or base_url, factors, credential)
    extra = dict(options.header_extra)
    if policy is not None:  # a simulator: the account it answered under, for the report's timeline to replay
        extra.setdefault("sim_account", sim_account(base_url))
    header = make_header(asked, mode=settings.mode, host=base_url, policy=policy, profile=profile, design=design,
                         factors=factors, credentials=[lbl for lbl in labels if lbl],
                         cell_count=len(cells), **extra)
    earlier: dict[Path, Run] = {}

    def resumes(path: Path) -> bool:  # the file holds this experiment: a rerun resumes it
        try:
            earlier[path] = load_run(path)
        except UserError:  # not a run the kit can read: left as it is too
            return False
        return _experiment(earlier[path].header) == _experiment(header)

    path = free_run_path(settings.runs_dir, asked, resumes)
    notes = []
    if path.stem != asked:  # the id holds another experiment: never mixed with this one, never replaced
        header["run_id"] = path.stem
        held = earlier.get(run_path(settings.runs_dir, asked))
        what = _described(held.header) if held is not None else "a file that is not a run the kit can read"
        notes.append(f"run id {asked!r} already holds another experiment ({what}); it is left as it is and this run "
                     f"is stored as {path.stem!r}")
    previous = earlier.get(path)
    done = completed_cells(previous, transient=[c.id for c in taxonomy.classes if c.transient]) if previous else set()
    return _Opening(path.stem, path, header, policy, [c for c in cells if c.cell_id not in done],
                    [str(w) for w in previous.warnings] if previous else [], notes)


#: The header fields that make two matrix runs the same experiment: the question derive_run_id names (a plan with
#: fewer levels asks part of it: its cells are the same cells, so it resumes too).
_EXPERIMENT = ("mode", "policy", "profile", "design", "factors", "credentials")


def _experiment(header: Mapping[str, Any]) -> list[Any]:
    """What a run header says the experiment is: a rerun of the same one resumes its file. In live mode the host
    counts too (in sim mode the policy does: each simulator has a port of its own)."""
    same = [sorted(v) if isinstance(v := header.get(k), list) else v for k in _EXPERIMENT]
    return [*same, header.get("host") if header.get("mode") == "live" else None]


def _described(header: Mapping[str, Any]) -> str:
    """A run header's experiment in a few words: ``hermes-0.14.0, ofat over tools, 7 cells, sim 2026-05-25``."""
    factors = ", ".join(str(f) for f in header.get("factors") or []) or "no factor"
    where = header.get("policy") or header.get("host") or "?"
    return (f"{header.get('profile')}, {header.get('design')} over {factors}, {header.get('cell_count')} cells, "
            f"{header.get('mode')} {where}")


def _start(opening: _Opening, cells: Sequence[PlannedCell], token_for: TokenFor) -> tuple[RunWriter, RunResult]:
    """Open the run file (resuming one of the same id) and the result; note a resume and what loading dropped."""
    writer = RunWriter(opening.path, opening.header)
    todo = opening.todo
    result = RunResult(run_id=opening.run_id, path=writer.path, cells=len(cells), resumed=len(cells) - len(todo),
                       policy=opening.policy, header=writer.header, warnings=[*opening.notes, *opening.warnings],
                       credential_note=getattr(token_for, "where", None))
    if opening.warnings:  # the writer has already dropped the torn line; say so, in the run and to the user
        writer.note(event="load_warnings", warnings=opening.warnings)
    if writer.resumed and todo:
        writer.note(event="resumed", pending=len(todo), completed=result.resumed)
    return writer, result


def _refuse_references(cells: Sequence[PlannedCell]) -> None:
    """Raise :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` when a cell comes from a reference-only profile
    (a first-party client's request: never sent), before anything is written or sent."""
    from lanelab.matrix.profiles import ensure_sendable, list_profiles

    known = set(list_profiles())
    for name in sorted({c.profile for c in cells} & known):
        ensure_sendable(name)


def _usage_snapshot(writer: RunWriter, when: str, token: str, base_url: str, settings: Settings,
                    result: RunResult) -> None:
    """Record what the usage endpoint says (free: no inference), through the per-credential cache: the reading
    before may be a recent one, the one after is fresh unless the endpoint is rate limited. Never fatal."""
    from lanelab.auth.introspect import UsageCache, read_usage_cached

    try:
        read = read_usage_cached(token, base_url, UsageCache.in_home(settings.home),
                                 reuse_seconds=60.0 if when == "before" else 0.0)
        if read.ok:
            writer.append({"record": "usage", "when": when, "usage": read.body, "request_id": read.request_id,
                           "read_at": read.read_at, "cached": read.cached, **({"note": read.note} if read.note else {})})
        else:
            writer.note(event="usage_snapshot_failed", when=when, status=read.status, error=read.note or read.error)
        if read.note:
            result.usage_notes.append(f"{when}: {read.note}")
    except Exception as exc:  # noqa: BLE001 - a usage probe never fails a run
        result.usage_notes.append(f"{when}: the usage reading failed ({type(exc).__name__})")


def _send(ctx: SendContext, todo: list[PlannedCell], options: RunOptions, result: RunResult,
          snapshot_token: str | None, settings: Settings) -> None:
    """Send the missing cells between the optional usage snapshots, and copy the tally into ``result``."""
    if snapshot_token:
        _usage_snapshot(ctx.writer, "before", snapshot_token, ctx.base_url, settings, result)
    started = time.perf_counter()
    if todo:
        send_all(todo, ctx, concurrency=options.concurrency, progress=options.progress, client=options.client,
                 desc=result.run_id, on_progress=options.on_progress)
    seconds = time.perf_counter() - started
    tally = ctx.tally
    result.sent, result.failed, result.not_sent = tally.sent, tally.failed, tally.not_sent
    result.requests, result.outcomes = tally.requests, Counter(tally.outcomes)
    result.unreached, result.reach_note, result.stopped = tally.unreached, ctx.reach.summary(), ctx.reach.stopped
    if ctx.guard is not None:
        result.spend, result.budget_report = ctx.guard.spent, ctx.guard.report()
        ctx.writer.note(event="budget", budget=ctx.guard.budget.describe(), spent=ctx.guard.spent.to_dict())
    if ctx.reach.unreached:
        ctx.writer.note(event="unreached", requests=ctx.reach.unreached, causes=dict(ctx.reach.causes),
                        stopped=ctx.reach.stopped)
    if snapshot_token and not ctx.reach.stopped:  # the server was not reachable: do not try it again
        _usage_snapshot(ctx.writer, "after", snapshot_token, ctx.base_url, settings, result)
    if todo:
        ctx.writer.note(event="finished", sent=result.sent, requests=result.requests, failed=result.failed,
                        not_sent=result.not_sent, unreached=result.unreached, stopped=result.stopped,
                        seconds=round(seconds, 3))


# --------------------------------------------------------------------------------------------------- the entry point
def run_matrix(cells: Sequence[PlannedCell], options: RunOptions | None = None, *, profile: str, design: str,
               factors: Iterable[str] = (), credential: str | None = None, token: str | None = None,
               token_for: TokenFor | None = None, **overrides: Any) -> RunResult:
    """Send ``cells`` and append them to the run store (:class:`RunOptions` fields may be passed as keywords).

    ``credential`` is the label for cells whose spec names none; ``token`` (a plain token, for tests) or
    ``token_for(label)`` supplies the secret (default: :func:`token_source`). Safe to call from a notebook: the async
    work runs in a worker thread when an event loop is already running.

    Returns a :class:`RunResult` (what was sent, resumed, and what came back). Raises :class:`RunnerError` (no
    server, live without a budget, a credential bound for a foreign host), :class:`lanelab.errors.LiveNotOptedIn`,
    :class:`lanelab.errors.BudgetExceeded` (the plan exceeds the budget; nothing sent),
    :class:`lanelab.live.NotConfirmed` (live without ``confirmed``),
    :class:`lanelab.matrix.profiles.ReferenceOnlyProfile`, a credential lookup error (not found, or
    :class:`lanelab.auth.issuer.WrongIssuer`), or :class:`lanelab.errors.InputError` (an unsafe run id, or a
    credential that is no label: a token passed in its place is refused and never quoted); never after anything was
    sent.

    The run reads each data file once (:func:`lanelab.datafiles.pinned`): every cell is classified against the same
    outcome taxonomy and lane table, and a file edited during the run applies from the next run.
    """
    with pinned():  # one version of every data file for the whole run
        options = (options or RunOptions()).with_(**overrides)
        settings = options.settings or Settings.from_env()
        labels = {c.spec.credential or credential for c in cells}
        for label in labels:  # a token pasted where a label goes is refused, never quoted
            if label is not None:
                validate_label(label)
        base_url = _check_target(settings, options, labels)
        _refuse_references(cells)
        token_for = token_source(settings, base_url, credential, token=token, token_for=token_for)
        taxonomy = options.taxonomy or load_taxonomy()
        opening = _open_run(cells, settings, base_url, options, taxonomy, profile=profile, design=design,
                            factors=list(factors), credential=credential, labels=labels)
        todo = opening.todo
        guard = BudgetGuard(options.budget) if options.budget is not None else None
        if guard is not None:  # before anything is written or sent
            guard.check_plan((c.spec for c in todo), how_to_raise="raise the budget (--budget N, or budget=…)",
                             cheaper=options.cheaper)
        if settings.mode == "live" and todo and not options.confirmed:
            raise NotConfirmed(f"{len(todo)} live requests need a confirmation; nothing was sent.",
                               "Confirm first: --yes (CLI), the confirm button or CONFIRM_LIVE = True (notebook), or "
                               "confirmed=True from Python after showing plan.confirmation(...).")
        tokens = resolve_tokens((c.spec.credential or credential for c in todo), token_for)
        writer, result = _start(opening, cells, token_for)
        result.mode = settings.mode
        ctx = SendContext(base_url=base_url, writer=writer, tokens=tokens, default_credential=credential,
                          retry=options.retry, guard=guard, taxonomy=taxonomy, sleep=options.sleep or asyncio.sleep,
                          rng=options.rng or random.Random(), reach=Reachability(stop_after=options.stop_after),
                          durable=settings.mode == "live" if options.durable is None else options.durable)
        wanted = options.usage_snapshots and todo
        snapshot_token = (tokens.get(credential) or next(iter(tokens.values()), None)) if wanted else None
        _send(ctx, todo, options, result, snapshot_token, settings)
    return result
