"""Bad input to the simulator: Messages bodies that break the request shape get the API's 400; control bodies of the
wrong shape get a 400 naming the key and leave the state as it was; bad data files and ``sim --account`` are one
clear line (issue 12 items 15 and 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.config import repo_root
from lanelab.sim import outcomes
from lanelab.sim.policy import PolicyError, load_policy_file
from lanelab.sim.server import SimHandle
from lanelab.sim.validation import problem

GOOD = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}


@pytest.fixture
def sim(sim_with: Callable[..., SimHandle]) -> SimHandle:
    return sim_with(policy="2026-11")


@pytest.fixture
def token(sim: SimHandle) -> str:
    sim.reset()
    return sim.mint_token()["access_token"]


def messages(sim: SimHandle, token: str, body: Any, path: str = "/v1/messages") -> httpx.Response:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(sim.base_url + path, content=raw, timeout=10,
                      headers={"authorization": f"Bearer {token}", "anthropic-beta": "oauth-2025-04-20",
                               "anthropic-version": "2023-06-01", "user-agent": "Anthropic/Python 0.86.0",
                               "content-type": "application/json"})


# ------------------------------------------------------------------------------------------------ Messages shape
@pytest.mark.parametrize(("change", "message"), [
    ({"messages": "x"}, "messages: Input should be a valid list"),
    ({"model": None}, "model: Field required"),
    ({"model": 4}, "model: Input should be a valid string"),
    ({"max_tokens": None}, "max_tokens: Field required"),
    ({"max_tokens": "16"}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": 1.5}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": True}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role: Input should be 'user' or 'assistant'"),
    ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
    ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type: Field required"),
    ({"messages": ["hi"]}, "messages.0: Input should be a valid dictionary"),
    ({"system": 3}, "system: Input should be a valid string or a list of text blocks"),
    ({"stream": "yes"}, "stream: Input should be a valid boolean"),
    ({"tools": [{"description": "no name"}]}, "tools.0.name: Field required"),
])
def test_a_body_that_breaks_the_messages_shape_gets_the_apis_400(sim: SimHandle, token: str,
                                                                 change: dict[str, Any], message: str) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    r = messages(sim, token, body)
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error", "message": message}
    assert sim.state.requests()[-1]["rule"] == "invalid_request_shape"


def test_count_tokens_needs_no_max_tokens_and_chat_completions_has_its_own_shape(sim: SimHandle, token: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != "max_tokens"}
    assert messages(sim, token, body, "/v1/messages/count_tokens").status_code == 200
    assert messages(sim, token, {"messages": "x", "model": "m"}, "/v1/messages/count_tokens").status_code == 400
    chat = messages(sim, token, {"model": "claude-sonnet-4-6", "messages": {"role": "user"}}, "/v1/chat/completions")
    assert chat.status_code == 400 and chat.json()["error"]["message"] == "messages: Input should be a valid list"


def test_fields_the_kit_does_not_know_are_never_refused(sim: SimHandle, token: str) -> None:
    body = {**GOOD, "thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"x": 1},
            "service_tier": "auto", "context_management": {"edits": []}}
    assert problem("/v1/messages", body) is None
    messages(sim, token, body)
    assert sim.state.requests()[-1]["rule"] != "invalid_request_shape"


def test_a_body_nested_too_deep_is_a_400_not_a_crash(sim: SimHandle, token: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = messages(sim, token, deep)
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert messages(sim, token, GOOD).status_code in (200, 400, 429)  # still answering


@settings(max_examples=examples(150), deadline=None)
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                    max_size=4), max_leaves=15),
       path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/x"]))
def test_the_shape_check_never_raises(body: Any, path: str) -> None:
    found = problem(path, body)
    assert found is None or (isinstance(found, str) and ": " in found)


# ------------------------------------------------------------------------------------------------ control routes
BAD_ACCOUNTS = [
    {"plan": 3}, {"plan": "platinum"}, {"five_hour_utilization": "high"}, {"seven_day_utilization": 2},
    {"extra_usage": "on"}, {"extra_usage": {"monthly_limit": -1}}, {"extra_usage": {"is_enabled": "yes"}},
    {"extra_usage": {"colour": "red"}}, {"moon": 1}, {"unified_claim": 5}, {"unified_extra": {"Bad Name": "x"}},
    {"unified_extra": {"ok": 1}}, {"fallback_percentage": None}, [1], "x", 7,
]


@pytest.mark.parametrize("patch", BAD_ACCOUNTS, ids=lambda p: json.dumps(p)[:40])
def test_a_bad_account_is_a_400_and_changes_nothing(sim: SimHandle, token: str, patch: Any) -> None:
    before = sim.state.snapshot()
    r = httpx.post(sim.base_url + "/_sim/account", json=patch, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert sim.state.snapshot() == before
    later = messages(sim, token, GOOD)
    assert later.status_code in (200, 400) and later.status_code != 500
    assert httpx.get(sim.base_url + "/_sim/account", timeout=10).status_code == 200


def test_the_account_message_names_the_key_and_what_it_must_be(sim: SimHandle) -> None:
    r = httpx.post(sim.base_url + "/_sim/account", json={"extra_usage": {"monthly_limit": "lots"}}, timeout=10)
    assert r.json()["error"]["message"].startswith("extra_usage.monthly_limit must be a number of at least 0")


def test_a_deep_account_body_is_a_400(sim: SimHandle) -> None:
    r = httpx.post(sim.base_url + "/_sim/account", content="[" * 50_000 + "]" * 50_000, timeout=10)
    assert r.status_code == 400


@pytest.mark.parametrize(("path", "body"), [
    ("/_sim/tokens", [1]), ("/_sim/tokens", {"kind": 3}), ("/_sim/tokens", {"kind": "cookie"}),
    ("/_sim/tokens", {"scopes": "user:inference"}), ("/_sim/tokens", {"scopes": [1]}),
    ("/_sim/tokens", {"expires_in": "soon"}), ("/_sim/tokens", {"expires_in": -5}),
    ("/_sim/tokens", {"expires_in": True}), ("/_sim/tokens", {"source": {"a": 1}}), ("/_sim/tokens", {"x": 1}),
    ("/_sim/faults", [1]), ("/_sim/faults", {"spec": 5}), ("/_sim/faults", {"spec": "nonsense=!!"}),
    ("/_sim/faults", {"plan": "http500"}),
    ("/_sim/policy", [1]), ("/_sim/policy", {"name": 3}), ("/_sim/policy", {}), ("/_sim/policy", {"name": "1999"}),
    ("/_sim/policy", {"name": "../2026-11"}),
    ("/_sim/clock", {"advance": -1}), ("/_sim/clock", {"advance": "1h"}), ("/_sim/clock", [1]),
    ("/_sim/clock", {"advance": 1, "x": 2}),
])
def test_bad_control_input_is_a_400_and_changes_nothing(sim: SimHandle, path: str, body: Any) -> None:
    sim.reset()
    state = (len(sim.state.grants.tokens), sim.simulator.faults.to_dict(), sim.state.policy_name,
             sim.simulator.clock.offset)
    r = httpx.post(sim.base_url + path, json=body, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert (len(sim.state.grants.tokens), sim.simulator.faults.to_dict(), sim.state.policy_name,
            sim.simulator.clock.offset) == state


def test_good_control_input_still_works(sim: SimHandle) -> None:
    sim.reset()
    assert httpx.post(sim.base_url + "/_sim/tokens", json={"kind": "setup-token", "expires_in": 60},
                      timeout=10).status_code == 200
    assert httpx.post(sim.base_url + "/_sim/policy", json={"name": "2026-08"}, timeout=10).json()["name"] == "2026-08"
    assert httpx.post(sim.base_url + "/_sim/faults", json={"spec": None}, timeout=10).status_code == 200
    assert httpx.post(sim.base_url + "/_sim/account", json={"plan": "ultra", "unified_claim": None},
                      timeout=10).status_code == 200
    sim.reset()


# ------------------------------------------------------------------------------------------------ sim --account
@pytest.mark.slow  # a CLI process each
@pytest.mark.parametrize(("value", "says"), [
    ('{"a":' * 5000 + "1" + "}" * 5000, "nested too deeply"),
    ('{"plan": 3}', "plan must be one of"),
    ('{"extra_usage": []}', "extra_usage must be an object"),
    ("[1]", "neither a JSON object nor an existing file"),
    ('{"plan": ', "not valid JSON"),
])
def test_sim_account_bad_json_is_one_line_and_exit_2(value: str, says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "lanelab", "sim", "--account", value], capture_output=True,
                          text=True, timeout=60, check=False, cwd=repo_root(),
                          env={"PYTHONPATH": str(repo_root() / "lib"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------------ data files
def policy_text(extra: str, rule: str = "") -> str:
    """A minimal policy with ``rule`` before the default rule and ``extra`` after it."""
    return ('[policy]\nname = "x"\ndate = "2026-11-01"\ndescription = "d"\n' + rule
            + '[[rule]]\nid = "d"\noutcome = "plan"\nsource = "s"\n' + extra)


GATE_RULE = '[[rule]]\nid = "v"\nwhen = { claims_version_below_floor = "yes" }\noutcome = "plan"\nsource = "s"\n'


@pytest.mark.parametrize(("extra", "rule", "says"), [
    ('[service]\nusage_reads_per_hour = "30"\nusage_reads_per_hour_source = "s"\n', "",
     "service.usage_reads_per_hour must be a positive integer"),
    ('[service]\nusage_reads_per_hour = 30\n', "", "service.usage_reads_per_hour_source must be a non-empty string"),
    ('[service]\nunified_windows = ["7d_oi", "moon"]\nunified_windows_source = "s"\n', "", "'moon'"),
    ('[service]\nusage_shape = 2026\nusage_shape_source = "s"\n', "", "service.usage_shape must be one of"),
    ('[service]\nfavourite = 1\n', "", "unknown key(s) ['favourite']"),
    ('[hosts]\napi = "api.anthropic.com"\n', "", "hosts.api must be a list of non-empty strings"),
    (('[hosts]\napi = []\ntoken = []\nauthorize = []\ncallback = []\nsource = "s"\n[[hosts.redirect]]\nhost = "h"\n'
     'path = "/p"\nto = "https://x/y"\nstatus = 200\nsource = "s"\n'), "", "hosts.redirect[0].status"),
    ('[[model]]\nid = "m"\ndisplay_name = 3\nsource = "s"\n', "", "model[0].display_name must be a non-empty string"),
    ('[model]\nid = "m"\n', "", "model must be an array of tables"),
    ('[[token_endpoint.rule]]\nid = "t"\nwhen = { host_in = 3 }\noutcome = "token_not_found"\nsource = "s"\n', "",
     "condition 'host_in' expects a string or a non-empty list of strings"),
    ("", GATE_RULE, "condition 'claims_version_below_floor' expects true or false"),
])
def test_a_bad_policy_file_names_the_file_the_key_and_the_type(tmp_path: Path, extra: str, rule: str,
                                                               says: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(policy_text(extra, rule), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert str(path) in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(("table", "says"), [
    ('status = "400"\nlane = "none"\nsource = "s"\n', "outcome.a.status must be an integer"),
    ('status = 400\nlane = "none"\nsource = "s"\nunified = "no"\n', "outcome.a.unified must be true or false"),
    ('status = 400\nlane = "none"\nsource = "s"\nretry_after = 1.5\n', "outcome.a.retry_after must be an integer"),
    ('status = 400\nlane = "none"\nsource = "s"\nmessage = 3\n', "outcome.a.message must be a string"),
    ('status = 400\nlane = "none"\nsource = "s"\ncontent_type = "text/xml"\n', "outcome.a.content_type must be one of"),
    ('status = 400\nlane = "none"\nsource = "s"\nvariant = 3\n', "outcome.a.variant must be an array of tables"),
    (('status = 400\nlane = "none"\nsource = "s"\n[[outcome.a.variant]]\nwhen = { extra_usage = "plenty" }\n'
     'source = "s"\n'), "when.extra_usage must be one of"),
    ('status = 400\nlane = "none"\nsource = "s"\n[[outcome.a.variant]]\nwhen = { team = "yes" }\nsource = "s"\n',
     "when.team must be true or false"),
])
def test_a_bad_outcome_file_names_the_file_the_key_and_the_type(tmp_path: Path, table: str, says: str) -> None:
    path = tmp_path / "sim_outcomes.toml"
    path.write_text('[wire_facts]\nidentity_line = "x"\n[outcome.a]\n' + table, encoding="utf-8")
    with pytest.raises(outcomes.OutcomeFileError) as err:
        outcomes.load_outcomes(path)
    assert str(path) in str(err.value) and says in str(err.value)
