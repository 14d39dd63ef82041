"""PKCE (RFC 7636) for the authorization-code flow: a verifier, its S256 challenge and a separate random ``state``.

The verifier proves at the token endpoint that whoever exchanges the code is whoever started the flow; ``state`` lets
the kit reject a forged callback. Some peers reuse the verifier as ``state`` (references/protocol.md §1.1), which leaks
the verifier into the browser; the kit never does.

Both sides of the flow use this one implementation: the client (``lanelab.auth.oauth``) makes the material, the
embedded simulator checks it (:func:`verify`). Nothing here registers a secret: whoever holds the verifier registers
it with its own redactor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from lanelab import redact

#: RFC 7636 §4.1: a verifier is 43 to 128 characters, i.e. 32 to 96 random bytes in base64url.
MIN_BYTES = 32
MAX_BYTES = 96
METHOD = "S256"

__all__ = ["MAX_BYTES", "METHOD", "MIN_BYTES", "PKCE", "b64url", "challenge_for", "generate", "make_state",
           "make_verifier", "verify"]


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7636 appendix A)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_verifier(nbytes: int = MIN_BYTES) -> str:
    """A fresh code verifier from the OS's cryptographic source."""
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise ValueError(f"A PKCE verifier needs {MIN_BYTES} to {MAX_BYTES} random bytes (RFC 7636 §4.1), not {nbytes}.")
    return b64url(secrets.token_bytes(nbytes))


def challenge_for(verifier: str) -> str:
    """The S256 challenge: base64url(SHA-256(ASCII(verifier))).

    A verifier is ASCII by definition; any other text (a token endpoint cannot choose what it is sent) is hashed as
    UTF-8 rather than refused, so the function never raises.
    """
    return b64url(hashlib.sha256(verifier.encode("utf-8")).digest())


def verify(verifier: str, challenge: str) -> bool:
    """True when ``verifier`` is non-empty and its S256 challenge is ``challenge`` (compared in constant time)."""
    return bool(verifier) and hmac.compare_digest(challenge_for(verifier).encode(), challenge.encode("utf-8"))


def make_state(nbytes: int = 32) -> str:
    """A fresh random ``state``, independent of the verifier."""
    return b64url(secrets.token_bytes(nbytes))


@dataclass(frozen=True)
class PKCE:
    """One flow's PKCE material. The verifier is secret; ``repr`` masks it."""

    verifier: str
    challenge: str
    state: str
    method: str = METHOD

    def __repr__(self) -> str:
        return (f"PKCE(verifier={redact.mask(self.verifier)}, challenge={self.challenge}, "
                f"state={self.state}, method={self.method})")


def generate(nbytes: int = MIN_BYTES) -> PKCE:
    """New verifier, challenge and state. The verifier is secret: the caller registers it with its redactor (``state``
    is public: it travels in the authorize URL the user opens). Raises ``ValueError`` for a length outside RFC 7636."""
    verifier = make_verifier(nbytes)
    state = make_state()
    while state == verifier:  # astronomically unlikely, but the rule is "never the verifier"
        state = make_state()
    return PKCE(verifier=verifier, challenge=challenge_for(verifier), state=state)
