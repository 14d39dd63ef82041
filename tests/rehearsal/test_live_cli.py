"""Rehearsal: a new user's live CLI session, unchanged, under the real host names (scenarios/live_cli.py).

Every step's output is lined up with the simulator's request log by time (the steps run one after another), so each
assertion about what was sent is about that step alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from lanelab.config import LIVE_HOSTS
from lanelab.findings.report import SIM_NOTICE
from lanelab.live import NOTICE
from lanelab.runs import load_run

INFERENCE = ("/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/chat/completions")


def during(requests: list[dict[str, Any]], step: dict[str, Any], until: float | None = None) -> list[dict[str, Any]]:
    """The simulator's log entries received while ``step`` ran (up to ``until`` when given)."""
    end = step["ended"] if until is None else until
    return [r for r in requests if step["started"] <= r["time"] <= end]


def inference(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["path"] in INFERENCE]


@pytest.mark.timeout(900)  # four kernels (or a dozen commands) on a busy machine
def test_a_live_cli_session_end_to_end(rehearse):
    done = rehearse("live_cli", timeout=400)
    assert done.returncode == 0, done.describe()
    steps = {s["step"]: s for s in done.result()["steps"]}
    log = done.sim_requests
    token = json.loads((done.home / "credentials" / "live-pkce.json").read_text())["access_token"]
    masked = f"'live-pkce' (sk-ant-oat01-…{token[-4:]})"

    # login: the live endpoint set, saved as live-pkce, issued by the live token host
    assert "Endpoint set: live-claude-ai" in steps["login"]["stdout"] and "Saved 'live-pkce'" in steps["login"]["stdout"]
    assert "live-pkce" in steps["creds"]["stdout"] and "live https://platform.claude.com" in steps["creds"]["stdout"]

    # refusals send nothing at all
    sim_cred = steps["refused_sim_credential"]
    assert sim_cred["returncode"] == 2 and "'sim-pkce' was issued by the simulator" in sim_cred["stderr"]
    assert "cannot be sent to api.anthropic.com" in sim_cred["stderr"] and "Use 'live-pkce'" in sim_cred["stderr"]
    over = steps["refused_over_budget"]
    assert over["returncode"] == 2 and "6 inference requests against a limit of 3" in over["stderr"]
    assert "worst case" in over["stderr"] and "--levels tools=none,mcp__" in over["stderr"]
    assert NOTICE not in over["stdout"], "an over-budget plan is refused before the confirmation"
    no_tty = steps["refused_no_terminal"]
    assert no_tty["returncode"] == 2 and "--yes" in no_tty["stderr"] and "nothing was sent" in no_tty["stderr"]
    assert NOTICE in no_tty["stdout"] and "cost: 6 inference requests" in no_tty["stdout"]
    declined = steps["declined"]
    assert declined["returncode"] == 2 and declined["asked_at"] and "Not confirmed" in declined["stdout"]
    for name in ("refused_sim_credential", "refused_over_budget", "refused_no_terminal", "declined",
                 "bisect_no_yes"):
        assert during(log, steps[name]) == [], f"{name} sent something"

    # the run: notice, host, credential and cost on the terminal, the question, nothing sent before the answer
    run = steps["matrix"]
    assert run["returncode"] == 0 and run["asked_at"]
    before_question = run["stdout"].split("[y/N]")[0]
    assert NOTICE in before_question and "host: api.anthropic.com (https://api.anthropic.com)" in before_question
    assert f"credential: {masked}" in before_question and "cost: 6 inference requests" in before_question
    assert f"Send 6 requests to api.anthropic.com with {masked}? [y/N]" in run["stdout"]
    assert inference(during(log, run, until=run["asked_at"])) == [], "sent before the confirmation"
    sent = during(log, run)
    assert len(inference(sent)) == 6, "the plan, within its budget of 8"
    assert [r["path"] for r in sent if r["path"] == "/api/oauth/usage"] == ["/api/oauth/usage"], \
        "usage read at most before and after (the reading before is the cached one from the login)"
    assert "spent 6/8 inference requests" in run["stdout"] and "usage: before: cached reading from" in run["stdout"]
    assert "verdict: Baseline (hermes-0.14.0 as sent): extra_usage_exhausted (HTTP 400)" in run["stdout"]
    assert "tools=none" in run["stdout"].split("verdict:")[1]
    again = steps["matrix_yes"]
    assert again["returncode"] == 0 and "confirmed with --yes" in again["stdout"] and "6 resumed" in again["stdout"]
    assert during(log, again) == []

    # runs and reports say live, with no simulator banner
    (matrix_run,) = [p for p in (done.out / "runs").glob("hermes-0.14.0_ofat_live*.jsonl")]
    assert load_run(matrix_run).header["mode"] == "live" and load_run(matrix_run).header["policy"] is None
    md, html = (done.out / "findings.md").read_text(), (done.out / "findings.html").read_text()
    assert re.search(r"\|\s*live\s*\|\s*https://api\.anthropic\.com\s*\|", md), "the runs table: mode live, the host"
    assert SIM_NOTICE not in md and SIM_NOTICE[:40] not in html

    # capture in front of the live API, then bisect that capture (confirmed with --yes), within its budget
    capture = steps["capture"]
    assert capture["returncode"] == 0 and capture["client_status"] == 400 and "1 exchange(s)" in capture["stdout"]
    assert "forwarding to https://api.anthropic.com" in capture["stdout"]
    assert [r["headers"]["host"] for r in inference(during(log, capture))] == ["api.anthropic.com"]
    bisect = steps["bisect"]
    assert bisect["returncode"] == 0 and "cost: 10 inference requests" in bisect["stdout"]
    assert "the smallest difference that flips the verdict is 1 edit(s): tools" in bisect["stdout"]
    probes = inference(during(log, bisect))
    assert 0 < len(probes) <= 10
    assert all(json.loads(r["body"])["max_tokens"] == 1 if isinstance(r["body"], str) else
               r["body"]["max_tokens"] == 1 for r in probes)
    (bisect_run,) = (done.out / "runs").glob("bisect_*.jsonl")
    assert load_run(bisect_run).header["mode"] == "live"

    # the token went to the API host only, every request to a live host name, nothing to a control route
    assert {r["headers"]["host"] for r in log if "authorization" in r["headers"]} == {"api.anthropic.com"}
    assert {r["headers"]["host"] for r in log} <= LIVE_HOSTS
    assert not [r for r in log if r["path"].startswith("/_sim")]
    outputs = "".join(s.get("stdout", "") + s.get("stderr", "") for s in steps.values()) + done.stdout + done.stderr
    assert token not in outputs and token not in json.dumps(log)
    for name, path in done.files().items():
        if not name.endswith("credentials/live-pkce.json"):
            assert token not in path.read_text(errors="replace"), name
    live_messages = "".join(s.get("stdout", "") + s.get("stderr", "") for n, s in steps.items()
                            if n != "refused_sim_credential")
    assert "simulator" not in live_messages.lower()
    print(f"\nrehearsed live CLI session: {done.seconds:.1f} s, {len(inference(log))} inference requests")
