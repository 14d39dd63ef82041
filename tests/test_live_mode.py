"""Live mode as a user meets it (issue 13), without the network: the confirmation (CLI and notebook gate), the default
live plan within the default budget, costly levels left out, sends that never reached the server, the cached usage
reading, reference-only profiles refused everywhere, the notebooks' live parameters, and ``creds --mint``.

Live requests here go to a mock transport; the offline rehearsal (tests/rehearsal) runs the same paths end to end.
"""

from __future__ import annotations

import ast
import io
import json
import stat
from pathlib import Path

import httpx
import pytest
from lanelab import redact
from lanelab.auth.credential import Credential
from lanelab.auth.introspect import UsageCache, read_usage_cached
from lanelab.auth.store import CredentialStore
from lanelab.cli import main
from lanelab.config import LIVE_API_BASE, Settings, repo_root
from lanelab.errors import BudgetExceeded
from lanelab.live import NOTICE, Confirmation, LiveGate, NotConfirmed, confirm_cli
from lanelab.matrix import profiles as profiles_mod
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET, Budget
from lanelab.matrix.confirm import ConfirmWidget, gate_for
from lanelab.matrix.live_default import load_live_default
from lanelab.matrix.plan import MatrixPlan, PlannedCell
from lanelab.matrix.reach import Reachability, advice, never_reached
from lanelab.matrix.runner import run_matrix
from lanelab.matrix.sender import RetryPolicy
from lanelab.wire.spec import Observation, RequestSpec

TOKEN = "sk-ant-oat01-" + "Lv7Mx2Nq9Pw4Rt6Yu1Io3" * 2 + "abcd"
REFERENCE = "claude-code-2.1.332"


def live_settings(tmp_path: Path, **kw) -> Settings:
    return Settings(mode="live", base_url=LIVE_API_BASE, home=tmp_path / "home", out=tmp_path / "out",
                    live_opt_in=True, **kw)


def confirmation(**kw) -> Confirmation:
    base = {"base_url": LIVE_API_BASE, "label": "live-pkce", "masked": redact.mask(TOKEN), "requests": 6,
            "tokens": 6068, "budget": "10 inference requests, retries included"}
    return Confirmation(**{**base, **kw})


class Terminal(io.StringIO):
    """Standard input on a terminal, with what the user types."""

    def isatty(self) -> bool:
        return True


class Calls:
    """A mock API: records every request, answers 400 extra usage (or what ``answer`` says)."""

    def __init__(self, answer=None):
        self.requests: list[httpx.Request] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            return self.answer(request)
        return httpx.Response(400, json={"type": "error", "error": {
            "type": "invalid_request_error",
            "message": "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."}})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


# ------------------------------------------------------------------------------------------------ the CLI's question
def test_the_question_names_requests_host_label_and_masked_token():
    assert confirmation().question() == \
        "Send 6 requests to api.anthropic.com with 'live-pkce' (sk-ant-oat01-…abcd)? [y/N] "
    text = str(confirmation())
    assert text.startswith(NOTICE) and "host: api.anthropic.com (https://api.anthropic.com)" in text
    assert "credential: 'live-pkce' (sk-ant-oat01-…abcd)" in text and "cost: 6 inference requests" in text
    assert TOKEN not in text


@pytest.mark.parametrize("typed,sent", [("y\n", True), ("yes\n", True), ("Y\n", True), ("n\n", False),
                                         ("\n", False), ("", False), ("sure\n", False)])
def test_on_a_terminal_only_yes_confirms(typed, sent):
    out = io.StringIO()
    if sent:
        confirm_cli(confirmation(), yes=False, stdin=Terminal(typed), stdout=out)
    else:
        with pytest.raises(NotConfirmed, match="nothing was sent"):
            confirm_cli(confirmation(), yes=False, stdin=Terminal(typed), stdout=out)
    shown = out.getvalue()
    assert shown.index(NOTICE) < shown.index("host:") < shown.index("cost:") < shown.index("[y/N]")


def test_without_a_terminal_it_needs_yes():
    out = io.StringIO()
    with pytest.raises(NotConfirmed, match="--yes") as info:
        confirm_cli(confirmation(), yes=False, stdin=io.StringIO("y\n"), stdout=out)
    assert "no terminal" in str(info.value) and "cost:" in out.getvalue() and "[y/N]" not in out.getvalue()
    out = io.StringIO()
    confirm_cli(confirmation(), yes=True, stdin=io.StringIO(""), stdout=out)
    assert NOTICE in out.getvalue() and "confirmed with --yes" in out.getvalue()


# ------------------------------------------------------------------------------------------------ the notebooks' gate
def test_the_gate_blocks_until_confirmed_and_renders_one_line():
    gate = LiveGate(confirmation())
    with pytest.raises(NotConfirmed) as info:
        gate.require()
    assert info.value._render_traceback_() == [f"Not sent: {info.value}"]
    assert "CONFIRM_LIVE = True" in str(info.value) and "simulator" not in str(info.value)
    widget = ConfirmWidget(gate)
    assert not widget.button.disabled and "Waiting" in widget.status.value
    widget.button.click()
    gate.require()
    assert gate.by == "the button" and widget.button.disabled and "Confirmed" in widget.status.value
    plain = widget._repr_mimebundle_()["text/plain"]
    assert NOTICE in plain and "host: api.anthropic.com" in plain and "cost: 6 inference requests" in plain
    assert LiveGate(confirmation(), confirmed=True).by == "the CONFIRM_LIVE parameter"
    sim = LiveGate(None)
    sim.require()
    sim_widget = ConfirmWidget(sim)
    assert not sim.needed and sim_widget.box.children == (sim_widget.status,), "sim mode: no button"


def test_a_live_plan_is_sent_only_through_a_confirmed_gate(tmp_path):
    s = live_settings(tmp_path)
    CredentialStore(s.home).save(Credential(label="live-pkce", access_token=TOKEN, mode="live",
                                            issuer="https://platform.claude.com"))
    plan = MatrixPlan.build("hermes-0.14.0", settings=s)
    gate = plan.gate("live-pkce", DEFAULT_LIVE_BUDGET)
    assert gate.needed and not gate.confirmed
    assert gate.confirmation.requests == len(plan.cells) and gate.confirmation.masked == redact.mask(TOKEN)
    calls = Calls()
    with pytest.raises(NotConfirmed):
        plan.run("live-pkce", DEFAULT_LIVE_BUDGET, gate=gate, client=calls.client(), progress=False)
    with pytest.raises(NotConfirmed, match="need a confirmation"):
        plan.run("live-pkce", DEFAULT_LIVE_BUDGET, client=calls.client(), progress=False)
    assert calls.requests == []
    gate.confirm()
    result = plan.run("live-pkce", DEFAULT_LIVE_BUDGET, gate=gate, client=calls.client(), progress=False)
    assert len(calls.requests) == result.spend.requests == len(plan.cells) <= DEFAULT_LIVE_BUDGET
    assert {r.url.host for r in calls.requests} == {"api.anthropic.com"}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in calls.requests)
    assert all(json.loads(r.content)["max_tokens"] == 1 for r in calls.requests)
    summary = result.summary()
    assert "live: https://api.anthropic.com" in summary and "simulator" not in summary.lower()


# ------------------------------------------------------------------------------------------------ the default plan
def sendable_profiles() -> list[str]:
    return [p for p in profiles_mod.list_profiles() if not profiles_mod.load_profile(p).reference_only]


@pytest.mark.parametrize("profile", sendable_profiles())
def test_the_live_default_plan_fits_the_default_budget(tmp_path, profile):
    plan = MatrixPlan.build(profile, settings=live_settings(tmp_path))
    assert plan.origin == "the live default plan" and plan.factors == load_live_default().factors
    assert plan.check_budget(DEFAULT_LIVE_BUDGET).requests == len(plan.cells) <= DEFAULT_LIVE_BUDGET
    assert all(c.spec.body["max_tokens"] == 1 and "stream" not in c.spec.body for c in plan.planned())


def test_the_sim_default_is_still_every_factor(tmp_path):
    plan = MatrixPlan.build("hermes-0.14.0", settings=Settings(mode="sim"))
    assert plan.origin == "every factor" and len(plan.cells) > DEFAULT_LIVE_BUDGET and not plan.left_out


def test_costly_levels_are_left_out_of_named_factors_and_shown_with_their_cost(tmp_path):
    s = live_settings(tmp_path)
    plan = MatrixPlan.build("hermes-0.14.0", factors=["max_tokens", "stream", "x_app"], settings=s)
    assert {c.flag for c in plan.left_out} == {"max_tokens=128000", "stream=on"}
    levels = [dict(c.levels) for c in plan.cells]
    assert {"max_tokens": "128000"} not in [{k: v for k, v in lv.items() if k == "max_tokens"} for lv in levels]
    text = str(plan.describe())
    assert "left out (they raise the cost): max_tokens=128000 (+128,000 worst-case tokens per request)" in text
    assert "stream=on" in text and "streams the answer" in text and "--levels max_tokens=128000" in text
    named = MatrixPlan.build("hermes-0.14.0", factors=["max_tokens"], levels={"max_tokens": ["128000"]}, settings=s)
    assert not named.left_out and named.cost().tokens > 128000
    assert [c.spec.body["max_tokens"] for c in named.planned()] == [1, 128000]


def test_a_plan_over_budget_names_its_cost_and_the_cheaper_command(tmp_path):
    s = live_settings(tmp_path)
    broad = MatrixPlan.build("hermes-0.14.0", factors=["tools", "system_extra"], settings=s)
    with pytest.raises(BudgetExceeded) as info:
        broad.check_budget(Budget(max_requests=DEFAULT_LIVE_BUDGET))
    text = str(info.value)
    assert f"{len(broad.cells)} inference requests against a limit of {DEFAULT_LIVE_BUDGET}" in text
    assert "worst case" in text and "nothing was sent" in text
    assert "'python -m lanelab matrix --live --profile hermes-0.14.0'" in text and "FACTORS = None" in text
    default = MatrixPlan.build("hermes-0.14.0", settings=s)
    with pytest.raises(BudgetExceeded) as info:
        default.check_budget(3)
    assert "--levels tools=none,mcp__" in str(info.value)
    smaller = MatrixPlan.build("hermes-0.14.0", levels={"tools": ["none", "mcp__"]}, settings=s)
    assert len(smaller.cells) == 3 and f"({len(smaller.cells)} cells" in str(info.value)


def test_the_runner_refuses_an_over_budget_plan_with_the_alternative_before_sending(tmp_path):
    s = live_settings(tmp_path)
    CredentialStore(s.home).save(Credential(label="live-pkce", access_token=TOKEN, mode="live",
                                            issuer="https://platform.claude.com"))
    plan = MatrixPlan.build("hermes-0.14.0", factors=["tools", "system_extra"], settings=s)
    calls = Calls()
    with pytest.raises(BudgetExceeded, match="live default plan"):
        plan.run("live-pkce", 5, confirmed=True, client=calls.client(), progress=False)
    assert calls.requests == [] and not (s.out / "runs").exists()


# ------------------------------------------------------------------------------------------------ unreached sends
def unreachable(message: str):
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(message, request=request)
    return answer


def planned(n: int) -> list[PlannedCell]:
    return [PlannedCell(cell_id=f"{i:012x}", profile="p", levels={"n": str(i)},
                        spec=RequestSpec(body={"model": "m", "max_tokens": 1, "messages": [{"role": "user",
                                                                                            "content": "hi"}]}))
            for i in range(n)]


async def no_sleep(_seconds: float) -> None:
    return None


def test_sends_that_never_reached_the_server_cost_nothing_and_stop_the_run(tmp_path):
    calls = Calls(unreachable("[Errno -2] Name or service not known"))
    result = run_matrix(planned(5), profile="p", design="d", settings=live_settings(tmp_path), token=TOKEN,
                        credential="t", budget=Budget(5), confirmed=True, client=calls.client(), progress=False,
                        concurrency=1, sleep=no_sleep, retry=RetryPolicy(max_attempts=4))
    assert len(calls.requests) == 3 == result.unreached, "stopped after three in a row"
    assert result.spend.requests == 0 and result.spend.unreached == 3
    assert result.not_sent == 4 and result.sent == 1 and result.stopped
    summary = result.summary()
    assert "Name or service not known: check your network / DNS" in summary
    assert "not counted as spend" in summary and "STOPPED" in summary and "running the same command again" in summary
    assert "spent 0/5" in summary and "simulator" not in summary.lower()


def test_a_send_that_reached_the_server_counts_and_a_success_resets_the_streak(tmp_path):
    script = iter(["down", "down", "ok", "down", "down", "read", "ok", "ok"])

    def answer(request: httpx.Request) -> httpx.Response:
        step = next(script)
        if step == "down":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if step == "read":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"type": "message", "content": []})
    calls = Calls(answer)
    result = run_matrix(planned(3), profile="p", design="d", settings=live_settings(tmp_path), token=TOKEN,
                        credential="t", budget=Budget(10), confirmed=True, client=calls.client(), progress=False,
                        concurrency=1, sleep=no_sleep, retry=RetryPolicy(max_attempts=4))
    assert not result.stopped and result.sent == 3 and result.unreached == 4
    assert result.spend.requests == 4, "three successes and the read timeout (it reached the server)"
    assert "Connection refused: check your network, a firewall, or LANELAB_PROXY" in result.summary()


@pytest.mark.parametrize("error,expected", [
    ("ConnectError: [Errno -3] Temporary failure in name resolution", "DNS"),
    ("ConnectError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "LANELAB_CA_BUNDLE"),
    ("ConnectTimeout: timed out", "timed out"),
    ("ConnectError: [Errno 101] Network is unreachable", "no route"),
])
def test_each_cause_says_what_to_check(error, expected):
    obs = Observation(transport_error=error)
    reach = Reachability()
    assert never_reached(obs) and reach.record(obs) and expected in reach.top_cause()
    assert not never_reached(Observation(transport_error="ReadTimeout: timed out"))
    assert not never_reached(Observation(status=502))
    assert advice("something else") == "check your network connection"


# ------------------------------------------------------------------------------------------------ usage reading
class UsageServer:
    def __init__(self):
        self.calls = 0
        self.status = 200

    def client(self) -> httpx.Client:
        def answer(request: httpx.Request) -> httpx.Response:
            self.calls += 1
            assert request.url.path == "/api/oauth/usage"
            if self.status == 429:
                return httpx.Response(429, headers={"retry-after": "600"}, json={
                    "type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}})
            return httpx.Response(200, json={"five_hour": {"utilization": 3.0 + self.calls, "resets_at": None}})
        return httpx.Client(transport=httpx.MockTransport(answer))


def test_usage_is_cached_per_credential_and_a_429_keeps_the_cached_reading(tmp_path):
    server, cache, t0 = UsageServer(), UsageCache.in_home(tmp_path / "home"), 1_800_000_000.0
    first = read_usage_cached(TOKEN, LIVE_API_BASE, cache, client=server.client(), now=t0)
    assert first.ok and not first.cached and server.calls == 1
    (stored,) = (tmp_path / "home" / "usage").iterdir()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and TOKEN not in stored.read_text()
    again = read_usage_cached(TOKEN, LIVE_API_BASE, cache, client=server.client(), now=t0 + 30)
    assert again.cached and again.body == first.body and server.calls == 1 and "30 s old" in again.note
    other = read_usage_cached(TOKEN[:-4] + "wxyz", LIVE_API_BASE, cache, client=server.client(), now=t0 + 30)
    assert not other.cached and server.calls == 2, "another credential has its own reading"
    server.status = 429
    limited = read_usage_cached(TOKEN, LIVE_API_BASE, cache, client=server.client(), now=t0 + 500)
    assert limited.cached and limited.body == first.body and limited.status == 429 and server.calls == 3
    assert "cached reading from 2027-01-15 08:00:00 UTC" in limited.note and "429" in limited.note
    later = read_usage_cached(TOKEN, LIVE_API_BASE, cache, client=server.client(), now=t0 + 800)
    assert later.cached and server.calls == 3 and "not asked again" in later.note, "retry-after honoured"
    server.status = 200
    fresh = read_usage_cached(TOKEN, LIVE_API_BASE, cache, client=server.client(), now=t0 + 1200)
    assert not fresh.cached and server.calls == 4


def test_a_usage_probe_never_fails_a_run(tmp_path, monkeypatch):
    from lanelab.auth import introspect

    def broken(*_a, **_k):
        raise RuntimeError("boom")
    monkeypatch.setattr(introspect, "probe_usage", broken)
    s = live_settings(tmp_path)
    calls = Calls()
    result = run_matrix(planned(2), profile="p", design="d", settings=s, token=TOKEN, credential="t",
                        budget=Budget(5), confirmed=True, client=calls.client(), progress=False,
                        usage_snapshots=True)
    assert result.sent == 2 and any("the usage probe failed" in n for n in result.usage_notes)
    assert "usage: before:" in result.summary()


# ------------------------------------------------------------------------------------------------ reference profiles
def test_a_reference_only_profile_is_never_sent(tmp_path):
    assert profiles_mod.load_profile(REFERENCE).reference_only
    with pytest.raises(profiles_mod.ReferenceOnlyProfile):
        MatrixPlan.build(REFERENCE, factors=["x_app"], settings=Settings(mode="sim"))
    from lanelab.matrix.designs import build_spec, make_cell
    with pytest.raises(profiles_mod.ReferenceOnlyProfile):
        build_spec(make_cell(REFERENCE, {}), None, {})
    calls = Calls()
    spec = profiles_mod.load_profile(REFERENCE).spec
    cell = PlannedCell(cell_id="0" * 12, profile=REFERENCE, levels={}, spec=spec)
    with pytest.raises(profiles_mod.ReferenceOnlyProfile):
        run_matrix([cell], profile=REFERENCE, design="d", settings=live_settings(tmp_path), token=TOKEN,
                   credential="t", budget=Budget(5), confirmed=True, client=calls.client(), progress=False)
    from lanelab.walkthrough.bisect import bisect_to_run
    with pytest.raises(profiles_mod.ReferenceOnlyProfile):
        bisect_to_run(profiles_mod.load_profile("hermes-0.14.0").spec, spec, "http://127.0.0.1:9", TOKEN,
                      settings=Settings(mode="sim", out=tmp_path), failing_label="hermes-0.14.0",
                      passing_label=REFERENCE)
    assert calls.requests == [] and not (tmp_path / "runs").exists()


def test_a_live_bisect_needs_a_confirmation(tmp_path):
    from lanelab.walkthrough.bisect import bisect_to_run
    spec = profiles_mod.load_profile("sdk-minimal").spec
    with pytest.raises(NotConfirmed):
        bisect_to_run(spec, spec, LIVE_API_BASE, TOKEN, settings=live_settings(tmp_path))


def test_gate_for_counts_captures_and_probes(tmp_path):
    a, b = profiles_mod.load_profile("hermes-0.14.0").spec, profiles_mod.load_profile("sdk-minimal").spec
    gate = gate_for(live_settings(tmp_path), LIVE_API_BASE, "live-pkce", TOKEN, once=[a, b], mixed=(a, b), probes=8,
                    budget=10)
    assert gate.confirmation.requests == 10 and gate.confirmation.tokens > 0 and not gate.confirmed
    assert gate_for(Settings(mode="sim"), "http://127.0.0.1:1", "x", TOKEN, once=[a]).needed is False


# ------------------------------------------------------------------------------------------------ CLI, no network
@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    for name in ("LANELAB_BASE_URL", "LANELAB_MODE", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda *a: pytest.fail("network attempt"))
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", lambda *a: pytest.fail("network attempt"))
    return tmp_path


def test_live_bisect_shows_the_cost_and_needs_yes(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_MODE", "live")
    CredentialStore(cli_env / "home").save(Credential(label="live-pkce", access_token=TOKEN, mode="live",
                                                      issuer="https://platform.claude.com"))
    assert main(["bisect", "--fail", "hermes-0.14.0", "--pass", "sdk-minimal"]) == 2
    out, err = capsys.readouterr()
    assert NOTICE in out and "cost: 10 inference requests" in out and "'live-pkce' (sk-ant-oat01-…abcd)" in out
    assert "--yes" in err and TOKEN not in out + err
    assert main(["bisect", "--fail", "hermes-0.14.0", "--pass", REFERENCE, "--yes"]) == 2
    assert "first-party reference" in capsys.readouterr().err


def test_creds_mint_saves_a_simulator_credential_and_prints_it_only_when_asked(tmp_path, monkeypatch, capsys, sim):
    from lanelab.matrix.tokens import TokenSource

    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANELAB_MODE", "sim")
    monkeypatch.setenv("LANELAB_BASE_URL", sim.base_url)
    assert main(["creds", "--mint"]) == 0
    out = capsys.readouterr().out
    cred = CredentialStore(tmp_path / "home").load("sim-pkce")
    assert (cred.mode, cred.issuer) == ("sim", sim.base_url) and cred.access_token not in out
    assert redact.mask(cred.access_token) in out and "resolve_token('sim-pkce')" in out
    assert "replaces" not in out
    assert main(["creds", "--mint"]) == 0  # minting onto a saved label says what it replaced
    assert "It replaces the credential saved as 'sim-pkce' before." in capsys.readouterr().out
    assert main(["creds", "--mint", "--label", ""]) == 2  # an empty label is no label, not the default
    assert "'' is not a valid credential label" in capsys.readouterr().err
    assert main(["creds", "--mint", "--label", "sdk", "--print"]) == 0
    printed, err = capsys.readouterr()
    token = CredentialStore(tmp_path / "home").load("sdk").access_token
    assert printed == token + "\n" and token not in err and sim.base_url in err
    source = TokenSource(Settings.from_env(), sim.base_url, "sdk")
    assert source.token() == token and source.where == "credential 'sdk' from the kit's store"
    import anthropic
    import lanelab.http
    sdk = anthropic.Anthropic(base_url=sim.base_url, auth_token=token, max_retries=0,
                              default_headers={"anthropic-beta": "oauth-2025-04-20"},
                              http_client=lanelab.http.sdk_client(sim.base_url))
    reply = sdk.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=1,
                                                  messages=[{"role": "user", "content": "ping"}])
    assert reply.status_code == 200, "the printed token works for the official SDK"
    monkeypatch.setenv("LANELAB_MODE", "live")
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert main(["creds", "--mint"]) == 2
    assert "simulator credentials only" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ notebook parameters
def parameters(notebook: str, env: dict[str, str], monkeypatch) -> dict:
    """Run the parameters cell of ``notebooks/<notebook>.py`` with ``env`` and return its names."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = (repo_root() / "notebooks" / f"{notebook}.py").read_text()
    cell = source.split('# %% tags=["parameters"]\n', 1)[1].split("\n# %%", 1)[0]
    ast.parse(cell)
    names: dict = {}
    exec(compile(cell, notebook, "exec"), names)  # noqa: S102 - the notebook's own parameters cell
    return names


@pytest.mark.parametrize("notebook", ["02_request_matrix", "04_maintainer_walkthrough"])
def test_notebook_defaults_match_the_cli_per_mode(notebook, tmp_path, monkeypatch):
    monkeypatch.delenv("LANELAB_CONFIRM_LIVE", raising=False)
    live = parameters(notebook, {"LANELAB_MODE": "live", "LANELAB_LIVE_OPT_IN": "1",
                                 "LANELAB_HOME": str(tmp_path)}, monkeypatch)
    assert (live["CREDENTIAL"], live["BUDGET"], live["CONFIRM_LIVE"]) == ("live-pkce", DEFAULT_LIVE_BUDGET, False)
    sim = parameters(notebook, {"LANELAB_MODE": "sim"}, monkeypatch)
    assert (sim["CREDENTIAL"], sim["BUDGET"]) == ("sim-pkce", None)
    confirmed = parameters(notebook, {"LANELAB_MODE": "live", "LANELAB_CONFIRM_LIVE": "1"}, monkeypatch)
    assert confirmed["CONFIRM_LIVE"] is True


# ------------------------------------------------------------------------------------------------ the README
def test_every_command_in_the_readme_parses():
    """The README's commands (the live walk-through, the simulator token) are real commands with real options."""
    import re
    import shlex

    from lanelab.cli import build_parser

    readme = (repo_root() / "README.md").read_text()
    commands = set(re.findall(r"\.venv/bin/python -m lanelab ([^`$)\n]+)", readme))
    assert {"login", "creds", "report"} <= {c.split()[0] for c in commands}
    assert any("creds --mint" in c for c in commands) and any("matrix --live" in c for c in commands)
    parser = build_parser()
    for command in sorted(commands):
        argv = shlex.split(command.split("#")[0].replace("COMMAND", "matrix").replace("…", ""))
        if argv == ["--help"] or not argv:
            continue
        args = parser.parse_args(argv)  # exits (a test failure) on an unknown command or option
        assert args.command == argv[0], command
    section = readme.split("## Live mode, step by step", 1)[1].split("\n## ", 1)[0]
    assert "LANELAB_LIVE_OPT_IN=1" in section and "[y/N]" in section and "--yes" in section
    assert "LANELAB_INTERACTIVE" in readme and "LANELAB_CONFIRM_LIVE" in readme
