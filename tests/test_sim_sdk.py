"""SDK fidelity: the official ``anthropic`` client talks to the simulator as to the real API, errors included."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import anthropic

OAUTH_BETA = {"anthropic-beta": "oauth-2025-04-20"}
OUT_OF_EXTRA = "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."
MESSAGES = [{"role": "user", "content": "ping"}]


def _sdk():
    """The ``anthropic`` package, imported on first use: importing it costs seconds, which a run that does not reach
    these tests (or a worker that does not run them) should not pay at collection."""
    import anthropic

    return anthropic


def client(sim, token, headers=OAUTH_BETA, **kw) -> anthropic.Anthropic:
    return _sdk().Anthropic(base_url=sim.base_url, auth_token=token, default_headers=headers, max_retries=0,
                               **kw)


def test_create_and_stream_are_served(sim):
    c = client(sim, sim.mint_token()["access_token"])
    msg = c.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
    assert msg.role == "assistant" and msg.content[0].type == "text" and msg.usage.output_tokens > 0
    with c.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == msg.content[0].text and final.stop_reason == "end_turn"
    raw = c.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)
    assert raw.headers["anthropic-ratelimit-unified-representative-claim"] == "five_hour"


def test_hermes_shape_raises_bad_request_with_the_message(sim):
    headers = {**OAUTH_BETA, "user-agent": "claude-cli/2.1.74 (external, cli)", "x-app": "cli"}
    c = client(sim, sim.mint_token()["access_token"], headers=headers)
    tools = [{"name": "mcp_terminal", "description": "run", "input_schema": {"type": "object", "properties": {}}}]
    with pytest.raises(_sdk().BadRequestError) as err:
        c.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES, tools=tools)
    assert OUT_OF_EXTRA in str(err.value) and err.value.request_id.startswith("req_011")
    with pytest.raises(_sdk().BadRequestError), c.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES, tools=tools) as s:
        s.get_final_message()


def test_missing_oauth_beta_is_an_authentication_error(sim):
    c = client(sim, sim.mint_token()["access_token"], headers={})
    with pytest.raises(_sdk().AuthenticationError, match="OAuth authentication is currently not supported"):
        c.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)


def test_missing_inference_scope_is_permission_denied(sim):
    c = client(sim, sim.mint_token(scopes=["user:profile"])["access_token"])
    with pytest.raises(_sdk().PermissionDeniedError, match="scope requirement"):
        c.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)


@pytest.mark.parametrize("fault, exc", [
    ("http429=3", "RateLimitError"),
    ("http529", "InternalServerError"),
    ("http500", "InternalServerError"),
])
def test_faults_map_to_sdk_error_classes(sim, fault, exc):
    c = client(sim, sim.mint_token()["access_token"], headers={**OAUTH_BETA, "x-lanelab-fault": fault})
    with pytest.raises(getattr(_sdk(), exc)) as err:
        c.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)
    assert err.value.status_code == int({"http429=3": 429, "http529": 529, "http500": 500}[fault])


def test_count_tokens_and_models_through_the_sdk(sim):
    c = client(sim, sim.mint_token()["access_token"])
    counted = c.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x" * 400}])
    assert 90 <= counted.input_tokens <= 130
    assert any(m.id.startswith("claude-") for m in c.models.list())
