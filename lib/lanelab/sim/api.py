"""The simulator's Anthropic API routes: messages (JSON or SSE), count_tokens, models, the OpenAI-style chat
completions, and the OAuth usage and profile endpoints.

Inference routes ask the policy, answer with the rendered reply, and bill the account for what they served; the
control-plane GETs (models, usage, profile) refuse only for authentication (and the ``user:profile`` scope).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lanelab.sim import sse
from lanelab.sim.faults import FAULT_OUTCOMES
from lanelab.sim.features import TokenInfo, compact_json
from lanelab.sim.ids import new_message_id
from lanelab.sim.outcomes import Reply
from lanelab.sim.policy import Decision
from lanelab.sim.replies import error_response, note, read_lenient, request_headers, request_id
from lanelab.sim.simulator import Simulator
from lanelab.sim.views import profile_view, usage_view

__all__ = ["API_PATHS", "AUTH_OUTCOMES", "DEFAULT_MODEL", "REPLY_TEXT", "USAGE_PATH", "ApiRoutes", "estimate_tokens",
           "routes"]

#: The model a served reply names when the request named none.
DEFAULT_MODEL = "claude-sonnet-4-6"
USAGE_PATH = "/api/oauth/usage"
#: The paths this module serves (answered only on the API host when the simulator serves under the real names).
API_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/chat/completions",
                       "/chat/completions", USAGE_PATH, "/api/oauth/profile"})
#: Outcomes that are about *who* is calling; control-plane GETs refuse only for these (billing lanes don't apply).
AUTH_OUTCOMES = frozenset({"oauth_unsupported", "invalid_x_api_key", "invalid_bearer", "token_expired",
                           "scope_insufficient"})
REPLY_TEXT = "Hello from the lanelab simulator. This reply was served under policy {policy}, rule {rule}."

def estimate_tokens(value: Any) -> int:
    """A token estimate of about four characters per token (what count_tokens returns, and what is billed)."""
    text = value if isinstance(value, str) else compact_json(value)
    return max(1, (len(text) + 3) // 4)


class ApiRoutes:
    """The API endpoints of one simulator."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/chat/completions", self.chat_completions, methods=["POST"]),
            Route(USAGE_PATH, self.usage, methods=["GET"]),
            Route("/api/oauth/profile", self.profile, methods=["GET"]),
        ]

    # ---- deciding ------------------------------------------------------------------------------------------
    def _decide(self, request: Request, body: Any) -> tuple[TokenInfo, Decision, Reply]:
        """Token → features → decision → reply, noted on the request for the log. The path is the route's own
        (``scope["path"]``: a fixed path, what ``request.url.path`` would give); the query is read only when there is
        one."""
        scope = request.scope
        query = dict(request.query_params) if scope["query_string"] else {}
        token, decision, reply = self.sim.decide(request.method, scope["path"], query, request_headers(request), body)
        note(request, rule=decision.rule_id, outcome=decision.outcome, lane=reply.lane)
        return token, decision, reply

    def _refusal(self, request: Request, reply: Reply) -> JSONResponse:
        return error_response(request, reply, self.sim.reply_headers(reply))

    async def _decided(self, request: Request) -> tuple[dict[str, Any], Decision, Reply, Response | None]:
        """The body (a dict, even for junk), the policy's decision and reply, and the error response if refused."""
        body = await read_lenient(request)
        _, decision, reply = self._decide(request, body)
        refused = self._refusal(request, reply) if reply.status >= 400 else None
        return (body if isinstance(body, dict) else {}), decision, reply, refused

    def _reply_text(self, decision: Decision) -> str:
        return REPLY_TEXT.format(policy=self.sim.state.policy_name, rule=decision.rule_id)

    # ---- inference -----------------------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        body, decision, reply, refused = await self._decided(request)
        if refused is not None:
            return refused
        model = str(body.get("model") or DEFAULT_MODEL)
        text = self._reply_text(decision)
        asked = body.get("max_tokens")
        max_tokens = asked if isinstance(asked, int) else 4096
        stop = "end_turn"
        if estimate_tokens(text) > max_tokens:
            text, stop = text[: max(1, max_tokens * 4)], "max_tokens"
        input_tokens = estimate_tokens({k: body.get(k) for k in ("system", "messages", "tools") if k in body})
        output_tokens = estimate_tokens(text)
        message = {"id": new_message_id(), "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": text}], "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": output_tokens,
                             "service_tier": "standard"}}
        stream_fault = request.scope["state"]["lanelab"].get("stream_fault")
        if stream_fault is not None:
            failed = self.sim.render(FAULT_OUTCOMES[stream_fault.kind])
            if body.get("stream") is True:
                note(request, rule="fault", outcome=f"fault:{stream_fault.kind}:stream", lane="none")
                return StreamingResponse(sse.error_events(message, failed.error_body(request_id(request))),
                                         media_type="text/event-stream")
            # a streamed-error fault on a request that does not stream: a plain error
            note(request, rule="fault", outcome=f"fault:{stream_fault.kind}", lane="none")
            return self._refusal(request, failed)
        self.sim.state.billing.charge(reply.lane, input_tokens + output_tokens, model)
        self.sim.state.count(f"served_{reply.lane}")
        headers = self.sim.reply_headers(reply)
        if body.get("stream") is True:
            return StreamingResponse(sse.message_events(message), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        served = self.sim.state.last_served = JSONResponse(message, headers=headers)
        return served

    async def count_tokens(self, request: Request) -> Response:
        body, _, _, refused = await self._decided(request)
        if refused is not None:
            return refused
        counted = {k: body.get(k) for k in ("system", "messages", "tools") if k in body}
        return JSONResponse({"input_tokens": estimate_tokens(counted)})

    async def chat_completions(self, request: Request) -> Response:
        body, decision, reply, refused = await self._decided(request)
        if refused is not None:
            return refused
        model = str(body.get("model") or DEFAULT_MODEL)
        text = self._reply_text(decision)
        prompt, completion = estimate_tokens(body.get("messages") or ""), estimate_tokens(text)
        self.sim.state.billing.charge(reply.lane, prompt + completion, model)
        self.sim.state.count(f"served_{reply.lane}")
        result = {"id": "chatcmpl-" + new_message_id()[6:], "object": "chat.completion", "created": int(time.time()),
                  "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}}
        headers = self.sim.reply_headers(reply)
        if body.get("stream") is True:
            return StreamingResponse(sse.chat_events(result), media_type="text/event-stream", headers=headers)
        return JSONResponse(result, headers=headers)

    # ---- control plane -------------------------------------------------------------------------------------
    async def _control_plane(self, request: Request, need_profile_scope: bool) -> Response | None:
        """Gate for GET endpoints that bill nothing: refuse only for authentication (and the profile scope)."""
        token, decision, reply = self._decide(request, None)
        if decision.outcome in AUTH_OUTCOMES and reply.status >= 400:
            return self._refusal(request, reply)
        if need_profile_scope and "user:profile" not in token.scopes:
            reply = self.sim.render("scope_insufficient")
            note(request, rule="scope:user:profile", outcome="scope_insufficient", lane="none")
            return self._refusal(request, reply)
        note(request, lane="none")
        return None

    async def models(self, request: Request) -> Response:
        refused = await self._control_plane(request, need_profile_scope=False)
        if refused is not None:
            return refused
        data = [{"type": "model", "id": m.id, "display_name": m.display_name, "created_at": m.created_at}
                for m in self.sim.policy.models]
        return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None})

    async def usage(self, request: Request) -> Response:
        refused = await self._control_plane(request, need_profile_scope=True)
        if refused is not None:
            return refused
        wait = self.sim.usage_reads.take(self.sim.policy.service.usage_reads_per_hour)
        if wait is not None:
            reply = self.sim.render("usage_rate_limited")
            note(request, rule="usage_reads_per_hour", outcome="usage_rate_limited", lane="none")
            return error_response(request, reply, {"retry-after": str(wait)})
        return JSONResponse(usage_view(self.sim.state.billing))

    async def profile(self, request: Request) -> Response:
        refused = await self._control_plane(request, need_profile_scope=True)
        return refused or JSONResponse(profile_view(self.sim.state.billing, self.sim.state.identity))


def routes(sim: Simulator) -> list[Route]:
    """The API routes of ``sim``."""
    return ApiRoutes(sim).routes()
