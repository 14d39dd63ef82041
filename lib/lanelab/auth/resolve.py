"""Finding a credential by label: the kit's own store first, then the read-only importers.

This is the one place that combines :mod:`lanelab.auth.store` and :mod:`lanelab.auth.importers`; the ``creds``
listing (:func:`lanelab.auth.introspect.credentials_table`) and every lookup by label go through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lanelab.auth import importers
from lanelab.auth.credential import LABEL_RE, Credential, validate_label
from lanelab.auth.store import CorruptCredential, CredentialNotFound, CredentialStore
from lanelab.config import Settings

__all__ = ["Available", "available", "resolve_credential", "resolve_token"]


@dataclass
class Available:
    """Every credential the kit can use right now, and the files it could not read (messages, no secrets)."""

    saved: list[Credential] = field(default_factory=list)
    imported: list[Credential] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def available(settings: Settings, user_home: Path | None = None,
              environ: Mapping[str, str] | None = None) -> Available:
    """The saved credentials (sorted by label), then the importable ones, plus the problems met. Reads only.

    Never raises for a damaged file: a corrupt saved file or another client's unreadable file becomes a line in
    ``problems``. ``user_home`` and ``environ`` default to the user's home and ``os.environ``.
    """
    store = CredentialStore(settings.home)
    out = Available()
    for label in store.labels():
        try:
            out.saved.append(store.load(label))
        except CorruptCredential as exc:
            out.problems.append(str(exc))
    found = importers.discover(user_home=user_home, environ=environ)
    out.imported = list(found.credentials)
    out.problems += [str(p) for p in found.problems]
    return out


def resolve_credential(label: str, settings: Settings | None = None, *, user_home: Path | None = None,
                       environ: Mapping[str, str] | None = None) -> Credential:
    """The credential called ``label``: the kit's store first, then the read-only importers.

    ``settings`` defaults to :meth:`Settings.from_env`. Raises :class:`~lanelab.auth.store.CredentialNotFound`
    (listing the labels that exist) when neither has it,
    :class:`~lanelab.auth.store.CorruptCredential` when the saved file cannot be read back, and
    :class:`~lanelab.auth.credential.InvalidLabel` for a label that is no text, or a token given in its place.
    """
    validate_label(label)  # text, and no token pasted in its place (refused unquoted)
    settings = settings or Settings.from_env()
    store = CredentialStore(settings.home)
    if LABEL_RE.match(label) and store.path(label).exists():
        return store.load(label)
    found = importers.discover(user_home=user_home, environ=environ)
    for cred in found.credentials:
        if cred.label == label:
            return cred
    known = [*store.labels(), *found.labels()]
    raise CredentialNotFound(
        f"No credential labelled {label!r} (available: {', '.join(known) or 'none'}).",
        "Run 'python -m lanelab creds' to list them, or 'python -m lanelab login' to make one.")


def resolve_token(label: str, settings: Settings | None = None, *, user_home: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> str:
    """The access token of :func:`resolve_credential`'s credential (same defaults, same errors)."""
    return resolve_credential(label, settings, user_home=user_home, environ=environ).access_token
