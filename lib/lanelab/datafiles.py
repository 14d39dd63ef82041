"""Reading the kit's data files (TOML under data/): one place for caching and for the "cannot read" errors.

Facts that change live in data, so every module reads some; they all read through here. A file is parsed once per
version (keyed by its modification time), so editing a data file takes effect without restarting a kernel.
"""

from __future__ import annotations

import copy
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lanelab.errors import InputError, UserError

T = TypeVar("T")
_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[int, Any]] = {}
_resolved_paths: dict[str, str] = {}


class DataFileError(InputError):
    """A data file is missing, unreadable or not valid TOML."""

    hint = "Check the file (LANELAB_DATA points the kit at another data folder)."


def _mtime(path: Path, what: str, error: type[UserError]) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError as exc:
        raise error(f"Cannot read the {what} at {path} ({exc.strerror}).") from None


def _resolved(path: Path) -> str:
    """``path`` resolved, remembered per spelling (resolving walks every component; this runs once per reading)."""
    text = str(path)
    found = _resolved_paths.get(text)
    if found is None:
        found = _resolved_paths[text] = str(path.resolve())
    return found


def load_cached(path: Path, build: Callable[[Path], T], what: str = "data file",
                error: type[UserError] = DataFileError) -> T:
    """``build(path)``, computed once per version of the file (for parsed and validated objects)."""
    path = Path(path)
    mtime = _mtime(path, what, error)
    key = (_resolved(path), getattr(build, "__qualname__", None) or repr(build))
    with _lock:
        hit = _cache.get(key)
    if hit and hit[0] == mtime:
        return hit[1]
    value = build(path)
    with _lock:
        _cache[key] = (mtime, value)
    return value


def _parse(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def read_toml(path: Path, what: str = "data file", error: type[UserError] = DataFileError) -> dict[str, Any]:
    """The parsed TOML document at ``path`` (a fresh copy: callers may change it), or ``error`` saying what is wrong."""
    path = Path(path)

    def parse(p: Path) -> dict[str, Any]:
        try:
            return _parse(p)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"The {what} at {p} is not valid TOML: {exc}.") from None
        except OSError as exc:
            raise error(f"Cannot read the {what} at {p} ({exc.strerror}).") from None

    parse.__qualname__ = "read_toml"
    return copy.deepcopy(load_cached(path, parse, what, error))
