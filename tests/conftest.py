"""Shared fixtures: a running simulator (default policy) per test, or one per session for read-only tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import foreign_home
import pytest
from lanelab import redact
from lanelab.config import DEFAULT_POLICY
from lanelab.sim.server import SimHandle, running_simulator

_session: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Run the whole session with HOME in a sandbox holding test copies of other clients' credential files."""
    home = foreign_home.create()
    _session.update(home=home, before=foreign_home.fingerprint(home), saved=foreign_home.activate(home))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if any test changed another client's credential file (issue 7)."""
    if "home" not in _session:
        return
    after = foreign_home.fingerprint(_session["home"])
    changed = sorted(k for k in set(after) | set(_session["before"]) if after.get(k) != _session["before"].get(k))
    if os.environ.get("LANELAB_AUDIT_DIR") or session.config.getoption("-m") == "hardening":
        from lanelab.devtools import audit

        audit.record("foreign_files_session", foreign_files_changed=len(changed))
    foreign_home.deactivate(_session.pop("home"), _session.pop("saved"))
    if changed:
        session.config.get_terminal_writer().line(
            f"FOREIGN CREDENTIAL FILES CHANGED during the tests: {changed}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _isolated_secret_registry() -> Iterator[None]:
    """Each test starts from the registered secrets its fixtures made: a value one test registered (hypothesis can
    generate any text, model names included) must not make an unrelated later test see a "secret"."""
    saved = redact.snapshot()
    yield
    redact.restore(saved)


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A fresh simulator on a free loopback port, stopped after the test."""
    with running_simulator(policy=DEFAULT_POLICY) as handle:
        yield handle


@pytest.fixture(scope="session")
def sim_session() -> Iterator[SimHandle]:
    """One simulator for the whole session: only for tests that do not depend on account state."""
    with running_simulator(policy=DEFAULT_POLICY) as handle:
        yield handle


@pytest.fixture
def oauth_headers() -> Callable[..., dict[str, str]]:
    """Headers for an OAuth Bearer request the way a well-behaved client sends them (beta on by default)."""

    def build(token: str, beta: str | None = "oauth-2025-04-20", **extra: str) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
        if beta:
            headers["anthropic-beta"] = beta
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    return build
