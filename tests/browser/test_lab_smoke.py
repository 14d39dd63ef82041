"""JupyterLab starts on loopback, opens a notebook in Chromium, runs it, and shows the output."""

import nbformat


def test_lab_runs_a_notebook_in_the_browser(lab_env, lab_page):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import lanelab, os\nprint('lanelab', lanelab.__version__, os.environ['LANELAB_MODE'])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab_env["work"] / "00_smoke.ipynb")
    lab_page.open_notebook("00_smoke.ipynb")
    lab_page.run_all()
    text = lab_page.page.inner_text(".jp-OutputArea-output")
    assert "lanelab 0.1.0 sim" in text
    assert not lab_page.errors()
    assert lab_page.screenshot("00_smoke").stat().st_size > 1000
