"""Every citation of the reference notes resolves: the note exists under docs/references/ and so does each section.

A citation is ``references/<note>.md`` followed by its anchors: ``§N``, ``§N.M``, ``§N Fk`` (factor Fk inside section
N) or a bare ``Fk`` (factor Fk anywhere in the note). The anchors of one citation run until the next ``.md`` file
name on the same line, so ``references/hermes.md §3 (…), §6 (…); references/protocol.md §1.1`` checks §3 and §6 in
hermes.md and §1.1 in protocol.md. A note's sections are its headings that start with ``§N``; its factors are headings
that start with ``Fk``, filed under the last ``§`` heading above them. The old ``research/`` spelling is parsed the same
way (so a stale citation is reported precisely) and then refused, as is a note named without ``references/``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "references"
#: Where citations live. tests/ is included so that docstrings citing a note stay true as well.
SCANNED = ("data", "notebooks", "lib", "docs", "tests")
SUFFIXES = {".py", ".toml", ".md", ".ipynb"}
#: This file cites missing notes on purpose (the synthetic inputs below).
SELF = Path(__file__).resolve()

CITATION = re.compile(r"(?<![\w/])(?P<prefix>research|references)/(?P<note>[A-Za-z0-9_-]+\.md)\b")
ANY_FILE = re.compile(r"[\w./-]+\.md\b")
ANCHOR = re.compile(r"§\s*(?P<section>\d+(?:\.\d+)*)(?:\s+(?P<sub>F\d+)\b)?|\b(?P<factor>F\d+)\b")
HEADING = re.compile(r"^#{1,6}\s+(?:§(?P<section>\d+(?:\.\d+)*)|(?P<factor>F\d+))\b")


@dataclass(frozen=True)
class Citation:
    """One citation: where it is, which note it names and which anchors follow it."""

    where: str
    prefix: str
    note: str
    anchors: tuple[tuple[str | None, str | None], ...]  # (section, factor); either may be None


@dataclass(frozen=True)
class Note:
    """The anchors a reference note offers."""

    sections: frozenset[str]
    factors: frozenset[tuple[str, str]]  # (top-level section, factor)

    @property
    def any_factor(self) -> frozenset[str]:
        return frozenset(f for _, f in self.factors)


def parse_note(text: str) -> Note:
    """The sections and factors a note's headings define (fenced code blocks are skipped)."""
    sections: set[str] = set()
    factors: set[tuple[str, str]] = set()
    top = ""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = HEADING.match(line)
        if fenced or not m:
            continue
        if m["section"]:
            sections.add(m["section"])
            top = m["section"].split(".")[0]
        else:
            factors.add((top, m["factor"]))
    return Note(frozenset(sections), frozenset(factors))


def load_notes(directory: Path) -> dict[str, Note]:
    return {p.name: parse_note(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.md"))}


def citations_in(text: str, where: str) -> list[Citation]:
    """Every citation in ``text``, line by line, with the anchors that belong to it."""
    found: list[Citation] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        files = [m.start() for m in ANY_FILE.finditer(line)]
        for m in CITATION.finditer(line):
            ends = [s for s in files if s > m.start()] + [len(line)]
            scope = line[m.end():min(ends)]
            anchors = tuple((a["section"], a["sub"] or a["factor"]) for a in ANCHOR.finditer(scope))
            found.append(Citation(f"{where}:{lineno}", m["prefix"], m["note"], anchors))
    return found


def problems(citations: Sequence[Citation], notes: dict[str, Note]) -> list[str]:
    """One line per citation that names a missing note, section or factor."""
    out: list[str] = []
    for c in citations:
        note = notes.get(c.note)
        if note is None or c.note == "README.md":
            out.append(f"{c.where}: {c.prefix}/{c.note} is not a note in docs/references/")
            continue
        for section, factor in c.anchors:
            if section is not None and section not in note.sections:
                out.append(f"{c.where}: {c.note} has no §{section}")
            elif section is not None and factor is not None and (section.split(".")[0], factor) not in note.factors:
                out.append(f"{c.where}: {c.note} §{section} has no {factor}")
            elif section is None and factor is not None and factor not in note.any_factor:
                out.append(f"{c.where}: {c.note} has no {factor}")
    return out


def _without_request_tables(text: str) -> str:
    """A profile without its ``[request…]`` tables: what a client sent is quoted data, not the kit's citations (a
    captured prompt may well mention some ``references/x.md`` of its own)."""
    keep, inside = [], False
    for line in text.splitlines():
        header = re.match(r"^\[\[?([\w.\"-]+)\]\]?\s*$", line)
        if header:
            inside = header.group(1).startswith("request")
        keep.append("" if inside else line)
    return "\n".join(keep)


@functools.cache
def scanned_texts() -> tuple[tuple[str, str], ...]:
    """(relative path, text) of every scanned file; a notebook contributes the text of its cells. Read once for the
    session (the tests below read the same files, and only read them)."""
    texts: list[tuple[str, str]] = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file() or path.resolve() == SELF:
                continue
            raw = path.read_text(encoding="utf-8")
            if path.suffix == ".toml" and path.parent.name == "profiles":
                raw = _without_request_tables(raw)
            if path.suffix == ".ipynb":
                raw = "\n".join("".join(cell.get("source", "")) for cell in json.loads(raw).get("cells", []))
            texts.append((str(path.relative_to(ROOT)), raw))
    return tuple(texts)


@functools.cache
def all_citations() -> tuple[Citation, ...]:
    return tuple(c for rel, text in scanned_texts() for c in citations_in(text, rel))


# --- the repository -------------------------------------------------------------------------------------------


def test_every_citation_names_an_existing_note_and_section() -> None:
    citations = all_citations()
    for top in ("data", "notebooks", "lib"):
        assert any(c.where.startswith(top + "/") for c in citations), f"no citation found under {top}/"
    found = problems(citations, load_notes(REFERENCES))
    assert not found, "\n".join(found)


def test_citations_use_the_references_spelling() -> None:
    stale = [f"{c.where}: research/{c.note}" for c in all_citations() if c.prefix == "research"]
    assert not stale, "cite docs/references as references/<note>.md:\n" + "\n".join(stale)


def test_no_note_is_named_without_its_directory() -> None:
    names = "|".join(re.escape(p.stem) for p in REFERENCES.glob("*.md") if p.name != "README.md")
    bare = re.compile(rf"(?<![\w/.-])(?:{names})\.md\b")
    hits = [f"{rel}:{n}: {line.strip()}"
            for rel, text in scanned_texts() if not rel.startswith(("docs/references/", "tests/"))
            for n, line in enumerate(text.splitlines(), 1) if bare.search(line)]
    assert not hits, "write references/<note>.md:\n" + "\n".join(hits)


def test_every_note_is_listed_in_the_index() -> None:
    index = (REFERENCES / "README.md").read_text(encoding="utf-8")
    notes = [p.name for p in REFERENCES.glob("*.md") if p.name != "README.md"]
    assert notes
    assert [n for n in notes if f"]({n})" not in index] == []


# --- the checker itself, on synthetic input --------------------------------------------------------------------

SYNTHETIC_NOTE = """# A note
## §1 Factors
### F3 Something
### F10 Something else
## §2 Errors
```
## §9 inside a code block does not count
```
## §3 Responses
### §3.1 Headers
"""


@pytest.fixture
def notes() -> dict[str, Note]:
    return {"n.md": parse_note(SYNTHETIC_NOTE)}


def check(text: str, notes: dict[str, Note]) -> list[str]:
    return problems(citations_in(text, "x"), notes)


@pytest.mark.parametrize("text", [
    'source = "references/n.md §1 F3 (a claim); references/n.md §3.1"',
    "see references/n.md §2 and F10, also §3",
    "references/n.md F3",
    "(references/n.md)",
    "references/n.md §3.1, §1 F10; then docs/contracts.md §7 (another document, not checked)",
])
def test_checker_accepts_existing_sections(text: str, notes: dict[str, Note]) -> None:
    assert citations_in(text, "x")
    assert check(text, notes) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("references/missing.md §1", "missing.md is not a note"),
    ("references/README.md §1", "README.md is not a note"),
    ("references/n.md §4", "n.md has no §4"),
    ("references/n.md §3.2", "n.md has no §3.2"),
    ("references/n.md §9", "n.md has no §9"),
    ("references/n.md §2 F3", "n.md §2 has no F3"),
    ("references/n.md F11", "n.md has no F11"),
    ("references/n.md §1, §3.1, §5", "n.md has no §5"),
    ("research/n.md §4", "n.md has no §4"),
    ("references/n.md §1 (x); other/n.md §1 — references/n.md §2, §6", "n.md has no §6"),
])
def test_checker_reports_a_missing_note_or_section(text: str, expected: str, notes: dict[str, Note]) -> None:
    found = check(text, notes)
    assert len(found) == 1 and expected in found[0], found


def test_checker_scopes_anchors_to_their_own_note(notes: dict[str, Note]) -> None:
    two = {**notes, "m.md": parse_note("## §1 Only\n")}
    assert check("references/n.md §3.1; references/m.md §1", two) == []
    assert check("references/m.md §1; references/n.md §3.1", two) == []
    assert check("references/m.md §3.1; references/n.md §1", two) == ["x:1: m.md has no §3.1"]


def test_stale_research_spelling_is_found() -> None:
    [c] = citations_in("see research/n.md §1", "x")
    assert (c.prefix, c.note, c.anchors) == ("research", "n.md", (("1", None),))
