"""The tidy table, cell results, outcome by factor, matrix, minimal pairs, flips from a baseline, factor effects, lane
signals and run comparison, on hand-built runs.

The helpers at the top (``make_cell``, ``write_run``, ``hermes_like_run``) build small run files in the format of
docs/contracts.md §3.1; test_answers, test_plots and test_report import them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.errors import InputError, NotFound, UserError
from lanelab.findings import frame as an
from lanelab.runs import DEFAULT_LEVEL, load_run, load_runs, tidy
from lanelab.wire import observe as wire
from lanelab.wire.classify import load_taxonomy

PLAN_HEADERS = {"status": "allowed", "representative-claim": "five_hour", "5h-status": "allowed",
                "5h-utilization": "0.03", "7d-status": "allowed", "7d-utilization": "0.0",
                "overage-status": "rejected", "overage-disabled-reason": "out_of_credits"}
EXTRA_MSG = "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."

# Levels map onto the wire so the specs of a minimal pair really differ where the factor says.
_SPEC_KEYS = {
    "endpoint": lambda s, v: s.update(path=v.split("?")[0], query=dict([v.split("?")[1].split("=")]) if "?" in v else {}),
    "beta": lambda s, v: s["headers"].__setitem__("anthropic-beta", v),
    "ua": lambda s, v: s["headers"].__setitem__("user-agent", v),
    "tools": lambda s, v: s["body"].__setitem__("tools", [] if v == "none" else [{"name": f"{v}read_file"}]),
    "credential": lambda s, v: s.update(credential=v),
}


def spec_for(levels: Mapping[str, str], credential: str) -> dict[str, Any]:
    spec = {"method": "POST", "path": "/v1/messages", "query": {}, "auth": "bearer", "credential": credential,
            "headers": {"anthropic-version": "2023-06-01", "anthropic-beta": "oauth-2025-04-20"},
            "body": {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "ping"}]}}
    for k, v in levels.items():
        if k in _SPEC_KEYS:
            _SPEC_KEYS[k](spec, v)
        else:
            spec["body"][k] = v
    return spec


def observation(status: int | None, message: str | None = None, unified: Mapping[str, str] | None = None,
                request_id: str = "req_011test") -> dict[str, Any]:
    if status is None:
        return wire.Observation(transport_error="ConnectError: refused").to_dict()
    headers = {"request-id": request_id, "content-type": "application/json"}
    headers.update({f"anthropic-ratelimit-unified-{k}": v for k, v in (unified or {}).items()})
    body: dict[str, Any] = {"id": "msg_01", "type": "message", "content": []}
    if status >= 400:
        kind = "rate_limit_error" if status == 429 else "invalid_request_error"
        body = {"type": "error", "error": {"type": kind, "message": message or "Error"}, "request_id": request_id}
    return wire.observe_response(status, headers, json.dumps(body).encode(), 12.5).to_dict()


def make_cell(levels: Mapping[str, str], outcome: str, status: int | None, lane: str = "unknown", *,
              credential: str = "kit-pkce", profile: str = "hermes", message: str | None = None,
              unified: Mapping[str, str] | None = None, cell_id: str | None = None) -> dict[str, Any]:
    levels = dict(levels)
    cid = cell_id or format(abs(hash((profile, credential, tuple(sorted(levels.items()))))) % 16**12, "012x")
    return {"record": "cell", "cell_id": cid, "profile": profile, "levels": levels, "credential": credential,
            "spec": spec_for(levels, credential), "observation": observation(status, message, unified,
                                                                            request_id=f"req_011{cid}"),
            "outcome": outcome, "lane": lane, "sent_at": "2026-05-25T10:00:00Z"}


def write_run(path: Path, cells: list[dict[str, Any]], run_id: str = "run-a", policy: str = "2026-05-25",
              factors: list[str] | None = None, usage: Mapping[str, Any] | None = None, torn: bool = False) -> Path:
    factors = factors if factors is not None else list(dict.fromkeys(k for c in cells for k in c["levels"]))
    header = {"record": "header", "run_id": run_id, "kit_version": "0.1.0", "mode": "sim", "host": "127.0.0.1",
              "policy": policy, "profile": "hermes", "design": "full_factorial", "factors": factors,
              "credentials": sorted({c["credential"] for c in cells}), "started_at": "2026-05-25T10:00:00Z"}
    lines = [header, *cells]
    for when, snap in (usage or {}).items():
        lines.append({"record": "usage", "when": when, "usage": snap})
    text = "\n".join(json.dumps(x) for x in lines) + "\n"
    path.write_text(text + ('{"record": "cell", "cell_id": "tor' if torn else ""), encoding="utf-8")
    return path


def hermes_like_cells(ua_flips: bool = False, credentials: tuple[str, ...] = ("kit-pkce",)) -> list[dict[str, Any]]:
    """A 2x2x2 design (endpoint, ua, tools) per credential: ``mcp_`` tools are refused by the extra-usage pool; with
    ``ua_flips`` the bare user agent is refused too. Everything else is served on the plan."""
    cells = []
    for cred, ep, ua, tools in itertools.product(credentials, ("/v1/messages", "/v1/messages?beta=true"),
                                                 ("claude-cli/2.1.74 (external, cli)", "python-httpx"),
                                                 ("none", "mcp_")):
        levels = {"endpoint": ep, "ua": ua, "tools": tools}
        refused = tools == "mcp_" or (ua_flips and ua == "python-httpx")
        if refused:
            c = make_cell(levels, "extra_usage_exhausted", 400, "extra_usage", credential=cred, message=EXTRA_MSG,
                          unified=PLAN_HEADERS)
        else:
            c = make_cell(levels, "served_plan", 200, "plan", credential=cred, unified=PLAN_HEADERS)
        cells.append(c)
    return cells


def hermes_like_run(tmp_path: Path, name: str = "run-a", **kw: Any) -> Path:
    return write_run(tmp_path / f"{name}.jsonl", hermes_like_cells(**kw), run_id=name)


# ---------------------------------------------------------------------------------------------------------------------


def test_tidy_has_one_row_per_observation_with_factor_columns(tmp_path: Path) -> None:
    df = load_run(hermes_like_run(tmp_path)).to_frame()
    assert len(df) == 8
    assert an.factors_of(df) == ["endpoint", "ua", "tools"]
    assert set(df["tools"]) == {"none", "mcp_"}
    assert df["outcome"].dtype.ordered
    row = df[df["tools"] == "mcp_"].iloc[0]
    assert row["status"] == 400 and row["outcome"] == "extra_usage_exhausted"
    assert row["claim"] == "five_hour" and row["util_5h"] == pytest.approx(0.03) and row["util_7d"] == 0.0
    assert row["overage_status"] == "rejected" and row["overage_disabled_reason"] == "out_of_credits"
    assert row["request_id"].startswith("req_011") and row["latency_ms"] == pytest.approx(12.5)


def test_outcome_categories_follow_the_taxonomy_order(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "mcp_"}, "extra_usage_exhausted", 400),
             make_cell({"tools": "none"}, "served_plan", 200),
             make_cell({"tools": "odd"}, "something_new", 418)]
    df = load_run(write_run(tmp_path / "r.jsonl", cells)).to_frame()
    categories = list(df["outcome"].cat.categories)
    taxonomy = [c.id for c in load_taxonomy().classes]
    assert categories == [*taxonomy, "something_new"], "taxonomy order first, unknown outcomes kept at the end"
    assert categories.index("served_plan") < categories.index("extra_usage_exhausted")
    assert df.sort_values("outcome")["outcome"].iloc[0] == "served_plan"


def test_torn_last_line_is_dropped(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells(), torn=True))
    assert len(run.cells) == 8


def test_missing_run_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No run file"):
        load_run(tmp_path / "nope.jsonl")


def test_cell_results_say_what_changed_and_what_came_back(tmp_path: Path) -> None:
    base = make_cell({"tools": "profile", "ua": "profile"}, "extra_usage_exhausted", 400, "extra_usage",
                     message=EXTRA_MSG, cell_id="base")
    one = make_cell({"tools": "mcp__", "ua": "profile"}, "served_plan", 200, "plan", cell_id="one")
    df = load_run(write_run(tmp_path / "r.jsonl", [base, one])).to_frame()
    table = an.cell_results(df)
    assert list(table.columns) == list(an.RESULT_COLUMNS)
    assert table.values.tolist() == [
        ["base", "as sent", 400, "400 out of extra usage", "extra usage", EXTRA_MSG],
        ["one", "tools=mcp__", 200, "Served, billed to the plan", "plan", ""]]


def test_cell_results_wide_show_each_cell_with_its_factor_levels(tmp_path: Path) -> None:
    df = load_run(hermes_like_run(tmp_path)).to_frame()
    table = an.cell_results(df, wide=True)
    assert list(table.columns) == ["cell_id", "endpoint", "ua", "tools", "status", "outcome", "lane", "error_message",
                                   "request_id"]
    assert len(table) == 8 and set(table.loc[table["tools"] == "mcp_", "error_message"]) == {EXTRA_MSG}
    two = tidy(load_runs([hermes_like_run(tmp_path, "a"), hermes_like_run(tmp_path, "b")]))
    assert an.cell_results(two).columns[0] == "run_id" and an.cell_results(two, wide=True).columns[0] == "run_id"


def test_outcome_by_factor_counts_cells_per_level(tmp_path: Path) -> None:
    df = load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells(ua_flips=True))).to_frame()
    table = an.outcome_by_factor(df)
    assert list(table.columns) == ["served_plan", "extra_usage_exhausted"]  # taxonomy order, only outcomes seen
    assert table.index.names == ["factor", "level"] and len(table) == 6
    assert table.loc[("tools", "mcp_")].tolist() == [0, 4]
    assert table.loc[("ua", "python-httpx")].tolist() == [0, 4]
    assert table.loc[("ua", "claude-cli/2.1.74 (external, cli)")].tolist() == [2, 2]
    assert (table.sum(axis=1) == 4).all()
    assert list(an.outcome_by_factor(df, ["tools"]).index.get_level_values("level")) == ["none", "mcp_"]
    with pytest.raises(UserError, match="no factor 'colour'"):
        an.outcome_by_factor(df, ["colour"])


def test_matrix_pivots_outcome_by_two_factors(tmp_path: Path) -> None:
    df = load_run(hermes_like_run(tmp_path)).to_frame()
    m = an.matrix(df, "tools", "ua", where={"endpoint": "/v1/messages"})
    assert m.shape == (2, 2)
    assert m.loc["mcp_", "python-httpx"] == "400 · extra_usage_exhausted"
    assert m.loc["none", "claude-cli/2.1.74 (external, cli)"] == "200 · served_plan"
    # without fixing endpoint each matrix cell holds two observations that agree
    g = an.grid(df, "tools", "ua")
    assert set(g["n"]) == {2} and not g["mixed"].any()
    with pytest.raises(UserError, match="no factor"):
        an.matrix(df, "tools", "colour")


def test_matrix_marks_disagreeing_repeats(tmp_path: Path) -> None:
    cells = [make_cell({"a": "1", "b": "x", "c": "p"}, "served_plan", 200),
             make_cell({"a": "1", "b": "x", "c": "q"}, "rate_limited", 429)]
    df = load_run(write_run(tmp_path / "r.jsonl", cells)).to_frame()
    assert an.matrix(df, "a", "b").iloc[0, 0].endswith("*")


def test_minimal_pairs_find_cells_differing_in_one_factor_alone(tmp_path: Path) -> None:
    df = load_run(hermes_like_run(tmp_path)).to_frame()
    pairs = an.minimal_pairs(df)
    # 2x2x2 design: 4 pairs per factor
    assert pairs.groupby("factor").size().to_dict() == {"endpoint": 4, "ua": 4, "tools": 4}
    assert pairs[pairs["factor"] == "tools"]["flips"].all()
    assert not pairs[pairs["factor"] != "tools"]["flips"].any()
    aspects = dict(zip(pairs["factor"], pairs["aspects"]))
    assert aspects == {"endpoint": an.ASPECT_ENDPOINT, "ua": an.ASPECT_CLIENT, "tools": an.ASPECT_BODY}


def test_factor_effects_rank_the_factor_that_flips_first(tmp_path: Path) -> None:
    df = load_run(write_run(tmp_path / "r.jsonl", hermes_like_cells(ua_flips=True))).to_frame()
    eff = an.factor_effects(df)
    # tools and ua flip 2 of 4 pairs each (a tie keeps the design's factor order); endpoint never flips
    assert list(eff["factor"]) == ["ua", "tools", "endpoint"]
    ua, tools, endpoint = (eff.iloc[i] for i in range(3))
    assert (tools["flips"], tools["pairs"]) == (2, 4)  # tools only matters with the claude-cli UA
    assert (ua["flips"], ua["pairs"]) == (2, 4)
    assert endpoint["flips"] == 0 and endpoint["cells"] == []
    flipping = set(df[(df["tools"] == "mcp_") & (df["ua"].str.startswith("claude-cli"))]["cell_id"])
    assert flipping <= set(tools["cells"])
    ranked = an.factor_effects(load_run(write_run(tmp_path / "s.jsonl", hermes_like_cells())).to_frame())
    assert ranked["factor"].iloc[0] == "tools" and list(ranked["flips"]) == [4, 0, 0]


def test_ofat_design_uses_default_level_for_unset_factors(tmp_path: Path) -> None:
    cells = [make_cell({}, "served_plan", 200, "plan"),
             make_cell({"beta": "none"}, "oauth_not_supported", 401),
             make_cell({"ua": "x"}, "served_plan", 200, "plan")]
    df = load_run(write_run(tmp_path / "r.jsonl", cells)).to_frame()
    assert set(df["beta"]) == {DEFAULT_LEVEL, "none"}
    eff = an.factor_effects(df).set_index("factor")
    assert eff.loc["beta", "flips"] == 1 and eff.loc["ua", "flips"] == 0
    assert eff.loc["beta", "transitions"] == "served_plan→oauth_not_supported"
    assert eff.loc["beta", "aspects"] == an.ASPECT_BETA


def test_flips_from_baseline_are_the_single_changes_that_change_its_outcome(tmp_path: Path) -> None:
    base = make_cell({"tools": "profile", "ua": "profile"}, "extra_usage_exhausted", 400, "extra_usage",
                     message=EXTRA_MSG, cell_id="base")
    one = make_cell({"tools": "none", "ua": "profile"}, "served_plan", 200, "plan", unified=PLAN_HEADERS,
                    cell_id="one")
    same = make_cell({"tools": "profile", "ua": "python-httpx"}, "extra_usage_exhausted", 400, "extra_usage",
                     cell_id="same")
    two = make_cell({"tools": "none", "ua": "python-httpx"}, "served_plan", 200, "plan", cell_id="two")
    df = load_run(write_run(tmp_path / "r.jsonl", [base, one, same, two])).to_frame()
    flips = an.flips_from_baseline(df, "base")
    assert list(flips.columns) == list(an.CHANGE_COLUMNS)
    assert flips[["factor", "level", "baseline_level", "cell_id", "outcome", "baseline_outcome", "onto_plan"]] \
        .values.tolist() == [["tools", "none", "profile", "one", "served_plan", "extra_usage_exhausted", True]]
    assert flips["aspects"].tolist() == [an.ASPECT_BODY]
    every = an.flips_from_baseline(df, "base", all_changes=True)
    assert every["cell_id"].tolist() == ["one", "same"]  # 'two' changes two factors at once
    pairs = an.minimal_pairs(df, baseline="base")
    assert set(pairs["cell_a"]) == {"base"} and set(pairs["cell_b"]) == {"one", "same"}
    assert len(an.minimal_pairs(df)) == 4  # every pair, baseline or not
    verdict = an.baseline_verdict(df, "base")
    assert "**extra_usage_exhausted** (HTTP 400)" in verdict and "policy `2026-05-25`: `tools=none`." in verdict
    with pytest.raises(NotFound, match="no cell 'missing'"):
        an.flips_from_baseline(df, "missing")


def test_baseline_verdict_says_none_when_no_single_change_reaches_the_plan(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "profile"}, "extra_usage_exhausted", 400, "extra_usage", cell_id="base"),
             make_cell({"tools": "none"}, "rate_limited", 429, cell_id="x")]
    df = load_run(write_run(tmp_path / "r.jsonl", cells)).to_frame()
    assert an.flips_from_baseline(df, "base")["onto_plan"].tolist() == [False]
    assert an.baseline_verdict(df, "base").endswith(": **none**.")


def test_credential_becomes_a_factor_when_it_varies(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", hermes_like_cells(credentials=("kit-pkce", "claude-code")))
    df = load_run(path).to_frame()
    assert "credential" in an.factors_of(df)
    pairs = an.minimal_pairs(df, "credential")
    assert len(pairs) == 8 and set(pairs["aspects"]) == {an.ASPECT_CREDENTIAL}


def test_factor_named_like_a_fixed_column_is_prefixed(tmp_path: Path) -> None:
    cells = [make_cell({"status": "a"}, "served_plan", 200), make_cell({"status": "b"}, "served_plan", 200)]
    df = load_run(write_run(tmp_path / "r.jsonl", cells)).to_frame()
    assert an.factors_of(df) == ["factor:status"] and set(df["status"]) == {200}


def test_lane_signals_and_usage_snapshots(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0}, "extra_usage": {"is_enabled": True, "used_credits": 0}},
             "after": {"five_hour": {"utilization": 4.0}, "extra_usage": {"is_enabled": True, "used_credits": 0}}}
    path = write_run(tmp_path / "r.jsonl", hermes_like_cells(), usage=usage)
    run = load_run(path)
    lanes = an.lane_signals(tidy(run))
    assert list(lanes.columns) == list(an.LANE_COLUMNS) and len(lanes) == 8
    assert "tools=mcp_" in lanes.loc[lanes["status"] == 400, "label"].iloc[0]
    snap = an.usage_snapshots(run).set_index("field")
    assert snap.loc["five_hour.utilization", "change"] == pytest.approx(1.0)
    assert pd.isna(snap.loc["extra_usage.is_enabled", "change"]) and snap.loc["extra_usage.used_credits", "change"] == 0


def test_compare_runs_reports_what_changed(tmp_path: Path) -> None:
    a = hermes_like_run(tmp_path, "policy-may")
    b = write_run(tmp_path / "policy-jun.jsonl", hermes_like_cells(ua_flips=True), run_id="policy-jun",
                  policy="2026-06-18")
    df = tidy(load_runs([a, b]))
    cmp = an.compare_runs(df)
    assert cmp.attrs["run_a"] == "policy-may" and len(cmp) == 8
    changed = cmp[cmp["change"] == "changed"]
    assert len(changed) == 2
    assert set(changed["ua"]) == {"python-httpx"} and set(changed["tools"]) == {"none"}
    assert set(changed["outcome_a"]) == {"served_plan"} and set(changed["outcome_b"]) == {"extra_usage_exhausted"}
    assert len(an.compare_runs(df, changed_only=True)) == 2
    with pytest.raises(UserError, match="two runs"):
        an.compare_runs(load_run(a).to_frame())


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy"), st.sampled_from(["served_plan", "rate_limited"])),
                min_size=1, max_size=12, unique_by=lambda t: (t[0], t[1])))
def test_minimal_pairs_flip_exactly_when_outcomes_differ(tmp_path_factory: pytest.TempPathFactory,
                                                         obs: list[tuple[str, str, str]]) -> None:
    cells = [make_cell({"f": f, "g": g}, o, 200 if o == "served_plan" else 429) for f, g, o in obs]
    path = write_run(tmp_path_factory.mktemp("h") / "r.jsonl", cells)
    df = load_run(path).to_frame()
    pairs = an.minimal_pairs(df)
    by_cell = {c["cell_id"]: c["outcome"] for c in cells}
    expected = sum(1 for x, y in itertools.combinations(obs, 2) if (x[0] == y[0]) != (x[1] == y[1]))
    assert len(pairs) == expected
    for p in pairs.to_dict("records"):
        assert p["flips"] == (by_cell[p["cell_a"]] != by_cell[p["cell_b"]])


def test_a_level_that_sends_the_very_request_as_sent_is_no_change_and_no_pair(tmp_path: Path) -> None:
    """An OFAT level equal to what the client sends (``auth=bearer`` for a client that sends Bearer) repeats the
    request as sent: it is neither a single change in the chart nor a pair in the effects, which count what a change
    on the wire does."""
    base = make_cell({"tools": DEFAULT_LEVEL, "auth": DEFAULT_LEVEL}, "extra_usage_exhausted", 400, cell_id="base")
    same = make_cell({"tools": DEFAULT_LEVEL, "auth": "bearer"}, "extra_usage_exhausted", 400, cell_id="same")
    same["spec"] = base["spec"]  # the level sends exactly what the client sends
    moved = make_cell({"tools": "none", "auth": DEFAULT_LEVEL}, "served_plan", 200, "plan", unified=PLAN_HEADERS,
                      cell_id="moved")
    df = tidy([load_run(write_run(tmp_path / "r.jsonl", [base, same, moved]))])
    assert sorted(an.minimal_pairs(df, baseline="base")["cell_b"]) == ["moved", "same"]  # the raw pairs keep it
    changes = an.flips_from_baseline(df, "base", all_changes=True)
    assert changes["cell_id"].tolist() == ["moved"]
    effects = an.factor_effects(df).set_index("factor")
    assert "auth" not in effects.index and effects.loc["tools", "pairs"] == 1


@pytest.mark.parametrize("call", [
    lambda: an.cell_results("x"), lambda: an.outcome_by_factor(pd.DataFrame()), lambda: an.factor_effects(None),
    lambda: an.minimal_pairs([1, 2]), lambda: an.flips_from_baseline({}, "c"), lambda: an.compare_runs(3),
], ids=["cell_results", "outcome_by_factor", "factor_effects", "minimal_pairs", "flips_from_baseline",
        "compare_runs"])
def test_the_table_functions_refuse_anything_but_the_runs_table_in_a_sentence(call) -> None:
    with pytest.raises(InputError, match=r"This takes the runs' table \(tidy\(runs\) or run.to_frame\(\)\); found"):
        call()


def test_load_run_refuses_what_is_no_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="load_run takes a run file's path; found NoneType"):
        load_run(None)  # type: ignore[arg-type]
