"""A full or read-only folder for tests, injected in the ``os`` calls every write goes through.

The tests run as root, and root ignores file modes: ``chmod 0500`` does not make a folder read-only for it. So the
fault is injected instead: while ``fault.active``, every call that would write under ``folder`` fails with the
error the kernel gives (``ENOSPC`` for a full disk: writing data, syncing it and creating folders; ``EROFS`` for a
read-only mount: opening for writing, creating, renaming, removing, changing modes and writing). Files outside
``folder`` are untouched, so pytest and the simulator keep working. ``only`` narrows the fault to the paths it accepts (e.g. the
credential file but not the kit's write probe). Where mounting is allowed, tests/test_credentials.py also checks
the same behaviour on a real tmpfs filled up, then remounted read-only.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class DiskFault:
    folder: Path
    kind: str  # "full" | "read-only"
    only: Callable[[str], bool] = lambda _path: True
    active: bool = True
    hits: list[str] = field(default_factory=list)

    @property
    def errno(self) -> int:
        return errno.ENOSPC if self.kind == "full" else errno.EROFS

    def applies(self, path: object) -> bool:
        if not self.active or path is None:
            return False
        try:
            text = os.path.abspath(os.fspath(path))  # type: ignore[arg-type]
        except TypeError:
            return False
        root = os.path.abspath(self.folder)
        return (text == root or text.startswith(root + os.sep)) and self.only(text)

    def fail(self, path: object) -> OSError:
        self.hits.append(os.fspath(path))  # type: ignore[arg-type]
        return OSError(self.errno, os.strerror(self.errno), os.fspath(path))  # type: ignore[arg-type]


def _fd_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def inject(monkeypatch: pytest.MonkeyPatch, folder: Path, kind: str,
           only: Callable[[str], bool] | None = None) -> DiskFault:
    """Make ``folder`` behave as full (``kind="full"``) or read-only (``"read-only"``) until ``fault.active`` is
    set to False or the test ends."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file a write goes to")
    fault = DiskFault(Path(folder), kind, only or (lambda _path: True))
    real = {name: getattr(os, name)
            for name in ("write", "fsync", "mkdir", "open", "replace", "rename", "unlink", "chmod")}

    def write(fd, data):
        path = _fd_path(fd)
        if fault.applies(path):
            raise fault.fail(path)
        return real["write"](fd, data)

    def fsync(fd):  # buffered file objects write through io, not os.write; a full disk also shows at fsync
        fd_ = fd if isinstance(fd, int) else fd.fileno()
        path = _fd_path(fd_)
        if fault.applies(path):
            raise fault.fail(path)
        return real["fsync"](fd)

    def mkdir(path, *args, **kw):
        if fault.applies(path) and not os.path.isdir(path):
            raise fault.fail(path)
        return real["mkdir"](path, *args, **kw)

    def open_(path, flags, *args, **kw):
        if fault.kind == "read-only" and flags & _WRITE_FLAGS and fault.applies(path):
            raise fault.fail(path)
        return real["open"](path, flags, *args, **kw)

    def two_paths(name):
        def call(src, dst, *args, **kw):
            for p in (src, dst):
                if fault.applies(p):
                    raise fault.fail(p)
            return real[name](src, dst, *args, **kw)
        return call

    def one_path(name):
        def call(path, *args, **kw):
            if fault.applies(path):
                raise fault.fail(path)
            return real[name](path, *args, **kw)
        return call

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "mkdir", mkdir)
    if kind == "read-only":
        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "replace", two_paths("replace"))
        monkeypatch.setattr(os, "rename", two_paths("rename"))
        monkeypatch.setattr(os, "unlink", one_path("unlink"))
        monkeypatch.setattr(os, "chmod", one_path("chmod"))
    elif kind != "full":
        raise ValueError(kind)
    return fault
