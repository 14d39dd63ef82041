"""The shareable report: a self-contained HTML page and a GitHub-ready Markdown file built from one or more runs.

Both open with the answer (:mod:`lanelab.findings.verdict`): what moves this client's request between lanes, the
exact element with its before and after, the evidence and the remedy. Right below it, whatever the responses carried
that the kit has never seen ("new to this kit", verbatim, with the cells where it appeared: :mod:`lanelab.wire.drift`)
and what the findings must say about the request itself (the run header's ``profile_caveats``, e.g. a client's billing
attestation block the kit never sends). Then what was read (runs, requests, bisect probes counted apart, lines skipped
and why), what moves the request between lanes when changed on its own, every single change (or the results matrix,
for designs that fill one), the three questions of the first report, the plan's headroom, usage before and after
(fields the kit does not know shown as such), when the same request would have been billed where under each dated
simulator snapshot (:mod:`lanelab.findings.timeline`, when one was computed), run-to-run and person-to-person
comparisons, and the raw observations (collapsed).

The timeline is a simulator model: it is computed only against an embedded simulator on loopback, and only when asked
(:func:`timeline_for`; the ``report`` command asks for it for simulator runs, or with ``--timeline``), never from live
runs on its own and never against the live API.

Layout lives in Jinja2 templates (``templates/report.html.j2``, ``templates/report.md.j2``); this module only computes
the values (:func:`report_data`). Escaping is automatic in both formats (:mod:`lanelab.findings.render`), every value
is redacted, and the finished text is checked again before anything is written: if a secret is still found, nothing
is written and :class:`lanelab.redact.SecretLeak` is raised.

The HTML has inline CSS and inline PNGs only: no script, no external stylesheet, nothing loaded from a URL, so it
can be mailed or attached as it is; it fits a 1280-pixel window. The Markdown's figures are PNG files beside it.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from lanelab import __version__, redact
from lanelab.auth.store import CredentialStore
from lanelab.config import Settings, repo_root
from lanelab.errors import InputError, NotFound, ServiceError, UserError, os_reason
from lanelab.findings import answers as ans
from lanelab.findings import frame as an
from lanelab.findings import plots
from lanelab.findings.render import Table, md_table, render, safe_stem, slug
from lanelab.findings.verdict import Verdict, lead_verdict
from lanelab.runs import (
    BISECT_DESIGN,
    DIAGNOSE_DESIGN,
    LoadWarning,
    Run,
    load_run,
    load_runs,
    split_runs,
    tidy,
)

if TYPE_CHECKING:
    from lanelab.findings.bundles import Bundle
    from lanelab.findings.timeline import Timeline

__all__ = ["Findings", "axis_candidates", "build", "collect", "comparison_table", "drift_items",
           "effects_table", "glossary", "lanes_table", "markdown_table", "metadata", "profile_caveats", "render_html",
           "render_markdown", "report_data", "single_changes", "stored_secrets",
           "timeline_for", "timeline_refs", "timeline_table", "usage_unknown", "write_reports"]

#: Observations shown per run in the raw-details table.
RAW_ROWS = 200
#: Below this share of filled squares a heatmap is mostly empty grey; the single changes are shown instead.
HEATMAP_FILL = 0.5
SIM_NOTICE = ("Simulator output: the responses come from lanelab's embedded simulator, a model built from public "
              "reports, not from Anthropic's servers. Live observations always outrank it.")
RESPONSIBLE_USE = ("lanelab diagnoses; it does not evade. Remedies that exist: fix a malformed request, enable extra "
                   "usage, use an API key, or use Anthropic's own clients.")
GLOSSARY = "docs/glossary.md"
#: What each kind of drift item is, in words (kinds from :data:`lanelab.wire.drift.KINDS`).
DRIFT_WORDS = {"claim": "representative claim", "unified_header": "rate-limit header",
               "unified_value": "rate-limit header value", "error_code": "error code", "error_type": "error type",
               "message": "error message", "usage_field": "usage field"}
#: Cells listed per drift item before "and N more".
DRIFT_CELLS = 8
TIMELINE_NOTE = ("A simulator model: the same request sent to the kit's embedded simulator (on this machine) under "
                 "each dated snapshot of the service, as public reports describe it. Nothing was sent to Anthropic. "
                 "A step where the answer moves is a change on the service side, not the client's.")



@dataclass(repr=False)
class Findings:
    """Everything a report shows, computed once from the runs (see :func:`collect`).

    ``runs`` are every run read; ``df`` the tidy table of the matrix runs only (bisect probes and diagnose requests
    are counted apart); ``rows``/``cols`` the heatmap's axes (None without two factors); ``effects`` the factor
    effects; ``answers`` the three answers; ``verdict`` the opening answer; ``comparison`` the run-to-run comparison
    (two matrix runs or more, else None); ``usage`` each run's usage snapshots by run id; ``drift`` what is new to
    this kit (:func:`drift_items`: one dict per item, verbatim, with the cells where it appeared); ``caveats`` what
    the findings must say about the request (:func:`profile_caveats`); ``timeline`` the same request under every dated
    simulator snapshot (None unless computed, see :func:`timeline_for`); ``bundles`` findings bundles from other
    people to compare with.
    """

    runs: list[Run]
    df: pd.DataFrame
    rows: str | None
    cols: str | None
    effects: pd.DataFrame
    answers: ans.Answers
    verdict: Verdict
    diagnosis: list[str] = field(default_factory=list)
    comparison: pd.DataFrame | None = None
    usage: dict[str, pd.DataFrame] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    timeline: Timeline | None = None
    bundles: list[Bundle] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    _figures: dict[str, Figure] | None = None
    _pngs: dict[str, bytes] = field(default_factory=dict)
    _data: dict[str, Any] | None = None

    def __repr__(self) -> str:
        """A line a notebook can read: what was read and the answer (the rest: the attributes, and the report)."""
        return (f"<Findings of {len(self.runs)} run(s), {len(self.df)} matrix request(s): "
                f"{self.verdict.sentence.replace('`', '')}>")

    # -- the runs by kind ---------------------------------------------------------------------------------------------
    def of_run(self, run: Run) -> Findings:
        """The findings of ``run`` alone: these findings when they hold only that run, else :func:`collect` of it.

        Returns:
            A :class:`Findings` (a findings bundle describes one run: :func:`lanelab.findings.bundles.make_bundle`).
        """
        return self if len(self.runs) == 1 and self.runs[0] is run else collect([run])

    @property
    def matrix_runs(self) -> list[Run]:
        """The runs whose cells make up ``df`` (a run without a cell adds nothing: see :attr:`empty_runs`)."""
        return [r for r in split_runs(self.runs)[0] if r.cells]

    @property
    def empty_runs(self) -> list[Run]:
        """Files read as runs that hold no cell: a run that sent nothing, or a file that is not a run at all."""
        return [r for r in split_runs(self.runs)[0] if not r.cells]

    @property
    def bisect_runs(self) -> list[Run]:
        """Runs of bisect probes (counted apart from matrix cells)."""
        return split_runs(self.runs)[1]

    @property
    def diagnose_runs(self) -> list[Run]:
        """Runs written by a diagnose command."""
        return split_runs(self.runs)[2]

    @property
    def skipped(self) -> list[LoadWarning]:
        """Every line the loader skipped, with why (torn or unreadable lines, a missing header)."""
        return [w for r in self.runs for w in r.warnings]

    @property
    def baseline(self) -> str | None:
        """The cell that sends the client's request unchanged (first matrix run that has one), or None."""
        for run_id in dict.fromkeys(self.df["run_id"]):
            cid = an.baseline_cell(self.df, run_id)
            if cid:
                return cid
        return None

    @property
    def overview(self) -> str | None:
        """The name of the figure that shows every cell: "changes" (each single change and its outcome, for a
        one-factor-at-a-time run, whose heatmap would be mostly empty), "heatmap" (a design that fills it), or None
        (nothing to show)."""
        figs = self.figures()
        return "changes" if "changes" in figs else "heatmap" if "heatmap" in figs else None

    def verdict_cells(self) -> pd.DataFrame:
        """The cells the answer rests on, looked up in whichever run holds them (a matrix, bisect or diagnose run), so
        that its evidence can be followed.

        Returns:
            A DataFrame with cell, run, request (what was sent: the change from the request as sent, or a diagnose
            step), status, outcome and lane, one row per cell the verdict names (none when it names none).
        """
        rows = []
        for cid in self.verdict.cells:
            found = next(((run, run.cells[cid]) for run in self.runs if cid in run.cells), None)
            if found is None:
                continue
            run, rec = found
            levels = rec.get("levels") or {}
            what = levels.get("change") if "change" in levels else an.change_label(
                levels, [k for k in levels if k != "credential"])
            rows.append({"cell": cid, "run": run.run_id, "request": what,
                         "status": (rec.get("observation") or {}).get("status"),
                         "outcome": an.outcome_label(rec.get("outcome")), "lane": an.lane_label(rec.get("lane"))})
        return pd.DataFrame(rows, columns=["cell", "run", "request", "status", "outcome", "lane"])

    def overview_table(self) -> pd.DataFrame:
        """The table beside the overview figure: every single change (see :func:`single_changes`) for "changes",
        the results matrix of the first run for "heatmap", else an empty table."""
        if self.overview == "changes":
            return single_changes(self)
        if self.overview == "heatmap" and self.rows and self.cols:
            return an.matrix(self._run_df(str(self.df["run_id"].iloc[0])), self.rows, self.cols)
        return pd.DataFrame()

    def input_lines(self) -> list[str]:
        """What was read, in plain sentences: runs and requests, bisect probes apart, lines skipped and why."""
        _, b, d = split_runs(self.runs)
        m, empty = self.matrix_runs, self.empty_runs
        n = len(self.df)
        lines = [f"Read {len(m)} matrix run{'s' if len(m) != 1 else ''} holding {n} request{'s' if n != 1 else ''}."]
        if empty:
            lines.append(f"{len(empty)} file{'s' if len(empty) != 1 else ''} held no request, and add"
                         f"{'' if len(empty) != 1 else 's'} nothing: {', '.join(r.path.name for r in empty)} (a run "
                         "that sent nothing, or not a run file).")
        if b:
            probes = sum(len(r.cells) for r in b)
            lines.append(f"{len(b)} bisect run{'s' if len(b) != 1 else ''} with {probes} probe"
                         f"{'s' if probes != 1 else ''}, counted apart from the matrix (a probe sends a mix of two "
                         "requests to narrow down which difference matters).")
        if d:
            sent = sum(len(r.cells) for r in d)
            lines.append(f"{len(d)} diagnose run{'s' if len(d) != 1 else ''} with {sent} request"
                         f"{'s' if sent != 1 else ''}, counted apart from the matrix.")
        skipped = self.skipped
        if skipped:
            lines.append(f"Skipped {len(skipped)} line{'s' if len(skipped) != 1 else ''} while reading: "
                         + "; ".join(f"{Path(w.path).name} line {w.line}: {w.problem}" for w in skipped) + ".")
        else:
            lines.append("No line was skipped.")
        if self.drift:
            lines.append(f"{len(self.drift)} thing{'s' if len(self.drift) != 1 else ''} in the responses "
                         f"{'were' if len(self.drift) != 1 else 'was'} new to this kit (listed at the top, verbatim).")
        elif self.runs:
            lines.append("Nothing in the responses was new to this kit.")
        if self.bundles:
            k = len(self.bundles)
            lines.append(f"{k} findings bundle{'s' if k != 1 else ''} of other people, shown side by side apart from "
                         "the runs read here.")
        if not n:
            lines.append("With no request of yours to read, this report concludes nothing of its own."
                         if self.bundles else "With no request to read, there is nothing to conclude.")
        return lines

    def new_to_kit(self) -> pd.DataFrame:
        """What the responses carried that the kit has never seen (see :func:`drift_items`), one row per item.

        Returns:
            A DataFrame with what (the kind in words), where (header name or JSON path), value (verbatim), responses
            (how many carried it), cells (where it appeared) and runs; no rows when nothing was new.
        """
        cols = ["what", "where", "value", "responses", "cells", "runs"]
        return pd.DataFrame([{"what": d["what"], "where": d["name"], "value": d["value"], "responses": d["count"],
                              "cells": ", ".join(d["cells"]), "runs": ", ".join(d["runs"])} for d in self.drift],
                            columns=cols)

    # -- figures -----------------------------------------------------------------------------------------------------
    def png(self, name: str) -> bytes:
        """A figure as PNG bytes, rendered once.

        Raises:
            NotFound: there is no figure of that name (see :meth:`figures`).
        """
        if name not in self._pngs:
            self._pngs[name] = plots.to_png(self.figure(name))
        return self._pngs[name]

    def figure(self, name: str) -> Figure:
        """One named figure ("changes" or "heatmap", "effects", "headroom", "usage-<run>", …); it displays itself in
        a notebook.

        Raises:
            NotFound: there is no figure of that name.
        """
        figs = self.figures()
        if name not in figs:
            raise NotFound(f"No figure {name!r} in these findings.", f"Choose among: {', '.join(figs) or '(none)'}.")
        return figs[name]

    def usage_figures(self) -> list[Figure]:
        """The usage before/after charts, one per run that recorded percent usage fields (possibly none)."""
        return [fig for name, fig in self.figures().items() if name.startswith("usage-")]

    def usage_changes(self) -> pd.DataFrame:
        """What the usage endpoint says moved during each run.

        Returns:
            A DataFrame with run_id, field, what, before, after, change and unit, for the numeric fields that
            changed; no rows when nothing moved or no run recorded snapshots.
        """
        cols = ["run_id", "field", "what", "before", "after", "change", "unit"]
        moved = [u[u["change"].fillna(0) != 0].assign(run_id=run_id) for run_id, u in self.usage.items()]
        moved = [m for m in moved if len(m)]
        return pd.concat(moved)[cols].reset_index(drop=True) if moved else pd.DataFrame(columns=cols)

    def _fills(self, run_id: str) -> bool:
        if not (self.rows and self.cols):
            return False
        sub = self._run_df(run_id)
        g = an.grid(sub, self.rows, self.cols)
        squares = sub[self.rows].nunique() * sub[self.cols].nunique()
        return bool(squares) and len(g) / squares >= HEATMAP_FILL

    def _run_df(self, run_id: str) -> pd.DataFrame:
        sub = self.df[self.df["run_id"] == run_id]
        sub.attrs.update(self.df.attrs)
        return sub

    def figures(self) -> dict[str, Figure]:
        """Named figures, built on first use: "effects"; for a one-factor-at-a-time run "changes", else one
        "heatmap" per matrix run ("heatmap" for the first, "heatmap-<run>" after); "headroom"; "usage-<run>" for
        each run with usage snapshots; and "timeline" when a timeline was computed. None for an empty table."""
        if self._figures is None:
            figs: dict[str, Figure] = {}
            if not self.df.empty:
                if len(self.effects):
                    figs["effects"] = plots.effects_chart(self.effects)
                base = self.baseline
                first = str(self.df["run_id"].iloc[0])
                if base is not None and not self._fills(first):
                    base_run = str(self.df.loc[self.df["cell_id"] == base, "run_id"].iloc[0])
                    figs["changes"] = plots.changes_chart(self._run_df(base_run), base)
                elif self.rows and self.cols:
                    for run_id in dict.fromkeys(self.df["run_id"]):
                        name = "heatmap" if "heatmap" not in figs else f"heatmap-{slug(run_id)}"
                        figs[name] = plots.heatmap(self._run_df(run_id), self.rows, self.cols,
                                                   title=f"{run_id}: outcome by {self.rows} and {self.cols}")
                figs["headroom"] = plots.headroom_chart(self.df)
            for run_id, usage in self.usage.items():
                fig = plots.usage_chart(usage)
                if fig is not None:
                    figs[f"usage-{slug(run_id)}"] = fig
            if self.timeline is not None and self.timeline.rows:
                figs["timeline"] = self.timeline.chart()
            self._figures = figs
        return self._figures


def axis_candidates(df: pd.DataFrame, effects: pd.DataFrame | None = None) -> list[str]:
    """Columns for the key heatmap's axes, best first.

    Returns:
        The factors that change the outcome most, then the factors with most levels, then credential, profile and
        run id.
    """
    effects = an.factor_effects(df) if effects is None else effects
    varying = an.varying_factors(df)
    ranked = [f for f in effects["factor"] if f in varying and effects.set_index("factor").loc[f, "flips"] > 0] \
        if len(effects) else []
    return list(dict.fromkeys([*ranked, *varying, "credential", "profile", "run_id"]))


def drift_items(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """What the runs' responses carried that the kit has never seen (:func:`lanelab.wire.drift.new_to_kit`), as the
    report lists it: every kind of run (matrix, bisect, diagnose), usage snapshots included.

    Returns:
        One dict per item, in the order of :data:`lanelab.wire.drift.KINDS`: ``kind``, ``what`` (the kind in
        words), ``name`` (where: header name or JSON path), ``value`` (verbatim), ``count`` (responses carrying it),
        ``cells`` and ``runs`` (lists), ``recorded`` (flagged when sent, or checked now), and for a findings bundle
        ``element`` ("claim <header>: <value>") and ``note`` (where it was seen). Empty when nothing was new.
    """
    from lanelab.wire.drift import new_to_kit

    if not runs:
        return []
    out = []
    for row in new_to_kit(list(runs)).to_dict("records"):
        cells, run_ids = [str(c) for c in row["cells"]], [str(r) for r in row["runs"]]
        shown = ", ".join(cells[:DRIFT_CELLS]) + (f" and {len(cells) - DRIFT_CELLS} more" if len(cells) > DRIFT_CELLS
                                                  else "")
        out.append({
            "kind": row["kind"], "what": DRIFT_WORDS.get(row["kind"], row["kind"]), "name": row["name"],
            "value": row["value"], "count": int(row["count"]), "cells": cells, "runs": run_ids,
            "recorded": bool(row["recorded"]), "cells_shown": shown,
            "element": f"{row['kind']} {row['name']}: {row['value']}",
            "note": (f"in {row['count']} response{'s' if row['count'] != 1 else ''}; cells {shown} "
                     f"(run{'s' if len(run_ids) != 1 else ''} {', '.join(run_ids)})"),
        })
    return out


def profile_caveats(runs: Sequence[Run]) -> list[str]:
    """What the findings must say about the request itself: the ``profile_caveats`` the matrix wrote into each run
    header (e.g. "the client sends a billing attestation block … findings for this profile are for the request
    without the block"), each once, in run order.

    Returns:
        The sentences (empty when no run recorded one).
    """
    out: list[str] = []
    for run in runs:
        found = run.header.get("profile_caveats")
        for text in found if isinstance(found, list) else []:
            if isinstance(text, str) and text.strip() and text not in out:
                out.append(text)
    return out


def usage_unknown(run: Run) -> pd.DataFrame:
    """The usage-endpoint keys and fields of a run's snapshots that the kit does not know
    (``data/usage_fields.toml``), verbatim, as the account summary shows them ("new to this kit").

    Returns:
        A DataFrame with field, before and after (verbatim values; empty where a snapshot lacks it); no rows when
        every field is known or the run recorded no snapshots.
    """
    from lanelab.wire.usage import read_usage

    seen: dict[str, dict[str, str]] = {}
    for when in ("before", "after"):
        for u in read_usage(run.usage.get(when)).unknown:
            seen.setdefault(u.name, {})[when] = u.value
    return pd.DataFrame([{"field": k, "before": v.get("before", ""), "after": v.get("after", "")}
                         for k, v in seen.items()], columns=["field", "before", "after"])


def timeline_refs(runs: Sequence[Run]) -> list[str]:
    """The requests a timeline can be computed for: the profiles of the matrix runs that data/profiles holds and
    the kit may send (a first-party reference never is), each once.

    Returns:
        Profile names (possibly none: runs of captures or of profiles the kit does not ship).
    """
    from lanelab.matrix import profiles as profiles_mod

    known = set(profiles_mod.list_profiles())
    out: list[str] = []
    for run in split_runs(runs)[0]:
        name = run.header.get("profile")
        if isinstance(name, str) and name in known and name not in out:
            try:
                profiles_mod.ensure_sendable(name)
            except UserError:
                continue
            out.append(name)
    return out


def timeline_for(runs: Sequence[Run] | Findings, *, asked: bool | None = None,
                 policies: Sequence[str] | None = None) -> Timeline | None:
    """The timeline of the runs' request(s) (:func:`lanelab.findings.timeline.timeline`), when it should be shown.

    ``asked`` None: only when every run was made against the simulator (mode "sim"); True: also for live runs (the
    timeline still only ever talks to an embedded simulator on loopback, never to the live API); False: never.
    ``policies`` limits the snapshots (default: every dated policy).

    Returns:
        The :class:`~lanelab.findings.timeline.Timeline`, or None when it is not wanted or there is no profile to
        send (see :func:`timeline_refs`).

    Raises:
        ServiceError: the embedded simulator stopped answering.
    """
    runs = runs.runs if isinstance(runs, Findings) else list(runs)
    if asked is False or not runs:
        return None
    if asked is None and any((r.header.get("mode") or "sim") != "sim" for r in runs):
        return None
    refs = timeline_refs(runs)
    if not refs:
        return None
    from lanelab.findings.timeline import timeline

    # the account the runs recorded (a matrix run against a simulator does; bisect and diagnose runs and older runs
    # record none), so that the timeline does not contradict them; runs that recorded different ones: the default
    accounts = [a for a in (r.header.get("sim_account") for r in runs) if isinstance(a, dict)]
    same = bool(accounts) and all(a == accounts[0] for a in accounts)
    return timeline(refs, policies, account=accounts[0] if same else None)


def _runs(given: Any) -> list[Run]:
    """Runs as a notebook gives them: a run, a run file's path, or a list of either (a path is read with
    :func:`lanelab.runs.load_run`). Raises :class:`InputError` for anything else."""
    items = [given] if isinstance(given, (Run, str, Path)) else given
    if not isinstance(items, Iterable) or isinstance(items, (Mapping, pd.DataFrame)):
        raise InputError(f"collect takes runs (load_run(path)) or run file paths; found {type(given).__name__}.")
    out = []
    for item in items:
        if isinstance(item, (str, Path)):
            item = load_run(item)
        if not isinstance(item, Run):
            raise InputError(f"collect takes runs (load_run(path)) or run file paths; found {type(item).__name__}.")
        out.append(item)
    return out


def collect(runs: Run | str | Path | Sequence[Run | str | Path], rows: str | None = None, cols: str | None = None,
            verdict: Any = None, bundles: Sequence[Bundle] = (), timeline: Timeline | None = None) -> Findings:
    """Compute the findings of one or more runs: loaded ones (:func:`lanelab.runs.load_run`) or their files' paths.

    Bisect and diagnose runs are kept apart from the matrix table; a diagnose run's recorded verdict, or ``verdict``
    (anything :meth:`lanelab.findings.verdict.Verdict.from_obj` accepts), supplies the opening answer. ``rows`` and
    ``cols`` name the heatmap's axes (default: the factors that change the outcome most); ``bundles`` are findings
    bundles to compare with; ``timeline`` a timeline to show (see :func:`timeline_for`; nothing is sent here). What
    is new to this kit (:func:`drift_items`) and the request's caveats (:func:`profile_caveats`) come from the runs.

    Returns:
        The :class:`Findings` (an empty table, with a verdict saying there is nothing to conclude, when the runs
        hold no matrix cell).

    Raises:
        UserError: ``rows`` or ``cols`` is not a column of the runs' table.
        InputError: ``verdict`` has no sentence, or ``runs`` holds something that is neither a run nor a path (a
            path is read as :func:`lanelab.runs.load_run` reads it, and raises what it raises).
    """
    runs = _runs(runs)
    matrix_runs, _, _ = split_runs(runs)
    df = tidy(matrix_runs)
    effects = an.factor_effects(df) if len(df) else pd.DataFrame(columns=list(an.EFFECT_COLUMNS))
    for name in (rows, cols):
        if name is not None and name not in df.columns:
            raise UserError(f"The run has no factor {name!r}.",
                            hint=f"Choose among: {', '.join(an.factors_of(df)) or '(none)'}.")
    spare = [c for c in axis_candidates(df, effects) if c not in (rows, cols)] if len(df) else []
    rows = rows or (spare.pop(0) if spare else None)
    cols = cols or (spare.pop(0) if spare else None)
    comparison = an.compare_runs(df) if len(df) and df["run_id"].nunique() >= 2 else None
    usage = {r.run_id: an.usage_snapshots(r) for r in runs if r.usage}
    if verdict is None and df.empty and bundles and not runs:
        verdict = _pooled_verdict(bundles)
    return Findings(runs=runs, df=df, rows=rows, cols=cols, effects=effects,
                    answers=ans.answer_all(df) if len(df) else ans.Answers(),
                    verdict=lead_verdict(df, runs, verdict), diagnosis=ans.diagnosis(df, effects),
                    comparison=comparison, usage=usage, drift=drift_items(runs), caveats=profile_caveats(runs),
                    timeline=timeline, bundles=list(bundles))


def _pooled_verdict(bundles: Sequence[Bundle]) -> Verdict:
    """The opening answer of a report built from other people's bundles alone (a maintainer's, with no run of their
    own): what the bundles say together, and that nothing of the reader's own is in it."""
    from lanelab.findings.bundles import compare_bundles

    n = len(bundles)
    return Verdict(sentence=f"Pooled from {n} findings bundle{'s' if n != 1 else ''} of other people (no run of "
                            f"yours): {compare_bundles(bundles).summary()}",
                   evidence="Each bundle's own answer, and where the bundles agree and differ, are in \"Findings "
                            "from other people, side by side\" below; each rests on its own run, under its own "
                            "policy or host and plan.",
                   remedy="To set a client of yours beside them, send its matrix ('python -m lanelab matrix') and "
                          "build this report again.", source="bundles", conclusive=False)


# ---------------------------------------------------------------------------------------------------------------------
# Tables


def metadata(findings: Findings) -> pd.DataFrame:
    """The runs behind the findings.

    Returns:
        A DataFrame with one line per run: run, kind (matrix, bisect probes, diagnose), mode, policy or host, date,
        client profile, design, requests, what came back (outcome counts in words) and kit version.
    """
    out = []
    for run in findings.runs:
        h = run.header
        design = h.get("design") or ""
        kind = {BISECT_DESIGN: "bisect probes", DIAGNOSE_DESIGN: "diagnose"}.get(design, "matrix")
        if kind == "matrix":
            sub = findings.df[findings.df["run_id"] == run.run_id]
            outcomes = sub["outcome"].astype(str)
        else:
            outcomes = pd.Series([c.get("outcome") or "unclassified" for c in run.cells.values()], dtype=str)
        counts = outcomes.value_counts()
        out.append({
            "run": run.run_id, "kind": kind, "mode": h.get("mode") or "",
            "policy or host": (h.get("policy") if h.get("mode") != "live" else h.get("host")) or "",
            "date": str(h.get("started_at") or "")[:10], "client profile": h.get("profile") or "",
            "design": design, "requests": len(outcomes),
            "what came back": "; ".join(f"{an.outcome_label(k)}: {v}" for k, v in counts.items()),
            "kit version": h.get("kit_version") or __version__,
        })
    return pd.DataFrame(out, columns=["run", "kind", "mode", "policy or host", "date", "client profile", "design",
                                      "requests", "what came back", "kit version"])


def effects_table(effects: pd.DataFrame, shown: int = 4) -> pd.DataFrame:
    """The factor effects (:func:`~lanelab.findings.frame.factor_effects`) in the report's words.

    Returns:
        A DataFrame with factor, pairs differing in it alone, moves onto or off the plan, other outcome changes,
        what it changes in the request, outcome changes seen (in words) and the first ``shown`` supporting cells.
    """
    rows = []
    for e in effects.to_dict("records"):
        seen = [t.split("→") for t in str(e["transitions"]).split("; ") if "→" in t]
        rows.append({
            "factor": e["factor"], "pairs differing in it alone": e["pairs"],
            "moves onto or off the plan": e["lane_flips"], "other outcome changes": e["other_flips"],
            "what it changes in the request": e["aspects"],
            "outcome changes seen": "; ".join(f"{an.outcome_label(a)} → {an.outcome_label(b)}" for a, b in seen),
            "cells": ", ".join(e["cells"][:shown]) + (f" (+{len(e['cells']) - shown})" if len(e["cells"]) > shown
                                                      else ""),
        })
    return pd.DataFrame(rows, columns=["factor", "pairs differing in it alone", "moves onto or off the plan",
                                       "other outcome changes", "what it changes in the request",
                                       "outcome changes seen", "cells"])


def single_changes(findings: Findings) -> pd.DataFrame:
    """The request as sent and every single change from it, ranked as the "changes" chart ranks them.

    Returns:
        A DataFrame with change, cell, status, outcome, lane and message (no rows without an unchanged request).
    """
    base = findings.baseline
    cols = ["change", "cell", "status", "outcome", "lane", "message"]
    if base is None:
        return pd.DataFrame(columns=cols)
    run_id = str(findings.df.loc[findings.df["cell_id"] == base, "run_id"].iloc[0])
    sub = findings._run_df(run_id)
    b = sub[sub["cell_id"] == base].iloc[0]
    ch = an.flips_from_baseline(sub, base, all_changes=True)
    msgs = dict(zip(sub["cell_id"], sub["error_message"]))
    rank = [0 if an.on_plan(o, ln, s) else 1 if o != str(b["outcome"]) else 2
            for o, ln, s in zip(ch["outcome"], ch["lane"], ch["status"])]
    ch = ch.assign(group=rank).sort_values("group", kind="stable")
    rows = [{"change": an.AS_SENT, "cell": base, "status": b["status"], "outcome": an.outcome_label(b["outcome"]),
             "lane": an.lane_label(b["lane"]), "message": an.said(b["error_message"])}]
    rows += [{"change": f"{f}={lv}", "cell": c, "status": s, "outcome": an.outcome_label(o), "lane": an.lane_label(ln),
              "message": an.said(msgs.get(c))}
             for f, lv, c, s, o, ln in zip(ch["factor"], ch["level"], ch["cell_id"], ch["status"], ch["outcome"],
                                           ch["lane"])]
    return pd.DataFrame(rows, columns=cols)


def _pct(x: Any) -> str:
    return "" if x is None or pd.isna(x) else f"{100 * float(x):.3g}%"


def lanes_table(df: pd.DataFrame) -> pd.DataFrame:
    """The lane signals per cell (:func:`~lanelab.findings.frame.lane_signals`) in the report's words.

    Returns:
        A DataFrame with change, status, outcome, lane, the 5-hour and 7-day windows used (percent of the window),
        the window that applies, the state of extra usage and why it is off.
    """
    lanes = an.lane_signals(df)
    return pd.DataFrame({
        "change": lanes["label"], "status": lanes["status"],
        "outcome": [an.outcome_label(o) for o in lanes["outcome"]],
        "lane": [an.lane_label(x) for x in lanes["lane"]],
        "5-hour window used": [_pct(v) for v in lanes["util_5h"]],
        "7-day window used": [_pct(v) for v in lanes["util_7d"]],
        "window that applies": [an.said(v) for v in lanes["claim"]],
        "extra usage": [an.said(v) for v in lanes["overage_status"]],
        "why extra usage is off": [an.said(v) for v in lanes["overage_disabled_reason"]],
    })



def _usage_tables(usage: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percent fields and money fields of a usage snapshot, never in one table column."""
    percent = usage[usage["unit"].isin([an.UNIT_PERCENT, an.UNIT_PERCENT_LIMIT])]
    money = usage[~usage["unit"].isin([an.UNIT_PERCENT, an.UNIT_PERCENT_LIMIT, ""])]
    fmt = lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.4g}"
    p = pd.DataFrame({"window": percent["what"], "before (%)": [fmt(v) for v in percent["before"]],
                      "after (%)": [fmt(v) for v in percent["after"]],
                      "change (points)": [fmt(v) for v in percent["change"]], "of": percent["unit"].str[2:]})
    m = pd.DataFrame({"extra usage": money["what"], "before": [fmt(v) for v in money["before"]],
                      "after": [fmt(v) for v in money["after"]], "change": [fmt(v) for v in money["change"]],
                      "currency": money["unit"]})
    return p, m


def comparison_table(findings: Findings) -> tuple[str, pd.DataFrame]:
    """Two runs side by side (the first two matrix runs), in the report's words.

    Returns:
        A sentence ("4 of 16 requests ended differently.", counting the requests both runs sent, and saying how many
        only one of them sent) and a DataFrame of the requests that ended differently or were sent in one run only:
        change, how each run ended (status and outcome in words) and the cell id.

    Raises:
        StateError: the findings hold fewer than two matrix runs.
    """
    from lanelab.errors import StateError

    cmp = findings.comparison
    if cmp is None:
        raise StateError("Comparing runs needs two matrix runs.", "Load two run files (e.g. two simulator policies).")
    a, b = cmp.attrs.get("run_a"), cmp.attrs.get("run_b")
    fs = an.factors_of(findings.df)
    changed = cmp[cmp["change"] != "same"]
    both = int(cmp["change"].isin(["same", "changed"]).sum())
    only = len(cmp) - both
    if both:
        summary = f"{int((cmp['change'] == 'changed').sum())} of {both} requests ended differently."
        if only:
            summary += f" {only} more {'was' if only == 1 else 'were'} sent in one of the runs only."
    else:
        summary = (f"The two runs share no request ({only} were sent in one of them only), so none can be compared "
                   "side by side.")
    def said(status: Any, outcome: Any) -> str:
        """"400 out of extra usage": the status, unless the outcome's words start with it already."""
        if pd.isna(outcome) or outcome == "nan":
            return ""
        label, code = an.outcome_label(outcome), "" if pd.isna(status) else str(int(status))
        return label if label.split(" ", 1)[0] == code else f"{code} {label}".strip()

    table = pd.DataFrame({
        "change": [an.change_label(r, fs) for r in an.records(changed)],
        f"in {a}": [said(s, o) for s, o in zip(changed["status_a"], changed["outcome_a"])],
        f"in {b}": [said(s, o) for s, o in zip(changed["status_b"], changed["outcome_b"])],
        "cell": changed["cell_id"],
    })
    return summary, table


def _raw(findings: Findings) -> pd.DataFrame:
    df = findings.df
    fs = an.factors_of(df)
    raw = pd.DataFrame({
        "run": df["run_id"], "cell": df["cell_id"], "change": [an.change_label(r, fs) for r in an.records(df)],
        "status": df["status"], "outcome": [an.outcome_label(o) for o in df["outcome"]],
        "lane": [an.lane_label(x) for x in df["lane"]], "message": df["error_message"],
        "request id": df["request_id"], "ms": df["latency_ms"].round(0),
    })
    return raw.head(RAW_ROWS * max(1, df["run_id"].nunique()))


def markdown_table(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub pipe table of ``df``, every value redacted and escaped (pipes, line breaks and HTML too).

    Returns:
        The Markdown text.
    """
    return str(md_table(Table.from_frame(df, index=index)))


def glossary(path: Path | None = None) -> list[tuple[str, str]]:
    """The short glossary (docs/glossary.md): lines ``- **term**: definition``.

    Returns:
        (term, definition) pairs in file order; empty when the file is missing.
    """
    path = path or repo_root() / GLOSSARY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [(m.group(1), m.group(2).replace("**", "").strip())
            for m in re.finditer(r"^- \*\*(.+?)\*\*:\s*(.+)$", text, re.MULTILINE)]


# ---------------------------------------------------------------------------------------------------------------------
# The values the templates show


def report_data(findings: Findings) -> dict[str, Any]:
    """Every value the report templates use, computed once (tables as :class:`~lanelab.findings.render.Table`).

    Returns:
        A dict; its keys are listed at the top of ``templates/report.html.j2``.
    """
    if findings._data is not None:
        return findings._data
    f = findings
    figs = f.figures()
    has = bool(len(f.df))
    overview = f.overview
    overview_tables: list[tuple[str, Table]] = []
    if overview == "changes":
        overview_tables.append(("", Table.from_frame(single_changes(f), code=("cell",), nowrap=("status",))))
    elif overview == "heatmap" and f.rows and f.cols:
        for run_id in dict.fromkeys(f.df["run_id"]):
            overview_tables.append((run_id, Table.from_frame(an.matrix(f._run_df(run_id), f.rows, f.cols),
                                                             index=True)))
    usage = []
    by_id = {r.run_id: r for r in f.runs}
    for run_id, u in f.usage.items():
        p, m = _usage_tables(u)
        unknown = usage_unknown(by_id[run_id]) if run_id in by_id else pd.DataFrame()
        usage.append({"run": run_id, "figure": f"usage-{slug(run_id)}" if f"usage-{slug(run_id)}" in figs else None,
                      "percent": Table.from_frame(p), "money": Table.from_frame(m),
                      "unknown": Table.from_frame(unknown, code=("field", "before", "after"))})
    comparison = None
    if f.comparison is not None:
        summary, table = comparison_table(f)
        comparison = {"run_a": f.comparison.attrs.get("run_a"), "run_b": f.comparison.attrs.get("run_b"),
                      "summary": summary, "table": Table.from_frame(table, code=("cell",))}
    bundles = None
    if f.bundles:
        from lanelab.findings.bundles import compare_bundles, make_bundle

        mine = [make_bundle(f, run_id=r.run_id, note="this report") for r in f.matrix_runs if len(f.df)]
        cmp = compare_bundles([*mine, *f.bundles])
        bundles = {"rows": Table.from_frame(cmp.to_frame()), "agreement": Table.from_frame(cmp.agreement()),
                   "summary": cmp.summary(), "verdicts": Table.from_frame(cmp.verdicts())}
    findings._data = {
        "title": "lanelab findings: which billing lane, and why",
        "generated": f.created_at, "kit_version": __version__,
        "sim": any((r.header.get("mode") or "sim") == "sim" for r in f.runs), "sim_notice": SIM_NOTICE,
        "verdict": f.verdict,
        "new_to_this_kit": list(f.drift), "caveats": list(f.caveats),
        "inputs": f.input_lines(), "has_data": has,
        "runs": Table.from_frame(metadata(f), nowrap=("date", "requests")) if f.runs else None,  # (none: bundles alone)
        "effects": {"figure": "effects" if "effects" in figs else None,
                    "table": Table.from_frame(effects_table(f.effects), code=("cells",))} if has else None,
        "overview": {"kind": overview, "figure": overview if overview else None,
                     "extra_figures": [n for n in figs if n.startswith("heatmap-")],
                     "rows": f.rows, "cols": f.cols, "tables": overview_tables} if has else None,
        "answers": [{"question": a.question, "headline": a.headline, "explanation": a.explanation,
                     "cells": ", ".join(a.cells)} for a in f.answers],
        "headroom": {"figure": "headroom" if "headroom" in figs else None,
                     "table": Table.from_frame(lanes_table(f.df))} if has else None,
        "usage": usage, "timeline": _timeline_data(f, figs), "comparison": comparison, "bundles": bundles,
        "raw": Table.from_frame(_raw(f), code=("cell", "request id")) if has else None,
        "glossary": glossary(), "responsible_use": RESPONSIBLE_USE,
    }
    return findings._data


def timeline_table(tl: Timeline) -> pd.DataFrame:
    """A timeline's table (:meth:`~lanelab.findings.timeline.Timeline.to_frame`) in the report's words.

    Returns:
        A DataFrame with request, snapshot, date, status, outcome, lane, claim, moved ("moved" where the answer
        differs from the snapshot before), the simulator rule with its public source, and what was new to this kit
        (that column only when something was).
    """
    df = tl.to_frame()
    out = pd.DataFrame({
        "request": df["request"], "snapshot": df["policy"], "date": df["date"],
        "status": ["" if pd.isna(x) else str(int(x)) for x in df["status"]],
        "outcome": [an.outcome_label(o) for o in df["outcome"]], "lane": [an.lane_label(x) for x in df["lane"]],
        "claim": df["claim"], "moved": ["moved" if c else "" for c in df["changed"]],
        "simulator rule": [f"{r} ({src})" if src else r for r, src in zip(df["sim_rule"], df["rule_source"])],
    })
    if df["new_to_kit"].astype(bool).any():
        out["new to this kit"] = df["new_to_kit"]
    return out


def _timeline_data(f: Findings, figs: Mapping[str, Figure]) -> dict[str, Any] | None:
    tl = f.timeline
    if tl is None or not tl.rows:
        return None
    moved: list[str] = []
    last: dict[str, Any] = {}
    for row in tl.rows:  # each step where the outcome or lane moved, in words
        before = last.get(row["request"])
        if before is not None and row["changed"]:
            said = lambda r: f"{an.outcome_label(r['outcome'])} ({an.lane_label(r['lane'])})"
            moved.append(f"{row['request']}: from {before['policy']} to {row['policy']}, {said(before)} → {said(row)}"
                         + (f"; simulator rule {row['sim_rule']}" if row["sim_rule"] else ""))
        last[row["request"]] = row
    from lanelab.sim.server import account_summary

    under = (f" Every snapshot answers under the account the runs recorded ({account_summary(tl.account)})."
             if tl.account else f" Every snapshot answers under the simulator's default account "
             f"({account_summary(None)}); a run made under another account may end otherwise.")
    return {"figure": "timeline" if "timeline" in figs else None, "note": TIMELINE_NOTE + under,
            "table": Table.from_frame(timeline_table(tl), code=("claim",), nowrap=("date", "status")),
            "moved": moved, "caveats": [c for c in tl.caveats if c not in f.caveats],
            "live": any((r.header.get("mode") or "sim") == "live" for r in f.runs)}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_html(findings: Findings) -> str:
    """The report as one self-contained HTML document (inline CSS and images only), every value escaped and
    redacted (templates/report.html.j2).

    Returns:
        The HTML text.
    """
    data = report_data(findings)
    srcs = {name: _data_uri(findings.png(name)) for name in findings.figures()}
    return render("report.html.j2", "html", r=data, figure=srcs)


def render_markdown(findings: Findings, figure_names: Mapping[str, str]) -> str:
    """The report as GitHub-flavoured Markdown, every value escaped and redacted (templates/report.md.j2).

    ``figure_names`` maps figure names to the PNG file names beside it (figures not named are left out).

    Returns:
        The Markdown text.
    """
    return render("report.md.j2", "md", r=report_data(findings), figure=dict(figure_names))


# ---------------------------------------------------------------------------------------------------------------------
# Writing





def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(findings: Findings, out_dir: str | Path, stem: str = "findings",
                  secrets: Iterable[str] = ()) -> tuple[Path, Path]:
    """Write ``<out_dir>/<stem>.html`` and ``<stem>.md`` (with its PNG figures beside it).

    Both documents are rendered first and checked with :func:`lanelab.redact.assert_clean` (``secrets`` adds values
    to look for, e.g. the tokens in the kit's credential store); if either still holds a secret, nothing is written.
    Each file is replaced atomically.

    Returns:
        The paths of the HTML and the Markdown file.

    Raises:
        InputError: ``stem`` is not a plain file name (see :func:`safe_stem`), or ``out_dir`` is a file.
        SecretLeak: a secret is still in a rendered report (nothing is written).
        ServiceError: ``out_dir`` cannot be created or written (it is created when missing).
    """
    out_dir = Path(out_dir)
    stem = safe_stem(stem)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file, not a folder for the report.", "Pass a folder; a missing one is made.")
    secrets = [s for s in secrets if s]
    figs = findings.figures()
    names = {name: f"{stem}-{name}.png" for name in figs}
    page = render_html(findings)
    md = render_markdown(findings, names)
    redact.assert_clean(page, where=f"{stem}.html", extra=secrets)
    redact.assert_clean(md, where=f"{stem}.md", extra=secrets)
    html_path, md_path = out_dir / f"{stem}.html", out_dir / f"{stem}.md"
    try:
        for name in figs:
            _atomic_write(out_dir / names[name], findings.png(name))
        _atomic_write(html_path, page.encode("utf-8"))
        _atomic_write(md_path, md.encode("utf-8"))
    except OSError as exc:
        raise ServiceError(f"Cannot write the report to {out_dir} ({os_reason(exc)}).",
                           "Check the folder's permissions and the disk, or pass another folder.") from None
    return html_path, md_path


def build(paths: Iterable[str | Path], out_dir: str | Path, stem: str = "findings", rows: str | None = None,
          cols: str | None = None, secrets: Iterable[str] = (), bundles: Sequence[Bundle] = (),
          timeline: bool | None = False) -> tuple[Path, Path]:
    """Load run files, compute the findings and write both reports.

    ``timeline`` is :func:`timeline_for`'s ``asked``: False (the default) leaves the timeline out, None computes it
    for simulator runs only, True for live runs too (always against an embedded simulator).

    Returns:
        The paths of the HTML and the Markdown file (see :func:`write_reports`).

    Raises:
        NotFound, InputError: a run file is missing or unreadable (see :func:`lanelab.runs.load_run`), or ``stem``
            is not a plain file name.
        UserError: ``rows`` or ``cols`` is not a column of the runs' table.
        SecretLeak: a secret is still in a rendered report (nothing is written).
    """
    safe_stem(stem)
    runs = load_runs(paths)
    findings = collect(runs, rows=rows, cols=cols, bundles=bundles, timeline=timeline_for(runs, asked=timeline))
    return write_reports(findings, out_dir, stem=stem, secrets=secrets)


def stored_secrets(settings: Settings | None = None) -> list[str]:
    """The tokens in the kit's own credential store, to look for in a report before writing it (read only).

    Returns:
        The access and refresh tokens found; empty when the store is missing or unreadable (the redaction patterns
        still apply).
    """
    settings = settings or Settings.from_env()
    try:
        creds = CredentialStore(settings.home).all() if Path(settings.home).is_dir() else []
    except (UserError, OSError):  # an unreadable store must not stop a report; the patterns still apply
        return []
    return [s for c in creds for s in (c.access_token, c.refresh_token) if s]
