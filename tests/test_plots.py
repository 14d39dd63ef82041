"""The figures: axes, tick labels, cell annotations, legend entries and size (Agg backend)."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from lanelab.findings import frame as an
from lanelab.findings import plots
from lanelab.runs import load_run, tidy
from lanelab.wire.classify import load_taxonomy
from test_analysis import hermes_like_cells, make_cell, write_run


def frame(tmp_path: Path, cells: list[dict], **kw) -> pd.DataFrame:
    run = load_run(write_run(tmp_path / "r.jsonl", cells, **kw))
    return tidy(run)


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_heatmap_axes_ticks_annotations_and_legend(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells())
    fig = plots.heatmap(df, "tools", "ua", where={"endpoint": "/v1/messages"})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ua" and ax.get_ylabel() == "tools"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["none", "mcp_"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["claude-cli/2.1.74 (external, cli)", "python-httpx"]
    plan, refused = plots.cell_text(200, "served_plan"), plots.cell_text(400, "extra_usage_exhausted")
    assert plan == "200\nServed, billed\nto the plan" and refused == "400\nout of extra\nusage"  # status said once
    assert sorted(texts(ax)) == sorted([plan] * 2 + [refused] * 2)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Served, billed to the plan", "400 out of extra usage"]  # plain words, no internal ids
    assert "endpoint=/v1/messages" in ax.get_title()


def test_heatmap_colours_come_from_the_taxonomy(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells())
    expected = {c.id: c.colour for c in load_taxonomy().classes if c.colour}
    colours = plots.palette(["served_plan", "extra_usage_exhausted", "never_heard_of"])
    for oid in ("served_plan", "extra_usage_exhausted"):
        if oid in expected:
            assert colours[oid].lower() == expected[oid].lower()
    assert colours["never_heard_of"] in plots.FALLBACK_PALETTE
    fig = plots.heatmap(df, "tools", "ua")
    handles = fig.axes[0].get_legend().legend_handles
    assert matplotlib.colors.to_hex(handles[0].get_facecolor()) == matplotlib.colors.to_hex(colours["served_plan"])


def test_heatmap_readable_at_120_cells_grows_with_cells(tmp_path: Path) -> None:
    cells = [make_cell({"a": f"row{i:02d}", "b": f"col{j:02d}"}, "served_plan" if (i + j) % 3 else "rate_limited",
                       200 if (i + j) % 3 else 429)
             for i, j in itertools.product(range(10), range(12))]
    df = frame(tmp_path, cells)
    big = plots.heatmap(df, "a", "b")
    small = plots.heatmap(df[df["a"].isin(["row00", "row01"]) & df["b"].isin(["col00", "col01"])].pipe(
        lambda d: d.__finalize__(df)), "a", "b")
    ax = big.axes[0]
    assert len(ax.texts) == 120
    assert len(ax.get_xticklabels()) == 12 and len(ax.get_yticklabels()) == 10
    w, h = big.get_size_inches()
    sw, sh = small.get_size_inches()
    assert w > sw and h > sh
    assert w / 12 >= 0.9 and h / 10 >= 0.5  # each cell keeps room for two short lines of text
    assert min(t.get_fontsize() for t in ax.texts) >= 7


def test_heatmap_text_is_readable_on_its_background() -> None:
    assert plots.text_colour("#000000") == "white" and plots.text_colour("#F0E442") == "black"


def test_effects_chart_is_ranked_and_labelled(tmp_path: Path) -> None:
    df = frame(tmp_path, hermes_like_cells(ua_flips=True))
    eff = an.factor_effects(df)
    fig = plots.effects_chart(eff)
    lane_ax, other_ax = fig.axes[:2]
    # barh draws bottom-up: the top-ranked factor is the last tick label
    assert [t.get_text() for t in lane_ax.get_yticklabels()][::-1] == list(eff["factor"])
    assert "2 of 4" in texts(lane_ax) and "0 of 4" in texts(lane_ax)
    assert lane_ax.get_title() == "moves onto or off the plan" and other_ax.get_title().startswith("other outcome")


def test_effects_chart_ranks_moves_onto_the_plan_apart_from_other_changes(tmp_path: Path) -> None:
    """A factor that only swaps one refusal for another (betas) never outranks one that reaches the plan (tools),
    however often it changes the outcome."""
    cells = [make_cell({"tools": "profile", "betas": "profile"}, "extra_usage_exhausted", 400, "extra_usage",
                       cell_id="base"),
             make_cell({"tools": "mcp__", "betas": "profile"}, "served_plan", 200, "plan", cell_id="t1")]
    cells += [make_cell({"tools": "profile", "betas": b}, "oauth_not_supported", 401, "none", cell_id=f"b{i}")
              for i, b in enumerate(("none", "no_oauth", "other"))]
    eff = an.factor_effects(frame(tmp_path, cells))
    assert list(eff["factor"]) == ["tools", "betas"]
    assert eff.set_index("factor")[["lane_flips", "other_flips"]].to_dict("index") == {
        "tools": {"lane_flips": 1, "other_flips": 0}, "betas": {"lane_flips": 0, "other_flips": 3}}
    lane_ax, other_ax = plots.effects_chart(eff).axes[:2]
    labels = [t.get_text() for t in lane_ax.get_yticklabels()]
    # each panel draws the pairs (grey) then the counts: the count bars are the second half of the patches
    lane = dict(zip(labels, (p.get_width() for p in lane_ax.patches[len(labels):])))
    other = dict(zip(labels, (p.get_width() for p in other_ax.patches[len(labels):])))
    assert lane == {"betas": 0, "tools": 1} and other == {"betas": 3, "tools": 0}
    assert labels[-1] == "tools"  # drawn at the top


def test_changes_chart_ranks_each_single_change_by_how_it_ended(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "profile", "ua": "profile"}, "extra_usage_exhausted", 400, "extra_usage",
                       cell_id="base"),
             make_cell({"tools": "profile", "ua": "x"}, "extra_usage_exhausted", 400, "extra_usage", cell_id="same"),
             make_cell({"tools": "none", "ua": "profile"}, "rate_limited", 429, cell_id="other"),
             make_cell({"tools": "mcp__", "ua": "profile"}, "served_plan", 200, "plan", cell_id="plan")]
    fig = plots.changes_chart(frame(tmp_path, cells), "base")
    ax = fig.axes[0]
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    labels = [label for _, label in ticks]  # top to bottom
    assert labels == ["as sent (hermes)", "tools = mcp__", "tools = none", "ua = x"]
    assert "200 · Served, billed to the plan" in texts(ax) and "400 out of extra usage" in texts(ax)
    assert "1 billed to the plan, 1 ends differently, 1 ends like the request as sent" in ax.get_title()
    cells.append(make_cell({"tools": "profile", "ua": "y"}, "extra_usage_exhausted", 400, "extra_usage",
                           cell_id="same2"))
    title = plots.changes_chart(frame(tmp_path, cells), "base").axes[0].get_title()
    assert "1 ends differently, 2 end like the request as sent" in title, title


def test_effects_chart_without_pairs_says_so() -> None:
    fig = plots.effects_chart(pd.DataFrame(columns=list(an.EFFECT_COLUMNS)))
    assert "No two requests in this run differ in one factor alone" in fig.axes[0].texts[0].get_text()


def test_headroom_chart_puts_utilization_beside_outcome(tmp_path: Path) -> None:
    cells = hermes_like_cells()[:2] + [make_cell({"endpoint": "x", "ua": "y", "tools": "z"}, "burst_limited", 429)]
    fig = plots.headroom_chart(frame(tmp_path, cells))
    ax_o, ax_u = fig.axes[:2]
    assert ax_o.get_title() == "outcome"
    assert ax_u.get_title() == "% of each plan window used: nearly empty bars are an unused plan"
    labels = [t.get_text() for t in ax_o.get_yticklabels()]
    assert len(labels) == 3 and labels[0].endswith("[200]") and labels[2].endswith("[429]")
    widths = sorted({round(p.get_width(), 6) for p in ax_u.patches})
    assert widths == [0.0, 3.0]  # 5h at 3 %, 7d at 0 %, and nothing for the cell without headers
    assert "the response said nothing about the plan windows" in texts(ax_u)
    assert ax_u.get_xlabel().startswith("% of the plan window used")
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "Served, billed to the plan", "400 out of extra usage", an.outcome_label("burst_limited")}


def test_usage_chart_draws_percent_only_never_money(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0}, "extra_usage": {"used_credits": 0, "monthly_limit": 50}},
             "after": {"five_hour": {"utilization": 5.0}, "extra_usage": {"used_credits": 2, "monthly_limit": 50}}}
    run = load_run(write_run(tmp_path / "u.jsonl", hermes_like_cells(), usage=usage))
    snaps = an.usage_snapshots(run).set_index("field")
    assert snaps.loc["five_hour.utilization", "unit"] == an.UNIT_PERCENT
    assert snaps.loc["extra_usage.used_credits", "unit"] == "currency not reported"
    fig = plots.usage_chart(an.usage_snapshots(run))
    assert fig is not None
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["5-hour window"]
    assert sorted(round(p.get_width()) for p in ax.patches) == [3, 5]  # the 2 credits and the 50 limit are not drawn
    assert ax.get_xlabel() == "% used"
    # each bar's label ends inside the axes (it ran into the legend at 100 %), and no tick says more than 100 % used
    full = {"before": {"seven_day": {"utilization": 100.0}}, "after": {"seven_day": {"utilization": 100.0}}}
    ax = plots.usage_chart(an.usage_snapshots(load_run(write_run(tmp_path / "f.jsonl", hermes_like_cells(),
                                                                 usage=full)))).axes[0]
    fig = ax.figure
    fig.canvas.draw()
    box = ax.get_window_extent()
    assert all(t.get_window_extent().x1 <= box.x1 for t in ax.texts)
    assert max(ax.get_xticks()) == 100
    bare = load_run(write_run(tmp_path / "b.jsonl", hermes_like_cells()))
    assert plots.usage_chart(an.usage_snapshots(bare)) is None
    money_only = load_run(write_run(tmp_path / "m.jsonl", hermes_like_cells(), usage={
        "before": {"extra_usage": {"used_credits": 0, "currency": "EUR"}},
        "after": {"extra_usage": {"used_credits": 2, "currency": "EUR"}}}))
    snaps = an.usage_snapshots(money_only).set_index("field")
    assert snaps.loc["extra_usage.used_credits", "unit"] == "EUR"
    assert plots.usage_chart(an.usage_snapshots(money_only)) is None


def test_to_png_gives_png_bytes(tmp_path: Path) -> None:
    png = plots.to_png(plots.heatmap(frame(tmp_path, hermes_like_cells()), "tools", "ua"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_display_themselves_in_a_notebook(tmp_path: Path) -> None:
    from IPython.core.formatters import DisplayFormatter

    df = frame(tmp_path, hermes_like_cells())
    formatter = DisplayFormatter()  # what a notebook kernel asks of a value a cell returns
    for fig in (plots.heatmap(df, "tools", "ua"), plots.effects_chart(an.factor_effects(df)),
                plots.headroom_chart(df)):
        data, _ = formatter.format(fig)
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_only_the_plan_is_green_so_no_other_outcome_reads_as_billed_to_the_plan() -> None:
    """At a glance, green means "served, billed to the plan": every other outcome's colour is at least 35° of hue
    away from it, or grey."""
    import colorsys

    def hls(colour: str) -> tuple[float, float, float]:
        return colorsys.rgb_to_hls(*(int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)))

    classes = {c.id: c.colour for c in load_taxonomy().classes if c.colour}
    plan_hue = hls(classes.pop("served_plan"))[0] * 360
    close = [oid for oid, colour in classes.items()
             if hls(colour)[2] >= 0.15 and min(abs(hls(colour)[0] * 360 - plan_hue),
                                               360 - abs(hls(colour)[0] * 360 - plan_hue)) < 35]
    assert not close, f"coloured like the plan: {close}"
