"""Interrupting a matrix run in a notebook (Jupyter's "Interrupt kernel") stops the sending, not only the waiting.

In a notebook the event loop is already running, so the run goes to a worker thread (``run_sync``). The interrupt
lands in the waiting kernel thread; the run must stop there too, at once, keeping what it wrote, so that in live mode
an interrupt stops the spend. Run again, the same plan sends only what is missing, with no cell recorded twice.

The notebook is played by a process of its own: a running event loop calls ``plan.run`` synchronously (as a cell
does), with SIGINT raising ``KeyboardInterrupt`` (as in a kernel); the interrupt is sent when the tenth cell is
stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a process of its own, with a simulator and a few hundred cells

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import asyncio, json, os, signal, sys, time
    from pathlib import Path
    from lanelab.config import Settings
    from lanelab.matrix.plan import MatrixPlan
    from lanelab.runs import load_run
    from lanelab.sim.server import running_simulator

    out = Path(sys.argv[1])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # what a kernel does while a cell runs
    with running_simulator(faults="latency=20ms@/v1/messages") as sim:
        settings = Settings(mode="sim", base_url=sim.base_url, home=out / "home", out=out / "out")
        plan = MatrixPlan.build("hermes-0.14.0", "full", ["tools", "auth", "betas", "stream"], settings)
        seen = {}

        def progress(done, total):
            seen.setdefault("total", total)
            if done == 10 and "at" not in seen:
                seen["at"] = time.monotonic()
                os.kill(os.getpid(), signal.SIGINT)

        async def cell():  # a notebook cell: synchronous code inside the kernel's running loop
            return plan.run(credential="sim-pkce", run_id="interrupted", concurrency=4, progress=False,
                            usage_snapshots=False, on_progress=progress)

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(cell())
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        stopped, returned = time.monotonic() - seen["at"], time.time()
        path = out / "out" / "runs" / "interrupted.jsonl"
        at_interrupt = len(load_run(path).cells)
        time.sleep(1.0)  # anything still sending would show now
        sent = sim.state.requests()
        sent_later = sum(1 for e in sent if e["time"] > returned)
        again = loop.run_until_complete(cell())  # the cell run again
        ids = [c["cell_id"] for c in load_run(path).of_kind("cell")]
        print(json.dumps({"interrupted": interrupted, "cells": len(plan.cells), "total": seen.get("total"),
                          "seconds": stopped, "at_interrupt": at_interrupt, "sent": len(sent),
                          "sent_later": sent_later, "resumed": again.resumed, "sent_again": again.sent,
                          "ids": len(ids), "unique_ids": len(set(ids))}))
''')


def test_interrupting_a_run_in_a_notebook_stops_the_sending_and_a_rerun_sends_only_the_rest(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    env.update(PYTHONPATH=str(REPO / "lib"), LANELAB_OUT=str(tmp_path / "out"), LANELAB_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], check=False, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["interrupted"] and got["total"] == got["cells"] > 100, got
    # stopped at once (sending the rest would take seconds): the ten cells, plus at most the four in flight, were
    # recorded, and nothing was sent afterwards
    assert 10 <= got["at_interrupt"] <= 14 and got["seconds"] < 1.0, got
    # (the simulator stamps a request when it starts on it: on a busy machine one of the four in flight can start
    # there after the cell returned; sending on would show as a hundred more in the second that follows)
    assert got["sent_later"] <= 4 and got["sent"] <= got["at_interrupt"] + 4, got
    # the rerun sends exactly what is missing; every cell is recorded once
    assert got["resumed"] == got["at_interrupt"] and got["sent_again"] == got["cells"] - got["at_interrupt"], got
    assert got["ids"] == got["unique_ids"] == got["cells"], got
