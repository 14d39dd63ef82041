"""The redact module masks every secret shape, keeps masks short and recognisable, and catches leaks."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lanelab import redact

OAT = "sk-ant-oat01-" + "Abc123_-" * 10
ORT = "sk-ant-ort01-" + "Zyx987-_" * 10
API = "sk-ant-api03-" + "Q" * 90
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


@pytest.fixture(autouse=True)
def _clean_registry():
    redact.forget_secrets()
    yield
    redact.forget_secrets()


def _longest_common_run(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] in b:
                best = j - i
            else:
                break
    return best


@pytest.mark.parametrize("secret", [OAT, ORT, API])
def test_token_shapes_are_masked_in_text_keeping_prefix(secret):
    text = f"request failed for token {secret} at noon"
    out = redact.redact_text(text)
    assert secret not in out
    assert secret[:13] in out, "the public prefix stays, so the kind of token is still visible"
    assert out.endswith("at noon")
    assert _longest_common_run(secret[13:], out) < 8


def test_jwt_and_bearer_values_are_masked():
    out = redact.redact_text(f"Authorization: Bearer {JWT}")
    assert JWT not in out and "Bearer" in out
    out = redact.redact_text("authorization: Bearer abcdefghijklmnopqrstuvwxyz0123")
    assert "abcdefghijklmnopqrstuvwxyz0123" not in out


def test_registered_secret_of_any_shape_is_masked():
    code = "q9Zt7RkLmNpXwVbYcUe"  # an authorization code looks like nothing in particular
    assert redact.redact_text(f"pasted {code}") == f"pasted {code}"
    redact.register_secret(code)
    assert code not in redact.redact_text(f"pasted {code}")
    assert redact.find_secrets(f"x {code} y")


def test_sensitive_keys_are_masked_whatever_their_value():
    data = {"code": "short-but-secret-code", "code_verifier": "v" * 43, "nested": [{"refresh_token": "r" * 30}],
            "model": "claude-sonnet-4-6", "Authorization": "Bearer " + "t" * 40}
    out = redact.redact_obj(data)
    blob = json.dumps(out)
    assert "short-but-secret-code" not in blob and "v" * 20 not in blob and "r" * 20 not in blob
    assert "t" * 20 not in blob and out["Authorization"].startswith("Bearer ")
    assert out["model"] == "claude-sonnet-4-6"
    assert data["code"] == "short-but-secret-code", "redact_obj returns a copy"


def test_redact_headers_masks_auth_and_keeps_the_rest():
    out = redact.redact_headers({"authorization": f"Bearer {OAT}", "x-api-key": API, "anthropic-beta": "oauth-2025-04-20"})
    assert OAT not in json.dumps(out) and API not in json.dumps(out)
    assert out["anthropic-beta"] == "oauth-2025-04-20"


def test_assert_clean_refuses_and_names_only_masks():
    with pytest.raises(redact.SecretLeak) as err:
        redact.assert_clean(f"<p>{OAT}</p>", where="report.html")
    assert OAT not in str(err.value) and "report.html" in str(err.value)
    redact.assert_clean(redact.redact_text(f"<p>{OAT}</p>"))


def test_mask_never_reveals_eight_secret_characters():
    m = redact.mask(OAT)
    assert m.startswith("sk-ant-oat01-") and _longest_common_run(OAT[13:], m) < 8
    assert redact.mask("abc") == "…"


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_redacted_text_contains_no_findable_secret(noise):
    text = f"{noise} {OAT} {noise}"
    out = redact.redact_text(text)
    assert OAT[13:] not in out
    assert not [h for h in redact.find_secrets(out) if "oat01" in h]


@pytest.mark.parametrize("text", ["AUTHORIZATION: BEARER abcdefghijklmnopqrstuvwxyz0123",
                                  "header bEaReR abcdefghijklmnopqrstuvwxyz0123 end"])
def test_the_fast_pre_check_never_skips_a_bearer_of_any_case(text):
    out = redact.redact_text(text)
    assert "abcdefghijklmnopqrstuvwxyz0123" not in out and redact.find_secrets(text)


def test_a_redactor_has_its_own_registry_and_the_shared_rules():
    """The simulator's redactor and the kit's default one never learn each other's secrets; patterns and
    sensitive keys work the same in both."""
    own = redact.Redactor()
    theirs = "q9Zt7RkLmNpXwVbYcUe"  # no recognisable shape: only a registry can know it
    own.register_secret(theirs)
    assert theirs not in own.redact_text(f"x {theirs}") and own.find_secrets(f"x {theirs}")
    assert redact.redact_text(f"x {theirs}") == f"x {theirs}", "the module-level registry did not learn it"
    assert redact.snapshot() == frozenset() and own.snapshot() == {theirs}
    kit_only = "Kp3LmZ8vQw2XrT6yNb"
    redact.register_secret(kit_only)
    assert own.redact_text(kit_only) == kit_only
    # shared patterns and keys
    assert OAT not in own.redact_text(f"t {OAT}") and own.redact_text(f"t {OAT}").startswith("t sk-ant-oat01-")
    assert own.redact_obj({"code": "short-but-secret-code"})["code"] != "short-but-secret-code"
    assert API not in json.dumps(own.redact_headers({"x-api-key": API}))
    with pytest.raises(redact.SecretLeak):
        own.assert_clean(f"<p>{theirs}</p>", where="sim log")
    saved = own.snapshot()
    own.forget_secrets()
    assert own.redact_text(theirs) == theirs
    own.restore(saved)
    assert own.redact_text(theirs) != theirs


def test_module_level_functions_are_the_default_redactor():
    value = "Zx8Cv7Bn6Mm5Ll4Kk3"
    redact.register_secret(value)
    assert value in redact.snapshot() and value not in redact.redact_text(f"[{value}]")
    redact.restore(frozenset())
    assert redact.redact_text(f"[{value}]") == f"[{value}]"
