"""``python -m lanelab lab``: JupyterLab on the kit's notebooks, with the simulator already running (offline)."""

from __future__ import annotations

import argparse
import os
import time
import webbrowser

from lanelab.config import DEFAULT_POLICY, Settings, repo_root

NAME = "lab"
HELP = "open the notebooks in JupyterLab with the embedded simulator already running (offline)"
DESCRIPTION = (
    "Starts the embedded simulator on a free loopback port, then JupyterLab on 127.0.0.1 serving notebooks/ with "
    "LANELAB_MODE=sim and LANELAB_BASE_URL pointing at the simulator. Open 01_oauth_flow.ipynb first. Ctrl-C stops both."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="simulator policy (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="JupyterLab port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")


def run(args: argparse.Namespace) -> int:
    from lanelab.devtools.lab import running_lab
    from lanelab.sim.server import running_simulator

    settings = Settings.from_env()
    with running_simulator(policy=args.policy) as sim:
        env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_OUT": str(settings.out),
               "LANELAB_HOME": os.environ.get("LANELAB_HOME", str(settings.home))}
        with running_lab(repo_root() / "notebooks", env=env, port=args.port) as lab:
            first = lab.notebook_url("01_oauth_flow.ipynb")
            print(f"simulator: {sim.base_url} (policy {args.policy})")
            print(f"JupyterLab: {first}")
            print("Read the notebooks in order: 01_oauth_flow, 02_request_matrix, 03_findings, "
                  "04_maintainer_walkthrough. Ctrl-C stops the lab and the simulator.", flush=True)
            if not args.no_browser:
                webbrowser.open(first)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopping…")
    return 0
