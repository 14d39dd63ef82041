"""The figures a finding needs: the annotated outcome heatmap, ranked factor effects, plan headroom beside the outcome,
and usage before/after a run.

Figures are :class:`Chart` objects, a :class:`matplotlib.figure.Figure` built directly (no pyplot state), so they
work under any backend, in tests (Agg) and in notebooks alike, and display themselves as a PNG when a notebook cell
returns one. Colours come from the outcome taxonomy in data/outcomes.toml; the fallback below only covers outcomes the
taxonomy does not list.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lanelab.findings import frame as an
from lanelab.wire.classify import OutcomeClass, load_taxonomy

__all__ = ["CHANGE_GROUPS", "Chart", "cell_text", "changes_chart", "effects_chart", "headroom_chart", "heatmap", "palette", "short_labels", "text_colour", "to_png",
           "usage_chart"]

#: Okabe–Ito, then Paul Tol's muted set: colour-blind-safe fallbacks for outcomes without a colour of their own.
FALLBACK_PALETTE = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
)
EMPTY_COLOUR = "#F2F2F2"
#: Inches per heatmap cell; the figure grows with the number of cells so labels stay legible.
CELL_W, CELL_H = 1.05, 0.62


class Chart(Figure):
    """A matplotlib Figure that a notebook shows inline (as PNG) when a cell returns it, with no pyplot set-up."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def _classes() -> dict[str, OutcomeClass]:
    return {c.id: c for c in load_taxonomy().classes}


def _short_label(outcome_id: str) -> str:
    """A cell-sized label for an outcome the taxonomy does not know (it has its own short labels)."""
    words = outcome_id.split("_")
    return outcome_id if len(outcome_id) <= 12 else "_".join(w[:5] for w in words)[:14]


def palette(outcomes: Sequence[str]) -> dict[str, str]:
    """A colour for each outcome: the taxonomy's own, else a colour-blind-safe fallback, stable per outcome order."""
    classes = _classes()
    out, spare = {}, iter(FALLBACK_PALETTE * 3)
    for o in outcomes:
        colour = classes[o].colour if o in classes and classes[o].colour else None
        out[o] = colour or next(spare)
    return out


def short_labels(outcomes: Sequence[str]) -> dict[str, str]:
    """A cell-sized label for each outcome: the taxonomy's short label, else a clipped form of the id."""
    classes = _classes()
    return {o: (classes[o].short if o in classes else _short_label(o)) for o in outcomes}


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def cell_text(status: float | None, outcome: str, width: int = 14) -> str:
    """A heatmap square's text: the status, then the outcome in plain words (the taxonomy's label without a repeated
    status), wrapped to two short lines."""
    st = "—" if status is None or pd.isna(status) else str(int(status))
    label = an.outcome_label(outcome)
    if label.startswith(st + " "):
        label = label[len(st) + 1:]
    lines = textwrap.wrap(label, width)[:2] or [""]
    if len(textwrap.wrap(label, width)) > 2:
        lines[-1] = _clip(lines[-1] + " …", width)
    return "\n".join([st, *lines])


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (relative luminance)."""
    r, g, b = to_rgb(background)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def heatmap(df: pd.DataFrame, rows: str, cols: str, where: Mapping[str, str] | None = None,
            title: str | None = None) -> Chart:
    """Outcome by two factors (the results matrix as a picture).

    Each square is coloured by outcome class and labelled with the status and a short outcome (``*`` when its cells
    disagree), with a legend of the classes shown; the figure grows with the number of squares.

    Returns:
        The :class:`Chart`.

    Raises:
        UserError: ``rows``, ``cols`` or a ``where`` key is not a column of the table.
    """
    g = an.grid(df, rows, cols, where)
    row_levels = [v for v in an.level_order(df, rows) if v in set(g[rows].astype(str))]
    col_levels = [v for v in an.level_order(df, cols) if v in set(g[cols].astype(str))]
    present = [o for o in df["outcome"].cat.categories if o in set(g["outcome"].astype(str))]
    colours = palette(present)
    nr, nc = max(len(row_levels), 1), max(len(col_levels), 1)
    longest_row = max((len(str(v)) for v in row_levels), default=4)
    fig = Chart(figsize=(max(6.0, 0.09 * longest_row + CELL_W * nc + 3.2), max(3.0, CELL_H * nr * 1.3 + 2.2)),
                 layout="constrained")
    ax = fig.add_subplot()
    image = [[to_rgb(EMPTY_COLOUR)] * nc for _ in range(nr)]
    font = 8 if nc <= 12 else 7
    for rec in g.to_dict("records"):
        i, j = row_levels.index(str(rec[rows])), col_levels.index(str(rec[cols]))
        colour = colours[str(rec["outcome"])]
        image[i][j] = to_rgb(colour)
        label = cell_text(rec["status"], str(rec["outcome"])) + (" *" if rec["mixed"] else "")
        ax.text(j, i, label, ha="center", va="center", fontsize=font, color=text_colour(colour))
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(col_levels)), labels=col_levels, rotation=30 if nc > 3 else 0,
                  ha="right" if nc > 3 else "center")
    ax.set_yticks(range(len(row_levels)), labels=row_levels)
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    ax.set_xticks([x - 0.5 for x in range(1, nc)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, nr)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    fixed = ", ".join(f"{k}={v}" for k, v in (where or {}).items())
    ax.set_title(title or f"Outcome by {rows} and {cols}" + (f" ({fixed})" if fixed else ""))
    handles = [Patch(facecolor=colours[o], edgecolor="#555555", label=an.outcome_label(o)) for o in present]
    ax.legend(handles=handles, title="outcome", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title_fontsize=9, frameon=False)
    return fig


def effects_chart(effects: pd.DataFrame,
                  title: str = "What moves the request between lanes when changed on its own") -> Chart:
    """Ranked bars from :func:`~lanelab.findings.frame.factor_effects`, in two panels that share the factor axis:
    on the left, how many pairs of requests that differ in this factor alone land one on the plan and the other not
    (moves onto or off the plan: the billing verdict); on the right, how many end differently in another way (one
    refusal or error for another). Factors keep the ranking of ``effects`` (lane moves first), top to bottom.

    Returns:
        The :class:`Chart` (saying so when no two requests differ in one factor alone).
    """
    n = max(len(effects), 1)
    fig = Chart(figsize=(9.5, max(2.4, 0.42 * n + 1.6)), layout="constrained")
    if effects.empty:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "No two requests in this run differ in one factor alone,\nso no factor's effect can be "
                "isolated.", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    ax_lane, ax_other = fig.subplots(1, 2, sharey=True)
    order = effects.iloc[::-1]
    factors = [str(f) for f in order["factor"]]
    pairs = [int(p) for p in order["pairs"]]
    lane = [int(x) for x in order["lane_flips"]]
    other = [int(x) for x in (order["other_flips"] if "other_flips" in order else order["flips"] - order["lane_flips"])]
    top = max(pairs) * 1.22 + 0.5
    for ax, counts, colour, heading in (
            (ax_lane, lane, "#009E73", "moves onto or off the plan"),
            (ax_other, other, "#999999", "other outcome changes\n(one refusal or error for another)")):
        ax.barh(factors, pairs, color="#EEEEEE", edgecolor="#DDDDDD")
        bars = ax.barh(factors, counts, color=colour)
        for bar, c, p in zip(bars, counts, pairs):
            ax.text(p + 0.15, bar.get_y() + bar.get_height() / 2, f"{c} of {p}", va="center", fontsize=8)
        ax.set_xlim(0, top)
        ax.set_title(heading, fontsize=10)
        ax.set_xlabel("pairs of requests differing in this factor alone")
    fig.suptitle(title)
    return fig


#: Outcome groups of :func:`changes_chart`, in display order.
CHANGE_GROUPS = ("billed to the plan", "ends differently", "ends like the request as sent")


def changes_chart(df: pd.DataFrame, baseline: str, max_rows: int = 60) -> Chart:
    """Every single change from the request as sent (a one-factor-at-a-time run) and how it ended, ranked: the
    changes that get the request billed to the plan first, then those that end differently, then those that end
    like the request as sent. Each bar is coloured by outcome and labelled with the status and the outcome in words.

    Returns:
        The :class:`Chart`.

    Raises:
        NotFound: ``baseline`` is not a cell of the table.
    """
    changes = an.flips_from_baseline(df, baseline, all_changes=True)
    base = df[df["cell_id"] == baseline].iloc[0]
    rank = [0 if on else (1 if o != str(base["outcome"]) else 2)
            for on, o in zip((an.on_plan(o, ln, s) for o, ln, s in
                              zip(changes["outcome"], changes["lane"], changes["status"])), changes["outcome"])]
    changes = changes.assign(group=rank).sort_values(["group"], kind="stable").head(max_rows)
    rows = [(f"as sent ({base['profile']})", str(base["outcome"]), base["status"], -1)] + [
        (f"{f} = {lv}", str(o), s, g) for f, lv, o, s, g in
        zip(changes["factor"], changes["level"], changes["outcome"], changes["status"], changes["group"])]
    present = list(dict.fromkeys(o for _, o, _, _ in rows))
    colours = palette(present)
    n = len(rows)
    fig = Chart(figsize=(9.5, max(2.6, 0.28 * n + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    for y, (label, outcome, status, group) in zip(ys, rows):
        colour = colours[outcome]
        ax.barh(y, 1, color=colour, edgecolor="#333333" if group == -1 else colour, linewidth=1.5 if group == -1 else 0)
        ax.text(0.02, y, an.status_and_outcome(status, outcome), va="center", ha="left", fontsize=8,
                color=text_colour(colour))
    ax.set_yticks(ys, labels=[_clip(r[0], 48) for r in rows], fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, n - 0.4)
    for spine in ("top", "right", "bottom"):
        ax.spines[spine].set_visible(False)
    groups = [g for _, _, _, g in rows]
    for g in (1, 2):  # a thin line between the groups
        if g in groups and any(x < g for x in groups if x >= 0):
            k = groups.index(g)
            ax.axhline(ys[k] + 0.5, color="#222222", linewidth=1.2, zorder=3)
    counts = {i: groups.count(i) for i in range(3)}
    said = [f"{counts[i]} {CHANGE_GROUPS[i] if counts[i] == 1 else CHANGE_GROUPS[i].replace('ends ', 'end ')}"
            for i in range(3)]  # "1 ends like …", "7 end like …"
    ax.set_title(f"Each change on its own: {', '.join(said)}", fontsize=10)
    return fig


def headroom_chart(df: pd.DataFrame, max_rows: int = 60) -> Chart:
    """Per cell (the first ``max_rows``): the outcome (coloured mark) beside the plan's 5-hour and 7-day utilization
    from the unified headers, the picture behind "my plan is unused, yet…".

    Returns:
        The :class:`Chart`.
    """
    lanes = an.lane_signals(df).head(max_rows)
    present = [o for o in df["outcome"].cat.categories if o in set(lanes["outcome"].astype(str))]
    colours = palette(present)
    n = max(len(lanes), 1)
    fig = Chart(figsize=(10.5, max(2.6, 0.3 * n + 1.6)), layout="constrained")
    ax_o, ax_u = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [1, 3]})
    ys = list(range(n))[::-1][: len(lanes)]
    many_runs = df["run_id"].nunique() > 1
    runs = df["run_id"].head(max_rows).tolist()
    labels = [f"{(r + ': ') if many_runs else ''}{_clip(lb, 64)} [{'—' if pd.isna(s) else int(s)}]"
              for r, lb, s in zip(runs, lanes["label"], lanes["status"])]
    ax_o.scatter([0] * len(lanes), ys, c=[colours[str(o)] for o in lanes["outcome"]], marker="s", s=120,
                 edgecolors="#555555")
    ax_o.set_yticks(ys, labels=labels, fontsize=7)
    ax_o.set_xticks([])
    ax_o.set_xlim(-0.5, 0.5)
    ax_o.set_title("outcome")
    h = 0.38
    u5 = [0.0 if pd.isna(v) else 100 * v for v in lanes["util_5h"]]
    u7 = [0.0 if pd.isna(v) else 100 * v for v in lanes["util_7d"]]
    ax_u.barh([y + h / 2 for y in ys], u5, height=h, color="#56B4E9", label="5-hour window")
    ax_u.barh([y - h / 2 for y in ys], u7, height=h, color="#E69F00", label="7-day window")
    for y, a, b in zip(ys, lanes["util_5h"], lanes["util_7d"]):
        if pd.isna(a) and pd.isna(b):
            ax_u.text(1, y, "the response said nothing about the plan windows", va="center", fontsize=7,
                      color="#555555")
        else:
            ax_u.text(max(u for u in (a, b) if not pd.isna(u)) * 100 + 1, y,
                      " / ".join("—" if pd.isna(u) else f"{u:.0%}" for u in (a, b)), va="center", fontsize=7)
    ax_u.set_xlim(0, 105)
    ax_u.axvline(100, color="#999999", linestyle="--", linewidth=1)
    ax_u.set_xlabel("% of the plan window used (the rest is headroom)")
    ax_u.set_title("% of each plan window used: nearly empty bars are an unused plan")
    ax_u.legend(loc="lower right", fontsize=8, frameon=False)
    handles = [Patch(facecolor=colours[o], edgecolor="#555555", label=an.outcome_label(o)) for o in present]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, max(len(handles), 1)), fontsize=8,
               frameon=False)
    fig.suptitle("Outcome beside the plan's headroom (% of each plan window used, from the response headers)")
    return fig


def usage_chart(usage: pd.DataFrame) -> Chart | None:
    """How much of each plan window the usage endpoint reported used, before and after a run (from
    :func:`~lanelab.findings.frame.usage_snapshots`): percent fields only, on one percent axis. Money (extra usage's
    limit and credits) is never drawn on it; the report shows it in a table in its currency.

    Returns:
        The :class:`Chart`, or None when no percent field has a number on both sides (no snapshots).
    """
    if usage.empty or "unit" not in usage:
        return None
    num = usage[[u in (an.UNIT_PERCENT, an.UNIT_PERCENT_LIMIT) and _number(b) and _number(a)
                 for u, b, a in zip(usage["unit"], usage["before"], usage["after"])]]
    if num.empty:
        return None
    fig = Chart(figsize=(8, max(2.4, 0.45 * len(num) + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(num)))[::-1]
    h = 0.38
    ax.barh([y + h / 2 for y in ys], list(num["before"]), height=h, color="#999999", label="before")
    ax.barh([y - h / 2 for y in ys], list(num["after"]), height=h, color="#0072B2", label="after")
    for y, b, a in zip(ys, num["before"], num["after"]):
        ax.text(max(a, b) + 1, y, f"{b:.3g} % → {a:.3g} %", va="center", fontsize=7)
    labels = [w.split(":")[0] + (" (of the monthly limit)" if u == an.UNIT_PERCENT_LIMIT else "")
              for w, u in zip(num["what"], num["unit"])]
    ax.set_yticks(ys, labels=labels, fontsize=8)
    top = float(max(num["after"].max(), num["before"].max()))
    ax.set_xlim(0, max(135.0, top * 1.35))  # room for a bar's label ("100 % → 100 %") inside the axes, off the legend
    if top <= 100:
        ax.set_xticks(range(0, 101, 20))  # (no tick past 100 % used)
    ax.set_xlabel("% used")
    ax.set_title("Usage endpoint before and after the run (% of each window used)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not pd.isna(x)


def to_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for inline reports and files next to the Markdown).

    Returns:
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
