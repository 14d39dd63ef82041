"""The shareable report: self-contained HTML, GitHub Markdown, run metadata, redaction and refusal, and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from lanelab import cli, redact
from lanelab.findings import report
from lanelab.runs import load_run
from test_analysis import PLAN_HEADERS, hermes_like_cells, make_cell, write_run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp_path = tmp_path_factory.mktemp("runs")
    a = write_run(tmp_path / "may.jsonl", hermes_like_cells(credentials=("kit-pkce", "claude-code")), run_id="may")
    b = write_run(tmp_path / "jun.jsonl", hermes_like_cells(ua_flips=True, credentials=("kit-pkce", "claude-code")),
                  run_id="jun", policy="2026-06-18",
                  usage={"before": {"five_hour": {"utilization": 3.0}}, "after": {"five_hour": {"utilization": 3.0}}})
    return [a, b]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, two_runs: list[Path]) -> tuple[Path, Path]:
    return report.build(two_runs, tmp_path_factory.mktemp("reports"))


def test_html_is_self_contained(written: tuple[Path, Path]) -> None:
    page = written[0].read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, re.IGNORECASE)
    assert "<link" not in page.lower() and "@import" not in page
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(images) >= 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "<style>" in page and "<details><summary>Raw observations</summary>" in page


def test_reports_carry_run_metadata_and_answers(written: tuple[Path, Path]) -> None:
    html_path, md_path = written
    for text in (html_path.read_text(), md_path.read_text()):
        for value in ("0.1.0", "sim", "2026-05-25", "2026-06-18", "hermes", "full_factorial", "may", "jun"):
            assert value in text
        assert "Simulator output" in text
        assert "Does the credential" in text and "identical requests end the same" in text
    html_text, md = html_path.read_text(), md_path.read_text()
    # no cell is the unchanged request here (a full design of named levels): the answer names the factor only
    assert "Changing only <code>tools</code> moves requests onto or off the plan most often" in html_text
    assert md.split("\n")[2].startswith("**Changing only `tools` moves requests onto or off the plan most often")
    meta = md.split("### What was read")[1].split("###")[0]
    assert "Read 2 matrix runs holding 32 requests." in meta and "No line was skipped." in meta
    assert re.search(r"\|\s*may\s*\|\s*matrix\s*\|\s*sim\s*\|\s*2026-05-25\s*\|", meta)
    may = next(line for line in meta.splitlines() if line.startswith("| may |"))
    assert re.search(r"\|\s*16\s*\|", may) and may.rstrip().endswith("| 0.1.0 |")
    assert "Served, billed to the plan: 8" in may and "400 out of extra usage: 8" in may


def test_markdown_tables_render_and_figures_sit_beside_it(written: tuple[Path, Path]) -> None:
    md_path = written[1]
    md = md_path.read_text()
    tables = [block for block in md.split("\n\n") if block.startswith("|")]
    assert len(tables) >= 5
    for block in tables:
        lines = block.splitlines()
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[1]), lines[1]  # header separator
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, block  # every row has the same number of cells
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert figures and all((md_path.parent / f).is_file() for f in figures)
    assert (md_path.parent / "findings-effects.png").read_bytes()[:4] == b"\x89PNG"
    assert md.count("<details>") == md.count("</details>") >= 2
    assert "Two runs side by side: `may` and `jun`" in md and "4 of 16 requests ended differently." in md


def test_pipes_in_values_do_not_break_markdown_tables(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "a|b"}, "generic_error", 400, message="Error | with pipe\nand newline"),
             make_cell({"tools": "none"}, "served_plan", 200, "plan", unified=PLAN_HEADERS)]
    findings = report.collect(load_run(write_run(tmp_path / "p.jsonl", cells)))
    md = report.render_markdown(findings, {})
    raw = md.split("<summary>Raw observations</summary>")[1]
    table = [line for line in raw.splitlines() if line.startswith("|")]
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1
    assert "Error \\| with pipe and newline" in raw


def test_planted_canary_makes_the_writer_refuse(tmp_path: Path) -> None:
    canary = "lanelab-canary-7f3e9a1c55d2"
    cells = hermes_like_cells()[:2]
    cells[0]["observation"]["error_message"] = f"echoed back: {canary}"
    path = write_run(tmp_path / "c.jsonl", cells)
    out = tmp_path / "out"
    with pytest.raises(redact.SecretLeak) as err:
        report.build([path], out, secrets=[canary])
    assert canary not in str(err.value)
    assert not out.exists() or not any(out.iterdir())  # nothing written, not even a figure


def test_registered_and_token_shaped_secrets_are_masked_not_leaked(tmp_path: Path) -> None:
    token = "sk-ant-oat01-" + "Q" * 40 + "tail"
    odd = "simtok_" + "z" * 24
    redact.register_secret(odd)
    try:
        cells = hermes_like_cells()[:2]
        cells[0]["observation"]["error_message"] = f"bad token {token} and {odd}"
        cells[1]["levels"]["tools"] = odd
        html_path, md_path = report.build([write_run(tmp_path / "s.jsonl", cells)], tmp_path / "out")
    finally:
        redact.forget_secrets()
    for p in (html_path, md_path):
        text = p.read_text()
        assert token not in text and odd not in text
        assert "sk-ant-oat01-…tail" in text


def test_cli_report_writes_both_files(tmp_path: Path, two_runs: list[Path], capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    code = cli.main(["report", str(two_runs[0]), "--out", str(tmp_path / "rep"), "--rows", "ua", "--cols", "tools"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "rep" / "findings.html"), str(tmp_path / "rep" / "findings.md")]
    assert "outcome by ua and tools" in Path(printed[1]).read_text()


def test_cli_report_explains_a_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["report", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path)])
    assert code == 2
    assert "No run file" in capsys.readouterr().err


def test_cli_report_unknown_factor_is_a_user_error(tmp_path: Path, two_runs: list[Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["report", str(two_runs[0]), "--out", str(tmp_path / "x"), "--rows", "nope"])
    assert code == 2 and "no factor 'nope'" in capsys.readouterr().err


def test_axes_default_to_the_factors_that_flip(tmp_path: Path) -> None:
    df = load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells(ua_flips=True))).to_frame()
    assert report.axis_candidates(df)[:2] == ["ua", "tools"]


def test_findings_name_their_figures_and_what_usage_moved(tmp_path: Path, two_runs: list[Path]) -> None:
    from lanelab.errors import NotFound
    from lanelab.runs import load_runs

    findings = report.collect(load_runs(two_runs))
    assert findings.figure("heatmap") is findings.figures()["heatmap"]
    assert findings.figure("heatmap")._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(NotFound, match="No figure 'nope'"):
        findings.figure("nope")
    assert len(findings.usage_figures()) == 1  # only 'jun' recorded usage, and nothing moved
    assert findings.usage_changes().empty and list(findings.usage_changes().columns)[:2] == ["run_id", "field"]
    moved = write_run(tmp_path / "m.jsonl", hermes_like_cells(), run_id="moved",
                      usage={"before": {"five_hour": {"utilization": 3.0}, "plan": "max"},
                             "after": {"five_hour": {"utilization": 5.0}, "plan": "max"}})
    changes = report.collect(load_run(moved)).usage_changes()
    assert changes[["run_id", "field", "change"]].values.tolist() == [["moved", "five_hour.utilization", 2.0]]
