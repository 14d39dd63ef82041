"""`python -m lanelab lab` is guarded and stops cleanly (issue 12 item 3), and honours live mode (issue 13 item 4).

Each slow test runs the real command in a subprocess with a temporary HOME and TMPDIR and looks at it from outside:
HTTP requests to the lab, ``/proc`` for its processes, sockets and kernel environment, the file system afterwards.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from lanelab.devtools import lab as devlab
from lanelab.live import NOTICE

SIM_POLICY_PATH = "/_sim/policy"


# -- helpers: a lab subprocess, watched from outside ----------------------------------------------------------------

class LabProcess:
    """``python -m lanelab lab --no-browser`` with its output collected line by line."""

    def __init__(self, tmp_path: Path, **env: str | None):
        self.home = tmp_path / "home"
        self.tmpdir = tmp_path / "tmp"
        self.home.mkdir()
        self.tmpdir.mkdir()
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("LANELAB_", "JUPYTER")) and k != "XDG_CONFIG_HOME"}
        full.update({"HOME": str(self.home), "TMPDIR": str(self.tmpdir), "LANELAB_OUT": str(tmp_path / "out")})
        for key, value in env.items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        self.proc = subprocess.Popen([sys.executable, "-m", "lanelab", "lab", "--no-browser"], env=full,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._queue, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, None, self.errors), daemon=True).start()
        self.url = self.token = None

    @staticmethod
    def _pump(stream, q, sink):
        for line in iter(stream.readline, ""):
            sink.append(line)
            if q is not None:
                q.put(line)
        if q is not None:
            q.put(None)

    def wait_ready(self, timeout: float = 120) -> str:
        """Read output until the ``JupyterLab:`` line; returns that URL (the tokenised notebook URL)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("JupyterLab: "):
                first = line.split()[1]
                self.url = first.split("/lab/")[0]
                match = re.search(r"[?&]token=([^&\s]+)", first)
                self.token = match.group(1) if match else None
                return first
        raise AssertionError(f"no JupyterLab line; stdout={''.join(self.lines)!r} stderr={''.join(self.errors)!r}")

    def start_kernel(self) -> tuple[str, int]:
        r = httpx.post(f"{self.url}/api/kernels", headers={"Authorization": f"token {self.token}"}, timeout=30)
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for pid, _ in tree(self.proc.pid):
                if kernel_id in cmdline(pid):
                    return kernel_id, pid
            time.sleep(0.2)
        raise AssertionError("the kernel process never appeared")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def lab_folders(self) -> list[Path]:
        return sorted(self.tmpdir.glob("lanelab-*"))

    def kill_everything(self) -> None:
        """Test clean-up whatever happened: the command and every process started under it, orphans included
        (found by the TMPDIR only this test's processes carry)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        kill_marked(self.tmpdir)


def kill_marked(tmpdir: Path) -> None:
    """Kill every process whose environment carries ``TMPDIR=tmpdir`` (what one test started, orphans included)."""
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            with contextlib.suppress(OSError):
                if environ(int(name)).get("TMPDIR") == str(tmpdir):
                    os.kill(int(name), signal.SIGKILL)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def tree(pid: int) -> list[tuple[int, int]]:
    """Living processes below ``pid`` as (pid, start time): an independent /proc walk, not the code under test's."""
    kids: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) and st[0] != "Z":
            kids.setdefault(int(st[1]), []).append((int(name), int(st[19])))
    out, todo = [], [pid]
    while todo:
        for entry in kids.get(todo.pop(), []):
            out.append(entry)
            todo.append(entry[0])
    return out


def alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z" and int(st[19]) == started


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def listening_sockets(pid: int) -> set[str]:
    """Socket inodes of ``pid`` that are listening TCP sockets."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A":  # TCP_LISTEN
                    listening.add(cols[9])
    mine = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                mine.add(target[8:-1])
    return mine & listening


def run_in_kernel(lab: LabProcess, kernel_pid: int, code: str) -> str:
    """Execute ``code`` in the kernel through its connection file; returns what it printed."""
    from jupyter_client import BlockingKernelClient

    connection_file = cmdline(kernel_pid).split(" -f ")[1].split()[0]
    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels(hb=False)  # the heartbeat can lag under load and make wait_for_ready give up early
    out: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            code, timeout=60,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return "".join(out)


@pytest.fixture
def lab_factory(tmp_path):
    labs: list[LabProcess] = []

    def start(**env):
        lab = LabProcess(tmp_path, **env)
        labs.append(lab)
        return lab

    yield start
    for lab in labs:
        lab.kill_everything()


# -- fast unit checks -----------------------------------------------------------------------------------------------

def test_the_token_is_not_on_the_jupyter_command_line_nor_in_the_handle_repr(tmp_path):
    cmd = " ".join(devlab.lab_command(Path("/srv/notebooks"), 8888))
    assert "token" not in cmd.lower() and "password" not in cmd.lower() and "disable_check_xsrf" not in cmd
    handle = devlab.LabHandle(url="http://127.0.0.1:1", root_dir=tmp_path, log_path=tmp_path / "l",
                              token="tok-" + "x" * 40, temp_dir=tmp_path)
    assert handle.token not in repr(handle)
    assert handle.notebook_url("01 a.ipynb").endswith("/lab/tree/01%20a.ipynb?token=" + handle.token)
    assert "token" not in handle.notebook_url("01.ipynb", with_token=False)


def test_the_log_copier_masks_the_token(tmp_path):
    token = "Zq7" + "k" * 40
    read, write = os.pipe()
    with os.fdopen(write, "wb") as w:
        w.write(f"running at http://127.0.0.1:1/lab?token={token}\nplain line\n".encode())
    with os.fdopen(read, "rb") as r:
        devlab._copy_log(r, tmp_path / "lab.log", token)
    text = (tmp_path / "lab.log").read_text()
    assert token not in text and "plain line" in text and "token=" in text


# -- sim mode: token, XSRF, private home, clean stop ----------------------------------------------------------------


@pytest.mark.slow
def test_lab_api_refuses_requests_without_the_token(lab_factory):
    lab = lab_factory()
    lab.wait_ready()
    for path in ("/api/kernels", "/api/contents", "/api/sessions"):
        assert httpx.get(f"{lab.url}{path}", timeout=10).status_code == 403, path
    assert lab.token and len(lab.token) >= 32, "the printed URL carries a random token"
    assert httpx.get(f"{lab.url}/api/kernels", params={"token": "wrong" * 8}, timeout=10).status_code == 403
    # the token itself works (so the 403s above are about the token, not a broken server)
    assert httpx.get(f"{lab.url}/api/kernels", params={"token": lab.token}, timeout=10).status_code == 200


@pytest.mark.slow
def test_lab_refuses_a_post_without_the_xsrf_token(lab_factory):
    lab = lab_factory()
    lab.wait_ready()
    with httpx.Client(base_url=lab.url, timeout=30) as browser:
        # what a browser does: open the tokenised URL once, then rely on the login cookie
        assert browser.get(f"/lab?token={lab.token}").status_code == 200
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf, "Jupyter sets the _xsrf cookie"
        refused = browser.post("/api/kernels", json={"name": "python3"})
        assert refused.status_code == 403, refused.text
        assert "xsrf" in refused.text.lower()
        allowed = browser.post("/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf})
        assert allowed.status_code == 201, allowed.text
    # without any credential, a POST is refused too
    assert httpx.post(f"{lab.url}/api/kernels", json={"name": "python3"}, timeout=10).status_code == 403


@pytest.mark.slow
def test_the_token_is_printed_once_and_reaches_no_log_or_command_line(lab_factory):
    lab = lab_factory()
    first = lab.wait_ready()
    assert lab.token, "the printed URL carries the token"
    kernel_id, kernel_pid = lab.start_kernel()
    assert lab.token in first
    assert sum(lab.token in line for line in lab.lines) == 1
    assert not any(lab.token in line for line in lab.errors)
    (folder,) = lab.lab_folders()
    log = (folder / "lab.log").read_text()
    assert "Jupyter Server" in log and kernel_id in log, "the log is being written"
    assert lab.token not in log
    for pid, _ in [(lab.proc.pid, 0), *tree(lab.proc.pid)]:
        assert lab.token not in cmdline(pid), cmdline(pid)
    assert lab.token not in " ".join(environ(kernel_pid).values())
    assert lab.stop() == 0
    assert not any(lab.token in line for line in lab.errors)


@pytest.mark.slow
def test_sigterm_stops_jupyter_and_its_kernels_and_removes_the_temp_folder(lab_factory):
    lab = lab_factory()
    lab.wait_ready()
    sim_url = next(line.split()[1] for line in lab.lines if line.startswith("simulator: "))
    _, kernel_pid = lab.start_kernel()
    below = tree(lab.proc.pid)
    assert any("jupyterlab" in cmdline(pid) for pid, _ in below)
    assert kernel_pid in {pid for pid, _ in below}
    assert len(lab.lab_folders()) == 1
    code = lab.stop(signal.SIGTERM)
    left = [(pid, cmdline(pid)) for pid, started in below if alive(pid, started)]
    assert left == [], left
    assert lab.lab_folders() == []
    assert code == 0, "".join(lab.errors)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{sim_url}{SIM_POLICY_PATH}", timeout=2)


@pytest.mark.slow
@pytest.mark.parametrize("user_store", ["default", "LANELAB_HOME"])
def test_sim_lab_keeps_simulator_credentials_out_of_the_users_store(lab_factory, tmp_path, user_store):
    user_home = tmp_path / "user-store"
    env = {}
    if user_store == "LANELAB_HOME":
        (user_home / "credentials").mkdir(parents=True)
        (user_home / "credentials" / "mine.json").write_text("{}")
        env["LANELAB_HOME"] = str(user_home)
    lab = lab_factory(**env)
    lab.wait_ready()
    if user_store == "default":
        user_home = lab.home / ".config" / "lanelab"
    before = sorted((p.relative_to(user_home), p.stat().st_mtime_ns) for p in user_home.rglob("*")) \
        if user_home.exists() else None
    _, kernel_pid = lab.start_kernel()
    kernel_env = environ(kernel_pid)
    assert kernel_env["LANELAB_MODE"] == "sim"
    (folder,) = lab.lab_folders()
    assert Path(kernel_env["LANELAB_HOME"]).is_relative_to(folder)
    # what notebook 01 does after a login: save the credential in the kit's store for the current settings
    saved = run_in_kernel(lab, kernel_pid, (
        "from lanelab.config import Settings\n"
        "from lanelab.auth.credential import Credential\n"
        "from lanelab.auth.store import CredentialStore\n"
        "print(CredentialStore(Settings.from_env().home).save("
        "Credential(label='sim-pkce', access_token='sk-ant-oat01-' + 'q' * 40)))\n")).strip()
    assert Path(saved).is_relative_to(folder) and Path(saved).exists()
    after = sorted((p.relative_to(user_home), p.stat().st_mtime_ns) for p in user_home.rglob("*")) \
        if user_home.exists() else None
    assert after == before
    assert lab.stop() == 0
    assert not Path(saved).exists(), "the private home goes with the lab"


@pytest.mark.slow
@pytest.mark.parametrize("port", ["99999", "-1", "busy"])
def test_a_bad_or_busy_port_is_one_clear_line_and_exit_2(tmp_path, port):
    with contextlib.ExitStack() as stack:
        if port == "busy":
            holder = stack.enter_context(socket.socket())
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = str(holder.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
        env.update({"HOME": str(tmp_path), "TMPDIR": str(tmp_path), "LANELAB_OUT": str(tmp_path / "out")})
        stack.callback(kill_marked, tmp_path)
        done = subprocess.run([sys.executable, "-m", "lanelab", "lab", "--no-browser", "--port", port], env=env,
                              check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert port in done.stderr and "JupyterLab:" not in done.stdout
    assert not list(tmp_path.glob("lanelab-*"))


# -- live mode ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_live_lab_without_opt_in_exits_2_with_the_notice_and_starts_nothing(lab_factory):
    lab = lab_factory(LANELAB_MODE="live")
    try:
        code = lab.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    time.sleep(0.2)  # let the readers drain
    assert code == 2, "".join(lab.lines)
    err = "".join(lab.errors)
    assert NOTICE[:60] in err and "LANELAB_LIVE_OPT_IN=1" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(line.startswith(("simulator:", "JupyterLab:")) for line in lab.lines)
    assert lab.lab_folders() == [], "no lab folder: JupyterLab was never started"


@pytest.mark.slow
def test_live_lab_with_opt_in_starts_no_simulator_and_its_kernels_run_live(lab_factory, tmp_path):
    user_home = tmp_path / "user-store"
    # a dead proxy: anything that would try to reach the network through the environment fails at once
    lab = lab_factory(LANELAB_MODE="live", LANELAB_LIVE_OPT_IN="1", LANELAB_HOME=str(user_home),
                      HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", ALL_PROXY="http://127.0.0.1:9",
                      NO_PROXY="")
    lab.wait_ready()
    out = "".join(lab.lines)
    assert NOTICE in out
    assert out.index(NOTICE) < out.index("JupyterLab: ")
    assert "simulator:" not in out
    assert listening_sockets(lab.proc.pid) == set(), "the lanelab process itself listens on nothing (no simulator)"
    _, kernel_pid = lab.start_kernel()
    kernel_env = environ(kernel_pid)
    assert kernel_env["LANELAB_MODE"] == "live"
    assert kernel_env["LANELAB_BASE_URL"] == "https://api.anthropic.com"
    assert kernel_env["LANELAB_HOME"] == str(user_home), "live credentials are the user's own"
    assert lab.stop() == 0
    assert lab.lab_folders() == []


@pytest.mark.slow
def test_sim_lab_process_listens_for_its_simulator(lab_factory):
    """The control for the live test's socket check: in sim mode the same check does see the simulator."""
    lab = lab_factory()
    lab.wait_ready()
    assert listening_sockets(lab.proc.pid), "the simulator's listening socket is visible"
    assert lab.stop(signal.SIGINT) == 0


def test_the_child_environment_has_private_jupyter_folders_and_can_drop_a_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LANELAB_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("JUPYTER_TOKEN", "inherited-token-value")
    env = devlab._child_env(tmp_path, {"LANELAB_PROXY": None, "LANELAB_MODE": "sim"}, "tok-" + "y" * 40)
    assert "LANELAB_PROXY" not in env and env["LANELAB_MODE"] == "sim"
    assert "JUPYTER_TOKEN" not in env, "an inherited token must not replace the lab's own"
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR"):
        assert Path(env[key]).is_relative_to(tmp_path)
    config = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json"
    assert (config.stat().st_mode & 0o777) == 0o600
    assert "tok-" + "y" * 40 not in " ".join(env.values())


def test_the_browser_is_opened_through_a_private_redirect_page(tmp_path):
    """The browser gets a file path, not the tokenised URL, on its command line (which every local user can read)."""
    from lanelab.commands.lab import _redirect_file

    url = "http://127.0.0.1:1/lab/tree/01_oauth_flow.ipynb?token=" + "t" * 43
    page = _redirect_file(tmp_path, url)
    assert (page.stat().st_mode & 0o777) == 0o600
    assert "t" * 43 not in page.as_uri()
    assert f'content="0;url={url}"' in page.read_text()
