"""The sender: planned cells out on the wire with bounded concurrency and polite retries, each record stored as it lands.

Each cell is sent once (plus retries for transient failures, as a :class:`RetryPolicy` says), classified, and
encoded as its record line (redacted, leak-checked; the body as the request carried it). A concurrency slot is held
until the cell's line is in the run file, so a kill (Ctrl-C, SIGKILL, a crash) can leave at most ``concurrency``
cells sent but unrecorded, which a resume sends again. How far "in the run file" goes depends on what a resend costs
(``SendContext.durable``):

- live mode (a resend is spent twice): the line is fsync'd before the slot is freed, through a :class:`GroupCommit`
  (one writer thread writes and fsyncs every line that waited while the previous fsync ran, so the event loop keeps
  sending meanwhile), and so survives a power cut too;
- the simulator (a resend costs nothing): the line is written at once, which survives any kill of the process; the
  run's closing note fsyncs the file. A power cut may lose the last lines, which a resume sends again for free.

A send that never reached the server (:mod:`lanelab.matrix.reach`) is given back to the budget; after a few of them
in a row the sender stops: the cells not yet sent are counted as not sent, and the reason is kept for the summary.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tqdm.auto import tqdm

from lanelab import http as lanelab_http
from lanelab.http import DEFAULT_TIMEOUT
from lanelab.matrix.budget import BudgetGuard
from lanelab.matrix.reach import Reachability
from lanelab.runs import RunWriter
from lanelab.wire.classify import Classified, Taxonomy, classify
from lanelab.wire.send import asend_request
from lanelab.wire.spec import Observation, RequestSpec, build_request

__all__ = ["NO_RETRY", "GroupCommit", "PlannedCell", "RetryPolicy", "SendContext", "Sleep", "Tally", "execute",
           "run_sync", "send_all", "send_cell", "store_cell"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


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
class Tally:
    """What the sender has done: requests (retries included; ``unreached`` of them never reached the server), cells
    stored, of which ``failed`` ended transient, cells not sent (the budget refused them, or the run stopped), and
    the outcome of every stored cell."""

    requests: int = 0
    unreached: int = 0
    sent: int = 0
    failed: int = 0
    not_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class GroupCommit:
    """Record lines on their way to disk, a group at a time: while one fsync runs on the writer thread, the lines
    that arrive wait, and the next write takes all of them (one write, one fsync). :meth:`put` returns once the
    line is on disk, so a cell keeps its concurrency slot until then; it raises what the write raised (``OSError``,
    :class:`~lanelab.errors.StateError`) for every line of that group, none of which is then on disk."""

    def __init__(self, writer: RunWriter, io: ThreadPoolExecutor | None) -> None:
        self.writer, self.io = writer, io
        self.groups = 0  #: writes (and fsyncs) done: fewer than lines when cells finish close together
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, line: bytes) -> None:
        """Append ``line`` (made by :meth:`RunWriter.cell_line`) and return once it is on disk."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiting.append((line, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await loop.run_in_executor(self.io, self.writer.append_lines, [line for line, _ in group])
            except Exception as exc:  # noqa: BLE001 - every cell of the group gets it; the next group tries again
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:  # cancelled (the run stops): so is every cell still waiting
                for _, done in (*group, *self._waiting):
                    done.cancel()
                raise
            else:
                self.groups += 1
                for _, done in group:
                    if not done.done():
                        done.set_result(None)


@dataclass
class SendContext:
    """Everything one batch of sends shares: where to, with which tokens, how to retry, the guard and the tally."""

    base_url: str
    writer: RunWriter
    tokens: Mapping[str | None, str | None]
    default_credential: str | None
    retry: RetryPolicy
    guard: BudgetGuard | None
    taxonomy: Taxonomy
    sleep: Sleep
    rng: random.Random
    tally: Tally = field(default_factory=Tally)
    io: ThreadPoolExecutor | None = None
    reach: Reachability = field(default_factory=Reachability)
    #: fsync each record before its slot is freed (live mode); False: write it, fsync at the run's end (the module
    #: docstring says why)
    durable: bool = True
    commit: GroupCommit | None = None


async def send_cell(ctx: SendContext, cell: PlannedCell, client: httpx.AsyncClient) -> dict[str, Any] | None:
    """Send one cell (with its retries) and return the record to store (its ``body_sent`` is the body's text as the
    last request carried it), or None when the budget refused it."""
    label = cell.spec.credential or ctx.default_credential
    token = ctx.tokens.get(label)
    attempts, retries = 0, []
    obs: Observation | None = None
    verdict: Classified | None = None
    body_sent: str | None = None
    while True:
        if ctx.reach.stopped or (ctx.guard is not None and not ctx.guard.reserve(cell.spec)):
            break
        attempts += 1
        ctx.tally.requests += 1
        request = build_request(cell.spec, ctx.base_url, token)
        body_sent = request.content.decode() if cell.spec.body is not None else None
        obs = await asend_request(request, client, cell.spec.path)
        if ctx.reach.record(obs):  # never reached the server: it spent nothing
            ctx.tally.unreached += 1
            if ctx.guard is not None:
                ctx.guard.give_back(cell.spec)
        verdict = classify(obs, ctx.taxonomy)
        if not ctx.taxonomy.is_transient(verdict.outcome):
            break
        wait = ctx.retry.delay(obs, attempts, ctx.rng)
        if wait is None or ctx.reach.stopped:
            break
        retries.append({"attempt": attempts, "status": obs.status, "outcome": verdict.outcome,
                        "delay_s": round(wait, 3)})
        await ctx.sleep(wait)
    if obs is None or verdict is None:  # the budget refused the first send, or the run stopped: nothing to record
        ctx.tally.not_sent += 1
        return None
    obs.attempts = attempts
    return {"cell_id": cell.cell_id, "profile": cell.profile, "levels": cell.levels, "credential": label,
            "spec": cell.spec, "observation": obs, "outcome": verdict.outcome, "lane": verdict.lane,
            "rule": verdict.rule, "retries": retries, "body_sent": body_sent}


async def store_cell(ctx: SendContext, record: dict[str, Any]) -> None:
    """Encode and leak-check one record, then return once its line is in the run file: fsync'd (with whatever other
    lines wait, by ``ctx.commit``) when ``ctx.durable``, written otherwise."""
    line = ctx.writer.cell_line(**record)
    if not ctx.durable:
        ctx.writer.append_lines([line], sync=False)
    else:
        if ctx.commit is None or ctx.commit.writer is not ctx.writer:
            ctx.commit = GroupCommit(ctx.writer, ctx.io)
        await ctx.commit.put(line)
    ctx.tally.sent += 1
    ctx.tally.outcomes[record["outcome"]] += 1
    if ctx.taxonomy.is_transient(record["outcome"]):
        ctx.tally.failed += 1


async def execute(cells: Sequence[PlannedCell], ctx: SendContext, *, concurrency: int, progress: bool,
                  client: httpx.AsyncClient | None = None, desc: str = "cells",
                  on_progress: Callable[[int, int], None] | None = None) -> None:
    """Send ``cells`` with at most ``concurrency`` requests in flight, updating a progress bar (and calling
    ``on_progress(done, total)`` after each cell).

    ``concurrency`` workers take the cells in order, one at a time: a worker is a concurrency slot, held from a
    cell's send until its record is in the run file, so a kill can leave at most ``concurrency`` cells sent but
    unrecorded (resent on resume, so spent twice in live mode). Only the workers exist as tasks, however many cells
    there are. The first error stops the other workers and is raised."""
    bar = tqdm(total=len(cells), desc=desc, unit="cell", disable=not progress, leave=True)
    todo = iter(cells)
    done = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal done
        for cell in todo:  # the workers share one iterator: each cell goes to exactly one of them
            record = await send_cell(ctx, cell, http)
            if record is not None:
                await store_cell(ctx, record)
            bar.update(1)
            done += 1
            if on_progress is not None:
                on_progress(done, len(cells))

    slots = max(1, min(concurrency, len(cells)))
    limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency))
    own = client is None
    http = client or lanelab_http.async_client(ctx.base_url, limits=limits, timeout=DEFAULT_TIMEOUT)
    workers = [asyncio.ensure_future(worker(http)) for _ in range(slots)]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        bar.close()
        if own:
            await http.aclose()


def send_all(cells: Sequence[PlannedCell], ctx: SendContext, *, concurrency: int, progress: bool,
             client: httpx.AsyncClient | None = None, desc: str = "cells",
             on_progress: Callable[[int, int], None] | None = None) -> Tally:
    """Send ``cells`` from sync code (records stored on one writer thread); returns ``ctx.tally``."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lanelab-store") as io:
        ctx.io = io
        try:
            run_sync(lambda: execute(cells, ctx, concurrency=concurrency, progress=progress, client=client,
                                     desc=desc, on_progress=on_progress))
        finally:
            ctx.io = None
    return ctx.tally


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also inside Jupyter (whose event loop is already running).

    Inside a running loop the coroutine runs on a loop of its own in a worker thread, with the caller's context (a
    run's pinned data files). An interrupt of the waiting caller (Jupyter's "Interrupt kernel", Ctrl-C) cancels it
    there, as ``asyncio.run`` does on Ctrl-C from a script: the worker stops at its next await, keeping what it has
    written, and the caller gets the ``KeyboardInterrupt`` once the worker has stopped, not after it has finished.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    worker = _Worker(make)
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lanelab-run") as pool:
        done = pool.submit(context.run, worker.run)
        try:
            return done.result()
        except KeyboardInterrupt:
            worker.cancel()
            futures_wait([done])  # (an interrupt while waiting here is the caller's to give)
            raise


class _Worker:
    """:func:`run_sync`'s coroutine on a loop of its own, and a thread-safe way to cancel it (before it starts too)."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, T]]):
        self._make = make
        self._lock = threading.Lock()
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False

    def run(self) -> Any:
        return asyncio.run(self._main())

    async def _main(self) -> Any:
        with self._lock:
            if self._cancelled:
                raise asyncio.CancelledError
            self._task = asyncio.current_task()
        return await self._make()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            task = self._task
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop has just closed: the work is over anyway
                pass
