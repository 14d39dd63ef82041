"""Rehearsal scenario: the notebooks in live mode, executed headless as ``make demo`` does (see 6. for the order).

1. 01: log in through the authorize link on the live host. Where a person would open the link and paste into the
   box, one extra cell (inserted after the widget cell, in a copy of the notebook) does the same with the stand-in
   browser; then the exchange at the live token host, the profile and usage probes, and the save under live-pkce.
2. 02 without the confirmation (``CONFIRM_LIVE`` false, the default): it must stop before sending.
3. 02 confirmed (``LANELAB_CONFIRM_LIVE=1``) within the default budget.
4. 03: the findings and the report from the live runs.
5. 04 confirmed: the captures through the recording proxy in front of the live API, the diff and the bisect.
6. 01_watch_lint_diagnose without the confirmation (``LANELAB_CONFIRM_LIVE=0``): the watch in front of the live API
   (no example traffic in live mode), lint, then it must stop at ``gate.require()`` before sending.
7. 01_watch_lint_diagnose confirmed (``LANELAB_CONFIRM_LIVE=1``): the diagnosis within the notebook's budget.
   (Run last, although a person reads it right after 01, so that 02-04 see the same account and runs as before.)

Writes ``$REHEARSAL_DIR/result.json`` (each notebook: ok or the error line, start and end times, the executed copy)
and keeps the executed copies under ``$REHEARSAL_DIR/executed``. Exits 0 when every step went as the scenario
expects (the test asserts what each did).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from lanelab.config import repo_root
from lanelab.devtools.notebook_exec import NotebookFailed, execute

NOTEBOOKS = repo_root() / "notebooks"
RESULTS = Path(os.environ["REHEARSAL_DIR"])
HERE = Path(__file__).resolve().parent
results: dict[str, Any] = {"steps": []}

#: What the person does at the paste box of notebook 01 (inserted after the widget cell; rehearsal only).
PERSON = f"""\
# rehearsal only: the person opens the authorize link in their browser and pastes what the callback page shows
import sys
sys.path.insert(0, {str(HERE)!r})
from _browser import paste_value
ui.paste.value = paste_value(flow.authorize_url)
ui.submit_button.click()
assert flow.credential is not None, flow.error
"""


def record(step: str, **fields: Any) -> dict[str, Any]:
    entry = {"step": step, **fields}
    results["steps"].append(entry)
    (RESULTS / "result.json").write_text(json.dumps(results, indent=1))
    return entry


def with_person(name: str) -> Path:
    """A copy of notebook ``name`` with the person's paste inserted after the cell that shows the login widget."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "LoginWidget(flow)" in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(PERSON))
    folder = RESULTS / "sources"
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


def notebook(step: str, name: str, env: dict[str, str] | None = None, source: Path | None = None) -> dict[str, Any]:
    started = time.time()
    out = RESULTS / "executed" / step
    try:
        done = execute(source or NOTEBOOKS / f"{name}.ipynb", out, env=env or {}, timeout=300, cwd=NOTEBOOKS)
        ok, error, executed = True, "", done.executed_path
    except NotebookFailed as exc:
        ok, error, executed = False, str(exc), out / f"{name}-err.ipynb"
    return record(step, notebook=name, ok=ok, error=error, started=started, ended=time.time(),
                  executed=str(executed))


def main() -> int:
    steps = [
        notebook("01", "01_oauth_flow", source=with_person("01_oauth_flow")),
        notebook("02_unconfirmed", "02_request_matrix", {"LANELAB_CONFIRM_LIVE": "0"}),
        notebook("02", "02_request_matrix", {"LANELAB_CONFIRM_LIVE": "1"}),
        notebook("03", "03_findings"),
        notebook("04", "04_maintainer_walkthrough", {"LANELAB_CONFIRM_LIVE": "1"}),
        notebook("diagnose_unconfirmed", "01_watch_lint_diagnose", {"LANELAB_CONFIRM_LIVE": "0"}),
        notebook("diagnose", "01_watch_lint_diagnose", {"LANELAB_CONFIRM_LIVE": "1"}),
    ]
    expected = [True, False, True, True, True, False, True]
    return 0 if [s["ok"] for s in steps] == expected else 1


if __name__ == "__main__":
    sys.exit(main())
