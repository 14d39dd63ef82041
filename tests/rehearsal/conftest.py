"""The offline rehearsal of live mode: a scenario script runs with the kit configured exactly as live, against the
simulator standing in for Anthropic's real host names, inside a private network namespace.

Only name resolution (the namespace's hosts file maps the live names to 127.0.0.1) and trust (a test CA, given to the
kit through ``LANELAB_CA_BUNDLE``) differ from a real live run. Nothing in the namespace can reach another machine.

``rehearse("name", *args)`` runs ``scenarios/name.py`` (or a path) and returns a :class:`Rehearsal`: its exit status,
output, the files it wrote under its ``LANELAB_HOME``/``LANELAB_OUT``/``REHEARSAL_DIR`` and what the simulator saw.
``hosts=`` names the host names that resolve inside (default: every live one); leaving one out rehearses a DNS
failure for it. ``HOME`` is an empty folder: no other client's credential files.
The scenario gets, besides the kit's live settings: ``REHEARSAL_DIR`` (a folder for its own results) and
``REHEARSAL_CA`` (the test CA, for the scenario's stand-in for a person's browser; the kit itself gets it only
through ``LANELAB_CA_BUNDLE``). Where namespaces cannot be made the tests skip with the reason (fail instead with
``LANELAB_REQUIRE_REHEARSAL=1``); CI runs as root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lanelab.config import repo_root
from lanelab.walkthrough import namespace

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
#: Settings a developer's shell may hold that would make the rehearsal differ from a user's live run.
CLEARED = ("LANELAB_BASE_URL", "LANELAB_PROXY", "LANELAB_DATA", "LANELAB_INTERACTIVE", "SSL_CERT_FILE",
           "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
           "http_proxy", "https_proxy", "all_proxy", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
           "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_TOKEN")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag this package's tests (and only them: the hook sees every item of the session) ``rehearsal`` and ``slow``
    (``-m rehearsal`` runs just them; each starts a namespace and a process of the kit)."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.rehearsal)
            item.add_marker(pytest.mark.slow)


@dataclass
class Rehearsal:
    """What one rehearsed scenario did."""

    returncode: int
    stdout: str
    stderr: str
    home: Path
    out: Path
    results: Path
    sim_requests: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def files(self) -> dict[str, Path]:
        """Every file the scenario left, by path relative to its temp folder (``home/…``, ``out/…``, ``results/…``)."""
        root = self.home.parent
        return {str(p.relative_to(root)): p for base in (self.home, self.out, self.results)
                for p in sorted(base.rglob("*")) if p.is_file()}

    def result(self, name: str = "result.json") -> Any:
        """The JSON the scenario wrote to ``REHEARSAL_DIR/name``."""
        return json.loads((self.results / name).read_text())

    def describe(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout[-4000:]}\n"
                f"--- stderr\n{self.stderr[-4000:]}")


@pytest.fixture(scope="session")
def namespaces() -> None:
    """Skip (or, with ``LANELAB_REQUIRE_REHEARSAL=1``, fail) where a private network namespace cannot be made."""
    ok, reason = namespace.can_use_namespaces()
    if not ok:
        message = f"offline rehearsal needs a private network namespace: {reason}"
        if os.environ.get("LANELAB_REQUIRE_REHEARSAL", "").strip() in ("1", "yes", "true"):
            pytest.fail(message + " (LANELAB_REQUIRE_REHEARSAL is set)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def test_ca(namespaces: None) -> Iterator[namespace.TestCA]:
    """One test CA and server certificate for the live host names, for the session."""
    with namespace.test_ca() as ca:
        yield ca


@pytest.fixture
def rehearse(test_ca: namespace.TestCA, tmp_path: Path) -> Callable[..., Rehearsal]:
    """Run a scenario in the namespace with the simulator on 443 and the kit configured as live (see the module)."""

    def run(scenario: str | Path, *args: str, env: dict[str, str] | None = None, policy: str | None = None,
            account: dict[str, Any] | None = None, timeout: float = 120.0,
            hosts: Iterable[str] | None = None) -> Rehearsal:
        script = Path(scenario) if os.sep in str(scenario) else SCENARIOS / f"{scenario}.py"
        assert script.is_file(), f"no scenario {script}"
        run_dir = Path(tmp_path / script.stem)
        home, out, results = run_dir / "home", run_dir / "out", run_dir / "results"
        user_home = run_dir / "userhome"  # a person's home with no other client's credential files in it
        for folder in (home, out, results, user_home):
            folder.mkdir(parents=True)
        log = run_dir / "sim-requests.json"
        kit_env: dict[str, str | None] = {key: None for key in CLEARED}
        kit_env.update({
            "LANELAB_MODE": "live", "LANELAB_LIVE_OPT_IN": "1", "LANELAB_CA_BUNDLE": str(test_ca.ca_pem),
            "LANELAB_HOME": str(home), "LANELAB_OUT": str(out), "HOME": str(user_home),
            "REHEARSAL_DIR": str(results), "REHEARSAL_CA": str(test_ca.ca_pem),
            "PYTHONPATH": str(repo_root() / "lib"), "PYTHONUNBUFFERED": "1",
        })
        kit_env.update(env or {})
        argv = [sys.executable, str(HERE / "inside.py"), "--cert", str(test_ca.cert_pem), "--key",
                str(test_ca.key_pem), "--log", str(log), "--timeout", str(timeout)]
        if policy:
            argv += ["--policy", policy]
        if account is not None:
            argv += ["--account", json.dumps(account)]
        argv += ["--", str(script), *args]
        started = time.monotonic()
        done = namespace.run(argv, None if hosts is None else sorted(hosts), env=kit_env, capture_output=True,
                             text=True, timeout=timeout + 30, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        sim_requests = json.loads(log.read_text()) if log.is_file() else []
        return Rehearsal(done.returncode, done.stdout, done.stderr, home, out, results, sim_requests, seconds)

    return run
