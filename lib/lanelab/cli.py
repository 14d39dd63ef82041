"""``python -m lanelab …``: the notebooks' operations, headless. One module per subcommand in ``lanelab.commands``.

What the user sees when something goes wrong is decided here, once for every command:

- bad input (a :class:`~lanelab.errors.UserError`, or an argument argparse refuses): one line ``lanelab CMD:
  message`` on stderr, exit status 2;
- a file system the kit writes to is read-only, full or not a folder (``OSError`` on a path): one line naming the path
  and the setting to check (LANELAB_OUT, LANELAB_HOME), exit 2;
- a server that cannot be reached (an unreachable ``LANELAB_BASE_URL``): one line naming the address and what to
  check, exit 2;
- Ctrl-C: one line, exit 130; output piped into a reader that stopped early (``… | head -1``): silence, exit 141;
- anything else is a bug in the kit: one line saying so, where the redacted traceback was written (a file under
  ``LANELAB_OUT/bugs``, or the temporary folder when that cannot be written) and how to report it; exit 70.

A raw traceback never reaches the user.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import platform
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from lanelab import __version__, commands, redact
from lanelab.errors import UserError, os_reason

#: Reading order of the subcommands in ``--help``; any other command module is listed after these.
ORDER = ("sim", "login", "creds", "watch", "lint", "diagnose", "matrix", "report", "timeline", "capture", "diff",
         "bisect", "demo", "lab", "audit")

#: Exit statuses besides 0 and a command's own: bad input, Ctrl-C, output closed, a bug (sysexits' EX_SOFTWARE).
EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, EXIT_BUG = 2, 130, 141, 70

#: ``OSError`` numbers that mean "the file system refused" (the user can fix it), not a bug.
FILE_SYSTEM_ERRNOS = frozenset(getattr(errno, name) for name in (
    "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR", "EISDIR", "ENOENT", "EEXIST", "ENAMETOOLONG",
    "ELOOP", "EMFILE", "ENFILE", "EFBIG", "ENOTEMPTY", "EXDEV", "ETXTBSY", "EBUSY") if hasattr(errno, name))


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused argument is one line (``lanelab CMD: …``) and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        name = self.prog.replace("python -m ", "", 1)
        text = " ".join(redact.redact_text(message).split())
        self.exit(EXIT_BAD_INPUT, f"{name}: {text} (see 'python -m {name} --help').\n")


def command_modules() -> list[ModuleType]:
    """The subcommand modules (``NAME``, ``HELP``, ``configure``, ``run``), in ``--help`` order."""
    mods = [importlib.import_module(f"{commands.__name__}.{m.name}") for m in pkgutil.iter_modules(commands.__path__)]
    mods = [m for m in mods if hasattr(m, "NAME") and hasattr(m, "run")]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(mods, key=lambda m: (rank.get(m.NAME, len(ORDER)), m.NAME))




def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m lanelab",
        description="lanelab: find out which billing lane a Claude OAuth request lands in, and why. "
        "Runs against the embedded simulator unless LANELAB_MODE=live.",
        epilog="Environment: LANELAB_MODE (sim|live), LANELAB_BASE_URL, LANELAB_HOME (credential store), "
        "LANELAB_OUT (runs and reports). 'python -m lanelab COMMAND --help' explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"lanelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_Parser)
    for mod in command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.configure(p)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def _say(command: str, message: str) -> None:
    """One line on stderr: ``lanelab COMMAND: message`` (redacted, line breaks folded)."""
    text = " ".join(redact.redact_text(str(message)).split())
    try:
        print(f"lanelab {command}: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr itself is gone: nothing more can be said
        pass


def _check_port(args: argparse.Namespace) -> None:
    """Refuse a ``--port`` that is no TCP port before a command starts anything: the check every server binds
    through (:func:`lanelab.serve.check_port`), made early so no command gets as far as starting a child first."""
    port = getattr(args, "port", None)
    if port is not None:  # the commands that take a port serve anyway: importing serve costs them nothing
        from lanelab.serve import check_port

        check_port(port)


def _stdout_closed() -> bool:
    """True when stdout's reader has gone (``… | head``): the pipe reports an error, or flushing it fails."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        if any(events & select.POLLERR for _, events in poller.poll(0)):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not report the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _setting_holding(path: str) -> str | None:
    """The setting (LANELAB_OUT or LANELAB_HOME) whose folder holds ``path``, if one does."""
    from lanelab.config import default_home, repo_root

    roots = {"LANELAB_OUT": os.environ.get("LANELAB_OUT") or str(repo_root() / "reports"),
             "LANELAB_HOME": os.environ.get("LANELAB_HOME") or str(default_home())}
    target = os.path.abspath(path)
    for name, root in roots.items():
        root = os.path.abspath(root)
        if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
            return f"{name} ({root})"
    return None


def _file_system_message(exc: OSError) -> str | None:
    """The one line for a file-system refusal (read-only, full, not a folder …), or None for any other OSError."""
    if exc.errno not in FILE_SYSTEM_ERRNOS or not exc.filename:
        return None
    where = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) else str(exc.filename)
    reason = os_reason(exc)
    setting = _setting_holding(where)
    if setting:
        return f"cannot use {where} ({reason}). Check that {setting} names a folder you can write, with free space."
    return f"cannot use {where} ({reason})."


def _unreachable_message(exc: BaseException) -> str | None:
    """The one line for a server that could not be reached (httpx's transport errors), or None."""
    httpx = sys.modules.get("httpx")
    if httpx is None or not isinstance(exc, httpx.TransportError):
        return None
    try:
        url = exc.request.url
        where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
    except (RuntimeError, AttributeError):
        where = "the server"
    reason = {
        "ConnectError": "connection refused or no route", "ConnectTimeout": "no answer in time",
        "ReadTimeout": "no answer in time", "WriteTimeout": "sending took too long", "PoolTimeout": "no free connection",
        "RemoteProtocolError": "the server closed the connection or answered in a broken way",
        "UnsupportedProtocol": "not an http(s) URL", "ProxyError": "the proxy refused",
    }.get(type(exc).__name__, type(exc).__name__)
    return (f"cannot reach {where} ({reason}). Check LANELAB_BASE_URL: is the simulator still running there "
            "('python -m lanelab sim' prints its URL)? Unset it to let the command start its own simulator; "
            "in live mode, check your network.")


def bug_report_dir() -> Path:
    """Where a bug's traceback goes: ``LANELAB_OUT/bugs`` (default ``reports/bugs``) when it can be written, else a
    ``lanelab-bugs`` folder in the system's temporary folder."""
    from lanelab.config import repo_root

    out = os.environ.get("LANELAB_OUT")
    candidates = [Path(out) / "bugs" if out else repo_root() / "reports" / "bugs",
                  Path(tempfile.gettempdir()) / "lanelab-bugs"]
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
            return folder
        except OSError:
            continue
    return candidates[-1]


def write_bug_report(command: str, exc: BaseException, argv: list[str]) -> Path | None:
    """Write the redacted traceback of ``exc`` (with the command, arguments, versions) to a new file; its path, or
    None when no folder could be written."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    text = "\n".join([
        f"lanelab {__version__} bug report ({stamp})",
        f"command: python -m lanelab {' '.join(argv)}",
        f"python {platform.python_version()} on {platform.platform()}",
        "",
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    ])
    try:
        text = redact.redact_text(text)
    except Exception:  # noqa: BLE001 - the redactor itself failing must not leak the unredacted text
        text = f"lanelab {__version__} bug report ({stamp}): {type(exc).__name__}; the traceback could not be redacted."
    folder = bug_report_dir()
    path = folder / f"lanelab-bug-{command}-{stamp}-{os.getpid()}.txt"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        return None
    return path


def _bug(command: str, exc: BaseException, argv: list[str]) -> int:
    path = write_bug_report(command, exc, argv)
    where = f"the redacted traceback is in {path}" if path else "the traceback could not be written anywhere"
    _say(command, f"internal error ({type(exc).__name__}): this is a bug in lanelab, not a problem with your input; "
                  f"{where}. Please report it to the lanelab maintainers with that file and the command you ran.")
    return EXIT_BUG


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (see the module docstring for what each failure prints)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "cli"
    redact.guard_logging()  # no log line of any command shows a secret (lanelab.redact.guard_logging)
    try:
        parser = build_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:  # said by the command's own parser, so the line names the command
            getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
        if not getattr(args, "_run", None):
            parser.print_help()
            return 0
        command = args.command
        _check_port(args)
        return int(args._run(args) or 0)
    except SystemExit:
        raise
    except UserError as exc:
        _say(command, str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say(command, "interrupted; nothing already written was lost.")
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        if _stdout_closed():
            _silence_stdout()
            return EXIT_PIPE_CLOSED
        return _bug(command, exc, argv)
    except RecursionError as exc:
        return _bug(command, exc, argv)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback reaches the user
        message = _file_system_message(exc) if isinstance(exc, OSError) else _unreachable_message(exc)
        if message is not None:
            _say(command, message)
            return EXIT_BAD_INPUT
        return _bug(command, exc, argv)
