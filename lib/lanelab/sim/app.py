"""The simulator as an ASGI app: the per-request middleware (request id, faults, log) in front of the host map (which
host name serves which part, under the real names) and a router holding the API routes, the OAuth server and the
``/_sim`` control routes, all backed by one :class:`Simulator`.

Unknown paths answer 404 ``not_found_error`` and wrong methods 405, in the API's error shape.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from lanelab.config import DEFAULT_POLICY
from lanelab.sim import api, control, oauth_server
from lanelab.sim.account import SimState
from lanelab.sim.hostmap import HostMap
from lanelab.sim.middleware import Receive, RequestMiddleware, Send
from lanelab.sim.replies import note, plain_error
from lanelab.sim.simulator import Simulator

__all__ = ["SimApp", "create_app"]


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    note(request, rule="router", outcome="not_found", lane="none")
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return plain_error(request, 405, "invalid_request_error",
                           f"Method {request.method} is not allowed on {request.url.path}.")
    return plain_error(request, 404, "not_found_error", f"Not found: {request.url.path}")


class SimApp:
    """The ASGI callable of one simulator; ``.simulator`` is its model and ``.state`` the live :class:`SimState`."""

    def __init__(self, simulator: Simulator):
        self.simulator = simulator
        router = Starlette(routes=[*api.routes(simulator), *oauth_server.routes(simulator),
                                   *control.routes(simulator)],
                           exception_handlers={404: _not_found, 405: _not_found})
        self._asgi = RequestMiddleware(HostMap(router, simulator), simulator)

    @property
    def state(self) -> SimState:
        return self.simulator.state

    def __repr__(self) -> str:
        return f"<SimApp {self.simulator!r}>"

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def create_app(policy: str = DEFAULT_POLICY, faults: str | None = None, account: dict[str, Any] | None = None,
               seed: int = 0, real_hosts: bool = False) -> SimApp:
    """The simulator as an ASGI app (``real_hosts``: it answers under the real host names, see
    :mod:`lanelab.sim.hostmap`). Raises ``PolicyNotFound`` (unknown policy), ``FaultSpecError`` (bad spec) or
    ``AccountShapeError`` (an account of the wrong shape)."""
    return SimApp(Simulator(policy=policy, faults=faults, account=account, seed=seed, real_hosts=real_hosts))
