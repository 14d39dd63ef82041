"""The kit's own store: 0600 files, atomic writes, label validation, masked reprs, resolve_token."""

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.auth import credentials as C
from lanelab.config import Settings

ACCESS = "sk-ant-oat01-" + "a1B2" * 20
REFRESH = "sk-ant-ort01-" + "z9Y8" * 20


def cred(label="sim-pkce", **kw):
    base = {"label": label, "access_token": ACCESS, "refresh_token": REFRESH, "expires_at": 2_000_000_000.0,
            "scopes": ("user:inference", "user:profile"), "email": "someone@example.com"}
    base.update(kw)
    return C.Credential(**base)


def test_repr_and_masked_view_hide_secrets():
    c = cred()
    for text in (repr(c), str(c), json.dumps(c.masked()), f"{c}"):
        assert ACCESS not in text and REFRESH not in text
        assert "someone@" not in text
    assert "sk-ant-oat01-…" in repr(c) and ACCESS[-4:] in repr(c)


def test_save_load_round_trip_with_mode_0600(tmp_path):
    store = C.CredentialStore(tmp_path)
    path = store.save(cred())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    back = store.load("sim-pkce")
    assert back.to_dict() == cred().to_dict()
    assert store.labels() == ["sim-pkce"]


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    store = C.CredentialStore(tmp_path)
    store.save(cred())
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.save(cred(access_token="sk-ant-oat01-" + "n" * 40))
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.load("sim-pkce").access_token == ACCESS  # the old file is intact
    assert [p.name for p in store.dir.iterdir()] == ["sim-pkce.json"]


def test_save_under_new_label_and_delete(tmp_path):
    store = C.CredentialStore(tmp_path)
    store.save(cred(), label="other")
    assert store.labels() == ["other"] and store.load("other").label == "other"
    assert store.delete("other") and not store.delete("other")
    assert store.labels() == []


@pytest.mark.parametrize("label", ["", "../x", "a/b", ".hidden", "x" * 65, "a b", "a..b", "-x"])
def test_bad_labels_are_refused(tmp_path, label):
    with pytest.raises(C.InvalidLabel):
        C.CredentialStore(tmp_path).save(cred(label=label))


@given(st.from_regex(C.LABEL_RE, fullmatch=True).filter(lambda s: ".." not in s))
@settings(max_examples=50)
def test_valid_labels_map_to_one_file_inside_the_store(label):
    store = C.CredentialStore("/nonexistent/home")
    assert store.path(label).parent == store.dir


def test_missing_label_error_names_alternatives(tmp_path):
    store = C.CredentialStore(tmp_path)
    store.save(cred(label="mine"))
    with pytest.raises(C.CredentialNotFound, match="mine"):
        store.load("nope")


def test_corrupt_file_is_a_clear_error_without_secrets(tmp_path):
    store = C.CredentialStore(tmp_path)
    store.save(cred())
    store.path("sim-pkce").write_text('{"access_token": 5, "refresh_token": "' + REFRESH + '"')
    with pytest.raises(C.CorruptCredential) as info:
        store.load("sim-pkce")
    assert REFRESH not in str(info.value) and "login" in str(info.value)
    assert store.all() == []


def test_expiry_helpers():
    c = cred(expires_at=1000.0)
    assert c.expires_in(now=400.0) == 600.0 and not c.is_expired(now=400.0)
    assert c.is_expired(now=1000.0)
    assert cred(expires_at=None).expires_in() is None


def test_resolve_token_prefers_store_then_importers(tmp_path):
    settings = Settings(home=tmp_path / "home")
    C.CredentialStore(settings.home).save(cred(label="mine"))
    env = {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-" + "e" * 40}
    assert C.resolve_token("mine", settings, user_home=tmp_path, environ=env) == ACCESS
    assert C.resolve_token("env-CLAUDE_CODE_OAUTH_TOKEN", settings, user_home=tmp_path, environ=env) == \
        env["CLAUDE_CODE_OAUTH_TOKEN"]
    with pytest.raises(C.CredentialNotFound) as info:
        C.resolve_token("absent", settings, user_home=tmp_path, environ=env)
    assert "mine" in str(info.value) and "e" * 40 not in str(info.value)
