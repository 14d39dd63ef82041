"""Rehearsal scenario: a live run while the API's host name does not resolve (run with ``hosts=`` leaving
``api.anthropic.com`` out), as on a machine that is offline or whose DNS fails.

With a live credential already saved, ``matrix --live --yes --usage-snapshots``: every send fails before reaching the
server. Writes ``$REHEARSAL_DIR/result.json`` (argv, exit status, output); exits 0 when the command ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lanelab.auth.credential import Credential
from lanelab.auth.store import CredentialStore

CredentialStore(os.environ["LANELAB_HOME"]).save(Credential(
    label="live-pkce", access_token="sk-ant-oat01-" + "OfflineRun" * 5, mode="live",
    issuer="https://platform.claude.com", scopes=("user:inference", "user:profile")))
argv = ["matrix", "--live", "--yes", "--no-progress", "--usage-snapshots"]
started = time.time()
done = subprocess.run([sys.executable, "-m", "lanelab", *argv], capture_output=True, text=True, timeout=120,
                      check=False)
Path(os.environ["REHEARSAL_DIR"], "result.json").write_text(json.dumps({
    "argv": argv, "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
    "seconds": time.time() - started}, indent=1))
sys.exit(0)
