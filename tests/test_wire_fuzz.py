"""Response and SSE parsing never crash on hostile input and never echo a secret (issue 7, property-based)."""

import json

from fast_loop import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.wire.observe import observe_response, parse_sse
from lanelab.wire.spec import Observation

CANARY = "sk-ant-oat01-CANARYcanary0123456789abcdefghijklmnopqrstuvwxyz"
CTYPES = st.sampled_from(["application/json", "text/event-stream", "text/html", "", "application/json; charset=utf-8",
                          "text/plain", "application/octet-stream"])
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=40)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow])
@given(status=st.integers(100, 599), ctype=CTYPES, content=st.binary(max_size=2000),
       extra=st.dictionaries(header_names, st.text(max_size=200), max_size=8))
def test_any_response_becomes_an_observation(status, ctype, content, extra):
    obs = observe_response(status, {"content-type": ctype, **extra}, content, 1.0)
    assert isinstance(obs, Observation) and obs.status == status
    json.dumps(obs.to_dict())  # always serialisable for the run store
    if status >= 400:
        assert obs.error_type, "a failed response is never recorded as a success"


@settings(max_examples=examples(200))
@given(prefix=st.text(max_size=300), cut=st.integers(0, 400))
def test_truncated_streams_are_flagged_not_fatal(prefix, cut):
    stream = ('event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n'
              'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"' + prefix + '"}}\n\n'
              'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    text = stream[: min(cut, len(stream))]
    obs = observe_response(200, {"content-type": "text/event-stream"}, text.encode(), 1.0)
    if "message_stop" not in [name for name, _ in parse_sse(text)]:
        assert obs.error_type == "stream_truncated"


@settings(max_examples=examples(100))
@given(junk=st.text(max_size=300))
def test_secrets_in_error_bodies_never_reach_the_observation(junk):
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": f"{junk} token {CANARY} {junk}"}}
    for content in (json.dumps(body).encode(), f"<html>{CANARY}{junk}</html>".encode()):
        obs = observe_response(400, {"content-type": "application/json", "x-echo": CANARY}, content, 1.0)
        assert CANARY[13:] not in json.dumps(obs.to_dict()) and CANARY[13:] not in repr(obs)


def test_oversized_headers_are_kept_but_do_not_break_parsing():
    big = "x" * 200_000
    obs = observe_response(200, {"content-type": "application/json", "x-huge": big,
                                 "anthropic-ratelimit-unified-5h-utilization": big}, b"{}", 1.0)
    assert obs.unified.five_hour.utilization is None and obs.ok
    redact.forget_secrets()
