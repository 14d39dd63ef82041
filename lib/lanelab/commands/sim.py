"""``python -m lanelab sim``: run the embedded simulator in the foreground, for notebooks, clients and demos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lanelab.commands import stop_on_sigterm
from lanelab.config import DEFAULT_POLICY
from lanelab.errors import InputError

NAME = "sim"
HELP = "run the embedded Anthropic API + OAuth simulator on 127.0.0.1"
DESCRIPTION = (
    "Run the embedded simulator (a model of the Anthropic API and OAuth server built from public reports) on "
    "127.0.0.1. The first line of output is its base URL; point LANELAB_BASE_URL (or a client's "
    "ANTHROPIC_BASE_URL) at it. Serves until Ctrl-C / SIGTERM. A token it accepts: "
    "'LANELAB_BASE_URL=URL python -m lanelab creds --mint --print' (saved as a simulator credential too)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    from lanelab.sim.server import list_policies

    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help=f"policy snapshot from data/policies: {', '.join(list_policies()) or 'none found'} "
                        "(default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="fault injection, e.g. 'latency=200ms@/v1/messages;http429=1%%0.3;sse_cut#2' "
                        "(grammar: kind[=arg][@pathglob][%%probability][#first_n])")
    parser.add_argument("--account", default=None, metavar="JSON",
                        help="account state to merge over the default: a JSON object or a path to a JSON file, "
                        "e.g. '{\"plan\": \"ultra\", \"extra_usage\": {\"monthly_limit\": 2000}}'")


def parse_account(value: str | None) -> dict[str, Any] | None:
    """``--account`` as a checked dict: inline JSON or a JSON file. Raises ``UserError`` kinds (one line each) for
    a missing file, text that is not JSON (or nested too deep), and an account of the wrong shape."""
    from lanelab.sim.server import check_account

    if not value:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"--account {value[:80]!r} is neither a JSON object nor an existing file.",
                             "Pass inline JSON such as '{\"plan\": \"pro\"}' or a path to a .json file.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--account: cannot read {path} as UTF-8 text ({type(exc).__name__}).") from None
    try:
        account = json.loads(text)
    except ValueError as exc:
        where = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"--account is not valid JSON{where}.",
                         "Check the quoting: the whole object needs single quotes around it in a shell.") from None
    except RecursionError:
        raise InputError("--account is nested too deeply to read.",
                         "An account is a flat object with one nested extra_usage object.") from None
    return check_account(account)


def run(args: argparse.Namespace) -> int:
    from lanelab.sim.server import serve_forever

    account = parse_account(args.account)  # before anything starts: a bad account is one line, exit 2

    def announce(base_url: str) -> None:
        print(base_url, flush=True)
        print(f"lanelab simulator: policy {args.policy}; Ctrl-C to stop. A token for a client (the official SDK, "
              f"curl…): LANELAB_BASE_URL={base_url} python -m lanelab creds --mint --print", file=sys.stderr,
              flush=True)

    restore = stop_on_sigterm()  # a stop by SIGTERM ends as Ctrl-C does: one line, exit 130
    try:
        serve_forever(policy=args.policy, port=args.port, faults=args.faults, account=account, on_ready=announce)
    finally:
        restore()
    return 0
