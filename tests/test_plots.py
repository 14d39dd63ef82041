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
    shorts = plots.short_labels(["served_plan", "extra_usage_exhausted"])
    assert sorted(texts(ax)) == sorted([f"200\n{shorts['served_plan']}"] * 2 + [f"400\n{shorts['extra_usage_exhausted']}"] * 2)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 2 and legend[0].endswith("served_plan") and legend[1].endswith("extra_usage_exhausted")
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
    ax = fig.axes[0]
    # barh draws bottom-up: the top-ranked factor is the last tick label
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == list(eff["factor"])
    assert "2/4" in texts(ax) and "0/4" in texts(ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["outcome flips", "same outcome"]


def test_effects_chart_without_pairs_says_so() -> None:
    fig = plots.effects_chart(pd.DataFrame(columns=["factor", "pairs", "flips"]))
    assert "No minimal pairs" in fig.axes[0].texts[0].get_text()


def test_headroom_chart_puts_utilization_beside_outcome(tmp_path: Path) -> None:
    cells = hermes_like_cells()[:2] + [make_cell({"endpoint": "x", "ua": "y", "tools": "z"}, "burst_limited", 429)]
    fig = plots.headroom_chart(frame(tmp_path, cells))
    ax_o, ax_u = fig.axes[:2]
    assert ax_o.get_title() == "outcome" and ax_u.get_title() == "plan headroom"
    labels = [t.get_text() for t in ax_o.get_yticklabels()]
    assert len(labels) == 3 and labels[0].endswith("[200]") and labels[2].endswith("[429]")
    widths = sorted({round(p.get_width(), 6) for p in ax_u.patches})
    assert widths == [0.0, 3.0]  # 5h at 3 %, 7d at 0 %, and nothing for the cell without headers
    assert "no unified headers" in texts(ax_u)
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"served_plan", "extra_usage_exhausted",
                                                                  "burst_limited"}


def test_usage_chart_only_when_snapshots_exist(tmp_path: Path) -> None:
    usage = {"before": {"five_hour": {"utilization": 3.0}, "extra_usage": {"used_credits": 0}},
             "after": {"five_hour": {"utilization": 5.0}, "extra_usage": {"used_credits": 2}}}
    run = load_run(write_run(tmp_path / "u.jsonl", hermes_like_cells(), usage=usage))
    fig = plots.usage_chart(an.usage_snapshots(run))
    assert fig is not None
    assert sorted(t.get_text() for t in fig.axes[0].get_yticklabels()) == ["extra_usage.used_credits",
                                                                          "five_hour.utilization"]
    assert sorted(round(p.get_width()) for p in fig.axes[0].patches) == [0, 2, 3, 5]
    bare = load_run(write_run(tmp_path / "b.jsonl", hermes_like_cells()))
    assert plots.usage_chart(an.usage_snapshots(bare)) is None


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
