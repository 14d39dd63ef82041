"""``python -m lanelab matrix``: send one profile's request in many variants and record where each landed."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lanelab.auth.resolve import resolve_token
from lanelab.auth.store import CredentialNotFound
from lanelab.commands import count
from lanelab.config import DEFAULT_POLICY, LIVE_API_BASE, Settings
from lanelab.errors import UserError
from lanelab.live import require_live_opt_in
from lanelab.matrix import live_guard
from lanelab.matrix.budget import Budget

if TYPE_CHECKING:
    from lanelab.matrix.plan import MatrixPlan

NAME = "matrix"
HELP = "send a profile's request in many controlled variants and record each billing lane (a run)"
DESCRIPTION = (
    "Builds the cells of a design (one factor at a time, full factorial or pairwise) from a client profile and a set "
    "of factors, sends every cell, classifies each response and appends it to LANELAB_OUT/runs/<run_id>.jsonl. "
    "Running the same command again resumes: completed cells are not sent again. Offline against the embedded "
    "simulator unless --live."
)
#: Shown as the host of a sim dry run when no LANELAB_BASE_URL is set (the real run starts its own simulator).
SIM_PLACEHOLDER = "http://127.0.0.1"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="hermes-0.14.0", help="client profile from data/profiles "
                        "(default: %(default)s)")
    parser.add_argument("--design", default="ofat", choices=["ofat", "full", "pairwise"],
                        help="ofat = one factor at a time from the profile (default), full = every combination, "
                        "pairwise = every pair of levels at least once")
    parser.add_argument("--factors", default=None, metavar="A,B,…",
                        help="factors from data/factors.toml to vary (default: all but credential)")
    parser.add_argument("--credential", default="sim-pkce", metavar="LABEL",
                        help="credential label (default: %(default)s; in sim mode minted when not saved)")
    parser.add_argument("--run-id", default=None, help="run id (default: derived from profile, design, mode, "
                        "policy, factors and credential, so the same command resumes)")
    parser.add_argument("--concurrency", type=count(1, 256), default=4, help="requests in flight (default: %(default)s)")
    parser.add_argument("--live", action="store_true", help="send to the real API (needs LANELAB_LIVE_OPT_IN=1)")
    parser.add_argument("--budget", type=count(1), default=None, metavar="N",
                        help="live: at most N inference requests, retries included (required with --live)")
    parser.add_argument("--budget-tokens", type=count(1), default=None, metavar="N",
                        help="live: at most N estimated tokens")
    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help="policy of the simulator started when LANELAB_BASE_URL is unset (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the cells and their cost; send nothing "
                        "(live: also the notice, host, budget and every request, credential masked)")
    parser.add_argument("--show-requests", action="store_true",
                        help="with --dry-run in sim mode: print every request too (always on for live dry runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--usage-snapshots", action="store_true",
                        help="read the free /api/oauth/usage endpoint before and after the run (shown in the report)")


@contextlib.contextmanager
def _server(settings: Settings, policy: str) -> Iterator[tuple[str, str | None]]:
    """The base URL to send to; in sim mode without LANELAB_BASE_URL, a simulator started for this command."""
    if settings.base_url:
        yield settings.base_url, None
        return
    from lanelab.sim.server import running_simulator
    with running_simulator(policy=policy) as sim:
        yield sim.base_url, f"started a simulator for this run at {sim.base_url} (policy {policy}); it stops on exit"


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if args.live:
        settings = dataclasses.replace(settings, mode="live", base_url=settings.base_url or LIVE_API_BASE)
    if settings.mode == "live":
        require_live_opt_in(settings, "A live run needs an explicit opt-in and a budget (--budget N)")
        if args.budget is None:
            raise UserError("A live run needs a budget; nothing was sent.",
                            "Add --budget N (the most inference requests to send, retries included).")
    return settings


def _dry_run_token(settings: Settings, default: str) -> Callable[[str | None], str | None]:
    """Look credentials up without sending anything: live needs them now; sim may mint one when the run starts."""
    cache: dict[str, str | None] = {}

    def token_for(label: str | None) -> str | None:
        label = label or default
        if label not in cache:
            try:
                cache[label] = resolve_token(label, settings)
            except CredentialNotFound:
                if settings.mode == "live":
                    raise
                cache[label] = None
        return cache[label]

    return token_for


def _print_dry_run(plan: MatrixPlan, settings: Settings, args: argparse.Namespace, budget: Budget | None) -> None:
    from tabulate import tabulate

    summary = plan.describe()
    print(tabulate(summary.rows, headers="keys"))
    print(summary)
    if plan.live:
        print(live_guard.banner(settings.base_url or LIVE_API_BASE, budget))
    if not (plan.live or args.show_requests):
        return
    planned = plan.planned()
    if plan.live:
        print(live_guard.budget_verdict((c.spec for c in planned), budget))
    base_url = settings.base_url or SIM_PLACEHOLDER
    if not settings.base_url:
        print(f"(no LANELAB_BASE_URL: the run starts its own simulator; shown here as {SIM_PLACEHOLDER})")
    print(f"Dry run: the {len(planned)} requests below would be sent (credentials masked); nothing was sent.")
    for text in live_guard.render_requests(((c.cell_id, c.spec) for c in planned), base_url,
                                           _dry_run_token(settings, args.credential)):
        print(text)


def run(args: argparse.Namespace) -> int:
    from lanelab.auth.store import CredentialStore
    from lanelab.matrix.plan import MatrixPlan

    settings = _settings(args)
    names = [f.strip() for f in args.factors.split(",") if f.strip()] if args.factors else None
    labels = [lbl for lbl in CredentialStore(settings.home).labels() if lbl != args.credential]
    plan = MatrixPlan.build(args.profile, args.design, names, settings, credential_labels=labels)
    budget = Budget(args.budget, args.budget_tokens) if (args.budget or args.budget_tokens) else None
    if args.dry_run:
        _print_dry_run(plan, settings, args, budget)
        return 0
    summary = plan.describe()
    if plan.live:
        print(live_guard.banner(settings.base_url or LIVE_API_BASE, budget))
    print(f"{args.profile} × {args.design} over {len(plan.factors)} factors: {summary}")
    with _server(settings, args.policy) as (base_url, started):
        if started:
            print(started)
        result = plan.run(credential=args.credential, budget=budget, base_url=base_url, run_id=args.run_id,
                          concurrency=args.concurrency, progress=not args.no_progress,
                          usage_snapshots=args.usage_snapshots)
    if result.credential_note:
        print(f"credential: {result.credential_note}")
    print(result.summary())
    return 0
