"""Who issued a credential, and where it may therefore be sent.

A credential reaches only its issuer's API. Every credential the kit makes records its ``mode`` and ``issuer``
(:func:`issued_by` derives both from the token URL that answered), and one check, :func:`check_destination`, decides
whether it may go to a base URL:

- a simulator credential only to the simulator that issued it (same scheme, host and port: another simulator, or
  one restarted since, does not know its tokens, and a real host must never see them);
- a live credential, and any credential imported from another client, only to Anthropic's API host;
- a credential whose issuer is not recorded (saved by an older lanelab) nowhere, until the user logs in again.

Each refusal says which credential to use instead, or how to get one. :func:`default_label` is the label each mode
uses when none is given (the ``login`` and ``creds`` commands and notebook 01 share it).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from lanelab.auth.credential import MODES, Credential
from lanelab.config import LIVE_API_BASE, is_loopback
from lanelab.errors import InputError, Refused

__all__ = ["API_HOSTS", "DEFAULT_LABELS", "WrongIssuer", "check_destination", "default_label", "issued_by",
           "login_command", "origin"]

#: The label a credential gets, and is looked up by, when none is given: one per mode.
DEFAULT_LABELS = {"sim": "sim-pkce", "live": "live-pkce"}
#: The hosts a live credential may be sent to: Anthropic's API (inference and the profile/usage probes).
API_HOSTS = frozenset({str(urlsplit(LIVE_API_BASE).hostname)})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class WrongIssuer(Refused):
    """A credential would be sent to a base URL other than its issuer's API."""


def default_label(mode: str) -> str:
    """The default credential label for ``mode``: ``sim-pkce`` in sim mode, ``live-pkce`` in live mode.

    Raises :class:`~lanelab.errors.InputError` for a mode that is neither.
    """
    if mode not in DEFAULT_LABELS:
        raise InputError(f"Unknown mode {mode!r}; the modes are {', '.join(MODES)}.",
                         "Set LANELAB_MODE=sim (the default) or LANELAB_MODE=live.")
    return DEFAULT_LABELS[mode]


def origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-case and without a default port; None for anything else.

    Two base URLs name the same server exactly when their origins are equal (the path does not matter: a credential
    goes to a server, not to a path).
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def issued_by(token_url: str) -> tuple[str, str]:
    """``(mode, issuer)`` for a credential the token endpoint at ``token_url`` issued.

    A loopback token endpoint is the simulator: ``("sim", its base URL)``. Anything else is Anthropic's OAuth
    server: ``("live", its origin)``, e.g. ``("live", "https://platform.claude.com")``. Decided by the URL's host
    name, never by where it resolves. Raises :class:`~lanelab.errors.InputError` when ``token_url`` is not an
    http(s) URL.
    """
    where = origin(token_url)
    if where is None:
        raise InputError(f"{token_url!r} is not an http(s) URL, so it cannot have issued a credential.")
    return ("sim" if is_loopback(urlsplit(where).hostname) else "live"), where


def login_command(mode: str, base_url: str | None = None) -> str:
    """The command that logs in for ``mode`` under its default label (with ``base_url`` for a simulator)."""
    if mode == "live":
        return f"LANELAB_MODE=live LANELAB_LIVE_OPT_IN=1 python -m lanelab login --label {default_label('live')}"
    prefix = f"LANELAB_BASE_URL={base_url} " if base_url else ""
    return f"{prefix}python -m lanelab login --auto --label {default_label('sim')}"


def _fits(cred: Credential, dest: str) -> bool:
    """Whether ``cred`` may go to the origin ``dest`` (the rule :func:`check_destination` explains)."""
    mode = cred.issuer_mode
    if mode == "sim":
        return is_loopback(urlsplit(dest).hostname) and origin(cred.issuer) == dest
    if mode == "live":
        parts = urlsplit(dest)
        return parts.scheme == "https" and parts.hostname in API_HOSTS
    return False


def _issuer_words(cred: Credential) -> str:
    if cred.imported:
        return f"was imported from another client ({cred.source}) and counts as a live credential"
    if cred.issuer_mode == "sim":
        return f"was issued by the simulator at {cred.issuer}"
    return f"was issued by Anthropic ({cred.issuer or 'host not recorded'}) in live mode"


def check_destination(cred: Credential, base_url: str, *, others: Iterable[Credential] = ()) -> Credential:
    """Return ``cred`` when it may be sent to ``base_url``; otherwise raise :class:`WrongIssuer`.

    The rule (see the module docstring): a sim credential only to the simulator whose base URL issued it; a live or
    imported credential only to https on Anthropic's API host; an unknown issuer nowhere. The message names the
    credential, its issuer and the destination, and the hint names which of ``others`` (e.g. the store's
    credentials) may go there instead, or the command that logs in for that destination. It never holds a secret.
    """
    dest = origin(base_url)
    label = cred.label
    if dest is None:
        raise WrongIssuer(f"{str(base_url)[:80]!r} is not an http(s) base URL; {label!r} is not sent there.",
                          "Check LANELAB_BASE_URL.")
    if _fits(cred, dest):
        return cred
    to_sim = is_loopback(urlsplit(dest).hostname)
    host = urlsplit(dest).hostname
    usable = sorted({o.label for o in others if o.label != label and _fits(o, dest)})
    get_one = login_command("sim", dest) if to_sim else login_command("live")
    if usable:
        hint = f"Use {' or '.join(repr(u) for u in usable[:3])} there instead, or log in: {get_one}"
    elif to_sim:
        hint = f"Log in to that simulator: {get_one}"
    else:
        hint = f"Log in for live mode: {get_one}"
    mode = cred.issuer_mode
    if mode is None or (mode == "sim" and origin(cred.issuer) is None):
        raise WrongIssuer(f"{label!r} does not record who issued it (it was saved by an earlier lanelab), so it "
                          f"cannot be sent to {dest}.", hint)
    if mode == "sim" and to_sim:
        raise WrongIssuer(f"{label!r} {_issuer_words(cred)}; it cannot be sent to {dest}: a simulator accepts only "
                          "the tokens it issued itself (another one, or one restarted since, does not know them).",
                          hint)
    if mode == "sim":
        raise WrongIssuer(f"{label!r} {_issuer_words(cred)}; it cannot be sent to {host}.", hint)
    if to_sim:
        raise WrongIssuer(f"{label!r} {_issuer_words(cred)}; it cannot be sent to {dest}, which is not Anthropic's "
                          "API.", hint if usable else f"Use a simulator credential there: {get_one}")
    raise WrongIssuer(f"{label!r} {_issuer_words(cred)}; it is sent only to Anthropic's API "
                      f"(https://{', '.join(sorted(API_HOSTS))}), not to {dest if host in API_HOSTS else host}.",
                      f"Use the base URL {LIVE_API_BASE} (the default in live mode: unset LANELAB_BASE_URL).")
