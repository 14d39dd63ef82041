"""Lint: the trigger catalogue as data, matching with exact elements, Hermes dumps, the CLI's exit codes, no network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lanelab import cli
from lanelab.errors import InputError, NotFound
from lanelab.matrix.profiles import load_profile
from lanelab.sim import outcomes
from lanelab.sim.policy import load_policy
from lanelab.walkthrough import lint as lint_mod
from lanelab.walkthrough.dumps import DumpError, load_dump, parse_dump
from lanelab.walkthrough.lint import (
    CatalogueError,
    LintInputError,
    apply_fixes,
    lint,
    lint_file,
    load_catalogue,
    load_input,
    load_version_gate,
)
from lanelab.wire.spec import RequestSpec

FIXTURES = Path(__file__).parent / "fixtures"
DUMP = FIXTURES / "request_dump_20260525_101500_fake01_20260525_101512_345678.json"
IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
#: references/hermes.md §7: the 16 tools Hermes 0.14.0 sent in a one-shot run, every one prefixed mcp_.
HERMES_TOOLS = ["clarify", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "search_files",
                "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze",
                "write_file"]
SKILLS = ("After completing a complex task (5+ tool calls), fixing a tricky error, or discovering a non-trivial "
          "workflow, save the approach as a skill with skill_manage.")
FAKE_TOKEN = "sk-ant-oat01-" + "Fk7" * 20


def spec(*, auth: str = "bearer", path: str = "/v1/messages", beta: str | None = "oauth-2025-04-20",
         ua: str | None = "Anthropic/Python 0.86.0", model: str = "claude-sonnet-4-6", **body: Any) -> RequestSpec:
    """A small well-formed request; keyword arguments replace body fields."""
    headers = {"anthropic-version": "2023-06-01"}
    if beta is not None:
        headers["anthropic-beta"] = beta
    if ua is not None:
        headers["user-agent"] = ua
    return RequestSpec(path=path, auth=auth, headers=headers,
                       body={"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}],
                             **body})


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "description": "d", "input_schema": {"type": "object"}} for n in names]


def system(*texts: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": t} for t in texts]


# --------------------------------------------------------------------------------------- every entry: + and - cases

CASES: dict[str, tuple[list[RequestSpec], list[RequestSpec]]] = {
    "mcp-single-underscore-tools": (
        [spec(tools=tools("mcp_read_file", "Bash"))],
        [spec(tools=tools("mcp__read_file", "mcp-browser-back", "mcp__browser__back", "Bash", "do_thing"))]),
    "memory-session-search-tools": (
        [spec(tools=tools("mcp__memory")), spec(tools=tools("session_search")),
         spec(tools=tools("mcp__hermes__session_search"))],
        [spec(tools=tools("mcp__context_notes", "mcp__chat_history_lookup", "memory_bank", "session_searcher"))]),
    "hermes-identity-block": (
        [spec(system=system(IDENTITY, "You are Hermes Agent, an intelligent AI assistant created by Nous Research."))],
        [spec(system=system(IDENTITY, "You are a careful coding assistant."))]),
    "skills-guidance-sentence": (
        [spec(system=system(IDENTITY, "Intro. " + SKILLS + " Outro."))],
        [spec(system=system(IDENTITY, "When a task took many steps, consider writing down how you did it."))]),
    "gateway-prompt-media": (
        [spec(system=system(IDENTITY, "Send files as MEDIA: /path. Use session_search before asking."))],
        [spec(system=system(IDENTITY, "Send files as MEDIA: /path.")),
         spec(system=system(IDENTITY, "Use session_search before asking."))]),
    "large-hermes-prompt": (
        [spec(system=system(IDENTITY, "Use skill_manage to save skills. " + "Generic guidance. " * 300))],
        [spec(system=system(IDENTITY, "Generic guidance. " * 400)),
         spec(system=system(IDENTITY, "Use skill_manage to save skills."))]),
    "oauth-beta-missing": (
        [spec(beta="interleaved-thinking-2025-05-14"), spec(beta=None)],
        [spec(beta="claude-code-20250219,oauth-2025-04-20"), spec(auth="x-api-key", beta=None)]),
    "both-auth-headers": ([spec(auth="both")], [spec(auth="bearer"), spec(auth="x-api-key")]),
    "chat-completions-path": (
        [spec(path="/v1/chat/completions"), spec(path="/chat/completions")],
        [spec(path="/v1/messages"), spec(path="/v1/messages/count_tokens")]),
    "context-1m-beta-oauth": (
        [spec(beta="oauth-2025-04-20,context-1m-2025-08-07")],
        [spec(auth="x-api-key", beta="context-1m-2025-08-07"), spec(beta="oauth-2025-04-20")]),
    "claude-code-version-gate": (
        [spec(model="claude-fable-5-1", ua="claude-cli/2.1.250 (external, cli)"),
         spec(model="claude-opus-5-5", ua="claude-code/2.1.279 (external, cli)"),
         spec(model="claude-fable-5-1-20260901", ua="claude-cli/2.1.74 (external, cli)")],
        [spec(model="claude-fable-5-1", ua="claude-cli/2.1.251 (external, cli)"),
         spec(model="claude-opus-5-5", ua="claude-cli/2.1.1000 (external, cli)"),
         spec(model="claude-sonnet-4-6", ua="claude-cli/2.1.74 (external, cli)"),
         spec(model="claude-fable-5-1", ua="Anthropic/Python 0.86.0")]),
    "tool-choice-unlisted-name": (
        [spec(tools=tools("mcp__read_file"), tool_choice={"type": "tool", "name": "read_file"})],
        [spec(tools=tools("mcp__read_file"), tool_choice={"type": "tool", "name": "mcp__read_file"}),
         spec(tools=tools("mcp__read_file"), tool_choice={"type": "auto"})]),
    "claude-code-identity-line-missing": (
        [spec(), spec(system=system("You are a helpful assistant.", IDENTITY))],
        [spec(system=system(IDENTITY)), spec(system=IDENTITY + " More."), spec(model="claude-haiku-4-5")]),
    "claude-code-user-agent-missing": (
        [spec(), spec(ua=None)],
        [spec(ua="claude-cli/2.1.197 (external, sdk-cli)"), spec(model="claude-haiku-4-5")]),
    "attestation-block-present": (
        [spec(system=system("x-anthropic-billing-header: test-fixture-not-a-real-block;", IDENTITY))],
        [spec(system=system(IDENTITY, "mentions x-anthropic-billing-header: later in a sentence"))]),
    "third-party-product-names": (
        [spec(system=system(IDENTITY, "You run on Hermes Agent (by Nous Research)."))],
        [spec(system=system(IDENTITY, "You run on a coding agent."))]),
}


def test_every_catalogue_entry_has_cases() -> None:
    assert {t.id for t in load_catalogue()} == set(CASES)


@pytest.mark.parametrize("trigger_id", sorted(CASES))
def test_entry_matches_its_positive_cases_only(trigger_id: str) -> None:
    positives, negatives = CASES[trigger_id]
    for s in positives:
        finding = lint(s).find(trigger_id)
        assert finding is not None, (trigger_id, s.body, s.headers, s.path, s.auth)
        assert finding.elements and finding.verdict and "{" not in finding.verdict
    for s in negatives:
        assert lint(s).find(trigger_id) is None, (trigger_id, s.body, s.headers, s.path, s.auth)


# ------------------------------------------------------------------------------------------------ the catalogue

def test_catalogue_entries_cite_reports_dates_and_existing_policy_rules() -> None:
    cat = load_catalogue()
    assert len(cat) >= 16 and cat.remedies
    for t in cat:
        assert t.reports and t.confidence in ("High", "Med", "Low")
        assert t.seen or t.seen_note
        for policy, rule_ids in t.policies.items():
            assert set(rule_ids) <= set(load_policy(policy).rule_ids), (t.id, policy)
        if t.kind == "trigger":
            assert t.fix.strip()
        else:
            assert not t.fix and not t.edits
    assert cat.get("mcp-single-underscore-tools").policies["2026-05-25"] == ("mcp_single_underscore_tool",)
    with pytest.raises(NotFound):
        cat.get("no-such-entry")


def test_identity_pattern_is_the_simulators_identity_line() -> None:
    cond = load_catalogue().get("claude-code-identity-line-missing").match[0]
    assert cond.test(outcomes.identity_line()) and not cond.test("You are Claude.")


def test_fixes_never_add_first_party_identification() -> None:
    for t in load_catalogue():
        for edit in t.edits:
            assert edit.op in ("rename_tools", "drop_sentences", "drop_betas", "add_betas", "set_auth")
            assert set(edit.betas) <= {"oauth-2025-04-20"}
            assert edit.auth in (None, "bearer")
    gate = load_catalogue().get("claude-code-version-gate")
    assert not gate.edits and "does not recommend raising" in gate.fix


@pytest.mark.parametrize("bad, message", [
    ({"op": "add_betas", "betas": ["claude-code-20250219"]}, "add_betas may add only"),
    ({"op": "set_auth", "auth": "x-api-key"}, "set_auth may only"),
    ({"op": "rename_tools", "pattern": "(", "replace": "x"}, "valid pattern"),
])
def test_catalogue_refuses_bad_edits(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    path = _catalogue_with(tmp_path, edits=[bad])
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


@pytest.mark.parametrize("change, message", [
    ({"reports": []}, "names no public report"),
    ({"match": [{"part": "tool_namez"}]}, "unknown part"),
    ({"seen": ["2026-08-01", "2026-05-01"]}, "oldest first"),
    ({"seen": [], "seen_note": ""}, "needs a seen_note"),
    ({"kind": "observation"}, "carries no fix"),
    ({"confidence": "Certain"}, "confidence must be"),
])
def test_catalogue_validation(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_catalogue_with(tmp_path, **change))


def _catalogue_with(tmp_path: Path, **change: Any) -> Path:
    entry: dict[str, Any] = {"id": "x", "kind": "trigger", "title": "t", "says": "s", "factor": "F10",
                             "match": [{"part": "tool_names", "pattern": "^x"}], "reports": ["r #1"],
                             "seen": ["2026-05-01"], "confidence": "Low", "fix": "f"}
    entry.update(change)
    path = tmp_path / "triggers.toml"
    path.write_text("[[trigger]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in entry.items()
                                              if k != "match" and k != "edits")
                    + "\nmatch = [" + ", ".join(_inline(c) for c in entry["match"]) + "]\n"
                    + ("edits = [" + ", ".join(_inline(e) for e in entry["edits"]) + "]\n" if "edits" in entry else ""),
                    encoding="utf-8")
    return path


def _inline(d: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"


def test_version_gate_is_data_with_the_reported_floors() -> None:
    gate = load_version_gate()
    floors = {m.id: m.floor for m in gate.models}
    assert floors == {"claude-fable-5-1": "2.1.251", "claude-opus-5-5": "2.1.280"}
    assert all(m.sources for m in gate.models)
    assert gate.floor_for("claude-opus-5-5").floor == "2.1.280" and gate.floor_for("claude-opus-5") is None
    assert gate.floor_for("claude-fable-5-10") is None
    assert gate.claimed_version("claude-cli/2.1.74 (external, cli)") == "2.1.74"
    assert gate.claimed_version("claude-code/2.1.300") == "2.1.300"
    assert gate.claimed_version("Anthropic/Python 0.86.0") is None
    assert gate.raw["gate"]["error_code"] == "claude_code_version_too_old"


# ------------------------------------------------------------------------------------------------------ profiles

def test_hermes_0_14_0_names_all_16_mcp_tools_and_the_mcp__fix() -> None:
    result = lint_file("hermes-0.14.0")
    finding = result.find("mcp-single-underscore-tools")
    assert finding is not None and finding.kind == "trigger"
    assert [e.value for e in finding.elements] == [f"mcp_{n}" for n in HERMES_TOOLS]
    aliases = {"memory": "context_notes", "session_search": "chat_history_lookup"}  # the other entry's renames
    assert finding.renames == tuple((f"mcp_{n}", f"mcp__{aliases.get(n, n)}") for n in HERMES_TOOLS)
    assert "16 tool name(s)" in finding.verdict and "mcp__" in finding.fix_text()
    text = result.to_text()
    assert all(f"mcp_{n} → mcp__{aliases.get(n, n)}" in text for n in HERMES_TOOLS)
    assert "PR #26430" in text and "2026-05-25: mcp_single_underscore_tool" in text
    assert result.exit_code == 1 and text.splitlines()[-1] == result.summary()
    skills = result.find("skills-guidance-sentence")
    assert skills is not None and skills.elements[0].where == "system[1]"
    assert skills.elements[0].value.startswith("After completing a complex task (5+ tool calls)")


def test_sdk_minimal_lints_clean() -> None:
    result = lint_file("sdk-minimal")
    assert result.clean and result.exit_code == 0 and result.triggers == []
    assert {f.id for f in result.observations} == {"claude-code-identity-line-missing",
                                                  "claude-code-user-agent-missing"}
    assert "no known trigger matched" in result.summary()
    assert "remedies" in result.to_text() and "API key" in result.to_text()
    text = result.to_text()  # two observations, the remedies said once, each on lines of its own
    assert text.count("Remedies that exist:") == 1 and text.count("  (3) Use an API key") == 1
    assert text.count("remedies   the remedies that exist, listed once below") == 2
    remedies = text.split("Remedies that exist:")[1].split("\n\n")[0]
    assert max(len(line) for line in remedies.splitlines()) <= 100


def test_profile_file_outside_data_is_read(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "data" / "profiles" / "hermes-current.toml").read_text(encoding="utf-8")
    (tmp_path / "mine.toml").write_text(text, encoding="utf-8")
    inp = load_input(tmp_path / "mine.toml")
    assert inp.kind == "profile" and inp.spec.body["tools"][0]["name"] == "mcp__clarify"
    result = lint(inp)
    assert result.find("mcp-single-underscore-tools") is None and result.find("hermes-identity-block") is not None


def test_frame_has_one_row_per_finding_and_undetermined_entry() -> None:
    result = lint_file(str(DUMP))
    frame = result.to_frame()
    assert list(frame.columns[:4]) == ["id", "kind", "verdict", "elements"]
    assert len(frame) == len(result.findings) + len(result.undetermined)
    assert set(frame["kind"]) == {"trigger", "undetermined"}
    shown = result._repr_html_()
    assert "<table" in shown and "`" not in shown and "&lt;" not in shown  # code shown as code, HTML as HTML
    assert any("`" in str(v) for v in frame["verdict"]) and "<code>" in shown


# ----------------------------------------------------------------------------------------------------- fixes

def test_lint_fixed_hermes_request_lints_clean_and_adds_nothing() -> None:
    result = lint_file("hermes-0.14.0")
    fixed, changes = result.fixed_spec()
    assert len(changes) >= 4
    again = lint(fixed)
    assert again.triggers == [], [f.id for f in again.triggers]
    names = [t["name"] for t in fixed.body["tools"]]
    assert "mcp__chat_history_lookup" in names and "mcp__context_notes" in names
    assert all(n.startswith("mcp__") for n in names)
    assert fixed.headers == result.spec.headers and fixed.auth == result.spec.auth
    assert fixed.body["system"][0]["text"] == IDENTITY and len(fixed.body["system"]) <= 2
    joined = " ".join(b["text"] for b in fixed.body["system"])
    assert "intelligent AI assistant" not in joined and "After completing" not in joined
    assert "You run on Claude Code" in joined  # only the matched sentences were dropped
    assert result.spec.body["tools"][0]["name"] == "mcp_clarify"  # the original is untouched


@pytest.mark.parametrize("policy", ["2026-05-25", "2026-08"])
def test_lint_fixed_hermes_request_is_billed_to_the_plan_in_the_simulator(policy: str, sim_with) -> None:
    """The catalogue's fixes agree with the simulator snapshots that model its entries."""
    from lanelab.wire.send import send

    result = lint_file("hermes-0.14.0")
    fixed, _ = result.fixed_spec()
    sim = sim_with(policy=policy)
    token = sim.mint_token()["access_token"]
    before, after = send(result.spec, sim.base_url, token), send(fixed, sim.base_url, token)
    assert before.status == 400 and before.unified.lane != "plan"
    assert after.status == 200 and after.unified.lane == "plan"


def test_header_fixes_correct_auth_and_betas() -> None:
    s = spec(auth="both", beta="interleaved-thinking-2025-05-14,context-1m-2025-08-07")
    s.headers["x-api-key"] = "placeholder"
    result = lint(s)
    assert {"both-auth-headers", "context-1m-beta-oauth", "oauth-beta-missing"} <= {f.id for f in result.triggers}
    fixed, _ = result.fixed_spec()
    assert fixed.auth == "bearer" and "x-api-key" not in fixed.headers
    assert fixed.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert lint(fixed).triggers == []


def test_a_says_line_names_what_is_carried_not_the_condition_it_applies_under() -> None:
    """An entry's first conditions say when it applies (a Bearer request); its ``{value}`` is what its last one
    matched (the beta), never the auth style."""
    result = lint(spec(beta="oauth-2025-04-20,context-1m-2025-08-07"))
    finding = result.find("context-1m-beta-oauth")
    assert finding is not None
    assert finding.verdict == "the `anthropic-beta` header carries `context-1m-2025-08-07` on a Bearer request"


def test_renames_two_entries_ask_for_meet_in_one_name_that_neither_flags() -> None:
    """``mcp_memory`` is flagged for its prefix and for its name: both fixes give the name that satisfies both,
    the one the fixed request carries, and that lints clean."""
    result = lint(spec(tools=tools("mcp_memory", "mcp_session_search", "mcp_read_file", "mcp__memory")))
    fixed, _ = result.fixed_spec()
    carried = [t["name"] for t in fixed.body["tools"]]
    assert carried == ["mcp__context_notes", "mcp__chat_history_lookup", "mcp__read_file", "mcp__context_notes"]
    prefix, names = result.find("mcp-single-underscore-tools"), result.find("memory-session-search-tools")
    assert prefix is not None and names is not None
    assert dict(prefix.renames) == {"mcp_memory": "mcp__context_notes",
                                    "mcp_session_search": "mcp__chat_history_lookup", "mcp_read_file": "mcp__read_file"}
    assert dict(names.renames) == {"mcp_memory": "mcp__context_notes", "mcp_session_search": "mcp__chat_history_lookup",
                                   "mcp__memory": "mcp__context_notes"}
    for finding in (prefix, names):
        assert all(new in carried for _, new in finding.renames)
    assert lint(fixed).triggers == []


def test_triggers_without_edits_are_left_alone() -> None:
    s = spec(path="/v1/chat/completions")
    fixed, changes = apply_fixes(s, lint(s).triggers)
    assert fixed.path == "/v1/chat/completions" and changes == ["chat-completions-path: no machine edit; see its fix"]


# ------------------------------------------------------------------------------------------------------ dumps

def test_hermes_dump_loads_as_a_spec_with_its_artifacts_explained() -> None:
    dump = load_dump(DUMP)
    assert dump.url_path == "/chat/completions" and dump.spec.path == "/v1/messages"
    assert dump.authorization == "None" and dump.reason == "non_retryable_client_error"
    assert dump.body_shape == "anthropic" and dump.spec.headers == {}
    assert [t["name"] for t in dump.spec.body["tools"]][:2] == ["mcp_clarify", "mcp_memory"]
    assert dump.error["status"] == 400 and "out of extra usage" in dump.error["message"]
    notes = " ".join(dump.notes)
    assert "#91319" in notes and "Bearer None" in notes


def test_hermes_dump_lints_without_judging_the_path_or_headers() -> None:
    result = lint_file(DUMP)
    assert result.kind == "dump" and result.exit_code == 1
    assert {"mcp-single-underscore-tools", "memory-session-search-tools", "hermes-identity-block",
            "skills-guidance-sentence"} <= {f.id for f in result.triggers}
    assert result.find("chat-completions-path") is None and result.find("oauth-beta-missing") is None
    undetermined = {u.trigger.id: u.missing for u in result.undetermined}
    assert "path" in undetermined["chat-completions-path"]
    assert "claude-code-version-gate" not in undetermined  # the model is not gated
    text = result.to_text()
    assert "/chat/completions" in text and "Bearer None" in text and "Cannot tell from this dump" in text


def test_dump_per_call_headers_are_kept_and_a_gated_model_is_undetermined(tmp_path: Path) -> None:
    obj = json.loads(DUMP.read_text(encoding="utf-8"))
    body = obj["request"]["body"]
    body["model"] = "claude-opus-5-5"
    body["extra_headers"] = {"anthropic-beta": "interleaved-thinking-2025-05-14,fast-mode-2026-02-01",
                             "Authorization": "Bearer should-not-be-kept"}
    body["extra_body"] = {"speed": "fast"}
    obj["request"]["headers"]["Authorization"] = "Bearer sk-ant-o...WXYZ"
    path = tmp_path / "request_dump_fast.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    dump = load_dump(path)
    assert dump.spec.headers == {"anthropic-beta": "interleaved-thinking-2025-05-14,fast-mode-2026-02-01"}
    assert dump.spec.body["speed"] == "fast" and "extra_headers" not in dump.spec.body
    assert dump.authorization == "masked" and not any("Bearer None" in n for n in dump.notes)
    result = lint_file(path)
    undetermined = {u.trigger.id: u.missing for u in result.undetermined}
    assert undetermined["claude-code-version-gate"] == ("claimed Claude Code version",)
    assert undetermined["oauth-beta-missing"] == ("auth style",)  # the per-call beta list is recorded
    text = result.to_text()
    assert "should-not-be-kept" not in text and "WXYZ" not in text


def test_openai_shaped_dump_keeps_its_path_and_reads_system_messages() -> None:
    obj = {"request": {"method": "POST", "url": "https://openrouter.example/api/v1/chat/completions",
                       "headers": {"Authorization": "Bearer None"},
                       "body": {"model": "anthropic/claude-sonnet-4.6",
                                "messages": [{"role": "system", "content": SKILLS},
                                             {"role": "user", "content": "ping"}],
                                "tools": [{"type": "function", "function": {"name": "mcp_terminal"}}]}}}
    dump = parse_dump(obj)
    assert dump.body_shape == "openai" and dump.spec.path == "/api/v1/chat/completions"
    result = lint(lint_mod.LintInput(label="d", kind="dump", spec=dump.spec, unrecorded=dump.unrecorded))
    assert {"mcp-single-underscore-tools", "skills-guidance-sentence"} <= {f.id for f in result.triggers}


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('{"timestamp": "x"}', "no 'request' object"),
    ('{"request": {"url": "https://api.anthropic.com/chat/completions"}}', "lacks request.body"),
    ('{"request": {"url": "u", "body": {"messages": []}}}', "no model or messages"),
])
def test_malformed_dumps_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "request_dump_bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises((DumpError, LintInputError), match=message):
        load_input(path)
    if content.startswith("{") and "body" not in content:
        with pytest.raises(DumpError, match=message):
            load_dump(path)


# ---------------------------------------------------------------------------------------------------- captures

def _exchange(seq: int, method: str, path: str, headers: list[list[str]], body: Any) -> dict[str, Any]:
    return {"record": "exchange", "seq": seq, "request": {"method": method, "path": path, "query": "",
                                                          "query_params": {}, "headers": headers,
                                                          "body": {"json": body}}}


def _headers(s: RequestSpec, *extra: list[str]) -> list[list[str]]:
    return [["authorization", "Bearer sk-ant-oat01-…AAAA"], *extra, *([k, v] for k, v in s.headers.items())]


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    hermes = load_profile("hermes-0.14.0").spec
    sdk = load_profile("sdk-minimal").spec
    fable = spec(model="claude-fable-5-1", ua="claude-cli/2.1.74 (external, cli)")
    records = [
        {"record": "capture", "kit_version": "test", "upstream": "http://127.0.0.1:1"},
        _exchange(1, "POST", "/api/show", [["user-agent", "python-httpx/0.28.1"]], {"name": "m"}),
        _exchange(2, "POST", "/v1/messages", _headers(sdk), sdk.body),
        _exchange(3, "POST", "/v1/messages", _headers(fable, ["user-agent", "Anthropic/Python 0.86.0"]), fable.body),
        _exchange(4, "GET", "/v1/models", [], None),
        _exchange(5, "POST", "/v1/messages", _headers(hermes, ["user-agent", "Anthropic/Python 0.86.0"]),
                  hermes.body),
    ]
    path = tmp_path / "capture-test.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n{torn", encoding="utf-8")
    return path


def test_capture_lint_names_the_mcp_tools_with_no_request(capture: Path) -> None:
    result = lint_file(capture)
    assert result.kind == "capture" and result.label.endswith("exchange 5")
    finding = result.find("mcp-single-underscore-tools")
    assert finding is not None and len(finding.elements) == 16
    assert any("user-agent was sent twice" in n for n in result.notes)
    assert result.notes[0] == ("1 line could not be read (line 7: not JSON, a torn last line from an interrupted "
                               "write) and left out: the request read is exchange 5, of those read whole.")


def test_a_capture_whose_only_request_is_torn_says_so(tmp_path: Path, capture: Path) -> None:
    lines = capture.read_text(encoding="utf-8").splitlines()
    only = tmp_path / "only.jsonl"  # the header, a GET, then the one inference exchange cut short
    only.write_text("\n".join([lines[0], lines[4], lines[5][:200]]) + "\n", encoding="utf-8")
    with pytest.raises(LintInputError, match="holds no inference request .* that could be read whole: 1 line could "
                                             "not be read \\(line 3: not JSON"):
        lint_file(only)


def test_capture_index_picks_the_inference_request(capture: Path) -> None:
    assert lint_file(capture, 0).clean  # sdk-minimal
    gated = lint_file(capture, 1).find("claude-code-version-gate")
    assert gated is not None and "`claude-fable-5-1`" in gated.verdict
    assert gated.elements[0].value.startswith("claude-cli/2.1.74 (external, cli) claims Claude Code 2.1.74; "
                                              "claude-fable-5-1 needs 2.1.251")
    assert lint_file(capture, -1).find("mcp-single-underscore-tools") is not None
    with pytest.raises(InputError, match="out of range"):
        lint_file(capture, 3)


def test_a_real_capture_of_the_hermes_request_lints_like_the_profile(tmp_path: Path, sim) -> None:
    """The capture writer's own output (the simulator as upstream): lint names the mcp_ tools from the file alone."""
    from lanelab.walkthrough.capture import running_capture
    from lanelab.wire.send import send

    hermes = load_profile("hermes-0.14.0").spec
    with running_capture(sim.base_url, tmp_path / "c.jsonl") as proxy:
        token = sim.mint_token()["access_token"]
        send(hermes, proxy.base_url, token)
    result = lint_file(tmp_path / "c.jsonl")
    assert token not in result.to_text()
    from_profile = lint(hermes)
    assert [f.id for f in result.triggers] == [f.id for f in from_profile.triggers]
    finding = result.find("mcp-single-underscore-tools")
    assert finding is not None and [e.value for e in finding.elements] == [f"mcp_{n}" for n in HERMES_TOOLS]


# ---------------------------------------------------------------------------------------------------- the CLI

def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(["lint", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_exit_codes_and_summary_last(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(["hermes-0.14.0"], capsys)
    assert rc == 1 and out.strip().splitlines()[-1].startswith("lint hermes-0.14.0 (profile): 4 known trigger(s)")
    assert out.index("TRIGGER mcp-single-underscore-tools") < out.rindex("lint hermes-0.14.0")
    rc, out, _ = _run(["sdk-minimal"], capsys)
    assert rc == 0 and "no known trigger matched" in out.strip().splitlines()[-1]
    rc, out, _ = _run([str(capture), "--index", "0"], capsys)
    assert rc == 0
    rc, out, err = _run([str(DUMP), "--csv"], capsys)
    assert rc == 1 and out.startswith("id,kind,verdict") and "known trigger(s) matched" in err


def _bad_inputs(tmp_path: Path, capture: Path) -> list[list[str]]:
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\x01")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    (tmp_path / "nobody.json").write_text('{"request": {"url": "u"}}', encoding="utf-8")
    (tmp_path / "norequest.toml").write_text('name = "x"\n', encoding="utf-8")
    (tmp_path / "broken.toml").write_text("[request\n", encoding="utf-8")
    (tmp_path / "junk.jsonl").write_text("hello\n{}\n", encoding="utf-8")
    (tmp_path / "noinference.jsonl").write_text(json.dumps(_exchange(1, "GET", "/v1/models", [], None)) + "\n",
                                                encoding="utf-8")
    (tmp_path / "text.txt").write_text("just words\n", encoding="utf-8")
    return [[str(tmp_path / "missing.jsonl")], ["no/such/dir/request_dump_x.json"], [str(tmp_path)],
            [str(tmp_path / "binary.bin")], [str(tmp_path / "broken.json")], [str(tmp_path / "list.json")],
            [str(tmp_path / "nobody.json")], [str(tmp_path / "norequest.toml")], [str(tmp_path / "broken.toml")],
            [str(tmp_path / "junk.jsonl")], [str(tmp_path / "noinference.jsonl")], [str(tmp_path / "text.txt")],
            ["no-such-profile"], [str(capture), "--index", "9"], ["sdk-minimal", "--index", "0"],
            [str(DUMP), "--index", "0"]]


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, capture: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for argv in _bad_inputs(tmp_path, capture):
        rc, out, err = _run(argv, capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and out == "", (argv, rc, out, err)
        assert len(lines) == 1 and lines[0].startswith("lanelab lint: "), (argv, err)
        assert "Traceback" not in err


@pytest.mark.slow  # CLI processes
def test_cli_help_and_a_real_process(tmp_path: Path) -> None:
    help_out = subprocess.run([sys.executable, "-m", "lanelab", "lint", "--help"], capture_output=True, text=True, check=False)
    assert help_out.returncode == 0
    flat = " ".join(help_out.stdout.split())  # (paragraphs are wrapped to the terminal)
    for words in ("capture", "profile", "request_dump_", "Exit status", "0 no known trigger", "2 bad input",
                  "--index"):
        assert words in flat
    bad = subprocess.run([sys.executable, "-m", "lanelab", "lint", str(tmp_path / "nope.json")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ privacy and network

def test_secrets_and_attestation_content_never_reach_the_output() -> None:
    s = spec(system=system("x-anthropic-billing-header: test-fixture-not-a-real-block;", IDENTITY,
                           f"You are Hermes Agent, an intelligent AI assistant created by Nous Research. "
                           f"Your key is {FAKE_TOKEN}."))
    result = lint(s)
    assert result.find("attestation-block-present") is not None
    outputs = result.to_text() + result.to_frame().to_csv() + result.summary()
    assert FAKE_TOKEN not in outputs and "test-fixture-not-a-real-block" not in outputs
    assert "content not shown" in outputs


_NETWORK = {"active": False, "events": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _NETWORK["active"] and event.startswith("socket."):
        _NETWORK["events"].append(event)


def test_lint_opens_no_socket(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not getattr(sys.modules[__name__], "_hook_installed", False):
        sys.addaudithook(_audit)
        globals()["_hook_installed"] = True
    _NETWORK["events"].clear()
    _NETWORK["active"] = True
    try:
        for ref in ("hermes-0.14.0", str(capture), str(DUMP)):
            result = lint_file(ref)
            result.to_text()
            result.to_frame()
            result.fixed_spec()
            assert cli.main(["lint", ref]) in (0, 1)
    finally:
        _NETWORK["active"] = False
    capsys.readouterr()
    assert _NETWORK["events"] == []
    import socket

    _NETWORK["active"] = True  # the hook itself works: a socket made now is seen
    try:
        socket.socket().close()
    finally:
        _NETWORK["active"] = False
    assert "socket.__new__" in _NETWORK["events"]
