"""The kit's own credentials: the ``Credential`` record and the store under ``LANELAB_HOME``.

One JSON file per label, mode 0600, written atomically (temp file + ``os.replace``) so a crash never leaves half a
token behind. Credentials other clients keep are read by :mod:`lanelab.auth.importers` and never written back.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lanelab import redact
from lanelab.config import Settings
from lanelab.errors import InputError, NotFound, StateError

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILE_MODE = 0o600
DIR_MODE = 0o700


class InvalidLabel(InputError):
    hint = "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. sim-pkce)."


class CredentialNotFound(NotFound):
    """No saved or importable credential has this label."""


class CorruptCredential(StateError):
    """A file in the kit's store cannot be read back."""


def validate_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL_RE.match(label) or ".." in label:
        raise InvalidLabel(f"{str(label)[:40]!r} is not a valid credential label.")
    return label


def _mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    user, _, domain = email.partition("@")
    return f"{user[:1]}…@{domain}"


@dataclass
class Credential:
    """An OAuth credential (or a token of another kind) and what is known about it. ``repr`` masks every secret."""

    label: str
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    account_uuid: str | None = None
    email: str | None = None
    organization_uuid: str | None = None
    organization_name: str | None = None
    subscription_type: str | None = None
    rate_limit_tier: str | None = None
    source: str = "lanelab:pkce"
    imported: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scopes = tuple(self.scopes or ())
        redact.register_secret(self.access_token)
        redact.register_secret(self.refresh_token)

    # -- time ---------------------------------------------------------------------------------------------------
    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired); None when unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def is_expired(self, now: float | None = None) -> bool:
        left = self.expires_in(now)
        return left is not None and left <= 0

    # -- display ------------------------------------------------------------------------------------------------
    def masked(self) -> dict[str, Any]:
        """Every field, with secrets masked and the email shortened: safe to print, store in a report or share."""
        d = asdict(self)
        d["access_token"] = redact.mask(self.access_token)
        d["refresh_token"] = redact.mask(self.refresh_token) if self.refresh_token else None
        d["email"] = _mask_email(self.email)
        d["scopes"] = list(self.scopes)
        d["extra"] = redact.redact_obj(self.extra)
        return d

    def __repr__(self) -> str:
        left = self.expires_in()
        expiry = "unknown expiry" if left is None else (f"expires in {left / 3600:.1f} h" if left > 0 else "EXPIRED")
        refresh = redact.mask(self.refresh_token) if self.refresh_token else None
        # label, scopes and source come from files other clients write: redact them too
        return redact.redact_text(
            f"Credential(label={self.label!r}, access_token={redact.mask(self.access_token)}, "
            f"refresh_token={refresh}, {expiry}, scopes={' '.join(self.scopes) or '-'}, "
            f"source={self.source!r}, imported={self.imported})")

    __str__ = __repr__

    # -- persistence --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything, secrets included: only :class:`CredentialStore` writes this, to a 0600 file."""
        d = asdict(self)
        d["scopes"] = list(self.scopes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Credential:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_OPTIONAL_TEXT = ("refresh_token", "account_uuid", "email", "organization_uuid", "organization_name",
                  "subscription_type", "rate_limit_tier", "source")


def _check_shape(data: Any) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``data`` is a stored credential (a hand-edited file may be anything)."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise TypeError("no access_token")
    for key in _OPTIONAL_TEXT:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise TypeError(f"{key} is not text")
    expires = data.get("expires_at")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))
                                or not -1e15 < expires < 1e15):
        raise ValueError("expires_at is not a time")
    scopes = data.get("scopes")
    if scopes is not None and not (isinstance(scopes, list) and all(isinstance(x, str) for x in scopes)):
        raise TypeError("scopes is not a list of text")
    if not isinstance(data.get("imported", False), bool) or not isinstance(data.get("extra", {}), dict):
        raise TypeError("imported or extra has the wrong type")


class CredentialStore:
    """The kit's own credentials under ``home/credentials/<label>.json``."""

    def __init__(self, home: Path | str):
        self.home = Path(home)
        self.dir = self.home / "credentials"

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.dir)!r})"

    def path(self, label: str) -> Path:
        return self.dir / f"{validate_label(label)}.json"

    def save(self, cred: Credential, label: str | None = None) -> Path:
        """Write ``cred`` (under ``label`` if given) atomically with mode 0600; returns the file's path."""
        if label is not None:
            cred.label = label
        target = self.path(cred.label)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, DIR_MODE)
        fd, tmp = tempfile.mkstemp(prefix=f".{cred.label}.", suffix=".tmp", dir=self.dir)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(cred.to_dict(), fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def load(self, label: str) -> Credential:
        path = self.path(label)
        if not path.exists():
            known = ", ".join(self.labels()) or "none yet"
            raise CredentialNotFound(
                f"No saved credential labelled {label!r} in {self.dir} (saved: {known}).",
                "Run 'python -m lanelab login --label LABEL' or pick one from 'python -m lanelab creds'.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            _check_shape(data)
            data["label"] = label
            return Credential.from_dict(data)
        except (ValueError, TypeError, RecursionError, OSError) as exc:
            raise CorruptCredential(
                f"The saved credential file {path} cannot be read ({type(exc).__name__}).",
                f"Delete it and log in again: python -m lanelab login --label {label}.") from None

    def labels(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if LABEL_RE.match(p.stem))

    def delete(self, label: str) -> bool:
        path = self.path(label)
        if path.exists():
            path.unlink()
            return True
        return False

    def all(self) -> list[Credential]:
        """Every readable saved credential (unreadable files are skipped; ``creds`` reports them)."""
        out = []
        for label in self.labels():
            try:
                out.append(self.load(label))
            except CorruptCredential:
                continue
        return out


def resolve_credential(label: str, settings: Settings | None = None, *, user_home: Path | None = None,
                       environ: Mapping[str, str] | None = None) -> Credential:
    """The credential called ``label``: the kit's store first, then the read-only importers."""
    from lanelab.auth import importers  # importers build Credentials, so import lazily

    settings = settings or Settings.from_env()
    store = CredentialStore(settings.home)
    if LABEL_RE.match(label) and store.path(label).exists():
        return store.load(label)
    found = importers.discover(user_home=user_home, environ=environ)
    for cred in found.credentials:
        if cred.label == label:
            return cred
    known = [*store.labels(), *(c.label for c in found.credentials)]
    raise CredentialNotFound(
        f"No credential labelled {label!r} (available: {', '.join(known) or 'none'}).",
        "Run 'python -m lanelab creds' to list them, or 'python -m lanelab login' to make one.")


def resolve_token(label: str, settings: Settings | None = None, *, user_home: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> str:
    """The access token for ``label`` (see :func:`resolve_credential`)."""
    return resolve_credential(label, settings, user_home=user_home, environ=environ).access_token
