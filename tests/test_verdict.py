"""The report's opening answer: the exact element with its before and after, the evidence, the remedy; a diagnose
run's verdict first; what a change does on the wire, in words."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from lanelab.config import data_dir
from lanelab.errors import InputError
from lanelab.findings import verdict as vd
from lanelab.findings.render import html_inline, md_inline
from lanelab.runs import load_run, load_runs, tidy
from lanelab.wire.spec import RequestSpec
from test_analysis import EXTRA_MSG, PLAN_HEADERS, make_cell, write_run

SAMPLES = data_dir() / "runs" / "samples"


def sample(policy: str) -> pd.DataFrame:
    return load_run(SAMPLES / f"sim-sample-hermes-0.14.0-ofat-{policy}.jsonl").to_frame()


def test_the_sample_run_names_mcp_and_mcp__with_evidence_and_remedy() -> None:
    df = sample("2026-05-25")
    v = vd.lead_verdict(df)
    assert v.conclusive and v.source == "analysis"
    assert (v.element, v.before, v.after) == ("tool names", "mcp_", "mcp__")
    assert "16 tool names use the prefix `mcp_`" in v.sentence and "the prefix `mcp__` instead" in v.sentence
    assert "billed to the plan" in v.sentence and "refused with HTTP 400" in v.sentence
    base = df.loc[(df[["tools", "user_agent", "betas", "endpoint"]] == "profile").all(axis=1), "cell_id"].iloc[0]
    fixed = df.loc[df["tools"] == "mcp__", "cell_id"].iloc[0]
    assert v.cells == (base, fixed) and v.requests == 2
    assert f"`{base}`" in v.evidence and f"`{fixed}`" in v.evidence and "out of 22 sent" in v.evidence
    assert EXTRA_MSG in v.evidence  # the server's message, verbatim
    assert "4 other single changes also reach the plan" in v.evidence
    assert "rename the client's tools from `mcp_…` to `mcp__…`" in v.remedy


def test_no_single_change_reaches_the_plan_under_the_later_policy() -> None:
    v = vd.lead_verdict(sample("2026-08"))
    assert not v.conclusive and v.element is None
    assert "no single change in this run gets it billed to the plan" in v.sentence
    assert "enable extra usage" in v.remedy


def test_an_empty_run_has_nothing_to_conclude(tmp_path: Path) -> None:
    df = load_run(write_run(tmp_path / "e.jsonl", [])).to_frame()
    v = vd.lead_verdict(df)
    assert not v.conclusive and v.source == "none" and "nothing to conclude" in v.sentence and v.requests == 0


def test_a_request_billed_to_the_plan_as_sent(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "profile"}, "served_plan", 200, "plan", unified=PLAN_HEADERS, cell_id="base"),
             make_cell({"tools": "none"}, "oauth_not_supported", 401, cell_id="x")]
    v = vd.lead_verdict(load_run(write_run(tmp_path / "p.jsonl", cells)).to_frame())
    assert "billed to the plan as it is sent" in v.sentence and "1 of 1 single changes move it off the plan" in v.evidence


def test_a_change_that_adds_claude_codes_identification_is_never_recommended(tmp_path: Path) -> None:
    base = make_cell({"ua": "profile"}, "extra_usage_exhausted", 400, "extra_usage", message=EXTRA_MSG, cell_id="b")
    base["spec"]["headers"]["user-agent"] = "hermes/0.14"
    cc = make_cell({"ua": "claude_code"}, "served_plan", 200, "plan", unified=PLAN_HEADERS, cell_id="c")
    cc["spec"]["headers"]["user-agent"] = "claude-code/2.1.74 (external, cli)"
    v = vd.lead_verdict(load_run(write_run(tmp_path / "i.jsonl", [base, cc])).to_frame())
    assert "the `user-agent` header" in v.sentence  # what the server reacts to is reported …
    assert "never recommends" in v.remedy and "claude-code/2.1.74" not in v.remedy  # … never recommended


def test_the_smallest_edit_wins_among_changes_that_reach_the_plan(tmp_path: Path) -> None:
    base = make_cell({"tools": "profile"}, "extra_usage_exhausted", 400, "extra_usage", cell_id="base")
    base["spec"]["body"]["tools"] = [{"name": f"mcp_{n}"} for n in ("read", "write")]
    cells = [base]
    for level, names in (("none", []), ("bare", ["read", "write"]), ("mcp__", ["mcp__read", "mcp__write"])):
        c = make_cell({"tools": level}, "served_plan", 200, "plan", unified=PLAN_HEADERS, cell_id=level)
        c["spec"]["body"]["tools"] = [{"name": n} for n in names]
        cells.append(c)
    v = vd.lead_verdict(load_run(write_run(tmp_path / "s.jsonl", cells)).to_frame())
    assert v.cells == ("base", "mcp__") and (v.before, v.after) == ("mcp_", "mcp__")
    assert "2 other single changes also reach the plan: `tools=bare`, `tools=none`" in v.evidence


def test_a_diagnose_runs_verdict_opens_the_report(tmp_path: Path) -> None:
    matrix = write_run(tmp_path / "m.jsonl", [make_cell({"tools": "profile"}, "extra_usage_exhausted", 400,
                                                        "extra_usage", cell_id="base")])
    lines = [{"record": "header", "run_id": "diag", "design": "diagnose", "mode": "sim", "factors": []},
             {"record": "note", "at": "2026-11-30T00:00:00Z",
              "verdict": {"sentence": "16 tool names use `mcp_`; with `mcp__` it is billed to the plan.",
                          "evidence": "2 requests confirm it.", "remedy": "Rename the tools.", "requests": 2,
                          "cells": ["a", "b"], "element": "tool names", "before": "mcp_", "after": "mcp__"}}]
    diag = tmp_path / "d.jsonl"
    diag.write_text("".join(json.dumps(x) + "\n" for x in lines))
    runs = load_runs([matrix, diag])
    v = vd.lead_verdict(tidy(runs[:1]), runs)
    assert v.source == "diagnose" and v.sentence.startswith("16 tool names") and v.requests == 2
    assert v.cells == ("a", "b") and (v.before, v.after) == ("mcp_", "mcp__")
    assert vd.verdict_of_runs(runs).source == "diagnose"
    given = vd.lead_verdict(tidy(runs[:1]), runs, verdict=SimpleNamespace(sentence="Given by the caller."))
    assert given.sentence == "Given by the caller." and given.evidence == "" and given.source == "diagnose"
    with pytest.raises(InputError, match="no sentence"):
        vd.Verdict.from_obj({"evidence": "x"})


def test_describe_change_in_words() -> None:
    spec = RequestSpec(headers={"user-agent": "a/1", "x-app": "cli"}, body={"model": "m"})
    removed = vd.describe_change(spec, RequestSpec(headers={"user-agent": "a/1"}, body={"model": "m"}))
    assert removed.sentence_before == "it sends the `x-app` header (`cli`)" and removed.fix.startswith("remove")
    changed = vd.describe_change(spec, RequestSpec(headers={"user-agent": "b/2", "x-app": "cli"}, body={"model": "m"}))
    assert changed.fix == "change the `user-agent` header from `a/1` to `b/2`"
    assert vd.describe_change(spec, spec) is None
    bare = vd.describe_change(RequestSpec(body={"tools": [{"name": "mcp_x"}]}), RequestSpec(body={"tools": [{"name": "x"}]}))
    assert (bare.before, bare.after) == ("mcp_", "") and "removed" in bare.sentence_after


def test_run_data_cannot_open_markup_through_a_verdict() -> None:
    sneaky = "a`b<script>alert(1)</script>\n# heading"
    span = vd.code(sneaky)
    assert span.count("`") == 2 and "\n" not in span
    page = str(html_inline(f"name {span} here"))
    assert "<script>" not in page and "&lt;script&gt;" in page and page.count("<code>") == 1
    md = md_inline(f"name {span} <b>x</b>")
    assert "<b>" not in md and "&lt;b&gt;" in md
