"""Issue 7: a canary credential goes through everything the demo does, and no produced file holds any piece of it.

Canaries are placed where the importers look (Claude Code's and Hermes' files, the environment) and passed through the
OAuth flow (the simulator hands them out as the next issued tokens). Then every notebook runs, and the CLI logs in,
lists credentials, runs a matrix with an imported credential, captures a request, diffs, bisects and reports. Every
file produced (executed notebooks, runs, captures, reports, logs, the simulator's own request log) is searched for
each canary and for any 8 consecutive characters of its secret part, and for every secret the simulator issued.
Positive controls prove the canaries really travelled: the kit's own store holds them and the runs they made exist.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from lanelab.config import repo_root
from lanelab.devtools import audit
from lanelab.devtools.notebook_exec import execute, notebooks_in_order
from shared_simulator import default_simulator

pytestmark = [pytest.mark.hardening, pytest.mark.slow, pytest.mark.notebook]  # runs every notebook and the CLI


def _canary(kind: str, tag: str) -> str:
    # recognisable, fixed, and long enough that an 8-character window is meaningful
    return f"sk-ant-{kind}01-CANARY{tag}" + "q7Zx2Lp9Wm4Rt8Kd1Nf6Hs3Jb5Vc0Yg" + tag * 3


OAUTH_ACCESS, OAUTH_REFRESH = _canary("oat", "nbflow"), _canary("ort", "nbflow")
CLI_ACCESS, CLI_REFRESH = _canary("oat", "clilogin"), _canary("ort", "clilogin")
ENV_TOKEN = _canary("oat", "envtoken")
CLAUDE_CODE = (_canary("oat", "claudecode"), _canary("ort", "claudecode"))
HERMES_POOL = (_canary("oat", "hermespool"), _canary("ort", "hermespool"))
HERMES_PKCE = (_canary("oat", "hermespkce"), _canary("ort", "hermespkce"))
#: Opaque canaries (no sk-ant- prefix, no JWT shape): only the rules about where a secret sits can catch them.
OPAQUE_HEADER, OPAQUE_COOKIE, OPAQUE_QUERY = ("opaqueCanaryHeader" + "Zq8Wn3Lk6Tr1", "opaqueCanaryCookie" + "Mv5Bx2Hp9Gd4",
                                              "opaqueCanaryQuery" + "Yc7Nf4Js1Qa8")
CANARIES = [OAUTH_ACCESS, OAUTH_REFRESH, CLI_ACCESS, CLI_REFRESH, ENV_TOKEN, *CLAUDE_CODE, *HERMES_POOL, *HERMES_PKCE,
            OPAQUE_HEADER, OPAQUE_COOKIE, OPAQUE_QUERY]
WINDOW = 8


def _windows(secret: str) -> set[str]:
    body = secret.split("01-", 1)[1] if "01-" in secret else secret
    return {body[i:i + WINDOW] for i in range(len(body) - WINDOW + 1)}


def _foreign_files(home: Path) -> dict[Path, str]:
    now_ms = int(time.time() * 1000) + 3_600_000
    files = {
        home / ".claude" / ".credentials.json": {"claudeAiOauth": {
            "accessToken": CLAUDE_CODE[0], "refreshToken": CLAUDE_CODE[1], "expiresAt": now_ms,
            "scopes": ["user:inference", "user:profile"], "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_5x"}},
        home / ".hermes" / "auth.json": {"version": 1, "providers": {}, "credential_pool": {"anthropic": [{
            "id": "p1", "label": "pool", "auth_type": "oauth", "priority": 0, "source": "manual:hermes_pkce",
            "access_token": HERMES_POOL[0], "refresh_token": HERMES_POOL[1], "expires_at_ms": now_ms}]}},
        home / ".hermes" / ".anthropic_oauth.json": {"accessToken": HERMES_PKCE[0], "refreshToken": HERMES_PKCE[1],
                                                      "expiresAt": now_ms},
    }
    out = {}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        path.chmod(0o600)
        out[path] = ""
    return out


def _fingerprint(paths) -> dict[str, tuple[bytes, int, int]]:
    return {str(p): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode), p.stat().st_mtime_ns) for p in paths}


def _cli(args: list[str], env: dict[str, str], logs: Path, name: str, stdin: str | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "lanelab", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=240, cwd=repo_root(), check=False)
    (logs / f"{name}.stdout.log").write_text(proc.stdout)
    (logs / f"{name}.stderr.log").write_text(proc.stderr)
    assert proc.returncode in (0, 1), f"{name} exited {proc.returncode}: {proc.stderr[-800:]}"
    return proc.stdout


def _capture_one_request(env: dict[str, str], sim_url: str, out: Path, logs: Path) -> None:
    capture_file = out / "captures" / "leak.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "lanelab", "capture", "--upstream", sim_url, "--out",
                             str(capture_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=repo_root())
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:"), base
        r = httpx.post(f"{base}/v1/messages", headers={"authorization": f"Bearer {ENV_TOKEN}",
                                                       "anthropic-beta": "oauth-2025-04-20",
                                                       "anthropic-version": "2023-06-01"},
                       json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                             "messages": [{"role": "user", "content": f"echo {ENV_TOKEN}"}]}, timeout=30)
        assert r.status_code == 200
        # opaque secrets where a client may put them: a custom key header, a cookie, the query string
        r = httpx.post(f"{base}/v1/messages?access_token={OPAQUE_QUERY}",
                       headers={"authorization": f"Bearer {ENV_TOKEN}", "anthropic-beta": "oauth-2025-04-20",
                                "anthropic-version": "2023-06-01", "x-goog-api-key": OPAQUE_HEADER,
                                "cookie": f"theme=dark; sid={OPAQUE_COOKIE}"},
                       json={"model": "claude-sonnet-4-6", "max_tokens": 1,
                             "messages": [{"role": "user", "content": f"echo {OPAQUE_HEADER} {OPAQUE_COOKIE}"}]},
                       timeout=30)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    (logs / "capture.stdout.log").write_text(stdout)
    (logs / "capture.stderr.log").write_text(stderr)
    assert capture_file.exists()


@pytest.fixture(scope="module")
def world(tmp_path_factory, shared_sim):
    """Everything the demo and the CLI do, with canaries, in one sandbox (the session's simulator, reset before and
    after)."""
    root = tmp_path_factory.mktemp("leaks")
    user_home, kit_home, out = root / "user", root / "kit-home", root / "out"
    logs = out / "logs"
    logs.mkdir(parents=True)
    foreign = _foreign_files(user_home)
    before = _fingerprint(foreign)
    import matplotlib

    sim = shared_sim
    default_simulator(sim)
    # The env canary becomes a valid setup-token; the next two OAuth issues hand out the flow canaries.
    sim.state.plant(ENV_TOKEN)
    sim.mint_token(kind="setup-token", source="env")
    sim.state.plant(OAUTH_ACCESS, OAUTH_REFRESH)
    sim.state.plant(CLI_ACCESS, CLI_REFRESH)
    env = {**os.environ, "HOME": str(user_home), "LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url,
           "LANELAB_HOME": str(kit_home), "LANELAB_OUT": str(out), "CLAUDE_CODE_OAUTH_TOKEN": ENV_TOKEN,
           "MPLCONFIGDIR": matplotlib.get_configdir(), "PYTHONDONTWRITEBYTECODE": "1"}
    nb_env = {k: env[k] for k in ("HOME", "LANELAB_MODE", "LANELAB_BASE_URL", "LANELAB_HOME", "LANELAB_OUT",
                                   "CLAUDE_CODE_OAUTH_TOKEN", "MPLCONFIGDIR")}
    for nb in notebooks_in_order():
        execute(nb, out / "notebooks", env=nb_env, timeout=300, cwd=repo_root() / "notebooks")
    _cli(["creds"], env, logs, "creds")
    _cli(["login", "--auto", "--label", "cli-login"], env, logs, "login")
    _cli(["matrix", "--profile", "hermes-0.14.0", "--design", "ofat", "--factors", "tools,user_agent",
          "--credential", "env-CLAUDE_CODE_OAUTH_TOKEN", "--no-progress"], env, logs, "matrix")
    _cli(["diff", "sdk-minimal", "hermes-0.14.0"], env, logs, "diff")
    _cli(["bisect", "--pass", "sdk-minimal", "--fail", "hermes-0.14.0", "--credential", "cli-login"],
         env, logs, "bisect")
    _cli(["report", "--out", str(out / "cli-report")], env, logs, "report")
    _capture_one_request(env, sim.base_url, out, logs)
    log = httpx.get(f"{sim.base_url}/_sim/requests", timeout=10).json()
    (logs / "sim_requests.json").write_text(json.dumps(log))
    issued = sim.state.issued_secrets()
    default_simulator(sim)
    yield {"root": root, "out": out, "kit_home": kit_home, "user_home": user_home, "foreign": foreign,
           "before": before, "issued": issued}


def _produced_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()]


def test_canaries_really_travelled(world):
    """Positive controls: without them a clean scan could mean the canaries never went anywhere."""
    store = "".join(p.read_text() for p in world["kit_home"].rglob("*.json"))
    assert OAUTH_ACCESS in store, "notebook 01's OAuth flow should have saved the planted canary"
    assert CLI_ACCESS in store, "the login CLI should have saved the planted canary"
    runs = list((world["out"] / "runs").glob("*.jsonl"))
    assert len(runs) >= 3, f"expected runs from notebook 02, the matrix CLI and bisect, got {runs}"
    matrix_run = next(p for p in runs if "tools" in p.read_text() and "env-CLAUDE_CODE_OAUTH_TOKEN" in p.read_text())
    outcomes = [json.loads(l).get("outcome") for l in matrix_run.read_text().splitlines()[1:]]
    assert "served_plan" in outcomes and "extra_usage_exhausted" in outcomes, "the env canary must have been used"
    assert (world["out"] / "findings.html").exists() and (world["out"] / "captures" / "leak.jsonl").exists()


def scan(files: list[Path], secrets: list[str], root: Path) -> list[str]:
    """Every file holding a whole secret, or any 8 consecutive characters of a secret's secret part."""
    windows: dict[str, str] = {}
    for secret in secrets:
        for w in _windows(secret):
            windows.setdefault(w, secret[:20])
    hits = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        if any(c in text for c in secrets):
            hits.append(f"{path.relative_to(root)}: a whole secret")
            continue
        for i in range(len(text) - WINDOW + 1):
            if text[i:i + WINDOW] in windows:
                hits.append(f"{path.relative_to(root)}@{i}: 8 characters of {windows[text[i:i + WINDOW]]}…")
                break
    return hits


def test_the_scan_finds_a_planted_fragment(tmp_path):
    fragment = ENV_TOKEN.split("01-", 1)[1][5:13]
    (tmp_path / "clean.txt").write_text("sk-ant-oat01-…1234 masked, as it should be")
    (tmp_path / "leaky.html").write_text(f"<p>token tail {fragment}</p>")
    hits = scan(_produced_files(tmp_path), CANARIES, tmp_path)
    assert len(hits) == 1 and hits[0].startswith("leaky.html")


def test_no_produced_file_holds_any_piece_of_a_secret(world):
    files = _produced_files(world["out"])
    hits = scan(files, [*CANARIES, *world["issued"]], world["out"])
    audit.record("leaks", canary_hits=len(hits), files_scanned=len(files))
    assert len(files) > 30, "the demo and CLI should have produced many files"
    assert not hits, "secrets leaked:\n" + "\n".join(hits[:20])


def test_kit_store_is_private(world):
    files = list(world["kit_home"].rglob("*.json"))
    assert files
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_foreign_credential_files_unchanged(world):
    after = _fingerprint(world["foreign"])
    changed = [p for p in after if after[p] != world["before"][p]]
    audit.record("foreign_files_demo", foreign_files_changed=len(changed))
    assert not changed, f"the kit changed another client's credential file: {changed}"
    leftovers = {p.name for p in (world["user_home"] / ".claude").iterdir()} | \
        {p.name for p in (world["user_home"] / ".hermes").iterdir()}
    assert leftovers == {".credentials.json", "auth.json", ".anthropic_oauth.json"}, "nothing new beside them"
