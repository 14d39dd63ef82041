"""The ``Credential`` record: a token, what is known about it, and who issued it. ``repr`` masks every secret.

A credential comes from the kit's own login (:mod:`lanelab.auth.oauth`), from the kit's store
(:mod:`lanelab.auth.store`) or from another client's file (:mod:`lanelab.auth.importers`). Where it may be sent is
decided by :mod:`lanelab.auth.issuer` from the ``mode`` and ``issuer`` recorded here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lanelab import redact
from lanelab.errors import InputError

__all__ = ["LABEL_RE", "MODES", "Credential", "InvalidLabel", "validate_label"]

#: What a label may be: it is also a file name in the store, so no path separators and no leading dot.
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Who can issue a credential: the embedded simulator (``sim``) or Anthropic's OAuth server (``live``).
MODES = ("sim", "live")


class InvalidLabel(InputError):
    """A credential label that cannot be used (it names a file in the store)."""

    hint = "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. sim-pkce)."


def validate_label(label: str) -> str:
    """Return ``label`` unchanged when it is a usable credential label.

    Raises :class:`InvalidLabel` (an ``InputError``) otherwise. A value that looks like a token (an Anthropic key
    prefix, or longer than any label) is a secret pasted where a label goes: it is registered as a secret and never
    quoted; the message shows at most 40 characters of anything else.
    """
    if not isinstance(label, str):
        raise InvalidLabel(f"A credential label is text; found {type(label).__name__}.")
    if label.startswith("sk-ant-") or len(label) > 64:
        redact.register_secret(label)
        raise InvalidLabel("That looks like a token, not a credential label; the kit takes a token only through its "
                           "store, so that it reaches nothing but the issuer's hosts.",
                           "Save it first (notebook 01, or python -m lanelab creds --help), then pass its label "
                           "(e.g. sim-pkce).")
    if not LABEL_RE.match(label) or ".." in label:
        raise InvalidLabel(f"{label[:40]!r} is not a valid credential label.")
    return label


@dataclass
class Credential:
    """An OAuth credential (or a token of another kind) and what is known about it.

    ``mode`` and ``issuer`` say who issued it: ``("sim", "http://127.0.0.1:PORT")`` for the simulator at that base
    URL, ``("live", "https://platform.claude.com")`` for Anthropic's token host. Both are ``None`` for a credential
    saved by an older lanelab (unknown issuer). An imported credential counts as live whatever these say.
    """

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
    mode: str | None = None
    issuer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scopes = tuple(self.scopes or ())
        redact.register_secret(self.access_token)
        redact.register_secret(self.refresh_token)

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired); None when unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    # -- issuer ----------------------------------------------------------------------------------------------------
    @property
    def issuer_mode(self) -> str | None:
        """``"sim"``, ``"live"`` or None (not recorded). An imported credential is live: another client got it from
        Anthropic, and it must never go anywhere else."""
        return "live" if self.imported else (self.mode if self.mode in MODES else None)

    @property
    def issued_by(self) -> str:
        """Who issued it, in a few words for tables: ``sim http://127.0.0.1:5555``, ``live https://platform.claude.com``,
        ``live (imported from claude_code)`` or ``unknown``."""
        if self.imported:
            return f"live (imported from {self.source})"
        if self.issuer_mode is None:
            return "unknown"
        return f"{self.issuer_mode} {self.issuer or '(host not recorded)'}"

    # -- display ----------------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        left = self.expires_in()
        expiry = "unknown expiry" if left is None else (f"expires in {left / 3600:.1f} h" if left > 0 else "EXPIRED")
        refresh = redact.mask(self.refresh_token) if self.refresh_token else None
        # label, scopes and source come from files other clients write: redact them too
        return redact.redact_text(
            f"Credential(label={self.label!r}, access_token={redact.mask(self.access_token)}, "
            f"refresh_token={refresh}, {expiry}, scopes={' '.join(self.scopes) or '-'}, "
            f"source={self.source!r}, imported={self.imported}, issued by {self.issued_by})")

    __str__ = __repr__

    # -- persistence ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything, secrets included: only :class:`~lanelab.auth.store.CredentialStore` writes this, to a 0600
        file."""
        d = asdict(self)
        d["scopes"] = list(self.scopes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Credential:
        """A credential from :meth:`to_dict`'s output; unknown keys are ignored, missing ones take their defaults
        (so files written before ``mode``/``issuer`` existed load with an unknown issuer)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
