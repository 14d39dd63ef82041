"""The simulator's ASGI app: the Anthropic API and OAuth surface, backed by a policy engine and one account.

A request flows: faults (maybe delay, fail or damage it) → credential → features → policy decision → rendered
reply → billing effect on the account → response with the unified headers of the new account state. The outer
ASGI wrapper gives every response a ``request-id`` and writes one redacted line per request to the log.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lanelab import redact
from lanelab.config import DEFAULT_POLICY
from lanelab.sim import faults as faults_mod
from lanelab.sim import features, oauth_server, outcomes, sse
from lanelab.sim import policy as policy_mod
from lanelab.sim.account import SimState, new_message_id, new_request_id

#: Illustrative model list for ``GET /v1/models`` (names from references/hermes.md §1 F12; not a catalogue).
MODELS = (("claude-opus-4-7", "Claude Opus 4.7"), ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
          ("claude-sonnet-4-5", "Claude Sonnet 4.5"), ("claude-haiku-4-5", "Claude Haiku 4.5"))
#: Outcomes that are about *who* is calling; control-plane GETs refuse only for these (billing lanes don't apply).
AUTH_OUTCOMES = frozenset({"oauth_unsupported", "invalid_x_api_key", "invalid_bearer", "token_expired",
                           "scope_insufficient"})
#: Faults → the outcome whose rendered reply they return.
FAULT_OUTCOMES = {"http500": "server_error", "http529": "overloaded", "http429": "rate_limited"}
#: Request bodies longer than this (serialised) are truncated in the log.
LOG_BODY_LIMIT = 16_000
REPLY_TEXT = "Hello from the lanelab simulator. This reply was served under policy {policy}, rule {rule}."


def estimate_tokens(value: Any) -> int:
    """A token estimate of about four characters per token (what count_tokens returns, and what is billed)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return max(1, (len(text) + 3) // 4)


def _drop_connection(send: Callable[..., Any]) -> None:
    """Close the client's connection without a response (an RST), as a flaky network would."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("reset fault: this server does not expose its transport; run the simulator on uvicorn.")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    cycle.disconnected = True


def _log_body(raw: bytes, content_type: str) -> Any:
    """A request body fit for the log: parsed and redacted, truncated when large."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    body: Any
    if "json" in content_type:
        try:
            body = redact.redact_obj(json.loads(text))
        except ValueError:
            body = redact.redact_text(text)
    elif "x-www-form-urlencoded" in content_type:
        body = redact.redact_obj(dict(parse_qsl(text, keep_blank_values=True)))
    else:
        body = redact.redact_text(text)
    dumped = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if len(dumped) > LOG_BODY_LIMIT:
        return {"truncated": True, "chars": len(dumped), "preview": redact.redact_text(dumped[:LOG_BODY_LIMIT])}
    return body


async def _read_body_first(receive: Callable[..., Any]) -> Callable[..., Any]:
    """Read the whole request body now and return a ``receive`` that replays it, then defers to the original."""
    buffered: list[dict[str, Any]] = []
    while True:
        message = await receive()
        buffered.append(message)
        if message.get("type") != "http.request" or not message.get("more_body"):
            break

    async def replay() -> dict[str, Any]:
        return buffered.pop(0) if buffered else await receive()

    return replay


class Simulator:
    """One simulator instance: state, policy, faults, and the ASGI callable that serves them."""

    def __init__(self, policy: str = DEFAULT_POLICY, faults: str | None = None, account: dict[str, Any] | None = None,
                 seed: int = 0):
        base = outcomes.default_account()
        self.state = SimState(account=base)
        if account:
            self.state.update_account(account)
            self.state.set_baseline()
        self.faults = faults_mod.FaultPlan(faults, seed=seed)
        self.set_policy(policy)
        self.router = Starlette(routes=self._routes(), exception_handlers={
            404: self._not_found, 405: self._not_found})

    # ---- configuration ---------------------------------------------------------------------------------------
    def set_policy(self, name: str) -> None:
        if name not in policy_mod.list_policies():  # a name, never a path, from a client of the simulator
            raise policy_mod.PolicyNotFound(f"No simulator policy named {name!r}.",
                                            f"Choose one of: {', '.join(policy_mod.list_policies()) or '(none)'}.")
        self.policy = policy_mod.load_policy(name)
        self.state.policy_name = name

    def render(self, outcome: str) -> Any:
        return outcomes.render(outcome, self.state.snapshot())

    def mint_token(self, scopes: list[str] | None = None, kind: str = "pkce", source: str | None = None,
                   expires_in: int | None = None) -> dict[str, Any]:
        return self.state.mint_token(scopes=scopes, kind=kind, source=source, expires_in=expires_in)

    @staticmethod
    def note(request: Request, **fields: Any) -> None:
        """Attach what the handler decided (rule, outcome, lane) to the request, for the log line."""
        request.scope.setdefault("state", {}).setdefault("lanelab", {}).update(fields)

    # ---- the ASGI entry point: request id, faults, log ---------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        request_id = new_request_id()
        meta: dict[str, Any] = {}
        scope.setdefault("state", {}).update(request_id=request_id, lanelab=meta)
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        chunks: list[bytes] = []
        outcome: dict[str, Any] = {"status": None}

        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        started = time.time()
        chosen: list[faults_mod.Fault] = []
        logged = False

        def write_log() -> None:
            nonlocal logged
            if logged or path.startswith("/_sim/"):
                return
            logged = True
            self.state.record({
                "time": started, "method": scope["method"], "path": path,
                "query": redact.redact_obj(dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))),
                "headers": redact.redact_headers(headers),
                "body": _log_body(b"".join(chunks), headers.get("content-type", "")),
                "status": outcome["status"], "rule": meta.get("rule"), "outcome": meta.get("outcome"),
                "lane": meta.get("lane"), "request_id": request_id,
                "faults": [f.describe() for f in chosen],
            })

        try:
            chosen = self.faults.select(path, headers.get(faults_mod.HEADER))
        except faults_mod.FaultSpecError as exc:
            meta.update(rule="fault_header", outcome="bad_fault_header")
            plain = self._wrap_send(send, request_id, outcome, False, None, write_log)
            await self._respond_error(scope, plain, request_id, 400, "invalid_request_error", str(exc), outcome)
        else:
            await self._serve_with_faults(scope, recording_receive, send, request_id, chosen, meta, outcome,
                                          write_log)
        write_log()  # requests that ended without a response (a reset) are logged here

    async def _respond_error(self, scope: dict[str, Any], send: Callable[..., Any], request_id: str, status: int,
                             error_type: str, message: str, outcome: dict[str, Any],
                             headers: dict[str, str] | None = None) -> None:
        body = {"type": "error", "error": {"type": error_type, "message": redact.redact_text(message)},
                "request_id": request_id}
        response = JSONResponse(body, status_code=status, headers={**(headers or {}), "request-id": request_id})
        outcome["status"] = status
        await response(scope, self._noop_receive, send)

    @staticmethod
    async def _noop_receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def _serve_with_faults(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any],
                                 request_id: str, chosen: list[faults_mod.Fault], meta: dict[str, Any],
                                 outcome: dict[str, Any], write_log: Callable[[], None]) -> None:
        delay = sum(f.latency_s for f in chosen if f.kind == "latency")
        if delay:
            receive = await _read_body_first(receive)  # a client that gives up during the delay is still logged
            await asyncio.sleep(delay)
        terminal = next((f for f in chosen if f.kind in faults_mod.TERMINAL), None)
        if terminal is not None and terminal.kind == "reset":
            meta.update(rule="fault", outcome="fault:reset", lane="none")
            _drop_connection(send)
            return
        if terminal is not None and not terminal.mid_stream:
            reply = self.render(FAULT_OUTCOMES[terminal.kind])
            meta.update(rule="fault", outcome=f"fault:{terminal.kind}", lane="none")
            extra = dict(self._reply_headers(reply))
            if terminal.kind == "http429":
                extra["retry-after"] = str(terminal.retry_after)
            plain = self._wrap_send(send, request_id, outcome, False, None, write_log)
            await self._respond_error(scope, plain, request_id, reply.status, reply.error_type or "api_error",
                                      reply.message or "Error", outcome, extra)
            return
        if terminal is not None:
            meta["stream_fault"] = terminal
        malformed = any(f.kind == "malformed_json" for f in chosen)
        cut = next((f for f in chosen if f.kind == "sse_cut"), None)
        await self.router(scope, receive, self._wrap_send(send, request_id, outcome, malformed, cut, write_log))

    def _wrap_send(self, send: Callable[..., Any], request_id: str, outcome: dict[str, Any], malformed: bool,
                   cut: faults_mod.Fault | None, before_end: Callable[[], None]) -> Callable[..., Any]:
        """A ``send`` that stamps the request id, applies the in-flight faults (malformed JSON, SSE cut) and
        calls ``before_end`` (the log line) just before the last body chunk leaves, so a client never outruns it."""

        async def finish(message: dict[str, Any]) -> None:
            before_end()
            await send(message)

        held: dict[str, Any] = {"start": None, "body": b"", "deltas": 0, "done": False, "sse": False}

        async def wrapped(message: dict[str, Any]) -> None:
            if held["done"]:
                return
            if message["type"] == "http.response.start":
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                hdrs.append((b"request-id", request_id.encode()))
                ctype = next((v for k, v in hdrs if k.lower() == b"content-type"), b"")
                held["sse"] = b"text/event-stream" in ctype
                message = {**message, "headers": hdrs}
                outcome["status"] = message["status"]
                if malformed and b"json" in ctype:
                    held["start"] = message
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and held["start"] is not None:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                broken = held["body"][: max(1, len(held["body"]) // 2)]
                start = held["start"]
                hdrs = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                hdrs.append((b"content-length", str(len(broken)).encode()))
                outcome["status"] = 200
                await send({**start, "status": 200, "headers": hdrs})
                await finish({"type": "http.response.body", "body": broken, "more_body": False})
                held["done"] = True
                return
            if message["type"] == "http.response.body" and cut is not None and held["sse"]:
                chunk = message.get("body", b"")
                if b"event: content_block_delta" in chunk:
                    held["deltas"] += 1
                    if held["deltas"] > cut.cut_after:
                        await finish({"type": "http.response.body", "body": b"", "more_body": False})
                        held["done"] = True
                        return
            if message["type"] == "http.response.body" and not message.get("more_body"):
                await finish(message)
                return
            await send(message)

        return wrapped

    # ---- helpers ---------------------------------------------------------------------------------------------
    def _reply_headers(self, reply: Any) -> dict[str, str]:
        headers: dict[str, str] = {}
        if getattr(reply, "unified", False):
            headers.update(self.state.unified_headers(reply.lane, reply.status))
        if getattr(reply, "lane", None) == "api":
            headers.update(self.state.api_key_headers())
        if getattr(reply, "retry_after", None):
            headers["retry-after"] = str(reply.retry_after)
        return headers

    def _error_response(self, request: Request, reply: Any) -> JSONResponse:
        error: dict[str, Any] = {"type": reply.error_type or "api_error", "message": reply.message or "Error"}
        if getattr(reply, "error_code", None):
            error["details"] = {"error_code": reply.error_code}
        body = {"type": "error", "error": error, "request_id": request.state.request_id}
        return JSONResponse(body, status_code=reply.status, headers=self._reply_headers(reply))

    def _simple_error(self, request: Request, status: int, error_type: str, message: str) -> JSONResponse:
        body = {"type": "error", "error": {"type": error_type, "message": message},
                "request_id": request.state.request_id}
        return JSONResponse(body, status_code=status)

    async def _not_found(self, request: Request, exc: HTTPException) -> JSONResponse:
        self.note(request, rule="router", outcome="not_found", lane="none")
        if exc.status_code == 405:
            return self._simple_error(request, 405, "invalid_request_error",
                                      f"Method {request.method} is not allowed on {request.url.path}.")
        return self._simple_error(request, 404, "not_found_error", f"Not found: {request.url.path}")

    @staticmethod
    async def _lenient_body(request: Request) -> Any:
        """An inference body: parsed JSON, or the raw text when it is not JSON (the policy judges junk)."""
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    async def _json_body(self, request: Request) -> tuple[Any, JSONResponse | None]:
        raw = await request.body()
        if not raw:
            return None, None
        try:
            return json.loads(raw), None
        except ValueError:
            self.note(request, rule="parser", outcome="invalid_json", lane="none")
            return None, self._simple_error(request, 400, "invalid_request_error",
                                            "There was an error parsing the body of your request: not valid JSON.")

    def token_info(self, headers: dict[str, str]) -> Any:
        """The presented credential (x-api-key wins over Bearer, as on the real API) as a ``TokenInfo``."""
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        value = headers.get("x-api-key") or bearer
        d = self.state.describe(value)
        return features.TokenInfo(kind=d["kind"], valid=d["valid"], expired=d["expired"],
                                  scopes=tuple(d["scopes"]), source=d["source"])

    def decide(self, request: Request, body: Any) -> tuple[Any, Any, Any]:
        """Token → features → decision → reply, noted on the request for the log."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        token = self.token_info(headers)
        feats = features.extract(request.method, request.url.path, dict(request.query_params), headers, body, token)
        decision = self.policy.decide(feats)
        reply = self.render(decision.outcome)
        self.note(request, rule=decision.rule_id, outcome=decision.outcome, lane=reply.lane)
        return token, decision, reply

    # ---- API routes ------------------------------------------------------------------------------------------
    async def _decided(self, request: Request) -> tuple[dict[str, Any], Any, Any, Response | None]:
        """The body (a dict, even for junk), the policy's decision and reply, and the error response if refused."""
        body = await self._lenient_body(request)
        _, decision, reply = self.decide(request, body)
        refused = self._error_response(request, reply) if reply.status >= 400 else None
        return (body if isinstance(body, dict) else {}), decision, reply, refused

    def _reply_text(self, decision: Any) -> str:
        return REPLY_TEXT.format(policy=self.state.policy_name, rule=decision.rule_id)

    async def messages(self, request: Request) -> Response:
        body, decision, reply, refused = await self._decided(request)
        if refused is not None:
            return refused
        model = str(body.get("model") or MODELS[1][0])
        text = self._reply_text(decision)
        max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else 4096
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
        stream_fault = request.state.lanelab.get("stream_fault")
        if stream_fault is not None and body.get("stream") is True:
            failed = self.render(FAULT_OUTCOMES[stream_fault.kind])
            self.note(request, rule="fault", outcome=f"fault:{stream_fault.kind}:stream", lane="none")
            error = {"type": "error", "error": {"type": failed.error_type, "message": failed.message},
                     "request_id": request.state.request_id}
            return StreamingResponse(sse.error_events(message, error), media_type="text/event-stream")
        if stream_fault is not None:  # a streamed-error fault on a request that does not stream: a plain error
            self.note(request, rule="fault", outcome=f"fault:{stream_fault.kind}", lane="none")
            return self._error_response(request, self.render(FAULT_OUTCOMES[stream_fault.kind]))
        self.state.charge(reply.lane, input_tokens + output_tokens, model)
        self.state.count(f"served_{reply.lane}")
        headers = self._reply_headers(reply)
        if body.get("stream") is True:
            return StreamingResponse(sse.message_events(message), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        return JSONResponse(message, headers=headers)

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
        model = str(body.get("model") or MODELS[1][0])
        text = self._reply_text(decision)
        prompt, completion = estimate_tokens(body.get("messages") or ""), estimate_tokens(text)
        self.state.charge(reply.lane, prompt + completion, model)
        self.state.count(f"served_{reply.lane}")
        result = {"id": "chatcmpl-" + new_message_id()[6:], "object": "chat.completion", "created": int(time.time()),
                  "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}}
        headers = self._reply_headers(reply)
        if body.get("stream") is True:
            return StreamingResponse(sse.chat_events(result), media_type="text/event-stream", headers=headers)
        return JSONResponse(result, headers=headers)

    async def _control_plane(self, request: Request, need_profile_scope: bool) -> Response | None:
        """Gate for GET endpoints that bill nothing: refuse only for authentication (and the profile scope)."""
        token, decision, reply = self.decide(request, None)
        if decision.outcome in AUTH_OUTCOMES and reply.status >= 400:
            return self._error_response(request, reply)
        if need_profile_scope and "user:profile" not in token.scopes:
            reply = self.render("scope_insufficient")
            self.note(request, rule="scope:user:profile", outcome="scope_insufficient", lane="none")
            return self._error_response(request, reply)
        self.note(request, lane="none")
        return None

    async def models(self, request: Request) -> Response:
        refused = await self._control_plane(request, need_profile_scope=False)
        if refused is not None:
            return refused
        created = "2026-01-01T00:00:00Z"
        data = [{"type": "model", "id": mid, "display_name": name, "created_at": created} for mid, name in MODELS]
        return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    async def usage(self, request: Request) -> Response:
        return await self._control_plane(request, need_profile_scope=True) or JSONResponse(self.state.usage_view())

    async def profile(self, request: Request) -> Response:
        return await self._control_plane(request, need_profile_scope=True) or JSONResponse(self.state.profile_view())

    async def authorize(self, request: Request) -> Response:
        return await oauth_server.authorize(request, self)

    async def code_callback(self, request: Request) -> Response:
        return await oauth_server.code_callback(request)

    async def oauth_token(self, request: Request) -> Response:
        return await oauth_server.token(request, self)

    # ---- /_sim control routes --------------------------------------------------------------------------------
    async def sim_requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.clear_log()
            return JSONResponse({"cleared": True})
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return self._simple_error(request, 400, "invalid_request_error", "since must be a whole number.")
        return JSONResponse(self.state.requests(since))

    async def sim_account(self, request: Request) -> Response:
        if request.method == "POST":
            patch, bad = await self._json_body(request)
            if bad is not None:
                return bad
            if not isinstance(patch, dict):
                return self._simple_error(request, 400, "invalid_request_error",
                                          "POST /_sim/account takes a JSON object to merge into the account.")
            self.state.update_account(patch)
        return JSONResponse(self.state.account_view())

    async def sim_reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse(self.state.account_view())

    async def sim_tokens(self, request: Request) -> Response:
        spec, bad = await self._json_body(request)
        if bad is not None:
            return bad
        spec = spec if isinstance(spec, dict) else {}
        try:
            minted = self.mint_token(scopes=spec.get("scopes"), kind=spec.get("kind", "pkce"),
                                     source=spec.get("source"), expires_in=spec.get("expires_in"))
        except ValueError as exc:
            return self._simple_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse(minted)

    async def sim_policy(self, request: Request) -> Response:
        if request.method == "POST":
            spec, bad = await self._json_body(request)
            if bad is not None:
                return bad
            try:
                self.set_policy(str((spec or {}).get("name", "")))
            except policy_mod.PolicyNotFound as exc:
                return self._simple_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse({"name": self.state.policy_name, "available": policy_mod.list_policies()})

    async def sim_faults(self, request: Request) -> Response:
        if request.method == "POST":
            spec, bad = await self._json_body(request)
            if bad is not None:
                return bad
            try:
                self.faults.set((spec or {}).get("spec") or None)
            except faults_mod.FaultSpecError as exc:
                return self._simple_error(request, 400, "invalid_request_error", str(exc))
        return JSONResponse(self.faults.to_dict())

    async def sim_ping(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/api/oauth/usage", self.usage, methods=["GET"]),
            Route("/api/oauth/profile", self.profile, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route(oauth_server.CALLBACK_PATH, self.code_callback, methods=["GET"]),
            Route("/v1/oauth/token", self.oauth_token, methods=["POST"]),
            Route("/_sim/requests", self.sim_requests, methods=["GET", "DELETE"]),
            Route("/_sim/account", self.sim_account, methods=["GET", "POST"]),
            Route("/_sim/reset", self.sim_reset, methods=["POST"]),
            Route("/_sim/tokens", self.sim_tokens, methods=["POST"]),
            Route("/_sim/policy", self.sim_policy, methods=["GET", "POST"]),
            Route("/_sim/faults", self.sim_faults, methods=["GET", "POST"]),
            Route("/_sim/ping", self.sim_ping, methods=["GET"]),
        ]


def create_app(policy: str = DEFAULT_POLICY, faults: str | None = None, account: dict[str, Any] | None = None,
               seed: int = 0) -> Simulator:
    """The simulator as an ASGI app (its ``.state`` is the live :class:`SimState`)."""
    return Simulator(policy=policy, faults=faults, account=account, seed=seed)
