"""Fixtures for the real-browser tests: the simulator, JupyterLab on a temporary copy of the notebooks, Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lanelab.config import repo_root

from .lab_driver import CHROMIUM, CHROMIUM_ARGS, LabPage


def pytest_collection_modifyitems(items):
    """Tag this package's tests (and only them) ``browser`` and ``slow``: the hook sees every item of the session."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


# Package scope: Playwright's sync API leaves an event loop marked running in the main thread while it is open, so it
# must be closed before the rest of the suite (which calls asyncio.run) starts.
@pytest.fixture(scope="package")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def lab_env(tmp_path_factory):
    """A simulator plus JupyterLab serving a scratch copy of notebooks/ (outputs never touch the committed files)."""
    from lanelab.devtools.lab import running_lab
    from lanelab.sim.server import running_simulator

    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    work.mkdir()
    for nb in (repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        shutil.copy2(nb, work / nb.name)
    with running_simulator(policy="2026-05-25") as sim:
        env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_HOME": str(root / "home"),
               "LANELAB_OUT": str(root / "out"), "LANELAB_INTERACTIVE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        with running_lab(work, env=env, expose_app=True) as lab:
            yield {"lab": lab, "sim": sim, "root": root, "work": work}


@pytest.fixture
def lab_page(chromium, lab_env):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield LabPage(page, lab_env["lab"].url, lab_env["lab"].token, repo_root() / "reports" / "screenshots")
    context.close()
