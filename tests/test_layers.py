"""The layering stays as docs/contracts.md draws it: the core imports only the core; each stage imports the core and the
stages before it; the simulator imports only the core and the kit reaches it only through ``sim.server``; no module
comes back to itself through a cycle. Imports inside functions count; imports only for type checking do not."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
from lanelab.config import repo_root

LIB = repo_root() / "lib" / "lanelab"
#: The core: modules every stage may use. They import nothing of the kit but each other.
CORE = {"__init__", "config", "errors", "redact", "datafiles", "limits", "http", "serve", "live", "pkce",
        "version_gate"}
#: The stages in the order data flows; each may import the core and the stages before it. ``runs`` (the run store)
#: comes after ``wire`` because its records are request specs and observations.
STAGES = ["wire", "runs", "auth", "matrix", "findings", "walkthrough", "devtools", "commands", "cli", "__main__"]
#: Imports that point forward on purpose, each with its reason. Notebook 02's instrument sends a matrix and shows
#: the first look at its findings below the Send button; the findings stage cannot come before the matrix it reads.
EXCEPTIONS = {
    ("matrix.picker", "findings.report"): "the picker computes the first-look findings of the run it just sent",
    ("matrix.widget", "findings.render"): "the widget shows that first look's answer, escaped as the report does",
}
#: The one door into the simulator for the rest of the kit (the simulator is a separate program on loopback).
SIM_DOOR = "sim.server"


@cache
def modules() -> dict[str, Path]:
    out = {}
    for path in LIB.rglob("*.py"):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(path: Path) -> set[str]:
    """Every ``lanelab.…`` name ``path`` imports at run time, at any depth of the file (one walk over its syntax tree
    that leaves out the bodies of ``if TYPE_CHECKING:`` blocks)."""
    found: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += [node.test, *node.orelse]
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and (node.module == "lanelab" or node.module.startswith("lanelab.")):
            base = node.module.removeprefix("lanelab").lstrip(".")
            found |= {f"{base}.{alias.name}".lstrip(".") for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("lanelab.") for a in node.names if a.name.startswith("lanelab.")}
        todo.extend(ast.iter_child_nodes(node))
    return found


def resolve(name: str) -> str | None:
    """The module ``name`` refers to (``wire.spec.RequestSpec`` → ``wire.spec``), or None."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(m for m in map(resolve, imports_of(path)) if m and m != name)
            for name, path in modules().items()}


def layer(module: str) -> str:
    top = module.split(".")[0]
    return "core" if top in CORE else top


def allowed(source: str, target: str) -> bool:
    """May ``source`` import ``target``?"""
    s, t = layer(source), layer(target)
    if t == "core" or s == t or (source, target) in EXCEPTIONS:
        return True
    if s in ("core", "sim"):
        return False
    if t == "sim":
        return target == SIM_DOOR
    return STAGES.index(t) < STAGES.index(s)


def test_every_module_sits_in_a_known_layer() -> None:
    unknown = sorted({layer(m) for m in modules()} - {"core", "sim", *STAGES})
    assert not unknown, f"modules outside the layering (add them to CORE or a stage, on purpose): {unknown}"


def test_the_exceptions_are_still_needed() -> None:
    unused = [pair for pair in EXCEPTIONS if pair[1] not in graph().get(pair[0], ())]
    assert not unused, f"exceptions no import needs any more (remove them): {unused}"


def test_each_stage_imports_only_the_core_and_earlier_stages() -> None:
    bad = sorted(f"{m} -> {t}" for m, targets in graph().items() for t in targets if not allowed(m, t))
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    g, cycles, state = graph(), [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(("source", "target", "ok"), [
    ("wire.spec", "auth.oauth", False), ("auth.oauth", "wire.spec", True), ("config", "wire.spec", False),
    ("sim.app", "wire.unified", False), ("sim.app", "config", True), ("commands.sim", "sim.server", True),
    ("walkthrough.capture", "sim.policy", False), ("findings.report", "matrix.plan", True),
    ("matrix.plan", "findings.report", False)])
def test_the_rule_itself(source: str, target: str, ok: bool) -> None:
    assert allowed(source, target) is ok


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lanelab.findings import report\n"
                 "def f():\n    from lanelab.wire.spec import RequestSpec\n")
    assert imports_of(f) == {"wire.spec.RequestSpec"}
