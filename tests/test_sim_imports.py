"""The simulator's layering: it reaches only the kit's core modules (never the client library it simulates a server
for), its modules import each other without a cycle, and each one states its public names in ``__all__``."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import lanelab
import pytest

LIB = Path(lanelab.__file__).parent
SIM = LIB / "sim"
#: What the simulator may share with the client: the core, nothing of wire/, auth/, matrix/, findings/…
CORE = frozenset({"lanelab", "lanelab.config", "lanelab.errors", "lanelab.redact", "lanelab.datafiles",
                  "lanelab.serve", "lanelab.limits", "lanelab.http", "lanelab.pkce", "lanelab.version_gate"})


def module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (LIB.parent / rel.with_suffix(".py"), LIB.parent / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def lanelab_imports(name: str) -> set[str]:
    """Every ``lanelab`` module ``name`` imports, anywhere in the file (``TYPE_CHECKING`` blocks and functions too)."""
    path = module_file(name)
    assert path is not None, name
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "lanelab")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lanelab":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_file(sub) else node.module)
    return found


def sim_modules() -> list[str]:
    return sorted(f"lanelab.sim.{p.stem}" for p in SIM.glob("*.py") if p.stem != "__init__")


def test_the_simulator_reaches_only_the_core() -> None:
    seen: dict[str, str] = {}
    todo = [(m, m) for m in sim_modules()]
    while todo:
        name, via = todo.pop()
        if name in seen:
            continue
        seen[name] = via
        todo.extend((dep, f"{via} -> {dep}") for dep in lanelab_imports(name))
    outside = {m: seen[m] for m in seen if not m.startswith("lanelab.sim") and m not in CORE}
    assert not outside, f"the simulator reaches client modules: {outside}"
    assert "lanelab.pkce" in seen, "the simulator checks PKCE with the shared implementation"


def test_no_import_cycle_among_simulator_modules() -> None:
    graph = {m: {d for d in lanelab_imports(m) if d.startswith("lanelab.sim.")} for m in sim_modules()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node):], node]))
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            visit(dep, [*path, node])
        state[node] = 2

    for module in graph:
        visit(module, [])


def test_the_walk_sees_imports_under_type_checking(tmp_path, monkeypatch) -> None:
    """Positive control: the import walk finds TYPE_CHECKING imports (the old app <-> oauth_server cycle was one)."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lanelab.wire.unified import PREFIX\n"
    fake = tmp_path / "lanelab" / "probe.py"
    fake.parent.mkdir()
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "LIB", tmp_path / "lanelab")
    assert lanelab_imports("lanelab.probe") == {"lanelab.wire.unified"}


@pytest.mark.parametrize("name", sim_modules())
def test_every_simulator_module_declares_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
