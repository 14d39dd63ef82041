"""``python -m lanelab matrix``: send one profile's request in many variants and record where each landed."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lanelab.auth.issuer import DEFAULT_LABELS, default_label
from lanelab.commands import count, progress
from lanelab.config import DEFAULT_POLICY, LIVE_API_BASE, Settings
from lanelab.errors import InputError
from lanelab.live import confirm_cli, require_live_opt_in
from lanelab.matrix import live_guard
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET, Budget

if TYPE_CHECKING:
    from lanelab.matrix.plan import MatrixPlan

NAME = "matrix"
HELP = "send a profile's request in many controlled variants and record each billing lane (a run)"
DESCRIPTION = (
    "Builds the cells of a design (one factor at a time, full factorial or pairwise) from a client profile and a set "
    "of factors, sends every cell, classifies each response and appends it to LANELAB_OUT/runs/<run_id>.jsonl. "
    "Running the same command again resumes: completed cells are not sent again. Offline against the embedded "
    "simulator unless --live. Live mode sends a small default plan (data/live_default.toml) unless factors are "
    "named, within a default budget of " + str(DEFAULT_LIVE_BUDGET) + " requests, and asks before sending "
    "(--yes to confirm without a terminal)."
)
#: Shown as the host of a sim dry run when no LANELAB_BASE_URL is set (the real run starts its own simulator).
SIM_PLACEHOLDER = "http://127.0.0.1"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="hermes-0.14.0", metavar="NAME|FILE",
                        help="the request to vary, as diff and bisect take it: a profile name from data/profiles, a "
                        "profile file (.toml) or a capture file from 'lanelab capture' (default: %(default)s)")
    parser.add_argument("--index", type=int, default=None, metavar="N",
                        help="with a capture: which inference request (0 the first, -1 the last; default -1)")
    parser.add_argument("--design", default=None, choices=["ofat", "full", "pairwise"],
                        help="ofat = one factor at a time from the profile (default), full = every combination, "
                        "pairwise = every pair of levels at least once")
    parser.add_argument("--factors", default=None, metavar="A,B,…",
                        help="factors from data/factors.toml to vary (default: sim mode, all but credential; live "
                        "mode, the live default plan of data/live_default.toml)")
    parser.add_argument("--levels", action="append", default=None, metavar="FACTOR=L1,L2",
                        help="limit a factor to these levels (repeatable); in live mode also how to include a level "
                        "left out because it raises the cost, e.g. --levels max_tokens=128000")
    parser.add_argument("--credential", default=None, metavar="LABEL",
                        help="credential label (default: " + ", ".join(f"{lbl} in {m} mode" for m, lbl in
                                                                       DEFAULT_LABELS.items())
                        + "; in sim mode a simulator token is minted when none usable is saved)")
    parser.add_argument("--run-id", default=None, help="run id (default: derived from profile, design, mode, "
                        "policy, factors and credential, so the same command resumes)")
    parser.add_argument("--concurrency", type=count(1, 256), default=4, help="requests in flight (default: %(default)s)")
    parser.add_argument("--live", action="store_true", help="send to the real API (needs LANELAB_LIVE_OPT_IN=1)")
    parser.add_argument("--budget", type=count(1), default=None, metavar="N",
                        help="live: at most N inference requests, retries included (default: "
                        f"{DEFAULT_LIVE_BUDGET})")
    parser.add_argument("--yes", action="store_true",
                        help="live: confirm the notice, host, credential and cost without being asked (needed "
                        "when there is no terminal)")
    parser.add_argument("--budget-tokens", type=count(1), default=None, metavar="N",
                        help="live: at most N estimated tokens")
    parser.add_argument("--policy", default=None,
                        help=f"policy of the simulator started when LANELAB_BASE_URL is unset (default: {DEFAULT_POLICY}; "
                             "a simulator already running answers under its own)")
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


def _check_before_planning(args: argparse.Namespace, settings: Settings) -> None:
    """What a dry run must refuse as the run would, before anything is planned: an unsafe run id, an unknown policy
    for the simulator this command would start; and a note when ``--policy`` cannot apply (a simulator is running)."""
    from lanelab.runs import run_path

    if args.run_id is not None:
        run_path(settings.runs_dir, args.run_id)  # InputError for an id that is no safe file name
    if settings.mode != "sim" or args.policy is None:
        return
    if settings.base_url:
        print(f"note: --policy {args.policy} is not used: LANELAB_BASE_URL points at a simulator already running, "
              "which answers under its own policy (start it with that policy, or unset LANELAB_BASE_URL).", flush=True)
        return
    from lanelab.sim.server import load_policy  # (the simulator's one door)

    load_policy(args.policy)  # PolicyNotFound (one line, exit 2) for an unknown name


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if args.live:
        settings = dataclasses.replace(settings, mode="live", base_url=settings.base_url or LIVE_API_BASE)
    if settings.mode == "live":
        require_live_opt_in(settings, "A live run needs an explicit opt-in")
    return settings


def _budget(args: argparse.Namespace, live: bool) -> Budget | None:
    """``--budget``/``--budget-tokens``; in live mode the default budget when neither is given."""
    for name in ("budget", "budget_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, not {value}.")
    if args.budget or args.budget_tokens:
        return Budget(args.budget, args.budget_tokens)
    return Budget(DEFAULT_LIVE_BUDGET) if live else None


def _levels(specs: list[str] | None) -> dict[str, list[str]] | None:
    """``--levels F=L1,L2`` (repeatable) as ``{F: [L1, L2]}``; raises :class:`InputError` for a malformed one."""
    out: dict[str, list[str]] = {}
    for item in specs or []:
        name, sep, values = item.partition("=")
        chosen = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not chosen:
            raise InputError(f"--levels {item!r} is not FACTOR=LEVEL[,LEVEL…].",
                             "Example: --levels tools=none,mcp__ --levels max_tokens=128000")
        out.setdefault(name.strip(), []).extend(chosen)
    return out or None


def _dry_run_token(settings: Settings, base_url: str, default: str) -> Callable[[str | None], str | None]:
    """Look credentials up without sending anything, checked against ``base_url``: live needs them now (and refuses
    one issued elsewhere); sim mints one when the run starts when none usable is saved."""
    from lanelab.auth.issuer import WrongIssuer
    from lanelab.auth.store import CredentialNotFound
    from lanelab.matrix.tokens import TokenSource, checked_credential

    own = TokenSource(settings, base_url, default)
    cache: dict[str, str | None] = {}

    def token_for(label: str | None) -> str | None:
        label = label or default
        if label not in cache:
            if label == default:
                cache[label] = own.lookup()
            else:
                try:
                    cache[label] = checked_credential(label, settings, base_url).access_token
                except (CredentialNotFound, WrongIssuer):
                    if settings.mode == "live":
                        raise
                    cache[label] = None
        return cache[label]

    return token_for


def _print_dry_run(plan: MatrixPlan, settings: Settings, args: argparse.Namespace, budget: Budget | None,
                   credential: str) -> None:
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
                                           _dry_run_token(settings, base_url, credential)):
        print(text)


def run(args: argparse.Namespace) -> int:
    """Build the plan, show its cost; in live mode refuse a plan over the budget, show the notice, host, credential
    (masked) and cost and ask (or take ``--yes``); then send. Returns 0, or 1 when the run stopped because its
    requests did not reach the server. Every refusal is a :class:`~lanelab.errors.UserError` raised before anything
    is sent (the CLI prints it, exit 2)."""
    from lanelab.auth.store import CredentialStore
    from lanelab.matrix.from_capture import is_capture_ref, pick_request, profile_for
    from lanelab.matrix.plan import MatrixPlan

    if args.show_requests and not args.dry_run:
        raise InputError("--show-requests goes with --dry-run: it shows the requests a run would send, sending "
                         "nothing.", "Add --dry-run.")
    settings = _settings(args)
    _check_before_planning(args, settings)
    credential = args.credential or default_label(settings.mode)
    names = [f.strip() for f in args.factors.split(",") if f.strip()] if args.factors else None
    labels = [lbl for lbl in CredentialStore(settings.home).labels() if lbl != credential]
    profile = profile_for(args.profile, index=args.index)
    if is_capture_ref(args.profile):
        print(f"request: {pick_request(args.profile, args.index).describe(args.profile)}", flush=True)
    progress(f"planning {profile.name}, {args.design or 'the default design'} over {', '.join(names or ['every factor'])}: "
             "expanding the cells and their cost…")
    plan = MatrixPlan.build(profile, args.design, names, settings, credential_labels=labels,
                            levels=_levels(args.levels))
    budget = _budget(args, plan.live)
    if args.dry_run:
        _print_dry_run(plan, settings, args, budget, credential)
        return 0
    summary = plan.describe()
    print(f"{plan.profile} × {plan.design} over {len(plan.factors)} factors: {summary}", flush=True)
    if plan.live:
        confirmation = plan.confirmation(credential, budget, settings.base_url)  # refuses an over-budget plan
        if not (args.budget or args.budget_tokens):
            confirmation = dataclasses.replace(confirmation, budget=f"{confirmation.budget} (the default; "
                                               "--budget N to change)")
        confirm_cli(confirmation, args.yes)
    with _server(settings, args.policy or DEFAULT_POLICY) as (base_url, started):
        if started:
            print(started)
        result = plan.run(credential=credential, budget=budget, base_url=base_url, run_id=args.run_id,
                          concurrency=args.concurrency, progress=not args.no_progress,
                          usage_snapshots=args.usage_snapshots, confirmed=plan.live)
    if result.credential_note:
        print(f"credential: {result.credential_note}")
    print(result.summary())
    verdict = _verdict(result.path, plan)
    if verdict:
        print(f"verdict: {verdict}")
    return 1 if result.stopped else 0


def _verdict(path: Path, plan: MatrixPlan) -> str | None:
    """The one-sentence verdict of a one-factor-at-a-time run (how the baseline ended, which single changes move it
    onto the plan), as plain text; None for other designs or when the baseline has not been sent."""
    if plan.design not in ("ofat", "one_factor_at_a_time"):
        return None
    from lanelab.errors import UserError
    from lanelab.findings.frame import baseline_verdict
    from lanelab.runs import load_run

    try:
        text = baseline_verdict(load_run(path).to_frame(), plan.baseline_cell_id)
    except (UserError, LookupError, KeyError, IndexError, ValueError):
        return None
    return text.replace("**", "").replace("`", "")
