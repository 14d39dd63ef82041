"""Each factor level changes exactly the wire parts it declares, and nothing else; application order is defined."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from lanelab.errors import UserError
from lanelab.matrix import transforms
from lanelab.matrix.factors import apply_level, apply_levels, context_for, load_factors, with_credentials
from lanelab.matrix.profiles import list_profiles, load_profile
from lanelab.matrix.transforms import TransformContext, to_openai_body
from lanelab.wire.spec import RequestSpec, build_request

BASE_URL = "http://127.0.0.1:9"
CREDENTIAL_LABELS = ("alpha", "beta")
# Fake, obviously non-real tokens; one per credential label so a credential level shows on the wire.
TOKENS = {None: "sk-ant-oat01-FAKEdefaultTOKENforTESTS", "alpha": "sk-ant-oat01-FAKEalphaTOKENforTESTS",
          "beta": "sk-ant-oat01-FAKEbetaTOKENforTESTSxx"}
DERIVED_HEADERS = {"content-length"}  # follows from the body; the body diff already covers it

CATALOG = with_credentials(load_factors(), CREDENTIAL_LABELS)
# What the kit can send: a reference-only profile (Claude Code's own request) is refused by build_request itself.
PROFILES = {name: p for name in list_profiles() if not (p := load_profile(name)).reference_only}
LEVEL_IDS = [(f, lv) for f, factor in CATALOG.items() for lv in factor.levels]


def wire_parts(spec: RequestSpec) -> dict[str, Any]:
    """The wire request as comparable parts: method, path, query, each header, each top-level body key."""
    req: httpx.Request = build_request(spec, BASE_URL, TOKENS[spec.credential])
    parts: dict[str, Any] = {
        "method": req.method,
        "url.path": req.url.path,
        "url.query": tuple(sorted(parse_qsl(req.url.query.decode(), keep_blank_values=True))),
    }
    for k, v in req.headers.multi_items():
        if k.lower() not in DERIVED_HEADERS:
            parts[f"headers.{k.lower()}"] = v
    body = json.loads(req.content) if req.content else None
    if isinstance(body, dict):
        for k, v in body.items():
            parts[f"body.{k}"] = json.dumps(v, sort_keys=True)
    else:
        parts["body"] = json.dumps(body, sort_keys=True)
    return parts


def wire_diff(a: RequestSpec, b: RequestSpec) -> set[str]:
    pa, pb = wire_parts(a), wire_parts(b)
    return {k for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k)}


def allowed(diff: set[str], declared: tuple[str, ...]) -> set[str]:
    """The parts of ``diff`` the declaration does not cover (``body`` covers every body part)."""
    return {p for p in diff if p not in declared and not (p.startswith("body") and "body" in declared)}


def bases_for(factor: str) -> list[tuple[str, RequestSpec, TransformContext]]:
    """Each profile as sent, and each profile with each other level of the same factor applied."""
    out = []
    for pname, profile in PROFILES.items():
        ctx = context_for(profile.spec)
        out.append((f"{pname}", profile.spec, ctx))
        for sibling in CATALOG[factor].levels.values():
            out.append((f"{pname}+{sibling.name}", apply_level(profile.spec, sibling, ctx), ctx))
    return out


@pytest.mark.slow  # every level of every factor on every profile: tens of thousands of specs
@pytest.mark.parametrize(("factor", "level"), LEVEL_IDS, ids=[f"{f}={lv}" for f, lv in LEVEL_IDS])
def test_level_changes_exactly_its_declared_parts(factor: str, level: str) -> None:
    lv = CATALOG[factor].levels[level]
    assert isinstance(lv.changes, tuple), f"{factor}.{level} has no expected-change declaration"
    assert lv.source, f"{factor}.{level} names no source"
    changed_somewhere = False
    for where, base, ctx in bases_for(factor):
        before = base.copy()
        after = apply_level(base, lv, ctx)
        assert base == before, "apply_level mutated its input"
        diff = wire_diff(base, after)
        undeclared = allowed(diff, lv.changes)
        assert not undeclared, f"{factor}={level} on {where} also changed {sorted(undeclared)}"
        changed_somewhere |= bool(diff)
    if lv.changes:
        assert changed_somewhere, f"{factor}={level} declares {lv.changes} but changed nothing on any base"
    else:
        assert not changed_somewhere


def _parts(factor: str) -> set[str]:
    return {p for lv in CATALOG[factor].levels.values() for p in lv.changes}


def _disjoint(a: set[str], b: set[str]) -> bool:
    def overlaps(p: str, q: str) -> bool:
        return p == q or (p == "body" and q.startswith("body")) or (q == "body" and p.startswith("body"))
    return not any(overlaps(p, q) for p in a for q in b)


DISJOINT_PAIRS = [(f, g) for f, g in itertools.combinations(CATALOG, 2) if _disjoint(_parts(f), _parts(g))]


def test_overlapping_factors_are_few_and_known() -> None:
    """The pairs that do share parts are ordered by stage; this keeps that set small and deliberate."""
    overlapping = {(f, g) for f, g in itertools.combinations(CATALOG, 2) if (f, g) not in DISJOINT_PAIRS}
    for f, g in overlapping:
        assert CATALOG[f].stage != CATALOG[g].stage, f"{f} and {g} share parts but have the same stage"
    assert len(DISJOINT_PAIRS) > len(overlapping)


@pytest.mark.slow  # every level of every factor on every profile: tens of thousands of specs
@pytest.mark.parametrize(("f", "g"), DISJOINT_PAIRS, ids=[f"{f}x{g}" for f, g in DISJOINT_PAIRS])
def test_factors_touching_different_parts_commute(f: str, g: str) -> None:
    for profile in PROFILES.values():
        ctx = context_for(profile.spec)
        with_a = {a.name: apply_level(profile.spec, a, ctx) for a in CATALOG[f].levels.values()}
        with_b = {b.name: apply_level(profile.spec, b, ctx) for b in CATALOG[g].levels.values()}
        for a in CATALOG[f].levels.values():
            for b in CATALOG[g].levels.values():
                one = apply_level(with_a[a.name], b, ctx)
                two = apply_level(with_b[b.name], a, ctx)
                # equal specs make equal wire requests (build_request is a function of the spec)
                assert one == two, f"{f}={a.name} and {g}={b.name} do not commute"


def test_apply_levels_ignores_listing_order() -> None:
    spec = PROFILES["hermes-0.14.0"].spec
    levels = {"endpoint": "chat_completions", "tools": "mcp__", "tool_choice": "forced_first", "identity": "off",
              "system_extra": "skills_guidance", "betas": "oauth_only"}
    for subset in itertools.combinations(levels, 4):
        first, *rest = [apply_levels(spec, {k: levels[k] for k in order}, CATALOG, spec)
                        for order in itertools.permutations(subset)]
        assert all(r == first for r in rest)


def test_tool_rename_keeps_forced_choice_valid() -> None:
    spec = PROFILES["hermes-0.14.0"].spec
    out = apply_levels(spec, {"tools": "mcp__", "tool_choice": "forced_first"}, CATALOG, spec)
    names = [t["name"] for t in out.body["tools"]]
    assert all(n.startswith("mcp__") and not n.startswith("mcp___") for n in names)
    assert out.body["tool_choice"] == {"type": "tool", "name": names[0]}
    bare = apply_levels(spec, {"tools": "bare"}, CATALOG, spec)
    assert {t["name"] for t in bare.body["tools"]} == {n[len("mcp__"):] for n in names}


def test_tools_none_drops_tool_choice_and_forcing_without_tools_is_absent() -> None:
    spec = PROFILES["hermes-0.14.0"].spec
    out = apply_levels(spec, {"tools": "none", "tool_choice": "forced_first"}, CATALOG, spec)
    assert "tools" not in out.body and "tool_choice" not in out.body


def test_betas_keep_the_profile_order_and_empty_removes_header() -> None:
    spec = PROFILES["hermes-0.14.0"].spec
    original = spec.headers["anthropic-beta"].split(",")
    without = apply_levels(spec, {"betas": "profile_without_oauth"}, CATALOG, spec).headers["anthropic-beta"]
    assert without.split(",") == [b for b in original if b != "oauth-2025-04-20"]
    with_1m = apply_levels(spec, {"betas": "with_1m"}, CATALOG, spec).headers["anthropic-beta"].split(",")
    assert with_1m[: len(original)] == original and len(with_1m) == len(original) + 1
    assert "anthropic-beta" not in apply_levels(spec, {"betas": "none"}, CATALOG, spec).headers


def test_identity_and_further_blocks_are_independent() -> None:
    hermes = PROFILES["hermes-0.14.0"].spec
    identity = CATALOG["identity"].levels["on"].args["text"]
    trigger = CATALOG["system_extra"].levels["environment_info"].args["text"]
    only_trigger = apply_levels(hermes, {"system_extra": "environment_info"}, CATALOG, hermes)
    assert [b["text"] for b in only_trigger.body["system"]] == [identity, trigger]
    no_identity = apply_levels(hermes, {"identity": "off"}, CATALOG, hermes)
    assert [b["text"] for b in no_identity.body["system"]] == [b["text"] for b in hermes.body["system"][1:]]
    sdk = PROFILES["sdk-minimal"].spec
    added = apply_levels(sdk, {"identity": "on"}, CATALOG, sdk)
    assert added.body["system"] == [{"type": "text", "text": identity}]
    assert "system" not in apply_levels(sdk, {"system_extra": "none"}, CATALOG, sdk).body


def test_openai_shape_conversion() -> None:
    hermes = PROFILES["hermes-0.14.0"].spec
    body = to_openai_body(apply_levels(hermes, {"tool_choice": "forced_first"}, CATALOG, hermes).body)
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].startswith(hermes.body["system"][0]["text"])
    assert body["messages"][1] == {"role": "user", "content": "ping"}
    assert [t["function"]["name"] for t in body["tools"]] == [t["name"] for t in hermes.body["tools"]]
    assert all(t["type"] == "function" and "parameters" in t["function"] for t in body["tools"])
    assert body["tool_choice"] == {"type": "function", "function": {"name": hermes.body["tools"][0]["name"]}}
    assert "cache_control" not in json.dumps(body)
    assert body["max_tokens"] == hermes.body["max_tokens"] and body["stream"] is True


def test_count_tokens_keeps_only_countable_keys() -> None:
    hermes = PROFILES["hermes-0.14.0"].spec
    out = apply_levels(hermes, {"endpoint": "count_tokens", "metadata": "json"}, CATALOG, hermes)
    assert out.path == "/v1/messages/count_tokens" and not out.is_inference
    assert set(out.body) == {"model", "messages", "system", "tools", "tool_choice"}


def test_credential_level_sets_a_label_never_a_token() -> None:
    spec = PROFILES["sdk-minimal"].spec
    out = apply_levels(spec, {"credential": "alpha"}, CATALOG, spec)
    assert out.credential == "alpha" and "alpha" not in json.dumps(out.body)
    assert TOKENS["alpha"] not in json.dumps(out.to_dict())


def test_unknown_kind_is_a_user_error_listing_kinds() -> None:
    with pytest.raises(UserError, match="keep"):
        transforms.apply(RequestSpec(), "no-such-kind", {}, TransformContext())
