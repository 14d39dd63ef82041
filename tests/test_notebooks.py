"""Every notebook executes headless, in reading order, against a simulator started here; failures keep the copy."""

from pathlib import Path

import pytest
from lanelab.config import repo_root
from lanelab.devtools.notebook_exec import NotebookFailed, execute, notebooks_in_order

pytestmark = [pytest.mark.notebook, pytest.mark.slow]
# nbformat is imported in the tests that read notebooks, not here: importing it costs seconds, and every run collects
# this module, the fast loop too (which deselects it).

NOTEBOOKS = notebooks_in_order()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One simulator and one kit home/output shared by the notebooks, as in a person's session."""
    from lanelab.sim.server import running_simulator

    root = tmp_path_factory.mktemp("notebooks")
    # its own server: the notebooks build on each other's simulator state, which a reset between tests would lose
    with running_simulator(policy="2026-05-25") as sim:
        yield {
            "env": {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_HOME": str(root / "home"),
                    "LANELAB_OUT": str(root / "out")},
            "out": root / "out", "home": root / "home", "executed": root / "executed", "sim": sim,
        }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_headless(path: Path, lab):
    import nbformat

    result = execute(path, lab["executed"], env=lab["env"], timeout=300, cwd=repo_root() / "notebooks")
    nb = nbformat.read(result.executed_path, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the notebook displayed nothing"
    stem = path.stem[:2]
    if stem == "01":
        assert list(lab["home"].rglob("*.json")), "notebook 01 should save a credential in LANELAB_HOME"
    if stem == "02":
        assert list((lab["out"] / "runs").glob("*.jsonl")), "notebook 02 should write a run"
    if stem == "03":
        assert (lab["out"] / "findings.html").exists() and (lab["out"] / "findings.md").exists()
        page = (lab["out"] / "findings.html").read_text()
        answer = page[page.index('id="answer"'):page.index("</section>")]
        assert "<code>mcp_</code>" in answer and "<code>mcp__</code>" in answer, "the report opens with the answer"
        assert (lab["out"] / "findings.bundle.json").exists(), "notebook 03 writes the user's bundle"
        shown = " ".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))
        assert "hand-made example" in shown and "Where they agree and where they differ" in shown
        md = (lab["out"] / "findings.md").read_text()
        assert "### When would this request have been billed where?" in md, "sim mode: the timeline is in the report"
        assert "hand-made" not in md and "hand-made" not in page, "the shipped examples stay out of the user's report"
        tables = " ".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", [])
                          if "<table" in str(o.get("data", {}).get("text/html", "")))
        assert "You&#x27;re out of extra usage. Add more at claude.ai/settings/usage and keep going." in tables or \
            "You're out of extra usage. Add more at claude.ai/settings/usage and keep going." in tables, \
            "the tables quote the server's message whole"
        assert (lab["out"] / "findings-timeline.png").is_file()
        texts = " ".join(str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells
                         for o in c.get("outputs", []))
        assert "Nothing in these responses was new to this kit." in texts
    if stem == "04":
        shown = " ".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))
        # the bisect names the element and its fix, as diagnose does, not "remove all tools"
        assert "16 tool names use the single-underscore <code>mcp_</code> prefix" in shown or \
            "16 tool names use the single-underscore `mcp_` prefix" in shown, "the answer names the tool names"
        assert "instead of" in shown and "mcp__" in shown
    raw = [(i, o["data"]["text/plain"][:60]) for i, c in enumerate(nb.cells) for o in c.get("outputs", [])
           if o.get("output_type") in ("execute_result", "display_data") and set(o.get("data", {})) <= {"text/plain"}
           and o["data"].get("text/plain", "").lstrip()[:1] in ("{", "[", "(")]
    assert not raw, f"raw dicts or lists shown to the reader: {raw}"


def test_a_failing_notebook_keeps_its_executed_copy(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom here')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(NotebookFailed, match="cell 1 raised ValueError") as err:
        execute(src, tmp_path / "out", timeout=60)
    kept = tmp_path / "out" / "99_broken-err.ipynb"
    assert kept.exists() and str(kept) in str(err.value)


def test_oauth_notebook_completes_with_the_form_body_too(tmp_path, sim):
    """Issue 3: the notebook completes the flow with both token body styles (JSON is the default run above)."""
    nb = next(p for p in NOTEBOOKS if p.stem.startswith("01_"))
    env = {"LANELAB_MODE": "sim", "LANELAB_BASE_URL": sim.base_url, "LANELAB_HOME": str(tmp_path / "home"),
           "LANELAB_OUT": str(tmp_path / "out"), "LANELAB_TOKEN_VARIANT": "axios-form"}
    execute(nb, tmp_path / "executed", env=env, timeout=300, cwd=repo_root() / "notebooks")
    token_posts = [e for e in sim.state.requests() if e["path"] == "/v1/oauth/token"]
    assert token_posts and all("x-www-form-urlencoded" in e["headers"].get("content-type", "") for e in token_posts)
    assert list((tmp_path / "home").rglob("*.json")), "the credential was saved"
