"""Structural diffs: known pairs, annotations with sources, attestation detection, and edits that round-trip."""

from __future__ import annotations

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.matrix.profiles import load_profile
from lanelab.wire.attestation import carries_attestation
from lanelab.wire.diff import (
    MISSING,
    apply_differences,
    diff_specs,
    differences,
    load_annotations,
    show,
)
from lanelab.wire.spec import RequestSpec


def spec(**body) -> RequestSpec:
    return RequestSpec(headers={"anthropic-version": "2023-06-01", "user-agent": "x/1"},
                       body={"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], **body})


def test_known_pair_hermes_vs_sdk_minimal() -> None:
    d = diff_specs(load_profile("hermes-0.14.0").spec, load_profile("sdk-minimal").spec, "hermes", "sdk")
    keys = set(d.keys())
    assert {"header: user-agent", "header: x-app", "header: anthropic-beta", "body: max_tokens",
            "tools: tools", "system: system", "body: stream"} <= keys
    tools = d.find("tools", "tools")
    assert tools.change == "removed"
    assert any("PR #26430" in a.source for a in tools.annotations)  # the mcp_ names are recognised
    frame = d.to_frame()
    assert list(frame.columns[:5]) == ["part", "field", "change", "hermes", "sdk"]
    assert len(frame) == len(d)
    assert "sdk" in d._repr_html_() and "<table" in d._repr_html_()


def test_tool_names_differ_per_field() -> None:
    a = spec(tools=[{"name": "mcp_read_file", "input_schema": {}}, {"name": "Bash", "input_schema": {}}])
    b = spec(tools=[{"name": "mcp__read_file", "input_schema": {}}, {"name": "Bash", "input_schema": {}}])
    d = diff_specs(a, b)
    assert d.keys() == ["tools: tools[0].name"]
    assert d.rows[0].a == "mcp_read_file" and d.rows[0].b == "mcp__read_file"
    assert [a.id for a in d.rows[0].annotations] == ["mcp-single-underscore"]


def test_headers_query_and_system_blocks() -> None:
    a = spec(system=[{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
                     {"type": "text", "text": "long"}])
    b = spec(system=[{"type": "text", "text": "Other."}])
    a.query, b.query = {"beta": "true"}, {}
    b.headers["x-app"] = "cli"
    d = diff_specs(a, b)
    assert d.keys() == ["query: beta", "header: x-app", "system: system[0]", "system: system[1]"]
    assert d.find("system", "system[1]").change == "removed"
    assert "identity-block" in [an.id for an in d.find("system", "system[0]").annotations]
    assert all(an.source for row in d for an in row.annotations)


def test_attestation_is_reported_not_shown() -> None:
    block = {"type": "text", "text": "x-anthropic-billing-header: test-fixture-not-a-real-block;"}
    a, b = spec(system=[block, {"type": "text", "text": "hi"}]), spec(system=[{"type": "text", "text": "hi"}])
    d = diff_specs(a, b, "cc", "other")
    assert carries_attestation(a) and not carries_attestation(b)
    assert d.a_attestation and not d.b_attestation
    assert "cc carries a billing attestation block" in d.attestation_summary()
    assert "test-fixture" not in d.to_frame().to_string() and "not shown" in show(block)


def test_annotations_all_have_sources() -> None:
    catalog = load_annotations()
    assert len(catalog) >= 10 and all(a.source and a.note for a in catalog)


json_leaf = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=4))
block = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=6)})
tool = st.fixed_dictionaries({"name": st.sampled_from(["a", "mcp_a", "mcp__a", "b"]),
                              "input_schema": st.dictionaries(st.sampled_from("xyz"), json_leaf, max_size=2)})
body = st.fixed_dictionaries({"model": st.sampled_from(["m1", "m2"])}, optional={
    "system": st.lists(block, max_size=3), "tools": st.lists(tool, max_size=3), "stream": st.booleans(),
    "max_tokens": st.integers(1, 3), "messages": st.lists(block, max_size=2)})
specs = st.builds(RequestSpec, method=st.sampled_from(["POST", "GET"]), path=st.sampled_from(["/v1/messages", "/x"]),
                  query=st.dictionaries(st.sampled_from(["beta", "q"]), st.text(max_size=3), max_size=2),
                  headers=st.dictionaries(st.sampled_from(["user-agent", "x-app", "anthropic-beta"]),
                                          st.text(max_size=3), max_size=3),
                  body=body, auth=st.sampled_from(["bearer", "x-api-key"]))


@settings(max_examples=examples(80), deadline=None)
@given(specs, specs, st.randoms(use_true_random=False))
def test_edits_round_trip(a: RequestSpec, b: RequestSpec, rnd) -> None:
    diffs = differences(a, b)
    assert apply_differences(a, diffs) == b
    assert apply_differences(a, []) == a
    assert apply_differences(b, diffs, side="a") == a
    subset = [d for d in diffs if rnd.random() < 0.5]
    mid = apply_differences(a, subset)
    # each applied header/query edit takes the target's value, each unapplied one keeps the original's
    for d in diffs:
        if d.part in ("header", "query"):
            got = getattr(mid, d.loc[0]).get(d.loc[1], MISSING)
            assert got == (d.b if d in subset else d.a)
    assert all(x is not MISSING for x in (mid.body or {}).values())


def test_the_request_functions_refuse_what_is_no_request_spec_in_a_sentence() -> None:
    from lanelab.auth.introspect import describe
    from lanelab.errors import InputError
    from lanelab.wire.send import send

    with pytest.raises(InputError, match="The first request is a RequestSpec; found str.*load_profile"):
        diff_specs("sdk-minimal", "hermes-0.14.0")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="A request is a RequestSpec; found str"):
        send("hermes-0.14.0", "http://127.0.0.1:9")  # type: ignore[arg-type]  (nothing is sent)
    with pytest.raises(InputError, match="describe takes a credential; found NoneType"):
        describe(None)  # type: ignore[arg-type]


def test_the_terminal_table_is_narrow_and_says_each_report_once_with_its_sources() -> None:
    """diff's printed table cuts both values and numbers the notes; each note is listed once below it, wrapped, with
    its sources: the whole of every value and note stays in to_frame (and --csv)."""
    d = diff_specs(load_profile("hermes-0.14.0").spec, load_profile("sdk-minimal").spec, "hermes", "sdk")
    text = d.to_markdown()
    table, _, said = text.partition("\n\nWhat reports say:\n")
    assert max(len(line) for line in text.splitlines()) <= 140
    frame = d.to_frame()
    notes = [n for cell in frame["what reports say"] for n in cell.split(" · ") if n]
    for note in dict.fromkeys(notes):
        assert " ".join(said.split()).count(note.split(" [")[0]) == 1  # each once, however many rows it annotates
    assert "[1]" in table and said.startswith("[1] ")
    assert all(source.split(";")[0] in " ".join(said.split()) for source in frame["sources"] if source)
