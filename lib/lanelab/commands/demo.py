"""``python -m lanelab demo``: every notebook, in reading order, against a fresh simulator; outputs in their own
folder (reports/demo/ by default), so the demo never touches the runs you make yourself in reports/runs/.

The demo starts fresh each time by removing what it wrote the time before, and nothing else: every file it creates
is listed, with its size and modification time, in ``OUT/.lanelab-demo.json``; a later demo removes a listed file
only while it is unchanged. A folder holding any file the demo did not write, or that changed since, is refused
before anything starts (one line, exit 2), so the demo never overwrites or removes a file of someone else's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lanelab.commands import count, stop_on_sigterm
from lanelab.config import DEFAULT_POLICY, Settings, repo_root
from lanelab.errors import InputError

NAME = "demo"
HELP = "execute every notebook headless against the embedded simulator and write the matrix, plots and report"
DESCRIPTION = (
    "Starts the embedded simulator on a free loopback port (policy 2026-05-25 by default), then executes each notebook "
    "in notebooks/ in reading order with LANELAB_MODE=sim. Executed notebooks, runs and reports land under --out "
    "(default: the demo folder of LANELAB_OUT, reports/demo/), never in your own runs folder. Each demo starts fresh by "
    "removing the files the previous demo wrote there (listed in OUT/.lanelab-demo.json) and nothing else; a folder "
    "holding any other file is refused before anything starts. Nothing "
    "touches the network or your own credential store: the demo keeps its simulator credentials in a temporary folder "
    "removed when it ends, never in OUT, which is meant to be shared. It ends with the report's answer in words."
)

#: The list of what the demo wrote, inside its output folder.
MANIFEST = ".lanelab-demo.json"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: LANELAB_OUT/demo, i.e. reports/demo/)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="simulator policy (default: %(default)s)")
    parser.add_argument("--only", default=None, help="run only notebooks whose name contains this text")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep what earlier demos wrote (their runs resume) instead of starting fresh")
    parser.add_argument("--timeout", type=count(1), default=600,
                        help="per-cell timeout in seconds (default: %(default)s)")


def default_out(settings: Settings | None = None) -> Path:
    """The demo's own folder: ``demo/`` under LANELAB_OUT (``reports/demo/`` by default)."""
    return (settings or Settings.from_env()).out / "demo"


def _stamp(path: Path) -> list[int | str]:
    """Size, modification time and SHA-256 of a file the demo wrote: it stays the demo's while its bytes do (a file
    touched, or saved again unchanged, is still the demo's; a file edited is not)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()]


def _unchanged(path: Path, stamp: Sequence[int | str]) -> bool:
    """Whether ``path`` holds what the demo wrote (a manifest of an earlier kit has no digest: size and time then)."""
    st = path.stat()
    if st.st_size != stamp[0]:
        return False
    if st.st_mtime_ns == stamp[1] or len(stamp) < 3:
        return st.st_mtime_ns == stamp[1]
    return hashlib.sha256(path.read_bytes()).hexdigest() == stamp[2]


def _walk(root: Path) -> Iterator[Path]:
    """Every file and folder under ``root`` (not following links), deepest last."""
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs + files:
            yield base / name


@dataclass
class DemoFolder:
    """What the demo wrote in ``root``, from the manifest: files with their stamps, and the folders it made."""

    root: Path
    files: dict[str, list[int | str]] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, root: Path) -> DemoFolder:
        """The manifest in ``root`` (an empty one when there is none or it cannot be read: then nothing is ours)."""
        try:
            data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
            files: dict[str, list[int | str]] = {str(k): [int(v[0]), int(v[1]), *[str(x) for x in v[2:3]]]
                                                 for k, v in data["files"].items()}
            dirs = [str(d) for d in data["dirs"]]
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls(root)
        return cls(root, files, dirs)

    def _inside(self, rel: str) -> Path | None:
        path = (self.root / rel).resolve()
        root = self.root.resolve()
        return path if path != root and root in path.parents else None

    def ours(self) -> list[Path]:
        """The listed files still as the demo left them (a changed, replaced or missing one is not ours)."""
        mine = []
        for rel, stamp in self.files.items():
            path = self._inside(rel)
            if path is not None and path.is_file() and not path.is_symlink() and _unchanged(path, stamp):
                mine.append(path)
        return mine

    def foreign(self) -> list[str]:
        """The files under ``root`` the demo did not write or that changed since (relative to ``root``, sorted): any
        of them makes the demo refuse the folder, as it would overwrite or remove them."""
        mine = set(self.ours())
        return sorted(p.relative_to(self.root).as_posix() for p in self.snapshot()
                      if (p.is_file() or p.is_symlink()) and p not in mine)

    def clean(self) -> None:
        """Remove the files the previous demo wrote (unchanged ones only) and the folders it made once empty."""
        for path in self.ours():
            path.unlink(missing_ok=True)
        for rel in sorted(self.dirs, key=lambda d: d.count("/"), reverse=True):
            folder = self._inside(rel)
            if folder is not None and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
        self.files, self.dirs = {}, []

    def snapshot(self) -> set[Path]:
        """Every file and folder under ``root`` now (the manifest excluded)."""
        return {p for p in _walk(self.root) if p.name != MANIFEST} if self.root.is_dir() else set()

    def record(self, before: set[Path], carried: Sequence[Path] = ()) -> None:
        """List what appeared since ``before``, plus the ``carried`` files (the earlier demo's, kept with
        ``--keep-runs``, which this demo may have appended to), and write the manifest."""
        new = self.snapshot() - before
        files = {p for p in new if p.is_file() and not p.is_symlink()} | {p for p in carried if p.is_file()}
        dirs = {p.relative_to(self.root).as_posix() for p in new if p.is_dir() and not p.is_symlink()}
        self.files = {p.relative_to(self.root).as_posix(): _stamp(p) for p in sorted(files)}
        self.dirs = sorted(dirs | set(self.dirs))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MANIFEST).write_text(json.dumps({"files": self.files, "dirs": self.dirs}, indent=1),
                                          encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    from lanelab.devtools.notebook_exec import execute, notebooks_in_order
    from lanelab.sim.server import running_simulator

    out = (args.out or default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)  # an unusable --out fails here, before a simulator or notebook starts
    folder = DemoFolder.read(out)
    foreign = folder.foreign()
    if foreign:  # the demo would overwrite or remove them: it refuses the folder before anything starts
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise InputError(f"{out} holds {len(foreign)} file(s) the demo did not write, or that changed since it did: "
                         f"{shown}. The demo writes only into a folder of its own, so that nothing of yours is "
                         "overwritten or removed.", "Move them elsewhere (or, if you need none of them, delete the "
                         "folder: 'make clean' removes reports/demo/), or pass --out with a new or empty folder.")
    carried: list[Path] = []
    if args.keep_runs:
        carried = folder.ours()
    else:
        folder.clean()
    before = folder.snapshot()
    executed_dir = out / "notebooks"
    notebooks = [p for p in notebooks_in_order() if not args.only or args.only in p.name]
    restore = stop_on_sigterm()  # SIGTERM unwinds as Ctrl-C does: simulator stopped, credentials removed
    try:  # the simulator's credentials live outside OUT (a folder to share), and only while the demo runs
        with tempfile.TemporaryDirectory(prefix="lanelab-demo-home-") as home, \
                running_simulator(policy=args.policy) as sim:
            print(f"simulator: {sim.base_url} (policy {args.policy})", flush=True)
            env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_HOME": str(home),
                   "LANELAB_OUT": str(out)}
            for nb in notebooks:
                print(f"running {nb.name} …", flush=True)
                result = execute(nb, executed_dir, env=env, timeout=args.timeout, cwd=repo_root() / "notebooks")
                print(f"  done in {result.seconds:.1f}s → {result.executed_path}", flush=True)
    finally:  # a failed or interrupted demo lists what it wrote too, so the next one can remove it
        restore()
        folder.record(before, carried)
    print("\nOutputs:")
    for label, path in (("executed notebooks", executed_dir), ("runs", out / "runs"),
                        ("report (HTML)", out / "findings.html"), ("report (Markdown)", out / "findings.md")):
        if path.exists():
            print(f"  {label:20} {path}")
    answer = headline(out / "findings.md")
    if answer:
        print(f"\nThe answer, as the report states it:\n  {answer}")
    return 0


def headline(report: Path) -> str | None:
    """The report's answer in words: the bold sentence under its title in ``findings.md`` (Markdown marks taken
    out), or None when there is no report or no such sentence."""
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    bold = next((line for line in lines if line.startswith("**") and line.endswith("**") and len(line) > 4), None)
    return bold[2:-2].replace("`", "") if bold else None
