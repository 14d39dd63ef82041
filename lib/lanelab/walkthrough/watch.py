"""Watch a client's own traffic: one verdict line per exchange, a tally, and an optional fail-closed plan-only guard.

``watch`` is the capture proxy (:mod:`lanelab.walkthrough.capture`, forwarding unchanged) with a reader on each
completed exchange: time, method, path, status, outcome class, billing lane, representative claim and plan
utilization (the unified headers' 5-hour and 7-day windows). It costs nothing beyond what the client sends anyway.

``plan_only``: after the first response that says a request was billed to extra usage (lane ``extra_usage``, or an
outcome of :data:`EXTRA_USAGE_OUTCOMES`; included overage counts too, since whether it is extra usage is not
settled), the proxy answers every further request itself with an Anthropic-shaped error whose type
(:data:`GUARD_ERROR_TYPE`) and message say it is lanelab's guard, and forwards nothing more until it is restarted.
The guard never disguises anything as the server's answer; it only stops spending.

Running the client (:func:`client_plan`, :func:`run_client`): the base URL goes in ``ANTHROPIC_BASE_URL``; in sim
mode a fresh simulator token goes in the variables the known clients read. Clients whose request shape depends on
the host name (Hermes shapes OAuth requests only for ``api.anthropic.com``, references/hermes.md §7) or that ignore
``ANTHROPIC_BASE_URL`` (Pi, OpenClaw: references/clients-2026-11.md §3, §4) run in a private network namespace where
the API's host names resolve to the proxy, when this machine allows it (root); otherwise :func:`client_plan` says
exactly what to configure. The kit never writes another client's configuration or credential files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lanelab import redact
from lanelab.config import DEFAULT_POLICY, Settings, is_loopback
from lanelab.errors import InputError
from lanelab.walkthrough.capture import CaptureHooks, CaptureProxy, check_upstream, running_capture
from lanelab.wire.classify import classify
from lanelab.wire.spec import Observation
from lanelab.wire.unified import LANE_EXTRA, LANE_INCLUDED, parse_unified

if TYPE_CHECKING:
    import socket

    import pandas as pd

    from lanelab.serve import TLS

__all__ = ["EXTRA_USAGE_OUTCOMES", "GUARD_ERROR_TYPE", "GUARD_OUTCOME", "KNOWN_CLIENTS", "ClientPlan", "Line",
           "PlanOnlyGuard", "Watch", "client_plan", "line_of", "run_client", "running_watch"]

#: Outcome classes that say a request went to extra usage (billed, or refused there for want of credit).
EXTRA_USAGE_OUTCOMES = frozenset({"served_extra", "served_included_overage", "extra_usage_exhausted",
                                  "third_party_extra_usage"})
#: Lanes that trip the guard (included overage: not settled whether it is extra usage, so fail closed).
EXTRA_LANES = frozenset({LANE_EXTRA, LANE_INCLUDED})
#: The error type of the guard's own answers: no server uses it, so no client can mistake it for the API's.
GUARD_ERROR_TYPE = "lanelab_plan_only_guard"
#: The outcome a watch line shows for a request the guard answered.
GUARD_OUTCOME = "stopped_by_guard"
#: Environment variables the known clients read a subscription token from (sim mode fills them with a sim token).
TOKEN_VARIABLES = ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_OAUTH_TOKEN", "ANTHROPIC_TOKEN")


# ---------------------------------------------------------------------------------------------------- one line each

@dataclass(frozen=True)
class Line:
    """One completed exchange, read: what went out and which lane it landed in."""

    seq: int
    time: str
    method: str
    path: str
    status: int | None
    outcome: str
    lane: str
    claim: str | None
    five_hour: float | None
    seven_day: float | None
    request_id: str | None = None
    guard: bool = False

    def text(self) -> str:
        """The line ``watch`` prints."""
        def pct(x: float | None) -> str:
            return "-" if x is None else f"{x * 100:.0f}%"

        return (f"{self.time}  {self.method} {self.path}  {self.status if self.status is not None else '---'}  "
                f"{self.outcome}  lane={self.lane}  claim={self.claim or '-'}  "
                f"plan 5h={pct(self.five_hour)} 7d={pct(self.seven_day)}")


def line_of(record: Mapping[str, Any]) -> Line:
    """The :class:`Line` of one capture exchange record (see :mod:`lanelab.walkthrough.capture`); raises nothing
    for a record the proxy wrote."""
    req, resp = record.get("request") or {}, record.get("response") or {}
    started = str(record.get("started_at") or "")
    try:
        when = datetime.fromisoformat(started).astimezone().strftime("%H:%M:%S")
    except ValueError:
        when = started[11:19]
    path = str(req.get("path", "")) + (f"?{req['query']}" if req.get("query") else "")
    obs = Observation.from_dict(resp.get("observation") or {})
    if record.get("answered_by") == "proxy":
        return Line(int(record.get("seq", 0)), when, str(req.get("method", "")), path, resp.get("status"),
                    GUARD_OUTCOME, "-", None, None, None, None, guard=True)
    verdict = classify(obs)
    windows = obs.unified.windows if obs.unified.present else {}
    five, seven = windows.get("5h"), windows.get("7d")
    return Line(int(record.get("seq", 0)), when, str(req.get("method", "")), path, resp.get("status"),
                verdict.outcome, verdict.lane, obs.unified.representative_claim,
                five.utilization if five else None, seven.utilization if seven else None, obs.request_id)


# ---------------------------------------------------------------------------------------------------- the guard

class PlanOnlyGuard:
    """Fail-closed: once a response says extra usage, every later request is answered by the proxy, not forwarded.

    ``reason`` is None until it trips. It trips on the response headers already (a unified lane of extra usage)
    when they say so, and otherwise when the exchange is classified; requests already in flight then still finish.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.stopped = 0
        self._lock = threading.Lock()

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def _trip(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = redact.redact_text(reason)

    def gate(self, record: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """None to forward; once tripped, the proxy's own 400 naming the reason (see the module docstring)."""
        if self.reason is None:
            return None
        with self._lock:
            self.stopped += 1
        message = (f"lanelab watch --plan-only stopped forwarding: {self.reason} Nothing more is forwarded until "
                   "watch is restarted. This answer comes from lanelab's guard, not from the API.")
        body = json.dumps({"type": "error", "error": {"type": GUARD_ERROR_TYPE, "message": message}}).encode()
        return 400, [("content-type", "application/json"), ("x-lanelab-guard", "plan-only")], body

    def on_response(self, record: Mapping[str, Any], status: int, headers: Sequence[tuple[str, str]]) -> None:
        lane = parse_unified(dict(headers)).lane
        if lane in EXTRA_LANES:
            self._trip(f"request #{record.get('seq')} ({record['request']['method']} {record['request']['path']}) "
                       f"was billed to {lane.replace('_', ' ')} (HTTP {status}, per the unified headers).")

    def on_line(self, line: Line) -> None:
        if line.guard:
            return
        if line.lane in EXTRA_LANES or line.outcome in EXTRA_USAGE_OUTCOMES:
            self._trip(f"request #{line.seq} ({line.method} {line.path}) went to extra usage "
                       f"({line.outcome}, lane {line.lane}, HTTP {line.status}).")


# ---------------------------------------------------------------------------------------------------- the watch

@dataclass
class Watch:
    """A running watch: the proxy, its lines so far, the guard (when ``plan_only``) and where it records.

    ``to_frame()`` is one row per exchange; ``tally()`` counts by outcome and lane; ``live_table()`` is a widget
    that refreshes as lines arrive (for a notebook).
    """

    proxy: CaptureProxy | None = None
    guard: PlanOnlyGuard | None = None
    upstream: str = ""
    where: str = ""
    lines: list[Line] = field(default_factory=list)
    listeners: list[Callable[[Line], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def base_url(self) -> str:
        return self.proxy.base_url if self.proxy else ""

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` exchanges have been read (a reply can reach the client a moment before its record
        is written); True when they have, False after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.lines) >= count:
                    return True
            time.sleep(0.01)
        return len(self.lines) >= count

    def _on_record(self, record: dict[str, Any]) -> None:
        try:
            line = line_of(record)
        except Exception as exc:  # noqa: BLE001 - a watcher never breaks the proxy; the record is on disk anyway
            line = Line(int(record.get("seq", 0)), "", "?", "?", None, f"unreadable ({type(exc).__name__})", "-",
                        None, None, None)
        if self.guard is not None:
            self.guard.on_line(line)
        with self._lock:
            self.lines.append(line)
            listeners = list(self.listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):
                listener(line)

    def hooks(self) -> CaptureHooks:
        """The capture hooks that feed this watch (and its guard)."""
        return CaptureHooks(gate=self.guard.gate if self.guard else None,
                            on_response=self.guard.on_response if self.guard else None, on_record=self._on_record)

    def to_frame(self) -> pd.DataFrame:
        """One row per exchange: seq, time, method, path, status, outcome, lane, claim, and the percent of the 5-hour
        and 7-day windows used (as the report and the live line give them)."""
        import pandas as pd

        with self._lock:
            rows = [{"seq": x.seq, "time": x.time, "method": x.method, "path": x.path, "status": x.status,
                     "outcome": x.outcome, "lane": x.lane, "claim": x.claim or "",
                     "5h used %": None if x.five_hour is None else round(100 * x.five_hour, 2),
                     "7d used %": None if x.seven_day is None else round(100 * x.seven_day, 2)} for x in self.lines]
        return pd.DataFrame(rows, columns=["seq", "time", "method", "path", "status", "outcome", "lane", "claim",
                                           "5h used %", "7d used %"])

    def tally(self) -> pd.DataFrame:
        """Exchanges counted by outcome and lane (most frequent first)."""
        import pandas as pd

        with self._lock:
            counts = Counter((x.outcome, x.lane) for x in self.lines)
        rows = [{"outcome": o, "lane": ln, "exchanges": n} for (o, ln), n in counts.most_common()]
        return pd.DataFrame(rows, columns=["outcome", "lane", "exchanges"])

    def tally_text(self) -> str:
        """The tally ``watch`` prints on Ctrl-C, with the guard's state."""
        tally = self.tally()
        from lanelab.findings.frame import outcome_label

        lines = [f"tally: {len(self.lines)} exchange(s)"]  # each outcome id with its words (data/outcomes.toml)
        lines += [f"  {r.outcome} / lane {r.lane}: {r.exchanges}  ({outcome_label(r.outcome)})"
                  for r in tally.itertuples()]
        if self.guard is not None:
            lines.append(f"plan-only guard: tripped: {self.guard.reason} ({self.guard.stopped} request(s) answered by "
                         "the guard)" if self.guard.tripped else "plan-only guard: not tripped")
        return redact.redact_text("\n".join(lines))

    def live_table(self) -> Any:
        """A widget showing :meth:`to_frame` that refreshes on every exchange (ipywidgets ``HTML``)."""
        import ipywidgets

        widget = ipywidgets.HTML()

        def refresh(_line: Line | None = None) -> None:
            head = f"<p>watching {self.where}: {len(self.lines)} exchange(s)"
            if self.guard is not None and self.guard.tripped:
                head += f"; <b>plan-only guard tripped</b>: {self.guard.reason}"
            widget.value = redact.redact_text(head + "</p>" + self.to_frame().to_html(index=False))

        refresh()
        with self._lock:
            self.listeners.append(refresh)
        return widget

    def _repr_html_(self) -> str:
        return redact.redact_text(f"<p>watch at {self.base_url} → {self.where}: {len(self.lines)} exchange(s)</p>"
                                  + self.to_frame().to_html(index=False))


@contextlib.contextmanager
def running_watch(upstream: str | None = None, *, out: str | Path | None = None, port: int = 0,
                  plan_only: bool = False, settings: Settings | None = None, policy: str = DEFAULT_POLICY,
                  account: dict[str, Any] | None = None, tls: TLS | None = None, sock: socket.socket | None = None,
                  on_line: Callable[[Line], None] | None = None, where: str | None = None) -> Iterator[Watch]:
    """Run a watch for the ``with`` block: the capture proxy on 127.0.0.1, a line per exchange.

    ``upstream`` None starts an embedded simulator (``policy``, ``account``) for the watch; a live upstream needs
    the opt-in (:func:`lanelab.live.require_live_opt_in`). ``out`` is the capture file (default
    LANELAB_OUT/captures/watch-<time>.jsonl). ``tls`` and ``sock`` serve under a real host name from a namespace's
    socket (see :func:`run_client`). ``on_line(line)`` runs for each exchange; ``where`` describes the upstream.

    Yields a :class:`Watch`. Raises :class:`lanelab.walkthrough.capture.CaptureRefused` for an upstream off the
    allow-list, :class:`lanelab.errors.LiveNotOptedIn` for a live one without the opt-in, and
    :class:`lanelab.serve.ServerStartError` when the proxy cannot start.
    """
    import dataclasses

    from lanelab.live import require_live_opt_in

    settings = settings or Settings.from_env()
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    out_path = Path(out) if out is not None else settings.out / "captures" / f"watch-{stamp}.jsonl"
    with contextlib.ExitStack() as stack:
        if upstream is None:
            from lanelab.sim.server import running_simulator

            sim = stack.enter_context(running_simulator(policy=policy, account=account))
            upstream, where = sim.base_url, where or f"the simulator (policy {policy}) at {sim.base_url}"
        else:
            host = urlsplit(upstream).hostname or ""
            if not is_loopback(host):
                require_live_opt_in(dataclasses.replace(settings, mode="live"),
                                    f"Watching in front of {host} forwards your client's real requests")
            where = where or f"{'the live API' if not is_loopback(host) else 'the server'} at {upstream.rstrip('/')}"
        upstream = check_upstream(upstream, settings)
        watch = Watch(guard=PlanOnlyGuard() if plan_only else None, upstream=upstream, where=where)
        if on_line is not None:
            watch.listeners.append(on_line)
        watch.proxy = stack.enter_context(running_capture(upstream, out_path, port=port, settings=settings, tls=tls,
                                                          hooks=watch.hooks(), sock=sock))
        yield watch


# ---------------------------------------------------------------------------------------------------- the client

#: The clients the kit knows by command name: how each finds its base URL (references/clients-2026-11.md §3-§5,
#: references/hermes.md §7).
KNOWN_CLIENTS = {"hermes": "hermes", "pi": "pi", "openclaw": "openclaw", "claude": "claude"}
#: Clients whose request shape or base URL needs the real host name (run in a namespace when possible).
NEEDS_HOST = frozenset({"hermes", "pi", "openclaw"})


@dataclass
class ClientPlan:
    """How to run one client in front of the watch: which client, its environment, whether in a namespace, and
    what the user must configure by hand (the kit never writes another client's files)."""

    client: str
    env: dict[str, str | None]
    namespace: bool
    instructions: list[str] = field(default_factory=list)
    namespace_reason: str = ""


def _client_of(argv: Sequence[str]) -> str:
    for word in argv[:3]:
        name = Path(word).name.lower()
        if name in KNOWN_CLIENTS:
            return KNOWN_CLIENTS[name]
    return "sdk"


def client_plan(argv: Sequence[str], base_url: str, *, namespace: str = "auto", sim_token: str | None = None,
                namespace_ok: tuple[bool, str] | None = None) -> ClientPlan:
    """How to run ``argv`` against the proxy at ``base_url`` (see the module docstring).

    ``namespace`` is ``auto`` (for clients that need the real host name, when namespaces can be made), ``always``
    or ``never``. ``sim_token`` (sim mode) goes into :data:`TOKEN_VARIABLES`. Returns a :class:`ClientPlan`; raises
    :class:`~lanelab.errors.InputError` for an empty command or an unknown ``namespace`` choice.
    """
    from lanelab.walkthrough import namespace as ns

    if not argv:
        raise InputError("No client command after --.", "Example: python -m lanelab watch -- hermes chat -q ping")
    if namespace not in ("auto", "always", "never"):
        raise InputError(f"--namespace {namespace!r} is not auto, always or never.")
    client = _client_of(argv)
    ok, why = namespace_ok if namespace_ok is not None else ns.can_use_namespaces()
    use_ns = ok and (namespace == "always" or (namespace == "auto" and client in NEEDS_HOST))
    env: dict[str, str | None] = {}
    if sim_token is not None:
        env.update({name: sim_token for name in TOKEN_VARIABLES})
    port = urlsplit(base_url).port
    notes: list[str] = []
    if use_ns:
        env["ANTHROPIC_BASE_URL"] = None  # the client's default, https://api.anthropic.com, is the proxy there
        if client == "openclaw":
            notes.append("OpenClaw's SSRF guard refuses api.anthropic.com on loopback: set "
                         "models.providers.anthropic.request.allowPrivateNetwork to true in its config "
                         "(references/clients-2026-11.md §4).")
        return ClientPlan(client, env, True, notes)
    env["ANTHROPIC_BASE_URL"] = base_url
    missing = "" if ok else f" (no private network namespace here: {why})"
    if client == "hermes":
        notes.append(f"Hermes shapes its OAuth request only when its base URL is on api.anthropic.com "
                     f"(references/hermes.md §7){missing}. Add the line '127.0.0.1 api.anthropic.com' to /etc/hosts "
                     f"and set 'model.base_url: http://api.anthropic.com:{port}' in Hermes' config.yaml "
                     "(~/.hermes/config.yaml or $HERMES_HOME/config.yaml); remove the hosts line afterwards, since it "
                     "sends every program's API traffic to this proxy. With a plain loopback base URL Hermes sends a "
                     "different request (an API-key shape).")
    elif client == "pi":
        notes.append(f"Pi ignores ANTHROPIC_BASE_URL{missing}: put "
                     f"{{\"providers\": {{\"anthropic\": {{\"baseUrl\": \"{base_url}\"}}}}}} in "
                     "$PI_CODING_AGENT_DIR/models.json (default ~/.pi/agent/models.json) "
                     "(references/clients-2026-11.md §3).")
    elif client == "openclaw":
        notes.append(f"OpenClaw ignores ANTHROPIC_BASE_URL{missing}: set models.providers.anthropic.baseUrl to "
                     f"{base_url} in the config you pass with --config; with a loopback base URL it drops anthropic-beta "
                     "and service_tier, so the request seen here differs from its real one "
                     "(references/clients-2026-11.md §4).")
    return ClientPlan(client, env, False, notes, "" if ok else why)


def _environment(changes: Mapping[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_client(argv: Sequence[str], watch_factory: Callable[..., Any], *, namespace: str = "auto",
               sim_token: str | None = None, announce: Callable[[str], None] = print,
               say: Callable[[str], None] = print) -> int:
    """Run the client ``argv`` in front of a watch made by ``watch_factory(**kw)`` (:func:`running_watch` with its
    other arguments bound): the base URL is announced first, what to configure by hand is said (``say``), and the
    client's exit status is returned (130 after Ctrl-C).

    In a namespace (see :func:`client_plan`) a test CA and a certificate for the API host names are made for the
    run, the proxy serves https on the namespace's port 443, and the client trusts that CA only. Raises
    :class:`~lanelab.errors.InputError` for a command that does not exist, what :func:`running_watch` raises, and
    :class:`lanelab.walkthrough.namespace.NamespaceUnavailable` when the namespace cannot be set up.
    """
    from lanelab.walkthrough import namespace as ns

    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise InputError(f"Cannot run {argv[0]!r}: no such command.", "Check the command after --.")
    decided = client_plan(argv, "http://127.0.0.1", namespace=namespace, sim_token=sim_token)
    if not decided.namespace:
        with watch_factory() as watch:
            announce(watch.base_url)
            plan = client_plan(argv, watch.base_url, namespace="never", sim_token=sim_token)
            for note in plan.instructions:
                say(note)
            process = subprocess.Popen(list(argv), env=_environment(plan.env))
            return _wait(process)
    with ns.test_ca() as ca:
        announce(ns.LIVE_API_BASE)
        say(f"running {argv[0]} in a private network namespace where {ns.API_HOST} is this proxy (test CA trusted "
            "for that run only)")
        for note in decided.instructions:
            say(note)
        env = {**decided.env, **ns.trust_env(ca.ca_pem, kit=False)}
        with ns.start(list(argv), listen=(443,), env=env) as started, \
                watch_factory(tls=ca.tls(), sock=started.listeners[443]):
            return _wait(started.process)


def _wait(process: subprocess.Popen[Any]) -> int:
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait()
        return 130
