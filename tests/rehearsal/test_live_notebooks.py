"""Rehearsal: the notebooks in live mode, headless, under the real host names (scenarios/live_notebooks.py).

The executed copies are read back: what each cell showed, and when it finished (nbclient's timing), lined up with the
simulator's request log.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import nbformat
import pytest
from lanelab.config import LIVE_HOSTS
from lanelab.findings.report import SIM_NOTICE
from lanelab.live import NOTICE
from lanelab.runs import load_run

pytestmark = pytest.mark.notebook

INFERENCE = ("/v1/messages", "/v1/messages/count_tokens", "/v1/chat/completions", "/chat/completions")


def during(requests: list[dict[str, Any]], step: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in requests if step["started"] <= r["time"] <= step["ended"]]


def inference(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["path"] in INFERENCE]


def cells(step: dict[str, Any]) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(step["executed"], as_version=4).cells if c.cell_type == "code"]


def text_of(cell: nbformat.NotebookNode) -> str:
    """Everything a cell showed as text (streams, plain-text results, error lines)."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
        parts.append(out.get("data", {}).get("text/markdown", ""))
        parts += out.get("traceback", [])
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def finished_at(cell: nbformat.NotebookNode) -> float:
    return datetime.fromisoformat(cell.metadata["execution"]["shell.execute_reply"]).timestamp()


def confirmation_cell(step: dict[str, Any]) -> nbformat.NotebookNode:
    return next(c for c in cells(step) if "ConfirmWidget(gate)" in c.source)


def body_of(request: dict[str, Any]) -> dict[str, Any]:
    """The JSON body the simulator logged for a request (it keeps it parsed, or as text)."""
    body = request["body"]
    body = json.loads(body) if isinstance(body, str) else body
    assert isinstance(body, dict) and not body.get("truncated"), f"no readable body for {request['path']}"
    return body


def diagnose_worst_case(profile: str) -> int:
    """The most requests a live diagnosis of ``profile`` may send, as the kit plans it (nothing is sent)."""
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.walkthrough.diagnose import load_source, plan_requests
    from lanelab.walkthrough.lint import lint

    source = load_source(profile=profile)
    return plan_requests(minimal_spend(source.spec), lint(source.lint_input)).worst


def check_diagnose_notebook(done: Any, steps: dict[str, dict[str, Any]], masked: str) -> int:
    """Notebook 01_watch_lint_diagnose in live mode: the watch forwards nothing of its own, the confirmation is
    shown and, unconfirmed, nothing is sent; confirmed, the verdict from the cheapest requests, within the budget the
    confirmation named. Returns the number of inference requests the confirmed run sent."""
    log, worst = done.sim_requests, diagnose_worst_case("hermes-0.14.0")

    unconfirmed = steps["diagnose_unconfirmed"]
    assert not unconfirmed["ok"] and "NotConfirmed" in unconfirmed["error"], unconfirmed
    watch_cell = next(c for c in cells(unconfirmed) if "running_watch(" in c.source)
    assert re.search(r"point your client at: http://127\.0\.0\.1:\d+", text_of(watch_cell))
    shown = text_of(confirmation_cell(unconfirmed))
    assert NOTICE in shown and "host: api.anthropic.com (https://api.anthropic.com)" in shown
    assert f"credential: {masked}" in shown and f"cost: {worst} inference requests" in shown
    assert "Waiting for your confirmation" in shown
    budget = int(re.search(r"budget: (\d+) inference requests", shown).group(1))
    assert worst <= budget, "the notebook's budget covers the worst case of its own default profile"
    (failed,) = [c for c in cells(unconfirmed) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed.source.startswith("gate.require()")
    (error,) = [o for o in failed.outputs if o.get("output_type") == "error"]
    (line,) = error["traceback"]
    assert line.startswith(f"Not sent: {worst} live requests (at most) to api.anthropic.com are waiting for your "
                           "confirmation.")
    assert during(log, unconfirmed) == [], "the unconfirmed notebook sent something"

    confirmed = steps["diagnose"]
    assert confirmed["ok"], confirmed["error"]
    gate = confirmation_cell(confirmed)
    assert "Confirmed (the CONFIRM_LIVE parameter)" in text_of(gate) and f"credential: {masked}" in text_of(gate)
    sent = inference(during(log, confirmed))
    assert 1 <= len(sent) <= worst <= budget
    assert finished_at(gate) < min(r["time"] for r in sent), "sent before the confirmation cell ran"
    assert {r["headers"]["host"] for r in sent} == {"api.anthropic.com"}
    assert all(body_of(r)["max_tokens"] == 1 and not body_of(r).get("stream") for r in sent)
    (run_file,) = (done.out / "runs").glob("diagnose_hermes-0.14.0_*.jsonl")
    run = load_run(run_file)
    assert run.header["mode"] == "live" and run.header["host"] == "https://api.anthropic.com"
    assert len(run.cells) == len(sent)
    (note,) = run.of_kind("note")
    verdict_cell = next(c for c in cells(confirmed) if c.source.rstrip().endswith("diagnosis.verdict"))
    assert note["verdict"]["sentence"] in text_of(verdict_cell)
    return len(sent)


@pytest.mark.timeout(900)  # four kernels (or a dozen commands) on a busy machine
def test_the_notebooks_in_live_mode_end_to_end(rehearse):
    done = rehearse("live_notebooks", timeout=600)
    assert done.returncode == 0, done.describe() + json.dumps(done.result(), indent=1)
    steps = {s["step"]: s for s in done.result()["steps"]}
    log = done.sim_requests
    saved = done.home / "credentials" / "live-pkce.json"
    stored = json.loads(saved.read_text())
    token = stored["access_token"]
    masked = f"'live-pkce' (sk-ant-oat01-…{token[-4:]})"

    # 01: the notice; the login through the live hosts; saved as live, issued by the live token host
    first = cells(steps["01"])
    assert any(NOTICE in text_of(c) for c in first), "notebook 01 shows the notice in live mode"
    seen = [(r["method"], r["headers"]["host"], r["path"]) for r in during(log, steps["01"])]
    assert seen == [("GET", "claude.ai", "/oauth/authorize"), ("GET", "platform.claude.com", "/oauth/code/callback"),
                    ("POST", "platform.claude.com", "/v1/oauth/token"),
                    ("GET", "api.anthropic.com", "/api/oauth/profile"), ("GET", "api.anthropic.com", "/api/oauth/usage")]
    query = next(r for r in log if r["path"] == "/oauth/authorize")["query"]
    redirect = query["redirect_uri"] if isinstance(query, dict) else parse_qs(query)["redirect_uri"][0]
    assert redirect in ("https://platform.claude.com/oauth/code/callback",
                        ["https://platform.claude.com/oauth/code/callback"])
    assert (stored["mode"], stored["issuer"]) == ("live", "https://platform.claude.com")

    # 02 without the confirmation: the notice, host, credential and cost shown, one line, nothing sent
    unconfirmed = steps["02_unconfirmed"]
    assert not unconfirmed["ok"] and "NotConfirmed" in unconfirmed["error"]
    shown = text_of(confirmation_cell(unconfirmed))
    assert NOTICE in shown and "host: api.anthropic.com" in shown and f"credential: {masked}" in shown
    assert "cost: 6 inference requests" in shown and "budget: 10 inference requests" in shown
    assert "Waiting for your confirmation" in shown
    (error,) = [o for c in cells(unconfirmed) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(error["traceback"]) == 1 and error["traceback"][0].startswith("Not sent: 6 live requests")
    assert during(log, unconfirmed) == []

    # 02 confirmed: shown before the first inference request; the default plan within the default budget
    confirmed = steps["02"]
    assert confirmed["ok"], confirmed["error"]
    gate = confirmation_cell(confirmed)
    assert "Confirmed (the CONFIRM_LIVE parameter)" in text_of(gate)
    sent = inference(during(log, confirmed))
    assert len(sent) == 6 and finished_at(gate) < min(r["time"] for r in sent)
    usage = [r for r in during(log, confirmed) if r["path"] == "/api/oauth/usage"]
    assert len(usage) <= 2, "usage read at most before and after a run"
    (run_file,) = (done.out / "runs").glob("hermes-0.14.0_ofat_live*.jsonl")
    run = load_run(run_file)
    assert run.header["mode"] == "live" and len(run.cells) == 6

    # 03: the findings from the live runs, no simulator banner
    assert steps["03"]["ok"], steps["03"]["error"]
    md, html = (done.out / "findings.md").read_text(), (done.out / "findings.html").read_text()
    assert re.search(r"\|\s*live\s*\|\s*https://api\.anthropic\.com\s*\|", md), "the runs table: mode live, the host"
    assert SIM_NOTICE not in md and SIM_NOTICE[:40] not in html

    # 04: confirmed before the captures; captures and probes within the budget; the bisect run is live
    walkthrough = steps["04"]
    assert walkthrough["ok"], walkthrough["error"]
    gate = confirmation_cell(walkthrough)
    assert NOTICE in text_of(gate) and f"credential: {masked}" in text_of(gate)
    sent = inference(during(log, walkthrough))
    assert 2 < len(sent) <= 10 and finished_at(gate) < min(r["time"] for r in sent)
    assert load_run(done.out / "runs" / "04_walkthrough_bisect.jsonl").header["mode"] == "live"
    assert (done.out / "captures" / "04_walkthrough.jsonl").is_file()

    # 01_watch_lint_diagnose: stops at gate.require() unconfirmed; confirmed, the verdict within its budget
    diagnosed = check_diagnose_notebook(done, steps, masked)

    # the token reached the API host only; every request went to a live host name; no control route was used
    assert {r["headers"]["host"] for r in log if "authorization" in r["headers"]} == {"api.anthropic.com"}
    assert {r["headers"]["host"] for r in log} <= LIVE_HOSTS
    assert not [r for r in log if r["path"].startswith("/_sim")]
    # the token is in the credential file only; what the notebooks showed never mentions the simulator
    for name, path in done.files().items():
        if path != saved:
            assert token not in path.read_text(errors="replace"), name
    shown = "\n".join(text_of(c) for s in steps.values() for c in cells(s))
    assert token not in shown and "simulator" not in shown.lower()
    timing = ", ".join(f"{s['step']} {s['ended'] - s['started']:.1f} s" for s in steps.values())
    print(f"\nrehearsed live notebooks: {done.seconds:.1f} s, {len(inference(log))} inference requests "
          f"(diagnose: {diagnosed}); {timing}")
    assert Path(steps["04"]["executed"]).is_file()
