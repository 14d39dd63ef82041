"""``python -m lanelab sim``: run the embedded simulator in the foreground, for notebooks, clients and demos."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lanelab.config import DEFAULT_POLICY
from lanelab.datafiles import Either, Str, Table, validate
from lanelab.errors import InputError

NAME = "sim"
HELP = "run the embedded Anthropic API + OAuth simulator on 127.0.0.1"
DESCRIPTION = (
    "Run the embedded simulator (a model of the Anthropic API and OAuth server built from public reports) on "
    "127.0.0.1. The first line of output is its base URL; point LANELAB_BASE_URL (or a client's "
    "ANTHROPIC_BASE_URL) at it. Serves until Ctrl-C / SIGTERM."
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


#: The account fields ``--account`` may set, with their types (the simulator merges them over its default account).
#: Unknown keys are passed through. For the simulator's own control API (POST /_sim/account) the same table belongs
#: in lanelab.sim (then imported here), so both entry points check one way.
ACCOUNT_SCHEMA = Table({
    "plan?": Str(nonempty=True), "rate_limit_tier?": str, "five_hour_utilization?": float,
    "seven_day_utilization?": float, "fallback_percentage?": float,
    "extra_usage?": Table({"is_enabled?": bool, "monthly_limit?": float, "used_credits?": float,
                           "currency?": Either(str, None), "disabled_reason?": Either(str, None)}),
})


def parse_account(value: str | None) -> dict[str, Any] | None:
    """``--account`` as a dict: inline JSON or a JSON file, checked against :data:`ACCOUNT_SCHEMA`.

    Raises :class:`~lanelab.errors.InputError` (one line naming the key and the expected type) for anything else."""
    if not value:
        return None
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"--account {value!r} is neither a JSON object nor an existing file.",
                             "Pass inline JSON such as '{\"plan\": \"pro\"}' or a path to a .json file.")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise InputError(f"--account: cannot read {path} ({exc.strerror}).") from None
        except UnicodeDecodeError:
            raise InputError(f"--account: {path} is not UTF-8 text (a binary or UTF-16 file?).",
                             "Save the JSON as UTF-8.") from None
    try:
        account = json.loads(text)
    except ValueError as exc:
        msg = f" ({exc.msg} at line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"--account is not valid JSON{msg}.",
                         "Check the quoting: the whole object needs single quotes around it in a shell.") from None
    except RecursionError:
        raise InputError("--account is nested too deeply to read.", "An account is a flat object with one "
                         "nested table, extra_usage.") from None
    if not isinstance(account, dict):
        raise InputError("--account must be a JSON object.", "Example: '{\"extra_usage\": {\"is_enabled\": false}}'.")
    validate(account, ACCOUNT_SCHEMA, "--account", InputError,
             hint="Example: '{\"plan\": \"pro\", \"extra_usage\": {\"monthly_limit\": 2000}}'.")
    return account


def run(args: argparse.Namespace) -> int:
    from lanelab.sim.server import serve_forever

    def announce(base_url: str) -> None:
        print(base_url, flush=True)
        print(f"lanelab simulator: policy {args.policy}; Ctrl-C to stop.", file=sys.stderr, flush=True)

    serve_forever(policy=args.policy, port=args.port, faults=args.faults, account=parse_account(args.account),
                  on_ready=announce)
    return 0
