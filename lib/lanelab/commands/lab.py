"""``python -m lanelab lab``: JupyterLab on the kit's notebooks: with the simulator already running (sim mode,
offline), or against the real API (``LANELAB_MODE=live``, opt-in, no simulator)."""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import signal
import time
import webbrowser
from pathlib import Path

from lanelab.commands import stop_on_sigterm
from lanelab.config import DEFAULT_POLICY, Settings, repo_root
from lanelab.errors import InputError, LiveNotOptedIn
from lanelab.live import NOTICE, OPT_IN_HOW, require_live_opt_in
from lanelab.serve import bind_loopback

NAME = "lab"
HELP = "open the notebooks in JupyterLab (sim mode: with the embedded simulator already running, offline)"
DESCRIPTION = (
    "Sim mode (the default): starts the embedded simulator on a free loopback port, then JupyterLab on 127.0.0.1 "
    "serving notebooks/ with LANELAB_MODE=sim, LANELAB_BASE_URL pointing at the simulator and a temporary "
    "LANELAB_HOME (simulator credentials never reach your credential store). Live mode (LANELAB_MODE=live with "
    "LANELAB_LIVE_OPT_IN=1): shows the responsible-use notice and opens the notebooks in live mode with your own "
    "LANELAB_HOME; no simulator is started. JupyterLab asks for a random token: the URL printed (and opened) carries "
    "it. Ctrl-C or SIGTERM stops JupyterLab, its kernels and the simulator, and removes the lab's temporary folder."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", default=None, help=f"simulator policy, sim mode only (default: {DEFAULT_POLICY})")
    parser.add_argument("--port", type=int, default=0, help="JupyterLab port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")


def run(args: argparse.Namespace) -> int:
    from lanelab.devtools.lab import running_lab
    from lanelab.sim.server import running_simulator

    settings = Settings.from_env()
    live = settings.mode == "live"
    if args.port:
        bind_loopback(args.port).close()  # a bad or busy --port: one clear line before anything starts
    if live:
        if args.policy is not None:
            raise InputError("--policy chooses the simulator's policy; live mode starts no simulator. Drop it.")
        try:
            require_live_opt_in(settings, "The lab in live mode runs notebooks that spend your own plan, and is "
                                          "opt-in")
        except LiveNotOptedIn as exc:  # the same gate; only the way forward is the lab's own
            raise LiveNotOptedIn(str(exc).removesuffix(OPT_IN_HOW).strip().replace("nothing was sent",
                                                                                     "nothing was started"),
                                 "To go ahead, set LANELAB_LIVE_OPT_IN=1 and run the lab again.") from None
    restore = stop_on_sigterm()
    try:
        with contextlib.ExitStack() as stack:
            if live:
                print(NOTICE)
                print(f"live mode: the notebooks send requests to {settings.base_url} with your own credential "
                      f"(store: {settings.home}); no simulator is started.", flush=True)
                env: dict[str, str | None] = {"LANELAB_MODE": "live", "LANELAB_BASE_URL": str(settings.base_url),
                       "LANELAB_HOME": str(settings.home), "LANELAB_OUT": str(settings.out)}
            else:
                policy = args.policy or DEFAULT_POLICY
                sim = stack.enter_context(running_simulator(policy=policy))
                print(f"simulator: {sim.base_url} (policy {policy})", flush=True)
                # LANELAB_PROXY is for Anthropic's hosts only; with a loopback base URL the kit would refuse it
                env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_OUT": str(settings.out),
                       "LANELAB_PROXY": None}
            lab = stack.enter_context(running_lab(repo_root() / "notebooks", env=env, port=args.port,
                                                  private_home=not live))
            first = lab.notebook_url("01_oauth_flow.ipynb")
            print(f"JupyterLab: {first}")
            print("  (the token in this URL is the lab's password: anyone with it can run code as you)")
            stop = "the lab and the simulator" if not live else "the lab"
            print("Read the notebooks in order: 01_oauth_flow, 02_request_matrix, 03_findings, "
                  f"04_maintainer_walkthrough. Ctrl-C stops {stop}.", flush=True)
            if not args.no_browser:
                webbrowser.open(_redirect_file(lab.temp_dir, first).as_uri())
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                _ignore_stop_signals()  # a second Ctrl-C must not cut the clean-up short
                print("stopping…", flush=True)
    finally:
        restore()
    return 0


def _ignore_stop_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _redirect_file(folder: Path, url: str) -> Path:
    """A 0600 page that forwards the browser to ``url``: the browser is started with this file's path, so the token
    never appears on a command line that other local processes can read (Jupyter does the same)."""
    path = folder / "open-lab.html"
    target = html.escape(url, quote=True)
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
            f'</head><body><p><a href="{target}">Open JupyterLab</a></p></body></html>')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path
