"""``python -m lanelab matrix``: dry run, a run with its summary, resume, and the errors a user can hit."""

from __future__ import annotations

import httpx
import pytest
from lanelab.cli import main
from lanelab.runs import load_run

pytest.importorskip("lanelab.sim.server")


@pytest.fixture
def sim_url(sim):
    return sim.base_url


@pytest.fixture
def env(tmp_path, monkeypatch, sim_url):
    monkeypatch.setenv("LANELAB_MODE", "sim")
    monkeypatch.setenv("LANELAB_BASE_URL", sim_url)
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANELAB_LIVE_OPT_IN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))  # no other client's credential files
    for name in ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    httpx.delete(sim_url + "/_sim/requests")
    return tmp_path


def log(url):
    return httpx.get(url + "/_sim/requests").json()


def test_dry_run_prints_cells_and_cost_and_sends_nothing(env, sim_url, capsys):
    assert main(["matrix", "--factors", "tools,x_app", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "tools=mcp__" in out and "cells" in out and "inference requests" in out
    assert log(sim_url) == [] and not (env / "out" / "runs").exists()


def test_run_then_rerun_resumes_without_sending(env, sim_url, capsys):
    argv = ["matrix", "--factors", "tools", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    sent = len(log(sim_url))
    assert sent > 0 and f"{sent} sent" in out and "0 resumed" in out
    assert "extra_usage_exhausted" in out and "served_plan" in out
    assert "minted a fresh pkce token" in out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 sent" in out and f"{sent} resumed" in out and len(log(sim_url)) == sent
    (path,) = (env / "out" / "runs").glob("*.jsonl")
    run = load_run(path)
    assert run.header["design"] == "ofat" and run.header["factors"] == ["tools"] and len(run.cells) == sent


def test_explicit_run_id(env, capsys):
    assert main(["matrix", "--factors", "x_app", "--run-id", "mine", "--no-progress"]) == 0
    assert (env / "out" / "runs" / "mine.jsonl").exists()
    assert "run mine:" in capsys.readouterr().out


def test_unknown_factor_is_a_clear_error(env, capsys):
    assert main(["matrix", "--factors", "tools,nonsense"]) == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and "Choose from" in err


def save_live_credential(env, label="live-pkce", token="sk-ant-oat01-" + "L" * 36 + "abcd"):
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CredentialStore

    CredentialStore(env / "home").save(Credential(label=label, access_token=token, mode="live",
                                                  issuer="https://platform.claude.com"))
    return token


def test_live_needs_an_opt_in(env, capsys):
    assert main(["matrix", "--live"]) == 2
    assert "LANELAB_LIVE_OPT_IN" in capsys.readouterr().err
    assert main(["matrix", "--live", "--budget", "3"]) == 2
    assert "LANELAB_LIVE_OPT_IN" in capsys.readouterr().err


def test_live_without_a_terminal_needs_yes_and_shows_notice_host_credential_and_cost_first(env, capsys,
                                                                                           monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    token = save_live_credential(env)
    assert main(["matrix", "--live", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "Responsible use" in out and "host: api.anthropic.com" in out
    assert "credential: 'live-pkce' (sk-ant-oat01-…abcd)" in out and token not in out + err
    assert "cost: 6 inference requests" in out and "the live default plan" in out
    assert "budget: 10 inference requests, retries included (the default; --budget N to change)" in out
    assert "--yes" in err and "nothing was sent" in err
    assert not (env / "out" / "runs").exists() or not list((env / "out" / "runs").iterdir())


def test_live_refuses_a_simulator_credential_before_asking(env, capsys, monkeypatch, sim_url):
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CredentialStore

    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    CredentialStore(env / "home").save(Credential(label="sim-pkce", access_token="sk-ant-oat01-" + "S" * 40,
                                                  mode="sim", issuer=sim_url))
    save_live_credential(env)
    assert main(["matrix", "--live", "--credential", "sim-pkce", "--yes"]) == 2
    out, err = capsys.readouterr()
    assert "'sim-pkce' was issued by the simulator" in err and "Use 'live-pkce'" in err
    assert "Send" not in out and log(sim_url) == []


def test_live_plan_over_budget_is_refused_before_anything_happens(env, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    save_live_credential(env)
    assert main(["matrix", "--live", "--budget", "2", "--factors", "tools", "--yes"]) == 2
    out, err = capsys.readouterr()
    assert "limit of 2" in err and "nothing was sent" in err and "--budget" in err
    assert "worst case" in err and "'python -m lanelab matrix --live --profile hermes-0.14.0'" in err
    assert "Responsible use" not in out, "refused before the confirmation"
    assert not (env / "out" / "runs").exists() or not list((env / "out" / "runs").iterdir())


def test_live_levels_that_raise_the_cost_are_left_out_and_shown(env, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    save_live_credential(env)
    assert main(["matrix", "--live", "--factors", "max_tokens,stream", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "left out (they raise the cost): max_tokens=128000 (+128,000 worst-case tokens per request)" in out
    assert "stream=on" in out and "--levels max_tokens=128000" in out
    assert "fits within 10 inference requests" in out and '"max_tokens": 128000' not in out
    assert main(["matrix", "--live", "--factors", "max_tokens", "--levels", "max_tokens=128000", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"max_tokens": 128000' in out and "left out" not in out


def test_a_reference_only_profile_is_refused_in_one_line(env, capsys, sim_url):
    assert main(["matrix", "--profile", "claude-code-2.1.332", "--factors", "x_app", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "first-party reference" in err and "never sends it" in err
    assert log(sim_url) == []


def test_bad_levels_are_a_clear_error(env, capsys):
    assert main(["matrix", "--levels", "tools"]) == 2
    assert "FACTOR=LEVEL" in capsys.readouterr().err
    assert main(["matrix", "--levels", "tools=nope", "--dry-run"]) == 2
    assert "no level 'nope'" in capsys.readouterr().err


def test_without_a_base_url_it_starts_its_own_simulator(env, capsys, monkeypatch):
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert main(["matrix", "--factors", "x_app", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "started a simulator" in out and "policy 2026-05-25" in out


def test_a_dry_run_refuses_what_the_run_would_and_says_when_policy_cannot_apply(env, sim_url, capsys, monkeypatch):
    assert main(["matrix", "--factors", "stream", "--dry-run", "--run-id", "a/b"]) == 2
    assert "is not a safe file name" in capsys.readouterr().err
    assert main(["matrix", "--factors", "stream", "--dry-run", "--policy", "2026-11"]) == 0  # a simulator is running
    assert "note: --policy 2026-11 is not used: LANELAB_BASE_URL points at a simulator already running" in \
        capsys.readouterr().out
    monkeypatch.delenv("LANELAB_BASE_URL")  # the command would start its own simulator, with this policy
    assert main(["matrix", "--factors", "stream", "--dry-run", "--policy", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuch" in err and "2026-05-25" in err, err
    assert log(sim_url) == [] and not (env / "out" / "runs").exists()
