"""``python -m lanelab demo``: every notebook, in reading order, against a fresh simulator; outputs under reports/."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from lanelab.commands import count
from lanelab.config import DEFAULT_POLICY, Settings, repo_root

NAME = "demo"
HELP = "execute every notebook headless against the embedded simulator and write the matrix, plots and report"
DESCRIPTION = (
    "Starts the embedded simulator on a free loopback port (policy 2026-05-25 by default), then executes each notebook "
    "in notebooks/ in reading order with LANELAB_MODE=sim. Executed notebooks, runs and reports land under --out "
    "(default: reports/). Nothing touches the network or your own credential store: the demo keeps its credentials in "
    "OUT/.demo-home."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: $LANELAB_OUT or reports/)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="simulator policy (default: %(default)s)")
    parser.add_argument("--only", default=None, help="run only notebooks whose name contains this text")
    parser.add_argument("--keep-runs", action="store_true", help="keep earlier runs instead of starting fresh")
    parser.add_argument("--timeout", type=count(1), default=600,
                        help="per-cell timeout in seconds (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from lanelab.devtools.notebook_exec import execute, notebooks_in_order
    from lanelab.sim.server import running_simulator

    out = (args.out or Settings.from_env().out).resolve()
    out.mkdir(parents=True, exist_ok=True)  # an unusable --out fails here, before a simulator or notebook starts
    home = out / ".demo-home"
    if not args.keep_runs:
        shutil.rmtree(out / "runs", ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    executed_dir = out / "notebooks"
    notebooks = [p for p in notebooks_in_order() if not args.only or args.only in p.name]
    with running_simulator(policy=args.policy) as sim:
        print(f"simulator: {sim.base_url} (policy {args.policy})", flush=True)
        env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_HOME": str(home),
               "LANELAB_OUT": str(out)}
        for nb in notebooks:
            print(f"running {nb.name} …", flush=True)
            result = execute(nb, executed_dir, env=env, timeout=args.timeout, cwd=repo_root() / "notebooks")
            print(f"  done in {result.seconds:.1f}s → {result.executed_path}", flush=True)
    print("\nOutputs:")
    for label, path in (("executed notebooks", executed_dir), ("runs", out / "runs"),
                        ("report (HTML)", out / "findings.html"), ("report (Markdown)", out / "findings.md")):
        if path.exists():
            print(f"  {label:20} {path}")
    return 0
