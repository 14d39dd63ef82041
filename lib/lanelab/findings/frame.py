"""Runs as a tidy table, and the questions asked of it: the results matrix, minimal pairs, factor effects, lane signals,
usage snapshots and run-to-run comparison.

Everything downstream (plots, answers, report, notebook 03) reads the one DataFrame built here, so a finding is always
traceable to the rows, and the cell ids, that support it. One row is one observation; the factor levels are columns;
the outcome is an ordered categorical whose order and colours come from the outcome taxonomy (data/outcomes.toml).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from lanelab import redact
from lanelab.config import Settings, data_dir
from lanelab.errors import NotFound, UserError
from lanelab.runs import load_run
from lanelab.wire.classify import OutcomeClass, load_taxonomy

#: Shown where a cell does not set a factor (designs that list only the levels they change).
DEFAULT_LEVEL = "(default)"

#: Columns every tidy frame has, in display order; the factor columns follow ``profile``.
BASE_COLUMNS = (
    "run_id", "policy", "mode", "cell_id", "profile", "credential", "status", "outcome", "lane",
    "error_type", "error_message", "error_code", "request_id", "latency_ms", "unified_status", "unified_lane", "claim",
    "util_5h", "util_7d", "overage_status", "overage_disabled_reason", "transport_error", "method", "target",
    "sent_at", "spec",
)

#: Which part of a request a factor changes, read from the specs of a minimal pair (see :func:`spec_aspects`).
ASPECT_ENDPOINT = "endpoint"
ASPECT_BETA = "beta header"
ASPECT_CLIENT = "client identifier"
ASPECT_CREDENTIAL = "credential"
ASPECT_AUTH = "auth style"
ASPECT_BODY = "body"
ASPECT_HEADERS = "other headers"
_CLIENT_HEADERS = frozenset({"user-agent", "x-app"})


class RunFileError(NotFound):
    """A run file is missing or unreadable."""

    hint = "Pass the path of a runs/<run_id>.jsonl file written by the matrix runner (notebook 02 or 'lanelab matrix')."


# --------------------------------------------------------------------------------------------------------------------
# Outcome taxonomy (order and colours)


def _short_label(outcome_id: str) -> str:
    """A cell-sized label for an outcome the taxonomy does not know (it has its own short labels)."""
    words = outcome_id.split("_")
    return outcome_id if len(outcome_id) <= 12 else "_".join(w[:5] for w in words)[:14]


def outcome_classes(path: Path | None = None) -> list[OutcomeClass]:
    """The outcome classes in their fixed order, each with its colour (the classifier's taxonomy)."""
    return list(load_taxonomy(path).classes)


def outcome_order(observed: Iterable[str] = ()) -> list[str]:
    """Category order for the outcome column: the taxonomy, then any outcome the data has that it lacks."""
    order = [c.id for c in outcome_classes()]
    for o in observed:
        if isinstance(o, str) and o not in order:
            order.append(o)
    return order


# --------------------------------------------------------------------------------------------------------------------
# Loading runs


@dataclass
class RunData:
    """One run file, as plain records: the header, the cell records, usage snapshots by ``when``, and notes."""

    path: Path
    header: dict[str, Any]
    cells: list[dict[str, Any]]
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: int = 0

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id") or self.path.stem)


def load(path: str | Path) -> RunData:
    """Read one run file (JSON Lines, docs/contracts.md §3.1). A torn last line is skipped and counted."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"No run file at {path}.")
    stored = load_run(path)  # drops a torn last line (reported in warnings) and keeps each cell's latest record
    recs = [dict(stored.header), *stored.cells.values(), *(e for e in stored.entries if e.get("record") != "cell")]
    torn = len(stored.warnings)
    header = next((r for r in recs if r.get("record") == "header"), None)
    if header is None and not any(r.get("record") == "cell" for r in recs):
        raise RunFileError(f"{path} holds no run header and no cell records; is it a lanelab run file?")
    run = RunData(path=path, header=dict(header or {}), cells=[r for r in recs if r.get("record") == "cell"],
                  notes=[r for r in recs if r.get("record") == "note"], torn_lines=torn)
    for r in recs:
        if r.get("record") == "usage" and isinstance(r.get("usage"), dict):
            run.usage[str(r.get("when"))] = r["usage"]
    return run


def load_many(paths: Iterable[str | Path]) -> list[RunData]:
    return [load(p) for p in paths]


def run_paths(settings: Settings | None = None, samples: bool = True) -> list[Path]:
    """Run files under ``Settings.out/runs`` (newest last); the curated samples when there are none."""
    settings = settings or Settings.from_env()
    found = sorted(settings.runs_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime) if settings.runs_dir.is_dir() else []
    if not found and samples:
        found = sorted((data_dir() / "runs" / "samples").glob("*.jsonl"))
    return found


# --------------------------------------------------------------------------------------------------------------------
# The tidy frame


def _factor_names(runs: Sequence[RunData]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for f in run.header.get("factors") or []:
            name = f if isinstance(f, str) else (f.get("name") if isinstance(f, dict) else None)
            if name and name not in names:
                names.append(str(name))
        for cell in run.cells:
            for f in (cell.get("levels") or {}):
                if f not in names:
                    names.append(str(f))
    return names


def _row(run: RunData, cell: Mapping[str, Any], factors: Sequence[str], columns: Mapping[str, str]) -> dict[str, Any]:
    obs = cell.get("observation") or {}
    uni = obs.get("unified") or {}
    spec = cell.get("spec") or {}
    levels = cell.get("levels") or {}
    query = spec.get("query") or {}
    target = (spec.get("path") or "") + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    row = {
        "run_id": run.run_id, "policy": run.header.get("policy"), "mode": run.header.get("mode"),
        "cell_id": cell.get("cell_id"), "profile": cell.get("profile") or run.header.get("profile"),
        "credential": cell.get("credential") or spec.get("credential") or DEFAULT_LEVEL,
        "status": obs.get("status"), "outcome": cell.get("outcome") or "unclassified",
        "lane": cell.get("lane") or "unknown",
        "error_type": obs.get("error_type"), "error_message": obs.get("error_message"),
        "error_code": obs.get("error_code"), "request_id": obs.get("request_id"),
        "latency_ms": obs.get("latency_ms"), "unified_status": uni.get("status"), "unified_lane": uni.get("lane"),
        "claim": uni.get("representative_claim"),
        "util_5h": (uni.get("five_hour") or {}).get("utilization"),
        "util_7d": (uni.get("seven_day") or {}).get("utilization"),
        "overage_status": uni.get("overage_status"), "overage_disabled_reason": uni.get("overage_disabled_reason"),
        "transport_error": obs.get("transport_error"), "method": spec.get("method"), "target": target,
        "sent_at": cell.get("sent_at"), "spec": redact.redact_obj(spec),
    }
    for f in factors:
        row[columns[f]] = str(levels[f]) if f in levels else DEFAULT_LEVEL
    return row


def tidy(runs: RunData | Sequence[RunData]) -> pd.DataFrame:
    """One row per observation: run metadata, cell id, the factor levels as columns, status, ordered outcome, lane,
    the unified-header fields (claim, 5h/7d utilization, overage status and reason), request id and latency.

    ``df.attrs["factors"]`` names the factor columns (a factor whose name clashes with a fixed column is prefixed
    ``factor:``); ``credential`` is added as a factor when it varies and no factor already names it.
    """
    runs = [runs] if isinstance(runs, RunData) else list(runs)
    factors = _factor_names(runs)
    columns = {f: (f"factor:{f}" if f in BASE_COLUMNS else f) for f in factors}
    rows = [_row(run, cell, factors, columns) for run in runs for cell in run.cells]
    factor_cols = [columns[f] for f in factors]
    df = pd.DataFrame(rows, columns=[*BASE_COLUMNS[:5], *factor_cols, *BASE_COLUMNS[5:]])
    df["status"] = df["status"].astype("Int64")
    for col in ("util_5h", "util_7d", "latency_ms"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["outcome"] = pd.Categorical(df["outcome"], categories=outcome_order(df["outcome"].unique()), ordered=True)
    if "credential" not in factors and df["credential"].nunique() > 1:
        factor_cols.append("credential")
    df.attrs["factors"] = factor_cols
    df.attrs["runs"] = [redact.redact_obj(r.header) for r in runs]
    return df


def factors_of(df: pd.DataFrame) -> list[str]:
    """The factor columns of a tidy frame."""
    return list(df.attrs.get("factors") or [])


def varying_factors(df: pd.DataFrame) -> list[str]:
    """Factors with more than one level in the frame, most levels first."""
    fs = [f for f in factors_of(df) if df[f].nunique() > 1]
    return sorted(fs, key=lambda f: -df[f].nunique())


@lru_cache(maxsize=1)
def _baseline_levels() -> dict[str, str]:
    """Each catalogued factor's baseline level ("as the profile sends it"), from data/factors.toml."""
    try:
        from lanelab.matrix.factors import load_factors

        return {name: f.baseline for name, f in load_factors().items()}
    except (UserError, OSError, ValueError):  # a report must still render when the catalogue cannot be read
        return {}


def cell_label(row: Mapping[str, Any], factors: Sequence[str]) -> str:
    """A short human label for a cell: the levels that differ from the baseline (or 'baseline')."""
    baselines = _baseline_levels()
    parts = [f"{f}={row[f]}" for f in factors
             if row.get(f) not in (None, DEFAULT_LEVEL) and row.get(f) != baselines.get(f)]
    return ", ".join(parts) or "baseline"


# --------------------------------------------------------------------------------------------------------------------
# Results matrix


def _filtered(df: pd.DataFrame, where: Mapping[str, str] | None) -> pd.DataFrame:
    for k, v in (where or {}).items():
        if k not in df.columns:
            raise UserError(f"Cannot filter on {k!r}: the run has no such column.",
                            hint=f"Pick one of the factors: {', '.join(factors_of(df)) or '(none)'}.")
        df = df[df[k].astype(str) == str(v)]
    return df


def grid(df: pd.DataFrame, rows: str, cols: str, where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Outcome by two factors, long form: one line per (row level, column level) with the dominant outcome, its
    status, how many observations fell there, whether they disagree, and the supporting cell ids."""
    for axis in (rows, cols):
        if axis not in df.columns:
            raise UserError(f"The run has no factor {axis!r}.",
                            hint=f"Choose among: {', '.join(factors_of(df)) or '(none)'}.")
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


def _levels(df: pd.DataFrame, factor: str) -> list[str]:
    """Levels in first-seen order, with the default level first."""
    seen = list(dict.fromkeys(df[factor].astype(str)))
    return sorted(seen, key=lambda v: (v != DEFAULT_LEVEL, seen.index(v)))


def matrix(df: pd.DataFrame, rows: str, cols: str, where: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The results matrix as a table: ``status · outcome`` in each cell (``*`` marks disagreeing repeats)."""
    g = grid(df, rows, cols, where)
    g["text"] = [f"{'' if s is None or pd.isna(s) else int(s)} · {o}{' *' if m else ''}".strip(" ·")
                 for s, o, m in zip(g["status"], g["outcome"].astype(str), g["mixed"])]
    table = g.pivot(index=rows, columns=cols, values="text")
    table = table.reindex(index=[v for v in _levels(df, rows) if v in table.index],
                          columns=[v for v in _levels(df, cols) if v in table.columns])
    return table.fillna("")


# --------------------------------------------------------------------------------------------------------------------
# Minimal pairs and factor effects


def spec_aspects(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> set[str]:
    """Which parts of a request differ between two specs: endpoint, beta header, client identifier, credential…"""
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


PAIR_COLUMNS = ("factor", "level_a", "level_b", "cell_a", "cell_b", "outcome_a", "outcome_b", "status_a",
                "status_b", "lane_a", "lane_b", "flips", "lane_flips", "aspects", "run_id")


def on_plan(outcome: Any, lane: Any, status: Any) -> bool:
    """True when an observation was served and billed to the plan."""
    served = status is not None and not pd.isna(status) and 200 <= int(status) < 300
    return str(outcome) == "served_plan" or (served and lane == "plan")


def minimal_pairs(df: pd.DataFrame, factor: str | None = None) -> pd.DataFrame:
    """Pairs of observations in the same run and profile that differ in one factor alone.

    ``flips`` is true when their outcomes differ; ``aspects`` says what that factor changed on the wire (read from the
    two stored specs), so a factor named anything can still be recognised as an endpoint, beta or client-id change.
    """
    factors = factors_of(df)
    targets = [factor] if factor else factors
    out = []
    for f in targets:
        others = ["run_id", "profile", *[x for x in factors if x != f]]
        for _, g in df.groupby(others, sort=False, dropna=False, observed=True):
            if g[f].nunique() < 2:
                continue
            recs = g.to_dict("records")
            for ra, rb in itertools.combinations(recs, 2):
                if ra[f] == rb[f]:
                    continue
                if _levels(g, f).index(str(ra[f])) > _levels(g, f).index(str(rb[f])):
                    ra, rb = rb, ra
                out.append({
                    "factor": f, "level_a": ra[f], "level_b": rb[f], "cell_a": ra["cell_id"], "cell_b": rb["cell_id"],
                    "outcome_a": str(ra["outcome"]), "outcome_b": str(rb["outcome"]),
                    "status_a": ra["status"], "status_b": rb["status"], "lane_a": ra["lane"], "lane_b": rb["lane"],
                    "flips": str(ra["outcome"]) != str(rb["outcome"]),
                    "lane_flips": on_plan(ra["outcome"], ra["lane"], ra["status"])
                    != on_plan(rb["outcome"], rb["lane"], rb["status"]),
                    "aspects": ", ".join(sorted(spec_aspects(ra["spec"], rb["spec"]))) or "none on the wire",
                    "run_id": ra["run_id"],
                })
    return pd.DataFrame(out, columns=list(PAIR_COLUMNS))


def factor_effects(df: pd.DataFrame) -> pd.DataFrame:
    """Factors ranked by how often changing them alone flips the outcome, with the supporting cells.

    Columns: factor, pairs, flips, lane_flips (flips that move a request onto or off the plan: the billing verdict),
    flip_rate, transitions (``a→b`` outcome changes seen), cells (ids of flipping pairs), aspects (what the factor
    changes on the wire). Ranked by lane flips, then flips.
    """
    pairs = minimal_pairs(df)
    rows = []
    for f in factors_of(df):
        p = pairs[pairs["factor"] == f]
        if p.empty:
            continue
        flipped = p[p["flips"]]
        transitions = sorted({f"{a}→{b}" for a, b in zip(flipped["outcome_a"], flipped["outcome_b"])})
        cells = list(dict.fromkeys(itertools.chain.from_iterable(zip(flipped["cell_a"], flipped["cell_b"]))))
        aspects = sorted({a.strip() for s in p["aspects"] for a in s.split(",") if a.strip()})
        rows.append({"factor": f, "pairs": len(p), "flips": len(flipped), "lane_flips": int(p["lane_flips"].sum()),
                     "flip_rate": len(flipped) / len(p),
                     "transitions": "; ".join(transitions), "cells": cells, "aspects": ", ".join(aspects)})
    res = pd.DataFrame(rows, columns=["factor", "pairs", "flips", "lane_flips", "flip_rate", "transitions", "cells",
                                      "aspects"])
    return res.sort_values(["lane_flips", "flips", "flip_rate"], ascending=[False, False, False], kind="stable") \
        .reset_index(drop=True)


# --------------------------------------------------------------------------------------------------------------------
# Lane signals, usage snapshots, run comparison

LANE_COLUMNS = ("cell_id", "label", "status", "outcome", "lane", "unified_status", "claim", "util_5h", "util_7d",
                "overage_status", "overage_disabled_reason", "request_id")


def lane_signals(df: pd.DataFrame) -> pd.DataFrame:
    """Per observation: what the server said about the billing lane, beside the outcome and the plan's headroom."""
    fs = factors_of(df)
    out = df.copy()
    out["label"] = [cell_label(r, fs) for r in df.to_dict("records")]
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


def usage_snapshots(run: RunData) -> pd.DataFrame:
    """Usage-endpoint values before and after a run, one line per field, with the numeric change (empty if none)."""
    before = _flatten(run.usage.get("before") or {})
    after = _flatten(run.usage.get("after") or {})
    keys = list(dict.fromkeys([*before, *after]))
    rows = []
    for k in keys:
        b, a = before.get(k), after.get(k)
        num = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
        rows.append({"field": k, "before": b, "after": a, "change": (a - b) if num else None})
    return pd.DataFrame(rows, columns=["field", "before", "after", "change"])


def compare_runs(df: pd.DataFrame, run_a: str | None = None, run_b: str | None = None,
                 changed_only: bool = False) -> pd.DataFrame:
    """The same cell ids in two runs of the frame (default: the first two) and what changed between them."""
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


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Counts of observations per outcome and lane (the report's headline table)."""
    t = df.groupby(["outcome", "lane"], observed=True).size().rename("observations").reset_index()
    return t[t["observations"] > 0].reset_index(drop=True)
