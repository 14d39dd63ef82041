"""The kit's own credential store under ``LANELAB_HOME``: one JSON file per label.

Files have mode 0600 (the directory 0700) and are written atomically (temp file + ``os.replace``), so a crash never
leaves half a token behind. Credentials other clients keep are read by :mod:`lanelab.auth.importers` and never
written here or back.

A login code and a refresh token are single-use: once the token endpoint answers, the new tokens exist only in
memory until they are saved. So whoever spends one calls :meth:`CredentialStore.check_writable` first (a full or
read-only folder is then refused before anything is sent), and a save that still fails raises
:class:`StoreNotWritable`, a clear error the caller turns into "kept in memory; fix the folder and save again".
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lanelab import errors
from lanelab.auth.credential import LABEL_RE, MODES, Credential, validate_label
from lanelab.errors import NotFound, ServiceError, StateError

__all__ = ["DIR_MODE", "FILE_MODE", "CorruptCredential", "CredentialNotFound", "CredentialStore", "StoreNotWritable"]

FILE_MODE = 0o600
DIR_MODE = 0o700
#: The probe :meth:`CredentialStore.check_writable` writes: about twice a saved credential's size.
PROBE_NAME = ".write-check"
PROBE_BYTES = 4096


class CredentialNotFound(NotFound):
    """No saved or importable credential has this label."""


class CorruptCredential(StateError):
    """A file in the kit's store cannot be read back."""


class StoreNotWritable(ServiceError):
    """The store's folder cannot be written now (disk full, read-only, no permission). Also an ``OSError``."""

    hint = ("Free some space or make the folder writable (or point LANELAB_HOME at a writable folder), "
            "then try again.")

    def __init__(self, message: str, hint: str | None = None, *, folder: Path | None = None, reason: str = ""):
        super().__init__(message, hint)
        self.folder = folder
        self.reason = reason


def describe_os_error(exc: OSError) -> str:
    """An ``OSError`` in a few words without its file name: ``No space left on device (ENOSPC)``."""
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or type(exc).__name__
    return f"{text} ({name})" if name else text


_OPTIONAL_TEXT = ("refresh_token", "account_uuid", "email", "organization_uuid", "organization_name",
                  "subscription_type", "rate_limit_tier", "source", "issuer")


def _check_shape(data: Any) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``data`` is a stored credential (a hand-edited file may be anything)."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise TypeError("no access_token")
    for key in ("access_token", "refresh_token"):
        if data.get(key) is not None:
            errors.check_token_shape(data[key], key, error=ValueError)  # never echoes the value
    for key in _OPTIONAL_TEXT:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise TypeError(f"{key} is not text")
    if data.get("mode") is not None and data["mode"] not in MODES:
        raise ValueError("mode is neither sim nor live")
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
        """The file for ``label``. Raises :class:`~lanelab.auth.credential.InvalidLabel` for an unusable label."""
        return self.dir / f"{validate_label(label)}.json"

    def _write(self, target: Path, data: bytes) -> None:
        """Write ``data`` to ``target`` atomically with mode 0600 (temp file, fsync, rename); ``OSError`` on failure,
        with the temp file removed and any previous ``target`` intact."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, DIR_MODE)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=self.dir)
        try:
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def check_writable(self) -> None:
        """Make sure a credential can be saved right now: create the folder if needed, then write, sync, rename and
        remove a small probe file, the way :meth:`save` writes. Call it before spending a single-use code or
        refresh token.

        Raises :class:`StoreNotWritable` (the folder is full, read-only or not ours); nothing is left behind.
        """
        probe = self.dir / PROBE_NAME
        try:
            self._write(probe, b"\0" * PROBE_BYTES)
            probe.unlink()
        except OSError as exc:
            reason = describe_os_error(exc)
            raise StoreNotWritable(
                f"The credential store {self.dir} cannot be written ({reason}); nothing was sent, so no login code "
                "or refresh token was spent.", folder=self.dir, reason=reason) from None

    def save(self, cred: Credential, label: str | None = None) -> Path:
        """Write ``cred`` (relabelled to ``label`` if given) atomically with mode 0600; returns the file's path.

        Raises :class:`~lanelab.auth.credential.InvalidLabel` for an unusable label, ``InputError`` for a token that
        cannot go into a header (:func:`lanelab.errors.check_token_shape`; nothing is written) and :class:`StoreNotWritable`
        (an ``OSError`` too) when the file system refuses: the previous file, if any, is then left intact, and
        ``cred`` is unchanged but for its label.
        """
        if label is not None:
            cred.label = label
        target = self.path(cred.label)
        errors.check_token_shape(cred.access_token, f"access token of {cred.label!r}")
        if cred.refresh_token is not None:
            errors.check_token_shape(cred.refresh_token, f"refresh token of {cred.label!r}")
        data = json.dumps(cred.to_dict(), indent=2, sort_keys=True).encode("utf-8")
        try:
            self._write(target, data)
        except OSError as exc:
            reason = describe_os_error(exc)
            raise StoreNotWritable(f"Could not save the credential {cred.label!r} in {self.dir} ({reason}).",
                                   folder=self.dir, reason=reason) from None
        return target

    def load(self, label: str) -> Credential:
        """The saved credential called ``label``.

        Raises :class:`CredentialNotFound` (naming the saved labels) when there is none, :class:`CorruptCredential`
        when its file cannot be read back, and ``InvalidLabel`` for an unusable label.
        """
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
        """The saved labels, sorted (files whose name is not a label are ignored)."""
        if not self.dir.is_dir():
            return []
        return sorted(p.stem for p in self.dir.glob("*.json") if LABEL_RE.match(p.stem))

    def all(self) -> list[Credential]:
        """Every readable saved credential (unreadable files are skipped; ``creds`` reports them)."""
        out = []
        for label in self.labels():
            try:
                out.append(self.load(label))
            except CorruptCredential:
                continue
        return out
