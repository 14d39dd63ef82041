"""The simulator's OAuth server: authorize (approves at once), the manual-paste callback page, the token endpoint.

It checks what the real one is reported to check (references/protocol.md §1, references/hermes.md §3): the public client id,
PKCE S256, an exact redirect_uri match, single-use codes and single-use rotating refresh tokens. Which body styles,
user agents, hosts and grants the token endpoint accepts is the active policy's call (``Policy.decide_token``); an
edge refusal (Cloudflare's 1010) is an HTML page, as the real one is.

Under the real host names (the offline rehearsal) the authorize step sends the browser to the callback host the
client registered (``platform.claude.com`` or ``console.anthropic.com``); on plain loopback, where every path is one
origin, to the simulator's own callback page. ``claude.com/cai/oauth/authorize`` redirects to
``claude.ai/oauth/authorize`` as the real one does (the policy's ``[hosts]`` redirects).
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lanelab.sim.account import SimState
from lanelab.sim.features import host_name
from lanelab.sim.grants import OAuthGrantError
from lanelab.sim.outcomes import Reply
from lanelab.sim.replies import note, request_headers
from lanelab.sim.simulator import Simulator

__all__ = ["AUTHORIZE_PATH", "CALLBACK_PATH", "CLIENT_IDS", "LIVE_MANUAL_REDIRECTS", "TOKEN_PATH", "authorize",
           "code_callback", "edge_page", "redirect_response", "routes", "token", "token_body"]

#: The one public client id every peer uses (references/protocol.md §1.1).
CLIENT_IDS = frozenset({"9d1c250a-e61b-44d9-88ed-5944d1962f5e"})
#: Hosted "show the code" pages the real flow uses (references/protocol.md §1.1); the simulator serves its own.
LIVE_MANUAL_REDIRECTS = frozenset({"https://platform.claude.com/oauth/code/callback",
                                   "https://console.anthropic.com/oauth/code/callback"})
CALLBACK_PATH = "/oauth/code/callback"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/v1/oauth/token"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc, status_code=status)


def _bad_authorize(message: str) -> HTMLResponse:
    return _page("Authorization failed", f"<p id='error'>{html.escape(message)}</p>", status=400)


def _is_loopback_callback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and parts.port is not None \
        and parts.path == "/callback"


async def authorize(request: Request, sim: Simulator) -> Response:
    """``GET /oauth/authorize``: validate the request, approve it at once, redirect with ``code`` and ``state``."""
    q = request.query_params
    client_id = q.get("client_id", "")
    if client_id not in CLIENT_IDS:
        return _bad_authorize(f"Unknown client_id {client_id!r}. The simulator only knows Claude's public client id.")
    if q.get("response_type") != "code":
        return _bad_authorize("response_type must be 'code'.")
    if not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
        return _bad_authorize("PKCE is required: send code_challenge with code_challenge_method=S256.")
    if not q.get("state"):
        return _bad_authorize("state is missing; send a random state and check it when the code comes back.")
    scopes = tuple(q.get("scope", "").split())
    if not scopes:
        return _bad_authorize("scope is missing; ask for at least user:inference.")
    redirect_uri = q.get("redirect_uri", "")
    base = str(request.base_url).rstrip("/")
    own_page = not sim.real_hosts and redirect_uri == base + CALLBACK_PATH
    manual = redirect_uri in LIVE_MANUAL_REDIRECTS or own_page
    if not manual and not _is_loopback_callback(redirect_uri):
        return _bad_authorize(f"redirect_uri {redirect_uri!r} is not registered for this client.")
    code = sim.state.grants.issue_code(client_id, redirect_uri, q["code_challenge"], scopes, q["state"])
    sim.state.count("oauth_authorize")
    params = urlencode({"code": code, "state": q["state"]})
    if manual and not sim.real_hosts:
        target = f"{base}{CALLBACK_PATH}?{params}"  # one origin on plain loopback: the simulator's own page
    else:
        target = f"{redirect_uri}?{params}"  # the registered callback host (or the client's loopback listener)
    return RedirectResponse(target, status_code=302)


def redirect_response(request: Request, sim: Simulator) -> Response | None:
    """The redirect the active policy serves at this request's path (its ``[hosts]`` redirects, e.g.
    ``/cai/oauth/authorize`` → ``claude.ai/oauth/authorize``), query kept; None when there is none.

    Under the real names only on the redirect's own host, to the real target; on plain loopback on the one origin,
    to the target's path there."""
    hosts = sim.policy.hosts
    if hosts is None or request.method not in ("GET", "HEAD"):
        return None
    path = request.url.path
    rule = hosts.redirect(host_name(request.headers.get("host")), path) if sim.real_hosts \
        else hosts.redirect_for_path(path)
    if rule is None:
        return None
    target = rule.to if sim.real_hosts else str(request.base_url).rstrip("/") + urlsplit(rule.to).path
    query = request.url.query
    note(request, rule="hosts.redirect", outcome="redirect", lane="none")
    return RedirectResponse(f"{target}?{query}" if query else target, status_code=rule.status)


async def code_callback(request: Request) -> Response:
    """``GET /oauth/code/callback``: the page a user copies ``code#state`` from (manual-paste flows)."""
    code, state = request.query_params.get("code"), request.query_params.get("state", "")
    if not code:
        return _page("Authorization failed", "<p id='error'>No authorization code in this URL.</p>", status=400)
    value = html.escape(f"{code}#{state}")
    return _page("Authentication code",
                 "<p>Paste this code into the application you are signing in to:</p>"
                 f"<code id=\"paste-value\">{value}</code>")


def _oauth_error(sim: Simulator, error: str, description: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """An OAuth error body (RFC 6749 §5.2), its description redacted with the simulator's redactor."""
    return JSONResponse({"error": error, "error_description": sim.state.redactor.redact_text(description)},
                        status_code=status, headers=headers)


def token_body(issued: dict[str, Any], state: SimState) -> dict[str, Any]:
    """The token endpoint's success body for an issued pair (with the account's identity)."""
    identity = state.identity
    body = {"token_type": "Bearer", "access_token": issued["access_token"], "expires_in": issued["expires_in"],
            "scope": issued["scope"],
            "account": {"uuid": identity["account_uuid"], "email_address": identity["email"]},
            "organization": {"uuid": identity["organization_uuid"], "name": identity["organization_name"]}}
    if issued.get("refresh_token"):
        body["refresh_token"] = issued["refresh_token"]
    return body


def _read_form_or_json(raw: bytes, ctype: str) -> tuple[dict[str, Any], str]:
    text = raw.decode("utf-8", errors="replace")
    if ctype == "application/json":
        try:
            body = json.loads(text) if text.strip() else {}
        except (ValueError, RecursionError):
            raise OAuthGrantError("invalid_request", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise OAuthGrantError("invalid_request", "The request body must be a JSON object.")
        return body, ctype
    return dict(parse_qsl(text, keep_blank_values=True)), ctype


def edge_page(reply: Reply, host: str) -> HTMLResponse:
    """An edge refusal as the HTML page the edge serves (Cloudflare's 1010): the simulator's own wording around the
    reported code and name."""
    code, name = html.escape(reply.error_code or ""), html.escape(reply.error_type or "")
    where = html.escape(host or "this site")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(reply.message or 'Refused')} | "
           f"{where}</title></head><body><h1>Error {code}</h1><h2>{html.escape(reply.message or '')}</h2>"
           f"<p>{where} refuses requests from this client signature ({name}).</p>"
           f"<p>Error code {code} · {name}</p></body></html>")
    return HTMLResponse(doc, status_code=reply.status)


def _peek_grant(raw: bytes, ctype: str) -> str | None:
    """The ``grant_type`` of a token request body, without judging the body (None when it cannot be read)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        if ctype == "application/json":
            body = json.loads(text) if text.strip() else {}
            value = body.get("grant_type") if isinstance(body, dict) else None
        else:
            value = dict(parse_qsl(text, keep_blank_values=True)).get("grant_type")
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) else None


async def token(request: Request, sim: Simulator) -> Response:
    """``POST /v1/oauth/token``: ``authorization_code`` and ``refresh_token`` grants."""
    headers = request_headers(request)
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    host = host_name(headers.get("host")) if sim.real_hosts else ""
    raw = await request.body()
    decision = sim.policy.decide_token(request.headers, ctype, host=host, grant_type=_peek_grant(raw, ctype))
    if decision is not None:
        reply = sim.render(decision.outcome)
        note(request, rule=decision.rule_id, outcome=decision.outcome, lane="none")
        if reply.content_type == "text/html":
            return edge_page(reply, host_name(headers.get("host")))
        extra = {"retry-after": str(reply.retry_after)} if reply.retry_after else None
        return _oauth_error(sim, reply.error_type or "invalid_request", reply.message or "Error", reply.status, extra)
    try:
        body, _ = _read_form_or_json(raw, ctype)
        for key in ("code", "code_verifier", "refresh_token"):
            if isinstance(body.get(key), str):
                sim.state.redactor.register_secret(body[key])
        if body.get("client_id") not in CLIENT_IDS:
            raise OAuthGrantError("invalid_client", "Unknown or missing client_id.")
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            issued = sim.state.grants.redeem_code(str(body.get("code") or ""), str(body.get("code_verifier") or ""),
                                           str(body.get("redirect_uri") or ""), str(body["client_id"]))
        elif grant_type == "refresh_token":
            scope = body.get("scope")
            issued = sim.state.grants.rotate_refresh(str(body.get("refresh_token") or ""),
                                              str(scope) if scope else None)
        else:
            raise OAuthGrantError("unsupported_grant_type",
                                  f"grant_type {grant_type!r} is not supported; use authorization_code or "
                                  "refresh_token.")
    except OAuthGrantError as exc:
        note(request, rule="oauth", outcome=exc.error, lane="none")
        return _oauth_error(sim, exc.error, exc.description)
    sim.state.count(f"oauth_{grant_type}")
    note(request, rule="oauth", outcome="token_issued", lane="none")
    return JSONResponse(token_body(issued, sim.state), headers={"cache-control": "no-store"})


def routes(sim: Simulator) -> list[Route]:
    """The OAuth routes of ``sim``: authorize, the paste page, the token endpoint. (Redirect-only paths, such as
    ``/cai/oauth/authorize``, are the active policy's and answered before routing, by :mod:`lanelab.sim.hostmap`.)"""

    async def authorize_route(request: Request) -> Response:
        return await authorize(request, sim)

    async def token_route(request: Request) -> Response:
        return await token(request, sim)

    return [
        Route(AUTHORIZE_PATH, authorize_route, methods=["GET"]),
        Route(CALLBACK_PATH, code_callback, methods=["GET"]),
        Route(TOKEN_PATH, token_route, methods=["POST"]),
    ]
