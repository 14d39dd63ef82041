"""The real-client capture recipe (tools/capture_profiles.py) and what it relies on, offline.

The attestation marker replaces a billing attestation block wherever the kit would record one (capture file,
profile); a profile keeps the marker in place and loads for sending without it; the capture proxy serves TLS under
the real host name with a test CA; the script's own parts (the clients it knows, the stored-capture trimming, its
refusal of a scratch folder inside the repo) behave; and, where a private network namespace can be made, the whole
recipe runs end to end with a stand-in client (the Anthropic Python SDK with no base URL change).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from lanelab import redact
from lanelab.config import repo_root
from lanelab.errors import UserError
from lanelab.matrix.from_capture import CaptureInfo, load_request, profile_from_capture
from lanelab.matrix.profiles import load_profile
from lanelab.serve import TLS
from lanelab.walkthrough.capture import running_capture
from lanelab.wire.attestation import (
    ATTESTATION_MARKER,
    carries_attestation,
    holds_attestation_value,
    is_attestation,
    is_marker,
    mark_attestation,
    without_attestation,
)
from lanelab.wire.exchanges import inference_exchange, load_exchanges
from lanelab.wire.spec import RequestSpec, build_request

SCRIPT = repo_root() / "tools" / "capture_profiles.py"
# Built from pieces so that no file of the repo holds an attestation value.
PREFIX = "x-anthropic-billing-header:"
VALUE = PREFIX + " cc_" + "version=9.9.9.abc; cc_entrypoint=sdk-cli; " + "cch" + "=f00d;"


def _script():
    spec = importlib.util.spec_from_file_location("capture_profiles", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["capture_profiles"] = module
    spec.loader.exec_module(module)
    return module


# --- the marker ---------------------------------------------------------------------------------------------------


def test_mark_attestation_replaces_every_value_and_keeps_the_rest() -> None:
    body = {"system": [{"type": "text", "text": VALUE, "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Be kind."}],
            "note": "first line\n" + VALUE.upper() + "\nlast line"}
    headers = [["x-anthropic-billing-header", "cc_" + "version=1"], ["x-app", "cli"]]
    marked = mark_attestation({"body": body, "headers": headers})
    assert marked["body"]["system"][0] == {"type": "text", "text": ATTESTATION_MARKER,
                                           "cache_control": {"type": "ephemeral"}}
    assert marked["body"]["system"][1] == {"type": "text", "text": "Be kind."}
    assert marked["body"]["note"] == f"first line\n{ATTESTATION_MARKER}\nlast line"
    assert marked["headers"] == [["x-anthropic-billing-header", ATTESTATION_MARKER], ["x-app", "cli"]]
    assert body["system"][0]["text"] == VALUE, "mark_attestation mutated its input"
    assert mark_attestation(marked) == marked
    text = json.dumps(marked)
    assert "cc_" + "version" not in text and not holds_attestation_value(text)
    assert holds_attestation_value(json.dumps(body)) and holds_attestation_value("X-Anthropic-Billing-Header: x")
    # detection still sees the marker, so diffs and lints report that the client sends a block
    assert is_attestation(marked["body"]["system"][0]) and is_marker(marked["body"]["system"][0])
    assert not is_marker({"type": "text", "text": VALUE})


def test_without_attestation_keeps_the_rest_of_a_string_system_prompt() -> None:
    spec = RequestSpec(body={"system": f"{ATTESTATION_MARKER}\nYou are helpful.", "messages": []})
    out, had = without_attestation(spec)
    assert had and out.body["system"] == "You are helpful."
    out, had = without_attestation(RequestSpec(body={"system": [{"type": "text", "text": "a"}], "messages": []}))
    assert not had and out.body["system"] == [{"type": "text", "text": "a"}]


# --- capture, convert, load -----------------------------------------------------------------------------------------


def _attested_body() -> dict:
    return {"model": "claude-sonnet-4-6", "max_tokens": 5, "stream": False,
            "system": [{"type": "text", "text": VALUE}, {"type": "text", "text": "You are Claude Code."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "ping"}]}]}


def test_the_capture_file_and_the_profile_hold_the_marker_not_the_value(tmp_path, monkeypatch, sim) -> None:
    out = tmp_path / "cap.jsonl"
    with running_capture(sim.base_url, out) as proxy:
        token = sim.mint_token()["access_token"]
        headers = [("authorization", f"Bearer {token}"), ("user-agent", "first/1.0"), ("x-app", "cli"),
                   ("user-agent", "second/2.0"), ("anthropic-version", "2023-06-01"),
                   ("anthropic-beta", "oauth-2025-04-20")]
        httpx.post(proxy.base_url + "/v1/models", headers={"authorization": f"Bearer {token}"})
        response = httpx.post(proxy.base_url + "/v1/messages", content=json.dumps(_attested_body()).encode(),
                              headers=headers + [("content-type", "application/json")])
        assert response.status_code in (200, 400)
    text = out.read_text()
    assert ATTESTATION_MARKER in text and not holds_attestation_value(text) and token not in text
    info = CaptureInfo(client="stand-in", package="test", version="1.0", date="2026-11-30",
                       command="stand-in ping", method="unit test", capture_file="data/captures/cap.jsonl")
    path = profile_from_capture(out, "stand-in-1.0", prompt=None, index=0, info=info, out_dir=tmp_path / "profiles")
    toml = path.read_text()
    assert not holds_attestation_value(toml) and toml.count(ATTESTATION_MARKER) == 2  # system[0] and [attestation]
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path))
    profile = load_profile("stand-in-1.0")
    assert profile.attestation_positions == (0,) and not carries_attestation(profile.spec)
    assert profile.spec.body["system"] == [{"type": "text", "text": "You are Claude Code."}]
    captured = profile.as_captured()
    assert carries_attestation(captured) and is_marker(captured.body["system"][0])
    assert any("for the request without the block" in c for c in profile.caveats)
    assert PREFIX not in build_request(profile.spec, "http://127.0.0.1:9", "tok").content.decode()
    # the [capture] table: how, and what a spec cannot hold
    cap = profile.capture
    assert (cap["client"], cap["version"], cap["date"], cap["command"]) == ("stand-in", "1.0", "2026-11-30",
                                                                           "stand-in ping")
    assert cap["repeated_headers"] == {"user-agent": ["first/1.0", "second/2.0"]}
    assert profile.spec.headers["user-agent"] == "second/2.0"
    assert cap["header_order"].index("x-app") < cap["header_order"].index("anthropic-version")
    assert cap["body_key_order"] == list(_attested_body())
    assert list(profile.spec.body) == list(captured.body) == list(_attested_body())
    assert [o.split(" (")[0] for o in cap["other_requests"]] == ["#1 POST /v1/models"]
    assert any("user-agent 2 times" in c for c in profile.caveats)
    # load_request: sendable by default, as captured (marker) on request, never the value
    _, sendable = load_request(str(path))
    _, as_sent = load_request(str(path), as_captured=True)
    assert not carries_attestation(sendable) and is_marker(as_sent.body["system"][0])
    _, from_capture = load_request(str(out), as_captured=True)
    assert is_marker(from_capture.body["system"][0])


def test_the_profile_keeps_the_captured_body_key_order(tmp_path, monkeypatch, sim) -> None:
    out = tmp_path / "cap.jsonl"
    body = {"stream": False, "messages": [{"role": "user", "content": "ping"}], "model": "m", "max_tokens": 3}
    with running_capture(sim.base_url, out) as proxy:
        httpx.post(proxy.base_url + "/v1/messages", content=json.dumps(body).encode(),
                   headers={"authorization": f"Bearer {sim.mint_token()['access_token']}"})
    info = CaptureInfo(client="c", package="p", version="1", date="2026-11-30", command="c", method="m")
    profile_from_capture(out, "c-1", prompt=None, info=info, out_dir=tmp_path / "profiles")
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path))
    spec = load_profile("c-1").spec
    assert list(spec.body) == list(body)  # the TOML writer puts arrays of tables last; the loader restores order
    assert json.loads(build_request(spec, "http://127.0.0.1:9", "t").content) == body


def test_the_proxy_serves_tls_under_the_real_host_name(tmp_path, sim) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("api.anthropic.com")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    out = tmp_path / "tls.jsonl"
    with running_capture(sim.base_url, out, tls=TLS(certfile, keyfile, "api.anthropic.com")) as proxy:
        assert proxy.base_url.startswith("https://api.anthropic.com:")
        port = proxy.base_url.rsplit(":", 1)[1]
        token = sim.mint_token()["access_token"]
        # connect to loopback, but verify the certificate for and send the real host name
        with httpx.Client(verify=context, trust_env=False) as client:
            response = client.post(f"https://127.0.0.1:{port}/v1/messages",
                                   json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                                         "messages": [{"role": "user", "content": "ping"}]},
                                   headers={"host": "api.anthropic.com", "authorization": f"Bearer {token}",
                                            "anthropic-beta": "oauth-2025-04-20"},
                                   extensions={"sni_hostname": "api.anthropic.com"})
        assert response.status_code in (200, 400)
        with httpx.Client(trust_env=False) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get(f"https://127.0.0.1:{port}/v1/models", extensions={"sni_hostname": "api.anthropic.com"})
    exchange = inference_exchange(load_exchanges(out))
    assert ["host", "api.anthropic.com"] in exchange["request"]["headers"]
    assert token not in out.read_text()


# --- the script's own parts ---------------------------------------------------------------------------------------


def test_the_script_knows_the_four_clients() -> None:
    mod = _script()
    assert set(mod.CLIENTS) >= {"pi", "openclaw", "hermes", "claude-code"}
    assert (mod.CLIENTS["pi"].registry, mod.CLIENTS["pi"].package) == ("npm", "@mariozechner/pi-coding-agent")
    assert (mod.CLIENTS["hermes"].registry, mod.CLIENTS["hermes"].extra) == ("pypi", "anthropic")
    assert mod.CLIENTS["openclaw"].package == "openclaw"
    assert mod.CLIENTS["claude-code"].reference_only
    assert not any(c.reference_only for n, c in mod.CLIENTS.items() if n != "claude-code")
    run = mod.CLIENTS["pi"].make_run(mod.CLIENTS["pi"], Path("/x"), Path("/h"), "sk-ant-oat01-" + "T" * 40)
    assert "<simulator token>" in run.display and "sk-ant" not in run.display


def test_stored_capture_leaves_out_large_non_inference_bodies() -> None:
    mod = _script()
    big = {"record": "exchange", "seq": 2, "request": {"method": "POST", "path": "/api/event_logging/v2/batch",
                                                       "body": {"bytes": 100_000, "sha256": "ab", "json": {"e": 1}}}}
    small = {"record": "exchange", "seq": 3, "request": {"method": "POST", "path": "/api/eval/x",
                                                         "body": {"bytes": 10, "sha256": "cd", "json": {"k": 1}}}}
    inference = {"record": "exchange", "seq": 4, "request": {"method": "POST", "path": "/v1/messages",
                                                             "body": {"bytes": 100_000, "json": {"model": "m"}}}}
    lines = mod.stored_capture("\n".join(json.dumps(r) for r in ({"record": "capture"}, big, small, inference)))
    kept = [json.loads(line) for line in lines.splitlines()]
    assert "json" not in kept[1]["request"]["body"] and kept[1]["request"]["body"]["bytes"] == 100_000
    assert "left_out" in kept[1]["request"]["body"]
    assert kept[2] == small and kept[3] == inference


def test_the_script_refuses_a_scratch_folder_inside_the_repo(capsys) -> None:
    mod = _script()
    assert mod.main(["--clients-dir", str(repo_root() / "clients"), "--no-install"]) == 2
    assert "inside the repository" in capsys.readouterr().out
    assert not (repo_root() / "clients").exists()
    assert mod.main(["--clients", "no-such-client", "--clients-dir", "/tmp/x", "--no-install"]) == 2


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "ip", "mount")):
        return False
    try:
        done = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


STAND_IN = textwrap.dedent('''
    import importlib.util, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("capture_profiles", {script!r})
    mod = importlib.util.module_from_spec(spec); sys.modules["capture_profiles"] = mod; spec.loader.exec_module(mod)
    CODE = ("import anthropic; c = anthropic.Anthropic(max_retries=0, "
            "default_headers={{'anthropic-beta': 'oauth-2025-04-20'}}); "
            "c.messages.create(model='claude-sonnet-4-6', max_tokens=1, "
            "system=[{{'type': 'text', 'text': 'x-anthropic-billing-header: ' + 'cc_' + 'version=1.2.3;'}}], "
            "messages=[{{'role': 'user', 'content': 'ping'}}])")
    class StandIn(mod.Client):
        def installed_version(self, clients_dir):
            return "0.0.1"
    def make_run(client, clients_dir, home, token):
        return mod.Run([sys.executable, "-c", CODE], {{"ANTHROPIC_AUTH_TOKEN": token}},
                       display="ANTHROPIC_AUTH_TOKEN=<simulator token> python -c '<the SDK, no base URL>'")
    client = StandIn("stand-in", "pypi", "anthropic", "PyPI anthropic (a stand-in client)", make_run, runtime="test")
    failed = mod.run_captures([client], Path({tmp!r}), "2026-11-30", data_root=Path({tmp!r}) / "data",
                              work=Path({tmp!r}) / "work")
    sys.exit(1 if failed else 0)
''')


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="needs root and a private network namespace (unshare --net --mount)")
def test_the_recipe_end_to_end_with_a_stand_in_client(tmp_path, monkeypatch) -> None:
    code = STAND_IN.format(script=str(SCRIPT), tmp=str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(repo_root() / "lib")}
    done = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "--", sys.executable, "-c",
                           code], capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, redact.redact_text(done.stdout + done.stderr)[-3000:]
    capture = (tmp_path / "data" / "captures" / "stand-in-0.0.1.jsonl").read_text()
    assert not holds_attestation_value(capture) and ATTESTATION_MARKER in capture
    exchange = inference_exchange(load_exchanges(tmp_path / "data" / "captures" / "stand-in-0.0.1.jsonl"))
    headers = {k.lower(): v for k, v in exchange["request"]["headers"]}
    assert headers["host"] == "api.anthropic.com"  # no base URL was changed: the SDK's default host, via the proxy
    assert headers["user-agent"].startswith("Anthropic/Python") and headers["authorization"].startswith("Bearer")
    assert exchange["response"]["status"] in (200, 400)
    monkeypatch.setenv("LANELAB_DATA", str(tmp_path / "data"))
    profile = load_profile("stand-in-0.0.1")
    assert profile.capture["version"] == "0.0.1" and profile.capture["date"] == "2026-11-30"
    assert profile.capture["command"].startswith("ANTHROPIC_AUTH_TOKEN=<simulator token>")
    assert "network namespace" in profile.capture["method"] and profile.capture["client_status"] == "exit 0"
    assert profile.attestation_positions == (0,) and not carries_attestation(profile.spec)
    assert not (tmp_path / "work").exists(), "the scratch folder was not removed"


def test_a_torn_last_line_of_a_capture_is_said_wherever_the_capture_is_read(tmp_path, sim) -> None:
    """A capture cut by an interrupted write: its last exchange is a torn line. The reader says it left that line
    out (the request picked is "the only complete" one), lint says why there is nothing when only that line holds a
    request, and an index out of range is one sentence with the range."""
    from lanelab.matrix.from_capture import pick_request
    from lanelab.walkthrough.lint import LintInputError, lint_file

    out = tmp_path / "cap.jsonl"
    token = sim.mint_token()["access_token"]
    body = {"model": "claude-sonnet-4-6", "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}
    with running_capture(sim.base_url, out) as proxy:
        for _ in range(2):
            httpx.post(proxy.base_url + "/v1/messages", json=body, headers={"authorization": f"Bearer {token}"})
    lines = out.read_text().splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # the last write cut short
    exchanges = load_exchanges(torn)
    why = f"line {len(lines)}: not JSON, a torn last line from an interrupted write"
    assert len(exchanges) == 1 and exchanges.skipped == [why]
    said = pick_request(torn).describe(torn)
    assert said.startswith("torn.jsonl: its only complete inference request") and "was left out" in said, said
    with pytest.raises(UserError, match="out of range: the capture holds 1 inference request"):
        inference_exchange(exchanges, 5)
    only_torn = tmp_path / "only-torn.jsonl"
    only_torn.write_text(lines[-1][: len(lines[-1]) // 2])
    with pytest.raises(LintInputError, match="holds no complete capture exchange record: 1 line could not be read"):
        lint_file(only_torn)
