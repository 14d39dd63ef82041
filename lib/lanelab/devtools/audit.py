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

#: The figures the summary prints, in order, with how they combine across records.
FIGURES = {
    "canary_hits": ("canary hits in produced files", "sum"),
    "files_scanned": ("files scanned for the canary", "sum"),
    "fuzz_cases": ("fuzz cases run", "sum"),
    "fault_classes_survived": ("fault classes survived", "sum"),
    "fault_classes_total": ("fault classes in all", "sum"),
    "resume_duplicates": ("cells sent twice after a SIGKILL and resume", "sum"),
    "resume_lost": ("cells lost after a SIGKILL and resume", "sum"),
    "foreign_files_changed": ("foreign credential files changed", "sum"),
    "bad_inputs_tried": ("bad inputs tried (CLI, data, runs, proxy)", "sum"),
    "tracebacks": ("tracebacks shown for a bad input", "sum"),
    "leak_paths_tried": ("leak paths tried (canaries, proxy env on/off)", "sum"),
}


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
        for key in FIGURES:
            if key in data:
                totals[key] = totals.get(key, 0) + data[key]
    return {"tests": tests, **totals}


def format_summary(s: dict[str, Any]) -> str:
    lines = ["lanelab hardening audit", ""]
    for key, (label, _) in FIGURES.items():
        lines.append(f"  {label:48} {s.get(key, 'not measured')}")
    lines += ["", f"  from {len(s['tests'])} test record(s): {', '.join(s['tests']) or 'none'}"]
    return "\n".join(lines)
