"""``python -m lanelab creds``: the saved and the importable credentials, masked, with expiry, source and issuer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lanelab import redact
from lanelab.auth.introspect import credentials_table
from lanelab.auth.issuer import default_label, login_command
from lanelab.auth.store import CredentialStore
from lanelab.config import Settings

NAME = "creds"
HELP = "list saved and importable credentials (masked), with kind, expiry, source and issuer"
DESCRIPTION = (
    "Lists the kit's own credentials (LANELAB_HOME) and those it can import read-only: ~/.claude/.credentials.json, "
    "~/.hermes/auth.json, ~/.hermes/.anthropic_oauth.json, CLAUDE_CODE_OAUTH_TOKEN and ANTHROPIC_TOKEN. Tokens are "
    "masked; nothing is written or refreshed. The issuer column says who issued each one (the simulator at its "
    "address, or Anthropic in live mode; imported ones count as live), which decides where it may be sent."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-home", type=Path, help="where to look for other clients' files (default: your home)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON); returns 0. Raises :class:`~lanelab.errors.ConfigError` for bad LANELAB_* settings;
    a damaged credential file is listed as a problem, not raised."""
    settings = Settings.from_env()
    table = credentials_table(settings, args.user_home)
    default = default_label(settings.mode)
    if args.json:
        print(redact.redact_text(json.dumps({"credentials": table.rows, "problems": table.problems,
                                             "default_label": default, "mode": settings.mode}, indent=2)))
        return 0
    print(f"Store: {CredentialStore(settings.home).dir}")
    if not table.rows:
        print("No credentials yet: run 'python -m lanelab login'.")
    for line in table.text_lines():
        print(line)
    if default not in table.labels():
        print(f"Nothing is saved under {default!r}, the default label in {settings.mode} mode; to make it: "
              f"{login_command(settings.mode, settings.base_url)}")
    return 0
