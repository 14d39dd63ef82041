"""``python -m lanelab timeline``: the same request against every dated snapshot of the service, in the simulator."""

from __future__ import annotations

import argparse
from pathlib import Path

from lanelab.commands import HelpParagraphs

NAME = "timeline"
HELP = "when would this request have been billed where? the same request under every dated simulator snapshot"
DESCRIPTION = (
    "Sends one request (a profile, or the last inference request of a capture) to an embedded simulator once per "
    "dated snapshot of the service (data/policies/: 2026-05-25, 2026-08, 2026-11, …), oldest first, and prints the "
    "status, outcome class, billing lane and representative claim of each answer, with the simulator's rule and its "
    "public source. The request never changes, so a step where the answer moves is a change on the service side.\n\n"
    "Everything runs on 127.0.0.1 with a token the simulator mints: nothing is sent to Anthropic, whatever "
    "LANELAB_MODE says. A first-party reference profile (Claude Code) is refused, as everywhere in the kit.\n\n"
    "Exit status: 0 done; 2 bad input (unknown profile or policy, unreadable capture, bad --account)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpParagraphs
    parser.add_argument("--profile", action="append", default=[], metavar="NAME",
                        help="a profile name from data/profiles or a profile .toml file (repeatable)")
    parser.add_argument("--capture", action="append", default=[], metavar="FILE",
                        help="a capture file from 'lanelab capture': its last inference request (repeatable)")
    parser.add_argument("--policy", action="append", default=None, metavar="NAME",
                        help="only these snapshots (repeatable; default: every policy in data/policies)")
    parser.add_argument("--account", default=None, metavar="JSON",
                        help="account state merged over the simulator's default for every snapshot, e.g. "
                        "'{\"plan\": \"ultra\"}' (a JSON object or a .json file)")
    parser.add_argument("--credential", default="pkce", choices=("pkce", "setup-token", "api_key"),
                        help="the kind of simulator credential sent (default: %(default)s)")
    parser.add_argument("--csv", metavar="FILE", default=None, help="also write the table as CSV to FILE")
    parser.add_argument("--png", metavar="FILE", default=None, help="also write the chart as PNG to FILE")


def run(args: argparse.Namespace) -> int:
    from lanelab.commands.sim import parse_account
    from lanelab.errors import InputError
    from lanelab.findings.timeline import timeline

    refs = [*args.profile, *args.capture]
    if not refs:
        raise InputError("Name a request: --profile NAME or --capture FILE.",
                         "e.g. python -m lanelab timeline --profile hermes-0.14.0")
    for capture in args.capture:
        if Path(capture).is_dir():
            raise InputError(f"--capture {capture!r} is a folder, not a capture file.",
                             "Pass a .jsonl file written by 'python -m lanelab capture' or 'watch'.")
        if not Path(capture).is_file():
            raise InputError(f"--capture {capture!r}: no such file.")
    result = timeline(refs, args.policy, account=parse_account(args.account), credential_kind=args.credential)
    print(result)
    for target, write in ((args.csv, lambda p: result.to_frame().to_csv(p, index=False)),
                          (args.png, lambda p: result.chart().savefig(p, format="png", dpi=110))):
        if target:
            try:
                write(target)
            except OSError as exc:
                raise InputError(f"Cannot write {target} ({exc.strerror or exc}).") from None
            print(f"wrote {target}")
    return 0
