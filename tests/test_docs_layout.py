"""docs/contracts.md keeps up with the code: §0.1 names every module of the kit under its own stage, §0.2 draws the
layering rule tests/test_layers.py enforces, and every dotted name the document gives (``lanelab.http.client``,
``config.DEFAULT_POLICY``, ``matrix.picker → findings.report``) still exists. A module added, moved or renamed
without its line in the document fails here."""

from __future__ import annotations

import importlib
import re

import pytest
from test_layers import CORE, EXCEPTIONS, LIB, SIM_DOOR, STAGES, modules

DOC = LIB.parents[1] / "docs" / "contracts.md"
#: A backticked name, as a head of a layout line may spell it: ``spec``, ``runs.py``, ``wire/``.
NAME = re.compile(r"`([A-Za-z_]\w*)(\.py|/)?`")
#: A dotted name inside inline code: ``lanelab.http.client``, ``config.is_loopback``.
DOTTED = re.compile(r"(?<![\w/.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w/])")
FILE_SUFFIXES = {"py", "toml", "md", "j2", "jsonl", "json", "html"}


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of the ``###`` section whose heading starts with ``heading``, up to the next heading."""
    m = re.search(rf"^### {re.escape(heading)}.*?$(.*?)(?=^#{{2,3}} )", text, re.MULTILINE | re.DOTALL)
    assert m, f"docs/contracts.md has no section '### {heading}'"
    return m.group(1)


def bullets(text: str) -> list[str]:
    """The list items of ``text``, each with its continuation lines joined."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return items


def layout() -> tuple[dict[str, set[str]], set[str], list[str]]:
    """From §0.1: the names in each folder's line (``{"wire": {...}}``), the names on the other lines (core and
    single-module stages), and the order in which the stage lines come."""
    folders: dict[str, set[str]] = {}
    top: set[str] = set()
    order: list[str] = []
    for item in bullets(section(doc_text(), "0.1")):
        head = NAME.match(item)
        names = {m.group(1) for m in NAME.finditer(item)}
        if head and head.group(2) == "/":
            folders[head.group(1)] = names
            order.append(head.group(1))
        else:
            top |= names
            order += [m.group(1) for m in NAME.finditer(item) if m.group(2) == ".py"]
    return folders, top, order


def kit_modules() -> list[str]:
    """Every module of the kit as a dotted name under lanelab (packages themselves left out)."""
    return sorted(name for name, path in modules().items() if path.name != "__init__.py")


def test_the_layout_is_read() -> None:
    folders, top, order = layout()
    assert {"wire", "auth", "sim"} <= set(folders) and {"config", "http"} <= top and order


def test_every_module_is_named_under_its_stage() -> None:
    folders, top, _ = layout()
    missing = []
    for name in kit_modules():
        *package, leaf = name.split(".")
        where = folders.get(package[0], set()) if package else top
        if leaf not in where:
            missing.append(f"{name} (in the {'`' + package[0] + '/`' if package else 'top-level'} line)")
    assert not missing, "docs/contracts.md §0.1 does not name:\n" + "\n".join(missing)


def test_every_folder_named_exists() -> None:
    folders, _, _ = layout()
    packages = {path.parent.name for path in LIB.glob("*/__init__.py")}
    assert set(folders) == packages


def test_stage_lines_follow_the_layering_order() -> None:
    _, _, order = layout()
    stages = [s for s in order if s in STAGES]
    assert stages == STAGES, f"§0.1 lists the stages as {stages}, tests/test_layers.py as {STAGES}"


def test_the_layering_section_draws_the_enforced_rule() -> None:
    text = section(doc_text(), "0.2")
    assert " < ".join(STAGES) in text, "the stage order in §0.2 differs from tests/test_layers.py STAGES"
    core_line = bullets(text)[0]
    assert {m.group(1) for m in NAME.finditer(core_line)} == CORE, "the core in §0.2 differs from CORE"
    for source, target in EXCEPTIONS:
        assert f"`{source} → {target}`" in text, f"§0.2 does not list the exception {source} → {target}"
    assert f"lanelab.{SIM_DOOR}" in text


def inline_code(text: str) -> list[str]:
    """The inline code spans of ``text`` outside fenced blocks."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"`([^`\n]+)`", text)


def dotted_names() -> list[str]:
    """Dotted names in inline code whose first part is a module or stage of the kit (``lanelab.`` dropped)."""
    roots = {name.split(".")[0] for name in modules()}
    found = []
    for span in inline_code(doc_text()):
        for m in DOTTED.finditer(span):
            parts = m.group(1).removeprefix("lanelab.").split(".")
            if parts[0] in roots and parts[-1] not in FILE_SUFFIXES:
                found.append(".".join(parts))
    return sorted(set(found))


def test_the_document_names_dotted_names_to_check() -> None:
    assert {"config.DEFAULT_POLICY", "sim.server"} <= set(dotted_names())


@pytest.mark.parametrize("name", dotted_names())
def test_every_dotted_name_exists(name: str) -> None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        if module in modules():
            break
    else:
        pytest.fail(f"{name}: no module of the kit")
    obj = importlib.import_module(f"lanelab.{module}")
    for attr in parts[i:]:
        assert hasattr(obj, attr), f"docs/contracts.md names {name}, but lanelab.{module} has no {attr}"
        obj = getattr(obj, attr)
