"""The simulator's ``/_sim`` control routes (docs/contracts.md §1): the request log, the account, reset, minting
credentials, the active policy and the fault plan. They are never faulted by default and never logged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lanelab.sim import policy as policy_mod
from lanelab.sim.faults import FaultSpecError
from lanelab.sim.replies import plain_error, read_json
from lanelab.sim.simulator import Simulator
from lanelab.sim.views import account_view

__all__ = ["ControlRoutes", "routes"]


class ControlRoutes:
    """The ``/_sim`` endpoints of one simulator."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/requests", self.requests, methods=["GET", "DELETE"]),
            Route("/_sim/account", self.account, methods=["GET", "POST"]),
            Route("/_sim/reset", self.reset, methods=["POST"]),
            Route("/_sim/tokens", self.tokens, methods=["POST"]),
            Route("/_sim/policy", self.policy, methods=["GET", "POST"]),
            Route("/_sim/faults", self.faults, methods=["GET", "POST"]),
            Route("/_sim/ping", self.ping, methods=["GET"]),
        ]

    async def requests(self, request: Request) -> Response:
        """``GET /_sim/requests[?since=SEQ]``: the log after ``since``; ``DELETE`` clears it."""
        if request.method == "DELETE":
            self.sim.state.log.clear()
            return JSONResponse({"cleared": True})
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return plain_error(request, 400, "invalid_request_error", "since must be a whole number.")
        return JSONResponse(self.sim.state.log.since(since))

    async def account(self, request: Request) -> Response:
        """``GET /_sim/account``; ``POST`` merges a partial account first."""
        if request.method == "POST":
            patch, bad = await read_json(request)
            if bad is not None:
                return bad
            if not isinstance(patch, dict):
                return plain_error(request, 400, "invalid_request_error",
                                   "POST /_sim/account takes a JSON object to merge into the account.")
            self.sim.state.update_account(patch)
        return JSONResponse(account_view(self.sim.state))

    async def reset(self, request: Request) -> Response:
        """``POST /_sim/reset``: everything back to how the simulator started (:meth:`Simulator.reset`)."""
        self.sim.reset()
        return JSONResponse(account_view(self.sim.state))

    async def tokens(self, request: Request) -> Response:
        """``POST /_sim/tokens {"kind", "scopes", "expires_in", "source"}``: mint a credential."""
        spec, bad = await read_json(request)
        if bad is not None:
            return bad
        spec = spec if isinstance(spec, dict) else {}
        try:
            minted = self.sim.mint_token(scopes=spec.get("scopes"), kind=spec.get("kind", "pkce"),
                                         source=spec.get("source"), expires_in=spec.get("expires_in"))
        except ValueError as exc:
            return plain_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse(minted)

    async def policy(self, request: Request) -> Response:
        """``GET /_sim/policy``; ``POST {"name": …}`` switches to another policy first."""
        if request.method == "POST":
            spec, bad = await read_json(request)
            if bad is not None:
                return bad
            try:
                self.sim.set_policy(str((spec or {}).get("name", "")))
            except policy_mod.PolicyNotFound as exc:
                return plain_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse({"name": self.sim.state.policy_name, "available": policy_mod.list_policies()})

    async def faults(self, request: Request) -> Response:
        """``GET /_sim/faults``; ``POST {"spec": …}`` replaces the fault plan first."""
        if request.method == "POST":
            spec, bad = await read_json(request)
            if bad is not None:
                return bad
            try:
                self.sim.faults.set((spec or {}).get("spec") or None)
            except FaultSpecError as exc:
                return plain_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse(self.sim.faults.to_dict())

    async def ping(self, request: Request) -> Response:
        """``GET /_sim/ping``: a bare route (the benchmark's yardstick)."""
        return JSONResponse({"ok": True})


def routes(sim: Simulator) -> list[Route]:
    """The control routes of ``sim``."""
    return ControlRoutes(sim).routes()
