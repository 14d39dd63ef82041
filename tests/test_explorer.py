"""Notebook 03's cell explorer, headless: the state object (options, selection, the request's diff against the request
as sent, the response with its lane signals and the simulator rule) and the thin widget over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from lanelab.config import Settings, data_dir
from lanelab.errors import HostNotAllowed, NotFound
from lanelab.findings import report
from lanelab.findings.explorer import NO_RULE, Explorer, ExplorerWidget, explorer_for, sim_rules
from lanelab.runs import load_run
from test_analysis import EXTRA_MSG, write_run

SAMPLE = data_dir() / "runs" / "samples" / "sim-sample-hermes-0.14.0-ofat-2026-05-25.jsonl"


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer.from_findings(report.collect(load_run(SAMPLE)))


def test_options_list_the_request_as_sent_first_then_the_cells_that_reach_the_plan(explorer: Explorer) -> None:
    labels = [label for label, _ in explorer.options]
    assert len(labels) == 22 and labels[0] == "as sent · 400 out of extra usage"
    assert all(label.endswith("Served, billed to the plan") for label in labels[1:6])
    assert "tools=mcp__ · 200 · Served, billed to the plan" in labels[1:6]
    assert explorer.selected == explorer.options[0][1] and explorer.cell_ids[0] == explorer.selected


def test_the_request_as_sent_shows_its_response_verbatim(explorer: Explorer) -> None:
    view = explorer.select(explorer.cell_ids[0])
    assert view.is_baseline and view.diff is None and view.diff_text().startswith("This is the request as")
    rows = dict(zip(*view.response_frame().T.values))
    assert rows["status"] == "400" and rows["outcome"] == "400 out of extra usage"
    assert rows["message (verbatim)"] == EXTRA_MSG and rows["billing lane"] == "extra usage"
    assert rows["5-hour window"].endswith("% used") and rows["why extra usage is off"] == "out_of_credits"
    assert rows["simulator rule"] == NO_RULE  # the simulator that answered the sample is long gone
    assert rows["classified by"] == "rule out_of_extra_usage of data/outcomes.toml"


def test_a_single_change_shows_its_diff_against_the_request_as_sent(explorer: Explorer) -> None:
    cid = next(c for label, c in explorer.options if label.startswith("tools=mcp__ "))
    view = explorer.select(cid)
    assert view.change == "tools=mcp__" and view.status == 200 and view.lane == "plan"
    frame = view.diff.to_frame()
    assert len(frame) == 16 and set(frame["part"]) == {"tools"} and set(frame["change"]) == {"changed"}
    assert list(frame.columns[3:5]) == ["as sent", "tools=mcp__"]
    first = frame.iloc[0]
    assert first["as sent"].startswith("mcp_") and first["tools=mcp__"] == "mcp__" + first["as sent"][4:]
    page = view.to_html()
    assert '<h4 class="lanelab-explorer-title">tools=mcp__</h4>' in page and "16 differences" in page
    same = next(c for label, c in explorer.options if label.startswith("tools=mcp_ "))
    assert "made no difference on the wire" in explorer.select(same).diff_text()
    with pytest.raises(NotFound, match="No cell 'nope'"):
        explorer.select("nope")


def test_the_widget_is_a_thin_layer(explorer: Explorer) -> None:
    ui = ExplorerWidget(explorer)
    assert ui.dropdown.description == "Cell" and "lanelab-explorer-cell" in ui.dropdown._dom_classes
    assert "as sent" in ui.pane.value and "lanelab-explorer-view" in ui.pane._dom_classes
    target = explorer.cell_ids[3]
    ui.dropdown.value = target
    assert explorer.selected == target and explorer.view().change in ui.pane.value


def test_an_empty_run_has_nothing_to_explore(tmp_path: Path) -> None:
    empty = Explorer.from_findings(report.collect(load_run(write_run(tmp_path / "e.jsonl", []))))
    assert empty.options == [] and empty.view() is None
    assert "no cells" in ExplorerWidget(empty).pane.value


def _send_two_cells(sim, path: Path) -> Path:
    """The hermes-0.14.0 request as sent and with its tools renamed to mcp__, sent to ``sim`` and stored as a run."""
    from lanelab.matrix.profiles import load_profile
    from lanelab.runs import RunWriter, make_header
    from lanelab.wire.classify import classify
    from lanelab.wire.send import send

    token = sim.mint_token()["access_token"]
    as_sent = load_profile("hermes-0.14.0").spec
    renamed = as_sent.copy()
    for tool in renamed.body["tools"]:
        tool["name"] = "mcp__" + tool["name"].removeprefix("mcp_")
    writer = RunWriter(path, make_header(path.stem, mode="sim", host=sim.base_url, policy="2026-05-25",
                                         profile="hermes-0.14.0", design="ofat", factors=["tools"],
                                         credentials=["t"]))
    for cid, level, spec in (("base", "profile", as_sent), ("fixed", "mcp__", renamed)):
        obs = send(spec, sim.base_url, token)
        verdict = classify(obs)
        writer.cell(cell_id=cid, profile="hermes-0.14.0", levels={"tools": level}, credential="t", spec=spec,
                    observation=obs, outcome=verdict.outcome, lane=verdict.lane, rule=verdict.rule)
    if hasattr(writer, "close"):  # run files are locked while written on newer kits
        writer.close()
    return path


def test_simulator_rules_come_from_the_simulator_that_answered(sim, tmp_path: Path) -> None:
    findings = report.collect(load_run(_send_two_cells(sim, tmp_path / "two.jsonl")))
    settings = Settings(mode="sim", base_url=sim.base_url, out=tmp_path / "out", home=tmp_path / "home")
    ex, note = explorer_for(findings, settings)
    assert note.startswith(f"Simulator rules read from {sim.base_url}: known for 2 of 2 cells")
    assert ex.cell_ids == ["base", "fixed"]
    base = ex.select("base")
    assert base.is_baseline and base.sim_rule == "mcp_single_underscore_tool"
    assert sim_rules(sim.base_url)[base.request_id] == "mcp_single_underscore_tool"
    fixed = ex.select("fixed")
    assert fixed.lane == "plan" and fixed.sim_rule and fixed.sim_rule != base.sim_rule
    assert dict(zip(*fixed.response_frame().T.values))["simulator rule"] == fixed.sim_rule
    gone, note = explorer_for(findings, Settings(mode="sim", base_url="http://127.0.0.1:9", home=tmp_path / "h"))
    assert note.startswith("Simulator rules are not shown") and gone.select("base").sim_rule is None
    _, note = explorer_for(findings, Settings(mode="live", home=tmp_path / "h"))
    assert note.startswith("Live mode")
    with pytest.raises(HostNotAllowed):
        sim_rules("https://api.anthropic.com")
