"""Profiles load, build on the wire, hold no secret, and keep the shapes the research reports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from lanelab import redact
from lanelab.config import repo_root
from lanelab.matrix.factors import load_factors
from lanelab.matrix.profiles import BadProfile, UnknownProfile, list_profiles, load_profile, minimal_spend
from lanelab.wire.spec import RequestSpec, build_request

EXPECTED = {"sdk-minimal", "hermes-0.14.0", "hermes-current"}
HERMES_TOOLS = ["clarify", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "search_files",
                "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze",
                "write_file"]


def test_the_three_profiles_exist() -> None:
    assert EXPECTED <= set(list_profiles())


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_loads_builds_and_is_clean(name: str) -> None:
    profile = load_profile(name)
    assert profile.sources and profile.description
    assert profile.spec.credential is None and profile.spec.auth == "bearer"
    assert all(h == h.lower() for h in profile.spec.headers)
    token = "sk-ant-oat01-FAKEprofileTESTtokenABCDEF"
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
