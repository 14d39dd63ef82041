"""The three questions of hermes-agent #32243, answered on runs whose answers are known by construction."""

from __future__ import annotations

from pathlib import Path

from lanelab.config import data_dir
from lanelab.findings import answers as ans
from lanelab.findings import frame as an
from lanelab.runs import load_run, load_runs, tidy
from test_analysis import PLAN_HEADERS, hermes_like_cells, make_cell, write_run


def frame(tmp_path: Path, cells: list[dict], name: str = "r") -> an.pd.DataFrame:
    return load_run(write_run(tmp_path / f"{name}.jsonl", cells, run_id=name)).to_frame()


def test_request_shape_yes_when_the_user_agent_alone_flips(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells(ua_flips=True))
    a = ans.request_shape(df)
    assert a.answered and a.verdict.startswith("yes") and an.ASPECT_CLIENT in a.verdict
    assert an.ASPECT_ENDPOINT not in a.verdict  # the endpoint was tested and never flips
    bare = set(df[(df["ua"] == "python-httpx") & (df["tools"] == "none")]["cell_id"])
    assert bare <= set(a.cells)
    assert a.next_run and an.ASPECT_BETA in a.next_run  # beta header untested in this design


def test_request_shape_no_when_only_the_body_flips(tmp_path: Path) -> None:
    a = ans.request_shape(frame(tmp_path, hermes_like_cells()))
    assert a.verdict.startswith("no") and "endpoint" in a.verdict and "client identifier" in a.verdict
    assert len(a.cells) == 8  # every cell of the design sits in an endpoint or ua pair that agrees


def test_request_shape_cannot_tell_without_pairs(tmp_path: Path) -> None:
    df = frame(tmp_path, [make_cell({"tools": "mcp_"}, "extra_usage_exhausted", 400, "extra_usage"),
                          make_cell({"tools": "none"}, "served_plan", 200, "plan", unified=PLAN_HEADERS)])
    a = ans.request_shape(df)
    assert not a.answered and a.cells == []
    assert a.headline.startswith("cannot tell; this run would answer it: vary endpoint")


def test_credential_source_needs_two_credentials(tmp_path: Path) -> None:
    a = ans.credential_source(frame(tmp_path, hermes_like_cells()))
    assert not a.answered and "add factor credential with two labels" in a.next_run


def test_credential_source_no_when_identical_requests_agree(tmp_path: Path) -> None:
    a = ans.credential_source(frame(tmp_path, hermes_like_cells(credentials=("kit-pkce", "claude-code"))))
    assert a.verdict.startswith("no") and len(a.cells) == 16


def test_credential_source_yes_when_one_credential_differs(tmp_path: Path) -> None:
    cells = hermes_like_cells(credentials=("kit-pkce",))
    cells.append(make_cell({"endpoint": "/v1/messages", "ua": "python-httpx", "tools": "none"}, "token_expired", 401,
                           credential="old-import"))
    a = ans.credential_source(frame(tmp_path, cells))
    assert a.verdict.startswith("yes") and "401 token expired or revoked" in a.explanation
    assert cells[-1]["cell_id"] in a.cells


def test_billing_lane_both_when_some_requests_are_served_on_the_plan(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells())
    a = ans.billing_lane(df)
    assert a.verdict.startswith("both")
    assert "4 requests were billed to the plan" in a.explanation and "out_of_credits" in a.explanation
    assert "3% (5-hour)" in a.explanation and "use an API key" in a.explanation
    assert set(df[df["tools"] == "mcp_"]["cell_id"]) <= set(a.cells)


def test_billing_lane_extra_usage_when_nothing_is_served_on_the_plan(tmp_path: Path) -> None:
    cells = [make_cell({"tools": t}, "extra_usage_exhausted", 400, "extra_usage", unified=PLAN_HEADERS)
             for t in ("mcp_", "none")]
    a = ans.billing_lane(frame(tmp_path, cells))
    assert a.verdict == "extra-usage pool" and "not that the plan is used up" in a.explanation


def test_billing_lane_plan_and_cannot_tell(tmp_path: Path) -> None:
    served = [make_cell({"tools": "none"}, "served_plan", 200, "plan", unified=PLAN_HEADERS)]
    assert ans.billing_lane(frame(tmp_path, served, "p")).verdict == "plan"
    other = [make_cell({"tools": "none"}, "server_error", 500, "none")]
    a = ans.billing_lane(frame(tmp_path, other, "q"))
    assert not a.answered and "unified" in a.next_run


def test_answer_all_and_diagnosis_on_a_known_run(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells())
    answers = ans.answer_all(df)
    assert [a.key for a in answers] == ["request_shape", "credential_source", "billing_lane"]
    table = answers.to_frame()
    page = answers._repr_html_().replace("<wbr>", "")
    assert page.startswith('<div class="table">') and table.shape == (3, 5)
    assert all(a.explanation.replace("'", "&#x27;").replace('"', "&quot;") in page for a in answers), \
        "answers are shown in full, never cut off"
    assert list(table["verdict"].str.split(":").str[0]) == ["no", "cannot tell", "both"]
    lines = ans.diagnosis(df)
    assert lines[0].startswith("The reported problem appears: 4 of 8 requests") and "at most 3% used" in lines[0]
    assert "(400 out of extra usage)" in lines[0]
    assert "'tools'" in lines[1] and "4 of 4" in lines[1] and "onto or off the plan" in lines[1]


def test_no_evasion_advice_in_answers(tmp_path: Path) -> None:
    text = " ".join(a.explanation + (a.next_run or "") for a in ans.answer_all(frame(tmp_path, hermes_like_cells())))
    for forbidden in ("billing-header", "cc_" + "version", "spoof", "pretend"):
        assert forbidden not in text


def test_request_shape_no_when_request_details_only_change_the_error(tmp_path: Path) -> None:
    cells = [make_cell({"beta": b, "tools": t}, o, s, lane)
             for b, t, o, s, lane in [("oauth", "mcp_", "extra_usage_exhausted", 400, "extra_usage"),
                                      ("none", "mcp_", "oauth_not_supported", 401, "none"),
                                      ("oauth", "none", "served_plan", 200, "plan")]]
    df = frame(tmp_path, cells)
    a = ans.request_shape(df)
    assert a.verdict.startswith("no") and "400 out of extra usage → 401 OAuth not supported" in a.explanation
    eff = an.factor_effects(df)
    assert list(eff["factor"]) == ["tools", "beta"]  # the lane flip outranks the error-only flip
    assert list(eff["lane_flips"]) == [1, 0] and list(eff["flips"]) == [1, 1]


def test_curated_samples_reproduce_the_reported_problem() -> None:
    paths = sorted((data_dir() / "runs" / "samples").glob("*.jsonl"))
    assert len(paths) == 2
    df = tidy(load_runs(paths))
    assert {h.get("mode") for h in df.attrs["runs"]} == {"sim"}
    lines = ans.diagnosis(df)
    assert lines[0].startswith("The reported problem appears") and "'tools'" in lines[1]
    lane = ans.billing_lane(df)
    assert lane.answered and "out_of_credits" in lane.explanation
    assert not ans.credential_source(df).answered
