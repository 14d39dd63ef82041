"""Issue 7, interruption: ``python -m lanelab matrix`` killed with SIGKILL in the middle of a run, a torn last line
added as a kill mid-write would leave it, then the same command run again. Nothing is lost, nothing is sent twice,
and the run file is valid JSON Lines afterwards.

What "sent twice" means, precisely: a cell whose record is in the run file when the runner dies must not be sent
again. A cell whose request was sent but whose record was never written (in flight at the kill, or answered and
not yet stored: the runner holds a concurrency slot until the record is on disk, so there are at most
`--concurrency` such cells) has no record, so the resume sends it again: that second send is allowed, once, and only
for such a cell. Sends are counted by the simulator's request log; the two runs are told apart by their credential (each
process mints its own from the simulator), and a request is attributed to its cell by what it put on the wire.
Cells whose requests are byte-for-byte identical (a level equal to the profile's own value) are counted as a group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from lanelab.config import Settings
from lanelab.devtools import audit
from lanelab.matrix.plan import MatrixPlan, PlannedCell
from lanelab.runs import load_run
from lanelab.sim.server import SimHandle, running_simulator
from lanelab.wire.spec import build_request

pytestmark = [pytest.mark.hardening, pytest.mark.slow]  # SIGKILLs a matrix CLI process mid-run

PROFILE, RUN_ID, CONCURRENCY = "sdk-minimal", "resume-under-test", 4
#: Slow enough that a run of every factor's cells takes a few seconds at this concurrency.
LATENCY = "latency=200ms"
KILL_AFTER = 5             # cell records in the file before the kill
DEADLINE_S = 90.0          # generous: only ever reached when something hangs
#: Headers the transport adds or that carry the credential: not part of a cell's identity.
NOT_IDENTITY = {"host", "content-length", "connection", "accept-encoding", "authorization", "x-api-key"}


# --------------------------------------------------------------------------------------------------- helpers
def command() -> list[str]:
    return [sys.executable, "-m", "lanelab", "matrix", "--profile", PROFILE, "--run-id", RUN_ID,
            "--concurrency", str(CONCURRENCY), "--no-progress"]


def environment(sim: SimHandle, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    env.update(LANELAB_MODE="sim", LANELAB_BASE_URL=sim.base_url, LANELAB_OUT=str(tmp_path / "out"),
               LANELAB_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    return env


def cell_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n") if b'"record": "cell"' in line)


def identity(method: str, path: str, query: dict[str, Any], headers: dict[str, str], body: Any,
             credential_headers: set[str]) -> str:
    """What a request put on the wire, minus transport and credential values (but with where the credential went)."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in NOT_IDENTITY}
    return json.dumps([method, path, query or {}, kept, body, sorted(credential_headers)], sort_keys=True)


def cell_identity(cell: PlannedCell, base_url: str) -> str:
    req = build_request(cell.spec, base_url, "sk-ant-oat01-placeholder-placeholder")
    body = json.loads(req.content) if req.content else None
    headers = dict(req.headers)
    return identity(req.method, req.url.path, dict(req.url.params), headers, body,
                    {k for k in ("authorization", "x-api-key") if k in headers})


def log_identity(entry: dict[str, Any]) -> str:
    headers = entry.get("headers") or {}
    return identity(entry["method"], entry["path"], entry.get("query") or {}, headers, entry.get("body"),
                    {k for k in ("authorization", "x-api-key") if k in headers})


def credential_of(entry: dict[str, Any]) -> str | None:
    """The (masked) credential a logged request carried: which of the two runs sent it."""
    headers = entry.get("headers") or {}
    auth = headers.get("authorization", "")
    return auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else headers.get("x-api-key")


def sim_log(sim: SimHandle) -> list[dict[str, Any]]:
    return httpx.get(sim.base_url + "/_sim/requests", timeout=10.0).json()


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{out}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------------- the proof
def test_sigkill_torn_line_and_resume_lose_nothing_and_send_nothing_twice(tmp_path: Path):
    # its own server: the killed runner's requests still in flight must not reach the next test's simulator
    with running_simulator(faults=LATENCY) as sim:
        settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out")
        plan = MatrixPlan.build(PROFILE, "ofat", None, settings)
        cells = plan.planned()
        assert len(cells) > 4 * KILL_AFTER
        group_of = {c.cell_id: cell_identity(c, sim.base_url) for c in cells}
        path = settings.runs_dir / f"{RUN_ID}.jsonl"
        env = environment(sim, tmp_path)

        # 1. start the run, kill it with SIGKILL once some (not all) cells are recorded
        proc = subprocess.Popen(command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: cell_lines(path) >= KILL_AFTER, f"{KILL_AFTER} cell records", proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        first = load_run(path)
        recorded = set(first.cells)
        assert KILL_AFTER <= len(recorded) < len(cells), "the kill must land in the middle of the run"
        assert not any(n.get("event") == "finished" for n in first.of_kind("note"))
        assert all(r["observation"]["attempts"] == 1 for r in first.cells.values())
        run1_credentials = {credential_of(e) for e in sim_log(sim)}
        assert len(run1_credentials) == 1 and None not in run1_credentials
        (run1_credential,) = run1_credentials

        # 2. a torn last line, as a kill in the middle of an append leaves it: detected, dropped, reported
        pending = [c for c in cells if c.cell_id not in recorded]
        data = path.read_bytes()
        if data.endswith(b"\n"):
            torn_cell = pending[0]
            line = json.dumps({**next(iter(first.cells.values())), "cell_id": torn_cell.cell_id,
                               "levels": torn_cell.levels}).encode()
            with path.open("ab") as f:
                f.write(line[: len(line) // 2])
            data = path.read_bytes()
        torn_line = data.count(b"\n") + 1
        loaded = load_run(path)
        assert [(w.line, "torn" in w.problem) for w in loaded.warnings] == [(torn_line, True)]
        assert set(loaded.cells) == recorded  # the half record counts for nothing

        # 3. the same command again: resumes
        done = subprocess.run(command(), env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        log = sim_log(sim)

    # the run file is valid JSON Lines: every line complete and an object, the header first and once
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = [json.loads(x) for x in raw.decode().split("\n")[:-1]]
    assert all(isinstance(x, dict) for x in lines)
    assert lines[0]["record"] == "header" and sum(x["record"] == "header" for x in lines) == 1
    final = load_run(path)
    assert final.warnings == []
    assert any(n.get("event") == "resumed" for n in final.of_kind("note"))

    # sends per run, attributed to cells by what they put on the wire
    run1 = [e for e in log if credential_of(e) == run1_credential]
    run2 = [e for e in log if credential_of(e) != run1_credential]
    assert len({credential_of(e) for e in run2}) == 1, "the resume sends with a credential of its own"
    groups = set(group_of.values())
    pending_by_group = Counter(group_of[c.cell_id] for c in pending)
    recorded_by_group = Counter(group_of[c] for c in recorded)
    sent2 = Counter(log_identity(e) for e in run2)
    sent1 = Counter(log_identity(e) for e in run1)
    unrecorded = len(run1) - len(recorded)  # sends of the killed run that never got a record

    cell_ids = [x["cell_id"] for x in lines if x["record"] == "cell"]
    per_cell = Counter(cell_ids)
    lost = sum(1 for c in cells if per_cell[c.cell_id] == 0)
    duplicates = (sum(max(0, sent2[g] - pending_by_group[g]) for g in groups)  # recorded cells sent again
                  + sum(n for g, n in sent2.items() if g not in groups))       # sends that are no cell at all
    # the killed run's sends that never got a record: each such cell is pending, so the resume sends it again
    inflight_resent = sum(min(n, sent2[g]) for g, n in (sent1 - recorded_by_group).items() if g in groups) \
        + sum(n for g, n in (sent1 - recorded_by_group).items() if g not in groups)  # cut off before the body
    audit.record("resume", resume_duplicates=duplicates, resume_inflight_resent=inflight_resent,
                 resume_inflight_bound=CONCURRENCY, resume_lost=lost,
                 detail={"cells": len(cells), "recorded_before_kill": len(recorded),
                         "sent_without_record_at_kill": unrecorded, "sent_by_resume": len(run2),
                         "torn_line": torn_line, "concurrency": CONCURRENCY, "kills": 1})

    assert lost == 0 and duplicates == 0
    assert f"{len(recorded)} resumed" in done.stdout
    assert f":{torn_line}: torn last line" in done.stdout  # the user is told which line was dropped
    assert set(cell_ids) == {c.cell_id for c in cells} and set(per_cell.values()) == {1}
    # the resume sent exactly the cells that had no record, each once, and nothing else
    assert sent2 == pending_by_group
    assert all(r["observation"]["attempts"] == 1 for r in final.cells.values())
    # every recorded cell of the killed run was sent by it once; the killed run's other sends (in flight, or
    # answered but not yet stored, at the kill) went to cells without a record, each at most once, and only those
    # cells were sent again
    assert all(sent1[g] >= n for g, n in recorded_by_group.items())
    resent = sent1 - recorded_by_group  # where the server saw their bodies; a request cut off early has none
    assert all(g not in groups or n <= pending_by_group[g] for g, n in resent.items())
    assert 0 <= unrecorded <= min(CONCURRENCY, len(pending)), "more cells sent without a record than slots"
    assert inflight_resent == unrecorded  # every in-flight cell was sent again, once: the figure the audit prints


def test_the_audit_prints_in_flight_resends_next_to_completed_ones(tmp_path, monkeypatch):
    """"cells sent twice after a SIGKILL: 0" hid the resends a kill causes by design; both figures are printed,
    the in-flight one with its bound."""
    monkeypatch.setenv("LANELAB_AUDIT_DIR", str(tmp_path))
    audit.record("resume", resume_duplicates=0, resume_inflight_resent=3, resume_inflight_bound=4, resume_lost=0)
    audit.record("resume-again", resume_duplicates=0, resume_inflight_resent=2, resume_inflight_bound=4)
    text = audit.format_summary(audit.summary())
    lines = {line.split("  ")[1].strip(): line for line in text.splitlines() if line.startswith("  ")}
    assert lines["completed cells sent again after a SIGKILL"].split()[-1] == "0"
    inflight = lines["in-flight cells sent again after a SIGKILL"]
    assert inflight.endswith(" 5 (by design; at most 8: --concurrency per kill)")
    assert not any("twice" in line for line in lines)
