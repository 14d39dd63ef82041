"""What a credential is and what the account says about it, without spending quota and without showing a secret.

Token kind and expiry come from the credential itself; plan, tier, extra usage and the usage windows come from the two
free probes ``/api/oauth/profile`` and ``/api/oauth/usage`` (references/protocol.md §4), sent through
:func:`lanelab.wire.send.send` like every other request.

The usage endpoint is rate limited to about 30 reads an hour per account, a limit shared with Claude Code
(references/autumn-2026.md §2). So the kit reads it through :func:`read_usage_cached`: a reading is cached per
credential (``LANELAB_HOME/usage/``, with its time) and reused while it is recent (:data:`USAGE_REUSE_SECONDS`), a
429 is honoured (the cached reading is shown, saying it is cached and from when, and the endpoint is not asked again
before its ``retry-after``), and a failed probe is a note, never an exception.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lanelab import __version__, redact
from lanelab.auth.credential import Credential
from lanelab.auth.oauth import probe_settings, scope_meanings
from lanelab.auth.resolve import available
from lanelab.config import Settings
from lanelab.errors import InputError
from lanelab.wire import spec as wire
from lanelab.wire.send import send
from lanelab.wire.usage import PERCENT, ExtraUsage, UsageLimit, UsageReading, UsageWindow, read_usage

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KIND_ACCESS", "KIND_API_KEY", "KIND_REFRESH", "KIND_UNKNOWN", "USAGE_REUSE_SECONDS", "AccountSummary",
           "CredentialSummary", "CredentialTable", "UsageCache", "UsageRead", "credentials_table", "describe",
           "inspect_account", "probe_profile", "probe_spec", "probe_usage", "read_usage_cached", "summarize",
           "token_kind"]

KIND_ACCESS = "oauth_access"
KIND_REFRESH = "oauth_refresh"
KIND_API_KEY = "api_key"
KIND_UNKNOWN = "unknown"
#: A usage reading younger than this is reused instead of asking the endpoint again (about 30 reads an hour per
#: account, shared with Claude Code: references/autumn-2026.md §2).
USAGE_REUSE_SECONDS = 120.0
#: How long to leave the usage endpoint alone after a 429 that names no retry-after.
USAGE_BACKOFF_SECONDS = 300.0


def token_kind(token: str | None) -> str:
    """``oauth_access`` (sk-ant-oat…), ``oauth_refresh`` (sk-ant-ort…), ``api_key`` (sk-ant-api…) or ``unknown``."""
    token = (token or "").strip()
    if token.startswith("sk-ant-oat"):
        return KIND_ACCESS
    if token.startswith("sk-ant-ort"):
        return KIND_REFRESH
    if token.startswith("sk-ant-api"):
        return KIND_API_KEY
    return KIND_UNKNOWN


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass
class CredentialSummary:
    """A credential described: kind, expiry, scopes and what they allow. Holds no secret."""

    label: str
    kind: str
    masked_token: str
    has_refresh: bool
    expires_in: float | None
    scopes: tuple[str, ...]
    allows: dict[str, str]
    can_probe: bool
    source: str
    imported: bool
    issued_by: str = "unknown"

    @property
    def expiry_text(self) -> str:
        """``in 2.0 h``, ``expired 5 min ago`` or ``unknown``."""
        if self.expires_in is not None and self.expires_in <= 0:
            return f"expired {_duration(-self.expires_in)} ago"
        return f"in {_duration(self.expires_in)}" if self.expires_in is not None else "unknown"

    def rows(self) -> list[tuple[str, str]]:
        """``(field, value)`` pairs, as the repr and the HTML table show them."""
        scopes = "; ".join(f"{s} ({self.allows.get(s, 'meaning not recorded')})" for s in self.scopes) or "unknown"
        return [("label", self.label), ("kind", self.kind), ("token", self.masked_token),
                ("refresh token", "yes" if self.has_refresh else "no"), ("expires", self.expiry_text),
                ("scopes", scopes), ("profile/usage probes", "allowed" if self.can_probe else "need user:profile"),
                ("source", self.source + (" (imported, read-only)" if self.imported else "")),
                ("issued by", self.issued_by)]

    def __repr__(self) -> str:
        return "\n".join(f"{k:>20}: {v}" for k, v in self.rows())

    def _repr_html_(self) -> str:
        return _table(self.rows(), "Credential")


def describe(cred: Credential, now: float | None = None) -> CredentialSummary:
    """What ``cred`` is: kind, masked token, expiry (relative to ``now``), scopes and what they allow, who issued
    it. Returns a :class:`CredentialSummary` (holds no secret; displays itself). Raises
    :class:`~lanelab.auth.oauth.EndpointSetError` only when ``data/oauth.toml`` is unreadable, and
    :class:`~lanelab.errors.InputError` for anything but a credential."""
    if not isinstance(cred, Credential):
        raise InputError(f"describe takes a credential; found {type(cred).__name__}.",
                         "e.g. describe(lanelab.auth.resolve.resolve_credential('sim-pkce')).")
    meanings = scope_meanings()
    required = probe_settings().get("required_scope", "user:profile")
    return CredentialSummary(
        label=cred.label, kind=token_kind(cred.access_token), masked_token=redact.mask(cred.access_token),
        has_refresh=bool(cred.refresh_token), expires_in=cred.expires_in(now), scopes=cred.scopes,
        allows={s: meanings[s] for s in cred.scopes if s in meanings},
        can_probe=required in cred.scopes or not cred.scopes, source=cred.source, imported=cred.imported,
        issued_by=cred.issued_by)


# ---------------------------------------------------------------------------------------------------------------
# Probes


def probe_spec(path: str) -> wire.RequestSpec:
    """A GET with Bearer auth and the OAuth beta: free, no inference."""
    beta = probe_settings().get("beta", "")
    headers = {"anthropic-beta": beta, "user-agent": f"lanelab/{__version__}"} if beta else {}
    return wire.RequestSpec(method="GET", path=path, headers=headers, auth="bearer")


def probe_profile(token: str, base_url: str, client: httpx.Client | None = None) -> wire.Observation:
    """GET the profile endpoint with ``token``; the observation (never raises for an HTTP or transport failure)."""
    return send(probe_spec(probe_settings().get("profile_path", "/api/oauth/profile")), base_url, token, client)


def probe_usage(token: str, base_url: str, client: httpx.Client | None = None) -> wire.Observation:
    """GET the usage endpoint with ``token``; the observation (never raises for an HTTP or transport failure)."""
    return send(probe_spec(probe_settings().get("usage_path", "/api/oauth/usage")), base_url, token, client)

# ---------------------------------------------------------------------------------------------------------------
# The usage reading, cached


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class UsageCache:
    """Usage readings per credential on disk: one JSON file per credential (mode 0600) in ``folder``, holding the
    last reading (redacted), its time, its request id, and until when the endpoint asked to be left alone.

    A credential is keyed by a one-way hash of its token and the server's origin, so the file names reveal nothing.
    """

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    @classmethod
    def in_home(cls, home: Path | str) -> UsageCache:
        """The cache of the kit's store at ``home`` (``LANELAB_HOME/usage``)."""
        return cls(Path(home) / "usage")

    @staticmethod
    def key(token: str, base_url: str) -> str:
        from lanelab.auth.issuer import origin

        digest = hashlib.sha256(f"{origin(base_url) or base_url}\n{token}".encode()).hexdigest()
        return digest[:24]

    def get(self, key: str) -> dict[str, Any]:
        """The stored entry (empty when there is none or it cannot be read)."""
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def put(self, key: str, **changes: Any) -> None:
        """Merge ``changes`` into the entry and write it atomically (0600); a file-system error is ignored (a cache
        never fails a run)."""
        entry = {**self.get(key), **redact.redact_obj(changes)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(entry, fh, indent=1, sort_keys=True)
                os.replace(tmp, self.folder / f"{key}.json")
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass


@dataclass
class UsageRead:
    """One usage reading as the kit got it: the body (None when there is none), when it was read, whether it came
    from the cache, and a note saying so (``cached reading from …``) or why there is none."""

    body: dict[str, Any] | None = None
    read_at: float | None = None
    cached: bool = False
    request_id: str | None = None
    note: str = ""
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.body, dict)

    def observation(self) -> wire.Observation:
        """The reading as an :class:`~lanelab.wire.spec.Observation` (for :func:`summarize`)."""
        if self.ok:
            return wire.Observation(status=200, body=self.body, request_id=self.request_id)
        return wire.Observation(status=self.status, error_type="usage_unavailable" if self.status else None,
                                error_message=self.note or self.error, transport_error=None if self.status else
                                (self.error or self.note or "usage probe failed"))


def read_usage_cached(token: str, base_url: str, cache: UsageCache | None = None, *,
                      client: httpx.Client | None = None, reuse_seconds: float = USAGE_REUSE_SECONDS,
                      now: float | None = None) -> UsageRead:
    """The usage reading for ``token``: a recent cached one, or a fresh probe (then cached).

    Honours the endpoint's rate limit (see the module docstring): a 429 keeps the cached reading (the note says it is
    cached and from when) and the endpoint is left alone until its ``retry-after``. ``cache`` None reads without a
    cache. Never raises: any failure becomes the :class:`UsageRead`'s ``error`` and ``note``.
    """
    now = time.time() if now is None else now
    key = UsageCache.key(token, base_url) if cache is not None else ""
    entry = cache.get(key) if cache is not None else {}
    body, read_at = entry.get("body"), entry.get("read_at")
    cached = (body, float(read_at)) if isinstance(body, dict) and isinstance(read_at, (int, float)) else None

    def from_cache(why: str) -> UsageRead:
        if cached is not None:
            return UsageRead(body=cached[0], read_at=cached[1], cached=True, request_id=entry.get("request_id"),
                             note=f"cached reading from {_clock(cached[1])} ({why})")
        return UsageRead(note=f"no usage reading ({why})", error=why)

    if cached is not None and now - cached[1] < reuse_seconds:
        return from_cache(f"{now - cached[1]:.0f} s old; reused to spare the endpoint's rate limit")
    blocked = entry.get("blocked_until")
    if isinstance(blocked, (int, float)) and blocked > now:
        return from_cache(f"the usage endpoint is rate limited until {_clock(blocked)}; not asked again")
    try:
        obs = probe_usage(token, base_url, client)
    except Exception as exc:  # noqa: BLE001 - a usage probe never fails a run
        return from_cache(f"the usage probe failed: {redact.redact_text(type(exc).__name__ + ': ' + str(exc))}")
    if obs.ok and isinstance(obs.body, dict):
        if cache is not None:
            cache.put(key, body=obs.body, read_at=now, request_id=obs.request_id, blocked_until=None)
        return UsageRead(body=redact.redact_obj(obs.body), read_at=now, request_id=obs.request_id, status=obs.status)
    if obs.status == 429:
        wait = obs.retry_after if obs.retry_after is not None else USAGE_BACKOFF_SECONDS
        if cache is not None:
            cache.put(key, blocked_until=now + max(wait, 1.0))
        read = from_cache("the usage endpoint answered 429: about 30 reads an hour per account, shared with Claude "
                          "Code")
        read.status = 429
        return read
    what = obs.transport_error or f"HTTP {obs.status} {obs.error_type}: {obs.error_message}"
    read = from_cache(f"the usage probe failed: {redact.redact_text(str(what))}")
    read.status = obs.status
    return read


@dataclass
class AccountSummary:
    """Plan, tier, extra usage and usage windows from the profile and usage probes; errors shown, not raised.

    The usage body is read as data/usage_fields.toml describes it (lanelab.wire.usage): ``windows`` (percent of the
    window, dollar amounts when reported), ``limits`` (the ``limits[]`` array), ``extra_usage`` (money in its
    currency, as reported) and ``unknown`` (keys and fields the kit has never seen, verbatim)."""

    email: str | None = None
    organization_type: str | None = None
    rate_limit_tier: str | None = None
    billing_type: str | None = None
    extra_usage_enabled: bool | None = None
    extra_usage_monthly_limit: float | None = None
    extra_usage_used: float | None = None
    extra_usage_utilization: float | None = None
    windows: list[UsageWindow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    limits: list[UsageLimit] = field(default_factory=list)
    extra_usage: ExtraUsage | None = None
    unknown: list[wire.Unknown] = field(default_factory=list)
    usage_note: str = ""  # e.g. "cached reading from 2026-11-20 10:02:03 UTC (…)"

    def rows(self) -> list[tuple[str, str]]:
        """``(field, value)`` pairs, as the repr and the HTML table show them."""

        def s(v: Any) -> str:
            return "—" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

        e = self.extra_usage or ExtraUsage()
        money = e.currency or "(currency not reported)"
        rows = [("account", s(self.email)), ("plan", s(self.organization_type)), ("rate-limit tier", s(self.rate_limit_tier)),
                ("billing", s(self.billing_type)), ("extra usage enabled", s(self.extra_usage_enabled)),
                ("extra usage used / limit",
                 f"{s(self.extra_usage_used)} / {s(self.extra_usage_monthly_limit)} {money}, as reported")]
        if self.extra_usage_utilization is not None:
            rows.append(("extra usage utilization", f"{s(self.extra_usage_utilization)} % of the monthly limit"))
        for name in ("disabled_reason", "user_disabled", "spend_limit_reached", "credits_ever_enabled"):
            if getattr(e, name) is not None:
                rows.append((f"extra usage {name.replace('_', ' ')}", s(getattr(e, name))))
        for w in self.windows:
            if w.codename and w.utilization is None and w.resets_at is None and not w.has_money:
                continue  # a code-named slot with nothing in it
            util = "—" if w.utilization is None else f"{w.utilization:g} {PERCENT}"
            text = f"{util}, resets {s(w.resets_at)}"
            if w.has_money:
                text += (f"; {s(w.used_dollars)} used of {s(w.limit_dollars)}, {s(w.remaining_dollars)} left "
                         f"({w.currency})")
            label = f"window {w.name}" + ("" if w.known else " (new to this kit)")
            rows.append((label, text))
        for lim in self.limits:
            pct = "—" if lim.percent is None else f"{lim.percent:g} {PERCENT}"
            active = "" if lim.is_active is None else (", binding" if lim.is_active else ", not binding")
            scope = f" ({lim.scope})" if lim.scope else ""
            rows.append((f"limit {s(lim.kind)}{scope}", f"{pct}, resets {s(lim.resets_at)}{active}"))
        rows += [("new to this kit", f"{u.name} = {u.value}") for u in self.unknown]
        if self.usage_note:
            rows.append(("usage reading", self.usage_note))
        rows += [("probe error", e) for e in self.errors]
        return rows

    def to_frame(self):  # -> pandas.DataFrame
        """The usage part as a table: one row per value, with its unit (see ``UsageReading.to_frame``)."""
        return UsageReading(windows=self.windows, limits=self.limits, extra_usage=self.extra_usage,
                            unknown=self.unknown).to_frame()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unknown"] = [u.to_dict() for u in self.unknown]
        return redact.redact_obj(d)

    def __repr__(self) -> str:
        return redact.redact_text("\n".join(f"{k:>26}: {v}" for k, v in self.rows()))

    def _repr_html_(self) -> str:
        return _table(self.rows(), "Account (profile + usage probes)")


def _mask_email(email: Any) -> str | None:
    if not isinstance(email, str) or "@" not in email:
        return None
    user, _, domain = email.partition("@")
    return f"{user[:1]}…@{domain}"


def summarize(profile: wire.Observation | None, usage: wire.Observation | None) -> AccountSummary:
    """Fold the two probe observations into one summary; a failed probe becomes a line in ``errors``.

    Returns an :class:`AccountSummary`; never raises for what a probe returned. Keys and fields of the usage body
    that data/usage_fields.toml does not list are in ``unknown`` (verbatim) and shown as "new to this kit"."""
    out = AccountSummary()
    for name, obs in (("profile", profile), ("usage", usage)):
        if obs is None:
            continue
        if obs.request_id:
            out.request_ids.append(obs.request_id)
        if not obs.ok:
            what = obs.transport_error or f"HTTP {obs.status} {obs.error_type}: {obs.error_message}"
            out.errors.append(redact.redact_text(f"{name}: {what}"))
    p = profile.body if profile is not None and profile.ok and isinstance(profile.body, dict) else {}
    account = a if isinstance(a := p.get("account"), dict) else {}
    org = o if isinstance(o := p.get("organization"), dict) else {}
    out.email = _mask_email(account.get("email") or account.get("email_address"))
    out.organization_type = org.get("organization_type")
    out.rate_limit_tier = org.get("rate_limit_tier")
    out.billing_type = org.get("billing_type")
    if isinstance(org.get("has_extra_usage_enabled"), bool):
        out.extra_usage_enabled = org["has_extra_usage_enabled"]
    u = usage.body if usage is not None and usage.ok and isinstance(usage.body, dict) else {}
    reading = read_usage(u)
    out.windows, out.limits, out.extra_usage, out.unknown = (reading.windows, reading.limits, reading.extra_usage,
                                                             reading.unknown)
    extra = reading.extra_usage
    if extra is not None:
        if extra.is_enabled is not None:
            out.extra_usage_enabled = extra.is_enabled
        out.extra_usage_monthly_limit = extra.monthly_limit
        out.extra_usage_used = extra.used_credits
        out.extra_usage_utilization = extra.utilization
    return out


def inspect_account(token: str, base_url: str, client: httpx.Client | None = None,
                    cache: UsageCache | None = None) -> AccountSummary:
    """Probe profile and usage with ``token`` at ``base_url`` and summarise (no inference, no quota spent).

    With ``cache`` the usage reading goes through :func:`read_usage_cached` (a recent or, after a 429, the cached
    reading; :attr:`AccountSummary.usage_note` says so). Returns an :class:`AccountSummary`; a failed probe becomes
    a line in its ``errors``, never an exception. Raises :class:`~lanelab.errors.HostNotAllowed` when ``base_url``
    is off the allow-list (nothing is sent).
    """
    profile = probe_profile(token, base_url, client)
    if cache is None:
        return summarize(profile, probe_usage(token, base_url, client))
    read = read_usage_cached(token, base_url, cache, client=client)
    out = summarize(profile, read.observation())
    out.usage_note = read.note
    return out


@dataclass
class CredentialTable:
    """Saved and importable credentials as masked rows, and the problems met (files that could not be read).

    ``to_frame()`` gives a DataFrame with :attr:`COLUMNS`; in a notebook the table displays itself with its problems
    below it; ``str()`` is the text table ``python -m lanelab creds`` prints. Holds no secret.
    """

    COLUMNS = ("where", "label", "kind", "token", "expires", "source", "issuer", "scopes")

    rows: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per credential, columns :attr:`COLUMNS` (all text)."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.COLUMNS))

    def labels(self) -> list[str]:
        """The labels in table order (saved first)."""
        return [r["label"] for r in self.rows]

    def text_lines(self) -> list[str]:
        """The rows as aligned text (a header line first), then one ``problem: …`` line per problem."""
        lines = []
        if self.rows:
            widths = {c: max(len(c), *(len(r[c]) for r in self.rows)) for c in self.COLUMNS}
            lines.append("  ".join(c.ljust(widths[c]) for c in self.COLUMNS).rstrip())
            lines += ["  ".join(r[c].ljust(widths[c]) for c in self.COLUMNS).rstrip() for r in self.rows]
        lines += [f"problem: {p}" for p in self.problems]
        return [redact.redact_text(line) for line in lines]

    def __str__(self) -> str:
        return "\n".join(self.text_lines()) or "No credentials."

    def __repr__(self) -> str:
        return f"CredentialTable({len(self.rows)} credentials, {len(self.problems)} problems)\n{self}"

    def _repr_html_(self) -> str:
        frame = self.to_frame().to_html(index=False) if self.rows else "<p><i>No credentials yet.</i></p>"
        probs = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        more = f"<p><b>Problems</b></p><ul>{probs}</ul>" if probs else ""
        return redact.redact_text(frame + more)


def credentials_table(settings: Settings, user_home: Path | None = None,
                      environ: Mapping[str, str] | None = None) -> CredentialTable:
    """The kit's saved credentials and those it can import, masked: where, label, kind, token, expiry, source, who
    issued it, scopes. Reads only (for ``creds`` and notebook 01).

    Returns a :class:`CredentialTable`; never raises for a damaged file: it is listed in ``problems``.
    """

    def row(where: str, cred: Credential) -> dict[str, str]:
        s = describe(cred)
        return {"where": where, "label": cred.label, "kind": s.kind, "token": s.masked_token,
                "expires": s.expiry_text, "source": cred.source, "issuer": cred.issued_by,
                "scopes": " ".join(cred.scopes) or "-"}

    found = available(settings, user_home, environ)
    rows = [row("saved", c) for c in found.saved] + [row("import", c) for c in found.imported]
    return CredentialTable(rows=rows, problems=list(found.problems))


def _table(rows: list[tuple[str, str]], title: str) -> str:
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                   f"{html.escape(redact.redact_text(v))}</td></tr>" for k, v in rows)
    return f"<table><caption style='text-align:left'><b>{html.escape(title)}</b></caption>{body}</table>"
