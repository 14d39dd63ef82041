"""``python -m lanelab diagnose``: which element of a client's request keeps it off the plan, in a handful of requests."""

from __future__ import annotations

import argparse

from lanelab.commands import HelpParagraphs, answers_progress
from lanelab.config import DEFAULT_POLICY

NAME = "diagnose"
HELP = "name the element of a client's request that keeps it off the plan, verified in a handful of requests"
DESCRIPTION = (
    "Sends the request as the client sent it. If it is refused or billed to extra usage, sends it with lint's fixes "
    "(the likeliest alone first); if that is billed to the plan, bisects among the lint fixes only. Otherwise it "
    "bisects at fine grain (each beta token, header, body field, system sentence and tool) against a reference built "
    "from the client's own request by removal only, never from Claude Code's. Ends with the verdict in a sentence, "
    "the remedies, and the requests and tokens spent; writes a run (design 'diagnose') and a short redacted report "
    "under LANELAB_OUT.\n\n"
    "The request is one of: --profile NAME (data/profiles; the reference-only Claude Code profile is refused), "
    "--capture FILE (a 'lanelab capture' or 'watch' file; --index picks the request), --dump FILE (a Hermes "
    "request_dump_*.json; it records no client headers).\n\n"
    "Sim mode starts a simulator with --policy unless LANELAB_BASE_URL points at one. Live mode (--live or "
    "LANELAB_MODE=live) needs LANELAB_LIVE_OPT_IN=1 and --budget N, refuses before sending anything when the worst "
    "case exceeds N, and shows the notice, host, credential (masked) and worst case, then asks before the first "
    "request (--yes without a terminal).\n\n"
    "Exit status: 0 a verdict (billed to the plan, or the cause named); 1 no conclusive verdict (no reference reached "
    "the plan, the budget ran out, or no clear answer); 2 bad input."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpParagraphs
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", metavar="NAME", help="a client profile from data/profiles (e.g. hermes-0.14.0)")
    source.add_argument("--capture", metavar="FILE", help="a capture file (JSON Lines from capture or watch)")
    source.add_argument("--dump", metavar="FILE", help="a Hermes request_dump_*.json")
    parser.add_argument("--index", type=int, default=None,
                        help="with --capture: which inference request (0 the first, -1 the last; default -1)")
    parser.add_argument("--credential", default=None, metavar="LABEL[,LABEL2]",
                        help="credential label(s); with two, the request as sent also goes once with the second "
                             "(default: sim-pkce, live-pkce in live mode)")
    parser.add_argument("--live", action="store_true", help="send to the real API (needs LANELAB_LIVE_OPT_IN=1)")
    parser.add_argument("--budget", type=int, default=None, metavar="N",
                        help="the most requests to send, retries included (required with --live)")
    parser.add_argument("--yes", action="store_true",
                        help="live: confirm the notice, host, credential and cost without being asked")
    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help="policy of the simulator started when LANELAB_BASE_URL is unset (default: %(default)s)")
    parser.add_argument("--account", default=None, metavar="JSON",
                        help="sim: account state to merge over the default (as for 'lanelab sim --account')")
    parser.add_argument("--no-lint", action="store_true", help="skip the lint stage: bisect at fine grain at once")
    parser.add_argument("--no-report", action="store_true", help="write the run only, no Markdown report")
    parser.add_argument("--dry-run", action="store_true",
                        help="send nothing: print lint's findings, what the diagnosis may cost and the request as sent "
                             "(credential masked)")


def _dry_run(args: argparse.Namespace, labels: list[str]) -> int:
    import dataclasses

    from lanelab.config import LIVE_API_BASE, Settings
    from lanelab.live import NOTICE
    from lanelab.matrix import live_guard
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.walkthrough.diagnose import load_source, plan_requests
    from lanelab.walkthrough.items import reference_requests
    from lanelab.walkthrough.lint import lint

    settings = Settings.from_env()
    if args.live:
        settings = dataclasses.replace(settings, mode="live", base_url=settings.base_url or LIVE_API_BASE)
    source = load_source(profile=args.profile, capture=args.capture, dump=args.dump, index=args.index)
    spec = minimal_spend(source.spec) if settings.mode == "live" else source.spec
    result = None if args.no_lint else lint(source.lint_input)
    plan = plan_requests(spec, result, max(0, len(labels) - 1))
    if settings.mode == "live":
        print(NOTICE)
        print(f"host: {settings.base_url}; budget: {args.budget if args.budget is not None else 'none (required)'}")
    if result is not None:
        print(result.summary())
    print(f"cost: {plan.describe()}")
    for name, desc, _ in reference_requests(spec):
        print(f"reference '{name}': {desc}")
    base = settings.base_url or "http://127.0.0.1"
    print("Dry run: the first request, as it would be sent (credential masked); nothing was sent.")
    print(live_guard.render_request(spec, base, None))
    return 0


def run(args: argparse.Namespace) -> int:
    from lanelab.commands.sim import parse_account
    from lanelab.errors import InputError
    from lanelab.live import confirm_cli
    from lanelab.walkthrough.diagnose import run_diagnose

    if args.budget is not None and args.budget < 1:
        raise InputError(f"--budget {args.budget} allows no request.", "Pass --budget 1 or more.")
    labels = [c for c in (args.credential or "").split(",") if c.strip()]
    if args.dry_run:
        return _dry_run(args, labels)
    diagnosis = run_diagnose(profile=args.profile, capture=args.capture, dump=args.dump, index=args.index,
                             credentials=labels, live=args.live, budget=args.budget, policy=args.policy,
                             use_lint=not args.no_lint, account=parse_account(args.account),
                             write_report=not args.no_report, confirm=lambda c: confirm_cli(c, args.yes),
                             on_sent=answers_progress("request"))
    print(diagnosis.to_text())
    return 0 if diagnosis.verdict.conclusive else 1
