"""Profiles load, build on the wire, hold no secret, and keep the shapes the research reports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from lanelab import redact
from lanelab.config import repo_root
from lanelab.errors import Refused
from lanelab.matrix.factors import load_factors
from lanelab.matrix.from_capture import spec_from_exchange
from lanelab.matrix.profiles import (
    BadProfile,
    ReferenceOnlyProfile,
    UnknownProfile,
    ensure_sendable,
    list_profiles,
    load_profile,
    minimal_spend,
)
from lanelab.wire.attestation import (
    ATTESTATION_MARKER,
    FirstPartyRequest,
    carries_attestation,
    holds_attestation_value,
)
from lanelab.wire.exchanges import inference_exchange, load_exchanges
from lanelab.wire.spec import RequestSpec, build_request

EXPECTED = {"sdk-minimal", "hermes-0.14.0", "hermes-current"}
HERMES_TOOLS = ["clarify", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "search_files",
                "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze",
                "write_file"]


#: Clients captured from their real packages by tools/capture_profiles.py (`make profiles`).
REAL_CLIENTS = {"pi", "openclaw", "hermes", "claude-code"}


def _captured() -> dict[str, list[str]]:
    """{client: [profile names]} for the profiles that carry a [capture] table."""
    out: dict[str, list[str]] = {}
    for name in list_profiles():
        capture = load_profile(name).capture
        if capture:
            out.setdefault(str(capture.get("client")), []).append(name)
    return out


def _latest(client: str):
    names = _captured().get(client)
    if not names:
        pytest.fail(f"no captured profile for {client}; run `make profiles`")
    return load_profile(max(names, key=lambda n: load_profile(n).capture["date"]))


def test_the_three_profiles_exist() -> None:
    assert EXPECTED <= set(list_profiles())


def test_the_four_real_clients_are_captured() -> None:
    assert REAL_CLIENTS <= set(_captured())


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_loads_builds_and_is_clean(name: str) -> None:
    profile = load_profile(name)
    assert profile.sources and profile.description
    assert profile.spec.credential is None and profile.spec.auth == "bearer"
    assert all(h == h.lower() for h in profile.spec.headers)
    token = "sk-ant-oat01-FAKEprofileTESTtokenABCDEF"
    if profile.reference_only:  # Claude Code's own request: never built for sending (tests/test_first_party.py)
        with pytest.raises(FirstPartyRequest):
            build_request(profile.spec, "http://127.0.0.1:9", token)
    else:
        req = build_request(profile.spec, "http://127.0.0.1:9", token)
        assert req.headers["authorization"] == f"Bearer {token}" and "x-api-key" not in req.headers
        assert json.loads(req.content)["messages"]
    text = (repo_root() / "data" / "profiles" / f"{name}.toml").read_text()
    assert redact.find_secrets(text) == []
    assert not any(redact.is_sensitive_key(h) for h in profile.spec.headers)
    assert "cc_version=" not in text and "cch=" not in text


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(UnknownProfile) as err:
        load_profile("no-such-client")
    assert all(n in str(err.value) for n in EXPECTED)


def test_hermes_0_14_0_matches_the_capture() -> None:
    spec = load_profile("hermes-0.14.0").spec
    assert spec.path == "/v1/messages" and spec.query == {}
    assert spec.headers["anthropic-beta"].split(",") == [
        "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14", "claude-code-20250219",
        "oauth-2025-04-20"]
    assert spec.headers["user-agent"].startswith("claude-cli/2.1.74") and spec.headers["x-app"] == "cli"
    assert any(h.startswith("x-stainless-") for h in spec.headers)
    body = spec.body
    assert body["stream"] is True and body["max_tokens"] == 128000 and body["tool_choice"] == {"type": "auto"}
    assert "cache_control" not in body["system"][0]
    assert body["system"][1]["cache_control"] == {"type": "ephemeral"}
    assert body["system"][1]["text"].startswith("You are Claude Code, an intelligent AI assistant created by Anthropic.")
    assert 200 <= len(body["system"][1]["text"]) <= 1000
    assert [t["name"] for t in body["tools"]] == [f"mcp_{n}" for n in HERMES_TOOLS]
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert "metadata" not in body


def test_hermes_current_is_the_later_shape() -> None:
    old, new = load_profile("hermes-0.14.0").spec, load_profile("hermes-current").spec
    assert new.headers["user-agent"].startswith("claude-code/")
    aliases = {"memory": "context_notes", "session_search": "chat_history_lookup"}
    assert [t["name"] for t in new.body["tools"]] == [f"mcp__{aliases.get(n, n)}" for n in HERMES_TOOLS]
    assert "session_search" not in new.body["system"][1]["text"]
    assert new.body["system"][1]["text"] != old.body["system"][1]["text"]
    # inherited unchanged from hermes-0.14.0
    assert new.headers["anthropic-beta"] == old.headers["anthropic-beta"]
    assert new.body["messages"] == old.body["messages"] and new.body["stream"] is True


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(repo_root() / "data" / "profiles", tmp_path / "profiles")
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path))
    return tmp_path / "profiles"


def test_a_profile_with_a_secret_is_refused(data_copy: Path) -> None:
    text = (data_copy / "sdk-minimal.toml").read_text()
    leaked = text.replace('"x-stainless-lang" = "python"',
                          '"x-stainless-lang" = "python"\n"x-api-key" = "sk-ant-api03-REALLOOKINGkeyVALUE1234"')
    (data_copy / "leaky.toml").write_text(leaked)
    with pytest.raises(BadProfile) as err:
        load_profile("leaky")
    assert "REALLOOKINGkeyVALUE" not in str(err.value)
    (data_copy / "labelled.toml").write_text(text.replace('auth = "bearer"', 'auth = "bearer"\ncredential = "mine"'))
    with pytest.raises(BadProfile, match="credential"):
        load_profile("labelled")


def test_extends_merges_tables_and_replaces_lists(data_copy: Path) -> None:
    (data_copy / "child.toml").write_text(
        'extends = "sdk-minimal"\ndescription = "d"\nsources = ["test"]\n'
        '[request.headers]\n"x-app" = "cli"\n[request.body]\nmessages = [{ role = "user", content = "hi" }]\n')
    child, parent = load_profile("child").spec, load_profile("sdk-minimal").spec
    assert child.headers == {**parent.headers, "x-app": "cli"}
    assert child.body == {**parent.body, "messages": [{"role": "user", "content": "hi"}]}


def test_minimal_spend_keeps_shape_and_respects_chosen_levels() -> None:
    catalog = load_factors()
    spec = load_profile("hermes-0.14.0").spec
    cheap = minimal_spend(spec)
    assert cheap.body["max_tokens"] == 1 and "stream" not in cheap.body
    assert {k: v for k, v in cheap.body.items() if k not in ("max_tokens", "stream")} == \
        {k: v for k, v in spec.body.items() if k not in ("max_tokens", "stream")}
    assert spec.body["max_tokens"] == 128000, "minimal_spend mutated its input"
    kept = minimal_spend(spec, {"stream": "on", "max_tokens": "profile"}, catalog)
    assert kept.body["stream"] is True and kept.body["max_tokens"] == 1
    kept = minimal_spend(spec, {"max_tokens": "128000"}, catalog)
    assert kept.body["max_tokens"] == 128000 and "stream" not in kept.body
    probe = RequestSpec(path="/v1/messages/count_tokens", body={"model": "m", "messages": []})
    assert minimal_spend(probe) == probe


def test_lib_never_writes_the_billing_attestation_markers() -> None:
    pattern = re.compile("cc_" + "version=|cch" + "=")
    for path in (repo_root() / "lib").rglob("*.py"):
        assert not pattern.search(path.read_text()), path


# --- profiles captured from real clients ------------------------------------------------------------------------


def _without_nulls(obj):
    if isinstance(obj, dict):
        return {k: _without_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_without_nulls(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", [n for names in _captured().values() for n in names])
def test_a_captured_profile_records_how_and_matches_its_capture(name: str) -> None:
    profile = load_profile(name)
    cap = profile.capture
    assert name == f"{cap['client']}-{cap['version']}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cap["date"])
    assert cap["command"] and "<simulator token>" in cap["command"] and redact.find_secrets(cap["command"]) == []
    assert "capture proxy" in cap["method"] and "network namespace" in cap["method"]
    assert "api.anthropic.com" in cap["method"] and cap["package"] and cap["runtime"]
    # the stored capture is the one the profile came from: same request, marker for marker
    capture_file = repo_root() / cap["file"]
    exchanges = load_exchanges(capture_file)
    exchange = inference_exchange(exchanges, 0)  # the profile is the client's first inference request
    assert exchange["seq"] == cap["exchange"]
    assert ["host", "api.anthropic.com"] in [[k.lower(), v] for k, v in exchange["request"]["headers"]]
    spec, _ = spec_from_exchange(exchange)
    captured = profile.as_captured()
    assert (captured.method, captured.path, captured.query, captured.headers, captured.auth) == \
        (spec.method, spec.path, spec.query, spec.headers, spec.auth)
    assert captured.body == _without_nulls(spec.body) and list(captured.body) == list(spec.body)
    assert cap["header_order"] == [k.lower() for k, _ in exchange["request"]["headers"]]


def test_no_data_file_holds_an_attestation_value() -> None:
    hook = re.compile(r"x-anthropic-billing-header:\s*[^\n\"<]*(cc_version|cch)\s*=", re.IGNORECASE)
    checked = 0
    for path in (repo_root() / "data").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not hook.search(text), path
        if path.parent.name in ("profiles", "captures"):
            assert not holds_attestation_value(text), path
            checked += 1
    assert checked >= 8


def test_a_reference_only_profile_is_refused_for_sending() -> None:
    reference = _latest("claude-code")
    assert reference.reference_only and reference.reference_reason
    with pytest.raises(ReferenceOnlyProfile) as err:
        ensure_sendable(reference.name)
    assert isinstance(err.value, Refused) and isinstance(err.value, PermissionError)
    assert str(err.value).startswith(
        f"{reference.name} is a first-party reference for diffs and lints; the kit never sends it.")
    with pytest.raises(ReferenceOnlyProfile):
        ensure_sendable(reference)
    # its request is still there for diffs and lints, with the marker and no value
    assert carries_attestation(reference.as_captured()) and not carries_attestation(reference.spec)
    for name in list_profiles():
        if not load_profile(name).reference_only:
            assert ensure_sendable(name).name == load_profile(name).name


def test_extending_a_reference_profile_does_not_make_it_sendable(data_copy: Path) -> None:
    reference = _latest("claude-code").name
    (data_copy / "sneaky.toml").write_text(f'extends = "{reference}"\ndescription = "d"\nsources = ["test"]\n'
                                           "reference_only = false\n")
    with pytest.raises(ReferenceOnlyProfile):
        ensure_sendable("sneaky")


def test_a_profile_with_an_attestation_value_is_refused(data_copy: Path) -> None:
    text = (data_copy / "sdk-minimal.toml").read_text()
    value = "x-anthropic-billing-header: " + "cc_" + "version=9.9.9; " + "cch" + "=beef;"
    (data_copy / "attested.toml").write_text(
        text.replace("[request.body]", f'[request.body]\nsystem = [{{ type = "text", text = "{value}" }}]'))
    with pytest.raises(BadProfile, match="attestation value") as err:
        load_profile("attested")
    assert "9.9.9" not in str(err.value) and "beef" not in str(err.value)
    (data_copy / "marked.toml").write_text(text.replace(
        "[request.body]", f'[request.body]\nsystem = [{{ type = "text", text = "{ATTESTATION_MARKER}" }}]'))
    marked = load_profile("marked")
    assert marked.attestation_positions == (0,) and "system" in marked.as_captured().body
    assert "system" not in marked.spec.body  # nothing left of it once the block is out


def test_openclaw_is_captured_under_the_real_host_with_its_attestation_marked() -> None:
    profile = _latest("openclaw")
    assert profile.attestation_positions == (0,)
    assert profile.as_captured().body["system"][0]["text"] == ATTESTATION_MARKER
    assert profile.data["attestation"]["positions"] == [0]
    assert "request without the block" in profile.data["attestation"]["note"]
    assert any("findings for this profile are for the request without the block" in c for c in profile.caveats)
    sent = build_request(profile.spec, "http://127.0.0.1:9", "sk-ant-oat01-FAKE").content.decode()
    assert "x-anthropic-billing-header" not in sent
    # the host-dependent shape: under api.anthropic.com it keeps its beta header and service tier
    assert "oauth-2025-04-20" in profile.spec.headers["anthropic-beta"]
    assert "service_tier" in profile.spec.body


def test_hermes_keeps_both_user_agents_in_wire_order() -> None:
    profile = _latest("hermes")
    agents = profile.capture["repeated_headers"]["user-agent"]
    assert len(agents) == 2 and agents[0].startswith("Anthropic/Python")
    assert profile.spec.headers["user-agent"] == agents[-1]
    assert profile.capture["header_order"].count("user-agent") == 2
    assert any("user-agent 2 times" in c for c in profile.caveats)
    tools = [t["name"] for t in profile.spec.body["tools"]]
    assert tools and all(t.startswith("mcp__") for t in tools)
    assert profile.spec.auth == "bearer" and profile.spec.headers["x-app"] == "cli"


def test_the_other_captured_requests_are_noted_not_profiled() -> None:
    for client in REAL_CLIENTS:
        profile = _latest(client)
        exchanges = load_exchanges(repo_root() / profile.capture["file"])
        assert len(profile.capture.get("other_requests", [])) == len(exchanges) - 1
        assert profile.spec.is_inference


def test_the_diff_command_reports_the_marker_as_an_attestation_block(capsys: pytest.CaptureFixture) -> None:
    from lanelab.cli import main

    pi, openclaw = _latest("pi").name, _latest("openclaw").name
    assert main(["diff", pi, openclaw]) == 0
    out = capsys.readouterr().out
    assert f"{openclaw} carries a billing attestation block" in out and f"{pi} does not carry" in out
    assert not holds_attestation_value(out)


def test_load_request_refuses_a_reference_for_sending_and_allows_it_for_diffs() -> None:
    from lanelab.matrix.from_capture import load_request

    reference = _latest("claude-code")
    path = repo_root() / "data" / "profiles" / f"{reference.name}.toml"
    capture = repo_root() / reference.capture["file"]
    for ref in (reference.name, str(path), str(capture)):
        with pytest.raises(ReferenceOnlyProfile, match="first-party reference for diffs and lints"):
            load_request(ref)
        _, spec = load_request(ref, as_captured=True)
        assert carries_attestation(spec) and not holds_attestation_value(json.dumps(spec.body))
    # a third-party client's capture and profile load for sending, without the block
    openclaw = _latest("openclaw")
    for ref in (openclaw.name, str(repo_root() / openclaw.capture["file"])):
        _, spec = load_request(ref)
        assert not carries_attestation(spec) and spec.is_inference
