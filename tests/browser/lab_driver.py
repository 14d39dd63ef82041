"""Driving JupyterLab in Debian's Chromium through Playwright: open a notebook, run it, wait, screenshot."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


class LabPage:
    """One JupyterLab tab, with the few gestures the tests need."""

    def __init__(self, page, lab_url: str, token: str, shots: Path):
        self.page, self.lab_url, self.token, self.shots = page, lab_url, token, shots
        self.shots.mkdir(parents=True, exist_ok=True)

    def open_notebook(self, name: str) -> None:
        # ?reset: start from an empty workspace, or Lab reopens earlier notebooks and "run all" may hit another one.
        # ?token=: the lab's access token, as in the URL `make lab` prints; Lab then keeps a login cookie and sends
        # the _xsrf value with every POST itself (XSRF checks stay on).
        self.page.goto(f"{self.lab_url}/lab/tree/{name}?reset&token={self.token}")
        self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden)", timeout=90_000)
        self.wait_kernel_idle()

    def command(self, command_id: str) -> None:
        self.page.evaluate("([c]) => window.jupyterapp.commands.execute(c)", [command_id])

    def kernel_status(self) -> str:
        return self.page.evaluate(
            "() => { const w = window.jupyterapp.shell.currentWidget;"
            " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " ? w.sessionContext.session.kernel.status : 'none'; }")

    def wait_kernel_idle(self, timeout_ms: int = 120_000) -> None:
        self.page.wait_for_function(
            "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
            timeout=timeout_ms)

    def run_all(self, timeout_ms: int = 240_000) -> None:
        self.command("notebook:run-all-cells")
        self.page.wait_for_timeout(500)
        # every code cell leaves the "[*]" (queued/running) state
        self.page.wait_for_function(
            "() => ![...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))"
            " && window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
            timeout=timeout_ms)

    def errors(self) -> list[str]:
        return self.page.eval_on_selector_all(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
            "els => els.map(e => e.textContent).filter(t => /Traceback|Error/.test(t))")

    def show(self, locator, block: str = "start") -> None:
        """Scroll the notebook so ``locator``'s element is at the top (``block`` "start") or in the middle
        ("center") of the window, a little below the toolbar, for a screenshot."""
        locator.wait_for(state="attached", timeout=30_000)
        locator.evaluate("(e, b) => { e.scrollIntoView({block: b});"
                         " const s = e.closest('.jp-WindowedPanel-outer'); if (s && b === 'start') s.scrollTop -= 40; }",
                         block)
        self.page.wait_for_timeout(300)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path
