"""Fine-grain differences: one per beta token, system sentence, tool and tool field, and every subset a request."""

from __future__ import annotations

import json

from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.matrix.profiles import load_profile
from lanelab.wire.diff import MISSING, apply_differences, differences, is_fine
from lanelab.wire.spec import RequestSpec

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def spec(headers: dict | None = None, **body) -> RequestSpec:
    return RequestSpec(headers={"anthropic-version": "2023-06-01", **(headers or {})},
                       body={"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], **body})


def test_one_removed_tool_is_one_difference_not_a_shifted_tail() -> None:
    tools = [{"name": n, "input_schema": {}} for n in ("a", "b", "c", "d")]
    a, b = spec(tools=tools), spec(tools=[t for t in tools if t["name"] != "b"])
    coarse = differences(a, b)
    fine = differences(a, b, grain="fine")
    assert len(coarse) == 3  # index-aligned: b→c, c→d, d removed
    assert [(d.key, d.a["name"], d.b) for d in fine] == [("tools[1]", "b", MISSING)]
    assert apply_differences(a, fine) == b


def test_sentences_tokens_and_renames_are_separate_edits() -> None:
    text = ("You are Claude Code, an intelligent AI assistant created by Anthropic. You help with code.\n\n"
            "Use session_search first. Then answer.")
    a = spec({"anthropic-beta": "claude-code-20250219,oauth-2025-04-20,context-1m-2025-08-07"},
             system=[{"type": "text", "text": IDENTITY}, {"type": "text", "text": text, "cache_control": {"x": 1}}],
             tools=[{"name": "mcp_read_file", "input_schema": {}}, {"name": "Bash", "input_schema": {}}],
             tool_choice={"type": "auto"})
    b = spec({"anthropic-beta": "claude-code-20250219,oauth-2025-04-20"},
             system=[{"type": "text", "text": IDENTITY}],
             tools=[{"name": "mcp__read_file", "input_schema": {}}, {"name": "Bash", "input_schema": {}}],
             tool_choice={"type": "auto"})
    fine = differences(a, b, grain="fine")
    assert all(is_fine(d) for d in fine)
    keys = [d.key for d in fine]
    assert keys == ["anthropic-beta: context-1m-2025-08-07", "system[1] sentence 1", "system[1] sentence 2",
                    "system[1] sentence 3", "system[1] sentence 4", "tools[0].name"], keys
    assert fine[1].a == "You are Claude Code, an intelligent AI assistant created by Anthropic."
    assert apply_differences(a, fine) == b
    # one sentence alone: the block keeps its other sentences, its separators and its cache_control
    one = apply_differences(a, [fine[3]])
    assert one.body["system"][1] == {"type": "text", "text": text.replace("Use session_search first. ", ""),
                                     "cache_control": {"x": 1}}
    # the beta token alone
    assert apply_differences(a, [fine[0]]).headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
    # renaming a tool and removing it in one set: the removal wins
    c = spec(tools=[])
    c.body.pop("tools")
    both = [*differences(a, b, grain="fine")[-1:], *[d for d in differences(a, c, grain="fine") if d.part == "tools"]]
    assert "tools" not in apply_differences(a, both).body


def test_all_tools_removed_takes_tool_choice_along() -> None:
    a = spec(tools=[{"name": "x", "input_schema": {}}], tool_choice={"type": "auto"})
    b = spec(tool_choice={"type": "auto"})
    removal = [d for d in differences(a, b, grain="fine") if d.part == "tools"]
    out = apply_differences(a, removal)
    assert "tools" not in out.body and "tool_choice" not in out.body


def test_fine_differences_refuse_the_reverse_side() -> None:
    a, b = spec(system="One. Two."), spec(system="One.")
    import pytest

    with pytest.raises(ValueError, match="side='b'"):
        apply_differences(b, differences(a, b, grain="fine"), side="a")


def test_real_profiles_round_trip_at_fine_grain() -> None:
    names = ["hermes-0.14.0", "hermes-0.19.0", "pi-0.73.1", "openclaw-2026.9.6", "sdk-minimal"]
    for x in names:
        for y in names:
            a, b = load_profile(x).spec, load_profile(y).spec
            assert apply_differences(a, differences(a, b, grain="fine")) == b, (x, y)


words = st.sampled_from(["Alpha", "Beta", "Gamma", "Delta", "MEDIA:", "session_search"])
sentence = st.builds(lambda w, p: f"{w} {p}", words, st.sampled_from([".", "!", "?"]))
texts = st.builds(lambda parts, seps: "".join(p + s for p, s in zip(parts, seps, strict=False)).strip(),
                  st.lists(sentence, min_size=1, max_size=5), st.lists(st.sampled_from([" ", "\n\n", "  ", "\n"]),
                                                                       min_size=5, max_size=5))
block = st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": texts},
                                        optional={"cache_control": st.just({"type": "ephemeral"})}), texts)
tool = st.fixed_dictionaries({"name": st.sampled_from(["a", "mcp_a", "mcp__a", "b", "c"]),
                              "input_schema": st.dictionaries(st.sampled_from("xyz"), st.integers(0, 2), max_size=1)})
body = st.fixed_dictionaries({"model": st.sampled_from(["m1", "m2"])}, optional={
    "system": st.one_of(st.lists(block, min_size=1, max_size=3), texts), "tools": st.lists(tool, min_size=1, max_size=4),
    "stream": st.booleans(), "max_tokens": st.integers(1, 3)})
betas = st.lists(st.sampled_from(["oauth-2025-04-20", "claude-code-20250219", "context-1m-2025-08-07", "x"]),
                 unique=True, max_size=3).map(",".join)
specs = st.builds(RequestSpec, method=st.just("POST"), path=st.sampled_from(["/v1/messages", "/x"]),
                  headers=st.fixed_dictionaries({}, optional={"anthropic-beta": betas, "user-agent": st.text(max_size=2)}),
                  body=body, auth=st.sampled_from(["bearer", "x-api-key"]))


@settings(max_examples=examples(150), deadline=None)
@given(specs, specs, st.randoms(use_true_random=False))
def test_fine_edits_round_trip_and_every_subset_is_a_request(a: RequestSpec, b: RequestSpec, rnd) -> None:
    fine = differences(a, b, grain="fine")
    assert apply_differences(a, fine) == b
    assert apply_differences(a, []) == a
    subset = [d for d in fine if rnd.random() < 0.5]
    mid = apply_differences(a, subset)
    json.dumps(mid.body)  # plain data, no MISSING left anywhere
    assert "MISSING" not in repr(mid.body)
    if isinstance(mid.body, dict):
        assert mid.body.get("tools", [1]) != [] and mid.body.get("system", [1]) not in ([], "")
