"""`make lab` (python -m lanelab lab): JupyterLab on loopback with the simulator already running, reached with the
printed token URL, stopped by Ctrl-C. (Token, XSRF, SIGTERM, private home and live mode: test_lab_security.py.)"""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_lab_serves_the_notebooks_with_a_simulator_and_stops_on_interrupt(tmp_path):
    env = {**os.environ, "LANELAB_OUT": str(tmp_path / "out"), "LANELAB_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "lab", "--no-browser"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines, deadline = {}, time.monotonic() + 120
        while len(lines) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            key, _, value = line.partition(": ")
            if key in ("simulator", "JupyterLab"):
                lines[key] = value.split()[0]
        sim_url, lab_url = lines["simulator"], lines["JupyterLab"]
        assert sim_url.startswith("http://127.0.0.1:") and lab_url.startswith("http://127.0.0.1:")
        page, _, token = lab_url.partition("?token=")
        assert page.endswith("/lab/tree/01_oauth_flow.ipynb") and len(token) >= 32
        assert httpx.get(f"{sim_url}/_sim/policy", timeout=5).json()["name"] == "2026-05-25"
        contents = httpx.get(lab_url.split("/lab/")[0] + "/api/contents", params={"token": token}, timeout=10).json()
        assert {"01_oauth_flow.ipynb", "02_request_matrix.ipynb"} <= {c["name"] for c in contents["content"]}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{sim_url}/_sim/policy", timeout=2)
