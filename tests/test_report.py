"""The shareable report: self-contained HTML, GitHub Markdown, run metadata, redaction and refusal, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from lanelab import cli, redact
from lanelab.errors import InputError
from lanelab.findings import report
from lanelab.runs import load_run, load_runs
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
def two_runs_findings(two_runs: list[Path]) -> report.Findings:
    """The findings of both runs, as ``report.build`` computes them (no timeline unless asked); the tests read them
    and never change them."""
    return report.collect(load_runs(two_runs))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, two_runs_findings: report.Findings) -> tuple[Path, Path]:
    """Both reports of both runs, written as ``report.build`` writes them (tests/test_report_wiring.py and the
    refusal below go through ``build`` itself)."""
    return report.write_reports(two_runs_findings, tmp_path_factory.mktemp("reports"))


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
    assert "### The three questions of the first report (hermes-agent #32243)" in md  # which report, said


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


@pytest.mark.slow  # builds a whole report (figures); the fast loop keeps the writer's refusal of a leak above
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


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
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


@pytest.mark.slow  # renders figures of two runs' findings; tests/test_plots.py keeps figures in the fast loop
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


# ---------------------------------------------------------------------------------------------------------------------
# Issue 16: the answer first, plain words, honest inputs, templates that escape, safe names

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "runs" / "samples" / \
    "sim-sample-hermes-0.14.0-ofat-2026-05-25.jsonl"
#: Words a user must never read in a report (say what they mean, or the glossary does).
JARGON = ("seed symptom", "minimal pair", "x-out", "none on the wire", "lane_flips", "flip_rate", "onto_plan",
          "extra_usage_exhausted", "oauth_not_supported", "served_plan")


def visible_text(page: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL)
    body = re.sub(r'src="data:[^"]+"', " ", body)
    return re.sub(r"<[^>]+>", " ", body).replace("&#39;", "'").replace("&quot;", '"')


@pytest.fixture(scope="module")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[report.Findings, str, str]:
    findings = report.collect(load_run(SAMPLE))
    html_path, md_path = report.write_reports(findings, tmp_path_factory.mktemp("sample"))
    return findings, html_path.read_text(), md_path.read_text()


def test_the_report_opens_with_the_answer_naming_mcp_and_mcp__(sample_reports) -> None:
    findings, page, md = sample_reports
    answer = page.index('id="answer"')
    assert answer < page.index("<h2") and answer < page.index("Simulator output")
    lead = page[answer:page.index("</section>", answer)]
    assert "its 16 tool names use the prefix <code>mcp_</code>" in lead
    assert "the prefix <code>mcp__</code> instead" in lead and "billed to the plan" in lead
    assert "Evidence: 2 requests" in lead and "Remedy: rename the client" in lead
    first = md.split("\n\n")[1]
    assert first.startswith("**") and "`mcp_`" in first and "`mcp__`" in first
    assert re.search(r"^Generated .* by lanelab \d+\.\d+\.\d+\.$", md, re.MULTILINE), "no stray escapes mid-line"
    assert findings.verdict.sentence in findings.verdict.to_dict()["sentence"]


def test_the_effects_chart_puts_tools_first_and_betas_has_no_bar_onto_the_plan(sample_reports) -> None:
    findings, _, _ = sample_reports
    eff = findings.effects.set_index("factor")
    assert findings.effects["factor"].iloc[0] == "tools" and eff.loc["tools", "lane_flips"] > 0
    assert eff.loc["betas", "lane_flips"] == 0 and eff.loc["betas", "other_flips"] > eff.loc["tools", "other_flips"]
    lane_ax = findings.figure("effects").axes[0]
    ticks = sorted(zip(lane_ax.get_yticks(), (t.get_text() for t in lane_ax.get_yticklabels())), reverse=True)
    assert ticks[0][1] == "tools"


def test_an_ofat_run_shows_each_change_not_a_mostly_grey_heatmap(sample_reports, two_runs_findings) -> None:
    findings, page, _ = sample_reports
    assert findings.overview == "changes" and "heatmap" not in findings.figures()
    assert "Each change on its own, and how it ended" in page and "Results matrix" not in page
    table = findings.overview_table()
    assert table["change"].iloc[0] == "as sent" and set(table["lane"].iloc[1:6]) == {"plan"}
    full = two_runs_findings  # a full design fills its grid: heatmaps stay
    assert full.overview == "heatmap" and "changes" not in full.figures()


def test_no_jargon_reaches_a_reader(sample_reports) -> None:
    _, page, md = sample_reports
    for text in (visible_text(page).lower(), md.lower()):
        for word in JARGON:
            assert word not in text, word
    assert "Words used here" in page and "billing lane" in page


def test_units_percent_of_the_window_and_money_apart(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0}, "extra_usage": {"used_credits": 0.0, "currency": "USD"}},
             "after": {"five_hour": {"utilization": 4.5}, "extra_usage": {"used_credits": 1.25, "currency": "USD"}}}
    findings = report.collect(load_run(write_run(tmp_path / "u.jsonl", hermes_like_cells(), usage=usage)))
    data = report.report_data(findings)
    (u,) = data["usage"]
    assert u["percent"].columns == ["window", "before (%)", "after (%)", "change (points)", "of"]
    assert [r[:4] for r in u["percent"].rows] == [["5-hour window: utilization", "3", "4.5", "1.5"]]
    assert u["money"].rows == [["extra usage: used credits", "0", "1.25", "1.25", "USD"]]
    assert all("%" not in c for c in u["money"].columns)
    assert [t.get_text() for t in findings.figure(u["figure"]).axes[0].get_yticklabels()] == ["5-hour window"]


def test_markdown_never_passes_raw_html_or_images_from_run_data(tmp_path: Path) -> None:
    evil = '<img src=x onerror=alert(1)> ![p](http://tracker.example/p.png) <details open> [link](http://e.example)'
    cells = hermes_like_cells()[:2]
    cells[0]["observation"]["error_message"] = evil
    cells[1]["levels"]["tools"] = "<b>bold</b>"
    findings = report.collect(load_run(write_run(tmp_path / "h.jsonl", cells)))
    md = report.render_markdown(findings, {})
    page = report.render_html(findings)
    for text in (md, page):
        assert "<img src=x" not in text and "<b>bold" not in text and "<details open>" not in text
    assert "![p](http" not in md and "[link](http" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md and "\\!\\[p\\](http://tracker.example/p.png)" in md
    template_details = (report.render_markdown(report.collect(load_run(write_run(
        tmp_path / "c.jsonl", hermes_like_cells()[:2]))), {})).count("<details>")
    assert md.count("<details>") == template_details  # only the template's own


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_inputs_are_counted_honestly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = write_run(tmp_path / "m.jsonl", hermes_like_cells(), torn=True)
    with matrix.open("a") as fh:
        fh.write("\n")  # the torn fragment becomes an unreadable middle line, then a good one follows
        fh.write(json.dumps(make_cell({"endpoint": "x", "ua": "y", "tools": "z"}, "served_plan", 200, "plan")) + "\n")
    bisect = tmp_path / "b.jsonl"
    probes = [make_cell({"tools: tools": "failing"}, "extra_usage_exhausted", 400, "extra_usage", cell_id=f"p{i}")
              for i in range(3)]
    bisect.write_text("".join(json.dumps(x) + "\n" for x in [
        {"record": "header", "run_id": "probes", "design": "bisect", "mode": "sim", "factors": []}, *probes]))
    findings = report.collect(load_runs([matrix, bisect]))
    assert len(findings.df) == 9 and set(findings.df["run_id"]) == {"run-a"}
    lines = findings.input_lines()
    assert lines[0] == "Read 1 matrix run holding 9 requests."
    assert lines[1].startswith("1 bisect run with 3 probes, counted apart from the matrix")
    assert lines[2].startswith("Skipped 1 line while reading: m.jsonl line 10: unreadable line")
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    assert cli.main(["report", str(matrix), str(bisect), "--out", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert "skipped m.jsonl line 10: unreadable line" in err
    page = (tmp_path / "rep" / "findings.html").read_text()
    assert "counted apart from the matrix" in page and "Skipped 1 line while reading" in page


def test_an_empty_run_says_there_is_nothing_to_conclude(tmp_path: Path) -> None:
    findings = report.collect(load_run(write_run(tmp_path / "e.jsonl", [])))
    assert findings.figures() == {} and findings.overview is None
    html_path, md_path = report.write_reports(findings, tmp_path / "out")
    for text in (html_path.read_text(), md_path.read_text()):
        assert "nothing to conclude" in text and "Read 0 matrix runs holding 0 requests." in text
        assert "1 file held no request, and adds nothing: e.jsonl (a run that sent nothing, or not a run file)." in text
    assert not list((tmp_path / "out").glob("*.png"))


def test_a_file_with_no_request_beside_a_run_adds_nothing_and_gets_no_bundle(tmp_path: Path) -> None:
    from lanelab.findings import bundles

    real = write_run(tmp_path / "real.jsonl", hermes_like_cells())
    stray = tmp_path / "notes.jsonl"
    stray.write_text("my notes, not a run\n")
    findings = report.collect(load_runs([real, stray]))
    lines = findings.input_lines()
    assert lines[0] == f"Read 1 matrix run holding {len(findings.df)} requests."
    assert lines[1].startswith("1 file held no request, and adds nothing: notes.jsonl")
    written = bundles.write_bundles(findings, tmp_path / "out")
    assert [p.name for p in written] == ["findings.bundle.json"]  # one bundle, for the run that holds requests


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_new_to_this_kit_has_its_place(tmp_path: Path) -> None:
    findings = report.collect(load_run(SAMPLE))
    assert report.report_data(findings)["new_to_this_kit"] == []
    assert "New to this kit" not in report.render_html(findings)
    findings.drift = [{"kind": "unified_header", "what": "rate-limit header", "name": "x-new-thing",
                       "value": "<b>odd</b>", "count": 1, "cells": ["c1"], "runs": ["r"], "cells_shown": "c1",
                       "element": "unified_header x-new-thing: <b>odd</b>", "note": "in 1 response"}]
    findings._data = None
    page = report.render_html(findings)
    assert 'id="new-to-this-kit"' in page and "<code>x-new-thing</code>" in page
    assert "<code>&lt;b&gt;odd&lt;/b&gt;</code>" in page, "verbatim, escaped"
    assert page.index('id="new-to-this-kit"') < page.index('id="read"')


# Each name runs the report command (a second or so): the fast loop tries a traversal and the empty name.
@pytest.mark.parametrize("name", ["../../x", pytest.param("a/b", marks=pytest.mark.slow),
                                  pytest.param("..", marks=pytest.mark.slow), "",
                                  pytest.param("x\\y", marks=pytest.mark.slow),
                                  pytest.param(".hidden", marks=pytest.mark.slow)])
def test_report_name_cannot_leave_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    out = tmp_path / "deep" / "out"
    code = cli.main(["report", str(SAMPLE), "--out", str(out), "--name", name])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not a plain file name" in err
    assert not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob("*.md"))
    with pytest.raises(InputError):
        report.write_reports(report.collect(load_run(SAMPLE)), out, stem=name)


def test_the_comparison_counts_only_requests_both_runs_sent_and_says_when_they_share_none(tmp_path: Path) -> None:
    served = lambda level, cid: make_cell({"tools": level}, "served_plan", 200, "plan", unified=PLAN_HEADERS,
                                          cell_id=cid)
    refused = lambda level, cid: make_cell({"tools": level}, "generic_error", 400, cell_id=cid)
    a = write_run(tmp_path / "a.jsonl", [served("none", "c1"), served("bare", "c2"), served("x", "c3")], run_id="a")
    b = write_run(tmp_path / "b.jsonl", [served("none", "c1"), refused("bare", "c2"), served("y", "c4")], run_id="b")
    summary, table = report.comparison_table(report.collect(load_runs([a, b])))
    assert summary == "1 of 2 requests ended differently. 2 more were sent in one of the runs only."
    assert sorted(table["cell"]) == ["c2", "c3", "c4"]
    ended = table.set_index("cell")
    assert ended.loc["c2", "in a"] == "200 Served, billed to the plan"
    assert ended.loc["c2", "in b"] == "400 Bare 'Error' refusal"
    exhausted = lambda level, cid: make_cell({"tools": level}, "extra_usage_exhausted", 400, "extra_usage", cell_id=cid)
    d = write_run(tmp_path / "d.jsonl", [exhausted("none", "c1")], run_id="d")
    _, table = report.comparison_table(report.collect(load_runs([a, d])))
    assert table.set_index("cell").loc["c1", "in d"] == "400 out of extra usage"  # the status said once
    c = write_run(tmp_path / "c.jsonl", [served("z", "c5")], run_id="c")
    summary, _ = report.comparison_table(report.collect(load_runs([a, c])))
    assert summary == ("The two runs share no request (4 were sent in one of them only), so none can be compared "
                       "side by side.")


def test_collect_takes_run_file_paths_and_refuses_anything_else_in_a_sentence(tmp_path: Path) -> None:
    path = write_run(tmp_path / "p.jsonl", hermes_like_cells())
    by_path = report.collect(str(path))
    assert len(by_path.df) == len(report.collect(load_run(path)).df) == len(report.collect([path]).df) > 0
    for wrong in (42, {"run": path}, [load_run(path), 7]):
        with pytest.raises(InputError, match="collect takes runs .load_run.path.. or run file paths; found"):
            report.collect(wrong)


def test_reports_go_to_a_new_folder_and_a_file_or_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    from lanelab.errors import ServiceError

    findings = report.collect(load_run(write_run(tmp_path / "p.jsonl", hermes_like_cells())))
    html, md = report.write_reports(findings, tmp_path / "new" / "folder")
    assert html.is_file() and md.is_file()
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(InputError, match="is a file, not a folder for the report"):
        report.write_reports(findings, afile)
    with pytest.raises(ServiceError, match="Cannot write the report to .*a part of that path is a file, not a folder"):
        report.write_reports(findings, afile / "below")
    assert afile.read_text() == "mine"


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_cli_report_says_what_it_is_doing_on_a_terminal_only(tmp_path: Path, two_runs: list[Path],
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert cli.main(["report", *map(str, two_runs), "--out", str(tmp_path / "rep")]) == 0
    captured = capsys.readouterr()
    said = ["reading 2 run file(s)…", "working out the findings of 32 cell(s)…", "drawing and writing the report…"]
    assert captured.err.splitlines() == (said if terminal else [])
    assert [Path(line).name for line in captured.out.splitlines()] == ["findings.html", "findings.md"]


def test_the_cells_an_answer_rests_on_are_found_in_whichever_run_holds_them(tmp_path: Path) -> None:
    from lanelab.findings.verdict import Verdict

    matrix = load_run(write_run(tmp_path / "m.jsonl", hermes_like_cells()))
    diag_cells = [make_cell({"step": "as sent", "change": "nothing (the request as the client sent it)"},
                            "extra_usage_exhausted", 400, cell_id="d1"),
                  make_cell({"step": "fix", "change": "mcp__ instead of mcp_"}, "served_plan", 200, "plan",
                            unified=PLAN_HEADERS, cell_id="d2")]
    diag = load_run(write_run(tmp_path / "d.jsonl", diag_cells, run_id="diag"))
    plan_cell = next(cid for cid, rec in matrix.cells.items() if rec["outcome"] == "served_plan")
    verdict = Verdict(sentence="x", cells=("d1", "d2", plan_cell, "nowhere"))
    table = report.collect([matrix, diag], verdict=verdict).verdict_cells()
    assert table["cell"].tolist() == ["d1", "d2", plan_cell]  # a cell no run holds is left out
    assert table["request"].tolist()[:2] == ["nothing (the request as the client sent it)", "mcp__ instead of mcp_"]
    assert table["run"].tolist() == ["diag", "diag", "run-a"] and table["status"].tolist()[:2] == [400, 200]
    assert "=" in table["request"].iloc[2] and table["outcome"].iloc[1] == "Served, billed to the plan"


def test_cli_report_says_a_folder_given_as_a_bundle_is_a_folder(tmp_path: Path, two_runs: list[Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(two_runs[0]), "--out", str(tmp_path / "rep"), "--compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path} is a folder, not a findings bundle" in err, err


def test_the_tables_a_notebook_shows_say_nothing_where_nothing_was_said_not_nan(tmp_path: Path) -> None:
    findings = report.collect(load_run(SAMPLE))  # one factor at a time: single changes, 200s without a message
    lanes = report.lanes_table(findings.df)
    changes = report.single_changes(findings)
    for table, columns in ((lanes, ["window that applies", "extra usage", "why extra usage is off"]),
                           (changes, ["message"])):
        for column in columns:
            assert not table[column].isna().any() and "nan" not in set(table[column].astype(str)), column
    assert "" in set(changes["message"])  # a served request has no message: an empty cell
