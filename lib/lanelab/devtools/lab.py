"""JupyterLab on loopback with the kit's environment: for ``make lab`` and for the real-browser test.

Each lab gets one private temporary folder (mode 0700) holding its Jupyter config, data, runtime and settings folders
and its log, so neither a person's nor root's Jupyter settings change what the notebooks see; the folder is removed
when the lab stops. The server inherits the kit's settings (``LANELAB_*``) so the notebooks talk to the simulator
started alongside it, or to the live API.

Access is guarded as Jupyter guards it by default, because a kernel can read every credential the kit can:

- a random token, generated per lab, handed to Jupyter in a 0600 config file (never on a command line, which any
  local process can read) and required on every request; the log the kit keeps has it masked;
- XSRF checks on: a browser that logged in with the token must send the ``_xsrf`` value with each POST;
- stopping is complete: the server is sent SIGTERM (it shuts its kernels down), any process it started that is
  still alive after that is killed, and the temporary folder is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.errors import ServiceError
from lanelab.serve import bind_loopback

__all__ = ["LabFailed", "LabHandle", "free_port", "lab_command", "running_lab"]


class LabFailed(ServiceError):
    """JupyterLab did not start. The message is one line with the log's last error; ``log_tail`` holds the end of
    the log (token masked), for a test harness to show."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.log_tail = log_tail


@dataclass
class LabHandle:
    """A running JupyterLab: its base URL (no token), its token, and its private folders."""

    url: str
    root_dir: Path
    log_path: Path
    #: The access token. Whoever holds it can run code as this user: keep it out of logs (``repr`` omits it).
    token: str = field(repr=False)
    temp_dir: Path = field(default_factory=Path)
    #: The private ``LANELAB_HOME`` handed to the kernels (``private_home=True``), else None.
    home: Path | None = None

    def notebook_url(self, relative: str, *, with_token: bool = True) -> str:
        """The URL that opens ``relative`` (a path under ``root_dir``), with ``?token=…`` unless told otherwise."""
        url = f"{self.url}/lab/tree/{quote(relative)}"
        return f"{url}?token={self.token}" if with_token else url

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate an API request (``Authorization: token …``)."""
        return {"Authorization": f"token {self.token}"}


def free_port() -> int:
    with bind_loopback(0) as s:
        return s.getsockname()[1]


def lab_command(root_dir: Path, port: int, open_browser: bool = False, expose_app: bool = False) -> list[str]:
    """The ``jupyter lab`` command line: loopback only, no update checks, news or extension downloads.

    The token is not on it (see :func:`running_lab`); XSRF checks keep Jupyter's default (on).
    ``expose_app`` publishes ``window.jupyterapp`` so a browser test can run Lab commands (run all cells…).
    """
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root_dir}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if not open_browser:
        cmd.append("--no-browser")
    if expose_app:
        cmd.append("--LabApp.expose_app_in_browser=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


@contextlib.contextmanager
def running_lab(root_dir: Path, env: Mapping[str, str | None] | None = None, port: int = 0,
                startup_timeout: float = 90.0, expose_app: bool = False,
                private_home: bool = False) -> Iterator[LabHandle]:
    """Start JupyterLab serving ``root_dir``, wait until it answers, yield a :class:`LabHandle`, stop it on exit.

    ``env`` is added to this process's environment for the server and its kernels (a None value removes the
    variable). ``private_home`` points ``LANELAB_HOME`` at a folder inside the lab's temporary folder (sim mode:
    simulator credentials never reach the user's store and vanish with the lab). Raises :class:`LabFailed` when the
    server exits or does not answer.
    """
    if port:
        bind_loopback(port).close()  # a bad or busy port: one clear error before anything starts
    port = port or free_port()
    token = secrets.token_urlsafe(32)
    redact.register_secret(token)
    tmp_path = Path(tempfile.mkdtemp(prefix="lanelab-lab-"))  # mode 0700
    try:
        child_env = _child_env(tmp_path, env, token)
        home = None
        if private_home:
            home = tmp_path / "home"
            home.mkdir(mode=0o700)
            child_env["LANELAB_HOME"] = str(home)
        log_path = tmp_path / "lab.log"
        proc = subprocess.Popen(lab_command(root_dir, port, expose_app=expose_app), env=child_env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)  # a Ctrl-C in the terminal reaches only us; we stop it
        copier = threading.Thread(target=_copy_log, args=(proc.stdout, log_path, token), daemon=True,
                                  name="lanelab-lab-log")
        copier.start()
        url = f"http://127.0.0.1:{port}"
        handle = LabHandle(url=url, root_dir=root_dir, log_path=log_path, token=token, temp_dir=tmp_path, home=home)
        try:
            _wait_until_up(handle, proc, startup_timeout)
            yield handle
        finally:
            stop_process_tree(proc)
            copier.join(timeout=5)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _child_env(tmp_path: Path, env: Mapping[str, str | None] | None, token: str) -> dict[str, str]:
    """This process's environment plus ``env`` plus private Jupyter folders; the token goes in a 0600 config file."""
    config_dir = tmp_path / "config"
    config_dir.mkdir(mode=0o700)
    config_file = config_dir / "jupyter_server_config.json"
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"IdentityProvider": {"token": token}}, fh)
    settings_dir = tmp_path / "user-settings"
    _write_quiet_settings(settings_dir)
    child_env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE")}
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    child_env.update({
        "JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_PREFER_ENV_PATH": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
    })
    return child_env


def _copy_log(stream, log_path: Path, token: str) -> None:
    """Copy the server's output to ``log_path`` line by line with the token masked (Jupyter prints it at start)."""
    with open(log_path, "w", encoding="utf-8") as log:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").replace(token, redact.MASK)
            log.write(redact.redact_text(line))
            log.flush()
    stream.close()


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


def _wait_until_up(handle: LabHandle, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            time.sleep(0.2)  # let the log copier catch up with the last lines
            raise _failed(f"JupyterLab exited with code {proc.returncode}", handle.log_path)
        try:
            with lanelab_http.client(handle.url, timeout=2) as http:
                if http.get(f"{handle.url}/api/status", headers=handle.auth_headers).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise _failed(f"JupyterLab did not answer within {timeout:.0f}s", handle.log_path)


def _failed(what: str, log_path: Path, lines: int = 15) -> LabFailed:
    """A :class:`LabFailed` whose message is ``what`` and the log's last error line (the log is already masked)."""
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        tail = []
    errors = [line for line in tail if line.startswith(("[E", "[C")) or "Error" in line]
    last = (errors or tail or ["(JupyterLab wrote no log)"])[-1].strip()
    return LabFailed(f"{what}: {last}", "\n".join(tail))


# -- stopping ----------------------------------------------------------------------------------------------------

def stop_process_tree(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop ``proc`` and every process it started (Jupyter's kernels run in sessions of their own).

    SIGTERM first (Jupyter then shuts its kernels down), SIGKILL after ``grace`` seconds; then any descendant seen
    before the stop that is still alive is killed. Descendants are found through ``/proc``; where there is none,
    only ``proc`` itself is handled.
    """
    tree = descendants(proc.pid)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, started in tree:
        if _alive((pid, started)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(ppid, state, starttime)`` of ``pid`` from ``/proc/PID/stat``, or None when it is gone (or no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), fields[0], int(fields[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every living process below ``pid`` as ``(pid, starttime)`` (the start time guards against a reused pid)."""
    children: dict[int, list[tuple[int, int]]] = {}
    try:
        entries = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    for child in entries:
        st = _stat(child)
        if st is not None and st[1] != "Z":
            children.setdefault(st[0], []).append((child, st[2]))
    found, todo = [], [pid]
    while todo:
        for entry in children.get(todo.pop(), []):
            found.append(entry)
            todo.append(entry[0])
    return found


def _alive(entry: tuple[int, int]) -> bool:
    st = _stat(entry[0])
    return st is not None and st[1] != "Z" and st[2] == entry[1]
