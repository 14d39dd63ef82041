"""Shared fixtures: the session's one simulator, reset before each test (``sim``, and ``sim_with`` for another
policy, account or fault plan), a recorded sleep for the runner, OAuth headers, and the session's sandboxed HOME.

A module-scoped fixture takes ``shared_sim`` and puts it back itself (``shared_simulator.default_simulator``). A test
that needs a simulator of its own (its own port lifetime, settings read when the server starts, real host names, a
client killed mid-request, state shared across a module) still calls ``running_simulator`` and says why in a comment.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fast_loop
import foreign_home
import pytest
from hypothesis import settings as hypothesis_settings
from lanelab import redact
from lanelab.config import DEFAULT_POLICY
from lanelab.sim.server import SimHandle, running_simulator
from shared_simulator import configure_sim, default_simulator

_session: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Run the whole session with HOME in a sandbox holding test copies of other clients' credential files. In the
    fast loop (``-m`` deselects the tests marked slow), property tests try a few examples (tests/fast_loop.py) unless
    ``--hypothesis-profile`` names a profile."""
    home = foreign_home.create()
    _session.update(home=home, before=foreign_home.fingerprint(home), saved=foreign_home.activate(home))
    if not config.getoption("hypothesis_profile", None) and fast_loop.is_fast_loop(config.getoption("markexpr", "")):
        hypothesis_settings.load_profile(fast_loop.FAST)


#: Folders whose every test carries these markers (their conftest adds them), so a marker expression can rule a whole
#: folder out before its modules are imported (JupyterLab, Playwright, nbformat: seconds per worker).
MARKED_FOLDERS = {"browser": {"browser", "slow"}, "rehearsal": {"rehearsal", "slow"}}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip a folder of :data:`MARKED_FOLDERS` when ``-m`` deselects every test in it whatever other markers a test
    there may also carry; otherwise leave the decision to pytest."""
    marks = MARKED_FOLDERS.get(collection_path.name)
    if marks is None or collection_path.parent != Path(__file__).parent:
        return None
    return True if fast_loop.deselects(config.getoption("markexpr", ""), marks) else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist (controller): under ``--dist loadfile`` (``make test-fast``), whole files to each worker and the
    files that import the anthropic SDK to one worker together (tests/fast_loop.py); otherwise xdist's own."""
    return fast_loop.make_scheduler(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if any test changed another client's credential file (issue 7). Under pytest-xdist each
    worker checks its own sandbox and hands what changed to the controller, which reports for the whole run."""
    if "home" not in _session:
        return
    after = foreign_home.fingerprint(_session["home"])
    changed = sorted(k for k in set(after) | set(_session["before"]) if after.get(k) != _session["before"].get(k))
    foreign_home.deactivate(_session.pop("home"), _session.pop("saved"))
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports
        workeroutput["foreign_files_changed"] = changed
        return
    changed = sorted({*changed, *_session.pop("workers_changed", [])})
    if os.environ.get("LANELAB_AUDIT_DIR") or session.config.getoption("-m") == "hardening":
        from lanelab.devtools import audit

        audit.record("foreign_files_session", foreign_files_changed=len(changed))
    if changed:
        session.config.get_terminal_writer().line(
            f"FOREIGN CREDENTIAL FILES CHANGED during the tests: {changed}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist (controller): collect what each worker found changed in its sandbox."""
    _session.setdefault("workers_changed", []).extend(getattr(node, "workeroutput", {}).get("foreign_files_changed", []))


@pytest.fixture(scope="session", autouse=True)
def _one_default_tls_context() -> Iterator[None]:
    """httpx builds a fresh TLS context (reading the whole CA bundle, tens of milliseconds) for every client, and
    the tests make thousands of one-shot clients (``httpx.get``…), nearly all to plain-http loopback. Within the test
    session, clients that ask for the default verification share one context per CA source instead; clients given
    their own ``verify`` context or certificate are left alone."""
    from httpx._transports import default as transports

    made: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
    create = transports.create_ssl_context

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return create(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = create(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transports, "create_ssl_context", shared)
        yield


@pytest.fixture(autouse=True)
def _isolated_secret_registry() -> Iterator[None]:
    """Each test starts from the registered secrets its fixtures made: a value one test registered (hypothesis can
    generate any text, model names included) must not make an unrelated later test see a "secret"."""
    saved = redact.snapshot()
    yield
    redact.restore(saved)


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[SimHandle]:
    """The session's one simulator (default policy, default account, no faults). Tests take it through ``sim`` or
    ``sim_with``, which put it back to that state before and after each test."""
    with running_simulator(policy=DEFAULT_POLICY) as handle:
        yield handle


@pytest.fixture
def sim_with(shared_sim: SimHandle) -> Iterator[Callable[..., SimHandle]]:
    """``sim_with(policy=…, faults=…, account=…, seed=…)``: the shared simulator, configured for this test as if
    started with those settings (see :func:`shared_simulator.configure_sim`); back to the default after the test.

    The simulator reads its policies from the data folder (``LANELAB_DATA``); a test that points it elsewhere is
    undone only after this fixture's teardown, so the teardown reads them from where the test started."""
    data = os.environ.get("LANELAB_DATA")
    default_simulator(shared_sim)
    yield lambda **settings: configure_sim(shared_sim, **settings)
    with pytest.MonkeyPatch.context() as patch:
        if data is None:
            patch.delenv("LANELAB_DATA", raising=False)
        else:
            patch.setenv("LANELAB_DATA", data)
        default_simulator(shared_sim)


@pytest.fixture
def sim(sim_with: Callable[..., SimHandle]) -> SimHandle:
    """The shared simulator with the default policy, account and no faults, reset: as fresh as a new one."""
    return sim_with()


class Sleeps:
    """An injectable sleep for the matrix runner: records the delays it chose instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="session")
def sleeps() -> type[Sleeps]:
    """:class:`Sleeps` itself: ``sleep = sleeps()`` is a fresh recorder to pass to the runner as ``sleep=``."""
    return Sleeps


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
