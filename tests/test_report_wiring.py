"""The report's new parts end to end: what is new to this kit (at the top, verbatim, with its cells), the request's
caveats from the run header, unknown usage fields shown as such, and the timeline (a simulator model, computed only
when it should be)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import pytest
from lanelab import cli
from lanelab.config import Settings
from lanelab.findings import bundles, report
from lanelab.matrix.plan import MatrixPlan
from lanelab.runs import load_run
from lanelab.sim.server import running_simulator
from test_analysis import PLAN_HEADERS, hermes_like_cells, make_cell, write_run

CLAIM = "seven_day_moonlight"
CLAIM_HEADER = "anthropic-ratelimit-unified-representative-claim"


def sim_run(tmp: Path, profile: str, policy: str, account: dict[str, Any] | None, run_id: str) -> Path:
    """A small one-factor-at-a-time run of ``profile`` against a simulator started here (x_app on, off, as sent)."""
    with running_simulator(policy=policy, account=account) as sim:
        settings = Settings(mode="sim", base_url=sim.base_url, home=tmp / "home", out=tmp / "out")
        plan = MatrixPlan.build(profile, "ofat", ["x_app"], settings)
        result = plan.run(credential="sim-pkce", run_id=run_id, progress=False)
    assert result.path.is_file()
    return result.path


@pytest.fixture(scope="module")
def moon(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A run under 2026-11 whose account makes the simulator answer with a claim the kit has never seen, and its
    reports."""
    tmp = tmp_path_factory.mktemp("moon")
    path = sim_run(tmp, "sdk-minimal", "2026-11", {"unified_claim": CLAIM}, "moon")
    html_path, md_path = report.build([path], tmp / "reports")
    return path, html_path, md_path


def test_the_unknown_claim_is_listed_verbatim_at_the_top_with_its_cells(moon: tuple[Path, Path, Path]) -> None:
    path, html_path, md_path = moon
    cells = list(load_run(path).cells)
    assert len(cells) == 3
    md = md_path.read_text(encoding="utf-8")
    top = md.split("### What was read")[0]
    assert "### New to this kit" in top, "listed before anything but the answer"
    item = next(line for line in top.splitlines() if line.startswith("- representative claim"))
    assert f"`{CLAIM}`" in item and f"`{CLAIM_HEADER}`" in item
    assert all(c in item for c in cells) and "seen in 3 responses" in item and "`moon`" in item
    assert "1 thing in the responses was new to this kit" in md
    page = html_path.read_text(encoding="utf-8")
    answer, drift, read = (page.index('id="answer"'), page.index('id="new-to-this-kit"'), page.index('id="read"'))
    assert answer < drift < read
    section = page[drift:read]
    assert f"<code>{CLAIM}</code>" in section and all(c in section for c in cells)


def test_the_bundle_carries_what_is_new_to_this_kit(moon: tuple[Path, Path, Path], tmp_path: Path) -> None:
    findings = report.collect([load_run(moon[0])])
    written = bundles.write_bundles(findings, tmp_path)
    data = json.loads(written[0].read_text(encoding="utf-8"))
    (item,) = data["new_to_this_kit"]
    assert CLAIM in item["element"] and CLAIM_HEADER in item["element"] and "3 responses" in item["note"]
    assert bundles.load_bundle(written[0]).data["new_to_this_kit"] == data["new_to_this_kit"]


def test_findings_table_of_new_items(moon: tuple[Path, Path, Path]) -> None:
    findings = report.collect([load_run(moon[0])])
    table = findings.new_to_kit()
    assert list(table["value"]) == [CLAIM] and list(table["what"]) == ["representative claim"]
    assert table["responses"].iloc[0] == 3 and set(table["cells"].iloc[0].split(", ")) == set(load_run(moon[0]).cells)


@pytest.mark.slow  # writes a whole report (figures); the fast loop keeps the run that has such a section
def test_a_run_without_unknowns_has_no_such_section(tmp_path: Path) -> None:
    path = write_run(tmp_path / "plain.jsonl", hermes_like_cells())
    findings = report.collect([load_run(path)])
    assert findings.drift == [] and findings.new_to_kit().empty
    html_path, md_path = report.write_reports(findings, tmp_path / "out")
    md, page = md_path.read_text(), html_path.read_text()
    assert "New to this kit" not in md and 'id="new-to-this-kit"' not in page
    assert "Nothing in the responses was new to this kit." in md


def test_an_unknown_error_code_and_header_are_listed_with_the_cell_they_came_from(tmp_path: Path) -> None:
    odd = make_cell({"tools": "mcp_"}, "unclassified", 400, cell_id="c0ffee000001",
                    message="You're out of moon dust.", unified={**PLAN_HEADERS, "moon-phase": "waxing"})
    odd["observation"]["error_code"] = "moon_dust_exhausted"
    odd["observation"].pop("unknown", None)  # a record written before flags existed: checked now
    plain = make_cell({"tools": "none"}, "served_plan", 200, "plan", cell_id="c0ffee000002", unified=PLAN_HEADERS)
    path = write_run(tmp_path / "odd.jsonl", [odd, plain], run_id="odd")
    items = report.drift_items([load_run(path)])
    found = {(d["kind"], d["value"]): d for d in items}
    assert ("error_code", "moon_dust_exhausted") in found and ("message", "You're out of moon dust.") in found
    assert found[("unified_header", "waxing")]["name"].endswith("moon-phase")
    assert all(d["cells"] == ["c0ffee000001"] for d in items), "the plain cell carried nothing new"
    md = report.write_reports(report.collect([load_run(path)]), tmp_path / "out")[1].read_text()
    assert "`moon_dust_exhausted`" in md.split("### What was read")[0]


# ------------------------------------------------------------------------------------------------ caveats
def test_findings_for_a_profile_with_an_attestation_marker_say_they_are_for_the_request_without_it(
        tmp_path: Path) -> None:
    path = sim_run(tmp_path, "openclaw-2026.9.6", "2026-05-25", None, "claw")
    run = load_run(path)
    assert any("without the block" in c for c in run.header["profile_caveats"])
    findings = report.collect([run])
    assert findings.caveats == run.header["profile_caveats"]
    html_path, md_path = report.write_reports(findings, tmp_path / "out")
    top = md_path.read_text().split("### What was read")[0]
    assert "About the request these findings are for" in top and "for the request without the block" in top
    page = html_path.read_text()
    assert page.index('id="answer"') < page.index('id="caveats"') < page.index('id="read"')


def test_runs_without_caveats_say_none(tmp_path: Path) -> None:
    findings = report.collect([load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells()))])
    assert findings.caveats == []
    assert "About the request" not in report.render_markdown(findings, {})


# ------------------------------------------------------------------------------------------------ usage
def test_usage_fields_the_kit_does_not_know_are_shown_as_such(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0, "resets_at": None}, "moon_window": {"utilization": 1.0}},
             "after": {"five_hour": {"utilization": 4.0, "resets_at": None}, "moon_window": {"utilization": 2.0}}}
    path = write_run(tmp_path / "u.jsonl", hermes_like_cells(), run_id="u", usage=usage)
    run = load_run(path)
    unknown = report.usage_unknown(run)
    assert list(unknown["field"]) == ["moon_window"]
    assert json.loads(unknown["before"].iloc[0]) == {"utilization": 1.0}
    assert json.loads(unknown["after"].iloc[0]) == {"utilization": 2.0}
    html_path, md_path = report.write_reports(report.collect([run]), tmp_path / "out")
    md = md_path.read_text()
    usage_part = md.split("<summary>Usage before and after u</summary>")[1].split("</details>")[0]
    assert "**New to this kit:** usage fields the kit does not know" in usage_part and "`moon_window`" in usage_part
    assert "moon_window" in html_path.read_text()


def test_known_usage_fields_are_not_flagged(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0, "resets_at": None}}}
    run = load_run(write_run(tmp_path / "k.jsonl", hermes_like_cells(), usage=usage))
    assert report.usage_unknown(run).empty


# ------------------------------------------------------------------------------------------------ timeline
def real_profile_run(tmp_path: Path, mode: str = "sim") -> Path:
    path = write_run(tmp_path / f"{mode}.jsonl", hermes_like_cells(), run_id=mode)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(profile="hermes-0.14.0", mode=mode)
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return path


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_the_timeline_section_shows_table_and_chart_for_simulator_runs(tmp_path: Path) -> None:
    run = load_run(real_profile_run(tmp_path))
    tl = report.timeline_for([run])
    assert tl is not None and [r.label for r in tl.requests] == ["hermes-0.14.0"]
    findings = report.collect([run], timeline=tl)
    assert "timeline" in findings.figures()
    html_path, md_path = report.write_reports(findings, tmp_path / "out")
    md = md_path.read_text()
    section = md.split("### When would this request have been billed where?")[1]
    assert "A simulator model" in section and "Nothing was sent to Anthropic" in section
    assert "![The request under each dated snapshot](findings-timeline.png)" in section
    assert (md_path.parent / "findings-timeline.png").read_bytes()[:4] == b"\x89PNG"
    for snap in tl.snapshots:
        assert re.search(rf"\| hermes-0\.14\.0 \| {re.escape(snap.name)} \|", section)
    page = html_path.read_text()
    assert 'id="timeline"' in page and 'alt="The request under each dated snapshot"' in page
    assert "These runs were live" not in page


def test_no_timeline_is_started_for_live_runs_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(real_profile_run(tmp_path, mode="live"))
    import lanelab.findings.timeline as tl_mod

    started = []
    real = tl_mod.timeline
    monkeypatch.setattr(tl_mod, "timeline", lambda *a, **k: started.append(a) or real(*a, **k))
    assert report.timeline_for([run]) is None and report.timeline_for([run], asked=False) is None
    assert started == [], "nothing is started for live runs unless asked"
    tl = report.timeline_for([run], asked=True, policies=["2026-05-25"])
    assert started and tl is not None and {r["policy"] for r in tl.rows} == {"2026-05-25"}
    md = report.render_markdown(report.collect([run], timeline=tl), {})
    assert "These runs were live: the timeline beside them is still only the simulator's model." in md


def test_no_timeline_without_a_profile_the_kit_ships(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells()))  # profile "hermes": not in data/profiles
    assert report.timeline_refs([run]) == [] and report.timeline_for([run], asked=True) is None
    assert "When would this request" not in report.render_markdown(report.collect([run]), {})


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_report_command_timeline_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANELAB_MODE", "sim")
    path = real_profile_run(tmp_path)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "a"), "--no-timeline"]) == 0
    assert "When would this request" not in (tmp_path / "a" / "findings.md").read_text()
    assert cli.main(["report", str(path), "--out", str(tmp_path / "b")]) == 0
    assert "When would this request" in (tmp_path / "b" / "findings.md").read_text(), "sim runs: on by default"
    live = real_profile_run(tmp_path, mode="live")
    assert cli.main(["report", str(live), "--out", str(tmp_path / "c")]) == 0
    assert "When would this request" not in (tmp_path / "c" / "findings.md").read_text(), "live runs: only if asked"
    assert cli.main(["report", str(live), "--out", str(tmp_path / "d"), "--timeline"]) == 0
    assert "still only the simulator's model" in (tmp_path / "d" / "findings.md").read_text()
    capsys.readouterr()


@pytest.mark.slow  # sends a small matrix, then the timeline under every snapshot
def test_the_timeline_replays_the_request_under_the_account_the_run_was_made_with(tmp_path: Path, sim_with) -> None:
    """A run made under another account than the simulator's default (extra usage on, with credit) records it, and
    the report's timeline answers under it: the snapshot the run was made under ends as the run's request as sent
    did, not as the default account would have it."""
    from lanelab.config import Settings
    from lanelab.matrix.plan import MatrixPlan

    account = {"plan": "pro", "extra_usage": {"is_enabled": True, "monthly_limit": 50.0, "used_credits": 0.0}}
    sim = sim_with(policy="2026-08", account=account)
    settings = Settings(mode="sim", base_url=sim.base_url, out=tmp_path, home=tmp_path / "home")
    plan = MatrixPlan.build("hermes-0.14.0", "ofat", ["tools"], settings)
    result = plan.run(settings=settings, token=sim.mint_token()["access_token"], credential="t", progress=False)
    run = load_run(result.path)
    assert run.header["sim_account"]["plan"] == "pro" and run.header["sim_account"]["extra_usage"]["is_enabled"]
    as_sent = next(c for c in run.cells.values() if c["levels"] == {"tools": "profile"})  # the profile's own
    tl = report.timeline_for([run], policies=["2026-08"])
    assert tl is not None and tl.account == run.header["sim_account"]
    assert tl.rows[0]["outcome"] == as_sent["outcome"] == "served_extra"
    findings = report.collect([run], timeline=tl)
    md = report.render_markdown(findings, {})
    assert "under the account the runs recorded (plan pro, extra usage on, with credit left)" in md
    other = load_run(real_profile_run(tmp_path))  # a run that recorded no account (an older run, a bisect) beside it
    assert report.timeline_for([run, other], policies=["2026-08"]).account == run.header["sim_account"]
    # billed to extra usage already: "enable extra usage" is no remedy for it; the others still are
    assert "enable extra usage" not in findings.verdict.remedy and "API key" in findings.verdict.remedy
