"""Rehearsal scenario: the CLI's live login end to end, as a person would do it, then ``creds``.

1. ``python -m lanelab login --label live-pkce [ARGS…]`` (live mode, opt-in, default live endpoint set);
2. its authorize link is opened by a stand-in for the person's browser (follows redirects, trusts the test CA) and
   the value the callback page shows is read off the page;
3. that value is pasted into the login's standard input;
4. ``python -m lanelab creds``.

Writes ``$REHEARSAL_DIR/result.json`` (each step: argv, exit status, stdout, stderr, and for the browser the pages
it went through) and exits 0 only when every step worked: login exit 0, the credential saved under ``live-pkce``,
``creds`` exit 0 and listing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _browser import open_link

LABEL = "live-pkce"
results: dict[str, Any] = {"steps": []}
out = Path(os.environ["REHEARSAL_DIR"], "result.json")


def record(step: str, **fields: Any) -> dict[str, Any]:
    entry = {"step": step, **fields}
    results["steps"].append(entry)
    out.write_text(json.dumps(results, indent=1))
    return entry


def browser_paste_value(url: str) -> str | None:
    """What a person copies from the callback page after opening ``url`` (None when no page shows one)."""
    seen = open_link(url)
    record("browser", url=url, found=bool(seen["value"]), **{k: v for k, v in seen.items() if k != "value"})
    return seen["value"]


def main() -> int:
    argv = [sys.executable, "-m", "lanelab", "login", "--label", LABEL, *sys.argv[1:]]
    login = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert login.stdout is not None
    shown: list[str] = []
    url = None
    for line in login.stdout:
        shown.append(line)
        if line.startswith("https://"):
            url = line.strip()
            break
    value = browser_paste_value(url) if url else None
    rest, err = login.communicate(input=(value or "") + "\n", timeout=60)
    record("login", argv=argv[1:], returncode=login.returncode, stdout="".join(shown) + rest, stderr=err,
           authorize_url=url)
    saved = Path(os.environ["LANELAB_HOME"]).rglob("*")
    record("store", files=sorted(str(p.relative_to(os.environ["LANELAB_HOME"])) for p in saved if p.is_file()))
    creds = subprocess.run([sys.executable, "-m", "lanelab", "creds"], capture_output=True, text=True, timeout=60,
                           check=False)
    record("creds", argv=["-m", "lanelab", "creds"], returncode=creds.returncode, stdout=creds.stdout,
           stderr=creds.stderr)
    ok = (login.returncode == 0 and value is not None and creds.returncode == 0 and LABEL in creds.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
