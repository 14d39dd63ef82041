"""The OAuth authorization-code flow with PKCE: endpoint sets (data), authorize URL, code exchange and refresh.

Which hosts, scopes, body style and user agent to use are choices the user makes from ``data/oauth.toml``; clients
differ and reports conflict (references/hermes.md §3, references/protocol.md §1), so each is a named variant, not a
constant. Refresh is explicit and single-flight, because refresh tokens are single-use and rotate. Every credential
made here records who issued it (:func:`lanelab.auth.issuer.issued_by` on the token URL that answered).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx

from lanelab import errors, redact
from lanelab import http as lanelab_http
from lanelab import pkce as pkce_mod
from lanelab.auth.credential import Credential
from lanelab.auth.issuer import default_label, issued_by
from lanelab.auth.paste import PastedCode
from lanelab.auth.store import CredentialStore, StoreNotWritable
from lanelab.config import Settings, data_file, host_allowed, is_loopback_url
from lanelab.datafiles import DataFileError, Either, ListOf, MapOf, OneOf, Str, Table, read_toml
from lanelab.errors import Refused, ServiceError

__all__ = ["TIMEOUT", "Authorization", "ClientVariant", "EndpointSet", "EndpointSetError", "RefreshRefused",
           "Refreshed", "TokenEndpointError", "UnsafeHost", "authorize_url", "client_variant",
           "credential_from_token_response", "default_endpoint_set_name", "endpoint_set", "exchange",
           "list_endpoint_sets", "load_client_variants", "load_endpoint_sets", "post_token", "probe_settings",
           "refresh", "scope_meanings", "sim_paste_value", "start", "variant_for_body"]

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_log = logging.getLogger("lanelab.auth")


class EndpointSetError(DataFileError):
    """An unknown endpoint set or variant, or one that cannot be used in this mode."""


class TokenEndpointError(ServiceError):
    """The token endpoint refused an exchange or refresh."""


class RefreshRefused(Refused):
    """The kit will not refresh this credential unless told to."""


class UnsafeHost(Refused):
    """A secret would have been sent to a host that is not allow-listed."""


# ---------------------------------------------------------------------------------------------------------------
# Data: endpoint sets and client variants


@dataclass(frozen=True)
class EndpointSet:
    """Where the flow goes: authorize URL, token URLs tried in order, redirect URI, scopes, extra parameters."""

    name: str
    description: str
    authorize_url: str
    token_urls: tuple[str, ...]
    redirect_uri: str
    scopes: tuple[str, ...]
    client_id: str
    code_param: bool = True
    relative: bool = False
    source: str = ""

    def resolve(self, base_url: str | None) -> EndpointSet:
        """Absolute URLs: relative sets are joined onto the simulator's ``base_url``.

        Raises :class:`EndpointSetError` for a relative set when ``base_url`` is not given."""
        if not self.relative:
            return self
        if not base_url:
            raise EndpointSetError(
                f"Endpoint set {self.name!r} belongs to the simulator, but no simulator address is known.",
                "Start one with 'python -m lanelab sim' and set LANELAB_BASE_URL to the URL it prints.")
        base = base_url.rstrip("/") + "/"
        j = lambda u: urljoin(base, u.lstrip("/"))
        return replace(self, authorize_url=j(self.authorize_url), token_urls=tuple(j(u) for u in self.token_urls),
                       redirect_uri=j(self.redirect_uri), relative=False)


@dataclass(frozen=True)
class ClientVariant:
    """How a client shapes its token-endpoint POSTs: body style and user agent."""

    name: str
    body: str
    user_agent: str
    accept: str = "application/json"
    description: str = ""
    source: str = ""

    def headers(self) -> dict[str, str]:
        """The ``accept`` and ``user-agent`` headers of this client's token POSTs."""
        h = {"accept": self.accept}
        if self.user_agent:
            h["user-agent"] = self.user_agent
        return h


_URL = Str(nonempty=True)
_PATH = Str(pattern=r"/.*", meaning="a path starting with /")

#: The shape of data/oauth.toml (see lanelab.datafiles for the vocabulary); the loaders add the semantic checks
#: (an endpoint's named scope set exists).
SCHEMA = Table({
    "client": Table({"client_id": Str(nonempty=True), "source?": str}),
    "scopes?": MapOf(Table({"scopes": [str], "source?": str})),
    "scope_meanings?": MapOf(str),
    "endpoints": MapOf(Table({
        "description?": str, "relative?": bool, "authorize_url": _URL, "token_urls": ListOf(_URL, nonempty=True),
        "redirect_uri": _URL, "scopes": Either(Str(nonempty=True), [str]), "code_param?": bool,
        "client_id?": Str(nonempty=True), "source?": str}), nonempty=True),
    "variants?": MapOf(Table({"body": OneOf("json", "form"), "user_agent?": str, "accept?": str,
                              "description?": str, "source?": str})),
    "probes?": Table({"beta?": str, "profile_path?": _PATH, "usage_path?": _PATH, "required_scope?": str,
                      "default_expires_in?": int, "source?": str}),
})


def _load(path: Path | None = None) -> dict[str, Any]:
    return read_toml(path or data_file("oauth.toml"), "OAuth endpoint sets", EndpointSetError, schema=SCHEMA)


def load_endpoint_sets(path: Path | None = None) -> dict[str, EndpointSet]:
    """Every endpoint set in ``data/oauth.toml`` by name. Raises :class:`EndpointSetError` for a bad file (naming
    the key and what it must be) or an endpoint set naming a scope set that does not exist."""
    data = _load(path)
    client_id = data["client"]["client_id"]
    scope_sets = {k: tuple(v["scopes"]) for k, v in data.get("scopes", {}).items()}
    out = {}
    for name, e in data.get("endpoints", {}).items():
        if isinstance(e["scopes"], str) and e["scopes"] not in scope_sets:
            raise EndpointSetError(f"The OAuth endpoint sets at {path or data_file('oauth.toml')}: endpoint set "
                                   f"{name!r} names scope set {e['scopes']!r}, which no [scopes.*] table defines.")
        scopes = scope_sets[e["scopes"]] if isinstance(e["scopes"], str) else tuple(e["scopes"])
        out[name] = EndpointSet(name=name, description=e.get("description", ""), authorize_url=e["authorize_url"],
                                token_urls=tuple(e["token_urls"]), redirect_uri=e["redirect_uri"], scopes=scopes,
                                client_id=e.get("client_id", client_id), code_param=bool(e.get("code_param", True)),
                                relative=bool(e.get("relative", False)), source=e.get("source", ""))
    return out


def load_client_variants(path: Path | None = None) -> dict[str, ClientVariant]:
    """Every token-endpoint client variant in ``data/oauth.toml`` by name. Raises :class:`EndpointSetError`."""
    return {name: ClientVariant(name=name, body=v["body"], user_agent=v.get("user_agent", ""),
                                accept=v.get("accept", "application/json"), description=v.get("description", ""),
                                source=v.get("source", ""))
            for name, v in _load(path).get("variants", {}).items()}


def scope_meanings(path: Path | None = None) -> dict[str, str]:
    """What each OAuth scope allows, from ``data/oauth.toml``."""
    m = dict(_load(path).get("scope_meanings", {}))
    m.pop("source", None)
    return m


def probe_settings(path: Path | None = None) -> dict[str, Any]:
    """The ``[probes]`` table of ``data/oauth.toml`` (paths, beta header, required scope, default expiry)."""
    return dict(_load(path).get("probes", {}))


def list_endpoint_sets(mode: str | None = None) -> list[str]:
    """Names of the endpoint sets; with ``mode``, only those usable in it (sim: relative; live: absolute)."""
    sets = load_endpoint_sets()
    if mode is None:
        return list(sets)
    return [n for n, e in sets.items() if e.relative == (mode == "sim")]


def default_endpoint_set_name(settings: Settings) -> str:
    """The first endpoint set usable in ``settings.mode`` (``sim`` in sim mode, ``live-claude-ai`` in live mode).

    Raises :class:`EndpointSetError` when data/oauth.toml has none for that mode."""
    names = list_endpoint_sets(settings.mode)
    if not names:
        raise EndpointSetError(f"data/oauth.toml has no endpoint set usable in {settings.mode} mode.",
                               "Add one ([endpoints.NAME]; relative = true for the simulator).")
    return names[0]


def endpoint_set(name: str, base_url: str | None = None) -> EndpointSet:
    """The endpoint set called ``name``, resolved against ``base_url`` when it is the simulator's.

    Raises :class:`EndpointSetError` for an unknown name, or a simulator set without ``base_url``.
    """
    sets = load_endpoint_sets()
    if name not in sets:
        raise EndpointSetError(f"Unknown endpoint set {name!r}.", f"Choose one of: {', '.join(sets)}.")
    return sets[name].resolve(base_url)


def client_variant(name: str) -> ClientVariant:
    """The client variant called ``name``. Raises :class:`EndpointSetError` (listing the known ones) if unknown."""
    variants = load_client_variants()
    if name not in variants:
        raise EndpointSetError(f"Unknown client variant {name!r}.", f"Choose one of: {', '.join(variants)}.")
    return variants[name]


def variant_for_body(body: str) -> ClientVariant:
    """The first variant with the given body style (``json`` or ``form``). Raises :class:`EndpointSetError`."""
    for v in load_client_variants().values():
        if v.body == body:
            return v
    raise EndpointSetError(f"No client variant sends a {body!r} body.", "Use --body json or --body form.")


# ---------------------------------------------------------------------------------------------------------------
# Authorize


@dataclass(frozen=True)
class Authorization:
    """A started flow: the endpoint set, its PKCE material and the URL the user opens."""

    endpoints: EndpointSet
    pkce: pkce_mod.PKCE
    url: str

    def __repr__(self) -> str:
        return f"Authorization(endpoints={self.endpoints.name!r}, url={self.url!r})"


def authorize_url(endpoints: EndpointSet, challenge: str, state: str) -> str:
    """The authorize URL the user opens: client, redirect, scopes, the S256 ``challenge`` and ``state``."""
    params: dict[str, str] = {}
    if endpoints.code_param:
        params["code"] = "true"
    params.update({"client_id": endpoints.client_id, "response_type": "code", "redirect_uri": endpoints.redirect_uri,
                   "scope": " ".join(endpoints.scopes), "code_challenge": challenge,
                   "code_challenge_method": pkce_mod.METHOD, "state": state})
    return f"{endpoints.authorize_url}?{urlencode(params)}"


def start(endpoints: EndpointSet, verifier_bytes: int = pkce_mod.MIN_BYTES) -> Authorization:
    """Generate PKCE material and the authorize URL for ``endpoints`` (already resolved).

    Returns an :class:`Authorization`; raises :class:`EndpointSetError` when ``endpoints`` is still relative.
    """
    if endpoints.relative:
        raise EndpointSetError(f"Endpoint set {endpoints.name!r} is not resolved; call endpoints.resolve(base_url).")
    material = pkce_mod.generate(verifier_bytes)
    redact.register_secret(material.verifier)
    return Authorization(endpoints, material, authorize_url(endpoints, material.challenge, material.state))


def sim_paste_value(authorize_url_: str, client: httpx.Client | None = None) -> str:
    """What a user would copy from the simulator's callback page: follow the authorize URL, read ``paste-value``.

    Only for the loopback simulator (headless notebook runs, ``login --auto``); a live flow needs a real person.
    Returns ``code#state``. Raises :class:`EndpointSetError` for a non-loopback URL or a redirect elsewhere, and
    :class:`TokenEndpointError` when the simulator cannot be reached or shows no code.
    """
    if not is_loopback_url(authorize_url_):
        raise EndpointSetError("Automatic paste works only against the loopback simulator.",
                               "Open the authorize link yourself and paste the value the callback page shows.")
    own = client is None
    client = client or lanelab_http.client(authorize_url_, timeout=TIMEOUT)
    try:
        resp = client.get(authorize_url_)
        location = resp.headers.get("location") if resp.is_redirect else None
        if location:  # the simulator approves at once and redirects to its own callback page: one hop, same origin
            target = resp.url.join(location)
            if (target.scheme, target.host, target.port) != (resp.url.scheme, resp.url.host, resp.url.port):
                raise EndpointSetError("The simulator redirected the authorize link to another server.",
                                       "Open the authorize link yourself and paste the value the page shows.")
            resp = client.get(target)
    except httpx.HTTPError as exc:
        raise TokenEndpointError(f"Could not open the simulator's authorize link ({type(exc).__name__}).",
                                 "Check that LANELAB_BASE_URL points at a running simulator.") from None
    finally:
        if own:
            client.close()
    m = re.search(r'<code[^>]*id="paste-value"[^>]*>([^<]+)</code>', resp.text)
    if resp.status_code != 200 or not m:
        raise TokenEndpointError(f"The simulator's callback page did not show a code (HTTP {resp.status_code}).",
                                 "Check that LANELAB_BASE_URL points at a running simulator.")
    value = html.unescape(m.group(1)).strip()
    redact.register_secret(value.partition("#")[0])
    return value


# ---------------------------------------------------------------------------------------------------------------
# Token endpoint


def _token_body(fields: Mapping[str, str], variant: ClientVariant) -> tuple[bytes, str]:
    if variant.body == "form":
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if variant.body == "json":
        return json.dumps(fields).encode(), "application/json"
    raise EndpointSetError(f"Client variant {variant.name!r} has unknown body style {variant.body!r}.")


def _describe_error(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return redact.redact_text(resp.text[:200]) or "no body"
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # Messages-API style error
            return redact.redact_text(f"{body['error'].get('type')}: {body['error'].get('message')}")
        if body.get("error"):
            return redact.redact_text(f"{body.get('error')}: {body.get('error_description') or ''}".strip(": "))
    return redact.redact_text(json.dumps(body)[:200])


def post_token(endpoints: EndpointSet, fields: Mapping[str, str], variant: ClientVariant,
               client: httpx.Client | None = None) -> tuple[dict[str, Any], str]:
    """POST to each token URL in order (404 → next, as Hermes does) and return ``(json, url_used)``.

    Raises :class:`UnsafeHost` before sending anything to a host off the allow-list, and
    :class:`TokenEndpointError` when no token URL answers with an access token.
    """
    for key in ("code", "code_verifier", "refresh_token"):
        redact.register_secret(fields.get(key))
    own = client is None
    client = client or lanelab_http.client(timeout=TIMEOUT)
    tried: list[str] = []
    try:
        for url in endpoints.token_urls:
            if not host_allowed(url):
                raise UnsafeHost(f"Refusing to send a code or token to {httpx.URL(url).host!r}.",
                                 "Only loopback and Anthropic's hosts are allowed; check data/oauth.toml.")
            content, ctype = _token_body(fields, variant)
            try:
                resp = client.post(url, content=content, headers={**variant.headers(), "content-type": ctype})
            except httpx.HTTPError as exc:
                raise TokenEndpointError(f"Could not reach the token endpoint {url} ({type(exc).__name__}).",
                                         "Check the network or that the simulator is still running.") from None
            if resp.status_code == 404 and url != endpoints.token_urls[-1]:
                tried.append(f"{url} → 404")
                continue
            if resp.status_code >= 400:
                retry = resp.headers.get("retry-after")
                raise TokenEndpointError(
                    f"The token endpoint {url} answered HTTP {resp.status_code} ({_describe_error(resp)})"
                    + (f"; tried before: {'; '.join(tried)}" if tried else "")
                    + (f"; it asks to retry after {retry} s" if retry else "") + ".",
                    "A code is single-use and expires quickly: start the flow again. If it keeps failing, try "
                    "another client variant (--body json|form) or endpoint set, and record the result.")
            try:
                data = resp.json()
            except ValueError:
                raise TokenEndpointError(f"The token endpoint {url} answered with something that is not JSON.") \
                    from None
            if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
                raise TokenEndpointError(f"The token endpoint {url} answered without an access_token.")
            _check_issued_tokens(data, url)
            return data, url
    finally:
        if own:
            client.close()
    raise TokenEndpointError("No token endpoint is configured in this endpoint set.")  # pragma: no cover


def _check_issued_tokens(data: Mapping[str, Any], url: str) -> None:
    """Register the tokens of a token-endpoint answer, then refuse one that could not go into a header
    (:class:`TokenEndpointError` naming the field, never the value)."""
    for key in ("access_token", "refresh_token", "id_token"):
        redact.register_secret(data.get(key) if isinstance(data.get(key), str) else None)
    for key in ("access_token", "refresh_token"):
        value = data.get(key)
        if key == "refresh_token" and value in (None, ""):
            continue
        errors.check_token_shape(value, f"{key} the token endpoint {url} answered with", error=TokenEndpointError,
                                 hint="The kit cannot send it in a header; nothing was saved. Try again, and report "
                                      "the endpoint if it keeps answering so.")


def credential_from_token_response(data: Mapping[str, Any], label: str, token_url: str, source: str = "lanelab:pkce",
                                   now: float | None = None, default_expires_in: int = 3600) -> Credential:
    """A :class:`Credential` from a token-endpoint JSON answer (``expires_in`` missing → ``default_expires_in``),
    recording ``token_url``'s origin as its issuer (see :func:`lanelab.auth.issuer.issued_by`)."""
    mode, issuer = issued_by(token_url)
    now = time.time() if now is None else now
    expires_in = data.get("expires_in")
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        expires_in = default_expires_in
    account = a if isinstance(a := data.get("account"), dict) else {}
    org = o if isinstance(o := data.get("organization"), dict) else {}
    scope = data.get("scope")
    return Credential(
        label=label, access_token=data["access_token"], refresh_token=data.get("refresh_token") or None,
        expires_at=now + float(expires_in), scopes=tuple(scope.split()) if isinstance(scope, str) else (),
        account_uuid=account.get("uuid"), email=account.get("email_address"),
        organization_uuid=org.get("uuid"), organization_name=org.get("name"), source=source, imported=False,
        mode=mode, issuer=issuer)


def exchange(endpoints: EndpointSet, pasted: PastedCode, verifier: str, variant: ClientVariant, *,
             label: str | None = None, client: httpx.Client | None = None,
             store: CredentialStore | None = None) -> Credential:
    """Exchange the pasted code for tokens (grant ``authorization_code``) and return the credential.

    The credential records who issued it (the token URL that answered) and is labelled ``label``, or the default
    label of that mode (``sim-pkce``/``live-pkce``). With ``store`` (where the caller will save it), checks first
    that the store can be written, because the code is single-use: raises
    :class:`~lanelab.auth.store.StoreNotWritable` then, before the code is sent. Otherwise raises what
    :func:`post_token` raises. Saving is the caller's step.
    """
    redact.register_secret(pasted.code)
    redact.register_secret(verifier)
    if store is not None:
        store.check_writable()
    fields = {"grant_type": "authorization_code", "client_id": endpoints.client_id, "code": pasted.code,
              "state": pasted.state, "redirect_uri": endpoints.redirect_uri, "code_verifier": verifier}
    data, url = post_token(endpoints, fields, variant, client)
    label = label or default_label(issued_by(url)[0])
    return credential_from_token_response(data, label, url,
                                          default_expires_in=probe_settings().get("default_expires_in", 3600))


# ---------------------------------------------------------------------------------------------------------------
# Refresh (explicit, single-flight)


@dataclass
class Refreshed:
    """The result of a refresh: the new credential, what happened to the refresh token, and whether it was saved.

    When the refresh was asked to save but the save failed (the disk filled up after the check), ``saved_to`` is
    None, ``save_error`` says why, and the new credential lives only here: use ``credential`` as it is, and call
    :meth:`save` once the folder is fixed. The old refresh token is spent by then, so this object is the only copy.
    """

    credential: Credential
    old_refresh: str
    new_refresh: str
    rotated: bool
    kept_old: bool
    saved_to: Path | None = None
    save_error: str | None = None
    store: CredentialStore | None = field(default=None, repr=False, compare=False)

    @property
    def unsaved(self) -> bool:
        """True when a save was asked for and failed: the new tokens exist only in this object."""
        return self.save_error is not None

    def save(self, store: CredentialStore | None = None) -> Path:
        """Save the new credential (again) to ``store``, default the store the refresh was given; returns the file.

        Raises :class:`~lanelab.auth.store.StoreNotWritable` while the folder still cannot be written (this object
        keeps the credential), and :class:`RefreshRefused` when no store is known.
        """
        store = store or self.store
        if store is None:
            raise RefreshRefused("This refresh was not given a store to save to.", "Pass one: result.save(store).")
        try:
            self.saved_to = store.save(self.credential)
        except StoreNotWritable as exc:
            self.save_error = f"{exc.folder}: {exc.reason}"
            raise
        self.store, self.save_error = store, None
        return self.saved_to

    def __repr__(self) -> str:
        if self.kept_old:
            what = f"no new refresh token returned; kept {self.old_refresh}"
        elif self.rotated:
            what = f"refresh token rotated: {self.old_refresh} → {self.new_refresh}"
        else:
            what = f"refresh token unchanged: {self.new_refresh}"
        if self.unsaved:
            what += (f". NOT SAVED ({self.save_error}): the new tokens are only in this result, and the old refresh "
                     "token is spent. Use result.credential meanwhile; free some space or make the folder writable, "
                     "then call result.save()")
        return redact.redact_text(f"<Refreshed {self.credential.label!r}: {what}>")

    __str__ = __repr__


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: Refreshed | None = None
    error: BaseException | None = None
    waiters: int = 0


_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()


def _flight_key(cred: Credential) -> str:
    return hashlib.sha256(f"{cred.label}\0{cred.refresh_token}".encode()).hexdigest()[:16]


def refresh(cred: Credential, endpoints: EndpointSet, variant: ClientVariant, *, allow_imported: bool = False,
            store: CredentialStore | None = None, client: httpx.Client | None = None) -> Refreshed:
    """Refresh ``cred`` once. Concurrent calls for the same credential share one request and one result.

    Keeps the old refresh token when the server returns none. With ``store``, first checks that it can be written
    (raising :class:`~lanelab.auth.store.StoreNotWritable` before the single-use refresh token is sent), then saves
    the new credential there; if that save still fails, nothing is raised: the :class:`Refreshed` holds the only copy
    (``unsaved`` is true, :meth:`Refreshed.save` tries again) and a warning is logged. Returns a :class:`Refreshed`
    whose credential records the token URL that answered as its issuer. Raises :class:`RefreshRefused` for an
    imported credential unless ``allow_imported`` (the other client would be logged out: refresh tokens are
    single-use) and for one without a refresh token; otherwise what :func:`post_token` raises.
    """
    if cred.imported and not allow_imported:
        raise RefreshRefused(
            f"{cred.label!r} was imported from another client ({cred.source}); the kit does not refresh it.",
            "Refresh tokens are single-use: refreshing here would log that client out. Let that client refresh it, "
            "log in with the kit instead, or pass allow_imported=True (--allow-imported) if you accept that.")
    if not cred.refresh_token:
        raise RefreshRefused(f"{cred.label!r} has no refresh token (e.g. a setup-token or an environment token).",
                             "Log in again to get a fresh access token.")
    key = _flight_key(cred)
    with _flights_lock:
        joined = _flights.get(key)
        leader = joined is None
        if joined is None:
            flight = _flights[key] = _Flight()
        else:
            flight = joined
            flight.waiters += 1
    if not leader:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result
    try:
        flight.result = _refresh_once(cred, endpoints, variant, store, client)
        return flight.result
    except BaseException as exc:
        flight.error = exc
        raise
    finally:
        with _flights_lock:
            _flights.pop(key, None)
        flight.done.set()


def _refresh_once(cred: Credential, endpoints: EndpointSet, variant: ClientVariant, store: CredentialStore | None,
                  client: httpx.Client | None) -> Refreshed:
    old = cred.refresh_token or ""
    if store is not None:  # the refresh token is single-use: never spend it when the result cannot be kept
        store.check_writable()
    fields = {"grant_type": "refresh_token", "refresh_token": old, "client_id": endpoints.client_id}
    data, url = post_token(endpoints, fields, variant, client)
    new = credential_from_token_response(data, cred.label, url, source=cred.source,
                                         default_expires_in=probe_settings().get("default_expires_in", 3600))
    kept_old = new.refresh_token is None
    if kept_old:
        new.refresh_token = old
    for attr in ("account_uuid", "email", "organization_uuid", "organization_name", "subscription_type",
                 "rate_limit_tier"):
        if getattr(new, attr) is None:
            setattr(new, attr, getattr(cred, attr))
    if not new.scopes:
        new.scopes = cred.scopes
    new.imported = cred.imported
    new.extra = dict(cred.extra)
    result = Refreshed(credential=new, old_refresh=redact.mask(old), new_refresh=redact.mask(new.refresh_token),
                       rotated=not kept_old and new.refresh_token != old, kept_old=kept_old, store=store)
    if store is not None:
        try:
            result.save()
        except StoreNotWritable:
            _log.warning("%r", result)
    return result
