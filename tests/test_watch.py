"""watch: a verdict line per exchange from the client's own traffic, a tally, and the fail-closed plan-only guard."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from lanelab import http as lanelab_http
from lanelab.config import Settings
from lanelab.errors import InputError, LiveNotOptedIn
from lanelab.walkthrough import namespace as ns
from lanelab.walkthrough.watch import (
    GUARD_ERROR_TYPE,
    GUARD_OUTCOME,
    TOKEN_VARIABLES,
    client_plan,
    running_watch,
)
from lanelab.wire.exchanges import load_exchanges

if TYPE_CHECKING:
    import anthropic

ROOT = Path(__file__).resolve().parents[1]
EXTRA_ON = {"extra_usage": {"is_enabled": True, "monthly_limit": 5000, "used_credits": 0}}
MCP_TOOL = [{"name": "mcp_read_file", "input_schema": {"type": "object"}}]


def _settings(tmp_path: Path) -> Settings:
    return Settings(mode="sim", out=tmp_path / "out", home=tmp_path / "home")


def _sdk(base_url: str, token: str) -> anthropic.Anthropic:
    import anthropic  # here: importing the SDK costs seconds, which tests that do not use it should not pay

    return anthropic.Anthropic(auth_token=token, base_url=base_url, max_retries=0,
                               default_headers={"anthropic-beta": "oauth-2025-04-20"},
                               http_client=lanelab_http.sdk_client(base_url))


def _ask(client: anthropic.Anthropic, tools: list | None = None) -> int:
    import anthropic

    try:
        raw = client.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=1,
                                                       messages=[{"role": "user", "content": "ping"}],
                                                       **({"tools": tools} if tools else {}))
        return raw.status_code
    except anthropic.APIStatusError as exc:
        return exc.status_code


def test_one_line_per_exchange_from_the_official_sdk(tmp_path, sim):
    seen = []
    with running_watch(sim.base_url, out=tmp_path / "w.jsonl", settings=_settings(tmp_path),
                       on_line=seen.append) as watch:
        client = _sdk(watch.base_url, sim.mint_token()["access_token"])
        assert _ask(client) == 200
        assert watch.wait_for(1) and len(watch.lines) == 1
        assert _ask(client, MCP_TOOL) == 400
        assert watch.wait_for(2) and not watch.wait_for(3, timeout=0.2)
    assert [(x.method, x.path, x.status, x.outcome, x.lane) for x in seen] == [
        ("POST", "/v1/messages", 200, "served_plan", "plan"),
        ("POST", "/v1/messages", 400, "extra_usage_exhausted", "extra_usage")]
    assert seen[0].claim == "five_hour" and seen[0].five_hour == pytest.approx(0.03, abs=0.01)
    text = seen[0].text()
    assert "POST /v1/messages  200  served_plan  lane=plan  claim=five_hour  plan 5h=3%" in text
    frame, tally = watch.to_frame(), watch.tally()
    assert list(frame["outcome"]) == ["served_plan", "extra_usage_exhausted"]
    assert frame["5h used %"][0] == pytest.approx(100 * seen[0].five_hour, abs=0.01)  # percent, as the line says
    assert set(zip(tally["outcome"], tally["exchanges"], strict=True)) == {("served_plan", 1),
                                                                           ("extra_usage_exhausted", 1)}
    assert len(load_exchanges(tmp_path / "w.jsonl")) == 2  # the capture file records the same exchanges


def test_plan_only_guard_stops_forwarding_after_extra_usage(tmp_path, sim_with):
    import anthropic

    sim = sim_with(account=EXTRA_ON)
    with running_watch(sim.base_url, out=tmp_path / "w.jsonl", plan_only=True,
                       settings=_settings(tmp_path)) as watch:
        client = _sdk(watch.base_url, sim.mint_token()["access_token"])
        assert _ask(client) == 200  # plan: forwarded, guard quiet
        assert not watch.guard.tripped
        assert _ask(client, MCP_TOOL) == 200  # billed to extra usage (extra usage enabled): trips the guard
        assert watch.guard.tripped  # on the response headers already, before the body reached the client
        forwarded = len([e for e in sim.state.requests() if e["path"] == "/v1/messages"])
        with pytest.raises(anthropic.BadRequestError) as refused:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=1,
                                   messages=[{"role": "user", "content": "ping"}])
        assert _ask(client) == 400  # a plan-billed request is refused too: nothing more is forwarded
        with pytest.raises(anthropic.BadRequestError):
            client.models.list()  # non-inference requests are not forwarded either
        after = len([e for e in sim.state.requests() if e["path"].startswith("/v1/")])
    body = refused.value.body
    assert body["error"]["type"] == GUARD_ERROR_TYPE and "lanelab" in body["error"]["message"]
    assert "extra usage" in body["error"]["message"] and "not from the API" in body["error"]["message"]
    assert forwarded == 2 and after == 2  # the sim saw exactly the two requests before the trip
    assert [x.outcome for x in watch.lines] == ["served_plan", "served_extra", GUARD_OUTCOME, GUARD_OUTCOME,
                                                GUARD_OUTCOME]
    assert watch.guard.stopped == 3 and "request #2" in watch.guard.reason
    assert "stopped_by_guard / lane -: 3" in watch.tally_text()
    records = load_exchanges(tmp_path / "w.jsonl")
    assert [r.get("answered_by") for r in records] == [None, None, "proxy", "proxy", "proxy"]


def test_plan_only_guard_stays_quiet_while_everything_is_billed_to_the_plan(tmp_path, sim_with):
    sim = sim_with(account=EXTRA_ON)
    with running_watch(sim.base_url, out=tmp_path / "w.jsonl", plan_only=True,
                       settings=_settings(tmp_path)) as watch:
        client = _sdk(watch.base_url, sim.mint_token()["access_token"])
        assert [_ask(client) for _ in range(3)] == [200, 200, 200]
    assert not watch.guard.tripped and watch.guard.stopped == 0


def test_live_upstream_needs_the_opt_in(tmp_path):
    with pytest.raises(LiveNotOptedIn), running_watch("https://api.anthropic.com", out=tmp_path / "w.jsonl",
                                                      settings=_settings(tmp_path)):
        pass
    assert not (tmp_path / "w.jsonl").exists()


def test_client_plans_say_what_each_client_needs():
    no_ns = (False, "not running as root")
    sdk = client_plan(["python", "app.py"], "http://127.0.0.1:4000", sim_token="sk-ant-oat01-sim", namespace_ok=no_ns)
    assert sdk.client == "sdk" and not sdk.namespace and sdk.env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4000"
    assert all(sdk.env[v] == "sk-ant-oat01-sim" for v in TOKEN_VARIABLES) and not sdk.instructions
    hermes = client_plan(["hermes", "chat", "-q", "ping"], "http://127.0.0.1:4000", namespace_ok=no_ns)
    assert "127.0.0.1 api.anthropic.com" in hermes.instructions[0]
    assert "model.base_url: http://api.anthropic.com:4000" in hermes.instructions[0]
    pi = client_plan(["/usr/bin/pi", "-p", "ping"], "http://127.0.0.1:4000", namespace_ok=no_ns)
    assert "models.json" in pi.instructions[0] and '"baseUrl": "http://127.0.0.1:4000"' in pi.instructions[0]
    claw = client_plan(["openclaw", "agent"], "http://127.0.0.1:4000", namespace_ok=no_ns)
    assert "models.providers.anthropic.baseUrl" in claw.instructions[0]
    in_ns = client_plan(["hermes", "chat"], "http://127.0.0.1:4000", namespace_ok=(True, ""))
    assert in_ns.namespace and in_ns.env["ANTHROPIC_BASE_URL"] is None  # the default api.anthropic.com is the proxy
    assert not client_plan(["python", "x.py"], "http://x", namespace_ok=(True, "")).namespace  # auto: SDK needs none
    with pytest.raises(InputError):
        client_plan([], "http://x")


CLIENT = """
import os, anthropic
c = anthropic.Anthropic(auth_token=os.environ["ANTHROPIC_AUTH_TOKEN"], max_retries=0,
                        default_headers={"anthropic-beta": "oauth-2025-04-20"})
for tools in ([], [{"name": "mcp_read_file", "input_schema": {"type": "object"}}], []):
    try:
        c.messages.create(model="claude-sonnet-4-6", max_tokens=1, messages=[{"role": "user", "content": "hi"}],
                          **({"tools": tools} if tools else {}))
    except anthropic.APIStatusError:
        pass
"""


def _watch_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "lib"), "LANELAB_OUT": str(tmp_path / "out"),
           "LANELAB_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "lanelab", "watch", *args, "--", sys.executable, str(script)],
                          check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.slow  # runs the CLI and a client in processes of their own
def test_watch_command_runs_the_client_and_prints_base_url_lines_and_tally(tmp_path):
    done = _watch_cli(tmp_path, "--namespace", "never")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("http://127.0.0.1:")
    lines = [x for x in out if "  POST /v1/messages  " in x]
    assert [x.split()[4] for x in lines] == ["served_plan", "extra_usage_exhausted", "served_plan"]
    assert out[-3:] == ["tally: 3 exchange(s)", "  served_plan / lane plan: 2  (Served, billed to the plan)",
                        "  extra_usage_exhausted / lane extra_usage: 1  (400 out of extra usage)"]
    captured = list((tmp_path / "out" / "captures").glob("watch-*.jsonl"))
    assert len(captured) == 1 and "Bearer sk-ant-oat01-…" in captured[0].read_text()
    assert not re.search(r"sk-ant-oat01-[A-Za-z0-9_-]{12,}", captured[0].read_text())  # the token only masked
    assert f"recorded in {captured[0]}; next: python -m lanelab lint {captured[0]}" in done.stderr  # the next step


@pytest.mark.slow  # runs the CLI and a client in processes of their own
def test_watch_command_plan_only_with_extra_usage_enabled(tmp_path):
    done = _watch_cli(tmp_path, "--namespace", "never", "--plan-only", "--account", json.dumps(EXTRA_ON))
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stdout.splitlines() if "  POST /v1/messages  " in x]
    assert [x.split()[4] for x in lines] == ["served_plan", "served_extra", "stopped_by_guard"]
    assert "plan-only guard: tripped: request #2" in done.stdout and "(1 request(s) answered by the guard)" in done.stdout


def test_watch_command_refuses_a_client_that_does_not_exist(tmp_path, monkeypatch, capsys):
    from lanelab import cli

    monkeypatch.setenv("LANELAB_OUT", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert cli.main(["watch", "--", "no-such-client-xyz"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert captured.err.startswith("lanelab watch: ") and "no such command" in captured.err


@pytest.mark.parametrize("upstream,said", [("notaurl", "is not an http(s) URL"),
                                            ("http://example.com", "is neither loopback nor an Anthropic host")])
def test_watch_command_refuses_an_upstream_that_is_no_url_or_no_place_for_a_credential(tmp_path, monkeypatch,
                                                                                      capsys, upstream, said):
    from lanelab import cli

    monkeypatch.setenv("LANELAB_OUT", str(tmp_path))
    assert cli.main(["watch", "--upstream", upstream]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and said in captured.err, captured


@pytest.mark.slow  # a process of the kit; the fast loop keeps the same refusal in-process above
def test_watch_command_refuses_bad_input(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "lib"), "LANELAB_OUT": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "lanelab", "watch", "--", "no-such-client-xyz"],
                          check=False, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "no such command" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # runs the CLI and a client in processes of their own
@pytest.mark.skipif(not ns.can_use_namespaces()[0], reason="private network namespaces need root here")
def test_watch_runs_a_client_in_a_namespace_under_the_real_host_name(tmp_path):
    done = _watch_cli(tmp_path, "--namespace", "always")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "https://api.anthropic.com"
    assert len([x for x in out if "  POST /v1/messages  " in x]) == 3
    assert "private network namespace" in done.stderr


@pytest.mark.slow  # runs the CLI and a client in processes of their own
def test_watch_command_without_a_client_prints_the_tally_on_ctrl_c(tmp_path):
    import signal

    import httpx

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "lib"), "LANELAB_OUT": str(tmp_path / "out"),
           "LANELAB_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "watch", "--policy", "2026-05-25"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False, timeout=30) as http:  # a client of the user's own, through the proxy
            token = http.post(f"{base}/_sim/tokens", json={"kind": "pkce"}).json()["access_token"]
            reply = http.post(f"{base}/v1/messages", headers={"authorization": f"Bearer {token}",
                                                               "anthropic-beta": "oauth-2025-04-20",
                                                               "anthropic-version": "2023-06-01"},
                              json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert reply.status_code == 200
        first = proc.stdout.readline()
        assert "POST /_sim/tokens  200" in first
        second = proc.stdout.readline()
        assert "POST /v1/messages  200  served_plan  lane=plan  claim=five_hour" in second
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err  # Ctrl-C: the tally, then the CLI's one line (docs/contracts.md §6)
    assert rest.splitlines()[0] == "tally: 2 exchange(s)" and "served_plan / lane plan: 1" in rest
    assert "Traceback" not in err and err.strip().splitlines()[-1] == ("lanelab watch: interrupted; nothing already "
                                                                      "written was lost.")
