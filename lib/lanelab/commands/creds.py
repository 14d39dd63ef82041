"""``python -m lanelab creds``: the saved and the importable credentials, masked, with expiry and source."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lanelab import redact
from lanelab.auth.credentials import CredentialStore
from lanelab.auth.introspect import credentials_table
from lanelab.config import Settings

NAME = "creds"
HELP = "list saved and importable credentials (masked), with kind, expiry and source"
DESCRIPTION = (
    "Lists the kit's own credentials (LANELAB_HOME) and those it can import read-only: ~/.claude/.credentials.json, "
    "~/.hermes/auth.json, ~/.hermes/.anthropic_oauth.json, CLAUDE_CODE_OAUTH_TOKEN and ANTHROPIC_TOKEN. Tokens are "
    "masked; nothing is written or refreshed."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-home", type=Path, help="where to look for other clients' files (default: your home)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    table, problems = credentials_table(settings, args.user_home)
    if args.json:
        print(redact.redact_text(json.dumps({"credentials": table, "problems": problems}, indent=2)))
        return 0
    print(f"Store: {CredentialStore(settings.home).dir}")
    if not table:
        print("No credentials yet: run 'python -m lanelab login'.")
    cols = ("where", "label", "kind", "token", "expires", "source", "scopes")
    widths = {c: max(len(c), *(len(r[c]) for r in table)) if table else len(c) for c in cols}
    if table:
        print("  ".join(c.ljust(widths[c]) for c in cols))
        for r in table:
            print(redact.redact_text("  ".join(r[c].ljust(widths[c]) for c in cols)))
    for p in problems:
        print(f"problem: {redact.redact_text(p)}")
    return 0
