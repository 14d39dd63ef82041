"""One module per ``python -m lanelab`` subcommand: ``NAME``, ``HELP``, ``configure(parser)``, ``run(args)``.

:func:`count` is the argparse type for whole-number options: a value out of range is refused by argparse as one
line (exit 2) before a command starts anything. ``--port`` options are checked by :mod:`lanelab.cli` for every
command. :func:`stop_on_sigterm` makes SIGTERM stop a long command as Ctrl-C does; :func:`progress` says what a
long step is doing, on a terminal, and :func:`answers_progress` how each request a command sends ended.
:class:`HelpParagraphs` lays out a ``--help`` written in paragraphs.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lanelab.wire.spec import Observation


class HelpParagraphs(argparse.RawDescriptionHelpFormatter):
    """A command's ``--help`` in paragraphs (separated by a blank line), each wrapped to the terminal's width; a
    paragraph laid out by hand (a list whose lines after the first are indented) is kept as it is written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines[1:]):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False,
                                         break_long_words=False))
        return "\n\n".join(out)


def count(minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: the option's value as an int from ``minimum`` to ``maximum`` (None: no upper bound).

    The returned function raises ``argparse.ArgumentTypeError`` (argparse prints it as one line, exit 2) for text
    that is not a whole number or a number out of range; it carries ``integer = True`` so tools can tell it is one.
    """
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            shown = value if abs(value) < 10**12 else "a number that large"
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, not {shown}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    parse.integer = True  # type: ignore[attr-defined]
    return parse


def stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop a long command as Ctrl-C does: a ``KeyboardInterrupt`` that unwinds (servers and kernels
    stopped, temporary folders removed) and that the CLI reports as one line, exit 130.

    Returns a function that puts the previous handlers back. Off the main thread (where no handler may be set) SIGTERM
    keeps its default.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # SIGINT already raises KeyboardInterrupt (unless it is ignored)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


def progress(text: str) -> None:
    """Say what a step that may take a while is doing (``reading 27 run files…``), on standard error and only when
    it is a terminal: a pipe or a file gets the command's output alone."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def answers_progress(what: str) -> Callable[[Observation], None]:
    """A callback for each answer a command's requests get: one :func:`progress` line per request ("probe 3: HTTP
    400, extra_usage_exhausted"), on a terminal only."""
    numbers = itertools.count(1)

    def told(obs: Observation) -> None:
        if sys.stderr.isatty():
            from lanelab.wire.classify import classify

            how = f"HTTP {obs.status}" if obs.status is not None else f"no answer ({obs.transport_error})"
            progress(f"{what} {next(numbers)}: {how}, {classify(obs).outcome}")
    return told
