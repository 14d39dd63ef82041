"""``python -m lanelab …``: the notebooks' operations, headless. One module per subcommand in ``lanelab.commands``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from lanelab import __version__, commands, redact
from lanelab.errors import UserError

#: Reading order of the subcommands in ``--help``; any other command module is listed after these.
ORDER = ("sim", "login", "creds", "watch", "lint", "diagnose", "matrix", "report", "capture", "diff", "bisect", "demo",
         "lab", "audit")


def _command_modules() -> list[ModuleType]:
    mods = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    mods = [m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(mods, key=lambda m: (rank.get(m.NAME, len(ORDER)), m.NAME))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lanelab",
        description="lanelab: find out which billing lane a Claude OAuth request lands in, and why. "
        "Runs against the embedded simulator unless LANELAB_MODE=live.",
        epilog="Environment: LANELAB_MODE (sim|live), LANELAB_BASE_URL, LANELAB_HOME (credential store), "
        "LANELAB_OUT (runs and reports). 'python -m lanelab COMMAND --help' explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"lanelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    redact.guard_logging()  # no log line of any command shows a secret (lanelab.redact.guard_logging)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"lanelab {args.command}: {redact.redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lanelab {args.command}: interrupted; nothing already written was lost.", file=sys.stderr)
        return 130
