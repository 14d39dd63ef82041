"""The runner's side of the simulator's control routes: which policy it runs, a fresh token, whether it knows a token.

These talk to the embedded simulator only (a loopback URL); against any other server they answer "not the
simulator" (:func:`sim_policy`, :func:`sim_account`, :func:`sim_knows`) or refuse (:func:`sim_token`). Every token
they see is registered as a secret at once, so it is masked wherever it might be shown.
"""

from __future__ import annotations

from typing import Any

import httpx

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.config import is_loopback_url
from lanelab.matrix.errors import RunnerError

__all__ = ["sim_account", "sim_knows", "sim_mint", "sim_policy", "sim_token"]


def sim_policy(base_url: str, client: httpx.Client | None = None) -> str | None:
    """The simulator's active policy name (``GET /_sim/policy``).

    Returns the policy name, or None when the server is not the simulator (any HTTP error or unexpected answer).
    Raises nothing.
    """
    try:
        own = client or lanelab_http.client(base_url, timeout=5.0)
        try:
            r = own.get(base_url.rstrip("/") + "/_sim/policy")
        finally:
            if client is None:
                own.close()
        if r.status_code != 200:
            return None
        data = r.json()
        return str(data.get("name") or data.get("policy")) if isinstance(data, dict) else str(data)
    except (httpx.HTTPError, ValueError):
        return None


def sim_account(base_url: str) -> dict[str, Any] | None:
    """The simulator's account as it stands (``GET /_sim/account``: plan, window use, extra usage), which a run
    records so that its timeline replays the request under the same account.

    Returns the account table, or None when the server is not the simulator. Raises nothing.
    """
    try:
        with lanelab_http.client(base_url, timeout=5.0) as own:
            r = own.get(base_url.rstrip("/") + "/_sim/account")
        account = r.json().get("account") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return account if isinstance(account, dict) else None


def sim_token(base_url: str, kind: str = "pkce", scopes: list[str] | None = None, source: str | None = None) -> str:
    """Mint a credential from the simulator (``POST /_sim/tokens``).

    Returns the access token, already registered as a secret. Raises :class:`RunnerError` when ``base_url`` is not a
    loopback http URL (live mode never mints), when the simulator cannot be reached, or when it refuses.
    """
    return sim_mint(base_url, kind, scopes, source)["access_token"]


def sim_mint(base_url: str, kind: str = "pkce", scopes: list[str] | None = None,
             source: str | None = None) -> dict[str, Any]:
    """Mint a credential from the simulator (``POST /_sim/tokens``) and return everything it answered
    (``access_token``, ``refresh_token``, ``expires_in``, ``scopes``…), every secret registered. Raises as
    :func:`sim_token`."""
    if not (base_url.startswith("http://") and is_loopback_url(base_url)):
        raise RunnerError("Tokens can be minted only from the loopback simulator.",
                          "Use a saved credential (notebook 01 or 'python -m lanelab login') in live mode.")
    payload: dict[str, Any] = {"kind": kind, "source": source or f"lanelab:{kind}"}
    if scopes is not None:
        payload["scopes"] = scopes
    try:
        with lanelab_http.client(base_url, timeout=10.0) as http:
            r = http.post(base_url.rstrip("/") + "/_sim/tokens", json=payload)
        minted = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise RunnerError(f"Could not mint a token from {base_url} ({type(exc).__name__}).",
                          "Check LANELAB_BASE_URL points at a running 'python -m lanelab sim'.") from None
    if not isinstance(minted, dict) or not isinstance(minted.get("access_token"), str):
        raise RunnerError(f"The simulator refused to mint a {kind} token (HTTP {r.status_code}).",
                          "Check LANELAB_BASE_URL points at 'python -m lanelab sim'.")
    redact.register_secret(minted["access_token"])
    if isinstance(minted.get("refresh_token"), str):
        redact.register_secret(minted["refresh_token"])
    return minted


def sim_knows(base_url: str, token: str) -> bool:
    """Whether the simulator at ``base_url`` accepts ``token`` (a free ``GET /v1/models``; anything but a 401 counts
    as known). Returns False when the server cannot be reached; raises nothing."""
    redact.register_secret(token)
    try:
        with lanelab_http.client(base_url, timeout=5.0) as http:
            r = http.get(base_url.rstrip("/") + "/v1/models",
                         headers={"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
                                  "anthropic-version": "2023-06-01"})
    except httpx.HTTPError:
        return False
    return r.status_code != 401
