"""The hardening figures (issue 7): tests record what they measured, ``python -m lanelab audit`` prints the summary.

Each hardening test writes one small JSON file under ``LANELAB_AUDIT_DIR`` (default ``reports/audit``) through
:func:`record`; the summary adds them up. Figures, not verdicts: the tests themselves pass or fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lanelab.config import repo_root
from lanelab.datafiles import Table, problems
from lanelab.errors import InputError

#: The figures the summary prints, in order, with how they combine across records ("sum" or "max").
#:
#: A SIGKILL resends by design: a cell whose request was in flight (or answered but not yet stored) has no record,
#: so the resume sends it again. The runner holds a concurrency slot until a record is on disk, so each kill can
#: leave at most ``--concurrency`` such cells. The resume figures say both: completed cells sent again (must be 0)
#: and in-flight cells sent again, next to that bound (``resume_inflight_bound``: the concurrency of each kill,
#: summed over kills; printed with the resends, not on a line of its own).
FIGURES = {
    "canary_hits": ("canary hits in produced files", "sum"),
    "files_scanned": ("files scanned for the canary", "sum"),
    "fuzz_cases": ("fuzz cases run", "sum"),
    "fault_classes_survived": ("fault classes survived", "sum"),
    "fault_classes_total": ("fault classes in all", "sum"),
    "resume_duplicates": ("completed cells sent again after a SIGKILL", "sum"),
    "resume_inflight_resent": ("in-flight cells sent again after a SIGKILL", "sum"),
    "resume_inflight_bound": ("--concurrency per kill", "sum"),
    "resume_lost": ("cells lost after a SIGKILL and resume", "sum"),
    "foreign_files_changed": ("foreign credential files changed", "sum"),
    "body_200mb_rss_bytes": ("bytes of memory, 200 MB body via the proxy (413)", "max"),
    "body_200mb_forwarded_rss_bytes": ("the same with the limit raised (forwarded)", "max"),
    "bad_inputs_tried": ("bad inputs tried (CLI, data, runs, proxy)", "sum"),
    "tracebacks": ("tracebacks shown for a bad input", "sum"),
    "leak_paths_tried": ("leak paths tried (canaries, proxy env on/off)", "sum"),
}
#: Figures printed inside another's line: figure → the figure whose line carries it.
_SHOWN_WITH = {"resume_inflight_bound": "resume_inflight_resent"}


#: The shape of one record: every figure is a number.
_RECORD = Table({"test?": str, **{f"{k}?": float for k in FIGURES}})


def audit_dir() -> Path:
    env = os.environ.get("LANELAB_AUDIT_DIR")
    return Path(env) if env else repo_root() / "reports" / "audit"


def record(name: str, **figures: Any) -> Path:
    """Write ``figures`` measured by test ``name`` (overwrites that test's earlier record)."""
    unknown = set(figures) - set(FIGURES) - {"detail"}
    if unknown:
        raise ValueError(f"Unknown audit figure(s) {sorted(unknown)}; known: {', '.join(FIGURES)}.")
    folder = audit_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"test": name, **figures}, indent=1, default=str))
    return path


def summary(folder: Path | None = None) -> dict[str, Any]:
    """The figures of every record in ``folder`` added up, plus which tests contributed."""
    folder = folder or audit_dir()
    totals: dict[str, Any] = {}
    tests = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise InputError(f"The audit record {path} cannot be read ({type(exc).__name__}).",
                             "Delete it, or run `make audit` again (it starts from an empty folder).") from None
        found = problems(data, _RECORD, limit=1)
        if found:
            raise InputError(f"The audit record {path} is damaged: {found[0]}.", "Run `make audit` again.")
        tests.append(data.get("test", path.stem))
        for key, (_, how) in FIGURES.items():
            if key in data:
                totals[key] = max(totals.get(key, data[key]), data[key]) if how == "max" \
                    else totals.get(key, 0) + data[key]
    return {"tests": tests, **totals}


def format_summary(s: dict[str, Any]) -> str:
    """The summary as text: one line per figure (``not measured`` when no record has it)."""
    lines = ["lanelab hardening audit", ""]
    for key, (label, _) in FIGURES.items():
        if key in _SHOWN_WITH:
            continue
        value = str(s.get(key, "not measured"))
        for extra, host in _SHOWN_WITH.items():
            if host == key and key in s and extra in s:
                value += f" (by design; at most {s[extra]}: {FIGURES[extra][0]})"
        lines.append(f"  {label:48} {value}")
    lines += ["", f"  from {len(s['tests'])} test record(s): {', '.join(s['tests']) or 'none'}"]
    return "\n".join(lines)
