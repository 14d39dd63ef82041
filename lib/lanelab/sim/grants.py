"""The credentials the simulator issues: authorization codes, access tokens, single-use rotating refresh tokens, and
tokens minted directly for tests and demos.

Every secret it hands out or is shown (a code, a verifier, a refresh token) is registered with the simulator's own
:class:`~lanelab.redact.Redactor`, never with the client's: the simulator is the other party of the flow.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from lanelab import pkce
from lanelab.redact import Redactor, mask

__all__ = ["ACCESS_TOKEN_TTL", "AUTH_CODE_TTL", "DEFAULT_SCOPES", "MINT_KINDS", "SETUP_TOKEN_SCOPES",
           "SETUP_TOKEN_TTL", "AuthCode", "Grants", "IssuedToken", "OAuthGrantError", "RefreshGrant"]

#: Access-token lifetime the real token endpoint reports (anomalyco/opencode#7410).
ACCESS_TOKEN_TTL = 28800
#: A setup-token lives about a year and carries only the inference scope (references/protocol.md §1.1, §1.2).
SETUP_TOKEN_TTL = 31_536_000
SETUP_TOKEN_SCOPES = ("user:inference",)
#: The legacy scope set most peers ask for (OCA, ROO, HER; references/protocol.md §1.1).
DEFAULT_SCOPES = ("org:create_api_key", "user:profile", "user:inference")
AUTH_CODE_TTL = 600
MINT_KINDS = ("pkce", "setup-token", "api_key")


@dataclass
class IssuedToken:
    """A credential the simulator handed out. ``kind`` is ``oauth`` or ``api_key``; ``grant`` says how it was made."""

    value: str
    kind: str
    grant: str
    scopes: tuple[str, ...]
    expires_at: float | None
    source: str | None
    revoked: bool = False

    def masked(self) -> dict[str, Any]:
        """The token as ``/_sim/account`` shows it: everything but the value, which is masked."""
        return {"token": mask(self.value), "kind": self.kind, "grant": self.grant, "scopes": list(self.scopes),
                "expires_at": self.expires_at, "source": self.source, "revoked": self.revoked}


@dataclass
class RefreshGrant:
    """A refresh token: single use; once rotated, presenting it again is ``invalid_grant``."""

    value: str
    scopes: tuple[str, ...]
    source: str | None
    used: bool = False


@dataclass
class AuthCode:
    """An authorization code waiting for its exchange, with what the exchange must prove."""

    code: str
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    state: str
    expires_at: float
    used: bool = False


class OAuthGrantError(Exception):
    """A token-endpoint failure, as an OAuth error code and a fixed description (no secret inside)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


class Grants:
    """Everything issued and not forgotten, plus the values planted for the next issues. Thread-safe."""

    def __init__(self, redactor: Redactor, lock: threading.RLock | None = None) -> None:
        self._redactor = redactor
        self._lock = lock or threading.RLock()
        self.tokens: dict[str, IssuedToken] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.codes: dict[str, AuthCode] = {}
        self._planted: list[tuple[str, str | None]] = []

    def __repr__(self) -> str:
        return f"<Grants tokens={len(self.tokens)} refresh={len(self.refresh)} codes={len(self.codes)}>"

    def clear(self) -> None:
        """Forget every token, refresh token, code and planted value."""
        with self._lock:
            for store in (self.tokens, self.refresh, self.codes):
                store.clear()
            self._planted.clear()

    def _secret(self, prefix: str) -> str:
        value = prefix + secrets.token_urlsafe(70)[:93]
        self._redactor.register_secret(value)
        return value

    # ---- issuing -------------------------------------------------------------------------------------------
    def mint(self, scopes: list[str] | tuple[str, ...] | None = None, kind: str = "pkce",
             source: str | None = None, expires_in: int | None = None) -> dict[str, Any]:
        """Issue a credential directly (tests, demos). ``kind`` ∈ pkce | setup-token | api_key; raises ``ValueError``
        for another kind. Returns the issued values (``access_token``, ``refresh_token``, ``scopes``…)."""
        if kind not in MINT_KINDS:
            raise ValueError(f"Unknown token kind {kind!r}; expected one of {', '.join(MINT_KINDS)}.")
        if kind == "api_key":
            value = self._secret("sk-ant-api03-")
            with self._lock:
                self.tokens[value] = IssuedToken(value, "api_key", kind, tuple(scopes or ()), None, source or kind)
            return {"kind": kind, "access_token": value, "refresh_token": None, "expires_in": None,
                    "expires_at": None, "scope": " ".join(scopes or ()), "scopes": list(scopes or ()),
                    "source": source or kind}
        default_scopes = SETUP_TOKEN_SCOPES if kind == "setup-token" else DEFAULT_SCOPES
        ttl = expires_in if expires_in is not None else (SETUP_TOKEN_TTL if kind == "setup-token" else ACCESS_TOKEN_TTL)
        return self._issue(tuple(scopes) if scopes is not None else default_scopes, kind, source or kind, ttl,
                           with_refresh=kind == "pkce")

    def plant(self, access: str, refresh: str | None = None) -> None:
        """Make the next OAuth issue hand out these values (the leak test passes a canary through the real flow)."""
        self._redactor.register_secret(access)
        self._redactor.register_secret(refresh)
        with self._lock:
            self._planted.append((access, refresh))

    def _issue(self, scopes: tuple[str, ...], grant: str, source: str | None, ttl: int,
               with_refresh: bool = True) -> dict[str, Any]:
        with self._lock:
            planted = self._planted.pop(0) if self._planted else None
        access = planted[0] if planted else self._secret("sk-ant-oat01-")
        refresh = (planted[1] if planted and planted[1] else self._secret("sk-ant-ort01-")) if with_refresh else None
        expires_at = time.time() + ttl
        with self._lock:
            self.tokens[access] = IssuedToken(access, "oauth", grant, scopes, expires_at, source)
            if refresh:
                self.refresh[refresh] = RefreshGrant(refresh, scopes, source)
        return {"kind": grant, "access_token": access, "refresh_token": refresh, "expires_in": ttl,
                "expires_at": expires_at, "scope": " ".join(scopes), "scopes": list(scopes), "source": source}

    def issued_secrets(self) -> list[str]:
        """Every secret still on record (tokens, refresh tokens, codes): the leak test searches for them."""
        with self._lock:
            return [*self.tokens, *self.refresh, *self.codes]

    # ---- presented credentials -----------------------------------------------------------------------------
    def expire(self, value: str) -> None:
        """Make an issued access token expired (tests of the expiry path); ``KeyError`` if it was never issued."""
        with self._lock:
            self.tokens[value].expires_at = time.time() - 1

    def lookup(self, value: str | None) -> IssuedToken | None:
        """The issued token with this value, or None."""
        with self._lock:
            return self.tokens.get(value) if value else None

    def describe(self, value: str | None) -> dict[str, Any]:
        """What the policy may know about a presented credential (the fields of ``features.TokenInfo``)."""
        if not value:
            return {"kind": "none", "valid": False, "expired": False, "scopes": (), "source": None}
        token = self.lookup(value)
        if token is None:
            if value.startswith(("sk-ant-oat", "sk-ant-ort")):
                kind = "oauth"
            elif value.startswith("sk-ant-api"):
                kind = "api_key"
            else:
                kind = "unknown"
            return {"kind": kind, "valid": False, "expired": False, "scopes": (), "source": None}
        expired = token.expires_at is not None and token.expires_at <= time.time()
        return {"kind": token.kind, "valid": not token.revoked, "expired": expired, "scopes": token.scopes,
                "source": token.source}

    # ---- the OAuth grants ----------------------------------------------------------------------------------
    def issue_code(self, client_id: str, redirect_uri: str, challenge: str, scopes: tuple[str, ...],
                   state: str) -> str:
        """A fresh single-use authorization code bound to what its exchange must match."""
        code = secrets.token_urlsafe(32)
        self._redactor.register_secret(code)
        with self._lock:
            self.codes[code] = AuthCode(code, client_id, redirect_uri, challenge, scopes, state,
                                        time.time() + AUTH_CODE_TTL)
        return code

    def redeem_code(self, code: str, verifier: str, redirect_uri: str, client_id: str) -> dict[str, Any]:
        """Exchange an authorization code (single use, PKCE-checked) for a token pair; :class:`OAuthGrantError`
        says why not."""
        self._redactor.register_secret(code)
        self._redactor.register_secret(verifier)
        with self._lock:
            grant = self.codes.get(code)
            if grant is None:
                raise OAuthGrantError("invalid_grant", "Invalid 'code' in request.")
            if grant.used:
                raise OAuthGrantError("invalid_grant", "Authorization code has already been used.")
            if grant.expires_at <= time.time():
                raise OAuthGrantError("invalid_grant", "Authorization code has expired.")
            if client_id != grant.client_id:
                raise OAuthGrantError("invalid_client", "client_id does not match the authorization request.")
            if redirect_uri != grant.redirect_uri:
                raise OAuthGrantError("invalid_grant", "Invalid 'redirect_uri' in request.")
            if not pkce.verify(verifier, grant.challenge):
                raise OAuthGrantError("invalid_grant", "Invalid 'code_verifier' in request.")
            grant.used = True
        return self._issue(grant.scopes, "pkce", "pkce", ACCESS_TOKEN_TTL)

    def rotate_refresh(self, refresh_token: str, scope: str | None = None) -> dict[str, Any]:
        """Single-use rotation: the presented refresh token dies, a new pair is born (:class:`OAuthGrantError` if
        it is unknown, used, or asks for a wider scope)."""
        self._redactor.register_secret(refresh_token)
        with self._lock:
            grant = self.refresh.get(refresh_token)
            if grant is None:
                raise OAuthGrantError("invalid_grant", "Invalid refresh token.")
            if grant.used:
                raise OAuthGrantError("invalid_grant", "Refresh token has already been used (tokens rotate).")
            scopes = grant.scopes
            if scope:
                asked = tuple(scope.split())
                if not set(asked) <= set(grant.scopes):
                    raise OAuthGrantError("invalid_scope", "Requested scope exceeds the scope originally granted.")
                scopes = asked
            grant.used = True
        return self._issue(scopes, "pkce", grant.source, ACCESS_TOKEN_TTL)
