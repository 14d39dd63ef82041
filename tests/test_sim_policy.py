"""Policy engine: request features, every rule of every policy (trigger and near miss), the seed report, validation."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.config import data_dir
from lanelab.sim import outcomes
from lanelab.sim.features import RequestFeatures, TokenInfo, extract, tool_base_name
from lanelab.sim.policy import CONDITIONS, PolicyError, PolicyNotFound, list_policies, load_policy

OAUTH = TokenInfo("oauth", True, False, ("org:create_api_key", "user:profile", "user:inference"), "lanelab:pkce")
API_KEY = TokenInfo("api_key", True, False, (), "api_key")
HERMES_BETAS = ("interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14,"
                "claude-code-20250219,oauth-2025-04-20")
HERMES_TOOLS = ["clarify", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "search_files",
                "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze",
                "write_file"]
SKILLS_SENTENCE = ("After completing a complex task (5+ tool calls), fixing a tricky error, or discovering a "
                   "non-trivial workflow, save the approach as a skill with skill_manage so you can reuse it.")


def identity() -> str:
    return outcomes.identity_line()


def hermes_identity_block() -> str:
    """A stand-in for Hermes 0.14.0's system[1] (~3.4 KB, name rewritten), built here for tests only."""
    text = ("You are Claude Code, an intelligent AI assistant created by Anthropic. You are helpful, knowledgeable "
            "and direct. Use session_search to recall past conversations. " + SKILLS_SENTENCE + " ")
    filler = "Keep answers short and check your work before replying. "
    return (text + filler * 60)[:3400]


@dataclass
class Req:
    """One request as the app would hand it to extract(); helpers return modified copies."""

    method: str = "POST"
    path: str = "/v1/messages"
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    token: TokenInfo = OAUTH

    def features(self) -> RequestFeatures:
        return extract(self.method, self.path, self.query, self.headers, self.body, self.token)

    def set(self, name: str, value: str | None) -> Req:
        headers = [(k, v) for k, v in self.headers if k != name]
        if value is not None:
            headers.append((name, value))
        return replace(self, headers=headers, body=copy.deepcopy(self.body))

    def with_body(self, **changes: Any) -> Req:
        body = copy.deepcopy(self.body)
        for key, value in changes.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return replace(self, body=body, headers=list(self.headers))

    def at(self, path: str, method: str | None = None) -> Req:
        return replace(self, path=path, method=method or self.method, headers=list(self.headers),
                       body=copy.deepcopy(self.body))

    def using(self, token: TokenInfo) -> Req:
        return replace(self, token=token, headers=list(self.headers), body=copy.deepcopy(self.body))


def minimal() -> Req:
    """A minimal SDK request: Bearer + oauth beta only, no identity, one short user message."""
    return Req(headers=[("authorization", "Bearer sim-token"), ("anthropic-version", "2023-06-01"),
                        ("anthropic-beta", "oauth-2025-04-20"), ("user-agent", "Anthropic/Python 0.86.0"),
                        ("content-type", "application/json")],
               body={"model": "claude-sonnet-4-6", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "ping"}]})


def shaped(system_extra: list[str] | None = None) -> Req:
    """Claude Code's request shape (identity first, claude-cli UA, x-app) with a neutral prompt."""
    system = [{"type": "text", "text": identity()}] + [{"type": "text", "text": t} for t in (system_extra or [])]
    return (minimal().set("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
            .set("user-agent", "claude-cli/2.1.197 (external, cli)").set("x-app", "cli").with_body(system=system))


def hermes_014() -> Req:
    """The request Hermes 0.14.0 sent in the seed report (references/hermes.md §4, §7)."""
    tools = [{"name": f"mcp_{n}", "description": n, "input_schema": {"type": "object", "properties": {}}}
             for n in HERMES_TOOLS]
    return Req(
        headers=[("authorization", "Bearer sim-token"), ("anthropic-version", "2023-06-01"),
                 ("anthropic-beta", HERMES_BETAS), ("x-app", "cli"), ("user-agent", "Anthropic/Python 0.86.0"),
                 ("user-agent", "claude-cli/2.1.74 (external, cli)"), ("x-stainless-lang", "python"),
                 ("content-type", "application/json")],
        body={"model": "claude-sonnet-4-6", "stream": True, "max_tokens": 128000, "tool_choice": {"type": "auto"},
              "system": [{"type": "text", "text": identity()},
                         {"type": "text", "text": hermes_identity_block(), "cache_control": {"type": "ephemeral"}}],
              "messages": [{"role": "user", "content": [{"type": "text", "text": "ping",
                                                         "cache_control": {"type": "ephemeral"}}]}],
              "tools": tools},
    )


def rename_tools(req: Req, fn: Callable[[str], str]) -> Req:
    tools = [dict(t, name=fn(tool_base_name(t["name"]))) for t in req.body["tools"]]
    return req.with_body(tools=tools)


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "input_schema": {"type": "object"}} for n in names]


def openai_body() -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "messages": [{"role": "system", "content": "Be brief."},
                                                       {"role": "user", "content": "ping"}]}


def token_headers(ua: str | None) -> dict[str, str]:
    return {} if ua is None else {"user-agent": ua}


# ------------------------------------------------------------------------------------------------ rule table
# rule id -> (trigger, near miss). Shared rules apply to both policies; a miss only has to land on another rule.
Case = tuple[Callable[[], Req], Callable[[], Req]]
LONG = "context-1m-2025-08-07"

SHARED: dict[str, Case] = {
    "unversioned_chat_completions": (lambda: minimal().at("/chat/completions"),
                                     lambda: minimal().at("/v1/messages")),
    "no_credential": (lambda: minimal().set("authorization", None), minimal),
    "both_auth_headers": (lambda: minimal().set("x-api-key", "sim-token"), minimal),
    "api_key_served": (lambda: minimal().set("authorization", None).set("x-api-key", "k").using(API_KEY),
                       lambda: minimal().set("authorization", None).set("x-api-key", "k")),
    "x_api_key_not_an_api_key": (lambda: minimal().set("authorization", None).set("x-api-key", "k"),
                                 lambda: minimal().set("authorization", None).set("x-api-key", "k").using(API_KEY)),
    "openai_api_key_bearer": (lambda: minimal().with_body(**openai_body()).at("/v1/chat/completions").using(API_KEY),
                              lambda: minimal().at("/v1/chat/completions")),
    "api_key_as_bearer": (lambda: minimal().using(API_KEY), minimal),
    "openai_oauth_without_beta": (lambda: minimal().set("anthropic-beta", None).at("/v1/chat/completions"),
                                  lambda: minimal().at("/v1/chat/completions")),
    "oauth_without_beta": (lambda: minimal().set("anthropic-beta", None), minimal),
    "oauth_token_expired": (lambda: minimal().using(replace(OAUTH, expired=True)), minimal),
    "bearer_invalid": (lambda: minimal().using(replace(OAUTH, valid=False)), minimal),
    "bearer_unrecognised": (lambda: minimal().using(replace(OAUTH, kind="unknown")), minimal),
    "inference_scope_missing": (lambda: minimal().using(replace(OAUTH, scopes=("user:profile",))),
                                lambda: minimal().using(replace(OAUTH, scopes=("user:inference",)))),
    "malformed_body": (lambda: replace(minimal(), body="{not json"), minimal),
    "models_listing": (lambda: replace(minimal(), body=None).at("/v1/models", "GET"),
                       lambda: replace(minimal(), body=None).at("/v1/models", "GET").set("anthropic-beta", None)),
    "count_tokens_unclassified": (lambda: minimal().at("/v1/messages/count_tokens"),
                                  lambda: minimal().at("/v1/messages/count_tokens").set("authorization", None)),
    "control_plane_unclassified": (lambda: replace(minimal(), body=None).at("/api/oauth/usage", "GET"),
                                   lambda: replace(minimal(), body=None).at("/api/oauth/usage", "GET")
                                   .set("anthropic-beta", None)),
    "long_context_without_cc_ua": (lambda: minimal().set("anthropic-beta", f"oauth-2025-04-20,{LONG}"),
                                   lambda: minimal().set("anthropic-beta", f"oauth-2025-04-20,{LONG}")
                                   .set("user-agent", "claude-cli/2.1.74 (external, cli)")),
    "long_context_beta": (lambda: shaped().set("anthropic-beta", f"oauth-2025-04-20,{LONG}"), shaped),
    "openai_oauth_shim": (lambda: minimal().with_body(**openai_body()).at("/v1/chat/completions"),
                          lambda: minimal().with_body(**openai_body())),
    "gateway_prompt_trigger": (lambda: shaped(["MEDIA: attach files like this. Use skill_manage to save skills."]),
                               lambda: shaped(["Attach files like this. Use skill_manage to save skills."])),
    "mcp_single_underscore_tool": (lambda: shaped().with_body(tools=tools("mcp_read_file")),
                                   lambda: shaped().with_body(tools=tools("mcp__read_file"))),
    "invalid_request_shape": (lambda: minimal().with_body(messages="x"), minimal),
}
FABLE = "claude-fable-5-1"
OLD_CC = "claude-cli/2.1.74 (external, cli)"
NEW_CC = "claude-cli/2.1.330 (external, cli)"
AUGUST: dict[str, Case] = {
    "identity_required_non_haiku": (minimal, lambda: minimal().with_body(model="claude-haiku-4-5")),
    "no_claude_code_user_agent": (lambda: shaped().set("user-agent", "Anthropic/Python 0.86.0"), shaped),
    "memory_or_session_search_tool": (lambda: shaped().with_body(tools=tools("mcp__memory")),
                                      lambda: shaped().with_body(tools=tools("mcp__context_notes"))),
    "hermes_identity_block": (lambda: shaped([hermes_identity_block().replace(SKILLS_SENTENCE, "")]),
                              lambda: shaped(["Workspace notes: " + "the repository uses make. " * 100])),
    "skills_guidance_sentence": (lambda: shaped([SKILLS_SENTENCE]),
                                 lambda: shaped([SKILLS_SENTENCE.replace("save the approach as a skill",
                                                                         "record the approach")])),
    "large_hermes_prompt_spend_limit": (lambda: shaped(["Use chat_history_lookup to recall. " + "x" * 4500]),
                                        lambda: shaped(["Use chat_history_lookup to recall. " + "x" * 3900])),
    "default_plan": (shaped, minimal),
}

CASES: dict[str, dict[str, Case]] = {
    "2026-05-25": {
        **SHARED,
        "default_plan": (minimal, lambda: minimal().with_body(tools=tools("mcp_terminal"))),
    },
    "2026-08": {**SHARED, **AUGUST},
    "2026-11": {
        **SHARED, **AUGUST,
        "profile_scope_missing": (
            lambda: replace(minimal(), body=None).at("/api/oauth/usage", "GET")
            .using(replace(OAUTH, scopes=("user:inference",))),
            lambda: replace(minimal(), body=None).at("/api/oauth/usage", "GET")),
        "claude_code_version_gate": (lambda: shaped().with_body(model=FABLE).set("user-agent", OLD_CC),
                                     lambda: shaped().with_body(model=FABLE).set("user-agent", NEW_CC)),
        "fable_included_overage": (lambda: shaped().with_body(model=FABLE).set("user-agent", NEW_CC), shaped),
    },
}

FORM = "application/x-www-form-urlencoded"
#: (user agent, content type[, host, grant type]): one request to the token endpoint.
TokenCase = tuple
CONSOLE_EXCHANGE = (("axios/1.7.9", FORM, "console.anthropic.com", "authorization_code"),
                    ("axios/1.7.9", FORM, "console.anthropic.com", "refresh_token"))
TOKEN_UA_RULES: dict[str, tuple[TokenCase, TokenCase]] = {
    "token_ua_claude_cli": (("claude-cli/2.1.74 (external, cli)", FORM), ("axios/1.7.9", FORM)),
    "token_ua_claude_code": (("claude-code/2.1.197", FORM), ("axios/1.7.9", FORM)),
    "token_ua_curl": (("curl/8.5.0", FORM), ("axios/1.7.9", FORM)),
}
TOKEN_CASES: dict[str, dict[str, tuple[TokenCase, TokenCase]]] = {
    # rule id -> (a request that triggers it, a near miss)
    "2026-05-25": {
        "token_body_style": (("axios/1.7.9", "text/plain"), ("axios/1.7.9", "application/json")),
    },
    "2026-08": {
        "token_console_code_exchange": CONSOLE_EXCHANGE,
        **TOKEN_UA_RULES,
        "token_ua_empty": ((None, FORM), ("axios/1.7.9", FORM)),
        "token_body_style": (("axios/1.7.9", "application/json"),
                             ("axios/1.7.9", "application/x-www-form-urlencoded; charset=utf-8")),
    },
    "2026-11": {
        "token_console_code_exchange": CONSOLE_EXCHANGE,
        "token_ua_none_edge_1010": ((None, FORM), ("axios/1.7.9", FORM)),
        **TOKEN_UA_RULES,
        "token_body_style": (("axios/1.7.9", "text/plain"), ("axios/1.7.9", "application/json")),
    },
}


def decide_token(policy: Any, case: TokenCase) -> Any:
    ua, ctype, *where = case
    host, grant = (where + [None, None])[:2]
    return policy.decide_token(token_headers(ua), ctype, host=host or "", grant_type=grant)


RULE_PARAMS = [(p, rid) for p, cases in CASES.items() for rid in cases]
TOKEN_PARAMS = [(p, rid) for p, cases in TOKEN_CASES.items() for rid in cases]


def test_policies_shipped() -> None:
    assert set(list_policies()) >= {"2026-05-25", "2026-08", "2026-11"}
    assert set(CASES) == set(list_policies()) == set(TOKEN_CASES), "every shipped policy has its rule table here"


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_rule_has_a_case(name: str) -> None:
    policy = load_policy(name)
    assert set(policy.rule_ids) == set(CASES[name]), "each rule needs a trigger/near-miss case (and no stale cases)"
    assert set(policy.token_rule_ids) == set(TOKEN_CASES[name])


@pytest.mark.parametrize(("name", "rule_id"), RULE_PARAMS)
def test_rule_triggers_and_near_miss_does_not(name: str, rule_id: str) -> None:
    policy = load_policy(name)
    trigger, miss = CASES[name][rule_id]
    hit = policy.decide(trigger().features())
    assert hit.rule_id == rule_id
    assert hit.outcome == policy.rule(rule_id).outcome
    assert hit.source == policy.rule(rule_id).source
    assert policy.decide(miss().features()).rule_id != rule_id


@pytest.mark.parametrize(("name", "rule_id"), TOKEN_PARAMS)
def test_token_rule_triggers_and_near_miss_does_not(name: str, rule_id: str) -> None:
    policy = load_policy(name)
    trigger, near = TOKEN_CASES[name][rule_id]
    hit = decide_token(policy, trigger)
    assert hit is not None and hit.rule_id == rule_id
    assert outcomes.render(hit.outcome, None).status >= 400
    miss = decide_token(policy, near)
    assert miss is None or miss.rule_id != rule_id


def test_token_endpoint_accepts_both_styles_in_may_and_only_form_in_august() -> None:
    may, aug = load_policy("2026-05-25"), load_policy("2026-08")
    for ctype in ("application/json", "application/x-www-form-urlencoded"):
        assert may.decide_token({"user-agent": "axios/1.7.9"}, ctype) is None
    assert aug.decide_token([("user-agent", "axios/1.7.9")], "application/x-www-form-urlencoded") is None
    assert aug.decide_token({"user-agent": "axios/1.7.9"}, "application/json").outcome == "token_invalid_format"


# ------------------------------------------------------------------------------------------------ the seed report
def test_seed_report_hermes_request_is_third_party_and_renders_the_out_of_extra_usage_400() -> None:
    policy = load_policy("2026-05-25")
    decision = policy.decide(hermes_014().features())
    assert (decision.outcome, decision.rule_id) == ("third_party", "mcp_single_underscore_tool")
    reply = outcomes.render(decision.outcome, outcomes.DEFAULT_ACCOUNT)
    assert (reply.status, reply.error_type) == (400, "invalid_request_error")
    assert reply.message == "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."
    assert reply.lane == "none"


def test_seed_report_minimal_request_with_same_token_is_billed_to_the_plan() -> None:
    decision = load_policy("2026-05-25").decide(minimal().features())
    assert decision.outcome == "plan"
    reply = outcomes.render(decision.outcome, outcomes.DEFAULT_ACCOUNT)
    assert (reply.status, reply.lane, reply.unified, reply.message) == (200, "plan", True, None)


def test_mcp_prefix_is_the_only_rule_the_hermes_request_hits_in_may() -> None:
    policy = load_policy("2026-05-25")
    feats = hermes_014().features()
    matching = [r.id for r in policy.rules if r.matches(feats, CONDITIONS)]
    assert matching == ["mcp_single_underscore_tool", "default_plan"]


@pytest.mark.parametrize("change", [
    lambda r: r.with_body(tools=None),
    lambda r: r.with_body(tools=[]),
    lambda r: rename_tools(r, lambda n: f"mcp__{n}"),
    lambda r: rename_tools(r, lambda n: n),
    lambda r: rename_tools(r, lambda n: f"mcp-{n}"),
])
def test_one_factor_changes_that_flip_hermes_to_plan(change: Callable[[Req], Req]) -> None:
    assert load_policy("2026-05-25").decide(change(hermes_014()).features()).outcome == "plan"


@pytest.mark.parametrize("change", [
    lambda r: r.with_body(system=None),
    lambda r: r.with_body(system=[{"type": "text", "text": hermes_identity_block()}]),
    lambda r: r.set("user-agent", "Anthropic/Python 0.86.0"),
    lambda r: r.set("x-app", None),
    lambda r: r.with_body(model="claude-haiku-4-5"),
    lambda r: r.with_body(stream=False, max_tokens=8192),
    lambda r: r.with_body(tool_choice=None),
    lambda r: r.set("anthropic-beta", "claude-code-20250219,oauth-2025-04-20"),
    lambda r: replace(r, query="beta=true"),
])
def test_one_factor_changes_that_leave_hermes_third_party(change: Callable[[Req], Req]) -> None:
    decision = load_policy("2026-05-25").decide(change(hermes_014()).features())
    assert (decision.outcome, decision.rule_id) == ("third_party", "mcp_single_underscore_tool")


def test_later_snapshot_still_bills_hermes_shapes_as_third_party() -> None:
    policy = load_policy("2026-08")
    assert policy.decide(hermes_014().features()).outcome == "third_party"
    # Hermes' later fix (mcp__ names, aliases, claude-code/ UA) still carries its identity block (#79758).
    fixed = rename_tools(hermes_014(), lambda n: "mcp__" + {"memory": "context_notes",
                                                            "session_search": "chat_history_lookup"}.get(n, n))
    fixed = fixed.set("user-agent", None).set("user-agent", "claude-code/2.1.197 (external, cli)")
    decision = policy.decide(fixed.features())
    assert (decision.outcome, decision.rule_id) == ("third_party", "hermes_identity_block")


# ------------------------------------------------------------------------------------------------ features
def test_extract_hermes_request() -> None:
    f = hermes_014().features()
    assert f.auth_style == "bearer"
    assert f.betas == tuple(HERMES_BETAS.split(","))
    assert f.user_agents == ("Anthropic/Python 0.86.0", "claude-cli/2.1.74 (external, cli)")
    assert (f.x_app, f.model_family, f.stream, f.max_tokens) == ("cli", "sonnet", True, 128000)
    assert f.first_system_is_identity and len(f.system_texts) == 2
    assert f.system_chars == len(identity()) + len(hermes_identity_block())
    assert len(f.tool_names) == 16 and all(n.startswith("mcp_") for n in f.tool_names)
    assert f.tool_choice_type == "auto" and f.tool_choice_name is None
    assert f.tools_present and f.tools_json_size > 100
    assert (f.has_metadata_user_id, f.messages_count, f.body_shape) == (False, 1, "anthropic")
    assert not f.beta_query


@pytest.mark.parametrize(("headers", "style"), [
    ({"authorization": "Bearer x"}, "bearer"),
    ({"X-Api-Key": "x"}, "x-api-key"),
    ({"Authorization": "Bearer x", "x-api-key": "y"}, "both"),
    ({"user-agent": "a"}, "none"),
])
def test_auth_style(headers: dict[str, str], style: str) -> None:
    assert extract("POST", "/v1/messages", None, headers, {}, OAUTH).auth_style == style


def test_system_as_string_query_forms_and_metadata() -> None:
    body = {"system": identity(), "metadata": {"user_id": "u"}, "tool_choice": {"type": "tool", "name": "mcp__x"}}
    f = extract("post", "/v1/messages?beta=true", "beta=true", {}, body, OAUTH)
    assert f.first_system_is_identity and f.beta_query and f.has_metadata_user_id and f.method == "POST"
    assert f.path == "/v1/messages" and f.tool_choice_name == "mcp__x"
    assert extract("POST", "/v1/messages", {"beta": "true"}, {}, None, OAUTH).beta_query
    assert not extract("POST", "/v1/messages", None, {}, {"system": identity() + " "}, OAUTH).first_system_is_identity


def test_openai_shape_reads_system_messages_and_function_tools() -> None:
    body = {**openai_body(), "tools": [{"type": "function", "function": {"name": "mcp_x"}}],
            "max_completion_tokens": 5}
    f = extract("POST", "/v1/chat/completions", "", {}, body, OAUTH)
    assert f.body_shape == "openai" and f.system_texts == ("Be brief.",)
    assert f.tool_names == ("mcp_x",) and f.max_tokens == 5 and f.message_roles == ("system", "user")


def test_body_given_as_json_bytes_and_starlette_headers() -> None:
    from starlette.datastructures import Headers

    headers = Headers(raw=[(b"user-agent", b"a/1"), (b"user-agent", b"claude-cli/2"), (b"anthropic-beta", b"x, y")])
    f = extract("POST", "/v1/messages", b"", headers, b'{"model": "claude-opus-4-7"}', OAUTH)
    assert f.user_agents == ("a/1", "claude-cli/2") and f.betas == ("x", "y") and f.model_family == "opus"


@pytest.mark.parametrize("body", [{"max_tokens": float("inf")}, {"max_tokens": float("nan")}, {"system": 3},
                                  {"system": [None, {"text": 5}, "x"]}, {"tools": [{"nom": "x"}, 3, None]},
                                  {"tool_choice": ["auto"]}, {"messages": "hi"}, {"model": ["claude-opus"]}, [1, 2]])
def test_extract_junk_examples(body: Any) -> None:
    f = extract("POST", "/v1/messages", None, {"authorization": "Bearer x"}, body, OAUTH)
    assert f.max_tokens is None and f.model_family == "other" and f.messages_count == 0
    assert f.system_texts in ((), ("x",))
    assert f.tool_names == ()
    assert load_policy("2026-05-25").decide(f).outcome in outcomes.outcome_ids()


@pytest.mark.parametrize(("name", "base"), [("mcp_memory", "memory"), ("mcp__memory", "memory"),
                                            ("mcp__browser__back", "back"), ("Bash", "Bash"), ("mcp-x", "mcp-x")])
def test_tool_base_name(name: str, base: str) -> None:
    assert tool_base_name(name) == base


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
junk_body = (json_values | st.binary(max_size=40) | st.text(max_size=40)
             | st.fixed_dictionaries({}, optional={k: json_values for k in (
                 "model", "system", "tools", "tool_choice", "messages", "metadata", "stream", "max_tokens")}))


@settings(max_examples=examples(200), deadline=None)
@given(body=junk_body, path=st.sampled_from(["/v1/messages", "/v1/chat/completions", "", "/x"]),
       headers=st.one_of(st.none(), st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4),
                         st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4),
                         st.integers()),
       query=st.one_of(st.none(), st.text(max_size=12), st.integers()))
def test_extract_never_raises_on_junk(body: Any, path: str, headers: Any, query: Any) -> None:
    f = extract("POST", path, query, headers, body, OAUTH)
    assert isinstance(f, RequestFeatures)
    assert f.body_shape in ("anthropic", "openai", "none", "invalid")
    assert f.system_chars == sum(len(t) for t in f.system_texts)
    for name in CASES:
        assert load_policy(name).decide(f).outcome in outcomes.outcome_ids()


# ------------------------------------------------------------------------------------------------ validation
GOOD_RULE = '[[rule]]\nid = "d"\noutcome = "plan"\nsource = "x"\n'
HEAD = '[policy]\nname = "bad"\ndate = "2026-01-01"\ndescription = "d"\n'


@pytest.mark.parametrize(("text", "expected"), [
    (HEAD + '[[rule]]\nid = "r1"\nwhen = { tool_named = ["x"] }\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE,
     ["r1", "unknown condition", "tool_named"]),
    (HEAD + '[[rule]]\nid = "r2"\nwhen = { stream = true }\noutcome = "billed"\nsource = "s"\n' + GOOD_RULE,
     ["r2", "unknown outcome", "billed"]),
    (HEAD + '[[rule]]\nid = "r3"\nwhen = { token_valid = "yes" }\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE,
     ["r3", "token_valid", "true or false"]),
    (HEAD + '[[rule]]\nid = "r4"\nwhen = { auth_style = "cookie" }\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE,
     ["r4", "auth_style", "cookie"]),
    (HEAD + '[[rule]]\nid = "r5"\nwhen = { tool_name_regex = "(" }\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE,
     ["r5", "regular expression"]),
    (HEAD + '[[rule]]\nid = "r6"\nwhen = { stream = true }\noutcome = "plan"\n' + GOOD_RULE, ["r6", "source"]),
    (HEAD + '[[rule]]\nid = "r7"\nwhen = { stream = true }\noutcome = "plan"\nsource = "s"\n', ["r7", "default"]),
    (HEAD + GOOD_RULE + GOOD_RULE, ["'d'", "twice"]),
    (HEAD + '[[rule]]\nid = "r8"\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE, ["r8", "not last"]),
    (HEAD + GOOD_RULE + '[token_endpoint]\nbody_styles = ["json"]\n[[token_endpoint.rule]]\nid = "t1"\n'
     'when = { ua_prefix = "x/" }\noutcome = "plan"\nsource = "s"\n', ["t1", "unknown outcome"]),
    (HEAD + GOOD_RULE + '[token_endpoint]\nbody_styles = ["xml"]\n', ["body_styles", "xml"]),
    ('[policy]\nname = "bad"\n' + GOOD_RULE, ["date"]),
    (HEAD + GOOD_RULE + "[[rule]\n", ["not valid TOML"]),
])
def test_bad_policy_file_gives_a_clear_error(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_policy_in_a_copied_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(data_dir() / "policies", data / "policies")
    shutil.copy(data_dir() / "sim_outcomes.toml", data / "sim_outcomes.toml")
    (data / "policies" / "broken.toml").write_text(
        HEAD + '[[rule]]\nid = "oops"\nwhen = { ua_starts = "x" }\noutcome = "plan"\nsource = "s"\n' + GOOD_RULE)
    monkeypatch.setenv("LANELAB_DATA", str(data))
    assert "broken" in list_policies()
    assert load_policy("2026-05-25").name == "2026-05-25"
    with pytest.raises(PolicyError, match=r"broken\.toml.*oops.*ua_starts"):
        load_policy("broken")


def test_unknown_policy_name_lists_the_known_ones() -> None:
    with pytest.raises(PolicyNotFound) as err:
        load_policy("1999-01-01")
    assert "2026-05-25" in str(err.value) and "2026-08" in str(err.value)


def test_summary_lists_every_rule_with_its_source() -> None:
    summary = load_policy("2026-08").summary()
    assert [r["id"] for r in summary["rules"]] == list(load_policy("2026-08").rule_ids)
    assert all(r["source"] and r["note"] for r in summary["rules"] + summary["token_endpoint"]["rules"])
    assert summary["token_endpoint"]["body_styles"] == ["form"]
