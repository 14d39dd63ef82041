"""``python -m lanelab audit``: the hardening figures the tests recorded (``make audit`` runs the tests first)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "audit"
HELP = ("print the hardening figures: canary hits, fuzz cases, fault classes survived, cells resent after a kill, "
        "foreign files")
DESCRIPTION = (
    "Reads the figures the hardening tests recorded under LANELAB_AUDIT_DIR (default reports/audit) and prints them. "
    "Run `make audit` to run those tests and print the summary in one go."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None, help="where the records are (default: reports/audit)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from lanelab.devtools.audit import format_summary, summary
    from lanelab.errors import UserError

    s = summary(args.dir)
    if not s["tests"]:
        raise UserError("No hardening figures recorded yet.", hint="Run `make audit` (it runs the hardening tests).")
    print(json.dumps(s, indent=1) if args.json else format_summary(s))
    return 0
