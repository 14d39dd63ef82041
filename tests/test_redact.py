"""The redact module masks every secret shape, keeps masks short and recognisable, and catches leaks."""

import json

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from lanelab import errors, redact

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


# ---- issue 12: the rules beyond token shapes --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["x-goog-api-key", "X-Api-Key", "sessionToken", "webhook_secret", "client-secret",
                                 "x-auth-token", "id_token", "Set-Cookie", "proxy-authorization", "code_verifier",
                                 "db_password", "private_key"])
def test_keys_that_name_a_secret_by_their_ending_are_sensitive(key):
    assert redact.is_sensitive_key(key)


@pytest.mark.parametrize("key", ["max_tokens", "input_tokens", "cache_read_input_tokens", "token_type",
                                 "code_challenge", "error_code", "status_code", "auth", "credential", "keys",
                                 "env-CLAUDE_CODE_OAUTH_TOKEN", "x-claude-code-session-id", "anthropic-beta"])
def test_ordinary_keys_stay_visible(key):
    assert not redact.is_sensitive_key(key)


SECRET = "Op4queS3cretValue9876"


@pytest.mark.parametrize("template", [
    "GET http://127.0.0.1:5/oauth/code/callback?code={s}&state=st4te \"HTTP/1.1 200 OK\"",
    "[(b'date', b'Mon'), (b'location', b'http://h/cb?code={s}&state=st4te')]",
    '{{"access_token": "{s}", "token_type": "Bearer"}}',
    '"{{\\"refresh_token\\": \\"{s}\\"}}"',
    "x-goog-api-key: {s}",
    "authorization: Bearer {s}",
    '[["x-api-key", "{s}"], ["anthropic-version", "2023-06-01"]]',
    'api_token = "{s}"',
    "grant_type=refresh_token&refresh_token={s}&client_id=abc",
])
def test_values_under_sensitive_keys_are_masked_inside_text(template):
    text = template.format(s=SECRET)
    out = redact.redact_text(text)
    assert SECRET not in out and _longest_common_run(SECRET, out) < 8 and SECRET[-4:] in out
    assert redact.find_secrets(text) and not redact.find_secrets(out)


@pytest.mark.parametrize("text", [
    "http://x/oauth/authorize?code=true&client_id=9d1c&code_challenge=ICfr1XYm7fHt1IezW4Zi5s&state=abcdefghijkl",
    '{"credential": "env-CLAUDE_CODE_OAUTH_TOKEN", "observation": {"status": 200}}',
    "Credential(label='env-CLAUDE_CODE_OAUTH_TOKEN', source='env:CLAUDE_CODE_OAUTH_TOKEN', imported=True)",
    "Invalid 'code_verifier' in request.",
    '{"max_tokens": 123456789, "token_type": "Bearer", "code": {"type": "string", "description": "Python code"}}',
    '{"access_token": null, "refresh_token": 12345678901}',
    "error_code=overloaded_error status_code: 5290000000",
])
def test_text_that_only_mentions_sensitive_keys_is_left_alone(text):
    assert redact.redact_text(text) == text and redact.find_secrets(text) == []


def test_secrets_used_as_keys_or_nested_under_sensitive_keys_are_masked():
    redact.register_secret(SECRET)
    nested = "Nest3dOpaqueValue1234"
    out = redact.redact_obj({SECRET: {"scopes": ["user:inference"]}, "refresh_token": {"value": nested},
                             "api_key": [nested], "tools": [{"input_schema": {"properties": {
                                 "code": {"type": "string", "description": "Python code to run"}}}}]})
    blob = json.dumps(out)
    assert SECRET not in blob and nested not in blob
    assert out["tools"][0]["input_schema"]["properties"]["code"]["description"] == "Python code to run"


def test_what_goes_by_is_learned_before_it_is_redacted():
    bearer, cookie, first, verifier, code, access = (f"Lrn{i}Opaque{i}Value{i}xyz" for i in range(6))
    redact.learn_headers([("authorization", f"Bearer {bearer}"), ("cookie", f"theme=darkmode; sid={cookie}"),
                          ("set-cookie", f"s={first}; Max-Age=31536000; Path=/"),
                          ("location", "/cb?code=LocationCode12345&state=s")])
    redact.learn_body(f"grant_type=authorization_code&code={code}&code_verifier={verifier}".encode(),
                      "application/x-www-form-urlencoded")
    redact.learn_body(json.dumps({"access_token": access, "expires_in": 3600}).encode(), "application/json")
    for value in (bearer, cookie, first, verifier, code, access, "LocationCode12345"):
        assert value not in redact.redact_text(f"echo {value} echo"), redact.mask(value)
    assert "31536000" in redact.redact_text("Max-Age 31536000"), "a cookie's attributes are no secret"


def test_code_is_a_secret_only_where_it_is_an_authorization_code():
    redact.learn_obj({"messages": [{"content": [{"type": "tool_use", "input": {"code": "print_the_answer"}}]}]})
    assert redact.redact_text("print_the_answer") == "print_the_answer", "a tool's code parameter is not learned"
    redact.learn_obj({"grant_type": "authorization_code", "code": "RealAuthCode123456"})
    assert "RealAuthCode123456" not in redact.redact_text("x RealAuthCode123456")


def test_a_large_body_is_recorded_as_a_prefix_with_size_and_hash():
    import hashlib

    raw = json.dumps({"access_token": SECRET, "pad": "p" * 5000}).encode()
    rec = redact.redact_body(raw, "application/json", limit=1000)
    assert rec["truncated"] is True and rec["bytes"] == len(raw) and len(rec["text"]) <= 1000
    assert rec["sha256"] == hashlib.sha256(raw).hexdigest() and SECRET not in rec["text"]
    small = redact.redact_body(b"grant_type=x&code=" + SECRET.encode(), "application/x-www-form-urlencoded")
    assert small["form"]["grant_type"] == "x" and SECRET not in json.dumps(small)
    assert redact.redact_body(b"[" * 100 + b"]" * 100, "application/json")["text"], "deep JSON is kept as text"


def test_log_records_are_redacted_message_and_arguments(caplog):
    import logging

    redact.guard_logging()
    logger = logging.getLogger("httpx")
    assert logger.level != logging.NOTSET, "quiet unless someone chose a level"
    caplog.set_level(logging.INFO, logger="httpx")
    logger.info('HTTP Request: %s %s "%s"', "GET", f"http://127.0.0.1/cb?code={SECRET}&state=s", "HTTP/1.1 200 OK")
    logger.info("token=%s", SECRET)
    try:
        raise ValueError(f"refresh_token={SECRET}")
    except ValueError:
        logger.exception("failed")
    text = caplog.text
    assert "HTTP Request: GET" in text and "failed" in text and SECRET not in text and SECRET[-4:] in text


@pytest.mark.parametrize("bad", ["tok\nen-value-1234", "tok en", "tök", "", "x" * 9000, "tab\there", "nul\x00x"])
def test_token_shape_is_one_line_of_printable_ascii(bad):
    from lanelab.errors import InputError

    assert redact.token_shape_problem(bad)
    with pytest.raises(InputError) as info:
        errors.check_token_shape(bad, "token")
    assert bad not in str(info.value) or not bad
    assert redact.token_shape_problem("sk-ant-oat01-" + "A" * 90) is None


def test_a_list_of_header_names_is_not_a_header_pair():
    """``["authorization", "content-type", …]`` names headers; only a two-element ``[name, value]`` is a pair. A
    capture record holds both (its headers and the names it forwarded), and must be writable once masked."""
    redact.register_secret("opaqueTestTokenAAAA1234567890")
    record = {"headers": [["authorization", "Bearer opaqueTestTokenAAAA1234567890"], ["content-type", "x"]],
              "forwarded_headers": ["authorization", "content-type", "content-length"]}
    line = json.dumps(redact.redact_obj(record), ensure_ascii=False)
    assert redact.find_secrets(line) == []
    assert redact.find_secrets('[["authorization", "Bearer abcdefghijklmnop"]]') != []


# Pieces that make token shapes likely in generated text: literal starts, case variants, an "İ" (whose lower case is
# longer), separators the patterns care about, and the mask.
_TOKENISH = st.lists(st.sampled_from(["sk-ant-oat01-", "sk-ant-api03-", "sk-ant-", "eyJ", "eyJabc123.", "Bearer ",
                                      "bEaReR\t", "BEARER  ", "İ", "…", ".", "-", "_", " ", "\n", "=", "abcdEFGH",
                                      "123456", "x"]), max_size=40).map("".join)


@given(st.one_of(_TOKENISH, st.text(max_size=120)))
def test_the_token_search_finds_exactly_what_the_pattern_finds(text):
    """The literal-start search (redact._token_matches) is a faster finditer, never a weaker one."""
    assert [m.span() for m in redact._token_matches(text)] == [m.span() for m in redact._TOKEN_RE.finditer(text)]
    assert redact._mask_tokens(text) == redact._TOKEN_RE.sub(redact._mask_match, text)


def test_a_text_found_clean_is_masked_once_its_secret_is_learned():
    """Redaction remembers texts it found clean; learning a secret must forget them (else the secret goes out)."""
    r = redact.Redactor()
    opaque = "opaque-credential-0123456789"
    text = f"the server said {opaque} twice"
    assert r.redact_text(text) == text and r.redact_text(text) == text  # the second answer comes from memory
    r.register_secret(opaque)
    assert opaque not in r.redact_text(text)
    assert opaque not in json.dumps(r.redact_obj({"note": text, text: 1}))
    saved = r.snapshot()
    r.forget_secrets()
    assert r.redact_text(text) == text
    r.restore(saved)
    assert opaque not in r.redact_text(text)


def test_a_clean_check_that_raced_with_learning_a_secret_is_not_remembered():
    r = redact.Redactor()
    opaque = "opaque-credential-0123456789"
    text = f"value {opaque}"
    generation, _ = r._known_now()  # a check starts against the registry as it is ...
    r.register_secret(opaque)  # ... another thread learns the secret meanwhile ...
    r._remember_clean(text, generation)  # ... and the stale "clean" verdict arrives late
    assert opaque not in r.redact_text(text)


def test_learning_skips_only_texts_found_clean():
    """learn_text skips a text redaction found clean (nothing in it to learn); a text with a pair is still learned,
    however often it was redacted before."""
    r = redact.Redactor()
    value = "opaque0123456789"
    text = f"callback?access_token={value}&state=1"
    for _ in range(2):
        assert value not in r.redact_text(text)
    r.learn_text(text)
    assert value not in r.redact_text(f"the value {value} alone")
    clean = "a header value with nothing secret in it"
    assert r.redact_text(clean) == clean
    before = r.snapshot()
    r.learn_text(clean)
    assert r.snapshot() == before


# JSON-like data in which the shortcut of redact_json has something to miss: token pieces, sensitive and weak keys
# (strings, lists and dicts under them), pairs inside strings, escapes (quotes, backslashes, newlines), non-ASCII,
# non-string keys and values json.dumps writes with default=str.
_JSON_TEXT = st.one_of(_TOKENISH, st.sampled_from(["access_token=abcdefghijkl", "token='abcdefghijk123'",
                                                   "secret: 'abcdefghijk'", "code=abc", 'say "hi"', "a\\b",
                                                   "line\nbreak", "Bearer zyxwvutsrqponm", "İstanbul", "…"]),
                       st.text(max_size=30))
_JSON_KEYS = st.one_of(st.sampled_from(["token", "code", "authorization", "max_tokens", "input_tokens", "x-api-key",
                                        "set-cookie", "name", "text", "session_id", "apiKey", 'q"uote']),
                       st.text(max_size=12), st.integers(0, 9))
_JSON_LIKE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _JSON_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(_JSON_KEYS, inner, max_size=5)),
    max_leaves=20)


@given(_JSON_LIKE, st.booleans())
def test_redact_json_is_the_text_of_the_walk(value, learned):
    """redact_json takes a shortcut through the text; its answer is always json.dumps of redact_obj's."""
    r = redact.Redactor()
    if learned:
        r.register_secret("abcdefghijkl")
        r.register_secret("opaque-credential-0123456789")
    walk = json.dumps(r.redact_obj(value), ensure_ascii=False, default=str)
    assert r.redact_json(value) == walk
    assert r.redact_json(value) == walk  # a second time, with the texts it found clean remembered


@given(st.lists(_JSON_LIKE, min_size=1, max_size=4), st.booleans())
@example([{"note": "to\u212aen=abcdefghijkl"}, {"x": "İ"}], False)  # a neighbour whose lower case is longer must
# not switch the text with the Kelvin sign (a pair only under full lower-casing) to ASCII lower-casing
@example([{"a": "x bearer"}, ["abcdefghijklmnop"]], False)  # a token across the line break: found, then one by one
@example([{"a": "abcdefghijkl"}, {"b": 1}], True)
def test_json_texts_found_clean_together_are_what_each_gives_alone(values, learned):
    """clean_json_all scans its values' texts as one: when it finds them clean, each is the text clean_json gives
    for it alone, and the text of the walk; when it does not, its caller takes each value's own way."""
    together, alone = redact.Redactor(), redact.Redactor()
    for r in (together, alone):
        if learned:
            r.register_secret("abcdefghijkl")
    found = together.clean_json_all(values)
    each = [alone.clean_json(v) for v in values]
    if found is not None:
        assert found == each
        assert found == [json.dumps(alone.redact_obj(v), ensure_ascii=False, default=str) for v in values]
    else:
        # only a pattern across a line break (a token after "bearer" at a text's end) is found in the joined text
        # and in no text alone
        assert None in each or any(json.dumps(v, ensure_ascii=False, default=str).lower().rstrip('"]}').endswith(
            "bearer") for v in values[:-1])
    assert together.clean_json_all(values) == found  # again, with what it found clean remembered


def test_json_texts_found_clean_are_scanned_again_once_a_secret_is_learned():
    """clean_json_all remembers the texts it found clean (a cell's levels, a request's fields), until the registry
    changes: a secret learned later is found in a remembered text."""
    r = redact.Redactor()
    value = {"note": "value opaque-credential-0123456789"}
    assert r.clean_json_all([value, {"n": 1}]) is not None
    assert r.clean_json_all([value]) is not None
    r.register_secret("opaque-credential-0123456789")
    assert r.clean_json_all([value, {"n": 1}]) is None and r.clean_json(value) is None
    assert "opaque-credential-0123456789" not in r.redact_json(value)


def test_redact_json_masks_what_only_the_walk_finds():
    """Short values under sensitive keys and secrets behind escapes are masked as the walk masks them."""
    r = redact.Redactor()
    r.register_secret('abc"defghij')
    for value in ({"password": "abc"}, {"note": 'x abc"defghij y'}, {"api_key": ["one", "two"]},
                  {"cookies": {"session": "s"}}):
        out = r.redact_json(value)
        assert out == json.dumps(r.redact_obj(value), ensure_ascii=False, default=str)
        assert out != json.dumps(value, ensure_ascii=False), value


@pytest.mark.parametrize("text", ['"access_token=abcdefghijkl"', "'refresh_token: abcdefghijklmn'",
                                  '{"x": "token=\'abcdefghijk123\'"}', "\"secret: 'abcdefghijk'\"",
                                  '{"content": "code=abcdefghijkl&state=x"}'])
def test_a_pair_at_the_start_of_a_quoted_string_is_masked(text):
    """A string that begins with ``key=value`` (a JSON string holding a query) was let through: the quote before the
    key read as a quoted key's, after which only a quoted value was looked for."""
    assert redact.find_secrets(text) != []
    assert "abcdefghij" not in redact.redact_text(text)
    assert redact.find_secrets(redact.redact_text(text)) == []


@given(st.dictionaries(st.one_of(st.sampled_from(["Token", "MAX_TOKENS", "x-Api-Key", "error_code", "codes",
                                                  "to\u212aen", "İd_token", "cookie_jar", "passwd", "name"]),
                                 st.text(max_size=10)),
                       st.one_of(st.text(max_size=10), st.sampled_from(["token", "code", '": x']),
                                 st.lists(st.sampled_from(["key", "secret"]), max_size=2)),
                       max_size=6))
def test_the_sensitive_key_search_finds_what_a_look_at_every_key_finds(value):
    """redact_json looks only at the strings around the stems; it names a sensitive key exactly when one of the keys
    is sensitive (a Kelvin sign reads as k, an "İ" changes the text's length)."""
    text = json.dumps(value, ensure_ascii=False)
    assume("\\" not in text)  # (escaped text takes the walk instead)
    assert redact._has_sensitive_key(text) == any(redact.is_sensitive_key(k) for k in value)


# Header values: token and pair pieces, a key with a Kelvin sign (lower-cased to k: a pair only where the text is read
# with full lower-casing), an "İ" (whose lower case is longer, which switches a text to ASCII-only lower-casing),
# line breaks, quotes and brackets around pairs.
_HEADER_VALUE = st.one_of(_JSON_TEXT, st.sampled_from(["to\u212aen=abcdefghijkl", "x İ y", "(\"token\", \"abcdefghijk1\")",
                                                       "bearer", "abcdefghijklmnop", "a=b; session=abcdefghijkl",
                                                       "?code=abcdefghijkl&state=1"]),
                          st.lists(st.sampled_from(["token=", "abcdefghijkl", "\n", "(", "'", '"', ", ", "Bearer "]),
                                   max_size=6).map("".join))
_HEADERS = st.lists(st.tuples(st.sampled_from(["x-note", "location", "authorization", "cookie", "set-cookie",
                                               "x-api-key", "x-trace", "x-trace", "user-agent"]), _HEADER_VALUE),
                    max_size=6)


def _headers_value_by_value(r: redact.Redactor, items: list[tuple[str, str]]) -> dict[str, str]:
    """redact_headers as it reads each value on its own (what its one-text reading must equal)."""
    out: dict[str, str] = {}
    for k, v in items:
        v = redact._mask_header_value(v) if redact.is_sensitive_key(k) else r.redact_text(v)
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


@given(_HEADERS, st.booleans())
@example([("x-note", "to\u212aen=abcdefghijkl"), ("x-trace", "x İ y")], False)  # a non-ASCII neighbour must not hide
@example([("x-note", "a bearer"), ("x-trace", "abcdefghijklmnop")], False)  # a pattern across lines finds more
def test_headers_read_as_one_text_give_what_each_value_gives(items, learned):
    """redact_headers and learn_headers read the values not known clean as one text, one per line: the same masks,
    and the same secrets learned, as reading each value on its own."""
    one, each = redact.Redactor(), redact.Redactor()
    for r in (one, each):
        if learned:
            r.register_secret("abcdefghijkl")
    assert one.redact_headers(items) == _headers_value_by_value(each, items)
    as_dict = dict(items)  # a plain dict with nothing to mask comes back as a copy
    found = one.redact_headers(as_dict)
    assert found == _headers_value_by_value(each, list(as_dict.items())) and found is not as_dict
    one.learn_headers(items)
    for name, value in items:  # learn_headers as it read each value on its own
        if redact.is_sensitive_key(name):
            each.learn_headers([(name, value)])
        else:
            each.learn_text(value)
    assert one.snapshot() == each.snapshot()


_SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :\t"), (",\n", "\r\n:  ")])


@given(_JSON_LIKE, st.booleans(), _SEPARATORS, st.sampled_from([None, 0, 2]))
@example({"token": "opaque-value-123456"}, False, (",", ":"), None)  # a sensitive key with no space before its value
@example({"a": {"Code_Verifier": "x"}}, False, (" ,", " :\t"), 2)
def test_a_json_body_as_a_client_formats_it_is_recorded_as_the_walk_records_it(value, learned, separators, indent):
    """redact_body skips learning and the walk for a JSON body whose text shows nothing to learn or mask, read as it
    came however its client spaced it (json.dumps' ", " and ": ", httpx's none, …): what it records, and what it
    learns, are the walk's."""
    raw = json.dumps(value, ensure_ascii=False, default=str, separators=separators, indent=indent).encode()
    fast, walk = redact.Redactor(), redact.Redactor()
    for r in (fast, walk):
        if learned:
            r.register_secret("abcdefghijkl")
    data = json.loads(raw)
    walk.learn_obj(data)
    assert fast.redact_body(raw, "application/json")["json"] == walk.redact_obj(data)
    assert fast.snapshot() == walk.snapshot()
    fast.learn_body(raw, "application/json")
    assert fast.snapshot() == walk.snapshot()


def test_a_compact_body_with_a_secret_under_its_key_is_masked_and_learned():
    r = redact.Redactor()
    raw = b'{"model":"m","metadata":{"api_key":"opaque-credential-0123456789"}}'
    recorded = r.redact_body(raw, "application/json")["json"]
    assert "opaque-credential-0123456789" not in json.dumps(recorded)
    assert "opaque-credential-0123456789" not in r.redact_text("later: opaque-credential-0123456789")


def test_a_part_the_leak_check_found_clean_is_checked_again_once_a_secret_is_learned():
    """assert_clean_parts remembers the parts it found clean (a record's punctuation, fields many cells share); a
    secret learned later must still be caught in them."""
    r = redact.Redactor()
    opaque = "opaque-credential-0123456789"
    parts = ('{"note": ', f'"a value {opaque} here"', "}")
    r.assert_clean_parts(parts)
    r.assert_clean_parts(parts)  # from memory
    r.register_secret(opaque)
    with pytest.raises(redact.SecretLeak):
        r.assert_clean_parts(parts)
    leaky = ('{"note": ', f'"{OAT}"', "}")
    for _ in range(2):  # a part with a secret is never remembered as clean
        with pytest.raises(redact.SecretLeak):
            r.assert_clean_parts(leaky)


@pytest.mark.parametrize("extra_brackets", [0, 100])
def test_the_json_depth_bound_is_exact(extra_brackets):
    """loads_bounded accepts data nested exactly MAX_JSON_DEPTH deep and refuses one level more, whether it can tell
    from the count of brackets (each level opens with one) or must walk the data (brackets inside strings)."""
    depth = redact.MAX_JSON_DEPTH
    noise = json.dumps("[{" * extra_brackets)
    assert redact.loads_bounded("[" * (depth - 1) + f"[{noise}]" + "]" * (depth - 1))[0] is not None
    with pytest.raises(ValueError, match="too deeply"):
        redact.loads_bounded("[" * depth + f"[{noise}]" + "]" * depth)
    assert redact.loads_bounded('{"a": ' * depth + "1" + "}" * depth) is not None
    with pytest.raises(ValueError, match="too deeply"):
        redact.loads_bounded('{"a": ' * (depth + 1) + "1" + "}" * (depth + 1))


def test_the_same_header_dict_again_is_not_read_again_until_the_registry_changes(monkeypatch):
    """A client sends the same headers with every request: a dict the very same as the last one, with no secret
    learned since, is neither learned nor redacted again; the answer is the one given then, as a fresh copy."""
    r = redact.Redactor()
    opaque = "opaque-credential-0123456789"  # no token shape: masked only because it was learned
    headers = {"authorization": f"Bearer {opaque}", "x-note": f"seen {opaque}", "user-agent": "client/1.0"}
    reads = {"learn": 0, "redact": 0}
    for name, method in (("learn", "_learn_headers"), ("redact", "_redact_headers")):
        real = getattr(r, method)
        monkeypatch.setattr(r, method, lambda h, real=real, name=name: (reads.__setitem__(name, reads[name] + 1),
                                                                          real(h))[1])
    r.learn_headers(headers)
    first = r.redact_headers(headers)
    assert opaque not in json.dumps(first) and first["user-agent"] == "client/1.0"
    first["user-agent"] = "changed by a caller"
    for _ in range(3):
        r.learn_headers(dict(headers))  # an equal dict, not the same object
        again = r.redact_headers(dict(headers))
    assert reads == {"learn": 1, "redact": 1}
    assert again == {**first, "user-agent": "client/1.0"}, "each answer is a copy a caller may change"
    other = {**headers, "x-note": "another value"}
    r.learn_headers(other)
    r.redact_headers(other)
    assert reads == {"learn": 2, "redact": 2}, "other headers are read"
    r.register_secret("client/1.0")  # a secret learned since: the kept answer is stale
    assert r.redact_headers(other)["user-agent"] != "client/1.0"
    r.learn_headers(other)
    assert reads == {"learn": 3, "redact": 3}


def test_headers_are_learned_again_after_the_registry_is_reset(monkeypatch):
    """forget_secrets and restore take learned secrets away: the same headers are learned again afterwards, even
    when the reset comes while they are being learned."""
    r = redact.Redactor()
    opaque = "opaque-credential-0123456789"
    headers = {"x-api-key": opaque, "x-note": f"key {opaque}"}
    r.learn_headers(headers)
    r.redact_headers(headers)
    r.forget_secrets()
    assert opaque not in repr(vars(r)), "a forgotten secret is kept nowhere, not with the headers last read either"
    r.learn_headers(headers)
    assert opaque not in r.redact_text(f"a line with {opaque}")
    saved = r.snapshot()
    r.restore(frozenset())
    r.learn_headers(headers)
    assert opaque not in r.redact_text(f"a line with {opaque}")
    r.restore(saved)
    real = r._learn_headers

    def reset_midway(h):
        real(h)
        r.forget_secrets()  # another thread resets the registry before the learning is remembered

    monkeypatch.setattr(r, "_learn_headers", reset_midway)
    r.learn_headers(headers)
    monkeypatch.setattr(r, "_learn_headers", real)
    r.learn_headers(headers)  # not remembered as learned: read again
    assert opaque not in r.redact_text(f"a line with {opaque}")
