"""``python -m lanelab lint FILE``: match one request against the catalogue of reported triggers; nothing is sent."""

from __future__ import annotations

import argparse
import sys

from lanelab.commands import HelpParagraphs

NAME = "lint"
HELP = "check a request against reported triggers (tool names, prompt sentences, headers) without sending anything"
DESCRIPTION = (
    "Matches one request against data/triggers.toml, the catalogue of reported triggers (each with its public "
    "reports, the dates it was seen, the simulator snapshots that model it, the fix reports say works, and the "
    "confidence). Nothing is sent: no network at all.\n\n"
    "FILE is one of:\n"
    "  a capture  JSONL from 'lanelab capture' or 'watch'; its last inference\n"
    "             request, or the one --index picks\n"
    "  a profile  a name from data/profiles (e.g. hermes-0.14.0) or a .toml file\n"
    "  a dump     Hermes' request_dump_*.json (~/.hermes/sessions). A dump does\n"
    "             not record the wire path, the auth style or the SDK client's\n"
    "             headers, so entries that need them are listed as undetermined;\n"
    "             its '/chat/completions' URL and 'Bearer None' are artifacts.\n\n"
    "Prints each match (the exact elements, the fix reports say works, the sources, the confidence), then a one-line "
    "summary. Observations (no Claude Code identity line or user agent, an attestation block present) are shown with "
    "the remedies that exist and do not count as matches.\n\n"
    "Exit status: 0 no known trigger matched; 1 at least one trigger matched; 2 bad input (missing or unreadable "
    "file, wrong format, unknown profile, --index out of range)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpParagraphs
    parser.add_argument("file", metavar="FILE", help="a capture (.jsonl), a profile (name or .toml) or a Hermes "
                                                     "request_dump_*.json")
    parser.add_argument("--index", type=int, default=None,
                        help="with a capture: which inference request (0 the first, -1 the last; default -1)")
    parser.add_argument("--csv", action="store_true", help="print the findings as CSV instead of text (the summary goes to stderr)")


def run(args: argparse.Namespace) -> int:
    from lanelab.walkthrough.lint import lint_file

    result = lint_file(args.file, args.index)
    if args.csv:
        print(result.to_frame().to_csv(index=False), end="")
        print(result.summary(), file=sys.stderr)
    else:
        print(result.to_text())
    return result.exit_code
