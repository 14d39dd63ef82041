"""One send: a spec in, an observation out, with the credential attached only at the last moment and only for allowed hosts."""

import json

import httpx
import pytest
from lanelab import redact
from lanelab.wire.observe import parse_sse
from lanelab.wire.send import send
from lanelab.wire.spec import (
    UNKNOWN_VALUE_MAX,
    HostNotAllowed,
    Observation,
    RequestSpec,
    Unknown,
    apply_auth,
    build_request,
)

TOKEN = "sk-ant-oat01-" + "canaryWIRE" * 6


def _spec(**kw):
    base = {"headers": {"anthropic-beta": "oauth-2025-04-20"},
            "body": {"model": "claude-sonnet-4-6", "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}}
    base.update(kw)
    return RequestSpec(**base)


@pytest.mark.parametrize("style,expect", [
    ("bearer", {"authorization"}), ("x-api-key", {"x-api-key"}), ("both", {"authorization", "x-api-key"}), ("none", set()),
])
def test_auth_styles_attach_exactly_the_named_headers(style, expect):
    headers = apply_auth({"Authorization": "stale", "x-app": "cli"}, style, TOKEN)
    assert {k for k in headers if k in ("authorization", "x-api-key", "Authorization")} == expect
    assert headers["x-app"] == "cli"


def test_unknown_auth_style_is_a_clear_error():
    with pytest.raises(ValueError, match="bearer"):
        apply_auth({}, "cookie", TOKEN)


def test_build_request_refuses_a_mistyped_host_and_does_not_echo_the_token():
    with pytest.raises(HostNotAllowed) as err:
        build_request(_spec(), "https://api.anthropic.co", TOKEN)
    assert TOKEN not in str(err.value) and "typo" in str(err.value)
    req = build_request(_spec(query={"beta": "true"}), "http://127.0.0.1:9", TOKEN)
    assert req.url.path == "/v1/messages" and req.url.params["beta"] == "true"
    assert json.loads(req.content)["max_tokens"] == 1


def test_spec_serialises_without_secrets_and_round_trips():
    spec = _spec(credential="sim-pkce")
    d = spec.to_dict()
    assert RequestSpec.from_dict(d) == spec and spec.target == "/v1/messages"
    assert spec.is_inference and not _spec(path="/v1/messages/count_tokens").is_inference


def _mock(status, body, headers=None, ctype="application/json"):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.Response(status, content=content, headers={"content-type": ctype, **(headers or {})})
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_error_observation_carries_type_message_request_id_and_lane():
    body = {"type": "error", "request_id": "req_011X",
            "error": {"type": "invalid_request_error", "message": "You're out of extra usage. Add more at "
                      "claude.ai/settings/usage and keep going."}}
    hdr = {"request-id": "req_011X", "anthropic-ratelimit-unified-status": "allowed",
           "anthropic-ratelimit-unified-overage-status": "rejected"}
    obs = send(_spec(), "http://127.0.0.1:9", TOKEN, client=_mock(400, body, hdr))
    assert obs.status == 400 and obs.error_type == "invalid_request_error" and obs.request_id == "req_011X"
    assert "out of extra usage" in obs.error_message and obs.unified.status == "allowed" and not obs.ok


def test_non_json_error_body_is_malformed_not_a_crash():
    obs = send(_spec(), "http://127.0.0.1:9", TOKEN, client=_mock(502, "<html>bad gateway</html>", ctype="text/html"))
    assert obs.status == 502 and obs.error_type == "malformed_response"


def test_sse_stream_is_parsed_and_truncation_detected():
    events = ('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m"}}\n\n'
              'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n')
    obs = send(_spec(), "http://127.0.0.1:9", TOKEN, client=_mock(200, events, ctype="text/event-stream"))
    assert obs.stream_events == ["message_start", "content_block_delta"]
    assert obs.error_type == "stream_truncated" and obs.body["id"] == "msg_1"
    err = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    obs = send(_spec(), "http://127.0.0.1:9", TOKEN, client=_mock(200, err, ctype="text/event-stream"))
    assert obs.error_type == "overloaded_error" and not obs.ok


def test_parse_sse_handles_crlf_and_non_json_data():
    assert parse_sse("event: ping\r\ndata: {}\r\n\r\ndata: hello\n\n") == [("ping", {}), ("message", "hello")]


def test_transport_error_becomes_an_observation():
    obs = send(_spec(), "http://127.0.0.1:1", TOKEN)
    assert obs.status is None and obs.transport_error and TOKEN not in repr(obs)


def test_observation_round_trip_is_redacted():
    obs = Observation(status=200, headers={"x": f"echo {TOKEN}"}, body={"access_token": TOKEN})
    d = obs.to_dict()
    assert TOKEN not in json.dumps(d)
    assert Observation.from_dict(d).status == 200
    redact.forget_secrets()


P = "anthropic-ratelimit-unified-"


def test_send_records_the_endpoint_and_flags_what_the_kit_has_never_seen():
    hdr = {f"{P}status": "allowed", f"{P}representative-claim": "three_day_promo", f"{P}3d-utilization": "0.1",
           f"{P}5h-utilization": "0.02"}
    obs = send(_spec(), "http://127.0.0.1:9", TOKEN, client=_mock(200, {"type": "message"}, hdr))
    assert obs.endpoint == "/v1/messages" and obs.unified.lane == "unknown"
    assert [(u.kind, u.name, u.value) for u in obs.unknown] == [
        ("claim", f"{P}representative-claim", "three_day_promo"), ("unified_header", f"{P}3d-utilization", "0.1")]
    assert "new_to_kit=2" in repr(obs)


def test_unknown_items_round_trip_redacted_and_old_records_still_load():
    obs = Observation(status=400, error_type="invalid_request_error", error_message="x", endpoint="/v1/messages",
                      unknown=[Unknown.of("unified_header", f"{P}echo", f"token {TOKEN}"),
                               Unknown.of("usage_field", "extra_usage.daily", {"limit": 5})])
    d = obs.to_dict()
    assert TOKEN not in json.dumps(d) and d["unknown"][1] == {"kind": "usage_field", "name": "extra_usage.daily",
                                                              "value": '{"limit": 5}'}
    again = Observation.from_dict(d)
    assert again.endpoint == "/v1/messages" and [u.name for u in again.unknown] == [f"{P}echo", "extra_usage.daily"]
    old = {k: v for k, v in d.items() if k not in ("unknown", "endpoint")}
    loaded = Observation.from_dict(old)
    assert loaded.unknown == [] and loaded.endpoint is None and loaded.error_type == "invalid_request_error"
    odd = Observation.from_dict({**d, "unknown": [{"kind": "claim"}, "junk", None]})
    assert odd.unknown == []
    redact.forget_secrets()


def test_unknown_values_are_cut_to_a_bound():
    u = Unknown.of("message", "error.message", "x" * 5000)
    assert len(u.value) == UNKNOWN_VALUE_MAX + 1 and u.value.endswith("…")
