"""``python -m lanelab creds``: the saved and the importable credentials, masked, with expiry, source and issuer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lanelab import redact
from lanelab.auth.credential import Credential, validate_label
from lanelab.auth.introspect import credentials_table
from lanelab.auth.issuer import default_label, login_command, origin
from lanelab.auth.store import CredentialStore
from lanelab.config import Settings, is_loopback_url
from lanelab.errors import InputError, Refused

NAME = "creds"
HELP = "list saved and importable credentials (masked), with kind, expiry, source and issuer"
DESCRIPTION = (
    "Lists the kit's own credentials (LANELAB_HOME) and those it can import read-only: ~/.claude/.credentials.json, "
    "~/.hermes/auth.json, ~/.hermes/.anthropic_oauth.json, CLAUDE_CODE_OAUTH_TOKEN and ANTHROPIC_TOKEN. Tokens are "
    "masked; nothing is written or refreshed. The issuer column says who issued each one (the simulator at its "
    "address, or Anthropic in live mode; imported ones count as live), which decides where it may be sent. "
    "With --mint (sim mode, LANELAB_BASE_URL set to a running 'python -m lanelab sim'): mint a simulator credential, "
    "save it under --label (default sim-pkce) and, with --print, print the token itself for another client (the "
    "official SDK's auth_token, ANTHROPIC_AUTH_TOKEN): it is valid only for that simulator while it runs."
)
MINT_KINDS = ("pkce", "setup-token", "api_key")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-home", type=Path, help="where to look for other clients' files (default: your home)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--mint", action="store_true",
                        help="sim mode: mint a credential from the simulator at LANELAB_BASE_URL and save it")
    parser.add_argument("--label", default=None, help="with --mint: the label to save it under (default: sim-pkce)")
    parser.add_argument("--kind", default="pkce", choices=MINT_KINDS,
                        help="with --mint: pkce (default; Bearer token with refresh), setup-token or api_key")
    parser.add_argument("--print", dest="print_token", action="store_true",
                        help="with --mint: print only the simulator token on standard output, for another client "
                        "(e.g. export ANTHROPIC_AUTH_TOKEN=$(python -m lanelab creds --mint --print))")


def mint(settings: Settings, label: str, kind: str = "pkce") -> Credential:
    """Mint a simulator credential from ``settings.base_url`` and save it under ``label`` (mode sim, issued by that
    simulator, so the kit sends it only there). Returns the credential.

    Raises :class:`~lanelab.errors.Refused` in live mode (the kit never makes a live credential),
    :class:`~lanelab.errors.InputError` without a loopback ``LANELAB_BASE_URL``, and
    :class:`~lanelab.matrix.errors.RunnerError` when the simulator cannot be reached or refuses.
    """
    from lanelab.matrix.sim_client import sim_mint

    if settings.mode != "sim":
        raise Refused("--mint makes simulator credentials only; live credentials come from logging in.",
                      f"Log in: {login_command('live')}")
    base = settings.base_url
    if not base or not is_loopback_url(base):
        raise InputError("--mint needs LANELAB_BASE_URL set to a running simulator.",
                         "Start one with 'python -m lanelab sim' (it prints its URL first), then "
                         "LANELAB_BASE_URL=http://127.0.0.1:PORT python -m lanelab creds --mint.")
    minted = sim_mint(base, kind=kind, source=f"lanelab:mint:{kind}")
    expires_in = minted.get("expires_in")
    cred = Credential(label=validate_label(label), access_token=minted["access_token"],
                      refresh_token=minted.get("refresh_token"),
                      expires_at=time.time() + expires_in if isinstance(expires_in, (int, float)) else None,
                      scopes=tuple(minted.get("scopes") or ()), source=f"lanelab:mint:{kind}", mode="sim",
                      issuer=origin(base))
    CredentialStore(settings.home).save(cred)
    return cred


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON); returns 0. Raises :class:`~lanelab.errors.ConfigError` for bad LANELAB_* settings;
    a damaged credential file is listed as a problem, not raised."""
    settings = Settings.from_env()
    if args.mint and args.json:
        raise InputError("--json lists the credentials; it does not go with --mint.",
                         "Mint with --mint (add --print for the token alone), or list with --json.")
    if args.mint:
        label = validate_label(args.label if args.label is not None else default_label("sim"))  # "" is no label
        replaced = label in CredentialStore(settings.home).labels()
        cred = mint(settings, label, args.kind)
        where = f"Saved simulator credential {cred.label!r} ({redact.mask(cred.access_token)}), issued by " \
                f"{cred.issuer}; valid only for that simulator while it runs." + (
                    f" It replaces the credential saved as {cred.label!r} before." if replaced else "")
        if args.print_token:
            print(where, file=sys.stderr)
            print(cred.access_token)  # asked for by --print: a simulator token, for another client
        else:
            print(where)
            print("For the official SDK: anthropic.Anthropic(base_url=LANELAB_BASE_URL, auth_token=<token>, "
                  "default_headers={'anthropic-beta': 'oauth-2025-04-20'}); get the token with --print, or in "
                  f"Python with lanelab.auth.resolve.resolve_token({cred.label!r}).")
        return 0
    if args.label is not None or args.print_token or args.kind != "pkce":
        raise InputError("--label, --kind and --print go with --mint.", "Add --mint, or leave them out to list.")
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
