"""The simulator's memory: one account, the credentials it has issued, and what each request did to it.

Every view the simulator offers (the unified response headers, ``/api/oauth/usage``, ``/api/oauth/profile`` and
``/_sim/account``) is computed here from the same numbers, so the views can never disagree with each other.
The plan-capacity and credit-rate constants below are knobs of the model, not facts about the real service.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lanelab import redact

#: Tokens it takes to fill each plan window (model knobs: small enough that a demo moves the needle).
FIVE_HOUR_CAPACITY_TOKENS = 1_000_000
SEVEN_DAY_CAPACITY_TOKENS = 10_000_000
#: Extra-usage cost in credits (minor currency units) per 1,000 tokens (model knob).
CREDITS_PER_KTOKENS = 1.5
#: Access-token lifetime the real token endpoint reports (anomalyco/opencode#7410).
ACCESS_TOKEN_TTL = 28800
#: A setup-token lives about a year and carries only the inference scope (references/protocol.md §1.1, §1.2).
SETUP_TOKEN_TTL = 31_536_000
SETUP_TOKEN_SCOPES = ("user:inference",)
#: The legacy scope set most peers ask for (OCA, ROO, HER; references/protocol.md §1.1).
DEFAULT_SCOPES = ("org:create_api_key", "user:profile", "user:inference")
AUTH_CODE_TTL = 600
#: The request log keeps at most this many entries (oldest dropped), so a long-running simulator stays small.
LOG_LIMIT = 10_000
MINT_KINDS = ("pkce", "setup-token", "api_key")

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def new_request_id() -> str:
    """A request id shaped like the real ones: ``req_011`` then 21 base62 characters."""
    return "req_011" + "".join(secrets.choice(_BASE62) for _ in range(21))


def new_message_id() -> str:
    return "msg_01" + "".join(secrets.choice(_BASE62) for _ in range(22))


def _secret(prefix: str) -> str:
    value = prefix + secrets.token_urlsafe(70)[:93]
    redact.register_secret(value)
    return value


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


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
        return {"token": redact.mask(self.value), "kind": self.kind, "grant": self.grant, "scopes": list(self.scopes),
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
    """A token-endpoint failure, as an OAuth error code and a description (no secret inside)."""

    def __init__(self, error: str, description: str):
        super().__init__(redact.redact_text(description))
        self.error = error
        self.description = redact.redact_text(description)


@dataclass
class Charge:
    """What one served request cost, for the request log and for tests."""

    lane: str
    tokens: int
    credits: float = 0.0


@dataclass
class SimState:
    """Everything the simulator remembers. All methods are thread-safe (the app runs in its own thread)."""

    account: dict[str, Any]
    policy_name: str = ""
    identity: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh: dict[str, RefreshGrant] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    family_utilization: dict[str, float] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._initial_account = copy.deepcopy(self.account)
        self._seq = 0
        self._planted: list[tuple[str, str | None]] = []
        if not self.identity:
            seed = uuid.uuid4()
            self.identity = {
                "account_uuid": str(uuid.uuid5(seed, "account")),
                "organization_uuid": str(uuid.uuid5(seed, "organization")),
                "email": "sim.user@example.com",
                "display_name": "Sim User",
                "organization_name": "Sim User's Organization",
                "created_at": _iso(self.window_start - 400 * 86400),
                "subscription_created_at": _iso(self.window_start - 90 * 86400),
            }

    def __repr__(self) -> str:
        return f"<SimState policy={self.policy_name!r} tokens={len(self.tokens)} requests={len(self.log)}>"

    # ---- account -------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.account)

    def update_account(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge a partial account (nested dicts merge too) into the live one."""
        with self._lock:
            self.account = _deep_merge(self.account, patch)
            return copy.deepcopy(self.account)

    def set_baseline(self) -> None:
        """Make the current account the one :meth:`reset` returns to."""
        with self._lock:
            self._initial_account = copy.deepcopy(self.account)

    def reset(self) -> None:
        """Back to the account the simulator started with; forget tokens, codes, the log and counters."""
        with self._lock:
            self.account = copy.deepcopy(self._initial_account)
            for store in (self.tokens, self.refresh, self.codes, self.counters, self.family_utilization):
                store.clear()
            self.log.clear()
            self.window_start = time.time()

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    # ---- credentials ---------------------------------------------------------------------------------------
    def mint_token(self, scopes: list[str] | tuple[str, ...] | None = None, kind: str = "pkce",
                   source: str | None = None, expires_in: int | None = None) -> dict[str, Any]:
        """Issue a credential directly (tests, demos). ``kind`` ∈ pkce | setup-token | api_key."""
        if kind not in MINT_KINDS:
            raise ValueError(f"Unknown token kind {kind!r}; expected one of {', '.join(MINT_KINDS)}.")
        if kind == "api_key":
            value = _secret("sk-ant-api03-")
            with self._lock:
                self.tokens[value] = IssuedToken(value, "api_key", kind, tuple(scopes or ()), None, source or kind)
            return {"kind": kind, "access_token": value, "refresh_token": None, "expires_in": None,
                    "expires_at": None, "scope": " ".join(scopes or ()), "scopes": list(scopes or ()),
                    "source": source or kind}
        default_scopes = SETUP_TOKEN_SCOPES if kind == "setup-token" else DEFAULT_SCOPES
        ttl = expires_in if expires_in is not None else (SETUP_TOKEN_TTL if kind == "setup-token" else ACCESS_TOKEN_TTL)
        return self._issue(tuple(scopes) if scopes is not None else default_scopes, kind, source or kind, ttl,
                           with_refresh=kind == "pkce")

    def issued_secrets(self) -> list[str]:
        """Every secret this simulator ever handed out (tokens, refresh tokens, codes): the leak test searches for them."""
        with self._lock:
            return [*self.tokens, *self.refresh, *self.codes]

    def plant(self, access: str, refresh: str | None = None) -> None:
        """Make the next OAuth issue hand out these values (the leak test passes a canary through the real flow)."""
        redact.register_secret(access)
        redact.register_secret(refresh)
        with self._lock:
            self._planted.append((access, refresh))

    def _issue(self, scopes: tuple[str, ...], grant: str, source: str | None, ttl: int,
               with_refresh: bool = True) -> dict[str, Any]:
        with self._lock:
            planted = self._planted.pop(0) if self._planted else None
        access = planted[0] if planted else _secret("sk-ant-oat01-")
        refresh = (planted[1] if planted and planted[1] else _secret("sk-ant-ort01-")) if with_refresh else None
        expires_at = time.time() + ttl
        with self._lock:
            self.tokens[access] = IssuedToken(access, "oauth", grant, scopes, expires_at, source)
            if refresh:
                self.refresh[refresh] = RefreshGrant(refresh, scopes, source)
        return {"kind": grant, "access_token": access, "refresh_token": refresh, "expires_in": ttl,
                "expires_at": expires_at, "scope": " ".join(scopes), "scopes": list(scopes), "source": source}

    def token_response(self, issued: dict[str, Any]) -> dict[str, Any]:
        """The token endpoint's success body for an issued pair."""
        body = {"token_type": "Bearer", "access_token": issued["access_token"], "expires_in": issued["expires_in"],
                "scope": issued["scope"],
                "account": {"uuid": self.identity["account_uuid"], "email_address": self.identity["email"]},
                "organization": {"uuid": self.identity["organization_uuid"],
                                 "name": self.identity["organization_name"]}}
        if issued.get("refresh_token"):
            body["refresh_token"] = issued["refresh_token"]
        return body

    def expire_token(self, value: str) -> None:
        """Make an issued access token expired (tests of the expiry path)."""
        with self._lock:
            self.tokens[value].expires_at = time.time() - 1

    def lookup(self, value: str | None) -> IssuedToken | None:
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

    def issue_code(self, client_id: str, redirect_uri: str, challenge: str, scopes: tuple[str, ...],
                   state: str) -> str:
        code = secrets.token_urlsafe(32)
        redact.register_secret(code)
        with self._lock:
            self.codes[code] = AuthCode(code, client_id, redirect_uri, challenge, scopes, state,
                                        time.time() + AUTH_CODE_TTL)
        return code

    def redeem_code(self, code: str, verifier: str, redirect_uri: str, client_id: str) -> dict[str, Any]:
        """Exchange an authorization code (single use, PKCE-checked) for a token pair."""
        redact.register_secret(code)
        redact.register_secret(verifier)
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
            if not verifier or pkce_challenge(verifier) != grant.challenge:
                raise OAuthGrantError("invalid_grant", "Invalid 'code_verifier' in request.")
            grant.used = True
        return self._issue(grant.scopes, "pkce", "pkce", ACCESS_TOKEN_TTL)

    def rotate_refresh(self, refresh_token: str, scope: str | None = None) -> dict[str, Any]:
        """Single-use rotation: the presented refresh token dies, a new pair is born."""
        redact.register_secret(refresh_token)
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

    # ---- billing -------------------------------------------------------------------------------------------
    def charge(self, lane: str, tokens: int, model: str = "") -> Charge:
        """Apply a served request's effect: plan windows grow, or extra-usage credits are spent; API keys cost nothing."""
        with self._lock:
            if lane == "plan":
                self.account["five_hour_utilization"] = min(
                    1.0, float(self.account.get("five_hour_utilization", 0.0)) + tokens / FIVE_HOUR_CAPACITY_TOKENS)
                self.account["seven_day_utilization"] = min(
                    1.0, float(self.account.get("seven_day_utilization", 0.0)) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                family = next((f for f in ("opus", "sonnet") if f in model), None)
                if family:
                    self.family_utilization[family] = min(
                        1.0, self.family_utilization.get(family, 0.0) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                return Charge(lane, tokens)
            if lane == "extra_usage":
                credits = round(tokens * CREDITS_PER_KTOKENS / 1000, 4)
                extra = self.account.setdefault("extra_usage", {})
                extra["used_credits"] = round(float(extra.get("used_credits", 0) or 0) + credits, 4)
                self.family_utilization["oauth_apps"] = min(
                    1.0, self.family_utilization.get("oauth_apps", 0.0) + tokens / SEVEN_DAY_CAPACITY_TOKENS)
                return Charge(lane, tokens, credits)
            return Charge(lane, tokens)

    # ---- views (all from the same numbers) -----------------------------------------------------------------
    def resets(self) -> dict[str, int]:
        """Epoch-second resets of each window (fixed from the simulator's start)."""
        start = self.window_start
        month = datetime.fromtimestamp(start, tz=UTC)
        next_month = (month.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
                      .replace(month=month.month % 12 + 1, year=month.year + (month.month == 12)))
        return {"five_hour": int(start + 5 * 3600), "seven_day": int(start + 7 * 86400),
                "overage": int(next_month.timestamp())}

    def overage(self) -> dict[str, Any]:
        """Extra-usage standing: allowed or rejected, why, and the fraction spent."""
        with self._lock:
            extra = dict(self.account.get("extra_usage") or {})
        enabled = bool(extra.get("is_enabled"))
        limit = float(extra.get("monthly_limit") or 0)
        used = float(extra.get("used_credits") or 0)
        utilization = min(1.0, used / limit) if limit > 0 else (1.0 if enabled else 0.0)
        if not enabled:
            return {"status": "rejected", "reason": "overage_not_provisioned", "utilization": utilization,
                    "enabled": False, "limit": limit, "used": used}
        if used >= limit:
            return {"status": "rejected", "reason": "out_of_credits", "utilization": utilization,
                    "enabled": True, "limit": limit, "used": used}
        return {"status": "allowed", "reason": None, "utilization": utilization, "enabled": True,
                "limit": limit, "used": used}

    def api_key_headers(self) -> dict[str, str]:
        """Per-key rate-limit headers of API-key traffic (docs.anthropic.com/en/api/rate-limits); model values."""
        reset = _iso(time.time() + 60)
        return {"anthropic-ratelimit-requests-limit": "4000", "anthropic-ratelimit-requests-remaining": "3999",
                "anthropic-ratelimit-requests-reset": reset, "anthropic-ratelimit-tokens-limit": "400000",
                "anthropic-ratelimit-tokens-remaining": "399000", "anthropic-ratelimit-tokens-reset": reset}

    def unified_headers(self, lane: str, status: int) -> dict[str, str]:
        """The ``anthropic-ratelimit-unified-*`` headers for a response in ``lane`` with HTTP ``status``."""
        from lanelab.wire.unified import PREFIX

        with self._lock:
            five = float(self.account.get("five_hour_utilization", 0.0))
            seven = float(self.account.get("seven_day_utilization", 0.0))
            fallback = self.account.get("fallback_percentage", 0.5)
        resets, over = self.resets(), self.overage()
        claim = "seven_day" if seven > five else "five_hour"
        h = {
            "5h-status": "allowed" if five < 1 else "rejected",
            "5h-utilization": f"{five:.4f}", "5h-reset": str(resets["five_hour"]),
            "7d-status": "allowed" if seven < 1 else "rejected",
            "7d-utilization": f"{seven:.4f}", "7d-reset": str(resets["seven_day"]),
            "overage-status": over["status"], "overage-utilization": f"{over['utilization']:.4f}",
            "overage-reset": str(resets["overage"]), "fallback-percentage": str(fallback),
        }
        if over["reason"]:
            h["overage-disabled-reason"] = over["reason"]
        plan_open = five < 1 and seven < 1
        if lane == "extra_usage" and status < 400:
            h.update({"status": "allowed", "representative-claim": "overage", "overage-in-use": "true",
                      "reset": str(resets["overage"])})
        elif status < 400 and plan_open:
            h.update({"status": "allowed_warning" if max(five, seven) >= 0.9 else "allowed",
                      "representative-claim": claim, "reset": str(resets[claim])})
        elif status == 429 and plan_open:
            # Limited for another reason (a burst, a spend cap): report the plan windows as they stand.
            h.update({"status": "rejected", "representative-claim": claim, "reset": str(resets[claim])})
        elif not plan_open:
            h.update({"status": "rejected", "representative-claim": claim, "reset": str(resets[claim])})
        else:
            # Refused for its billing lane (the third-party 400): the overage pool it was routed to said no.
            h.update({"status": "rejected", "reset": str(resets["overage"])})
        return {PREFIX + k: v for k, v in h.items()}

    def usage_view(self) -> dict[str, Any]:
        """``GET /api/oauth/usage``: utilizations as percent 0–100, resets as ISO-8601."""
        with self._lock:
            five = float(self.account.get("five_hour_utilization", 0.0))
            seven = float(self.account.get("seven_day_utilization", 0.0))
            fam = dict(self.family_utilization)
        resets, over = self.resets(), self.overage()
        week = _iso(resets["seven_day"])

        def window(fraction: float, reset: str) -> dict[str, Any]:
            return {"utilization": round(fraction * 100, 4), "resets_at": reset}

        return {
            "five_hour": window(five, _iso(resets["five_hour"])),
            "seven_day": window(seven, week),
            "seven_day_oauth_apps": window(fam.get("oauth_apps", 0.0), week),
            "seven_day_opus": window(fam.get("opus", 0.0), week),
            "seven_day_sonnet": window(fam.get("sonnet", 0.0), week),
            "extra_usage": {"is_enabled": over["enabled"], "monthly_limit": over["limit"],
                            "used_credits": over["used"], "utilization": round(over["utilization"] * 100, 4)},
        }

    def profile_view(self) -> dict[str, Any]:
        """``GET /api/oauth/profile``: who the account is and what plan it is on."""
        with self._lock:
            plan = str(self.account.get("plan", "max_5x"))
            tier = str(self.account.get("rate_limit_tier", "default_claude_max_5x"))
            enabled = bool((self.account.get("extra_usage") or {}).get("is_enabled"))
        org_type = plan if plan.startswith("claude_") else (
            "claude_max" if "max" in plan else "claude_pro" if "pro" in plan else
            "claude_team" if "team" in plan else f"claude_{plan}")
        ident = self.identity
        return {
            "account": {"uuid": ident["account_uuid"], "email": ident["email"],
                        "display_name": ident["display_name"], "created_at": ident["created_at"]},
            "organization": {"uuid": ident["organization_uuid"], "organization_type": org_type,
                             "rate_limit_tier": tier, "billing_type": "stripe_subscription",
                             "has_extra_usage_enabled": enabled,
                             "subscription_created_at": ident["subscription_created_at"]},
        }

    def account_view(self) -> dict[str, Any]:
        """``GET /_sim/account``: the account, identity, tokens (masked) and counters."""
        with self._lock:
            return redact.redact_obj({
                "policy": self.policy_name, "account": copy.deepcopy(self.account), "identity": dict(self.identity),
                "tokens": [t.masked() for t in self.tokens.values()],
                "refresh_tokens": [{"token": redact.mask(r.value), "used": r.used} for r in self.refresh.values()],
                "counters": dict(self.counters), "usage": self.usage_view(),
            })

    # ---- request log ---------------------------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> int:
        """Append a (already redacted) log entry and return its sequence number."""
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
            self.log.append(entry)
            if len(self.log) > LOG_LIMIT:
                del self.log[: len(self.log) - LOG_LIMIT]
            return self._seq

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self.log if e["seq"] > since]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
