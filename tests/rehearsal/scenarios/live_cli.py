"""Rehearsal scenario: a new user's live CLI session, unchanged, under the real host names.

1. ``login`` (the stand-in browser opens the authorize link and reads the callback page; the value is pasted);
2. ``creds``;
3. refusals, each of which must send nothing: a simulator-issued credential (planted in the store, as an earlier sim
   session would have left it) for the live host; a plan over its budget; no terminal and no ``--yes``;
4. ``matrix --live --budget N --usage-snapshots`` on a terminal (a pseudo-terminal): the notice, host, credential
   and cost are shown and the question asked; the scenario notes the time, then answers ``y``;
5. the same command with ``--yes`` (a resume: nothing left to send);
6. ``report``;
7. ``capture`` in front of the live API, with a stand-in client sending Hermes 0.14.0's request through it;
8. ``bisect`` of that capture against ``sdk-minimal``: first without ``--yes`` (refused), then with it;
9. ``diagnose --profile hermes-0.14.0 --live --budget N``: without ``--yes`` and no terminal (refused after the
   confirmation is shown), with a budget one below its worst case (refused before anything else), then with
   ``--yes`` and the worst case as the budget.

Writes ``$REHEARSAL_DIR/result.json``: every step with argv, exit status, output and its start and end times (the
test lines them up with the simulator's request log), the time the question was asked, and the worst case the
diagnosis plans for (``diagnose_worst``, computed here as the command computes it, nothing sent). Exits 0 when every
step ran (the test asserts what each did).
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _browser import open_link

LABEL = "live-pkce"
BUDGET = "8"
DIAGNOSE_PROFILE = "hermes-0.14.0"
RESULTS = Path(os.environ["REHEARSAL_DIR"])
results: dict[str, Any] = {"steps": []}


def record(step: str, **fields: Any) -> dict[str, Any]:
    entry = {"step": step, **fields}
    results["steps"].append(entry)
    (RESULTS / "result.json").write_text(json.dumps(results, indent=1))
    return entry


def lanelab(*args: str) -> list[str]:
    return [sys.executable, "-m", "lanelab", *args]


def cli(step: str, *args: str, stdin: str = "") -> dict[str, Any]:
    """Run a command with no terminal (standard input a pipe, as in a script or CI)."""
    started = time.time()
    done = subprocess.run(lanelab(*args), input=stdin, capture_output=True, text=True, timeout=180, check=False)
    return record(step, argv=list(args), returncode=done.returncode, stdout=done.stdout, stderr=done.stderr,
                  started=started, ended=time.time())


def on_a_terminal(step: str, *args: str, answer: str) -> dict[str, Any]:
    """Run a command on a pseudo-terminal; when it asks ``[y/N]``, note the time and type ``answer``."""
    master, slave = pty.openpty()
    started = time.time()
    proc = subprocess.Popen(lanelab(*args), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    shown, asked_at = b"", None
    deadline = time.time() + 180
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        shown += chunk
        if asked_at is None and b"[y/N]" in shown:
            asked_at = time.time()
            os.write(master, answer.encode() + b"\n")
    proc.wait(timeout=30)
    os.close(master)
    text = shown.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return record(step, argv=list(args), returncode=proc.returncode, stdout=text, stderr="", started=started,
                  ended=time.time(), asked_at=asked_at)


def login() -> bool:
    argv = lanelab("login", "--label", LABEL)
    started = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    shown, url = [], None
    for line in proc.stdout:
        shown.append(line)
        if line.startswith("https://"):
            url = line.strip()
            break
    seen = open_link(url) if url else {"value": None}
    rest, err = proc.communicate(input=(seen["value"] or "") + "\n", timeout=60)
    record("login", argv=argv[3:], returncode=proc.returncode, stdout="".join(shown) + rest, stderr=err,
           authorize_url=url, pages=seen.get("pages"), started=started, ended=time.time())
    return proc.returncode == 0


def plant_simulator_credential() -> None:
    """What an earlier sim session leaves in the store: a credential issued by a simulator on loopback."""
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CredentialStore

    CredentialStore(os.environ["LANELAB_HOME"]).save(Credential(
        label="sim-pkce", access_token="sk-ant-oat01-" + "SimIssued0" * 5, mode="sim",
        issuer="http://127.0.0.1:8123", scopes=("user:inference", "user:profile")))


def capture_through_a_client() -> Path:
    """``lanelab capture`` in front of the live API; a stand-in client (Hermes 0.14.0's request, cheapest form,
    with the user's own credential) sends one request through it; then Ctrl-C."""
    from lanelab.auth.resolve import resolve_token
    from lanelab.matrix.profiles import load_profile, minimal_spend
    from lanelab.wire.send import send

    out = RESULTS / "capture.jsonl"
    started = time.time()
    proc = subprocess.Popen(lanelab("capture", "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    proxy = proc.stdout.readline().strip()
    second = proc.stdout.readline()
    status = None
    if proxy.startswith("http://127.0.0.1:"):
        obs = send(minimal_spend(load_profile("hermes-0.14.0").spec), proxy, resolve_token(LABEL))
        status = obs.status
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    record("capture", argv=["capture", "--out", str(out)], returncode=proc.returncode,
           stdout=proxy + "\n" + second + rest, stderr=err, client_status=status, started=started, ended=time.time())
    return out


def diagnose_worst_case(profile: str) -> int:
    """The most requests a live diagnosis of ``profile`` may send, as ``diagnose`` plans it (nothing is sent)."""
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.walkthrough.diagnose import load_source, plan_requests
    from lanelab.walkthrough.lint import lint

    source = load_source(profile=profile)
    return plan_requests(minimal_spend(source.spec), lint(source.lint_input)).worst


def diagnose_steps() -> bool:
    worst = diagnose_worst_case(DIAGNOSE_PROFILE)
    results["diagnose_worst"] = worst
    args = ("diagnose", "--profile", DIAGNOSE_PROFILE, "--live")
    cli("diagnose_no_yes", *args, "--budget", str(worst))
    cli("diagnose_over_budget", *args, "--budget", str(worst - 1), "--yes")
    return cli("diagnose", *args, "--budget", str(worst), "--yes")["returncode"] in (0, 1)


def main() -> int:
    plant_simulator_credential()
    ok = login()
    ok &= cli("creds", "creds")["returncode"] == 0
    cli("refused_sim_credential", "matrix", "--live", "--credential", "sim-pkce", "--yes")
    cli("refused_over_budget", "matrix", "--live", "--budget", "3", "--yes")
    cli("refused_no_terminal", "matrix", "--live", "--budget", BUDGET)
    declined = on_a_terminal("declined", "matrix", "--live", "--budget", BUDGET, "--no-progress", answer="n")
    run = on_a_terminal("matrix", "matrix", "--live", "--budget", BUDGET, "--no-progress", "--usage-snapshots",
                        answer="y")
    again = cli("matrix_yes", "matrix", "--live", "--budget", BUDGET, "--no-progress", "--yes")
    report = cli("report", "report")
    capture = capture_through_a_client()
    cli("bisect_no_yes", "bisect", "--fail", str(capture), "--pass", "sdk-minimal")
    bisect = cli("bisect", "bisect", "--fail", str(capture), "--pass", "sdk-minimal", "--yes")
    ok &= declined["returncode"] == 2 and run["returncode"] == 0 and again["returncode"] == 0
    ok &= report["returncode"] == 0 and bisect["returncode"] in (0, 1)
    ok &= diagnose_steps()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
