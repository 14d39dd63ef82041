"""The remedies that exist today, as data (``data/remedies.toml``): what to do, what it costs or does not cover, and
the public source. One reader for lint, the findings' answers and diagnose, so they always name the same remedies.

The kit names only remedies that exist (DESIGN.md, responsible use): fix a malformed request or a reported trigger,
enable extra usage, use an API key (with the API credits some plans include), use Anthropic's own clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanelab.config import data_file
from lanelab.datafiles import DataFileError, load_cached, read_toml

__all__ = ["FIELDS", "RemediesError", "Remedy", "load_remedies", "remedies_path", "sentence"]

#: The keys of one ``[[remedy]]``: required ones first, then the optional ones.
FIELDS = {"id": True, "text": True, "caveat": True, "source": True, "generic": False, "short": False, "since": False}


class RemediesError(DataFileError):
    """``data/remedies.toml`` is missing or malformed; the message names the file, the entry and the key."""

    hint = "Fix data/remedies.toml (its header comment describes the format)."


@dataclass(frozen=True)
class Remedy:
    """One remedy that exists: what to do, what it costs or misses, the public source."""

    id: str
    text: str
    caveat: str
    source: str
    generic: str = ""
    short: str = ""
    since: str = ""

    def render(self, fix: str = "") -> str:
        """The remedy as one line: what to do (``fix`` filled in; without one, the generic text), caveat, source."""
        what = self.text.replace("{fix}", fix) if fix or "{fix}" not in self.text else (self.generic or self.text)
        return f"{what} {self.caveat} ({self.source})"

    @property
    def line(self) -> str:
        """What to do and its caveat, without a particular element (lint, reports)."""
        return f"{self.generic or self.text} {self.caveat}"

    @property
    def phrase(self) -> str:
        """A few words for running prose."""
        return self.short or (self.generic or self.text).rstrip(".")


def remedies_path() -> Path:
    """``data/remedies.toml`` (under ``LANELAB_DATA`` when set)."""
    return data_file("remedies.toml")


def _entry(raw: Any, i: int, path: Path) -> Remedy:
    where = f"remedy[{i}]"
    if not isinstance(raw, dict):
        raise RemediesError(f"{path}: {where} must be a table.")
    for key, required in FIELDS.items():
        value = raw.get(key)
        if value is None and not required:
            continue
        if not isinstance(value, str) or not value.strip():
            raise RemediesError(f"{path}: {where}.{key} must be a non-empty string.")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise RemediesError(f"{path}: {where} has unknown key(s) {unknown}; known: {', '.join(FIELDS)}.")
    if "{fix}" in raw["text"] and not raw.get("generic"):
        raise RemediesError(f"{path}: {where}.generic is missing (text names {{fix}}, so a generic text is needed).")
    return Remedy(**{k: str(raw.get(k) or "") for k in FIELDS})


def _parse(path: Path) -> tuple[Remedy, ...]:
    raw = read_toml(path, "remedies", RemediesError)
    entries = raw.get("remedy")
    if not isinstance(entries, list) or not entries:
        raise RemediesError(f"{path}: remedy must be an array of tables ([[remedy]]) with at least one entry.")
    out = tuple(_entry(e, i, path) for i, e in enumerate(entries))
    ids = [r.id for r in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RemediesError(f"{path}: remedy ids {dupes} are used twice.")
    return out


def load_remedies(path: str | Path | None = None) -> list[Remedy]:
    """The remedies in the order they are shown (``data/remedies.toml`` unless ``path``).

    Returns a list of :class:`Remedy`. Raises :class:`RemediesError` when the file is missing or malformed.
    """
    return list(load_cached(Path(path) if path else remedies_path(), _parse, "remedies", RemediesError))


def sentence(exclude: tuple[str, ...] = ()) -> str:
    """The remedies as one phrase for running prose ("a; b; c, or d"), leaving out the ids in ``exclude``."""
    phrases = [r.phrase for r in load_remedies() if r.id not in exclude]
    if len(phrases) <= 1:
        return "".join(phrases)
    return "; ".join(phrases[:-1]) + "; or " + phrases[-1]
