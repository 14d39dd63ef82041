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


def body_of(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON body the simulator logged for a request (it keeps it parsed, or as text)."""
    body = request["body"]
    body = json.loads(body) if isinstance(body, str) else body
    assert isinstance(body, dict) and not body.get("truncated"), f"no readable body for {request['path']}"
    return body


def check_diagnose(done: Any, steps: dict[str, dict[str, Any]], token: str, masked: str) -> int:
    """``diagnose --profile hermes-0.14.0 --live``: refused without --yes and under its worst case, each before
    anything is sent; with --yes within the worst case, the verdict from the cheapest requests only. Returns the
    number of inference requests it sent."""
    log, worst = done.sim_requests, done.result()["diagnose_worst"]
    assert worst > 1

    # no terminal, no --yes: the confirmation shown first, then one line, nothing sent (not even a usage read)
    no_yes = steps["diagnose_no_yes"]
    assert no_yes["returncode"] == 2, no_yes
    (line,) = no_yes["stderr"].strip().splitlines()
    assert line.startswith("lanelab diagnose: ") and "need a confirmation" in line and "--yes" in line
    assert "nothing was sent" in line
    shown = no_yes["stdout"]
    assert NOTICE in shown and "host: api.anthropic.com (https://api.anthropic.com)" in shown
    assert f"credential: {masked}" in shown and f"cost: {worst} inference requests" in shown
    assert during(log, no_yes) == [], "diagnose without --yes sent something"

    # a budget one below the worst case: refused before the credential and the confirmation, naming the cost
    over = steps["diagnose_over_budget"]
    assert over["returncode"] == 2, over
    (line,) = over["stderr"].strip().splitlines()
    assert f"up to {worst} requests" in line and f"budget of {worst - 1}" in line and "nothing was sent" in line
    assert f"--budget {worst}" in line
    assert NOTICE not in over["stdout"] and over["stdout"] == ""
    assert during(log, over) == [], "an over-budget diagnosis sent something"

    # confirmed with --yes, the worst case as the budget: the verdict, cheapest requests to the API host only
    run = steps["diagnose"]
    assert run["returncode"] in (0, 1), run
    out = run["stdout"]
    assert NOTICE in out and f"credential: {masked}" in out and "confirmed with --yes" in out
    assert out.index("confirmed with --yes") < out.index("Requests:")
    sent = inference(during(log, run))
    assert 1 <= len(sent) <= worst
    assert {r["headers"]["host"] for r in sent} == {"api.anthropic.com"}
    assert all(body_of(r)["max_tokens"] == 1 and not body_of(r).get("stream") for r in sent), \
        "every diagnose request with max_tokens 1 and no streaming"
    (run_file,) = (done.out / "runs").glob("diagnose_hermes-0.14.0_*.jsonl")
    loaded = load_run(run_file)
    assert loaded.header["mode"] == "live" and loaded.header["host"] == "https://api.anthropic.com"
    assert loaded.header["policy"] is None and loaded.header["design"] == "diagnose"
    assert len(loaded.cells) == len(sent), "one cell per request sent"
    (note,) = loaded.of_kind("note")
    verdict = note["verdict"]["sentence"]
    assert verdict and verdict in out, "the verdict printed"
    assert note["requests"] == len(sent)
    if run["returncode"] == 0:
        assert "`mcp__` instead of `mcp_`" in verdict, "the simulator's model of Hermes 0.14.0: the tool prefix"
    assert f"spent {len(sent)} request(s)" in out and "under the live API (https://api.anthropic.com)" in out
    (report,) = (done.out / "diagnose").glob("diagnose_hermes-0.14.0_*.md")
    assert report.stem == run_file.stem and verdict in report.read_text()
    for text in (out, run["stderr"], run_file.read_text(), report.read_text()):
        assert token not in text and token[13:] not in text
    return len(sent)


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
    # stopped by Ctrl-C after its summary: exit 130, as every command (docs/contracts.md §6)
    assert capture["returncode"] == 130 and capture["client_status"] == 400 and "1 exchange(s)" in capture["stdout"]
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

    # diagnose: the confirmation, its refusals (nothing sent) and a confirmed run within the worst case
    diagnosed = check_diagnose(done, steps, token, masked)

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
    print(f"\nrehearsed live CLI session: {done.seconds:.1f} s, {len(inference(log))} inference requests "
          f"(diagnose: {diagnosed} of at most {done.result()['diagnose_worst']}, in "
          f"{steps['diagnose']['ended'] - steps['diagnose']['started']:.1f} s)")
