"""``python -m lanelab login``: the OAuth step-through in a terminal; prints the link, reads the paste, saves."""

from __future__ import annotations

import argparse
import sys

from lanelab import redact
from lanelab.auth import oauth
from lanelab.auth.credential import validate_label
from lanelab.auth.flow import LoginFlow
from lanelab.auth.issuer import DEFAULT_LABELS, default_label
from lanelab.auth.store import StoreNotWritable
from lanelab.commands import count
from lanelab.config import Settings
from lanelab.errors import InputError, UserError
from lanelab.live import require_live_opt_in

NAME = "login"
HELP = "walk through the Claude OAuth login (PKCE), paste the code, save the credential under a label"
DESCRIPTION = (
    "Prints the authorize URL, reads the value the callback page shows (code#state, or the callback URL) from "
    "standard input, exchanges it for tokens and saves them (mode 0600) under --label in LANELAB_HOME. "
    "Endpoint sets and client variants come from data/oauth.toml. In sim mode --auto fetches the paste value from "
    "the simulator itself. Live mode needs LANELAB_MODE=live and LANELAB_LIVE_OPT_IN=1."
)
LIVE_NOTICE = (
    "Live mode: this logs in to your real Claude account. Anthropic reserves subscription OAuth for its own apps; "
    "the kit only diagnoses (it never disguises requests). Nothing is spent by logging in."
)


class NoPaste(InputError):
    """Standard input ended, or too many bad pastes."""


class CredentialLost(StoreNotWritable):
    """The new credential could not be saved and the command is ending: it is gone (nothing else changed)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", metavar="NAME", help="endpoint set from data/oauth.toml "
                        "(default: the first for this mode; sim mode: sim, live mode: live-claude-ai)")
    parser.add_argument("--label", help="save the credential under this label (default: "
                        + ", ".join(f"{label} in {mode} mode" for mode, label in DEFAULT_LABELS.items()) + ")")
    parser.add_argument("--body", choices=("json", "form"), help="token POST body style (picks a client variant)")
    parser.add_argument("--variant", metavar="NAME", help="token-endpoint client variant from data/oauth.toml "
                        "(default: axios-json)")
    parser.add_argument("--auto", action="store_true", help="sim mode only: read the paste value from the simulator")
    parser.add_argument("--tries", type=count(1, 100), default=3, help="how many pastes to accept before giving up (default: 3)")
    parser.add_argument("--no-probe", action="store_true", help="skip the profile and usage probes")


def _variant_name(args: argparse.Namespace) -> str:
    """The client variant: ``--variant``, else the first one with ``--body``'s style, else ``axios-json``.

    Raises :class:`~lanelab.auth.oauth.EndpointSetError` when no variant has that body style."""
    if args.variant:
        return args.variant
    if args.body:
        return oauth.variant_for_body(args.body).name
    return "axios-json"


def _read_paste(flow: LoginFlow, tries: int) -> None:
    """Read pastes from standard input until one is accepted; raises :class:`NoPaste` when input ends or after
    ``tries`` refusals. At a terminal each refusal is printed with how many tries are left; from a pipe or a file
    nothing is printed but the final error, which says why the last value was refused."""
    isatty = getattr(sys.stdin, "isatty", None)
    interactive = isatty() if callable(isatty) else True  # a stream that cannot say is taken for a person
    for attempt in range(1, max(tries, 1) + 1):
        if interactive:
            print("paste> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if line == "":
            raise NoPaste("No value was pasted (standard input ended)" + (f"; the last one was refused: {flow.error}"
                          if flow.error else "."), "Run the command again and paste the value the callback page shows.")
        if flow.submit_paste(line):
            return
        left = tries - attempt
        if interactive:
            print(f"lanelab login: {flow.error}" + (f" ({left} more tries.)" if left else ""), file=sys.stderr)
    raise NoPaste(f"No usable value after {tries} tries (the last: {flow.error})",
                  "Run 'python -m lanelab login' again for a new link.")


def _save(flow: LoginFlow) -> str:
    """Save the new credential; while the store refuses, say why and wait for Enter to try again (the credential
    stays in this process meanwhile). Returns the file's path. Raises :class:`CredentialLost` when standard input
    ends first."""
    while True:
        try:
            return str(flow.save())
        except StoreNotWritable as exc:
            print(f"lanelab login: could not save {flow.label!r} in {exc.folder} ({exc.reason}). The new "
                  "credential is kept in this process until it ends: free some space or make the folder writable, "
                  "then press Enter to save it (Ctrl-D gives up).", file=sys.stderr, flush=True)
            if sys.stdin.readline() == "":
                raise CredentialLost(
                    f"The new credential could not be saved in {exc.folder} ({exc.reason}) and is gone now that "
                    "login ends; nothing else was changed (a saved credential of that label is intact).",
                    "Fix the folder, then run 'python -m lanelab login' again.",
                    folder=exc.folder, reason=exc.reason) from None


def run(args: argparse.Namespace) -> int:
    """Log in and save; returns 0. Raises a :class:`~lanelab.errors.UserError` (the CLI prints it, exit 2) for a bad
    label, a refused paste, live mode without the opt-in, ``--auto`` in live mode, a token-endpoint failure, a
    credential store that cannot be written (checked before the link is shown) and a save that failed until
    standard input ended (:class:`CredentialLost`)."""
    settings = Settings.from_env()
    if settings.mode == "live":
        require_live_opt_in(settings, "Live login needs an explicit opt-in")
    if args.auto and settings.mode != "sim":
        raise UserError("--auto works only against the simulator (LANELAB_MODE=sim).",
                        "Open the link yourself and paste the value the callback page shows.")
    label = validate_label(args.label or default_label(settings.mode))  # before any network work
    flow = LoginFlow(settings, endpoints=args.endpoints, variant=_variant_name(args), label=label)
    flow.store.check_writable()  # before the link: a code spent now could not be kept
    if settings.mode == "live":  # after every check of the input, so a refused input stays one line
        print(LIVE_NOTICE, file=sys.stderr)
    url = flow.start()
    print(f"Endpoint set: {flow.endpoints.name if flow.endpoints else '?'}; token POST: {flow.variant.name} "
          f"({flow.variant.body} body)")
    print("Open this link, approve, then paste the value the page shows (code#state):")
    print(url, flush=True)
    if args.auto:
        value = flow.headless_paste(auto=True)
        if not flow.submit_paste(value):
            raise UserError(flow.error or "The simulator's paste value was refused.")
    else:
        _read_paste(flow, args.tries)
    cred = flow.exchange()
    print(redact.redact_text(repr(flow.summary())))
    if not args.no_probe and settings.base_url:
        print(redact.redact_text(repr(flow.inspect())))
    path = _save(flow)
    print(f"Saved {cred.label!r} to {path}")
    return 0
