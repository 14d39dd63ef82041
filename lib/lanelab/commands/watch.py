"""``python -m lanelab watch``: a verdict line per request your own client sends, and an optional plan-only guard."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lanelab.commands import HelpParagraphs
from lanelab.config import DEFAULT_POLICY, Settings, is_loopback_url

if TYPE_CHECKING:
    from lanelab.walkthrough.watch import Watch

NAME = "watch"
HELP = "put a recording proxy in front of your own client and print the billing lane of every request it sends"
DESCRIPTION = (
    "Starts the capture proxy on 127.0.0.1 and prints its base URL as the first line, then one line per exchange as "
    "it completes: time, method, path, status, outcome class, lane, representative claim, plan utilization (5-hour "
    "and 7-day). Outcome classes are the ids of data/outcomes.toml (served_plan, extra_usage_exhausted, …; "
    "stopped_by_guard is --plan-only's own answer); lane is who paid (plan, extra_usage, none; '-' when nothing was "
    "billed). Ctrl-C prints a tally by outcome and lane, each outcome in words. Every exchange is also recorded, "
    "redacted, in a capture "
    "file ('lanelab lint' and 'lanelab diagnose --capture' read it).\n\n"
    "Upstream: an embedded simulator by default (--policy, --account), or --upstream URL (the real API needs "
    "LANELAB_LIVE_OPT_IN=1).\n\n"
    "--plan-only: after the first response that says a request went to extra usage, the proxy answers every further "
    "request itself with a 400 whose error type is 'lanelab_plan_only_guard' and forwards nothing more until "
    "restarted. It only stops spending; it never dresses anything up as the server's answer.\n\n"
    "-- CMD ...: runs your client with its base URL pointed at the proxy (ANTHROPIC_BASE_URL; in sim mode a "
    "simulator token in ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_OAUTH_TOKEN and ANTHROPIC_TOKEN). "
    "Hermes, Pi and OpenClaw need the real host name or a config file: as root they run in a private network "
    "namespace where api.anthropic.com is the proxy; otherwise watch says exactly what to configure. Exits with the "
    "client's status."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpParagraphs
    parser.add_argument("--upstream", default=None, help="where to forward (default: $LANELAB_BASE_URL, else an "
                                                         "embedded simulator)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--plan-only", action="store_true",
                        help="stop forwarding after the first request that went to extra usage")
    parser.add_argument("--policy", default=None, help=f"policy of the embedded simulator (default: {DEFAULT_POLICY}; "
                                                       "not with --upstream or LANELAB_BASE_URL)")
    parser.add_argument("--account", default=None, metavar="JSON",
                        help="embedded simulator: account state to merge over the default, e.g. "
                             "'{\"extra_usage\": {\"is_enabled\": true, \"monthly_limit\": 5000}}'")
    parser.add_argument("--out", type=Path, default=None,
                        help="capture file (default: $LANELAB_OUT/captures/watch-<time>.jsonl)")
    parser.add_argument("--namespace", default="auto", choices=("auto", "always", "never"),
                        help="with -- CMD: run the client in a private network namespace (auto: Hermes, Pi and "
                             "OpenClaw, when this machine allows it)")
    parser.add_argument("client", nargs=argparse.REMAINDER, metavar="-- CMD", help="the client to run, with its arguments")


def run(args: argparse.Namespace) -> int:
    from lanelab.commands.sim import parse_account
    from lanelab.errors import InputError
    from lanelab.walkthrough.watch import run_client, running_watch

    settings = Settings.from_env()
    command = args.client[1:] if args.client[:1] == ["--"] else args.client
    if command and args.client[:1] != ["--"]:
        raise InputError(f"Unexpected argument {command[0]!r}.", "Put the client command after --, e.g. "
                                                                 "python -m lanelab watch -- hermes chat -q ping")
    if args.upstream is not None and args.account is not None:
        raise InputError("--account sets up the embedded simulator; it cannot change --upstream's account.")
    if args.policy is not None and (args.upstream or settings.base_url):  # it would be ignored: say so instead
        raise InputError("--policy sets up the embedded simulator; the server at --upstream (or LANELAB_BASE_URL) "
                         "answers under its own.", "Leave out --policy, or the upstream to watch the embedded one.")
    args.policy = args.policy or DEFAULT_POLICY
    printing = threading.Lock()

    def out(text: str) -> None:
        with printing:
            print(text, flush=True)

    def err(text: str) -> None:
        with printing:
            print(text, file=sys.stderr, flush=True)

    with contextlib.ExitStack() as stack:
        upstream = args.upstream or settings.base_url
        token = where = None
        if upstream is not None:  # not a URL, or a host a credential may not go to: one line, before anything starts
            from lanelab.walkthrough.capture import check_upstream

            upstream = check_upstream(upstream, settings)
        if upstream is None:
            from lanelab.sim.server import running_simulator

            sim = stack.enter_context(running_simulator(policy=args.policy, account=parse_account(args.account)))
            upstream, where = sim.base_url, f"the simulator (policy {args.policy}) at {sim.base_url}"
            token = sim.mint_token(source="lanelab:watch")["access_token"] if command else None
        elif command and settings.mode == "sim" and upstream.startswith("http://") and is_loopback_url(upstream):
            from lanelab.matrix.errors import RunnerError
            from lanelab.matrix.sim_client import sim_token

            with contextlib.suppress(RunnerError):  # a loopback server that is not the simulator: no token
                token = sim_token(upstream, source="lanelab:watch")
        factory = functools.partial(running_watch, upstream, out=args.out, port=args.port, plan_only=args.plan_only,
                                    settings=settings, on_line=lambda line: out(line.text()), where=where)
        if command:
            holder: dict[str, Watch] = {}

            def factory_keeping(**kw: Any) -> _Keep:
                return _Keep(factory(**kw), holder)

            status = run_client(command, factory_keeping, namespace=args.namespace, sim_token=token,
                                announce=out, say=err)
            watch = holder.get("watch")
            if watch is not None:
                out(watch.tally_text())
                if watch.proxy is not None:  # where the exchanges are, for the next step
                    err(f"recorded in {watch.proxy.out_path}; next: python -m lanelab lint "
                        f"{watch.proxy.out_path} (or diagnose --capture it)")
            return status
        watch = stack.enter_context(factory())
        out(watch.base_url)
        recording = watch.proxy.out_path if watch.proxy is not None else "(nowhere)"
        err(f"forwarding to {watch.where}; recording to {recording}. Ctrl-C prints the tally and stops.")
        from lanelab.serve import wait_for_stop

        wait_for_stop()
        out(watch.tally_text())
    raise KeyboardInterrupt  # stopped by Ctrl-C or SIGTERM, the tally printed: the CLI's one line, exit 130


class _Keep(contextlib.AbstractContextManager["Watch"]):
    """Wraps a running_watch context and keeps the Watch it yields (for the tally after the client exits)."""

    def __init__(self, cm: contextlib.AbstractContextManager[Watch], holder: dict[str, Watch]):
        self.cm, self.holder = cm, holder

    def __enter__(self) -> Watch:
        self.holder["watch"] = self.cm.__enter__()
        return self.holder["watch"]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool | None:
        return self.cm.__exit__(exc_type, exc, tb)
