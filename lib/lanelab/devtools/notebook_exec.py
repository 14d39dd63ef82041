"""Execute the kit's notebooks headless, the same way for ``make demo`` and for the tests.

Configuration reaches the kernel through environment variables (the kernel is a child process and inherits them), so
a notebook executed here and one opened by a person read their settings the same way. A failed execution keeps the
executed copy next to the output (``NAME-err.ipynb``) so the traceback can be read cell by cell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lanelab import redact
from lanelab.config import repo_root
from lanelab.errors import ServiceError

if TYPE_CHECKING:
    import nbformat

KERNEL_NAME = "python3"


class NotebookFailed(ServiceError):
    """A notebook raised during headless execution; the executed copy was kept for inspection."""


@dataclass
class NotebookResult:
    """What one headless execution produced."""

    name: str
    executed_path: Path
    seconds: float
    cells: int

    def __repr__(self) -> str:
        return f"<NotebookResult {self.name}: {self.cells} cells in {self.seconds:.1f}s → {self.executed_path}>"


def notebooks_in_order(folder: Path | None = None) -> list[Path]:
    """The notebooks in reading order (their names start with a two-digit number)."""
    folder = folder or repo_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


@contextlib.contextmanager
def environment(overrides: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (the kernel started inside inherits them)."""
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update({k: str(v) for k, v in overrides.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _error_summary(nb: nbformat.NotebookNode) -> str:
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i} raised {out.get('ename')}: {redact.redact_text(str(out.get('evalue')))[:300]}"
    return "execution failed"


def execute(path: Path, out_dir: Path, env: Mapping[str, str] | None = None, timeout: int = 600,
            cwd: Path | None = None) -> NotebookResult:
    """Execute ``path`` with ``env`` set, write the executed copy into ``out_dir`` and return a summary.

    On failure the executed copy is written as ``NAME-err.ipynb`` and :class:`NotebookFailed` names the failing cell.
    """
    import nbformat  # here, not at the top: importing it costs seconds (its JSON-schema checkers)
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, startup_timeout=120, kernel_name=KERNEL_NAME,
                            # ipykernel warns on stderr, every run, that local TCP is unencrypted: noise here
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    started = time.perf_counter()
    # the kernel's own log (not the cells' output, which nbclient collects) goes to a file dropped afterwards: after
    # an interrupt the kernel reports the sockets closed under it, which is no news to the user
    with environment({"MPLBACKEND": "Agg", **(env or {})}), tempfile.TemporaryFile() as kernel_log:
        try:
            client.execute(stderr=kernel_log)
        except (CellExecutionError, CellTimeoutError) as exc:
            err_path = out_dir / f"{path.stem}-err.ipynb"
            nbformat.write(nb, err_path)
            detail = _error_summary(nb) if isinstance(exc, CellExecutionError) else "a cell timed out"
            raise NotebookFailed(
                f"{path.name} failed: {detail}.",
                hint=f"The executed copy is kept at {err_path} for inspection.",
            ) from None
        except BaseException as exc:  # an interrupt can surface as nbclient's clean-up failing after it
            if _interrupted(exc):
                raise KeyboardInterrupt from None
            raise
    executed = out_dir / path.name
    nbformat.write(nb, executed)
    return NotebookResult(path.stem, executed, time.perf_counter() - started, len(nb.cells))


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, an interrupt (Ctrl-C, or SIGTERM made one): nbclient's
    clean-up after an interrupt may fail in its own way (an ``AssertionError`` on its kernel manager)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, asyncio.CancelledError)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def strip_outputs(path: Path) -> bool:
    """Remove outputs, execution counts and widget state from a notebook file; True when it changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True
    if nb.metadata.get("kernelspec", {}).get("name") != KERNEL_NAME:
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def sync_all(folder: Path | None = None) -> list[Path]:
    """Regenerate each ``.ipynb`` from its py:percent twin (the reviewed source) and strip outputs."""
    import jupytext

    folder = folder or repo_root() / "notebooks"
    written = []
    for py in sorted(folder.glob("[0-9][0-9]_*.py")):
        target = py.with_suffix(".ipynb")
        nb = jupytext.read(py)
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
        if target.exists():  # keep the committed cell ids (new random ids would be churn in every diff)
            old = jupytext.read(target)
            if _cell_keys(old) == _cell_keys(nb):
                strip_outputs(target)
                continue
            for new_cell, old_cell in zip(nb.cells, old.cells):
                if "id" in old_cell:
                    new_cell["id"] = old_cell["id"]
        jupytext.write(nb, target, fmt="ipynb")
        strip_outputs(target)
        written.append(target)
    return written


def _cell_keys(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in nb.cells]
