"""Notebooks are committed without outputs, with kernelspec python3, paired with a py:percent file that matches."""

import json

import pytest
from lanelab.config import repo_root

NB_DIR = repo_root() / "notebooks"
IPYNBS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
PYS = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))


def _read(path):
    """The notebook or py:percent file as jupytext reads it (imported here: importing jupytext costs seconds, which
    a run that deselects these tests should not pay at collection)."""
    import jupytext

    return jupytext.read(path)


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_is_paired():
    assert {p.stem for p in IPYNBS} == {p.stem for p in PYS}, "each notebook needs its .ipynb and its py:percent twin"


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_committed_without_outputs_and_with_python3_kernel(path):
    raw = json.loads(path.read_text())
    assert raw["metadata"].get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(raw["cells"]):
        assert not cell.get("outputs"), f"cell {i} of {path.name} has outputs; strip them before committing"
        assert cell.get("execution_count") is None, f"cell {i} of {path.name} has an execution count"
    assert "widgets" not in raw["metadata"], "widget state must not be committed"


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_py_percent_twin_has_the_same_cells(path):
    twin = path.with_suffix(".py")
    assert "py:percent" in twin.read_text().split("# ---", 2)[1], f"{twin.name} should declare the py:percent pairing"
    assert _cells(_read(path)) == _cells(_read(twin)), f"{path.name} and {twin.name} differ: run make sync"


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_first_code_cell_is_the_parameters_cell(path):
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and code[0] is tagged[0], f"{path.name}: the first code cell must be tagged parameters"
