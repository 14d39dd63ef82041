"""The factor catalogue as data: complete, sourced, validated, with clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lanelab.config import repo_root
from lanelab.errors import UserError
from lanelab.matrix import transforms
from lanelab.matrix.factors import (
    PROFILE_LEVEL,
    baseline_levels,
    canonical_order,
    identity_texts,
    load_factors,
    resolve,
    with_credentials,
)

REQUIRED = {"endpoint", "auth", "betas", "anthropic_version", "user_agent", "x_app", "identity", "system_extra", "tools",
            "tool_choice", "model", "stream", "max_tokens", "metadata", "credential"}


def test_catalogue_has_every_factor_with_a_keep_baseline() -> None:
    catalog = load_factors()
    assert REQUIRED <= set(catalog)
    for factor in catalog.values():
        assert factor.baseline == PROFILE_LEVEL
        base = factor.levels[factor.baseline]
        assert base.kind == "keep" and base.changes == ()
        assert factor.description
        for level in factor.levels.values():
            assert level.kind in transforms.kinds() and level.source


def test_levels_named_in_the_brief_exist() -> None:
    catalog = load_factors()
    assert {"messages", "messages_beta", "count_tokens", "v1_chat_completions", "chat_completions"} <= set(
        catalog["endpoint"].levels)
    assert {"none", "oauth_only", "profile_without_oauth", "with_claude_code", "without_claude_code", "with_1m"} <= set(
        catalog["betas"].levels)
    assert {"none", "bare", "mcp_", "mcp__", "memory_session_search"} <= set(catalog["tools"].levels)
    assert {"skills_guidance", "environment_info", "hermes_identity", "media_gateway"} <= set(
        catalog["system_extra"].levels)
    assert {"absent", "legacy", "json"} <= set(catalog["metadata"].levels)


def test_identity_texts_include_the_claude_code_line() -> None:
    catalog = load_factors()
    assert catalog["identity"].levels["on"].args["text"] in identity_texts()


def test_with_credentials_adds_one_level_per_label() -> None:
    catalog = with_credentials(load_factors(), ["pkce", "imported"])
    assert list(catalog["credential"].levels) == ["profile", "pkce", "imported"]
    assert catalog["credential"].levels["pkce"].args == {"label": "pkce"}
    assert "pkce" not in load_factors()["credential"].levels, "the original catalogue was modified"
    with pytest.raises(UserError, match="clashes"):
        with_credentials(load_factors(), ["profile"])


def test_unknown_names_are_user_errors_listing_the_known_ones() -> None:
    catalog = load_factors()
    with pytest.raises(UserError, match="user_agent"):
        resolve(catalog, "user-agnet", "none")
    with pytest.raises(UserError, match="claude_cli"):
        resolve(catalog, "user_agent", "claude")
    with pytest.raises(UserError):
        baseline_levels(catalog, ["nope"])


def test_canonical_order_puts_endpoint_last_and_tools_before_tool_choice() -> None:
    catalog = load_factors()
    order = canonical_order(catalog, list(catalog))
    assert order[-1] == "endpoint"
    assert order.index("tools") < order.index("tool_choice")
    assert order.index("identity") < order.index("system_extra")
    assert canonical_order(catalog, reversed(list(catalog))) == order


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(repo_root() / "data" / "factors.toml", tmp_path / "factors.toml")
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path))
    return tmp_path / "factors.toml"


def test_adding_a_factor_is_a_data_edit(data_copy: Path) -> None:
    data_copy.write_text(data_copy.read_text() + '''
[factors.browser_access]
description = "anthropic-dangerous-direct-browser-access"
[factors.browser_access.levels.profile]
kind = "keep"
source = "the profile"
changes = []
[factors.browser_access.levels.on]
kind = "header"
args = { name = "anthropic-dangerous-direct-browser-access", value = "true" }
source = "references/protocol.md §2.1"
changes = ["headers.anthropic-dangerous-direct-browser-access"]
''')
    catalog = load_factors()
    assert catalog["browser_access"].levels["on"].args["value"] == "true"


@pytest.mark.parametrize(("snippet", "message"), [
    ('kind = "teleport"\nsource = "x"\nchanges = []', "teleport"),
    ('kind = "keep"\nchanges = []', "source"),
    ('kind = "keep"\nsource = "x"', "changes"),
])
def test_bad_levels_are_refused_with_a_clear_message(data_copy: Path, snippet: str, message: str) -> None:
    data_copy.write_text(data_copy.read_text() + f"\n[factors.bad]\ndescription = \"d\"\n"
                         f"[factors.bad.levels.profile]\n{snippet}\n")
    with pytest.raises(UserError, match=message):
        load_factors()


def test_missing_catalogue_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path))
    with pytest.raises(UserError, match="LANELAB_DATA"):
        load_factors()
