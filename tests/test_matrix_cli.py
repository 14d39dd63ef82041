"""``python -m lanelab matrix``: dry run, a run with its summary, resume, and the errors a user can hit."""

from __future__ import annotations

import httpx
import pytest
from lanelab.cli import main
from lanelab.runs import load_run

pytest.importorskip("lanelab.sim.server")


@pytest.fixture(scope="module")
def sim_url():
    from lanelab.sim.server import running_simulator
    with running_simulator(policy="2026-05-25") as sim:
        yield sim.base_url


@pytest.fixture
def env(tmp_path, monkeypatch, sim_url):
    monkeypatch.setenv("LANELAB_MODE", "sim")
    monkeypatch.setenv("LANELAB_BASE_URL", sim_url)
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANELAB_LIVE_OPT_IN", raising=False)
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


def test_live_needs_a_budget_and_an_opt_in(env, capsys, monkeypatch):
    assert main(["matrix", "--live"]) == 2
    assert "--budget" in capsys.readouterr().err
    assert main(["matrix", "--live", "--budget", "3"]) == 2
    assert "LANELAB_LIVE_OPT_IN" in capsys.readouterr().err


def test_live_plan_over_budget_is_refused_before_anything_happens(env, capsys, monkeypatch):
    monkeypatch.setenv("LANELAB_LIVE_OPT_IN", "1")
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert main(["matrix", "--live", "--budget", "2", "--factors", "tools"]) == 2
    err = capsys.readouterr().err
    assert "limit of 2" in err and "nothing was sent" in err and "--budget" in err
    assert not (env / "out" / "runs").exists() or not list((env / "out" / "runs").iterdir())


def test_without_a_base_url_it_starts_its_own_simulator(env, capsys, monkeypatch):
    monkeypatch.delenv("LANELAB_BASE_URL")
    assert main(["matrix", "--factors", "x_app", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "started a simulator" in out and "policy 2026-05-25" in out
