"""Fault injection: the spec grammar, and every fault class over real HTTP (flag, control endpoint, header)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lanelab.sim.faults import KINDS, Fault, FaultPlan, FaultSpecError, parse_item, parse_spec
from lanelab.sim.server import running_simulator
from lanelab.wire.observe import observe_response, parse_sse
from lanelab.wire.send import send
from lanelab.wire.spec import RequestSpec

MINIMAL = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}


@pytest.fixture
def token(sim):
    return sim.mint_token()["access_token"]


def post(sim, token, fault=None, body=MINIMAL, path="/v1/messages"):
    headers = {"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20"}
    if fault:
        headers["x-lanelab-fault"] = fault
    return httpx.post(f"{sim.base_url}{path}", headers=headers, json=body)


def test_contract_example_parses():
    faults = parse_spec("latency=200ms@/v1/messages;http429=1@/v1/messages%0.3;sse_cut#2")
    assert faults == [Fault("latency", "200ms", "/v1/messages"), Fault("http429", "1", "/v1/messages", 0.3),
                      Fault("sse_cut", None, None, 1.0, 2)]
    assert faults[0].latency_s == pytest.approx(0.2) and faults[1].retry_after == 1


@pytest.mark.parametrize("spec, named", [
    ("explode", "explode"), ("latency=soon", "soon"), ("http429=1%2", "2"), ("sse_cut#0", "0"),
    ("http500@v1/messages", "v1/messages"), ("reset=now", "now"), ("latency;;bogus=1", "bogus"),
])
def test_bad_specs_name_the_item_and_the_grammar(spec, named):
    with pytest.raises(FaultSpecError) as err:
        parse_spec(spec)
    assert named in str(err.value) and "kind[=arg][@pathglob][%probability][#first_n]" in str(err.value)


_args = {"latency": st.sampled_from(["5ms", "1s", "20"]), "http429": st.sampled_from(["1", "30"]),
         "sse_cut": st.sampled_from(["1", "3"]), "http500": st.just("stream"), "http529": st.just("stream")}


@st.composite
def faults(draw):
    kind = draw(st.sampled_from(KINDS))
    arg = draw(st.one_of(st.none(), _args[kind])) if kind in _args else None
    glob = draw(st.one_of(st.none(), st.sampled_from(["/v1/*", "/v1/messages", "/api/oauth/*"])))
    prob = draw(st.one_of(st.just(1.0), st.sampled_from([0.25, 0.5, 0.9])))
    n = draw(st.one_of(st.none(), st.integers(1, 50)))
    return Fault(kind, arg, glob, prob, n)


@given(st.lists(faults(), min_size=1, max_size=4))
def test_describe_round_trips(items):
    spec = ";".join(f.describe() for f in items)
    assert parse_spec(spec) == items
    assert all(parse_item(f.describe()) == f for f in items)


def test_first_n_and_path_glob_and_probability():
    plan = FaultPlan("http500#2;reset@/v1/models", seed=1)
    fired = [bool(plan.select("/v1/messages")) for _ in range(4)]
    assert fired == [True, True, False, False]
    assert [f.kind for f in plan.select("/v1/models")] == ["reset"]
    assert plan.select("/_sim/account") == []  # control endpoints are never faulted by default
    coin = FaultPlan("http500%0.5", seed=7)
    hits = sum(bool(coin.select("/v1/messages")) for _ in range(200))
    assert 40 < hits < 160


def test_latency_delays_but_serves(sim, token):
    r = post(sim, token, fault="latency=30ms")
    assert r.status_code == 200
    assert sim.state.requests()[-1]["faults"] == ["latency=30ms"]


def test_reset_drops_the_connection(sim, token):
    spec = RequestSpec(body=MINIMAL, headers={"anthropic-beta": "oauth-2025-04-20", "x-lanelab-fault": "reset"})
    obs = send(spec, sim.base_url, token)
    assert obs.status is None and obs.transport_error
    assert token not in obs.transport_error
    assert sim.state.requests()[-1]["outcome"] == "fault:reset"
    assert post(sim, token).status_code == 200  # the server survives


@pytest.mark.parametrize("fault, status, error_type", [
    ("http500", 500, "api_error"), ("http529", 529, "overloaded_error"), ("http429=7", 429, "rate_limit_error"),
])
def test_http_faults_return_real_error_shapes(sim, token, fault, status, error_type):
    r = post(sim, token, fault=fault)
    assert r.status_code == status and r.json()["error"]["type"] == error_type
    assert r.json()["request_id"] == r.headers["request-id"]
    if status == 429:
        assert r.headers["retry-after"] == "7"
    assert sim.state.snapshot()["five_hour_utilization"] == pytest.approx(0.03)  # nothing was billed


def test_malformed_json_is_a_200_that_does_not_parse(sim, token):
    r = post(sim, token, fault="malformed_json")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert observe_response(r.status_code, r.headers, r.content, 1.0).error_type == "malformed_response"


def test_sse_cut_stops_before_message_stop(sim, token):
    r = post(sim, token, fault="sse_cut=2", body={**MINIMAL, "stream": True})
    names = [n for n, _ in parse_sse(r.text)]
    assert r.status_code == 200 and names.count("content_block_delta") == 2 and "message_stop" not in names
    assert observe_response(r.status_code, r.headers, r.content, 1.0).error_type == "stream_truncated"


def test_mid_stream_error_event_after_a_200(sim, token):
    r = post(sim, token, fault="http529=stream", body={**MINIMAL, "stream": True})
    events = parse_sse(r.text)
    assert r.status_code == 200 and events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "overloaded_error"
    assert observe_response(r.status_code, r.headers, r.content, 1.0).error_type == "overloaded_error"


def test_control_endpoint_sets_and_reports_faults(sim, token):
    set_ = httpx.post(f"{sim.base_url}/_sim/faults", json={"spec": "http500@/v1/messages#1"})
    assert set_.json()["faults"][0]["kind"] == "http500"
    assert post(sim, token).status_code == 500
    assert post(sim, token).status_code == 200
    assert httpx.get(f"{sim.base_url}/_sim/faults").json()["faults"][0]["fired"] == 1
    bad = httpx.post(f"{sim.base_url}/_sim/faults", json={"spec": "meltdown"})
    assert bad.status_code == 400 and "meltdown" in bad.json()["error"]["message"]
    assert httpx.get(f"{sim.base_url}/_sim/faults").json()["spec"] == "http500@/v1/messages#1"  # unchanged
    httpx.post(f"{sim.base_url}/_sim/faults", json={"spec": ""})
    assert httpx.get(f"{sim.base_url}/_sim/faults").json()["faults"] == []


def test_bad_fault_header_is_a_clear_400(sim, token):
    r = post(sim, token, fault="http999")
    assert r.status_code == 400 and "http999" in r.json()["error"]["message"]


def test_faults_from_the_start_spec():
    with running_simulator(faults="http529@/v1/models") as sim:  # its own server: the spec given at start-up
        tok = sim.mint_token()["access_token"]
        headers = {"authorization": f"Bearer {tok}", "anthropic-beta": "oauth-2025-04-20"}
        assert httpx.get(f"{sim.base_url}/v1/models", headers=headers).status_code == 529
        assert httpx.post(f"{sim.base_url}/v1/messages", headers=headers, json=MINIMAL).status_code == 200
    with pytest.raises(FaultSpecError), running_simulator(faults="latency=fast"):
        pass
