"""The questions asked of the tidy run table: the cells, outcome by factor, the results matrix, minimal pairs (and the
single changes from a baseline), factor effects, lane signals, usage snapshots and run-to-run comparison.

Every function takes the one table built by :func:`lanelab.runs.tidy` (``run.to_frame()``) and returns a pandas
DataFrame, so a finding is always traceable to the rows, and the cell ids, that support it. Notebooks call::

    df = load_run(path).to_frame()
    cell_results(df)                   # one row per cell: levels, status, outcome, lane, message
    outcome_by_factor(df)              # how many cells landed in each outcome, per factor level
    flips_from_baseline(df, cell_id)   # the single changes from the baseline that change its outcome
    factor_effects(df)                 # factors ranked by how often changing them alone flips the outcome
    matrix(df, rows, cols)             # outcome by two factors
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

import pandas as pd

from lanelab.errors import InputError, NotFound, UserError
from lanelab.runs import DEFAULT_LEVEL, Run

__all__ = [
    "ASPECT_AUTH", "ASPECT_BETA", "ASPECT_BODY", "ASPECT_CLIENT", "ASPECT_CREDENTIAL", "ASPECT_ENDPOINT",
    "ASPECT_HEADERS", "ASPECT_NONE", "AS_SENT", "BASELINE_LEVEL", "CELL_COLUMNS", "CHANGE_COLUMNS", "EFFECT_COLUMNS",
    "LANE_COLUMNS", "PAIR_COLUMNS", "RESULT_COLUMNS", "UNIT_PERCENT", "UNIT_PERCENT_LIMIT", "baseline_cell", "baseline_verdict", "cell_label",
    "cell_results", "change_label", "compare_runs", "factor_effects", "factors_of", "flips_from_baseline",
    "grid", "lane_label", "lane_signals", "level_order", "matrix", "minimal_pairs", "on_plan",
    "outcome_by_factor", "outcome_label", "records", "said", "spec_aspects", "status_and_outcome", "usage_snapshots", "varying_factors",
]

#: Which part of a request a factor changes, read from the specs of a minimal pair (see :func:`spec_aspects`).
ASPECT_ENDPOINT = "endpoint"
ASPECT_BETA = "beta header"
ASPECT_CLIENT = "client identifier"
ASPECT_CREDENTIAL = "credential"
ASPECT_AUTH = "auth style"
ASPECT_BODY = "body"
ASPECT_HEADERS = "other headers"
#: What :func:`spec_aspects` reports when two cells sent the same request (the level changed nothing on the wire).
ASPECT_NONE = "no difference in the request sent"
_CLIENT_HEADERS = frozenset({"user-agent", "x-app"})


# --------------------------------------------------------------------------------------------------------------------
# Factors and cells


def factors_of(df: pd.DataFrame) -> list[str]:
    """The factor columns of a tidy table (``df.attrs["factors"]``; empty for any other frame)."""
    return list(df.attrs.get("factors") or [])


def varying_factors(df: pd.DataFrame) -> list[str]:
    """Factors with more than one level in the table, most levels first."""
    fs = [f for f in factors_of(df) if df[f].nunique() > 1]
    return sorted(fs, key=lambda f: -df[f].nunique())


def level_order(df: pd.DataFrame, factor: str) -> list[str]:
    """The levels of ``factor`` as text, in first-seen order with :data:`~lanelab.runs.DEFAULT_LEVEL` first."""
    seen = list(dict.fromkeys(df[factor].astype(str)))
    return sorted(seen, key=lambda v: (v != DEFAULT_LEVEL, seen.index(v)))


#: The level every catalogued factor has: the request as the profile sends it (data/factors.toml).
BASELINE_LEVEL = "profile"


@lru_cache(maxsize=1)
def _baseline_levels() -> dict[str, str]:
    """Each catalogued factor's baseline level ("as the profile sends it"), from data/factors.toml."""
    try:
        from lanelab.matrix.factors import load_factors

        return {name: f.baseline for name, f in load_factors().items()}
    except (UserError, OSError, ValueError):  # a report must still render when the catalogue cannot be read
        return {}


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a table as dicts keyed by column name (the kit's tables name every column with a string)."""
    return cast("list[dict[str, Any]]", df.to_dict("records"))


def cell_label(row: Mapping[str, Any], factors: Sequence[str]) -> str:
    """A short human label for a cell: the levels that differ from the catalogue's baseline (``profile``, the request
    as the profile sends it, for a factor the catalogue does not list), or 'baseline'."""
    baselines = _baseline_levels()
    parts = [f"{f}={row[f]}" for f in factors
             if row.get(f) not in (None, DEFAULT_LEVEL) and row.get(f) != baselines.get(f, BASELINE_LEVEL)]
    return ", ".join(parts) or "baseline"


#: What :func:`change_label` calls the cell that changes nothing (the request as the profile sends it).
AS_SENT = "as sent"


def said(value: Any) -> str:
    """A table cell's text: empty where nothing was said (never NaN or None in a notebook's table)."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def change_label(row: Mapping[str, Any], factors: Sequence[str]) -> str:
    """What a cell changed, in the words of a results table: ``tools=mcp__`` (several joined by ", "), or "as sent"
    for the request as the profile sends it."""
    label = cell_label(row, factors)
    return AS_SENT if label == "baseline" else label


def baseline_cell(df: pd.DataFrame, run_id: str | None = None) -> str | None:
    """The cell that sends the request as the profile does (every factor at its baseline level).

    Returns:
        Its cell id (the first such cell of ``run_id``, or of the first run that has one), or None when no cell of
        the table is the unchanged request.
    """
    fs = factors_of(df)
    sub = df if run_id is None else df[df["run_id"] == run_id]
    for r in records(sub):
        if cell_label(r, fs) == "baseline":
            return str(r["cell_id"])
    return None


#: The columns of ``cell_results(df, wide=True)`` around the factor columns.
CELL_COLUMNS = ("cell_id", "status", "outcome", "lane", "error_message", "request_id")
#: The columns of :func:`cell_results` (a run_id column leads when the table holds several runs).
RESULT_COLUMNS = ("cell_id", "change", "status", "outcome", "lane", "message")

#: How a billing lane reads in a table (the run store keeps the ids of lanelab.wire.unified).
_LANE_WORDS = {"plan": "plan", "extra_usage": "extra usage", "api": "API key", "none": "none reported",
               "unknown": "unknown"}


def outcome_label(outcome: Any) -> str:
    """An outcome id in plain words: the taxonomy's label (data/outcomes.toml), else the id with spaces."""
    labels = _outcome_labels()
    return labels.get(str(outcome)) or str(outcome).replace("_", " ")


@lru_cache(maxsize=1)
def _outcome_labels() -> dict[str, str]:
    try:
        from lanelab.wire.classify import load_taxonomy

        return {c.id: c.label for c in load_taxonomy().classes}
    except (UserError, OSError, ValueError):  # a table must still render when the taxonomy cannot be read
        return {}


def status_and_outcome(status: Any, outcome: Any) -> str:
    """A status and an outcome in words, without saying the status twice: "400 out of extra usage",
    "200 · Served, billed to the plan", "no response · Connection failed"."""
    label = outcome_label(outcome)
    st = "no response" if status is None or pd.isna(status) else str(int(status))
    return label if label.startswith(st + " ") else f"{st} · {label}"


def lane_label(lane: Any) -> str:
    """A billing lane id in plain words ("extra_usage" → "extra usage"; an unknown id as it is)."""
    return _LANE_WORDS.get(str(lane), str(lane))


def cell_results(df: pd.DataFrame, wide: bool = False) -> pd.DataFrame:
    """The results, one row per cell: what was changed, and what came back.

    Returns:
        A DataFrame with :data:`RESULT_COLUMNS`: the cell id, what the cell changed from the request as the profile
        sends it (``tools=mcp__``, or "as sent"), the HTTP status, the outcome and the billing lane in plain words,
        and the server's message verbatim; a run_id column leads when the table holds several runs. With ``wide``,
        the factor levels as columns instead, with the outcome and lane ids, the message and the request id.
    """
    _table(df)
    lead = ["run_id"] if df["run_id"].nunique() > 1 else []
    if wide:
        return df[[*lead, CELL_COLUMNS[0], *factors_of(df), *CELL_COLUMNS[1:]]].reset_index(drop=True)
    fs = factors_of(df)
    out = df[lead + ["cell_id"]].copy()
    out["change"] = [change_label(r, fs) for r in records(df)]
    out["status"] = df["status"]
    out["outcome"] = [outcome_label(o) for o in df["outcome"]]
    out["lane"] = [lane_label(x) for x in df["lane"]]
    out["message"] = df["error_message"].fillna("")
    return out.reset_index(drop=True)


def outcome_by_factor(df: pd.DataFrame, factors: Sequence[str] | None = None) -> pd.DataFrame:
    """How many cells landed in each outcome, for every level of every factor.

    Returns:
        A DataFrame indexed by (factor, level), levels in :func:`level_order`, with one column per outcome seen (in
        the taxonomy's order) holding cell counts.

    Raises:
        UserError: a factor in ``factors`` is not a column of the table.
    """
    _table(df)
    fs = list(factors) if factors is not None else factors_of(df)
    _require_columns(df, fs)
    outcomes = [o for o in df["outcome"].cat.categories if o in set(df["outcome"].astype(str))]
    parts = []
    for f in fs:
        counts = pd.crosstab(df[f].astype(str), df["outcome"].astype(str))
        counts = counts.reindex(index=level_order(df, f), columns=outcomes, fill_value=0)
        parts.append(counts.set_axis(pd.MultiIndex.from_product([[f], counts.index], names=["factor", "level"])))
    table = pd.concat(parts) if parts else pd.DataFrame(columns=outcomes)
    table.columns.name = "outcome"
    return table


# --------------------------------------------------------------------------------------------------------------------
# Results matrix


def _table(df: Any) -> None:
    """Refuse anything but the runs' tidy table (:func:`lanelab.runs.tidy`, ``run.to_frame()``) in a sentence."""
    if not isinstance(df, pd.DataFrame) or not {"cell_id", "run_id", "outcome"} <= set(df.columns):
        found = type(df).__name__ if not isinstance(df, pd.DataFrame) else "a table without the runs' columns"
        raise InputError(f"This takes the runs' table (tidy(runs) or run.to_frame()); found {found}.",
                         "e.g. df = lanelab.runs.tidy(lanelab.runs.load_runs(paths)).")


def _require_columns(df: pd.DataFrame, names: Sequence[str]) -> None:
    for name in names:
        if name not in df.columns:
            raise UserError(f"The run has no factor {name!r}.",
                            hint=f"Choose among: {', '.join(factors_of(df)) or '(none)'}.")


def _filtered(df: pd.DataFrame, where: Mapping[str, str] | None) -> pd.DataFrame:
    for k, v in (where or {}).items():
        if k not in df.columns:
            raise UserError(f"Cannot filter on {k!r}: the run has no such column.",
                            hint=f"Pick one of the factors: {', '.join(factors_of(df)) or '(none)'}.")
        df = df[df[k].astype(str) == str(v)]
    return df


def grid(df: pd.DataFrame, rows: str, cols: str, where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Outcome by two factors, long form (the heatmap's data).

    Returns:
        A DataFrame with one line per (row level, column level): the dominant outcome, its most common status, how
        many cells fell there (``n``), whether they disagree (``mixed``) and the supporting ``cell_ids``. ``where``
        keeps only the cells whose columns have the given values.

    Raises:
        UserError: ``rows``, ``cols`` or a ``where`` key is not a column of the table.
    """
    _table(df)
    _require_columns(df, [rows, cols])
    sub = _filtered(df, where)
    out = []
    for (r, c), g in sub.groupby([rows, cols], sort=False, observed=True):
        counts = g["outcome"].astype(str).value_counts()
        top = str(counts.index[0])
        statuses = g.loc[g["outcome"].astype(str) == top, "status"].dropna()
        out.append({rows: r, cols: c, "outcome": top,
                    "status": int(statuses.mode().iloc[0]) if len(statuses) else None,
                    "n": len(g), "mixed": len(counts) > 1, "cell_ids": sorted(set(g["cell_id"].astype(str)))})
    res = pd.DataFrame(out, columns=[rows, cols, "outcome", "status", "n", "mixed", "cell_ids"])
    res["outcome"] = pd.Categorical(res["outcome"], categories=df["outcome"].cat.categories, ordered=True)
    return res


def matrix(df: pd.DataFrame, rows: str, cols: str, where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The results matrix as a table.

    Returns:
        A DataFrame indexed by the levels of ``rows`` with one column per level of ``cols``; each cell reads
        ``status · outcome`` (``*`` marks disagreeing cells), empty where no cell was sent.

    Raises:
        UserError: as :func:`grid`.
    """
    _table(df)
    g = grid(df, rows, cols, where)
    g["text"] = [f"{'' if s is None or pd.isna(s) else int(s)} · {o}{' *' if m else ''}".strip(" ·")
                 for s, o, m in zip(g["status"], g["outcome"].astype(str), g["mixed"])]
    table = g.pivot(index=rows, columns=cols, values="text")
    table = table.reindex(index=[v for v in level_order(df, rows) if v in table.index],
                          columns=[v for v in level_order(df, cols) if v in table.columns])
    return table.fillna("")


# --------------------------------------------------------------------------------------------------------------------
# Minimal pairs, single changes from a baseline, factor effects


def spec_aspects(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> set[str]:
    """Which parts of a request differ between two stored specs.

    Returns:
        A set of ``ASPECT_*`` names (endpoint, beta header, client identifier, other headers, body, auth style,
        credential); empty when the specs agree.
    """
    a, b = dict(a or {}), dict(b or {})
    out: set[str] = set()
    if (a.get("method"), a.get("path"), a.get("query") or {}) != (b.get("method"), b.get("path"), b.get("query") or {}):
        out.add(ASPECT_ENDPOINT)
    ha, hb = a.get("headers") or {}, b.get("headers") or {}
    for key in set(ha) | set(hb):
        if ha.get(key) != hb.get(key):
            k = key.lower()
            out.add(ASPECT_BETA if k == "anthropic-beta" else ASPECT_CLIENT if k in _CLIENT_HEADERS else ASPECT_HEADERS)
    if a.get("body") != b.get("body"):
        out.add(ASPECT_BODY)
    if a.get("auth") != b.get("auth"):
        out.add(ASPECT_AUTH)
    if a.get("credential") != b.get("credential"):
        out.add(ASPECT_CREDENTIAL)
    return out


def on_plan(outcome: Any, lane: Any, status: Any) -> bool:
    """True when an observation was served and billed to the plan."""
    served = status is not None and not pd.isna(status) and 200 <= int(status) < 300
    return str(outcome) == "served_plan" or (served and lane == "plan")


PAIR_COLUMNS = ("factor", "level_a", "level_b", "cell_a", "cell_b", "outcome_a", "outcome_b", "status_a",
                "status_b", "lane_a", "lane_b", "flips", "lane_flips", "aspects", "run_id")


def _pair(f: str, ra: Mapping[str, Any], rb: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "factor": f, "level_a": ra[f], "level_b": rb[f], "cell_a": ra["cell_id"], "cell_b": rb["cell_id"],
        "outcome_a": str(ra["outcome"]), "outcome_b": str(rb["outcome"]),
        "status_a": ra["status"], "status_b": rb["status"], "lane_a": ra["lane"], "lane_b": rb["lane"],
        "flips": str(ra["outcome"]) != str(rb["outcome"]),
        "lane_flips": on_plan(ra["outcome"], ra["lane"], ra["status"]) != on_plan(rb["outcome"], rb["lane"], rb["status"]),
        "aspects": ", ".join(sorted(spec_aspects(ra["spec"], rb["spec"]))) or ASPECT_NONE,
        "run_id": ra["run_id"],
    }


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


#: One key for every kind of missing value, so that missing levels group together as pandas' dropna=False does.
_MISSING_KEY = ("<missing>",)


def _group_key(value: Any) -> Any:
    return _MISSING_KEY if _missing(value) else value


def minimal_pairs(df: pd.DataFrame, factor: str | None = None, baseline: str | None = None,
                  same_requests: bool = True) -> pd.DataFrame:
    """Pairs of cells in the same run and profile that differ in one factor alone (with ``same_requests=False``, only
    those that sent different requests: a level that sends the very request of the other says nothing of a change).

    With ``baseline`` (a cell id), only the pairs that contain that cell, with the baseline always as side ``a``:
    the single changes from the baseline. Otherwise every pair, side ``a`` holding the level that comes first in
    :func:`level_order`.

    Returns:
        A DataFrame with :data:`PAIR_COLUMNS`: the factor, both levels, cells, outcomes, statuses and lanes;
        ``flips`` (the outcomes differ), ``lane_flips`` (one is served on the plan and the other not) and ``aspects``
        (what the factor changed on the wire, read from the two stored specs, so a factor named anything is still
        recognised as an endpoint, beta or client-id change).

    Raises:
        NotFound: ``baseline`` is not a cell of the table.
        UserError: ``factor`` is not a column of the table.
    """
    _table(df)
    factors = factors_of(df)
    if baseline is not None and baseline not in set(df["cell_id"]):
        raise NotFound(f"The run has no cell {baseline!r}.", "Was the baseline cell sent? Pass its cell id.")
    if factor is not None:
        _require_columns(df, [factor])
    # Grouped in plain Python over the records (pandas' groupby costs about a millisecond per group, and a report
    # asks for every factor's groups): the same groups, in the same first-seen order, missing values grouped together.
    rows = records(df)
    out: list[dict[str, Any]] = []
    for f in [factor] if factor else factors:
        others = ["run_id", "profile", *[x for x in factors if x != f]]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(_group_key(r.get(c)) for c in others), []).append(r)
        for recs in groups.values():
            if len({_group_key(r[f]) for r in recs if not _missing(r[f])}) < 2:
                continue
            if baseline is not None:
                base = next((r for r in recs if r["cell_id"] == baseline), None)
                combos = [] if base is None else [(base, r) for r in recs if r[f] != base[f]]
            else:
                seen = list(dict.fromkeys(str(r[f]) for r in recs))  # level_order, on the group's records
                rank = {v: i for i, v in enumerate(sorted(seen, key=lambda v: (v != DEFAULT_LEVEL, seen.index(v))))}
                combos = [(ra, rb) if rank[str(ra[f])] <= rank[str(rb[f])] else (rb, ra)
                          for ra, rb in itertools.combinations(recs, 2) if ra[f] != rb[f]]
            out.extend(_pair(f, ra, rb) for ra, rb in combos)
    pairs = pd.DataFrame(out, columns=list(PAIR_COLUMNS))
    return pairs if same_requests else pairs[pairs["aspects"] != ASPECT_NONE]


#: The columns of :func:`flips_from_baseline`.
CHANGE_COLUMNS = ("factor", "level", "baseline_level", "cell_id", "status", "outcome", "lane", "baseline_outcome",
                  "onto_plan", "aspects", "run_id")


def flips_from_baseline(df: pd.DataFrame, baseline: str, all_changes: bool = False) -> pd.DataFrame:
    """The single changes from the baseline cell that change its outcome (an OFAT run's answer sheet).

    A single change is a cell that differs from ``baseline`` in exactly one factor (a minimal pair with it, see
    :func:`minimal_pairs`) and sent a different request (a level that sends the very request as sent, such as
    ``auth=bearer`` for a client that sends Bearer, is no change); ``all_changes=True`` keeps those that end like the
    baseline too.

    Returns:
        A DataFrame with :data:`CHANGE_COLUMNS`, sorted by factor and level: the factor, its changed level and the
        baseline's, the changed cell's id, status, outcome and lane, the baseline's outcome, ``onto_plan`` (the
        change turns a baseline that was not served on the plan into one that is) and ``aspects`` (what changed on
        the wire).

    Raises:
        NotFound: ``baseline`` is not a cell of the table.
    """
    _table(df)
    p = minimal_pairs(df, baseline=baseline, same_requests=False)  # a level sending the request as sent: no change
    if not all_changes:
        p = p[p["flips"]]
    changes = pd.DataFrame({
        "factor": p["factor"], "level": p["level_b"], "baseline_level": p["level_a"], "cell_id": p["cell_b"],
        "status": p["status_b"], "outcome": p["outcome_b"], "lane": p["lane_b"], "baseline_outcome": p["outcome_a"],
        "onto_plan": [bool(lf) and on_plan(o, ln, s)
                      for lf, o, ln, s in zip(p["lane_flips"], p["outcome_b"], p["lane_b"], p["status_b"])],
        "aspects": p["aspects"], "run_id": p["run_id"],
    }, columns=list(CHANGE_COLUMNS))
    return changes.sort_values(["factor", "level"], key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)


def baseline_verdict(df: pd.DataFrame, baseline: str) -> str:
    """One Markdown sentence: how the baseline cell ended, and which single changes turn it into a plan-billed 200.

    Returns:
        The sentence, naming the profile, the policy (or host) and each ``factor=level`` that moves the request onto
        the plan ("none" when no single change does).

    Raises:
        NotFound: ``baseline`` is not a cell of the table.
    """
    changes = flips_from_baseline(df, baseline)
    base = df[df["cell_id"] == baseline].iloc[0]
    status = "no response" if pd.isna(base["status"]) else f"HTTP {int(base['status'])}"
    where = f"policy `{base['policy']}`" if base["mode"] != "live" else "the live API"
    onto = changes[changes["onto_plan"]]
    named = ", ".join(f"`{f}={lv}`" for f, lv in zip(onto["factor"], onto["level"])) or "**none**"
    return (f"Baseline ({base['profile']} as sent): **{base['outcome']}** ({status}). Single changes that turn it "
            f"into a plan-billed 200 under {where}: {named}.")


#: The columns of :func:`factor_effects`.
EFFECT_COLUMNS = ("factor", "pairs", "flips", "lane_flips", "other_flips", "flip_rate", "transitions", "cells",
                  "aspects")


def factor_effects(df: pd.DataFrame) -> pd.DataFrame:
    """Factors ranked by how often changing them alone moves a request onto or off the plan, then by how often it
    changes the outcome in other ways, with the supporting cells.

    A *pair* is two cells of the same run and profile that differ in this factor alone (see :func:`minimal_pairs`)
    and sent different requests (two cells that sent the very same request say nothing about a change).

    Returns:
        A DataFrame with :data:`EFFECT_COLUMNS`: factor; pairs; flips (pairs whose outcomes differ); lane_flips
        (pairs where one request is served on the plan and the other is not: the billing verdict); other_flips (the
        rest of the flips: one refusal or error for another); flip_rate; transitions (``a→b`` outcome changes seen);
        cells (ids of flipping pairs); aspects (what the factor changes in the request). Ranked by lane_flips, then
        other_flips; factors without a pair are left out.
    """
    _table(df)
    pairs = minimal_pairs(df, same_requests=False)  # two cells that sent the very same request are no pair to weigh
    rows = []
    for f in factors_of(df):
        p = pairs[pairs["factor"] == f]
        if p.empty:
            continue
        flipped = p[p["flips"]]
        transitions = sorted({f"{a}→{b}" for a, b in zip(flipped["outcome_a"], flipped["outcome_b"])})
        cells = list(dict.fromkeys(itertools.chain.from_iterable(zip(flipped["cell_a"], flipped["cell_b"]))))
        aspects = sorted({a.strip() for s in p["aspects"] for a in s.split(",") if a.strip()})
        if len(aspects) > 1 and ASPECT_NONE in aspects:  # some levels send what the profile sends: not news
            aspects.remove(ASPECT_NONE)
        lane = int(p["lane_flips"].sum())
        rows.append({"factor": f, "pairs": len(p), "flips": len(flipped), "lane_flips": lane,
                     "other_flips": len(flipped) - lane, "flip_rate": len(flipped) / len(p),
                     "transitions": "; ".join(transitions), "cells": cells, "aspects": ", ".join(aspects)})
    res = pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
    return res.sort_values(["lane_flips", "other_flips", "flip_rate"], ascending=[False, False, False],
                           kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------------
# Lane signals, usage snapshots, run comparison

LANE_COLUMNS = ("cell_id", "label", "status", "outcome", "lane", "unified_status", "claim", "util_5h", "util_7d",
                "overage_status", "overage_disabled_reason", "request_id")


def lane_signals(df: pd.DataFrame) -> pd.DataFrame:
    """What the server said about the billing lane, per cell, beside the outcome and the plan's headroom.

    Returns:
        A DataFrame with :data:`LANE_COLUMNS` (``label`` is :func:`cell_label`), one row per cell.
    """
    _table(df)
    fs = factors_of(df)
    out = df.copy()
    out["label"] = [change_label(r, fs) for r in records(df)]
    return out[list(LANE_COLUMNS)].reset_index(drop=True)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float, bool, str)) or v is None:
            flat[key] = v
    return flat


#: Plain names of the usage endpoint's windows.
_WINDOWS = {"five_hour": "5-hour window", "seven_day": "7-day window", "seven_day_oauth_apps": "7-day window, apps",
            "seven_day_opus": "7-day window, Opus", "seven_day_sonnet": "7-day window, Sonnet",
            "extra_usage": "extra usage"}
UNIT_PERCENT = "% of the window"
UNIT_PERCENT_LIMIT = "% of the monthly limit"


def _usage_unit(key: str, currency: str | None) -> str:
    """The unit of one usage-endpoint field: windows report percent 0-100 (references/protocol.md, usage), extra
    usage reports money in its currency (named by the endpoint when it says)."""
    head, _, leaf = key.rpartition(".")
    if leaf == "utilization":
        return UNIT_PERCENT_LIMIT if head == "extra_usage" else UNIT_PERCENT
    if head == "extra_usage" and leaf in ("monthly_limit", "used_credits"):
        return currency or "currency not reported"
    return ""


def usage_snapshots(run: Run) -> pd.DataFrame:
    """The usage endpoint before and after a run.

    Returns:
        A DataFrame with one line per field (dotted path): ``what`` (the field in words), before, after, the numeric
        change (None where a value is not a number) and ``unit``: "% of the window" for the plan windows, "% of the
        monthly limit" for extra usage's utilization, the currency for extra usage's money ("currency not
        reported" when the endpoint did not name it), empty for flags and dates. No rows when the run recorded no
        snapshots.
    """
    before = _flatten(run.usage.get("before") or {})
    after = _flatten(run.usage.get("after") or {})
    currency = next((str(v) for k, v in {**before, **after}.items() if k.endswith("currency") and v), None)
    keys = list(dict.fromkeys([*before, *after]))
    rows = []
    for k in keys:
        b, a = before.get(k), after.get(k)
        change = None
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and not isinstance(b, bool):
            change = a - b
        head, _, leaf = k.rpartition(".")
        what = f"{_WINDOWS.get(head, head)}: {leaf.replace('_', ' ')}" if head else leaf.replace("_", " ")
        rows.append({"field": k, "what": what, "before": b, "after": a, "change": change,
                     "unit": _usage_unit(k, currency)})
    return pd.DataFrame(rows, columns=["field", "what", "before", "after", "change", "unit"])


def compare_runs(df: pd.DataFrame, run_a: str | None = None, run_b: str | None = None,
                 changed_only: bool = False) -> pd.DataFrame:
    """The same cell ids in two runs of the table (default: the first two) and what changed between them.

    Returns:
        A DataFrame with cell_id, the factor levels, status/outcome/lane/claim of each run (suffixes ``_a`` and
        ``_b``) and ``change`` ("same", "changed" or "only in <run>"); ``attrs`` holds run_a and run_b. With
        ``changed_only``, the "same" lines are left out.

    Raises:
        UserError: the table holds fewer than two runs and they were not named.
    """
    _table(df)
    ids = list(dict.fromkeys(df["run_id"]))
    if run_a is None or run_b is None:
        if len(ids) < 2:
            raise UserError("Comparing runs needs two runs; this frame has "
                            f"{len(ids)}.", hint="Load two run files (e.g. the same design under two simulator policies).")
        run_a, run_b = run_a or ids[0], run_b or ids[1]
    fs = factors_of(df)
    keep = ["cell_id", *fs, "status", "outcome", "lane", "claim"]
    a = df[df["run_id"] == run_a][keep].drop_duplicates("cell_id", keep="last")
    b = df[df["run_id"] == run_b][["cell_id", "status", "outcome", "lane", "claim"]].drop_duplicates("cell_id", keep="last")
    a["outcome"], b["outcome"] = a["outcome"].astype(str), b["outcome"].astype(str)
    m = a.merge(b, on="cell_id", how="outer", suffixes=("_a", "_b"), indicator=True)
    m["change"] = [
        "only in " + (run_a if ind == "left_only" else run_b) if ind != "both"
        else "same" if (oa, sa, la) == (ob, sb, lb) else "changed"
        for ind, oa, ob, sa, sb, la, lb in zip(m["_merge"], m["outcome_a"], m["outcome_b"], m["status_a"],
                                                m["status_b"], m["lane_a"], m["lane_b"])
    ]
    m = m.drop(columns="_merge")
    m.attrs.update(run_a=run_a, run_b=run_b)
    if changed_only:
        m = m[m["change"] != "same"]
    return m.reset_index(drop=True)
