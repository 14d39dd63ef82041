"""Which host name serves which part, when the simulator answers under the real names (the offline rehearsal).

The real service splits its parts over host names: the API on ``api.anthropic.com``, the token endpoint on the
platform, console (and API) hosts, the authorize page on ``claude.ai`` and the Console hosts, the code callback page
on ``platform.claude.com`` and ``console.anthropic.com``, and ``claude.com/cai/oauth/authorize`` only redirects
(the active policy's ``[hosts]``, with sources). With the simulator serving those names, a request for a part on a
host that does not serve it gets 404, as it would there. A host name the table does not list (loopback) is one
origin for every path, as on plain loopback, where this layer only serves the policy's redirects.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request

from lanelab.sim.api import API_PATHS
from lanelab.sim.features import host_name
from lanelab.sim.middleware import ASGIApp, Receive, Send
from lanelab.sim.oauth_server import AUTHORIZE_PATH, CALLBACK_PATH, TOKEN_PATH, redirect_response
from lanelab.sim.replies import note, plain_error
from lanelab.sim.simulator import Simulator

__all__ = ["HostMap", "role_of"]


def role_of(path: str) -> str | None:
    """The part of the service a path belongs to (``api``, ``token``, ``authorize``, ``callback``), or None."""
    if path in API_PATHS:
        return "api"
    return {TOKEN_PATH: "token", AUTHORIZE_PATH: "authorize", CALLBACK_PATH: "callback"}.get(path)


class HostMap:
    """The ASGI layer between the per-request middleware and the routes: redirects, then the host check."""

    def __init__(self, app: ASGIApp, sim: Simulator):
        self.app = app
        self.sim = sim

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        redirect = redirect_response(request, self.sim)
        if redirect is not None:
            await redirect(scope, receive, send)
            return
        hosts = self.sim.policy.hosts
        if self.sim.real_hosts and hosts is not None:
            host = host_name(request.headers.get("host"))
            role = role_of(scope["path"])
            if host in hosts.names and (role is None or not hosts.serves(role, host)):
                note(request, rule="hosts", outcome="not_found", lane="none")
                response = plain_error(request, 404, "not_found_error", f"Not found: {scope['path']}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
