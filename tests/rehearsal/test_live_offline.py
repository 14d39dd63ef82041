"""Rehearsal: a live run whose requests never reach the server (the API host does not resolve), unchanged."""

from __future__ import annotations

import re

from lanelab.runs import load_run
from lanelab.walkthrough import namespace


def test_an_offline_live_run_spends_nothing_stops_and_says_what_to_check(rehearse):
    done = rehearse("live_offline", hosts=namespace.live_hosts() - {"api.anthropic.com"})
    assert done.returncode == 0, done.describe()
    result = done.result()
    out = result["stdout"]
    assert result["returncode"] == 1, result  # the run stopped
    sent = int(re.search(r"\((\d+) requests, (\d+) never reached the server\)", out).group(1))
    assert f"({sent} requests, {sent} never reached the server)" in out and 3 <= sent <= 6
    assert "Name or service not known: check your network / DNS" in out and "not counted as spend" in out
    assert "STOPPED: stopped after 3 sends in a row never reached the server" in out
    assert "spent 0/10 inference requests" in out and f"{sent} sends never reached the server and are not counted" in out
    assert "simulator" not in (out + result["stderr"]).lower()
    assert done.sim_requests == [], "nothing reached the server"
    (run_file,) = (done.out / "runs").glob("*.jsonl")
    notes = [r for r in load_run(run_file).of_kind("note") if r.get("event") == "unreached"]
    assert notes and notes[0]["requests"] == sent and notes[0]["stopped"]
