"""The credential record, the kit's store (0600 files, atomic writes, labels, old files), resolving a label, and
the issuer rule: where each credential may be sent, and the default label per mode."""

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import stat
import subprocess
from pathlib import Path

import disk_faults
import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.auth import credential as C
from lanelab.auth import issuer as I
from lanelab.auth.resolve import available, resolve_credential, resolve_token
from lanelab.auth.store import CorruptCredential, CredentialNotFound, CredentialStore, StoreNotWritable
from lanelab.config import Settings
from lanelab.errors import InputError, Refused

ACCESS = "sk-ant-oat01-" + "a1B2" * 20
REFRESH = "sk-ant-ort01-" + "z9Y8" * 20
SIM = "http://127.0.0.1:5555"
LIVE_TOKEN_HOST = "https://platform.claude.com"
API = "https://api.anthropic.com"
ROOT = Path(__file__).resolve().parents[1]


def cred(label="sim-pkce", **kw):
    base = {"label": label, "access_token": ACCESS, "refresh_token": REFRESH, "expires_at": 2_000_000_000.0,
            "scopes": ("user:inference", "user:profile"), "email": "someone@example.com", "mode": "sim",
            "issuer": SIM}
    base.update(kw)
    return C.Credential(**base)


def live(label="live-pkce", **kw):
    return cred(label, **{"mode": "live", "issuer": LIVE_TOKEN_HOST, **kw})


# ---------------------------------------------------------------------------------------------------------------
# The record

def test_repr_hides_secrets_and_names_the_issuer():
    c = cred()
    for text in (repr(c), str(c), f"{c}"):
        assert ACCESS not in text and REFRESH not in text and "someone@" not in text
        assert f"issued by sim {SIM}" in text
    assert "sk-ant-oat01-…" in repr(c) and ACCESS[-4:] in repr(c)


@pytest.mark.parametrize("kw,mode,text", [
    ({}, "sim", f"sim {SIM}"),
    ({"mode": "live", "issuer": LIVE_TOKEN_HOST}, "live", f"live {LIVE_TOKEN_HOST}"),
    ({"mode": None, "issuer": None}, None, "unknown"),
    ({"mode": "bogus"}, None, "unknown"),
    ({"imported": True, "source": "claude_code", "mode": None, "issuer": None}, "live",
     "live (imported from claude_code)"),
    ({"imported": True, "source": "claude_code"}, "live", "live (imported from claude_code)"),  # imported wins
])
def test_issuer_mode_and_text(kw, mode, text):
    c = cred(**kw)
    assert (c.issuer_mode, c.issued_by) == (mode, text)


def test_expiry():
    c = cred(expires_at=1000.0)
    assert c.expires_in(now=400.0) == 600.0 and c.expires_in(now=1000.0) == 0
    assert cred(expires_at=None).expires_in() is None


@pytest.mark.parametrize("label", ["", "../x", "a/b", ".hidden", "a b", "a..b", "-x", None, 5])
def test_bad_labels_are_refused(tmp_path, label):
    with pytest.raises(C.InvalidLabel) as info:
        C.validate_label(label)
    said = "not a valid credential label" if isinstance(label, str) else f"is text; found {type(label).__name__}"
    assert said in str(info.value) and "letters, digits" in str(info.value)
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize("label", ["x" * 65, "sk-ant-oat01-" + "Pq4" * 30, "sk-ant-api03-short"])
def test_a_token_given_as_a_label_is_refused_without_being_quoted_and_is_masked_from_then_on(label):
    with pytest.raises(C.InvalidLabel) as info:
        C.validate_label(label)
    assert "looks like a token" in str(info.value) and "Save it first" in str(info.value)
    assert label[-6:] not in str(info.value)  # not even its tail
    assert redact.redact_text(f"x {label} y") != f"x {label} y"


# ---------------------------------------------------------------------------------------------------------------
# The store

def test_save_load_round_trip_with_mode_0600(tmp_path):
    store = CredentialStore(tmp_path)
    path = store.save(cred())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    back = store.load("sim-pkce")
    assert back.to_dict() == cred().to_dict()
    assert (back.mode, back.issuer) == ("sim", SIM)
    assert json.loads(path.read_text())["issuer"] == SIM
    assert store.labels() == ["sim-pkce"]


def test_files_written_before_the_issuer_was_recorded_still_load_as_unknown(tmp_path):
    store = CredentialStore(tmp_path)
    old = {k: v for k, v in cred().to_dict().items() if k not in ("mode", "issuer")}
    store.dir.mkdir(parents=True)
    store.path("old").write_text(json.dumps(old))
    back = store.load("old")
    assert (back.mode, back.issuer, back.issuer_mode, back.issued_by) == (None, None, None, "unknown")
    assert back.access_token == ACCESS


@pytest.mark.parametrize("field,value", [("mode", "prod"), ("mode", 1), ("issuer", ["x"])])
def test_a_damaged_issuer_field_is_a_corrupt_file(tmp_path, field, value):
    store = CredentialStore(tmp_path)
    path = store.save(cred())
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptCredential, match="cannot be read"):
        store.load("sim-pkce")


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    store = CredentialStore(tmp_path)
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


@pytest.mark.parametrize("kind,reason", [("full", "ENOSPC"), ("read-only", "EROFS")])
def test_a_full_or_read_only_store_is_found_out_before_anything_is_spent(tmp_path, monkeypatch, kind, reason):
    """check_writable is what every single-use spend calls first; save fails the same way, clearly, an OSError
    still, and leaves the previous file and no temp file behind."""
    store = CredentialStore(tmp_path / "home")
    store.check_writable()  # a writable store: passes, and leaves nothing behind
    assert list(store.dir.iterdir()) == []
    store.save(cred())
    fault = disk_faults.inject(monkeypatch, tmp_path / "home", kind)
    with pytest.raises(StoreNotWritable) as info:
        store.check_writable()
    text = str(info.value)
    assert reason in text and str(store.dir) in text and "nothing was sent" in text and fault.hits
    with pytest.raises(OSError, match=reason) as saving:
        store.save(cred(access_token="sk-ant-oat01-" + "n" * 40))
    assert isinstance(saving.value, StoreNotWritable) and info.value.reason and info.value.folder == store.dir
    fault.active = False
    assert store.load("sim-pkce").access_token == ACCESS
    assert [p.name for p in store.dir.iterdir()] == ["sim-pkce.json"]
    store.check_writable()


def test_a_store_folder_that_cannot_be_created_is_not_writable(tmp_path, monkeypatch):
    disk_faults.inject(monkeypatch, tmp_path / "home", "read-only")
    with pytest.raises(StoreNotWritable, match="EROFS"):
        CredentialStore(tmp_path / "home").check_writable()
    assert not (tmp_path / "home").exists()


@contextlib.contextmanager
def tiny_tmpfs(where: Path):
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                                           capture_output=True, check=False).returncode:
        pytest.skip("mounting a tmpfs is not allowed here; the injected faults above cover the same paths")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_full_then_read_only_file_system(tmp_path):
    """The same, on a real file system (when this machine lets the tests mount one): a 64 KiB tmpfs filled up,
    then remounted read-only."""
    with tiny_tmpfs(tmp_path / "mnt") as mnt:
        store = CredentialStore(mnt / "home")
        store.save(cred())
        with contextlib.suppress(OSError), (mnt / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        with pytest.raises(StoreNotWritable, match="ENOSPC"):
            store.check_writable()
        with pytest.raises(StoreNotWritable, match="ENOSPC"):
            store.save(cred(access_token="sk-ant-oat01-" + "n" * 40))
        assert store.load("sim-pkce").access_token == ACCESS
        (mnt / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(StoreNotWritable, match="EROFS"):
            store.check_writable()
        assert store.load("sim-pkce").access_token == ACCESS
        assert sorted(p.name for p in store.dir.iterdir()) == ["sim-pkce.json"]


def test_save_under_new_label(tmp_path):
    store = CredentialStore(tmp_path)
    store.save(cred(), label="other")
    assert store.labels() == ["other"] and store.load("other").label == "other"


@pytest.mark.parametrize("label", ["", "../x", "a/b", ".hidden", "x" * 65, "a b", "a..b", "-x"])
def test_the_store_refuses_bad_labels_and_writes_nothing(tmp_path, label):
    with pytest.raises(C.InvalidLabel):
        CredentialStore(tmp_path).save(cred(label=label))
    assert not (tmp_path / "credentials").exists() or list((tmp_path / "credentials").iterdir()) == []


@given(st.from_regex(C.LABEL_RE, fullmatch=True).filter(lambda s: ".." not in s))
@settings(max_examples=examples(50))
def test_valid_labels_map_to_one_file_inside_the_store(label):
    store = CredentialStore("/nonexistent/home")
    assert store.path(label).parent == store.dir and store.path(label).name == f"{label}.json"


def test_missing_label_error_names_alternatives(tmp_path):
    store = CredentialStore(tmp_path)
    store.save(cred(label="mine"))
    with pytest.raises(CredentialNotFound, match="mine"):
        store.load("nope")


def test_corrupt_file_is_a_clear_error_without_secrets(tmp_path):
    store = CredentialStore(tmp_path)
    store.save(cred())
    store.path("sim-pkce").write_text('{"access_token": 5, "refresh_token": "' + REFRESH + '"')
    with pytest.raises(CorruptCredential) as info:
        store.load("sim-pkce")
    assert REFRESH not in str(info.value) and "login" in str(info.value)
    assert store.all() == []


# ---------------------------------------------------------------------------------------------------------------
# Resolving a label: the store first, then the importers

def test_resolve_prefers_store_then_importers(tmp_path):
    settings = Settings(home=tmp_path / "home")
    CredentialStore(settings.home).save(cred(label="mine"))
    env = {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-" + "e" * 40}
    assert resolve_token("mine", settings, user_home=tmp_path, environ=env) == ACCESS
    imported = resolve_credential("env-CLAUDE_CODE_OAUTH_TOKEN", settings, user_home=tmp_path, environ=env)
    assert imported.access_token == env["CLAUDE_CODE_OAUTH_TOKEN"]
    assert imported.imported and imported.issuer_mode == "live"
    with pytest.raises(CredentialNotFound) as info:
        resolve_token("absent", settings, user_home=tmp_path, environ=env)
    msg = str(info.value)
    assert "mine" in msg and "env-CLAUDE_CODE_OAUTH_TOKEN" in msg and "e" * 40 not in msg


def test_a_saved_label_shadows_an_imported_one(tmp_path):
    settings = Settings(home=tmp_path / "home")
    CredentialStore(settings.home).save(cred(label="env-ANTHROPIC_TOKEN"))
    env = {"ANTHROPIC_TOKEN": "sk-ant-oat01-" + "f" * 40}
    got = resolve_credential("env-ANTHROPIC_TOKEN", settings, user_home=tmp_path, environ=env)
    assert got.access_token == ACCESS and not got.imported


def test_available_lists_saved_then_imported_and_reports_damaged_files(tmp_path):
    settings = Settings(home=tmp_path / "home")
    store = CredentialStore(settings.home)
    store.save(cred(label="b"))
    store.save(cred(label="a"))
    store.save(cred(label="broken"))
    store.path("broken").write_text("{")
    found = available(settings, user_home=tmp_path, environ={"ANTHROPIC_TOKEN": "sk-ant-oat01-" + "g" * 40})
    assert [c.label for c in found.saved] == ["a", "b"]
    assert [c.label for c in found.imported] == ["env-ANTHROPIC_TOKEN"]
    assert len(found.problems) == 1 and "broken.json" in found.problems[0]


# ---------------------------------------------------------------------------------------------------------------
# The issuer rule

def test_default_label_per_mode():
    assert (I.default_label("sim"), I.default_label("live")) == ("sim-pkce", "live-pkce")
    with pytest.raises(InputError, match="LANELAB_MODE"):
        I.default_label("prod")


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:5555/", SIM),
    ("HTTP://127.0.0.1:5555/v1/messages?x=1", SIM),
    ("https://API.anthropic.com:443/", API),
    ("http://localhost:80", "http://localhost"),
    ("http://[::1]:8080/x", "http://[::1]:8080"),
    ("ftp://127.0.0.1/", None),
    ("127.0.0.1:5555", None),
    ("http://127.0.0.1:99999", None),
    ("", None),
    (None, None),
])
def test_origin(url, expected):
    assert I.origin(url) == expected


@pytest.mark.parametrize("token_url,expected", [
    (SIM + "/v1/oauth/token", ("sim", SIM)),
    ("http://localhost:7000/v1/oauth/token", ("sim", "http://localhost:7000")),
    ("https://platform.claude.com/v1/oauth/token", ("live", LIVE_TOKEN_HOST)),
    ("https://console.anthropic.com/v1/oauth/token", ("live", "https://console.anthropic.com")),
    # decided by the name, never by where it resolves: the rehearsal maps this name to loopback
    ("https://127.0.0.1.nip.io/v1/oauth/token", ("live", "https://127.0.0.1.nip.io")),
])
def test_issued_by_reads_the_token_url(token_url, expected):
    assert I.issued_by(token_url) == expected


def test_issued_by_refuses_a_non_url():
    with pytest.raises(InputError):
        I.issued_by("not a url")


ALLOWED = [
    (cred(), SIM),
    (cred(), SIM + "/"),
    (cred(), SIM + "/v1/messages"),
    (cred(issuer=SIM + "/"), "HTTP://127.0.0.1:5555"),
    (live(), API),
    (live(), API + "/v1/messages"),
    (live(issuer="https://console.anthropic.com"), API),
    (cred(label="claude-code", imported=True, source="claude_code", mode="live", issuer=None), API),
    (cred(label="env-X", imported=True, source="env:X", mode=None, issuer=None), API),
]


@pytest.mark.parametrize("c,url", ALLOWED, ids=[f"{c.label}->{u}" for c, u in ALLOWED])
def test_allowed_destinations(c, url):
    assert I.check_destination(c, url) is c


REFUSED = [
    # a simulator credential never reaches the live API, nor another simulator
    (cred(), API, ["was issued by the simulator at " + SIM, "cannot be sent to api.anthropic.com",
                   "LANELAB_MODE=live LANELAB_LIVE_OPT_IN=1 python -m lanelab login --label live-pkce"]),
    (cred(), "http://127.0.0.1:6666", ["cannot be sent to http://127.0.0.1:6666", "only the tokens it issued",
                                       "LANELAB_BASE_URL=http://127.0.0.1:6666 python -m lanelab login --auto"]),
    (cred(), "https://127.0.0.1:5555", ["cannot be sent to https://127.0.0.1:5555"]),
    (cred(), "http://localhost:5555", ["cannot be sent to http://localhost:5555"]),
    (cred(issuer=None), SIM, ["does not record who issued it", "python -m lanelab login --auto --label sim-pkce"]),
    # a sim credential whose recorded issuer is not loopback is still kept off every real host
    (cred(issuer=API), API, ["cannot be sent to api.anthropic.com"]),
    # a live credential never reaches the simulator or a non-API host
    (live(), SIM, ["was issued by Anthropic (https://platform.claude.com)", "not Anthropic's API",
                   f"LANELAB_BASE_URL={SIM} python -m lanelab login --auto --label sim-pkce"]),
    (live(), "https://claude.ai", ["only to Anthropic's API (https://api.anthropic.com), not to claude.ai"]),
    (live(), "http://api.anthropic.com", ["not to http://api.anthropic.com", "Use the base URL"]),
    (live(), "https://api.anthropic.com.evil.example", ["not to api.anthropic.com.evil.example"]),
    # an imported credential counts as live, whatever it claims
    (cred(label="claude-code", imported=True, source="claude_code"), SIM,
     ["imported from another client (claude_code)", "counts as a live credential", "not Anthropic's API"]),
    # unknown issuer: nowhere, with the way to fix it for that destination
    (cred(mode=None, issuer=None), API, ["does not record who issued it",
                                         "LANELAB_MODE=live LANELAB_LIVE_OPT_IN=1 python -m lanelab login"]),
    (cred(mode=None, issuer=None), SIM, ["does not record who issued it", "login --auto --label sim-pkce"]),
    (cred(), "ftp://127.0.0.1:5555", ["is not an http(s) base URL"]),
    (live(), "api.anthropic.com", ["is not an http(s) base URL"]),
]


@pytest.mark.parametrize("c,url,says", REFUSED, ids=[f"{i}-{c.label}->{u}" for i, (c, u, _) in enumerate(REFUSED)])
def test_refused_destinations_say_why_and_what_to_do(c, url, says):
    with pytest.raises(I.WrongIssuer) as info:
        I.check_destination(c, url)
    assert isinstance(info.value, Refused) and isinstance(info.value, PermissionError)
    msg = str(info.value)
    assert repr(c.label) in msg
    for part in says:
        assert part in msg
    assert ACCESS not in msg and REFRESH not in msg and ACCESS[13:30] not in msg


def test_the_refusal_names_a_credential_that_may_go_there():
    others = [cred(label="old-sim", issuer="http://127.0.0.1:1"), live(), cred(label="sim-here", issuer=SIM)]
    with pytest.raises(I.WrongIssuer) as info:
        I.check_destination(cred(label="sim-pkce", issuer="http://127.0.0.1:2"), SIM, others=others)
    msg = str(info.value)
    assert "Use 'sim-here' there instead" in msg and "old-sim" not in msg
    with pytest.raises(I.WrongIssuer, match="Use 'live-pkce' there instead"):
        I.check_destination(cred(), API, others=others)
    with pytest.raises(I.WrongIssuer, match="Log in for live mode"):
        I.check_destination(cred(), API, others=[cred(label="other-sim")])


@given(port=st.integers(1, 65535), other=st.integers(1, 65535),
       host=st.sampled_from(["127.0.0.1", "localhost", "127.0.0.2", "[::1]"]))
@settings(max_examples=examples(100))
def test_a_sim_credential_goes_exactly_to_its_own_simulator(port, other, host):
    c = cred(issuer=f"http://{host}:{port}")
    assert I.check_destination(c, f"http://{host}:{port}/v1") is c
    for url in (f"http://{host}:{other}", API, f"https://{host}:{port}"):
        if I.origin(url) == I.origin(c.issuer):
            continue
        with pytest.raises(I.WrongIssuer):
            I.check_destination(c, url)


@given(st.text(max_size=60))
@settings(max_examples=examples(200))
def test_any_base_url_is_allowed_or_refused_with_wrong_issuer(url):
    for c in (cred(), live(), cred(mode=None, issuer=None)):
        try:
            I.check_destination(c, url)
        except I.WrongIssuer as exc:
            assert repr(c.label) in str(exc)
        else:
            assert I.origin(url) in (SIM, API)


def test_a_login_records_its_issuer_end_to_end(sim, tmp_path):
    """The simulator's login stamps (sim, its base URL); that credential goes to it and is refused for the live API."""
    from lanelab.auth.flow import LoginFlow

    settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home")
    flow = LoginFlow(settings)
    flow.start()
    assert flow.submit(flow.headless_paste(auto=True)), flow.error
    flow.save()
    saved = CredentialStore(settings.home).load("sim-pkce")
    assert (saved.label, saved.mode, saved.issuer) == ("sim-pkce", "sim", I.origin(sim.base_url))
    assert I.check_destination(saved, sim.base_url) is saved
    with pytest.raises(I.WrongIssuer, match="cannot be sent to api.anthropic.com"):
        I.check_destination(saved, API)


# ---------------------------------------------------------------------------------------------------------------
# Layout: one module per concept, no cycle, and every import of an auth name resolves

AUTH = ROOT / "lib" / "lanelab" / "auth"


def _auth_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "lanelab.auth":
                out |= {f"lanelab.auth.{a.name}" for a in node.names}
            elif node.module.startswith("lanelab.auth."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("lanelab.auth.")}
    return out


def test_auth_modules_import_each_other_without_a_cycle():
    graph = {p.stem: {m.rsplit(".", 1)[1] for m in _auth_imports(p)} for p in AUTH.glob("*.py")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    assert "importers" not in graph["credential"] and "credential" in graph["importers"]


@pytest.mark.slow  # parses every Python file of the repository (seconds); the imports themselves run in every test
def test_every_import_of_an_auth_name_resolves():
    """Lazy imports inside functions too: a name moved between auth modules must not break a call site."""
    files = [*ROOT.glob("lib/**/*.py"), *ROOT.glob("notebooks/*.py"), *ROOT.glob("tests/**/*.py"),
             *ROOT.glob("bench/**/*.py")]
    checked = 0
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lanelab.auth"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(
                        f"{node.module}.{alias.name}") is not None, f"{path}: {node.module}.{alias.name}"
                    checked += 1
    assert checked > 20


def test_every_auth_and_wire_module_declares_its_public_names():
    for path in [*AUTH.glob("*.py"), *AUTH.parent.joinpath("wire").glob("*.py")]:
        if path.stem in ("__init__", "pkce"):
            continue
        module = importlib.import_module(f"lanelab.{path.parent.name}.{path.stem}")
        assert isinstance(module.__all__, list) and module.__all__, path
        for name in module.__all__:
            assert hasattr(module, name), f"{path.stem}.__all__ names {name}, which it does not define"


def test_resolving_a_label_that_is_no_text_or_is_a_token_is_refused_unquoted(tmp_path):
    settings = Settings(mode="sim", home=tmp_path / "home", out=tmp_path / "out")
    with pytest.raises(C.InvalidLabel, match="is text; found NoneType"):
        resolve_credential(None, settings)  # type: ignore[arg-type]
    with pytest.raises(C.InvalidLabel, match="looks like a token") as caught:
        resolve_credential(ACCESS, settings)
    assert ACCESS[-8:] not in str(caught.value)
