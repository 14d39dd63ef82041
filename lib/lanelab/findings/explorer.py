"""Explore one cell at a time (notebook 03): pick a cell and see how its request differs from the request as sent
(the annotated diff of :mod:`lanelab.wire.diff`) and what came back: the status, the server's message
verbatim, the lane signals of the response headers, and, in sim mode, which simulator rule decided it.

All state lives in :class:`Explorer`, a plain object a test drives without a browser; :class:`ExplorerWidget` is a
thin ipywidgets layer over it (a dropdown and an HTML pane).

IDs a browser test can use: the dropdown's description is "Cell" and it carries the CSS class
``lanelab-explorer-cell``; the pane carries ``lanelab-explorer-view``, and the view's first line is the cell's
change (e.g. "tools=mcp__") in an element with class ``lanelab-explorer-title``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from lanelab import redact
from lanelab.errors import NotFound, ServiceError
from lanelab.findings import frame as an
from lanelab.wire.diff import SpecDiff, diff_specs
from lanelab.wire.spec import RequestSpec

if TYPE_CHECKING:
    from lanelab.config import Settings
    from lanelab.findings.report import Findings

__all__ = ["CellView", "Explorer", "ExplorerWidget", "explorer_for", "sim_rules"]

#: The view's section headings: as large as body text (a widget pane shrinks a bare h5 to a footnote).
_SECTION = " style='font-size:1.1em;margin:1em 0 0.4em'"
NO_RULE = "not known: the simulator that answered is not running, or this run was made in live mode"


def sim_rules(base_url: str, timeout: float = 5.0) -> dict[str, str]:
    """Which simulator rule answered each request, read from a running simulator's request log
    (``GET /_sim/requests``, loopback only).

    Returns:
        request id → rule id (requests the log does not hold are absent).

    Raises:
        ServiceError: the simulator cannot be reached or answers something other than its log.
        HostNotAllowed: ``base_url`` is not a loopback address.
    """
    import httpx

    from lanelab import http
    from lanelab.config import is_loopback_url
    from lanelab.errors import HostNotAllowed

    if not is_loopback_url(base_url):
        raise HostNotAllowed(f"{base_url} is not the local simulator; its request log is read on loopback only.")
    try:
        with http.client(base_url, timeout=timeout) as c:
            resp = c.get(base_url.rstrip("/") + "/_sim/requests")
        log = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceError(f"The simulator at {base_url} did not answer with its request log ({type(exc).__name__}).",
                           "Is it still running? Sim rules are only known while it is.") from None
    if not isinstance(log, list):
        raise ServiceError(f"The simulator at {base_url} did not answer with its request log.")
    return {str(e["request_id"]): str(e["rule"]) for e in log
            if isinstance(e, dict) and e.get("request_id") and e.get("rule")}


@dataclass
class CellView:
    """What one cell sent and got back, ready to show.

    ``change`` is what the cell changed ("as sent" for the unchanged request); ``diff`` its request against the
    request as sent (None for that request itself, or when a stored request is missing); ``signals`` the lane
    signals in words; ``sim_rule`` the simulator rule (None outside sim mode), ``classified_by`` the outcome rule of
    data/outcomes.toml that named the outcome.
    """

    cell_id: str
    run_id: str
    change: str
    baseline_id: str | None
    status: int | None
    outcome: str
    lane: str
    message: str
    request_id: str
    signals: dict[str, str]
    mode: str
    sim_rule: str | None
    classified_by: str | None
    diff: SpecDiff | None

    @property
    def is_baseline(self) -> bool:
        return self.baseline_id == self.cell_id

    def response_frame(self) -> pd.DataFrame:
        """The response as a two-column table (what, value): status, outcome, lane, message verbatim, request id,
        the lane signals, the rules."""
        rows = [("status", "no response" if self.status is None else str(self.status)),
                ("outcome", self.outcome), ("billing lane", self.lane),
                ("message (verbatim)", self.message or "(none)"), ("request id", self.request_id or "(none)")]
        rows += list(self.signals.items())
        if self.mode == "sim":
            rows.append(("simulator rule", self.sim_rule or NO_RULE))
        if self.classified_by:
            rows.append(("classified by", f"rule {self.classified_by} of data/outcomes.toml"))
        return pd.DataFrame(rows, columns=["what", "value"])

    def diff_text(self) -> str:
        """One sentence about the request: what differs from the request as sent, or that it is that request."""
        if self.is_baseline:
            return "This is the request as the client sends it (nothing changed)."
        if self.diff is None:
            return "The stored requests are missing, so the difference cannot be shown."
        if not len(self.diff):
            return "This request is the same as the request as sent (the change made no difference on the wire)."
        return f"{len(self.diff)} difference{'s' if len(self.diff) != 1 else ''} from the request as sent:"

    def to_html(self) -> str:
        """The view as HTML (title, the request's differences, the response), every value escaped and redacted."""
        from lanelab.findings.render import Table, html_table

        parts = [f'<h4 class="lanelab-explorer-title">{html.escape(self.change)}</h4>',
                 f"<p>Cell <code>{html.escape(self.cell_id)}</code> of run <code>{html.escape(self.run_id)}</code>.</p>",
                 f"<h5{_SECTION}>The request</h5>", f"<p>{html.escape(self.diff_text())}</p>"]
        if self.diff is not None and len(self.diff) and not self.is_baseline:
            frame = self.diff.to_frame().drop(columns=["sources"], errors="ignore")
            parts.append(str(html_table(Table.from_frame(frame))))
        parts += [f"<h5{_SECTION}>The response</h5>", str(html_table(Table.from_frame(self.response_frame())))]
        return redact.redact_text("".join(parts))

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        status = "no response" if self.status is None else self.status
        return f"<CellView {self.cell_id} {self.change}: {status} {self.outcome}, lane {self.lane}>"


class Explorer:
    """The cells of a run (or several) and the one being looked at.

    ``options`` lists (label, cell id) pairs for a picker, the request as sent first and then the cells that moved
    onto the plan, that ended differently, and the rest; ``select`` picks a cell and returns its :class:`CellView`.
    ``rules`` maps request ids to simulator rules (see :func:`sim_rules`); without it the view says the rule is not
    known.
    """

    def __init__(self, df: pd.DataFrame, rules: Mapping[str, str] | None = None,
                 classified_by: Mapping[str, str] | None = None):
        self.df = df
        self.rules = dict(rules or {})
        self.classified_by = dict(classified_by or {})
        self._factors = an.factors_of(df)
        self._rows = {str(r["cell_id"]): r for r in an.records(df)}
        self.selected: str | None = None
        self.options: list[tuple[str, str]] = self._options()
        if self.options:
            self.selected = self.options[0][1]

    @property
    def cell_ids(self) -> list[str]:
        """Every cell id the explorer can show, in the picker's order."""
        return [cid for _, cid in self.options]

    @classmethod
    def from_findings(cls, findings: Findings, rules: Mapping[str, str] | None = None) -> Explorer:
        """An explorer over the matrix cells of ``findings`` (the classifier rule read from each cell record)."""
        classified = {cid: str(rec["rule"]) for run in findings.matrix_runs for cid, rec in run.cells.items()
                      if rec.get("rule")}
        return cls(findings.df, rules=rules, classified_by=classified)

    def _baseline_of(self, row: Mapping[str, Any]) -> str | None:
        return an.baseline_cell(self.df, row["run_id"])

    def _options(self) -> list[tuple[str, str]]:
        many = self.df["run_id"].nunique() > 1 if len(self.df) else False
        ranked = []
        for cid, r in self._rows.items():
            base = self._baseline_of(r)
            base_row = self._rows.get(base) if base else None
            change = an.change_label(r, self._factors)
            group = (0 if cid == base else 1 if an.on_plan(r["outcome"], r["lane"], r["status"])
                     else 2 if base_row is not None and str(r["outcome"]) != str(base_row["outcome"]) else 3)
            label = f"{change} · {an.status_and_outcome(r['status'], r['outcome'])}"
            if many:
                label = f"{r['run_id']}: {label}"
            ranked.append((group, label, cid))
        ranked.sort(key=lambda t: t[0])
        return [(label, cid) for _, label, cid in ranked]

    def select(self, cell_id: str) -> CellView:
        """Look at ``cell_id``.

        Returns:
            Its :class:`CellView`.

        Raises:
            NotFound: the table has no such cell.
        """
        if cell_id not in self._rows:
            raise NotFound(f"No cell {cell_id!r} in these runs.", "Pick one of the explorer's options.")
        self.selected = cell_id
        return self._view(cell_id)

    def view(self) -> CellView | None:
        """The selected cell's :class:`CellView` (None when the table is empty)."""
        return None if self.selected is None else self._view(self.selected)

    def _view(self, cell_id: str) -> CellView:
        r = self._rows[cell_id]
        base = self._baseline_of(r)
        diff = None
        if base and base != cell_id:
            a, b = r.get("spec"), self._rows[base].get("spec")
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                diff = diff_specs(RequestSpec.from_dict(b), RequestSpec.from_dict(a), "as sent",
                                  an.change_label(r, self._factors))
        pct = lambda v: "" if v is None or pd.isna(v) else f"{100 * float(v):.3g}% used"
        signals = {"5-hour window": pct(r.get("util_5h")), "7-day window": pct(r.get("util_7d")),
                   "window that applies": an.said(r.get("claim")), "extra usage": an.said(r.get("overage_status")),
                   "why extra usage is off": an.said(r.get("overage_disabled_reason"))}
        signals = {k: v for k, v in signals.items() if v} or {
            "lane signals": "the response said nothing about the plan windows"}
        status = None if r["status"] is None or pd.isna(r["status"]) else int(r["status"])
        request_id = an.said(r.get("request_id"))
        mode = an.said(r.get("mode")) or "sim"
        return CellView(
            cell_id=cell_id, run_id=str(r["run_id"]), change=an.change_label(r, self._factors),
            baseline_id=base, status=status, outcome=an.outcome_label(r["outcome"]), lane=an.lane_label(r["lane"]),
            message=an.said(r.get("error_message")), request_id=request_id, signals=signals, mode=mode,
            sim_rule=self.rules.get(request_id) if mode == "sim" else None,
            classified_by=self.classified_by.get(cell_id), diff=diff)


class ExplorerWidget:
    """A dropdown of cells and an HTML pane showing the selected one; all state is the :class:`Explorer`'s.

    ``display(widget)`` shows it; tests set ``dropdown.value`` (a cell id) and read ``pane.value``.
    """

    def __init__(self, explorer: Explorer):
        import ipywidgets as w

        self.explorer = explorer
        self.dropdown = w.Dropdown(options=explorer.options, value=explorer.selected, description="Cell",
                                   layout=w.Layout(width="95%"))
        self.dropdown.add_class("lanelab-explorer-cell")
        self.pane = w.HTML()
        self.pane.add_class("lanelab-explorer-view")
        self.dropdown.observe(self._changed, names="value")
        self.box = w.VBox([self.dropdown, self.pane])
        self.render()

    def _changed(self, change: Mapping[str, Any]) -> None:
        if change.get("new") is not None:
            self.explorer.select(change["new"])
        self.render()

    def render(self) -> None:
        """Show the selected cell (or that there is none)."""
        view = self.explorer.view()
        self.pane.value = view.to_html() if view else "<p>These runs hold no cells to explore.</p>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)



def explorer_for(findings: Findings, settings: Settings | None = None) -> tuple[Explorer, str]:
    """An explorer over ``findings`` with the simulator rules when the simulator that answered is reachable (sim
    mode with ``LANELAB_BASE_URL`` set); never raises for an unreachable simulator.

    Returns:
        The :class:`Explorer` and one sentence saying whether simulator rules are shown.
    """
    from lanelab.config import Settings as _Settings
    from lanelab.errors import UserError

    settings = settings or _Settings.from_env()
    rules: dict[str, str] = {}
    note = "Simulator rules are not shown: no running simulator is configured (LANELAB_BASE_URL)."
    if settings.mode != "sim":
        note = "Live mode: the server's rules are not visible, only what it answered."
    elif settings.base_url:
        try:
            rules = sim_rules(settings.base_url)
            known = sum(1 for r in findings.df["request_id"] if r in rules)
            note = (f"Simulator rules read from {settings.base_url}: known for {known} of {len(findings.df)} cells "
                    "(cells answered by another simulator session show 'not known').")
        except UserError as exc:
            note = f"Simulator rules are not shown: {exc}"
    return Explorer.from_findings(findings, rules=rules), note
