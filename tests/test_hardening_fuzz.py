"""Hostile input, property-based (issue 7): every credential importer, the kit's own store, the paste parser and the
response/SSE parser either succeed or raise a typed error with a clear message; never a crash, never a secret.

A canary token is planted inside the broken input; neither it nor any 8 consecutive characters of its secret part may
appear in an error's ``str`` or ``repr`` (or in the repr of what was imported). Every example run is counted and the
total is recorded for the audit summary as ``fuzz_cases``.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fast_loop import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.auth import importers, paste
from lanelab.auth.credential import Credential
from lanelab.auth.store import CorruptCredential, CredentialStore
from lanelab.devtools import audit
from lanelab.errors import UserError
from lanelab.wire.observe import observe_response
from lanelab.wire.spec import MAX_JSON_DEPTH, Observation

pytestmark = pytest.mark.hardening

#: Secret parts: random-looking mixed case, so no 8-character window of them occurs in ordinary message text.
CANARY_SECRET = "Qz7KxW3vBn9LmP2rTs8HjD4gFc6YaE1uVo5NiC0"
CANARY = "sk-ant-oat01-" + CANARY_SECRET
CANARY_REFRESH_SECRET = "Wd4RfTg7YhUj2IkOl9PzXc6VbNm3AsQe8DwLkJf"
CANARY_REFRESH = "sk-ant-ort01-" + CANARY_REFRESH_SECRET
#: A canary of an unfamiliar shape (no sk-ant- prefix): only the secret registry can mask it.
ODD_CANARY = "zXq9Tm4Kw7Pv2Lr8Bs5Nd3Hg6Jf1Yc0Ua"
WINDOWS = frozenset(s[i:i + 8] for s in (CANARY_SECRET, CANARY_REFRESH_SECRET, ODD_CANARY)
                    for i in range(len(s) - 7))

CASES: Counter[str] = Counter()
_dirs = itertools.count()

FAST = settings(max_examples=examples(120), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def assert_no_canary(text: str, where: str) -> None:
    hits = sorted(w for w in WINDOWS if w in text)
    assert not hits, f"{where} leaks canary characters {hits[:3]}: {text[:300]!r}"


# ------------------------------------------------------------------------------------------------ input strategies
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from([CANARY, CANARY_REFRESH, ODD_CANARY, "", " ", "\n", "\x00", "\ud800", CANARY + "\n" + CANARY]))
any_json = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=16)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The right kind of value most of the time, anything at all otherwise (wrong types at every level)."""
    return st.one_of(valid, valid, valid, any_json)


def fields(required: dict[str, st.SearchStrategy[Any]],
           optional: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with its required keys present (mostly) or any of its keys missing."""
    return st.one_of(st.fixed_dictionaries(required, optional=optional),
                     st.fixed_dictionaries({}, optional={**required, **optional}))


tokens = st.sampled_from([CANARY, CANARY_REFRESH, ODD_CANARY])
expiry = st.one_of(st.integers(0, 4_000_000_000_000), st.floats(0, 4e12))
scopes = st.one_of(st.lists(st.sampled_from(["user:inference", "user:profile", "org:create_api_key"]), max_size=3),
                   st.just("user:inference user:profile"))


def oauth_block(access: str, refresh: str, expires: str) -> st.SearchStrategy[Any]:
    return fields({access: maybe(tokens)}, {
        refresh: maybe(tokens), expires: maybe(expiry), "scopes": maybe(scopes),
        "subscriptionType": maybe(st.sampled_from(["max", "pro"])),
        "rateLimitTier": maybe(st.just("default_claude_max_5x"))})


claude_code_docs = maybe(fields(
    {"claudeAiOauth": maybe(oauth_block("accessToken", "refreshToken", "expiresAt"))}, {"mcpOAuth": any_json}))
pool_entry = fields({"access_token": maybe(tokens)}, {
    "id": maybe(st.text("abcdef0123456789", min_size=1, max_size=8)), "label": maybe(st.text(max_size=10)),
    "auth_type": maybe(st.just("oauth")), "priority": maybe(st.integers(0, 9)),
    "source": maybe(st.sampled_from(["manual:hermes_pkce", "claude_code", CANARY])),
    "refresh_token": maybe(tokens), "expires_at_ms": maybe(expiry), "scopes": maybe(scopes)})
hermes_auth_docs = maybe(fields(
    {"credential_pool": maybe(fields({"anthropic": maybe(st.lists(maybe(pool_entry), min_size=1, max_size=3))},
                                     {}))},
    {"version": maybe(st.just(1)), "providers": any_json}))
hermes_pkce_docs = maybe(oauth_block("accessToken", "refreshToken", "expiresAt"))


@st.composite
def file_bytes(draw: st.DrawFn, docs: st.SearchStrategy[Any]) -> bytes:
    """A document, then possibly broken: truncated, spliced with junk, non-UTF-8, BOM, deeply nested, padded."""
    text = json.dumps(draw(docs), allow_nan=True)
    how = draw(st.sampled_from(["as is", "as is", "as is", "truncated", "junk", "non-utf8", "bom", "nested", "padded", "canary-text"]))
    if how == "truncated":
        text = text[:draw(st.integers(0, max(0, len(text) - 1)))]
    elif how == "junk":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    elif how == "nested":
        depth = draw(st.sampled_from([2, 50, 900, 5000, 50_000]))
        text = "[" * depth + text + "]" * depth * draw(st.sampled_from([0, 1]))
    elif how == "padded":
        text = text[:-1] + ', "pad": "' + "x" * draw(st.integers(1_000, 20_000)) + '"}' if text.endswith("}") else text
    elif how == "canary-text":
        text = f"{CANARY} {text} {ODD_CANARY}"
    raw = text.encode("utf-8", errors="surrogatepass")
    if how == "non-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])) + raw[at:]
    elif how == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


# ------------------------------------------------------------------------------------------------ the importers
Importer = Callable[[Path], list[Credential]]
FILE_IMPORTERS: dict[str, tuple[Path, Importer, st.SearchStrategy[Any]]] = {
    "claude_code": (importers.CLAUDE_CODE_FILE, importers.import_claude_code, claude_code_docs),
    "hermes_pool": (importers.HERMES_AUTH_FILE, importers.import_hermes_pool, hermes_auth_docs),
    "hermes_pkce": (importers.HERMES_PKCE_FILE, importers.import_hermes_pkce, hermes_pkce_docs),
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh_home(scratch: Path) -> Path:
    home = scratch / f"h{next(_dirs)}"
    home.mkdir()
    return home


def check_import(importer: Importer, home: Path, path: Path) -> list[Credential] | importers.CredentialFileError:
    """Run one importer: credentials or a typed error naming ``path``; anything else propagates and fails the test."""
    try:
        creds = importer(home)
    except importers.CredentialFileError as exc:
        message = str(exc)
        assert str(path) in message, f"the error does not name the file: {message}"
        assert exc.hint and exc.hint in message, "the error does not say what to do next"
        assert_no_canary(message, "str(error)")
        assert_no_canary(repr(exc), "repr(error)")
        return exc
    assert isinstance(creds, list) and all(isinstance(c, Credential) for c in creds)
    for cred in creds:
        assert_no_canary(repr(cred), "repr(credential)")
        assert_no_canary(str(cred), "str(credential)")
        # what it imported can go on the wire: a header value of printable ASCII
        assert cred.access_token.isascii() and cred.access_token.isprintable() and " " not in cred.access_token
    return creds


@pytest.mark.parametrize("kind", sorted(FILE_IMPORTERS))
def test_file_importers_survive_any_content(kind: str, scratch: Path) -> None:
    rel, importer, docs = FILE_IMPORTERS[kind]

    @FAST
    @given(raw=file_bytes(docs))
    def prop(raw: bytes) -> None:
        CASES[kind] += 1
        home = fresh_home(scratch)
        path = home / rel
        path.parent.mkdir(parents=True)
        path.write_bytes(raw)
        check_import(importer, home, path)
        path.unlink()

    prop()


@pytest.mark.slow  # derandomized fuzz of every importer
def test_every_importer_is_exercised_both_ways(scratch: Path) -> None:
    """The strategies reach both branches: a usable credential and a typed error (else the fuzz proves little).
    Derandomized, so this check of the strategies themselves cannot flake."""
    for kind in FILE_IMPORTERS:
        outcomes = _derandomized_outcomes(kind, scratch)
        assert {"ok", "error"} <= outcomes, f"{kind}: only {outcomes}"


def _derandomized_outcomes(kind: str, scratch: Path) -> set[str]:
    """What one importer made of the derandomized cases: "ok" (a credential), "error" (typed) or "empty"."""
    rel, importer, docs = FILE_IMPORTERS[kind]
    outcomes: set[str] = set()

    @settings(FAST, derandomize=True, database=None)
    @given(raw=file_bytes(docs))
    def prop(raw: bytes) -> None:
        CASES[kind] += 1
        home = fresh_home(scratch)
        (home / rel).parent.mkdir(parents=True)
        (home / rel).write_bytes(raw)
        got = check_import(importer, home, home / rel)
        outcomes.add("error" if isinstance(got, UserError) else "ok" if got else "empty")

    prop()
    return outcomes


SPECIAL = ["directory", "empty", "whitespace", "huge", "fifo", "dangling-symlink", "unreadable", "deep-valid-prefix"]


@pytest.mark.parametrize("kind", sorted(FILE_IMPORTERS))
@pytest.mark.parametrize("case", SPECIAL)
def test_file_system_oddities_are_clear_errors(kind: str, case: str, tmp_path: Path) -> None:
    rel, importer, _ = FILE_IMPORTERS[kind]
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "whitespace":
        path.write_bytes(b" \n\t ")
    elif case == "huge":
        with open(path, "wb") as fh:
            fh.write(b'{"accessToken": "' + CANARY.encode() + b'", "pad": "')
            fh.write(b"x" * (importers.MAX_FILE_BYTES + 10))
            fh.write(b'"}')
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "dangling-symlink":
        path.symlink_to(tmp_path / "nowhere.json")
    elif case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        path.write_text(json.dumps({"accessToken": CANARY}))
        path.chmod(0)
    elif case == "deep-valid-prefix":
        path.write_text('{"claudeAiOauth": ' + "[" * 100_000 + json.dumps(CANARY))
    CASES["filesystem"] += 1
    got = check_import(importer, tmp_path, path)
    assert isinstance(got, importers.CredentialFileError), f"{case}: imported {got!r} instead of refusing"
    words = {"directory": "directory", "empty": "empty", "whitespace": "empty", "huge": "too large",
             "fifo": "not a regular file", "dangling-symlink": "not a regular file", "unreadable": "Cannot read",
             "deep-valid-prefix": "nested too deeply"}
    assert words[case] in str(got)


@FAST
@given(environ=st.dictionaries(
    st.sampled_from([*importers.ENV_VARS, "OTHER"]),
    st.one_of(st.text(max_size=40), tokens, st.builds(lambda a, b: a + CANARY + b, st.text(max_size=8),
                                                        st.text(max_size=8)), st.just(CANARY * 300))))
def test_env_importer_takes_a_token_or_names_the_variable(environ: dict[str, str]) -> None:
    CASES["env"] += 1
    try:
        creds = importers.import_env(environ)
    except importers.CredentialEnvError as exc:
        message = str(exc)
        assert any(name in message for name in importers.ENV_VARS), message
        assert_no_canary(message, "str(error)")
        assert_no_canary(repr(exc), "repr(error)")
        return
    for cred in creds:
        name = cred.source.removeprefix("env:")
        assert cred.access_token == environ[name].strip()
        assert cred.access_token.isascii() and cred.access_token.isprintable() and " " not in cred.access_token
        assert_no_canary(repr(cred), "repr(credential)")


@FAST
@given(claude=file_bytes(claude_code_docs), pool=file_bytes(hermes_auth_docs), pkce=file_bytes(hermes_pkce_docs),
       env=st.sampled_from([{}, {"ANTHROPIC_TOKEN": CANARY}, {"CLAUDE_CODE_OAUTH_TOKEN": f"{CANARY}\n{CANARY}"}]))
@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_discover_never_raises_and_reports_each_broken_source(scratch: Path, claude: bytes, pool: bytes,
                                                              pkce: bytes, env: dict[str, str]) -> None:
    CASES["discover"] += 1
    home = fresh_home(scratch)
    for rel, raw in ((importers.CLAUDE_CODE_FILE, claude), (importers.HERMES_AUTH_FILE, pool),
                     (importers.HERMES_PKCE_FILE, pkce)):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(raw)
    found = importers.discover(user_home=home, environ=env)
    expected_labels, expected_problems = [], 0
    for importer in (importers.import_claude_code, importers.import_hermes_pool, importers.import_hermes_pkce,
                     lambda _home: importers.import_env(env)):
        try:
            expected_labels += [c.label for c in importer(home)]
        except importers.CredentialFileError:
            expected_problems += 1
    assert found.labels() == expected_labels and len(found.problems) == expected_problems, \
        "one broken source hid another, or a problem went unreported"
    assert all(isinstance(p, importers.CredentialFileError) for p in found.problems)
    assert_no_canary(repr(found.credentials), "repr(credentials)")
    assert_no_canary(" ".join(map(str, found.problems)), "problems")


@FAST
@given(raw=file_bytes(st.one_of(any_json, st.fixed_dictionaries({}, optional={
    "access_token": maybe(tokens), "refresh_token": maybe(tokens), "label": any_json, "scopes": maybe(scopes),
    "expires_at": maybe(expiry)}))))
def test_the_kits_own_store_reads_back_or_says_the_file_is_corrupt(scratch: Path, raw: bytes) -> None:
    CASES["store"] += 1
    store = CredentialStore(fresh_home(scratch))
    store.dir.mkdir(parents=True)
    store.path("fuzzed").write_bytes(raw)
    try:
        cred = store.load("fuzzed")
    except CorruptCredential as exc:
        assert str(store.path("fuzzed")) in str(exc) and "login" in str(exc)
        assert_no_canary(str(exc), "str(error)")
        assert_no_canary(repr(exc), "repr(error)")
        return
    assert isinstance(cred, Credential) and cred.label == "fuzzed"
    assert_no_canary(repr(cred), "repr(credential)")


# ------------------------------------------------------------------------------------------------ paste and wire
@FAST
@given(piece=st.text(max_size=30), times=st.integers(1, 20_000),
       shape=st.sampled_from(["{p}", "{p}#{c}", "code={c}{p}&state=x", "https://x/cb?code={p}&state={c}"]))
def test_oversized_pastes_are_refused_without_echoing_them(piece: str, times: int, shape: str) -> None:
    CASES["paste"] += 1
    text = shape.format(p=piece * times, c=CANARY_SECRET)
    try:
        got = paste.parse_paste(text, expected_state="a-state-value-12345")
    except paste.PasteError as exc:
        assert_no_canary(str(exc), "str(error)")
        assert_no_canary(repr(exc), "repr(error)")
        assert len(str(exc)) < 1000, "the refusal repeats the paste"
        return
    assert len(text.strip()) <= paste.MAX_PASTE_CHARS and isinstance(got, paste.PastedCode)


def test_a_paste_of_many_megabytes_is_refused_quickly() -> None:
    CASES["paste"] += 1
    with pytest.raises(paste.UnrecognisedPaste, match="characters"):
        paste.parse_paste("A" * 5_000_000 + "#" + CANARY_SECRET)


def _nested(depth: int, leaf: str) -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


@settings(FAST, max_examples=examples(60))
@given(depth=st.sampled_from([1, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH + 1, 900, 3000, 200_000]),
       stream=st.booleans(), status=st.sampled_from([200, 400, 429, 500, 529]),
       ctype=st.sampled_from(["application/json", "text/event-stream", "text/plain", ""]),
       extra_headers=st.integers(0, 2000), header_size=st.sampled_from([0, 10, 100_000]))
def test_deep_or_oversized_responses_become_observations(depth: int, stream: bool, status: int, ctype: str,
                                                         extra_headers: int, header_size: int) -> None:
    CASES["wire"] += 1
    redact.register_secret(CANARY_SECRET)  # prefix-less: masked because the kit knows it, as for any secret it holds
    leaf = json.dumps({"type": "error", "error": {"type": "x", "message": CANARY}})
    body = _nested(depth, leaf)
    if stream:
        body = b"event: message_start\ndata: " + body + b"\n\nevent: error\ndata: " + body + b"\n\n"
    headers = {"content-type": ctype, "x-echo": CANARY, "x-big": "v" * header_size}
    headers.update({f"x-h{i}": CANARY_SECRET[: i % 40] for i in range(extra_headers)})
    obs = observe_response(status, headers, body, 1.0)
    assert isinstance(obs, Observation) and obs.status == status
    text = json.dumps(obs.to_dict())  # the run store's serialisation must cope too
    if status >= 400:
        assert obs.error_type
    if depth > MAX_JSON_DEPTH and "json" in ctype:
        assert obs.error_type == "malformed_response"
    assert CANARY_SECRET not in text and CANARY_SECRET not in repr(obs)


def test_a_response_body_of_many_megabytes_is_kept_short() -> None:
    CASES["wire"] += 1
    body = b"<html>" + CANARY.encode() + b"x" * 8_000_000
    obs = observe_response(502, {"content-type": "text/html"}, body, 1.0)
    assert obs.error_type and len(json.dumps(obs.to_dict())) < 20_000
    assert_no_canary(json.dumps(obs.to_dict()), "observation")


# ------------------------------------------------------------------------------------------------ the audit figure
@pytest.fixture(scope="module", autouse=True)
def record_fuzz_cases() -> Iterator[None]:
    """After the module: write how many examples actually ran (``fuzz_cases``) for ``python -m lanelab audit``."""
    yield
    total = sum(CASES.values())
    if total:
        audit.record("fuzz", fuzz_cases=total, detail=dict(sorted(CASES.items())))
