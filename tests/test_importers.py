"""Read-only importers: each file layout, typed errors for broken files, and the files left byte-for-byte alone."""

import json
import stat
from pathlib import Path

import pytest
from lanelab import cli
from lanelab.auth import importers as I
from lanelab.auth.resolve import resolve_credential
from lanelab.auth.store import CredentialStore
from lanelab.config import Settings

CC_ACCESS = "sk-ant-oat01-" + "cc" * 30
CC_REFRESH = "sk-ant-ort01-" + "cr" * 30
H_ACCESS = "sk-ant-oat01-" + "hh" * 30
H_REFRESH = "sk-ant-ort01-" + "hr" * 30
P_ACCESS = "sk-ant-oat01-" + "pp" * 30
SECRETS = (CC_ACCESS, CC_REFRESH, H_ACCESS, H_REFRESH, P_ACCESS)


def write(path: Path, data, mode=0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    path.chmod(mode)
    return path


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "userhome"
    write(h / I.CLAUDE_CODE_FILE, {"claudeAiOauth": {
        "accessToken": CC_ACCESS, "refreshToken": CC_REFRESH, "expiresAt": 1_900_000_000_000,
        "scopes": ["user:inference", "user:profile"], "subscriptionType": "max",
        "rateLimitTier": "default_claude_max_5x"}, "mcpOAuth": {}})
    write(h / I.HERMES_AUTH_FILE, {"version": 1, "providers": {}, "credential_pool": {"anthropic": [
        {"id": "a1", "label": "mine", "auth_type": "oauth", "priority": 0, "source": "manual:hermes_pkce",
         "access_token": H_ACCESS, "refresh_token": H_REFRESH, "expires_at_ms": 1_800_000_000_000},
        {"id": "b2", "auth_type": "oauth", "source": "claude_code", "access_token": CC_ACCESS}]}}, mode=0o640)
    write(h / I.HERMES_PKCE_FILE, {"accessToken": P_ACCESS, "refreshToken": None, "expiresAt": 1_700_000_000})
    return h


def snapshot(home: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode), p.stat().st_mtime_ns)
            for p in sorted(home.rglob("*")) if p.is_file()}


def test_claude_code_file(home):
    [c] = I.import_claude_code(home)
    assert (c.label, c.source, c.imported) == ("claude-code", "claude_code", True)
    assert c.access_token == CC_ACCESS and c.refresh_token == CC_REFRESH
    assert c.expires_at == 1_900_000_000.0  # milliseconds → seconds
    assert c.scopes == ("user:inference", "user:profile") and c.rate_limit_tier == "default_claude_max_5x"
    assert c.subscription_type == "max"


def test_hermes_pool_keeps_each_entry_and_its_source(home):
    creds = I.import_hermes_pool(home)
    assert [(c.label, c.source) for c in creds] == [("hermes-pool-a1", "manual:hermes_pkce"),
                                                    ("hermes-pool-b2", "claude_code")]
    assert creds[0].expires_at == 1_800_000_000.0 and creds[1].refresh_token is None
    assert all(c.imported for c in creds)


def test_hermes_pkce_singleton_accepts_seconds_too(home):
    [c] = I.import_hermes_pkce(home)
    assert (c.label, c.source, c.expires_at, c.refresh_token) == ("hermes-pkce", "hermes_pkce", 1_700_000_000.0, None)


def test_environment_variables():
    creds = I.import_env({"CLAUDE_CODE_OAUTH_TOKEN": f" {CC_ACCESS} ", "ANTHROPIC_TOKEN": "", "OTHER": "x"})
    assert [(c.label, c.source, c.access_token) for c in creds] == [
        ("env-CLAUDE_CODE_OAUTH_TOKEN", "env:CLAUDE_CODE_OAUTH_TOKEN", CC_ACCESS)]


def test_missing_files_are_simply_absent(tmp_path):
    found = I.discover(user_home=tmp_path, environ={})
    assert found.credentials == [] and found.problems == []


BROKEN = [
    (I.CLAUDE_CODE_FILE, '{"claudeAiOauth": {"accessToken": "' + CC_ACCESS + '"', "not valid JSON"),
    (I.CLAUDE_CODE_FILE, {"claudeAiOauth": {"accessToken": 12345, "refreshToken": CC_REFRESH}}, "accessToken"),
    (I.CLAUDE_CODE_FILE, {"claudeAiOauth": {"refreshToken": CC_REFRESH}}, "missing"),
    (I.CLAUDE_CODE_FILE, {"claudeAiOauth": [CC_ACCESS]}, "claudeAiOauth"),
    (I.CLAUDE_CODE_FILE, [CC_ACCESS], "top level"),
    (I.CLAUDE_CODE_FILE, {"claudeAiOauth": {"accessToken": CC_ACCESS, "expiresAt": "soon"}}, "expiry"),
    (I.CLAUDE_CODE_FILE, {"claudeAiOauth": {"accessToken": CC_ACCESS, "scopes": [1, 2]}}, "scopes"),
    (I.HERMES_AUTH_FILE, {"credential_pool": {"anthropic": {"access_token": H_ACCESS}}}, "not a list"),
    (I.HERMES_AUTH_FILE, {"credential_pool": {"anthropic": [H_ACCESS]}}, "anthropic[0]"),
    (I.HERMES_AUTH_FILE, {"credential_pool": {"anthropic": [{"refresh_token": H_REFRESH}]}}, "access_token"),
    (I.HERMES_AUTH_FILE, {"credential_pool": "x"}, "credential_pool"),
    (I.HERMES_PKCE_FILE, "\xff\xfe garbage " + P_ACCESS, "not valid JSON"),
    (I.HERMES_PKCE_FILE, {"accessToken": None}, "accessToken"),
]


@pytest.mark.parametrize("rel,content,expect", BROKEN, ids=[f"{i}-{r.name}" for i, (r, _, _) in enumerate(BROKEN)])
def test_broken_files_are_typed_errors_naming_the_file_without_secrets(tmp_path, rel, content, expect):
    path = write(tmp_path / rel, content)
    found = I.discover(user_home=tmp_path, environ={})
    assert found.credentials == []
    [problem] = found.problems
    assert isinstance(problem, I.CredentialFileError)
    msg = str(problem)
    assert str(path) in msg and expect in msg
    for s in SECRETS:
        assert s not in msg and s[13:33] not in msg


def test_one_broken_file_does_not_hide_the_others(home):
    write(home / I.HERMES_AUTH_FILE, "{")
    found = I.discover(user_home=home, environ={"ANTHROPIC_TOKEN": P_ACCESS})
    assert found.labels() == ["claude-code", "hermes-pkce", "env-ANTHROPIC_TOKEN"]
    assert len(found.problems) == 1 and "auth.json" in str(found.problems[0])


def test_reprs_of_imported_credentials_are_masked(home):
    text = repr(I.discover(user_home=home, environ={}).credentials)
    for s in SECRETS:
        assert s not in text


def test_foreign_files_unchanged_after_every_kit_operation(home, tmp_path, monkeypatch, capsys):
    """Import, list, resolve, save a copy, refuse refresh, and the CLI 'creds': the files keep bytes, mode, mtime."""
    from lanelab.auth import oauth
    from lanelab.auth.oauth import RefreshRefused

    before = snapshot(home)
    settings = Settings(home=tmp_path / "kit")
    found = I.discover(user_home=home, environ={})
    assert len(found.credentials) == 4
    cred = resolve_credential("claude-code", settings, user_home=home, environ={})
    CredentialStore(settings.home).save(cred, label="copy-of-cc")
    ep = oauth.endpoint_set("sim", "http://127.0.0.1:9")
    with pytest.raises(RefreshRefused):
        oauth.refresh(cred, ep, oauth.client_variant("axios-form"))
    monkeypatch.setenv("LANELAB_HOME", str(settings.home))
    monkeypatch.setenv("LANELAB_MODE", "sim")
    assert cli.main(["creds", "--user-home", str(home)]) == 0
    assert cli.main(["creds", "--json", "--user-home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "claude-code" in out and "hermes-pool-a1" in out and "manual:hermes_pkce" in out
    for s in SECRETS:
        assert s not in out
    assert snapshot(home) == before


def test_imported_credentials_count_as_live(home):
    from lanelab.auth.issuer import WrongIssuer, check_destination

    found = I.discover(user_home=home, environ={"ANTHROPIC_TOKEN": P_ACCESS}).credentials
    assert len(found) == 5
    for c in found:
        assert c.imported and c.issuer_mode == "live" and c.issued_by == f"live (imported from {c.source})"
        assert check_destination(c, "https://api.anthropic.com") is c
        with pytest.raises(WrongIssuer, match="imported from another client"):
            check_destination(c, "http://127.0.0.1:5555")


def test_credentials_table_is_one_object_with_a_frame_and_its_problems(home, tmp_path):
    from lanelab.auth.credential import Credential
    from lanelab.auth.introspect import CredentialTable, credentials_table

    settings = Settings(home=tmp_path / "kit")
    store = CredentialStore(settings.home)
    store.save(Credential(label="sim-pkce", access_token=H_ACCESS, mode="sim", issuer="http://127.0.0.1:5555"))
    store.save(Credential(label="old", access_token=P_ACCESS))  # written before issuers were recorded
    write(home / I.HERMES_PKCE_FILE, "{")
    table = credentials_table(settings, user_home=home, environ={})
    assert isinstance(table, CredentialTable)
    frame = table.to_frame()
    assert list(frame.columns) == list(CredentialTable.COLUMNS)
    assert list(frame["label"]) == ["old", "sim-pkce", "claude-code", "hermes-pool-a1", "hermes-pool-b2"]
    assert list(frame["where"]) == ["saved", "saved", "import", "import", "import"]
    assert list(frame["issuer"])[:3] == ["unknown", "sim http://127.0.0.1:5555", "live (imported from claude_code)"]
    [problem] = table.problems
    assert ".anthropic_oauth.json" in problem and "not valid JSON" in problem
    shown = frame.to_string() + str(table) + repr(table) + table._repr_html_()
    assert "not valid JSON" in table._repr_html_() and "problem: " in str(table)
    for s in SECRETS:
        assert s not in shown
    lines = table.text_lines()
    assert lines[0].split() == list(CredentialTable.COLUMNS) and len(lines) == 1 + len(frame) + 1
