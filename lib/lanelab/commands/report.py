"""``python -m lanelab report RUN… [--out DIR] [--bundle] [--compare BUNDLE…]``: turn run files into the shareable
HTML and Markdown reports, and optionally a findings bundle to share or other people's bundles to compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lanelab.commands import progress
from lanelab.config import Settings
from lanelab.errors import InputError, UserError

NAME = "report"
HELP = "build reports/findings.html and findings.md (the answer, charts, tables) from run files"
DESCRIPTION = (
    "Loads one or more run files (JSON Lines written by 'lanelab matrix' or notebook 02), says what moves the "
    "client's request between billing lanes, answers the three questions of hermes-agent #32243, and writes a "
    "self-contained HTML report and a GitHub-ready Markdown report (figures as PNG files beside it). Bisect probes "
    "are counted apart from matrix cells; lines that cannot be read are skipped and listed. With two runs it also "
    "compares them cell by cell. --bundle also writes a findings bundle (one redacted JSON file per run, without "
    "account identifiers) to attach to an issue; --compare shows other people's bundles side by side. Everything is "
    "redacted; if a secret is still found, nothing is written."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run files (.jsonl); default: every run under LANELAB_OUT/runs, else (without "
                             "--compare) the kit's sample runs, with a note saying so")
    parser.add_argument("--out", type=Path, default=None, help="directory for the reports (default: LANELAB_OUT)")
    parser.add_argument("--name", default="findings",
                        help="file name stem, a plain name without '/' (default: %(default)s)")
    parser.add_argument("--rows", default=None, help="factor on the heatmap's rows (default: chosen from the data)")
    parser.add_argument("--cols", default=None, help="factor on the heatmap's columns (default: chosen from the data)")
    parser.add_argument("--bundle", action="store_true",
                        help="also write a findings bundle per run: OUT/NAME.bundle.json (NAME-RUN.bundle.json "
                             "with several runs)")
    parser.add_argument("--plan", default=None, metavar="TYPE",
                        help="the plan type to record in the bundle, e.g. max or pro (default: unknown)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="BUNDLE", type=Path,
                        help="findings bundles from other people to show side by side in the report")
    parser.add_argument("--timeline", action=argparse.BooleanOptionalAction, default=None,
                        help="add 'when would this request have been billed where?': the runs' profile sent to an "
                        "embedded simulator under every dated snapshot (a model; nothing leaves this machine). "
                        "Default: on for simulator runs in sim mode, off for live runs")


def run(args: argparse.Namespace) -> int:
    from lanelab.findings import bundles, render, report
    from lanelab.runs import load_runs, run_paths

    settings = Settings.from_env()
    stem = render.safe_stem(args.name)
    paths = [Path(p) for p in args.runs] or run_paths(settings, samples=False)
    if not paths and not args.compare:  # nothing of the user's: the kit's sample runs, said so
        paths = run_paths(settings)
        if paths:
            print(f"note: no run files under {settings.runs_dir}; this report is built from the kit's {len(paths)} "
                  "sample runs (data/runs/samples), not from requests of yours.", file=sys.stderr)
    if not paths and not args.compare:
        raise UserError(f"No run files given and none under {settings.runs_dir}.",
                        hint="Run 'python -m lanelab matrix' (or notebook 02) first, or pass RUN files.")
    for p in paths:
        if p.is_dir():
            raise InputError(f"{p} is a directory.", hint="Pass run files, e.g. 'reports/runs/*.jsonl'.")
    others = bundles.load_bundles(args.compare)
    out = args.out or settings.out
    secrets = report.stored_secrets(settings)
    progress(f"reading {len(paths)} run file(s)…")
    runs = load_runs(paths)
    if not others and not any(r.cells for r in runs):
        skipped = [w for r in runs for w in r.warnings]
        first = f" ({len(skipped)} line(s) skipped; the first: {skipped[0]})" if skipped else ""
        raise InputError(f"No usable cell record in {', '.join(str(p) for p in paths)}{first}.",
                         "Pass run files written by 'lanelab matrix' (JSON Lines, one cell per line).")
    asked = args.timeline if args.timeline is not None else (None if settings.mode == "sim" else False)
    progress(f"working out the findings of {sum(len(r.cells) for r in runs)} cell(s)…")
    findings = report.collect(runs, rows=args.rows, cols=args.cols, bundles=others,
                              timeline=report.timeline_for(runs, asked=asked))
    progress("drawing and writing the report…")
    for warning in findings.skipped:
        print(f"skipped {Path(warning.path).name} line {warning.line}: {warning.problem}", file=sys.stderr)
    if args.bundle and findings.df.empty:
        raise InputError("There is no matrix run to bundle.", "A bundle describes a matrix run; send one first.")
    html_path, md_path = report.write_reports(findings, out, stem=stem, secrets=secrets)
    written = bundles.write_bundles(findings, out, stem=stem, plan=args.plan, secrets=secrets) if args.bundle else []
    for path in (html_path, md_path, *written):
        print(path)
    return 0
