"""The shareable report: a self-contained HTML page and a GitHub-ready Markdown file built from one or more runs.

Both carry the run metadata (kit version, mode, host or policy, date, profile, design, counts), the answers, the
results matrix, factor effects, lane signals and the raw observations (collapsed). Every value is passed through
:mod:`lanelab.redact` while rendering, and the finished text is checked again before anything is written: if a secret
is still found, nothing is written and :class:`lanelab.redact.SecretLeak` is raised.

The HTML has inline CSS and inline PNGs only: no script, no external stylesheet, nothing loaded from a URL, so it
can be mailed or attached as it is. The Markdown's figures are PNG files written next to it.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lanelab import __version__, redact
from lanelab.auth.store import CredentialStore
from lanelab.config import Settings
from lanelab.errors import NotFound, UserError
from lanelab.findings import answers as ans
from lanelab.findings import frame as an
from lanelab.findings import plots
from lanelab.runs import Run, load_runs, tidy

__all__ = ["Findings", "axis_candidates", "build", "collect", "markdown_table", "metadata", "render_html",
           "render_markdown", "stored_secrets", "write_reports"]

#: Observations shown per run in the raw-details table.
RAW_ROWS = 200
RAW_COLUMNS = ("run_id", "cell_id", "label", "status", "outcome", "lane", "claim", "util_5h", "util_7d",
               "overage_status", "overage_disabled_reason", "error_type", "error_message", "request_id", "latency_ms",
               "target")
SIM_NOTICE = ("Simulator output: the responses come from lanelab's embedded simulator, a model built from public "
              "reports, not from Anthropic's servers. Live observations always outrank it.")
RESPONSIBLE_USE = ("lanelab diagnoses; it does not evade. Remedies that exist: fix a malformed request, enable extra "
                   "usage, use an API key, or use Anthropic's own clients.")


@dataclass
class Findings:
    """Everything a report shows, computed once from the runs (see :func:`collect`).

    ``df`` is the tidy table of all runs, ``rows``/``cols`` the heatmap's axes, ``effects`` the factor effects,
    ``answers`` the three answers, ``diagnosis`` the report's opening sentences, ``comparison`` the run-to-run
    comparison (two runs or more, else None) and ``usage`` each run's usage snapshots by run id.
    """

    runs: list[Run]
    df: pd.DataFrame
    rows: str
    cols: str
    effects: pd.DataFrame
    answers: ans.Answers
    diagnosis: list[str]
    comparison: pd.DataFrame | None = None
    usage: dict[str, pd.DataFrame] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    _figures: dict[str, Figure] | None = None
    _pngs: dict[str, bytes] = field(default_factory=dict)

    def png(self, name: str) -> bytes:
        """A figure as PNG bytes, rendered once.

        Raises:
            NotFound: there is no figure of that name (see :meth:`figures`).
        """
        if name not in self._pngs:
            self._pngs[name] = plots.to_png(self.figure(name))
        return self._pngs[name]

    def figure(self, name: str) -> Figure:
        """One named figure ("heatmap", "effects", "headroom", "usage-<run>", …); it displays itself in a notebook.

        Raises:
            NotFound: there is no figure of that name.
        """
        figs = self.figures()
        if name not in figs:
            raise NotFound(f"No figure {name!r} in these findings.", f"Choose among: {', '.join(figs)}.")
        return figs[name]

    def usage_figures(self) -> list[Figure]:
        """The usage before/after charts, one per run that recorded numeric usage snapshots (possibly none)."""
        return [fig for name, fig in self.figures().items() if name.startswith("usage-")]

    def usage_changes(self) -> pd.DataFrame:
        """What the usage endpoint says moved during each run.

        Returns:
            A DataFrame with run_id, field, before, after and change, for the numeric fields that changed; no rows
            when nothing moved or no run recorded snapshots.
        """
        moved = [u[u["change"].fillna(0) != 0].assign(run_id=run_id) for run_id, u in self.usage.items()]
        cols = ["run_id", "field", "before", "after", "change"]
        return pd.concat(moved)[cols].reset_index(drop=True) if moved else pd.DataFrame(columns=cols)

    def figures(self) -> dict[str, Figure]:
        """Named figures, built on first use: one heatmap per run ("heatmap" for the first), "effects", "headroom",
        and "usage-<run>" for each run with usage snapshots."""
        if self._figures is None:
            figs: dict[str, Figure] = {}
            for run_id in dict.fromkeys(self.df["run_id"]):
                sub = self.df[self.df["run_id"] == run_id]
                sub.attrs.update(self.df.attrs)
                name = "heatmap" if not figs else f"heatmap-{_slug(run_id)}"
                figs[name] = plots.heatmap(sub, self.rows, self.cols, title=f"{run_id}: outcome by {self.rows} and {self.cols}")
            figs["effects"] = plots.effects_chart(self.effects)
            figs["headroom"] = plots.headroom_chart(self.df)
            for run_id, usage in self.usage.items():
                fig = plots.usage_chart(usage)
                if fig is not None:
                    figs[f"usage-{_slug(run_id)}"] = fig
            self._figures = figs
        return self._figures


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text))[:60] or "run"


def axis_candidates(df: pd.DataFrame, effects: pd.DataFrame | None = None) -> list[str]:
    """Columns for the key heatmap's axes, best first.

    Returns:
        The factors that flip the outcome most, then the factors with most levels, then credential, profile and
        run id.
    """
    effects = an.factor_effects(df) if effects is None else effects
    varying = an.varying_factors(df)
    ranked = [f for f in effects["factor"] if f in varying and effects.set_index("factor").loc[f, "flips"] > 0] \
        if len(effects) else []
    return list(dict.fromkeys([*ranked, *varying, "credential", "profile", "run_id"]))


def collect(runs: Run | Sequence[Run], rows: str | None = None, cols: str | None = None) -> Findings:
    """Compute the findings of one or more loaded runs (see :func:`lanelab.runs.load_run`).

    ``rows`` and ``cols`` name the heatmap's axes; by default the factors that flip the outcome most.

    Returns:
        The :class:`Findings`.

    Raises:
        UserError: ``rows`` or ``cols`` is not a column of the runs' table (raised when a figure is drawn).
    """
    runs = [runs] if isinstance(runs, Run) else list(runs)
    df = tidy(runs)
    effects = an.factor_effects(df)
    spare = [c for c in axis_candidates(df, effects) if c not in (rows, cols)]
    rows = rows or spare.pop(0)
    cols = cols or spare.pop(0)
    comparison = None
    if df["run_id"].nunique() >= 2:
        comparison = an.compare_runs(df)
    usage = {r.run_id: an.usage_snapshots(r) for r in runs if r.usage}
    return Findings(runs=runs, df=df, rows=rows, cols=cols, effects=effects, answers=ans.answer_all(df),
                    diagnosis=ans.diagnosis(df, effects), comparison=comparison, usage=usage)


# ---------------------------------------------------------------------------------------------------------------------
# Tables shared by both formats


def metadata(findings: Findings) -> pd.DataFrame:
    """The runs behind the findings.

    Returns:
        A DataFrame with one line per run: kit version, mode, host or policy, date, profile, design, cells,
        observations and the outcome counts.
    """
    out = []
    for run in findings.runs:
        h = run.header
        sub = findings.df[findings.df["run_id"] == run.run_id]
        counts = sub["outcome"].astype(str).value_counts()
        out.append({
            "run": run.run_id, "kit version": h.get("kit_version") or __version__, "mode": h.get("mode") or "",
            "host / policy": h.get("policy") if h.get("mode") != "live" else h.get("host"),
            "date": h.get("started_at") or "", "profile": h.get("profile") or "", "design": h.get("design") or "",
            "cells": sub["cell_id"].nunique(), "observations": len(sub),
            "outcomes": ", ".join(f"{k} {v}" for k, v in counts.items()),
        })
    return pd.DataFrame(out)


def _raw(findings: Findings) -> pd.DataFrame:
    lanes = an.lane_signals(findings.df)
    raw = findings.df.assign(label=lanes["label"].values)
    return raw[list(RAW_COLUMNS)].head(RAW_ROWS * max(1, len(findings.runs)))


def _effects_table(effects: pd.DataFrame, shown: int = 6) -> pd.DataFrame:
    t = effects.copy()
    t["flip_rate"] = [f"{x:.0%}" for x in t["flip_rate"]]
    t["cells"] = [", ".join(c[:shown]) + (f" (+{len(c) - shown})" if len(c) > shown else "") for c in t["cells"]]
    return t


def _comparison_table(cmp: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in cmp.columns if c not in ("claim_a", "claim_b")]
    return cmp[keep]


def _safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every value as redacted text (tables are rendered from this, never from raw values)."""
    def cell(v: Any) -> str:
        if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
            return ""
        if isinstance(v, float):
            return f"{v:.3g}"
        return redact.redact_text(str(v))
    out = df.copy()
    out.columns = [redact.redact_text(str(c)) for c in out.columns]
    out.index = [redact.redact_text(str(i)) for i in out.index]
    return out.astype(object).map(cell)


def _text(value: Any) -> str:
    return redact.redact_text(str(value))


# ---------------------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.notice{background:#fff7e0;border-left:4px solid #E69F00;
padding:.5em 1em}.verdict{font-weight:600}.answer{margin-bottom:1.2em}.cells{font-family:monospace;font-size:.85em}
img{max-width:100%;height:auto}details{margin:1em 0}summary{cursor:pointer;font-weight:600}
footer{margin-top:3em;font-size:.85em;color:#555}
"""


def _html_table(df: pd.DataFrame, index: bool = False) -> str:
    return _safe(df).to_html(index=index, escape=True, border=0)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(findings: Findings) -> str:
    """The report as one self-contained HTML document (inline CSS and images only), every value redacted.

    Returns:
        The HTML text.
    """
    e = lambda v: html.escape(_text(v))
    figs = findings.figures()
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>lanelab findings</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>lanelab findings: which billing lane, and why</h1>",
             f"<p>Generated {e(findings.created_at)} by lanelab {e(__version__)}.</p>"]
    if any((r.header.get("mode") or "sim") == "sim" for r in findings.runs):
        parts.append(f'<p class="notice">{e(SIM_NOTICE)}</p>')
    parts += ["<h2>Runs</h2>", _html_table(metadata(findings)), "<h2>Diagnosis</h2>", "<ul>",
              *[f"<li>{e(line)}</li>" for line in findings.diagnosis], "</ul>", "<h2>Answers</h2>"]
    for a in findings.answers:
        parts.append('<div class="answer">')
        parts.append(f"<h3>{e(a.question)}</h3><p class=\"verdict\">{e(a.headline)}</p><p>{e(a.explanation)}</p>")
        if a.cells:
            parts.append(f'<p>Supporting cells: <span class="cells">{e(", ".join(a.cells))}</span></p>')
        elif a.next_run and a.answered:
            parts.append(f"<p>To go further: {e(a.next_run)}</p>")
        parts.append("</div>")
    parts += [f"<h2>Results matrix: outcome by {e(findings.rows)} and {e(findings.cols)}</h2>"]
    for name in figs:
        if name.startswith("heatmap"):
            parts.append(_img(findings.png(name), f"Outcome by {findings.rows} and {findings.cols}"))
    for run_id in dict.fromkeys(findings.df["run_id"]):
        sub = findings.df[findings.df["run_id"] == run_id]
        sub.attrs.update(findings.df.attrs)
        parts += [f"<p>{e(run_id)}</p>", _html_table(an.matrix(sub, findings.rows, findings.cols), index=True)]
    parts += ["<h2>Factor effects (minimal pairs)</h2>", _img(findings.png("effects"), "Factor effects"),
              _html_table(_effects_table(findings.effects)),
              "<h2>Lane signals: plan headroom beside the outcome</h2>", _img(findings.png("headroom"), "Plan headroom"),
              _html_table(an.lane_signals(findings.df))]
    for run_id, usage in findings.usage.items():
        parts += [f"<h2>Usage before and after {e(run_id)}</h2>", _html_table(usage)]
        if f"usage-{_slug(run_id)}" in figs:
            parts.append(_img(findings.png(f"usage-{_slug(run_id)}"), "Usage before and after"))
    if findings.comparison is not None:
        c = findings.comparison
        parts += [f"<h2>Compare runs: {e(c.attrs.get('run_a'))} → {e(c.attrs.get('run_b'))}</h2>",
                  _html_table(_comparison_table(c))]
    parts += ["<details><summary>Raw observations</summary>", _html_table(_raw(findings)), "</details>",
              f"<footer>{e(RESPONSIBLE_USE)}</footer>", "</body></html>"]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------------------------
# Markdown


def _md_cell(v: str) -> str:
    return v.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub pipe table of ``df``, every value redacted (pipes and newlines inside values escaped).

    Returns:
        The Markdown text.
    """
    safe = _safe(df).map(_md_cell)
    safe.columns = [_md_cell(c) for c in safe.columns]
    if index:
        safe.index = [_md_cell(i) for i in safe.index]
    return safe.to_markdown(index=index, tablefmt="github")


def render_markdown(findings: Findings, figure_names: Mapping[str, str]) -> str:
    """The report as GitHub-flavoured Markdown, every value redacted.

    ``figure_names`` maps figure names to the PNG file names beside it (figures not named are left out).

    Returns:
        The Markdown text.
    """
    t = _text
    out = ["## lanelab findings: which billing lane, and why", "",
           f"Generated {t(findings.created_at)} by lanelab {t(__version__)}.", ""]
    if any((r.header.get("mode") or "sim") == "sim" for r in findings.runs):
        out += [f"> {t(SIM_NOTICE)}", ""]
    out += ["### Runs", "", markdown_table(metadata(findings)), "", "### Diagnosis", "",
            *[f"- {t(line)}" for line in findings.diagnosis], "", "### Answers", ""]
    for a in findings.answers:
        out += [f"**{t(a.question)}**", "", f"*{t(a.headline)}*. {t(a.explanation)}"]
        if a.cells:
            out += ["", f"Supporting cells: `{t(', '.join(a.cells[:12]))}`" + (" …" if len(a.cells) > 12 else "")]
        out.append("")
    key = figure_names.get("heatmap")
    out += [f"### Results matrix: outcome by {t(findings.rows)} and {t(findings.cols)}", ""]
    if key:
        out += [f"![Outcome by {t(findings.rows)} and {t(findings.cols)}]({key})", ""]
    for run_id in dict.fromkeys(findings.df["run_id"]):
        sub = findings.df[findings.df["run_id"] == run_id]
        sub.attrs.update(findings.df.attrs)
        out += [f"`{t(run_id)}`", "", markdown_table(an.matrix(sub, findings.rows, findings.cols), index=True), ""]
    out += ["### Factor effects (minimal pairs)", "", markdown_table(_effects_table(findings.effects)), ""]
    if findings.comparison is not None:
        c = findings.comparison
        changed = c[c["change"] != "same"]
        out += [f"### Compare runs: `{t(c.attrs.get('run_a'))}` → `{t(c.attrs.get('run_b'))}`", "",
                f"{len(changed)} of {len(c)} cells changed.", "",
                markdown_table(_comparison_table(changed if len(changed) else c)), ""]
    out += ["<details><summary>Lane signals per cell</summary>", "", markdown_table(an.lane_signals(findings.df)), ""]
    if "headroom" in figure_names:
        out += [f"![Plan headroom beside the outcome]({figure_names['headroom']})", ""]
    out += ["</details>", ""]
    for run_id, usage in findings.usage.items():
        out += [f"<details><summary>Usage before and after {t(run_id)}</summary>", "", markdown_table(usage), "",
                "</details>", ""]
    out += ["<details><summary>Raw observations</summary>", "", markdown_table(_raw(findings)), "", "</details>", "",
            (f"<sub>{t(RESPONSIBLE_USE)} The figures are the PNG files next to this file; attach them when pasting."
             "</sub>"), ""]
    return "\n".join(out)


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
        SecretLeak: a secret is still in a rendered report (nothing is written).
        OSError: ``out_dir`` cannot be written.
    """
    out_dir = Path(out_dir)
    secrets = [s for s in secrets if s]
    figs = findings.figures()
    names = {name: f"{stem}-{name}.png" for name in figs}
    page = render_html(findings)
    md = render_markdown(findings, names)
    redact.assert_clean(page, where=f"{stem}.html", extra=secrets)
    redact.assert_clean(md, where=f"{stem}.md", extra=secrets)
    for name in figs:
        _atomic_write(out_dir / names[name], findings.png(name))
    html_path, md_path = out_dir / f"{stem}.html", out_dir / f"{stem}.md"
    _atomic_write(html_path, page.encode("utf-8"))
    _atomic_write(md_path, md.encode("utf-8"))
    return html_path, md_path


def build(paths: Iterable[str | Path], out_dir: str | Path, stem: str = "findings", rows: str | None = None,
          cols: str | None = None, secrets: Iterable[str] = ()) -> tuple[Path, Path]:
    """Load run files, compute the findings and write both reports (the ``report`` command calls this).

    Returns:
        The paths of the HTML and the Markdown file (see :func:`write_reports`).

    Raises:
        NotFound, InputError: a run file is missing or unreadable (see :func:`lanelab.runs.load_run`).
        UserError: ``rows`` or ``cols`` is not a column of the runs' table.
        SecretLeak: a secret is still in a rendered report (nothing is written).
    """
    findings = collect(load_runs(paths), rows=rows, cols=cols)
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
