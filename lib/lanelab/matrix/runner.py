"""Send every cell of a matrix: bounded concurrency, polite retries, a spend guard, a progress bar, resumable.

Each cell is sent once (plus retries for transient failures), classified, and appended to the run store before the
next result counts as done, so an interrupted run loses nothing and a rerun of the same run id sends only what is
missing. The same code path serves the simulator and the live API; only the base URL and the credential differ.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tqdm.auto import tqdm

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.config import Settings, host_allowed, is_loopback_url
from lanelab.errors import StateError
from lanelab.http import DEFAULT_TIMEOUT
from lanelab.live import require_live_opt_in
from lanelab.matrix.budget import Budget, BudgetGuard, Spend
from lanelab.runs import RunWriter, completed_cells, derive_run_id, load_run, make_header, run_path
from lanelab.wire.classify import Classified, Taxonomy, classify, load_taxonomy
from lanelab.wire.spec import Observation, RequestSpec, asend

T = TypeVar("T")
TokenFor = Callable[[str], str]
Sleep = Callable[[float], Awaitable[None]]


class RunnerError(StateError):
    """A matrix run cannot start as asked."""


@dataclass(frozen=True)
class PlannedCell:
    """One cell ready to send: its id, profile and levels (for the record) and its request spec."""

    cell_id: str
    profile: str
    levels: Mapping[str, str]
    spec: RequestSpec


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a transient failure again.

    A server-given ``retry-after``/``retry-after-ms`` is honoured as is; when it asks for more than ``max_delay`` the
    cell is not retried (the wait would exceed the cap). Otherwise the wait is exponential from ``base_delay`` with up
    to ``jitter`` (a fraction) added at random, capped at ``max_delay``.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25

    def delay(self, obs: Observation, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), or None for no further attempt."""
        if attempt >= self.max_attempts:
            return None
        asked = obs.retry_after
        if asked is not None:
            return max(0.0, asked) if asked <= self.max_delay else None
        backoff = self.base_delay * (2 ** (attempt - 1)) * (1 + self.jitter * rng.random())
        return min(self.max_delay, backoff)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass
class RunResult:
    """What one call of the runner did."""

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

    def summary(self) -> str:
        lines = [(f"run {self.run_id}: {self.cells} cells, {self.sent} sent ({self.requests} requests), "
                 f"{self.resumed} resumed, {self.failed} failed, {self.not_sent} not sent"),
                 f"  file: {self.path}"]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.policy:
            lines.append(f"  simulator policy: {self.policy}")
        if self.budget_report:
            lines.append(f"  budget: {self.budget_report}")
        for outcome, n in sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {n:5d}  {outcome}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------------- the async core
@dataclass
class _Context:
    base_url: str
    writer: RunWriter
    tokens: Mapping[str | None, str | None]
    default_credential: str | None
    retry: RetryPolicy
    guard: BudgetGuard | None
    taxonomy: Taxonomy
    sleep: Sleep
    rng: random.Random
    result: RunResult
    io: ThreadPoolExecutor | None = None


async def _send_cell(ctx: _Context, cell: PlannedCell, client: httpx.AsyncClient) -> dict[str, Any] | None:
    """Send one cell (with its retries) and return the record to store, or None when the budget refused it."""
    label = cell.spec.credential or ctx.default_credential
    token = ctx.tokens.get(label)
    attempts, retries = 0, []
    obs: Observation | None = None
    verdict: Classified | None = None
    while True:
        if ctx.guard is not None and not ctx.guard.reserve(cell.spec):
            break
        attempts += 1
        ctx.result.requests += 1
        obs = await asend(cell.spec, ctx.base_url, token, client=client)
        verdict = classify(obs, ctx.taxonomy)
        if not ctx.taxonomy.is_transient(verdict.outcome):
            break
        wait = ctx.retry.delay(obs, attempts, ctx.rng)
        if wait is None:
            break
        retries.append({"attempt": attempts, "status": obs.status, "outcome": verdict.outcome,
                        "delay_s": round(wait, 3)})
        await ctx.sleep(wait)
    if obs is None or verdict is None:  # the budget refused the first send: nothing to record
        ctx.result.not_sent += 1
        return None
    obs.attempts = attempts
    return {"cell_id": cell.cell_id, "profile": cell.profile, "levels": cell.levels, "credential": label,
            "spec": cell.spec, "observation": obs, "outcome": verdict.outcome, "lane": verdict.lane,
            "rule": verdict.rule, "retries": retries}


async def _store_cell(ctx: _Context, record: dict[str, Any]) -> None:
    """Encode, leak-check and fsync one record on the writer thread, so the event loop keeps sending meanwhile."""
    await asyncio.get_running_loop().run_in_executor(ctx.io, lambda: ctx.writer.cell(**record))
    ctx.result.sent += 1
    ctx.result.outcomes[record["outcome"]] += 1
    if ctx.taxonomy.is_transient(record["outcome"]):
        ctx.result.failed += 1


async def execute(cells: list[PlannedCell], ctx: _Context, *, concurrency: int, progress: bool,
                  client: httpx.AsyncClient | None = None, desc: str = "cells") -> None:
    """Send ``cells`` with at most ``concurrency`` requests in flight, updating a progress bar."""
    sem = asyncio.Semaphore(max(1, concurrency))
    bar = tqdm(total=len(cells), desc=desc, unit="cell", disable=not progress, leave=True)

    async def one(cell: PlannedCell, http: httpx.AsyncClient) -> None:
        # The slot is held until the record is on disk: a kill can then leave at most `concurrency` cells sent but
        # unrecorded (resent on resume, so spent twice in live mode). Releasing it earlier is faster, but unbounded.
        async with sem:
            record = await _send_cell(ctx, cell, http)
            if record is not None:
                await _store_cell(ctx, record)
        bar.update(1)

    limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency))
    own = client is None
    http = client or lanelab_http.async_client(ctx.base_url, limits=limits, timeout=DEFAULT_TIMEOUT)
    try:
        await asyncio.gather(*(one(c, http) for c in cells))
    finally:
        bar.close()
        if own:
            await http.aclose()


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also inside Jupyter (whose event loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lanelab-run") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


# --------------------------------------------------------------------------------------------------- helpers
def plan_cells(cells: Iterable[Any], profiles: Mapping[str, Any] | None, catalog: Mapping[str, Any],
               minimal: bool = False) -> list[PlannedCell]:
    """Design cells (``designs.Cell``) as :class:`PlannedCell` s; ``minimal`` applies the live minimal-spend
    defaults (``max_tokens`` 1, no streaming unless a factor chose otherwise; lanelab.matrix.profiles.minimal_spend)."""
    from lanelab.matrix.designs import build_spec
    from lanelab.matrix.profiles import minimal_spend

    out = []
    for cell in cells:
        spec = build_spec(cell, profiles, catalog)
        if minimal:
            spec = minimal_spend(spec, cell.levels, catalog)
        out.append(PlannedCell(cell_id=cell.cell_id, profile=cell.profile, levels=dict(cell.levels), spec=spec))
    return out


def sim_policy(base_url: str, client: httpx.Client | None = None) -> str | None:
    """The simulator's active policy name (``GET /_sim/policy``), or None when the server is not the simulator."""
    try:
        own = client or lanelab_http.client(base_url, timeout=5.0)
        try:
            r = own.get(base_url.rstrip("/") + "/_sim/policy")
        finally:
            if client is None:
                own.close()
        if r.status_code != 200:
            return None
        data = r.json()
        return str(data.get("name") or data.get("policy")) if isinstance(data, dict) else str(data)
    except (httpx.HTTPError, ValueError):
        return None


def sim_token(base_url: str, kind: str = "pkce", scopes: list[str] | None = None, source: str | None = None) -> str:
    """Mint a credential from the simulator (``POST /_sim/tokens``); registered as a secret at once."""
    if not (base_url.startswith("http://") and is_loopback_url(base_url)):
        raise RunnerError("Tokens can be minted only from the loopback simulator.",
                          "Use a saved credential (notebook 01 or 'python -m lanelab login') in live mode.")
    payload: dict[str, Any] = {"kind": kind, "source": source or f"lanelab:{kind}"}
    if scopes is not None:
        payload["scopes"] = scopes
    try:
        with lanelab_http.client(base_url, timeout=10.0) as http:
            r = http.post(base_url.rstrip("/") + "/_sim/tokens", json=payload)
        minted = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise RunnerError(f"Could not mint a token from {base_url} ({type(exc).__name__}).",
                          "Check LANELAB_BASE_URL points at a running 'python -m lanelab sim'.") from None
    if not isinstance(minted, dict) or not isinstance(minted.get("access_token"), str):
        raise RunnerError(f"The simulator refused to mint a {kind} token (HTTP {r.status_code}).",
                          "Check LANELAB_BASE_URL points at 'python -m lanelab sim'.")
    token = minted["access_token"]
    redact.register_secret(token)
    return token


def default_token_for(settings: Settings) -> TokenFor:
    """Look labels up through lanelab.auth.resolve (the kit's store, then read-only importers)."""
    def token_for(label: str) -> str:
        from lanelab.auth.resolve import resolve_token
        return resolve_token(label, settings)
    return token_for


def _sim_knows(base_url: str, token: str) -> bool:
    """Whether the simulator at ``base_url`` accepts ``token`` (a free ``GET /v1/models``)."""
    redact.register_secret(token)
    try:
        with lanelab_http.client(base_url, timeout=5.0) as http:
            r = http.get(base_url.rstrip("/") + "/v1/models",
                         headers={"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
                                  "anthropic-version": "2023-06-01"})
    except httpx.HTTPError:
        return False
    return r.status_code != 401


class TokenSource:
    """``token_for(label)`` for a run, resolved lazily (so budget and plan checks come before any credential lookup).

    Labels are looked up in the kit's store and the read-only importers; in sim mode, when nothing has the default
    label, a fresh token is minted from the simulator instead (so a notebook runs with no login step). ``where`` says
    afterwards where the default credential came from.
    """

    def __init__(self, settings: Settings, base_url: str, label: str):
        self.settings, self.base_url, self.label = settings, base_url, label
        self.where: str | None = None
        self._token: str | None = None

    def __call__(self, wanted: str) -> str:
        from lanelab.auth.resolve import resolve_token
        from lanelab.auth.store import CredentialNotFound

        if wanted != self.label:
            return resolve_token(wanted, self.settings)
        if self._token is None:
            try:
                self._token = resolve_token(self.label, self.settings)
                self.where = f"credential {self.label!r} from the kit's store"
            except CredentialNotFound:
                if self.settings.mode != "sim":
                    raise
                self.where = f"no saved credential {self.label!r}: minted a fresh pkce token from the simulator"
            else:
                if self.settings.mode == "sim" and not _sim_knows(self.base_url, self._token):
                    self._token = None
                    self.where = (f"saved credential {self.label!r} was issued by another simulator session: "
                                  "minted a fresh pkce token from this one")
            if self._token is None:
                self._token = sim_token(self.base_url, source=f"lanelab:{self.label}")
            redact.register_secret(self._token)
        return self._token


def _resolve_tokens(labels: Iterable[str | None], token_for: TokenFor | None) -> dict[str | None, str | None]:
    tokens: dict[str | None, str | None] = {}
    for label in set(labels):
        if label is None or token_for is None:
            tokens[label] = None
            continue
        value = token_for(label)
        redact.register_secret(value)
        tokens[label] = value
    return tokens


# --------------------------------------------------------------------------------------------------- a whole matrix
@dataclass
class MatrixPlan:
    """A profile × design × factors, expanded into cells: what the notebook previews and the CLI sends."""

    profile: str
    design: str
    factors: list[str]
    cells: list[Any]
    catalog: dict[str, Any]
    profiles: dict[str, Any]
    live: bool = False

    @classmethod
    def build(cls, profile: str, design: str = "ofat", factors: Iterable[str] | None = None,
              settings: Settings | None = None, credential_labels: Iterable[str] = ()) -> MatrixPlan:
        """Expand a design; ``factors`` None means every factor but ``credential`` (which needs labels)."""
        from lanelab.matrix import designs
        from lanelab.matrix import factors as factors_mod
        from lanelab.matrix import profiles as profiles_mod

        settings = settings or Settings.from_env()
        catalog = factors_mod.load_factors()
        names = [f for f in catalog if f != "credential"] if factors is None else list(factors)
        unknown = [f for f in names if f not in catalog]
        if unknown:
            raise RunnerError(f"Unknown factor(s): {', '.join(unknown)}.", f"Choose from: {', '.join(catalog)}.")
        if "credential" in names:
            catalog = factors_mod.with_credentials(catalog, credential_labels)
        profile_map = {profile: profiles_mod.load_profile(profile)}
        cells = designs.design(design, profile, catalog, names)
        return cls(profile, design, names, cells, catalog, profile_map, live=settings.mode == "live")

    @property
    def baseline_cell_id(self) -> str:
        """The first cell (for one-factor-at-a-time: every factor at its baseline)."""
        return self.cells[0].cell_id

    def describe(self) -> Any:
        """Cell count and estimated cost (``designs.DesignSummary``; renders as a table in a notebook)."""
        from lanelab.matrix.designs import describe
        return describe(self.cells, self.profiles, self.catalog, minimal=self.live)

    def planned(self) -> list[PlannedCell]:
        return plan_cells(self.cells, self.profiles, self.catalog, minimal=self.live)

    def run(self, **kwargs: Any) -> RunResult:
        """Send the plan (keyword arguments as :func:`run_matrix`)."""
        return run_matrix(self.planned(), profile=self.profile, design=self.design, factors=self.factors, **kwargs)


def _usage_snapshot(writer: RunWriter, when: str, token: str, base_url: str) -> None:
    """Record what the usage endpoint says (free: no inference); a refusal is noted, never fatal."""
    from lanelab.auth.introspect import probe_usage

    obs = probe_usage(token, base_url)
    if obs.ok and isinstance(obs.body, dict):
        writer.append({"record": "usage", "when": when, "usage": obs.body, "request_id": obs.request_id})
    else:
        writer.note(event="usage_snapshot_failed", when=when, status=obs.status,
                    error=obs.transport_error or obs.error_message)


# --------------------------------------------------------------------------------------------------- the entry point
def run_matrix(
    cells: list[PlannedCell],
    *,
    profile: str,
    design: str,
    factors: Iterable[str] = (),
    settings: Settings | None = None,
    base_url: str | None = None,
    run_id: str | None = None,
    credential: str | None = None,
    token: str | None = None,
    token_for: TokenFor | None = None,
    concurrency: int = 4,
    budget: Budget | None = None,
    retry: RetryPolicy = RetryPolicy(),
    progress: bool = True,
    sleep: Sleep | None = None,
    rng: random.Random | None = None,
    client: httpx.AsyncClient | None = None,
    taxonomy: Taxonomy | None = None,
    header_extra: Mapping[str, Any] | None = None,
    usage_snapshots: bool = False,
) -> RunResult:
    """Send ``cells`` and append them to the run store; returns what was sent, resumed and what came back.

    ``credential`` is the label for cells whose spec names none; ``token`` (a plain token, for tests) or
    ``token_for(label)`` supplies the secret (default: lanelab.auth.resolve). ``budget`` is required in live mode.
    ``usage_snapshots`` reads the free usage endpoint before and after sending, so the report can show what moved.
    Safe to call from a notebook: the async work runs in a worker thread when an event loop is already running.
    """
    settings = settings or Settings.from_env()
    base_url = (base_url or settings.base_url or "").rstrip("/")
    if not base_url:
        raise RunnerError("No server to send to.", "Set LANELAB_BASE_URL (the simulator's URL) or pass base_url.")
    live = settings.mode == "live"
    require_live_opt_in(settings)
    if live and budget is None:
        raise RunnerError("A live run needs a budget.", "Pass --budget N (CLI) or budget=Budget(max_requests=N).")
    labels = {c.spec.credential or credential for c in cells}
    if any(labels - {None}) and not host_allowed(base_url):
        raise RunnerError(f"Refusing to send a credential to {httpx.URL(base_url).host!r}.",
                          "Only loopback and Anthropic's hosts are allowed; check LANELAB_BASE_URL.")
    if token is not None:
        redact.register_secret(token)
        token_for = (lambda _label, _t=token: _t)
    elif token_for is None:
        token_for = default_token_for(settings)
    taxonomy = taxonomy or load_taxonomy()
    policy = None if live else sim_policy(base_url)
    factors = list(factors)
    run_id = run_id or derive_run_id(profile, design, settings.mode, policy or base_url, factors, credential)
    header = make_header(run_id, mode=settings.mode, host=base_url, policy=policy, profile=profile, design=design,
                         factors=factors, credentials=[lbl for lbl in labels if lbl],
                         cell_count=len(cells), **dict(header_extra or {}))
    path = run_path(settings.runs_dir, run_id)
    previous = load_run(path) if path.exists() and path.stat().st_size else None
    done = completed_cells(previous, transient=[c.id for c in taxonomy.classes if c.transient]) if previous else set()
    todo = [c for c in cells if c.cell_id not in done]
    guard = BudgetGuard(budget) if budget is not None else None
    if guard is not None:  # before anything is written or sent
        guard.check_plan((c.spec for c in todo), how_to_raise="raise the budget (--budget N, or budget=…)")
    tokens = _resolve_tokens((c.spec.credential or credential for c in todo), token_for)
    writer = RunWriter(path, header)
    result = RunResult(run_id=run_id, path=writer.path, cells=len(cells), resumed=len(cells) - len(todo),
                       policy=policy, header=writer.header,
                       warnings=[str(w) for w in previous.warnings] if previous else [])
    if result.warnings:  # the writer has already dropped the torn line; say so, in the run and to the user
        writer.note(event="load_warnings", warnings=result.warnings)
    if writer.resumed and todo:
        writer.note(event="resumed", pending=len(todo), completed=result.resumed)
    ctx = _Context(base_url=base_url, writer=writer, tokens=tokens, default_credential=credential, retry=retry,
                   guard=guard, taxonomy=taxonomy, sleep=sleep or asyncio.sleep, rng=rng or random.Random(),
                   result=result)
    started = time.perf_counter()
    snapshot_token = tokens.get(credential) or next(iter(tokens.values()), None) if usage_snapshots and todo else None
    if snapshot_token:
        _usage_snapshot(writer, "before", snapshot_token, base_url)
    if todo:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lanelab-store") as io:
            ctx.io = io
            run_sync(lambda: execute(todo, ctx, concurrency=concurrency, progress=progress, client=client,
                                     desc=run_id))
    if guard is not None:
        result.spend, result.budget_report = guard.spent, guard.report()
        writer.note(event="budget", budget=guard.budget.describe(), spent=guard.spent.to_dict())
    if snapshot_token:
        _usage_snapshot(writer, "after", snapshot_token, base_url)
    if todo:
        writer.note(event="finished", sent=result.sent, requests=result.requests, failed=result.failed,
                    not_sent=result.not_sent, seconds=round(time.perf_counter() - started, 3))
    return result
