"""``python -m lanelab sim``: run the embedded simulator in the foreground, for notebooks, clients and demos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lanelab.config import DEFAULT_POLICY
from lanelab.errors import UserError

NAME = "sim"
HELP = "run the embedded Anthropic API + OAuth simulator on 127.0.0.1"
DESCRIPTION = (
    "Run the embedded simulator (a model of the Anthropic API and OAuth server built from public reports) on "
    "127.0.0.1. The first line of output is its base URL; point LANELAB_BASE_URL (or a client's "
    "ANTHROPIC_BASE_URL) at it. Serves until Ctrl-C / SIGTERM. A token it accepts: "
    "'LANELAB_BASE_URL=URL python -m lanelab creds --mint --print' (saved as a simulator credential too)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=DEFAULT_POLICY,
                        help="policy snapshot from data/policies (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="fault injection, e.g. 'latency=200ms@/v1/messages;http429=1%%0.3;sse_cut#2' "
                        "(grammar: kind[=arg][@pathglob][%%probability][#first_n])")
    parser.add_argument("--account", default=None, metavar="JSON",
                        help="account state to merge over the default: a JSON object or a path to a JSON file, "
                        "e.g. '{\"extra_usage\": {\"monthly_limit\": 2000}}'")


def parse_account(value: str | None) -> dict[str, Any] | None:
    """``--account`` as a dict: inline JSON or a JSON file."""
    if not value:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise UserError(f"--account {value!r} is neither a JSON object nor an existing file.",
                            "Pass inline JSON such as '{\"plan\": \"pro\"}' or a path to a .json file.")
        text = path.read_text(encoding="utf-8")
    try:
        account = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--account is not valid JSON ({exc.msg} at line {exc.lineno}).",
                        "Check the quoting: the whole object needs single quotes around it in a shell.") from None
    if not isinstance(account, dict):
        raise UserError("--account must be a JSON object.", "Example: '{\"extra_usage\": {\"is_enabled\": false}}'.")
    return account


def run(args: argparse.Namespace) -> int:
    from lanelab.sim.server import serve_forever

    def announce(base_url: str) -> None:
        print(base_url, flush=True)
        print(f"lanelab simulator: policy {args.policy}; Ctrl-C to stop. A token for a client (the official SDK, "
              f"curl…): LANELAB_BASE_URL={base_url} python -m lanelab creds --mint --print", file=sys.stderr,
              flush=True)

    serve_forever(policy=args.policy, port=args.port, faults=args.faults, account=parse_account(args.account),
                  on_ready=announce)
    return 0
