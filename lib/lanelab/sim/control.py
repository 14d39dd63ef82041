"""The simulator's ``/_sim`` control routes (docs/contracts.md §1): the request log, the account, reset, minting
credentials, the active policy, the fault plan and the clock. They are never faulted by default and never logged.

Every input is checked before anything changes: a body of the wrong shape gets a 400 ``invalid_request_error``
naming the key and what it must be, and the simulator's state stays as it was.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lanelab.sim import policy as policy_mod
from lanelab.sim.account_shape import AccountShapeError
from lanelab.sim.faults import FaultSpecError
from lanelab.sim.grants import MINT_KINDS
from lanelab.sim.replies import bad_input, plain_error, read_object
from lanelab.sim.simulator import Simulator
from lanelab.sim.views import account_view

#: The keys each control body may hold.
TOKEN_KEYS = ("kind", "scopes", "expires_in", "source")

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
            Route("/_sim/clock", self.clock, methods=["GET", "POST"]),
            Route("/_sim/ping", self.ping, methods=["GET", "POST"]),
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
        """``GET /_sim/account``; ``POST`` merges a partial account first (checked whole before anything merges)."""
        if request.method == "POST":
            patch, bad = await read_object(request, "POST /_sim/account")
            if bad is not None:
                return bad
            try:
                self.sim.state.update_account(patch)
            except AccountShapeError as exc:
                return bad_input(request, str(exc))
        return JSONResponse(account_view(self.sim.state))

    async def reset(self, request: Request) -> Response:
        """``POST /_sim/reset``: everything back to how the simulator started (:meth:`Simulator.reset`)."""
        self.sim.reset()
        return JSONResponse(account_view(self.sim.state))

    async def tokens(self, request: Request) -> Response:
        """``POST /_sim/tokens {"kind", "scopes", "expires_in", "source"}``: mint a credential."""
        spec, bad = await read_object(request, "POST /_sim/tokens")
        if bad is not None:
            return bad
        problem = _token_spec_problem(spec)
        if problem:
            return bad_input(request, problem)
        minted = self.sim.mint_token(scopes=spec.get("scopes"), kind=spec.get("kind", "pkce"),
                                     source=spec.get("source"), expires_in=spec.get("expires_in"))
        return JSONResponse(minted)

    async def policy(self, request: Request) -> Response:
        """``GET /_sim/policy``; ``POST {"name": …}`` switches to another policy first."""
        if request.method == "POST":
            spec, bad = await read_object(request, "POST /_sim/policy")
            if bad is not None:
                return bad
            name = spec.get("name")
            if not isinstance(name, str) or set(spec) - {"name"}:
                return bad_input(request, 'POST /_sim/policy takes {"name": "<policy name>"} (a string; one of '
                                          f"{', '.join(policy_mod.list_policies())}).")
            try:
                self.sim.set_policy(name)
            except policy_mod.PolicyNotFound as exc:
                return plain_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse({"name": self.sim.state.policy_name, "available": policy_mod.list_policies(),
                             "date": self.sim.policy.date})

    async def faults(self, request: Request) -> Response:
        """``GET /_sim/faults``; ``POST {"spec": …}`` replaces the fault plan first."""
        if request.method == "POST":
            spec, bad = await read_object(request, "POST /_sim/faults")
            if bad is not None:
                return bad
            value = spec.get("spec")
            if set(spec) - {"spec"} or not (value is None or isinstance(value, str)):
                return bad_input(request, 'POST /_sim/faults takes {"spec": "<fault spec>"} (a string, or null for '
                                          "no faults).")
            try:
                self.sim.faults.set(value or None)
            except FaultSpecError as exc:
                return plain_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse(self.sim.faults.to_dict())

    async def clock(self, request: Request) -> Response:
        """``GET /_sim/clock``; ``POST {"advance": seconds}`` moves the simulator's clock forward first (tests of
        hourly limits, without sleeping)."""
        if request.method == "POST":
            spec, bad = await read_object(request, "POST /_sim/clock")
            if bad is not None:
                return bad
            if set(spec) != {"advance"}:
                return bad_input(request, 'POST /_sim/clock takes {"advance": <seconds, 0 or more>}.')
            try:
                self.sim.clock.advance(spec["advance"])
            except ValueError as exc:
                return bad_input(request, str(exc))
        return JSONResponse({"now": self.sim.clock.now(), "offset": self.sim.clock.offset,
                             "usage_reads_this_hour": self.sim.usage_reads.count()})

    async def ping(self, request: Request) -> Response:
        """``GET|POST /_sim/ping``: a bare route, the benchmark's yardstick. A POST's body is read and dropped, and
        ``?like=messages`` answers with the very status, headers and body of the last answer ``/v1/messages``
        served (404 before there is one): an exchange of the same size both ways that costs the server everything
        but the simulator's own work (credential, features, policy, billing, rendering, and the request log, which
        ``/_sim`` routes never get)."""
        if request.method == "POST":
            await request.body()
        if request.query_params.get("like") == "messages":
            served = self.sim.state.last_served
            if served is None:
                return plain_error(request, 404, "not_found_error", "/v1/messages has served no answer yet.")
            return Response(served.body, served.status_code, headers=served.headers, media_type=None)
        return JSONResponse({"ok": True})


def routes(sim: Simulator) -> list[Route]:
    """The control routes of ``sim``."""
    return ControlRoutes(sim).routes()


def _token_spec_problem(spec: dict[str, Any]) -> str | None:
    """Why a ``POST /_sim/tokens`` body cannot be minted, or None."""
    unknown = sorted(set(spec) - set(TOKEN_KEYS))
    if unknown:
        return f"POST /_sim/tokens: unknown key(s) {unknown}; known: {', '.join(TOKEN_KEYS)}."
    kind = spec.get("kind", "pkce")
    if kind not in MINT_KINDS:
        return f"kind must be one of {', '.join(MINT_KINDS)}."
    scopes = spec.get("scopes")
    if scopes is not None and not (isinstance(scopes, list) and all(isinstance(x, str) and x for x in scopes)):
        return "scopes must be a list of scope names (strings), or null for the kind's default."
    expires = spec.get("expires_in")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)
                                or not 0 <= expires <= 10 * 365 * 86400):
        return "expires_in must be a whole number of seconds from 0 to ten years, or null."
    source = spec.get("source")
    if source is not None and not (isinstance(source, str) and source.strip() and len(source) <= 200):
        return "source must be a short non-empty string, or null."
    return None
