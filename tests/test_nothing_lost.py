"""Issue 12, "nothing lost": run files (one writer per run, torn lines after bytes that are not UTF-8), the demo's
folder, and the audit's resume figures. Disk faults on the credential store are in tests/test_credentials.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from lanelab.config import repo_root
from lanelab.errors import StateError
from lanelab.runs import RunLocked, RunWriter, load_run, lock_path, make_header, run_path
from lanelab.wire.spec import Observation, RequestSpec

REPO = repo_root()

DEADLINE_S = 60.0


def header(run_id: str = "r1") -> dict:
    return make_header(run_id, mode="sim", host="http://127.0.0.1:1", policy="2026-05-25", profile="sdk-minimal",
                       design="ofat", factors=["auth"], credentials=[])


def write_cell(w: RunWriter, cell_id: str, **obs) -> None:
    w.cell(cell_id=cell_id, profile="sdk-minimal", levels={"auth": "bearer"}, credential=None,
           spec=RequestSpec().to_dict(), observation=Observation(status=200, **obs).to_dict(), outcome="served_plan",
           lane="plan")


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------------- item 11
def test_a_torn_line_after_bytes_that_are_not_utf8_is_cut_exactly(tmp_path):
    """Bytes that are not UTF-8 in an earlier line used to shift the cut (computed on re-encoded text, where each
    such byte takes three): part of the tear stayed and the next record was glued onto it, so it was lost too."""
    path = run_path(tmp_path, "r1")
    with RunWriter(path, header()) as w:
        write_cell(w, "aaa")
    with path.open("ab") as f:
        f.write(b'{"record": "note", "at": "x", "text": "caf\xe9 \xff\xfe"}\n')  # latin-1 bytes in a whole line
        f.write(b'{"record": "cell", "cell_id": "bbb", "observ')  # the torn append
    with RunWriter(path, header()) as w:
        assert set(w.resumed.cells) == {"aaa"}
        write_cell(w, "ccc")
    run = load_run(path)
    assert run.warnings == [] and list(run.cells) == ["aaa", "ccc"]
    assert path.read_bytes().endswith(b"\n") and b'"observ{' not in path.read_bytes()


def test_a_short_tear_after_many_bytes_that_are_not_utf8_is_still_cut(tmp_path):
    """With more such bytes than the tear is long, the old offset landed past the end of the file: nothing was cut,
    and the next record was glued onto the tear."""
    path = run_path(tmp_path, "r1")
    with RunWriter(path, header()) as w:
        write_cell(w, "aaa", error_message="x")
    data = path.read_bytes().replace(b'"error_message": "x"', b'"error_message": "' + b"\xff" * 40 + b'"')
    path.write_bytes(data + b'{"rec')
    loaded = load_run(path)
    assert list(loaded.cells) == ["aaa"] and [w.line for w in loaded.warnings] == [3]
    with RunWriter(path, header()) as w:
        write_cell(w, "bbb")
    run = load_run(path)
    assert run.warnings == [] and list(run.cells) == ["aaa", "bbb"]
    assert run.cells["aaa"]["observation"]["error_message"] == "\ufffd" * 40


def test_a_failed_append_leaves_no_torn_line_behind(tmp_path, monkeypatch):
    """A write that fails half way (disk full) is cut off again, so the next record starts on a clean line."""
    path = run_path(tmp_path, "r1")
    w = RunWriter(path, header())
    write_cell(w, "aaa")
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        write_cell(w, "bbb")
    monkeypatch.setattr(os, "write", real_write)
    write_cell(w, "ccc")
    w.close()
    run = load_run(path)
    assert run.warnings == [] and list(run.cells) == ["aaa", "ccc"]


# --------------------------------------------------------------------------------------------------- item 10
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lanelab.runs import RunWriter, make_header
    w = RunWriter(Path(sys.argv[1]), make_header("r1", mode="sim", host=None, policy=None, profile="p",
                                                   design="d", factors=[], credentials=[]))
    print(w.opened_at, flush=True)
    sys.stdin.read()
    w.note(event="holder done")
    w.close()
""")


def holder(path: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    opened_at = proc.stdout.readline().strip()
    assert opened_at, "the holder process did not open the run"
    return proc, opened_at


def test_a_second_writer_in_another_process_is_refused_naming_the_first(tmp_path):
    path = run_path(tmp_path, "r1")
    proc, opened_at = holder(path)
    try:
        with pytest.raises(RunLocked) as info:
            RunWriter(path, header())
        text = str(info.value)
        assert f"process {proc.pid}" in text and opened_at in text and "twice" in text
        assert isinstance(info.value, StateError)
        assert load_run(path).header["run_id"] == "r1"  # the refused writer changed nothing
    finally:
        proc.communicate("", timeout=DEADLINE_S)
    assert proc.returncode == 0
    assert not lock_path(path).exists()  # a clean close removes the sidecar
    with RunWriter(path, header()) as w:  # and the run can be resumed at once
        write_cell(w, "aaa")
    run = load_run(path)
    assert [n["event"] for n in run.of_kind("note")] == ["holder done"] and list(run.cells) == ["aaa"]


def test_a_killed_writer_releases_the_run(tmp_path):
    path = run_path(tmp_path, "r1")
    proc, _ = holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=DEADLINE_S)
    proc.stdin.close()
    proc.stdout.close()
    assert lock_path(path).exists()  # stale: names a dead process, but the lock went with it
    with RunWriter(path, header()) as w:
        write_cell(w, "aaa")
        assert json.loads(lock_path(path).read_text())["pid"] == os.getpid()
    assert list(load_run(path).cells) == ["aaa"]


def test_in_one_process_a_new_writer_takes_the_run_over(tmp_path):
    """Re-running a notebook cell (or resuming after an interrupted run whose writer a traceback still holds) must
    work; the older writer is closed, so the two never interleave."""
    path = run_path(tmp_path, "r1")
    old = RunWriter(path, header())
    write_cell(old, "aaa")
    new = RunWriter(path, header())
    assert old.closed and not new.closed and set(new.resumed.cells) == {"aaa"}
    with pytest.raises(StateError, match="opened again in this process"):
        write_cell(old, "bbb")
    write_cell(new, "ccc")
    new.close()
    new.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        write_cell(new, "ddd")
    assert list(load_run(path).cells) == ["aaa", "ccc"] and not lock_path(path).exists()


def matrix_command(run_id: str) -> list[str]:
    return [sys.executable, "-m", "lanelab", "matrix", "--profile", "sdk-minimal", "--run-id", run_id,
            "--concurrency", "2", "--no-progress"]


@pytest.mark.slow  # two matrix CLI processes
def test_two_matrix_runners_on_one_run_id_send_each_cell_once(tmp_path, sim_with):
    """The issue's case: the second runner used to send every pending cell again (74 requests for 37 cells)."""
    sim = sim_with(faults="latency=100ms")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    env.update(LANELAB_MODE="sim", LANELAB_BASE_URL=sim.base_url, LANELAB_OUT=str(tmp_path / "out"),
               LANELAB_HOME=str(tmp_path / "home"), PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    path = tmp_path / "out" / "runs" / "twice.jsonl"
    first = subprocess.Popen(matrix_command("twice"), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: path.exists() and b'"record": "cell"' in path.read_bytes(), "the first cell record")
        second = subprocess.run(matrix_command("twice"), env=env, capture_output=True, text=True,
                                timeout=DEADLINE_S, check=False)
        out, _ = first.communicate(timeout=DEADLINE_S)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    log = httpx.get(sim.base_url + "/_sim/requests", timeout=10.0).json()
    assert first.returncode == 0, out
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Traceback" not in second.stderr and f"process {first.pid}" in second.stderr
    assert second.stderr.count("\n") == 1  # one clear line
    run = load_run(path)
    cells = run.header["cell_count"]
    assert len(run.cells) == cells and len(log) == cells  # the simulator logs every inference request it gets


# --------------------------------------------------------------------------------------------------- item 9
def fake_notebooks(monkeypatch, tmp_path):
    """Stand-ins for executing the notebooks (tests/test_notebooks.py executes the real ones): each writes what
    notebooks 02 and 03 write, where they write it (LANELAB_OUT from the environment the demo sets)."""
    from lanelab.devtools import notebook_exec

    names = [tmp_path / "nb" / "02_request_matrix.ipynb", tmp_path / "nb" / "03_findings.ipynb"]

    def execute(path, out_dir, env=None, timeout=600, cwd=None):
        out = Path(env["LANELAB_OUT"])
        if path.name.startswith("02"):
            with RunWriter(run_path(out / "runs", "demo-run"), header("demo-run")) as w:
                write_cell(w, f"cell-{time.monotonic_ns()}")
        else:
            (out / "findings.html").write_text("<html>report</html>")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / path.name).write_text("{}")
        return notebook_exec.NotebookResult(path.stem, out_dir / path.name, 0.0, 1)

    monkeypatch.setattr(notebook_exec, "execute", execute)
    monkeypatch.setattr(notebook_exec, "notebooks_in_order", lambda folder=None: names)


def test_the_demo_writes_to_its_own_folder_and_deletes_only_what_it_wrote(tmp_path, monkeypatch, capsys):
    """It used to delete LANELAB_OUT/runs (reports/runs/), where live runs are written too."""
    from lanelab import cli

    fake_notebooks(monkeypatch, tmp_path)
    reports = tmp_path / "reports"
    monkeypatch.setenv("LANELAB_OUT", str(reports))
    mine = run_path(reports / "runs", "my-live-run")
    with RunWriter(mine, header("my-live-run")) as w:
        write_cell(w, "precious")
    mine_bytes = mine.read_bytes()

    assert cli.main(["demo"]) == 0
    demo = reports / "demo"
    assert mine.read_bytes() == mine_bytes
    first = load_run(demo / "runs" / "demo-run.jsonl")
    assert len(first.cells) == 1 and (demo / "findings.html").exists() and (demo / ".lanelab-demo.json").exists()
    assert str(demo / "runs") in capsys.readouterr().out

    # a second demo starts fresh: it removes what the first wrote, and only that
    assert cli.main(["demo"]) == 0
    second = load_run(demo / "runs" / "demo-run.jsonl")
    assert len(second.cells) == 1 and set(second.cells) != set(first.cells)  # fresh, not resumed
    assert mine.read_bytes() == mine_bytes

    # a file the demo wrote that was touched or saved again unchanged (an editor, a lab's autosave) is still its own
    later = time.time() + 5
    os.utime(demo / "findings.html", (later, later))
    assert cli.main(["demo"]) == 0

    # a folder holding anything the demo did not write, or changed since, is refused before anything starts: the
    # demo would overwrite or remove it (one line, exit 2, every file as it was)
    (demo / "runs" / "dropped-in.jsonl").write_text("a file the demo did not write\n")
    with (demo / "findings.html").open("a") as f:
        f.write("<!-- my edit -->")
    kept = {p: p.read_bytes() for p in demo.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 file(s) the demo did not write, or that changed since it did" in err, err
    assert "findings.html, runs/dropped-in.jsonl" in err and "--out with a new or empty folder" in err
    assert "'make clean' removes reports/demo/" in err
    assert {p: p.read_bytes() for p in demo.rglob("*") if p.is_file()} == kept
    (demo / "runs" / "dropped-in.jsonl").unlink()
    (demo / "findings.html").unlink()

    # --keep-runs resumes the demo's runs; the user's own folder is refused, and nothing of theirs is touched
    assert cli.main(["demo", "--keep-runs"]) == 0
    assert len(load_run(demo / "runs" / "demo-run.jsonl").cells) == 2
    assert cli.main(["demo", "--out", str(reports)]) == 2
    assert mine.read_bytes() == mine_bytes and not (reports / ".lanelab-demo.json").exists()
    fresh = tmp_path / "fresh"
    assert cli.main(["demo", "--out", str(fresh)]) == 0 and cli.main(["demo", "--out", str(fresh)]) == 0
    assert len(load_run(fresh / "runs" / "demo-run.jsonl").cells) == 1


def test_the_demo_keeps_its_credentials_out_of_the_folder_it_writes_and_ends_with_the_answer(tmp_path, monkeypatch,
                                                                                           capsys):
    """The demo's folder is meant to be shared; its simulator credentials live in a temporary folder while it runs.
    Its last words are the report's answer."""
    from lanelab import cli
    from lanelab.devtools import notebook_exec

    homes = []

    def execute(path, out_dir, env=None, timeout=600, cwd=None):
        home = Path(env["LANELAB_HOME"])
        homes.append(home)
        (home / "credentials").mkdir(parents=True, exist_ok=True)
        (home / "credentials" / "sim-pkce.json").write_text('{"access_token": "sk-ant-oat01-DemoTokenDemoToken"}')
        Path(env["LANELAB_OUT"], "findings.md").write_text(
            "## lanelab findings\n\n**16 tool names use the prefix `mcp_`; with `mcp__` the request is billed to "
            "the plan.**\n\nEvidence: …\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        return notebook_exec.NotebookResult(path.stem, out_dir / path.name, 0.0, 1)

    monkeypatch.setattr(notebook_exec, "execute", execute)
    monkeypatch.setattr(notebook_exec, "notebooks_in_order", lambda folder=None: [tmp_path / "01_oauth_flow.ipynb"])
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert homes and not homes[0].exists() and out not in homes[0].parents  # gone, and never inside OUT
    assert not any(b"DemoToken" in p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert printed.rstrip().endswith("16 tool names use the prefix mcp_; with mcp__ the request is billed to the plan.")
    assert "The answer, as the report states it:" in printed


@pytest.mark.slow  # a demo process with a real kernel
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_demo_stopped_mid_notebook_says_one_line_and_leaves_no_credentials_behind(tmp_path, sig):
    """Ctrl-C or SIGTERM while a notebook runs: exit 130 with the CLI's one line (not an "internal error" from the
    notebook runner's clean-up, not the kernel's own traceback), and the simulator credentials' folder removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANELAB_")}
    temp = tmp_path / "tmp"
    temp.mkdir()
    env.update(PYTHONPATH=str(REPO / "lib"), TMPDIR=str(temp), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "demo", "--out", str(tmp_path / "demo")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None
        running = 0
        for line in proc.stdout:  # the second notebook is under way: a kernel is running a cell
            running += line.startswith("running ")
            if running == 2:
                break
        time.sleep(1.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip() == "lanelab demo: interrupted; nothing already written was lost.", err
    assert not [p for p in temp.iterdir() if p.name.startswith("lanelab-demo-home-")]
