"""``python -m lanelab report RUN… [--out DIR]``: turn run files into the shareable HTML and Markdown reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lanelab.config import Settings
from lanelab.errors import InputError, UserError

NAME = "report"
HELP = "build reports/findings.html and findings.md (answers, matrix, plots) from run files"
DESCRIPTION = (
    "Loads one or more run files (JSON Lines written by 'lanelab matrix' or notebook 02), answers the three questions "
    "of hermes-agent #32243 from them, and writes a self-contained HTML report and a GitHub-ready Markdown report "
    "(figures as PNG files beside it). With two runs it also compares them cell by cell. Everything is redacted; "
    "if a secret is still found, nothing is written."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run files (.jsonl); default: every run under LANELAB_OUT/runs, else the samples")
    parser.add_argument("--out", type=Path, default=None, help="directory for the reports (default: LANELAB_OUT)")
    parser.add_argument("--name", default="findings", help="file name stem (default: %(default)s)")
    parser.add_argument("--rows", default=None, help="factor on the heatmap's rows (default: chosen from the data)")
    parser.add_argument("--cols", default=None, help="factor on the heatmap's columns (default: chosen from the data)")


def _check_runs(paths: list[Path]) -> None:
    """Refuse (one line) when no run holds a usable cell; otherwise say on stderr what loading the runs had to skip,
    one line each (the report is built from the rest)."""
    from lanelab.runs import load_runs

    runs = load_runs(paths)
    warnings = [w for r in runs for w in r.warnings]
    if not any(r.cells for r in runs):
        first = f" ({len(warnings)} line(s) skipped; the first: {warnings[0]})" if warnings else ""
        raise InputError(f"No usable cell record in {', '.join(str(p) for p in paths)}{first}.",
                         "Pass run files written by 'lanelab matrix' (JSON Lines, one cell per line).")
    for warning in warnings:
        print(f"lanelab report: warning: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from lanelab.findings import report
    from lanelab.runs import run_paths

    settings = Settings.from_env()
    paths = [Path(p) for p in args.runs] or run_paths(settings)
    if not paths:
        raise UserError(f"No run files given and none under {settings.runs_dir}.",
                        hint="Run 'python -m lanelab matrix' (or notebook 02) first, or pass RUN files.")
    for p in paths:
        if p.is_dir():
            raise UserError(f"{p} is a directory.", hint="Pass run files, e.g. 'reports/runs/*.jsonl'.")
    _check_runs(paths)
    html_path, md_path = report.build(paths, args.out or settings.out, stem=args.name, rows=args.rows, cols=args.cols,
                                      secrets=report.stored_secrets(settings))
    print(html_path)
    print(md_path)
    return 0
