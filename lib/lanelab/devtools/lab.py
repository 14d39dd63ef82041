"""JupyterLab on loopback with the kit's environment: for ``make lab`` and for the real-browser test.

The server gets its own temporary config, data and runtime folders, so neither a person's nor root's Jupyter settings
change what the notebooks see, and it inherits the kit's settings (``LANELAB_*``) so the notebooks talk to the
simulator started alongside it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from lanelab import http as lanelab_http
from lanelab.errors import ServiceError


class LabFailed(ServiceError):
    """JupyterLab did not start; the message carries the end of its log."""


@dataclass
class LabHandle:
    url: str
    root_dir: Path
    log_path: Path

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(root_dir: Path, port: int, open_browser: bool = False, expose_app: bool = False) -> list[str]:
    """The ``jupyter lab`` command line: loopback only, no token (loopback only), no update checks or news.

    ``expose_app`` publishes ``window.jupyterapp`` so a browser test can run Lab commands (run all cells…).
    """
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root_dir}", "--IdentityProvider.token=",
           "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if not open_browser:
        cmd.append("--no-browser")
    if expose_app:
        cmd.append("--LabApp.expose_app_in_browser=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


@contextlib.contextmanager
def running_lab(root_dir: Path, env: Mapping[str, str] | None = None, port: int = 0,
                startup_timeout: float = 90.0, expose_app: bool = False) -> Iterator[LabHandle]:
    """Start JupyterLab serving ``root_dir``, wait until it answers, yield its URL, and stop it on exit."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="lanelab-jupyter-") as tmp:
        tmp_path = Path(tmp)
        settings_dir = tmp_path / "user-settings"
        _write_quiet_settings(settings_dir)
        child_env = {**os.environ, **(env or {}),
                     "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
                     "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_PREFER_ENV_PATH": "1",
                     "JUPYTERLAB_SETTINGS_DIR": str(settings_dir)}
        log_path = tmp_path / "lab.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(lab_command(root_dir, port, expose_app=expose_app), env=child_env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_until_up(url, proc, log_path, startup_timeout)
                yield LabHandle(url=url, root_dir=root_dir, log_path=log_path)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _write_quiet_settings(settings_dir: Path) -> None:
    """No news prompt or update check (the lab runs offline, nothing should cover the notebook), and every cell
    rendered (the kit's notebooks are short; lazy rendering would hide progress bars scrolled out of view)."""
    settings = {
        ("apputils-extension", "notification"): '{"fetchNews": "false", "checkForUpdates": false}',
        ("notebook-extension", "tracker"): '{"windowingMode": "none"}',
    }
    for (extension, plugin), text in settings.items():
        target = settings_dir / "@jupyterlab" / extension / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabFailed(f"JupyterLab exited with code {proc.returncode}: {_tail(log_path)}")
        try:
            with lanelab_http.client(url, timeout=2) as http:
                if http.get(f"{url}/api/status").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise LabFailed(f"JupyterLab did not answer within {timeout:.0f}s: {_tail(log_path)}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
