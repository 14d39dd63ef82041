"""The compiled policy decides as its rule text says: every policy in data/policies/, every rule, over broad generated
request features, against a reference reading of each rule's ``when`` table written here.

A policy's conditions are compiled once when it is loaded (values prepared as sets, tuples and compiled regexes).
The reference below reads the raw ``when`` values the plain way the vocabulary describes them (a string or a list,
any-of unless noted; regexes searched as written), so a compiled condition that drifts from its meaning fails here.
Features are generated from the values the policies themselves name (paths, betas, user-agent prefixes, prompt
fragments, tool names, thresholds), with near misses around each, mostly as small changes to a request the policies
serve, so the rules deep in each file are reached too.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
from fast_loop import examples, sweep
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.sim import outcomes
from lanelab.sim.features import (
    AUTH_STYLES,
    BODY_SHAPES,
    MODEL_FAMILIES,
    TOKEN_KINDS,
    RequestFeatures,
    TokenInfo,
)
from lanelab.sim.policy import (
    BODY_STYLES,
    CONDITIONS,
    TOKEN_CONDITIONS,
    Decision,
    Policy,
    Rule,
    TokenRequest,
    list_policies,
    load_policy,
)
from lanelab.version_gate import load_version_gate

POLICIES = list_policies()


# ------------------------------------------------------------------------------------------------ the reference
def values(v: Any) -> list[Any]:
    """A condition value as the rule text has it: a list, or one value."""
    return list(v) if isinstance(v, list) else [v]


def gate_hit(f: RequestFeatures) -> Any:
    return load_version_gate().check(f.model, f.user_agents)


def base_names(names: Iterable[str]) -> list[str]:
    """Tool names without their MCP wrapper, as the vocabulary describes it: ``mcp__server__x``, ``mcp__x``, ``mcp_x``
    → ``x``."""
    out = []
    for name in names:
        m = re.match(r"^mcp__(?:[^_].*?__)?(?P<tool>.+)$", name) or re.match(r"^mcp_(?!_)(?P<tool>.+)$", name)
        out.append(m.group("tool") if m else name)
    return out


#: Each condition key, read straight from its rule value ``v`` for a request ``f`` (or token request ``t``).
REFERENCE: dict[str, Callable[[Any, Any], bool]] = {
    "method_in": lambda v, f: f.method in [m.upper() for m in values(v)],
    "path_in": lambda v, f: f.path in values(v),
    "path_prefix": lambda v, f: any(f.path.startswith(p) for p in values(v)),
    "beta_query": lambda v, f: f.beta_query == v,
    "body_shape": lambda v, f: f.body_shape in values(v),
    "auth_style": lambda v, f: f.auth_style in values(v),
    "token_kind": lambda v, f: f.token.kind in values(v),
    "token_valid": lambda v, f: f.token.valid == v,
    "token_expired": lambda v, f: f.token.expired == v,
    "token_source_in": lambda v, f: f.token.source in values(v),
    "scopes_lack": lambda v, f: not any(s in f.token.scopes for s in values(v)),
    "beta_has": lambda v, f: all(b in f.betas for b in values(v)),
    "beta_has_any": lambda v, f: any(b in f.betas for b in values(v)),
    "beta_lacks": lambda v, f: not any(b in f.betas for b in values(v)),
    "ua_prefix": lambda v, f: any(ua.startswith(p) for ua in f.user_agents for p in values(v)),
    "ua_lacks_prefix": lambda v, f: not any(ua.startswith(p) for ua in f.user_agents for p in values(v)),
    "ua_absent": lambda v, f: (len(f.user_agents) == 0) == v,
    "x_app": lambda v, f: f.x_app in values(v),
    "x_app_absent": lambda v, f: (f.x_app is None or f.x_app == "") == v,
    "first_system_is_identity": lambda v, f: f.first_system_is_identity == v,
    "system_contains_any": lambda v, f: any(s in "\n".join(f.system_texts) for s in values(v)),
    "system_contains_all": lambda v, f: all(s in "\n".join(f.system_texts) for s in values(v)),
    "system_chars_over": lambda v, f: f.system_chars > v,
    "tools_present": lambda v, f: (len(f.tool_names) > 0 or f.tools_json_size > 2) == v,
    "tools_json_over": lambda v, f: f.tools_json_size > v,
    "tool_name_regex": lambda v, f: any(re.search(v, n) for n in f.tool_names),
    "tool_named_any": lambda v, f: any(n in values(v) for n in base_names(f.tool_names)),
    "tool_choice_type": lambda v, f: f.tool_choice_type in values(v),
    "model_family_in": lambda v, f: f.model_family in values(v),
    "model_regex": lambda v, f: re.search(v, f.model or "") is not None,
    "stream": lambda v, f: f.stream == v,
    "max_tokens_over": lambda v, f: (f.max_tokens or 0) > v,
    "has_metadata_user_id": lambda v, f: f.has_metadata_user_id == v,
    "request_invalid": lambda v, f: (f.request_problem is not None) == v,
    "claims_version_below_floor": lambda v, f: (gate_hit(f) is not None) == v,
    "body_style_in": lambda v, t: t.body_style in values(v),
    "host_in": lambda v, t: t.host in values(v),
    "grant_type_in": lambda v, t: t.grant_type in values(v),
}


def ref_matches(rule: Rule, subject: Any) -> bool:
    return all(REFERENCE[key](value, subject) for key, value in rule.when.items())


def ref_details(rule: Rule, f: RequestFeatures) -> dict[str, str]:
    out: dict[str, str] = {}
    if "request_invalid" in rule.when:
        out["problem"] = f.request_problem or ""
    if "claims_version_below_floor" in rule.when:
        hit = gate_hit(f)
        out.update(hit.details if hit is not None else {})
    return out


def ref_decide(policy: Policy, f: RequestFeatures) -> tuple[str, str, str, dict[str, str]]:
    rule = next(r for r in policy.rules if ref_matches(r, f))
    return rule.outcome, rule.id, rule.source, ref_details(rule, f)


def as_tuple(d: Decision) -> tuple[str, str, str, dict[str, str]]:
    return d.outcome, d.rule_id, d.source, d.details


def test_the_reference_reads_every_condition_key() -> None:
    assert set(CONDITIONS) | set(TOKEN_CONDITIONS) == set(REFERENCE)


# ------------------------------------------------------------------------------------------------ the generator
def rule_values(key: str) -> list[Any]:
    """Every value the shipped policies give condition ``key`` (request and token rules), flattened."""
    found: list[Any] = []
    for name in POLICIES:
        policy = load_policy(name)
        for rule in (*policy.rules, *policy.token_rules):
            if key in rule.when:
                found.extend(values(rule.when[key]))
    return found


def near(texts: Iterable[str]) -> list[str]:
    """Each text, and near misses: cut short, extended, case changed (the texts themselves about half the time)."""
    exact = sorted(set(texts))
    misses = sorted({m for t in exact for m in (t[:-1], t + "x", "x" + t, t.upper(), t.lower())} - set(exact))
    return exact * max(1, len(misses) // max(1, len(exact))) + misses


def numbers(key: str) -> list[int]:
    return sorted({n + d for n in rule_values(key) for d in (-1, 0, 1)} | {0})


IDENTITY = outcomes.identity_line()
GATE = load_version_gate()
GATED_MODELS = [m.id for m in GATE.models]
FLOORS = [m.floor for m in GATE.models]


def around(version: str) -> list[str]:
    major, minor, patch = (int(p) for p in version.split("."))
    return [f"{major}.{minor}.{patch + d}" for d in (-1, 0, 1)] + [f"{major}.{minor + 1}.0", f"{major}.{minor}.1000"]


UA_PREFIXES = rule_values("ua_prefix") + rule_values("ua_lacks_prefix")
POOLS: dict[str, list[Any]] = {
    "method": ["POST", "GET", "PUT", "post"],
    "path": near(rule_values("path_in") + rule_values("path_prefix")) + ["/", "/v1/messages", "/api/oauth/x"],
    "beta_query": [False, True],
    "auth_style": list(AUTH_STYLES) + ["Bearer"],
    "body_shape": list(BODY_SHAPES),
    "token_kind": list(TOKEN_KINDS),
    "token_source": [None, "", "pkce", "setup-token", "api_key", "lanelab:pkce", *rule_values("token_source_in")],
    "scope": sorted({"user:inference", "user:profile", "org:create_api_key", "user:sessions:claude_code",
                     *rule_values("scopes_lack")}),
    "beta": near(rule_values("beta_has") + rule_values("beta_has_any") + rule_values("beta_lacks"))
    + ["claude-code-20250219", "interleaved-thinking-2025-05-14"],
    "user_agent": sorted({*near(UA_PREFIXES), *(p + "1.0" for p in UA_PREFIXES), "Anthropic/Python 0.86.0",
                          "python-httpx/0.28.1", "claude-cli/2.1.74 (external, cli)",
                          *(f"{tool}/{v} (external, cli)" for tool in ("claude-cli", "claude-code")
                            for floor in FLOORS for v in around(floor))}),
    "x_app": [None, "", "cli", "CLI", "app", *rule_values("x_app")],
    "system_text": sorted({IDENTITY, IDENTITY + " ", "You are helpful.",
                           *near(rule_values("system_contains_any") + rule_values("system_contains_all"))}),
    "system_chars": numbers("system_chars_over") + [10_000],
    "tool_name": sorted({n for base in rule_values("tool_named_any") + ["memory", "read_file", "todo"]
                         for n in (base, "mcp_" + base, "mcp__" + base, "mcp__srv__" + base, "mcp-" + base,
                                   base + "_x")}),
    "tools_json_size": numbers("tools_json_over") + [1, 2, 3, 50_000],
    "tool_choice_type": [None, "auto", "any", "tool", "none", *rule_values("tool_choice_type")],
    "model": sorted({*GATED_MODELS, *(m + "-20260901" for m in GATED_MODELS), *(m + "0" for m in GATED_MODELS),
                     "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7", "gpt-4o", "claude-fable-5",
                     "claude-fable-x"}) + [None],
    "model_family": list(MODEL_FAMILIES),
    "stream": [False, True],
    "max_tokens": [None, *numbers("max_tokens_over"), 64, 128_000],
    "has_metadata_user_id": [False, True],
    "request_problem": [None, "max_tokens: Field required", "messages.0.role: Input should be 'user' or 'assistant'"],
    "first_system_is_identity": [False, True],
}

#: A request the policies serve (a valid OAuth token with the oauth beta, a well-formed Messages body): the start
#: of most generated requests, so that changing a few of its fields reaches the rules late in each file.
SERVED = RequestFeatures(
    method="POST", path="/v1/messages", query={}, headers={}, body=None,
    token=TokenInfo("oauth", True, False, ("org:create_api_key", "user:profile", "user:inference"), "pkce"),
    auth_style="bearer", betas=("oauth-2025-04-20",), user_agents=("claude-cli/2.1.300 (external, cli)",),
    x_app="cli", body_shape="anthropic", model="claude-haiku-4-5", model_family="haiku", max_tokens=64,
    system_texts=(IDENTITY,), first_system_is_identity=True, system_chars=len(IDENTITY),
)

Choose = Callable[[list[Any]], Any]
Count = Callable[[int, int], int]


def subset(choose: Choose, count: Count, pool: list[Any], most: int) -> tuple[Any, ...]:
    return tuple(choose(pool) for _ in range(count(0, most)))


#: How each generated field is drawn (``choose`` picks from a pool, ``count(a, b)`` an integer a..b).
FIELDS: dict[str, Callable[[Choose, Count], dict[str, Any]]] = {
    "method": lambda c, n: {"method": c(POOLS["method"])},
    "path": lambda c, n: {"path": c(POOLS["path"])},
    "beta_query": lambda c, n: {"beta_query": c(POOLS["beta_query"])},
    "auth_style": lambda c, n: {"auth_style": c(POOLS["auth_style"])},
    "body_shape": lambda c, n: {"body_shape": c(POOLS["body_shape"])},
    "token": lambda c, n: {"token": TokenInfo(c(POOLS["token_kind"]), c([True, False]), c([False, True]),
                                              subset(c, n, POOLS["scope"], 3), c(POOLS["token_source"]))},
    "betas": lambda c, n: {"betas": subset(c, n, POOLS["beta"], 4)},
    "user_agents": lambda c, n: {"user_agents": subset(c, n, POOLS["user_agent"], 2)},
    "x_app": lambda c, n: {"x_app": c(POOLS["x_app"])},
    "system": lambda c, n: {"system_texts": subset(c, n, POOLS["system_text"], 3)},
    "first_system_is_identity": lambda c, n: {"first_system_is_identity": c(POOLS["first_system_is_identity"])},
    "system_chars": lambda c, n: {"system_chars": c(POOLS["system_chars"])},
    "tool_names": lambda c, n: {"tool_names": subset(c, n, POOLS["tool_name"], 3)},
    "tools_json_size": lambda c, n: {"tools_json_size": c(POOLS["tools_json_size"])},
    "tool_choice_type": lambda c, n: {"tool_choice_type": c(POOLS["tool_choice_type"])},
    "model": lambda c, n: {"model": c(POOLS["model"])},
    "model_family": lambda c, n: {"model_family": c(POOLS["model_family"])},
    "stream": lambda c, n: {"stream": c(POOLS["stream"])},
    "max_tokens": lambda c, n: {"max_tokens": c(POOLS["max_tokens"])},
    "has_metadata_user_id": lambda c, n: {"has_metadata_user_id": c(POOLS["has_metadata_user_id"])},
    "request_problem": lambda c, n: {"request_problem": c(POOLS["request_problem"])},
}


def generate(choose: Choose, count: Count) -> RequestFeatures:
    """A request: the served one with a few fields changed, or (one in four) every field drawn."""
    names = sorted(FIELDS)
    if count(0, 3) == 0:
        changed = names
    else:
        changed = [choose(names) for _ in range(count(1, 5))]
    fields: dict[str, Any] = {}
    for name in changed:
        fields.update(FIELDS[name](choose, count))
    return replace(SERVED, **fields)


def aim(rule: Rule, f: RequestFeatures, choose: Choose) -> RequestFeatures:
    """``f`` changed so that each condition of ``rule`` holds, read from the rule's own values (then the sweep
    checks the rule, and the rules before it, on a request close to its trigger)."""
    c: dict[str, Any] = {}
    token = f.token
    get = lambda name: c.get(name, getattr(f, name))
    for key, v in rule.when.items():
        vs = values(v)
        if key in ("method_in", "path_in", "body_shape", "auth_style", "x_app", "tool_choice_type", "model_family_in"):
            field = {"method_in": "method", "path_in": "path", "model_family_in": "model_family"}.get(key, key)
            c[field] = choose(vs).upper() if key == "method_in" else choose(vs)
        elif key == "path_prefix":
            c["path"] = choose(vs) + choose(["", "usage", "profile"])
        elif key in ("beta_query", "first_system_is_identity", "stream", "has_metadata_user_id"):
            c[key] = v
        elif key in ("system_chars_over", "tools_json_over", "max_tokens_over"):
            field = {"system_chars_over": "system_chars", "tools_json_over": "tools_json_size"}.get(key, "max_tokens")
            c[field] = v + choose([1, 100])
        elif key == "token_kind":
            token = replace(token, kind=choose(vs))
        elif key in ("token_valid", "token_expired"):
            token = replace(token, **{key.removeprefix("token_"): v})
        elif key == "token_source_in":
            token = replace(token, source=choose(vs))
        elif key == "scopes_lack":
            token = replace(token, scopes=tuple(s for s in token.scopes if s not in vs))
        elif key in ("beta_has", "beta_has_any"):
            c["betas"] = (*get("betas"), *(vs if key == "beta_has" else [choose(vs)]))
        elif key == "beta_lacks":
            c["betas"] = tuple(b for b in get("betas") if b not in vs)
        elif key == "ua_prefix":
            c["user_agents"] = (*get("user_agents"), choose(vs) + "2.1.300")
        elif key == "ua_lacks_prefix":
            c["user_agents"] = tuple(u for u in get("user_agents") if not any(u.startswith(p) for p in vs))
        elif key == "ua_absent":
            c["user_agents"] = () if v else ("python-httpx/0.28.1",)
        elif key == "x_app_absent":
            c["x_app"] = choose([None, ""]) if v else "cli"
        elif key in ("system_contains_any", "system_contains_all"):
            c["system_texts"] = (*get("system_texts"), *(vs if key == "system_contains_all" else [choose(vs)]))
        elif key == "tools_present":
            c["tool_names"], c["tools_json_size"] = (("read_file",), 80) if v else ((), 0)
        elif key == "tool_name_regex":
            c["tool_names"] = (*get("tool_names"), choose([n for n in POOLS["tool_name"] if re.search(v, n)]))
        elif key == "tool_named_any":
            c["tool_names"] = (*get("tool_names"), choose(["", "mcp_", "mcp__"]) + choose(vs))
        elif key == "model_regex":
            c["model"] = choose([m for m in POOLS["model"] if m is not None and re.search(v, m)])
        elif key == "request_invalid":
            c["request_problem"] = POOLS["request_problem"][1] if v else None
        elif key == "claims_version_below_floor":
            gated = choose(GATE.models)
            c["model"] = gated.id
            if v:
                c["user_agents"] = (f"claude-cli/{around(gated.floor)[0]} (external, cli)",)
        else:  # a condition the policies use must be aimed at, or rules using it would go untested here
            raise AssertionError(f"aim() does not know condition {key!r}")
    c["token"] = token
    return replace(f, **c)


def check(policy: Policy, f: RequestFeatures) -> None:
    for rule in policy.rules:
        assert rule.matches(f) == ref_matches(rule, f), (policy.name, rule.id, f)
    assert as_tuple(policy.decide(f)) == ref_decide(policy, f), (policy.name, f)


# ------------------------------------------------------------------------------------------------ the checks
@pytest.mark.parametrize("name", POLICIES)
def test_every_rule_decides_as_its_text_says_over_a_seeded_sweep(name: str) -> None:
    """3000 generated requests per policy (one in three aimed at a rule; the fast loop checks the first 1000, see
    fast_loop.sweep); each rule is also seen both holding and failing, and every rule is the decision at least once
    (the sweep reaches the whole file: every shipped policy's does within its first 350 requests)."""
    policy = load_policy(name)
    rng = random.Random(f"compiled-policy-{name}")
    held: set[str] = set()
    failed: set[str] = set()
    decided: set[str] = set()
    for i in range(sweep(3000)):
        f = generate(rng.choice, rng.randint)
        if i % 3 == 0:
            f = aim(rng.choice(policy.rules), f if i % 2 else SERVED, rng.choice)
        check(policy, f)
        for rule in policy.rules:
            (held if rule.matches(f) else failed).add(rule.id)
        decided.add(policy.decide(f).rule_id)
    ids = set(policy.rule_ids)
    assert held == ids
    assert failed == ids - {policy.rules[-1].id}  # the default holds for every request
    assert decided == ids


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), name=st.sampled_from(POLICIES))
def test_every_rule_decides_as_its_text_says_for_drawn_requests(data: st.DataObject, name: str) -> None:
    f = generate(lambda pool: data.draw(st.sampled_from(pool)),
                 lambda lo, hi: data.draw(st.integers(min_value=lo, max_value=hi)))
    check(load_policy(name), f)


TOKEN_UAS: list[tuple[str, ...]] = [(), ("",), *((ua,) for ua in sorted(set(near(UA_PREFIXES)))),
                                    ("claude-cli/2.1.300", "curl/8.5.0"), ("axios/1.7.9", "claude-cli/2.1.0")]
TOKEN_HOSTS = sorted(set(near(rule_values("host_in")))) + ["", "127.0.0.1"]
GRANTS = [None, "authorization_code", "refresh_token", "client_credentials"]
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "form": "application/x-www-form-urlencoded",
                 "other": "text/plain", "none": None}


@pytest.mark.parametrize("name", POLICIES)
def test_every_token_rule_decides_as_its_text_says_over_every_combination(name: str) -> None:
    policy = load_policy(name)
    held: set[str] = set()
    for uas, style, host, grant in itertools.product(TOKEN_UAS, BODY_STYLES, TOKEN_HOSTS, GRANTS):
        req = TokenRequest(user_agents=tuple(u.strip() for u in uas if u.strip()), body_style=style, host=host,
                           grant_type=grant)
        for rule in policy.token_rules:
            assert rule.matches(req) == ref_matches(rule, req), (name, rule.id, req)
            held |= {rule.id} if rule.matches(req) else set()
        first = next((r for r in policy.token_rules if ref_matches(r, req)), None)
        if first is not None:
            expected: tuple[str, str, str] | None = (first.outcome, first.id, first.source)
        elif style not in policy.token_body_styles:
            expected = (policy.token_meta["body_style_outcome"], "token_body_style", policy.token_meta["body_style_source"])
        else:
            expected = None
        got = policy.decide_token([("user-agent", u) for u in uas], CONTENT_TYPES[style], host, grant)
        assert (None if got is None else (got.outcome, got.rule_id, got.source)) == expected, (name, req)
    assert held == set(policy.token_rule_ids) - {"token_body_style"}


def test_a_rule_checked_against_another_vocabulary_says_so() -> None:
    rule = load_policy(POLICIES[0]).rules[0]
    assert rule.matches(SERVED, CONDITIONS) == rule.matches(SERVED)
    with pytest.raises(ValueError, match="another vocabulary"):
        rule.matches(SERVED, TOKEN_CONDITIONS)


# ------------------------------------------------------------------------------------------------ each condition alone
#: Values to try for each string-list condition, beyond those the policies use (several keys appear in no policy yet).
STRS_SAMPLES: dict[str, list[str]] = {
    "method_in": ["POST", "get", "Put"],
    "path_in": ["/v1/messages", "/v1/chat/completions", "/v1/models", "/chat/completions"],
    "path_prefix": ["/api/oauth/", "/v1/", "/x"],
    "body_shape": list(BODY_SHAPES),
    "auth_style": list(AUTH_STYLES),
    "token_kind": list(TOKEN_KINDS),
    "token_source_in": ["pkce", "setup-token", "api_key", ""],
    "scopes_lack": ["user:inference", "user:profile", "org:create_api_key"],
    "beta_has": ["oauth-2025-04-20", "context-1m-2025-08-07", "claude-code-20250219"],
    "beta_has_any": ["oauth-2025-04-20", "context-1m-2025-08-07", "claude-code-20250219"],
    "beta_lacks": ["oauth-2025-04-20", "context-1m-2025-08-07", "claude-code-20250219"],
    "ua_prefix": ["claude-cli/", "claude-code/", "Mozilla", "curl/"],
    "ua_lacks_prefix": ["claude-cli/", "claude-code/", "Mozilla", "curl/"],
    "x_app": ["cli", "CLI", ""],
    "system_contains_any": ["session_search", "MEDIA:", "You are", "skill_manage"],
    "system_contains_all": ["session_search", "MEDIA:", "You are", "skill_manage"],
    "tool_named_any": ["memory", "session_search", "read_file", "mcp_memory"],
    "tool_choice_type": ["auto", "any", "tool"],
    "model_family_in": list(MODEL_FAMILIES),
    "body_style_in": list(BODY_STYLES),
    "host_in": ["console.anthropic.com", "platform.claude.com", "127.0.0.1"],
    "grant_type_in": ["authorization_code", "refresh_token"],
}
REGEX_SAMPLES = ["^mcp_(?!_)", "fable", "^claude-(?:opus|sonnet)", "memory$", "^claude-fable"]
INT_SAMPLES = [0, 2, 64, 4250, 4251, 10_000]


def samples(key: str, kind: str) -> list[Any]:
    """Rule values to try for ``key``: true and false, thresholds, patterns, or one string and lists of them."""
    if kind == "bool":
        return [True, False]
    if kind == "int":
        return sorted(set(INT_SAMPLES) | set(numbers(key)))
    if kind == "regex":
        return sorted(set(REGEX_SAMPLES) | set(rule_values(key)))
    texts = sorted(set(STRS_SAMPLES[key]) | set(rule_values(key)))
    return [*texts, *([a, b] for a, b in itertools.pairwise(texts)), texts]


@pytest.mark.parametrize("key", sorted(CONDITIONS))
def test_each_request_condition_alone_matches_as_its_text_says(key: str) -> None:
    rng = random.Random(f"compiled-condition-{key}")
    requests = [generate(rng.choice, rng.randint) for _ in range(600)]
    outcomes_seen = set()
    for value in samples(key, CONDITIONS[key].kind):
        rule = Rule(id=f"only_{key}", when={key: value}, outcome="plan", source="test")
        for f in requests:
            got = rule.matches(f)
            assert got == ref_matches(rule, f), (key, value, f)
            outcomes_seen.add(got)
    assert outcomes_seen == {True, False}


@pytest.mark.parametrize("key", sorted(TOKEN_CONDITIONS))
def test_each_token_condition_alone_matches_as_its_text_says(key: str) -> None:
    outcomes_seen = set()
    for value in samples(key, TOKEN_CONDITIONS[key].kind):
        rule = Rule(id=f"only_{key}", when={key: value}, outcome="token_forbidden", source="test",
                    vocabulary=TOKEN_CONDITIONS)
        for uas, style, host, grant in itertools.product(TOKEN_UAS, BODY_STYLES, TOKEN_HOSTS, GRANTS):
            req = TokenRequest(user_agents=uas, body_style=style, host=host, grant_type=grant)
            got = rule.matches(req)
            assert got == ref_matches(rule, req), (key, value, req)
            outcomes_seen.add(got)
    assert outcomes_seen == {True, False}


_HEADER_NAMES = st.sampled_from(["authorization", "anthropic-beta", "user-agent", "x-app", "anthropic-version", "host",
                                 "x-api-key", "User-Agent", "accept"])


@given(st.lists(st.dictionaries(_HEADER_NAMES, st.text(max_size=30), max_size=6), min_size=1, max_size=4))
def test_header_features_kept_for_the_same_headers_are_what_reading_them_gives(dicts: list[dict[str, str]]) -> None:
    """A simulator keeps the features of the last header dict it read (a client sends the same headers each time):
    for any sequence of dicts, repeated or not, they are what reading each gives, in a fresh dict a rule may keep."""
    from lanelab.sim import features

    kept = features.HeaderFeatures()
    for headers in [*dicts, *dicts, dicts[-1], dict(dicts[-1])]:
        got = kept.of(headers)
        assert got == features._header_features(headers)
        got["headers"]["x-changed"] = "by a caller"
        assert "x-changed" not in kept.of(headers)["headers"]
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]}
    for headers in dicts:
        assert features.extract("POST", "/v1/messages", {}, headers, body, None, kept) == \
            features.extract("POST", "/v1/messages", {}, headers, body, None)
