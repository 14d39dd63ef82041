"""Notebook 02's pickers as widgets: a thin ipywidgets layer over :class:`lanelab.matrix.picker.MatrixPicker`.

Profile (the profiles, the captures under LANELAB_OUT/captures, or a file path), design, factors (one tick box each)
and budget; the cell count and cost below them update with every choice, a choice that cannot be sent says why; in
live mode the confirmation (:class:`lanelab.matrix.confirm.ConfirmWidget` over the picker's gate) comes next and
Send stays off until it is confirmed; then the progress bar and the first-look chart of the run.

IDs a browser test can use: the Send button's label is "Send"; the widgets carry the CSS classes
``lanelab-matrix-profile``, ``-path``, ``-design``, ``-budget``, ``-factors`` (the tick boxes' grid; each box is
labelled with its factor), ``-cost``, ``-message``, ``-send``, ``-status``, ``-progress`` (the bar), ``-progress-text``
("12/12 cells"), ``-answer`` and ``-chart``, all prefixed ``lanelab-matrix``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from lanelab import redact
from lanelab.findings.render import html_inline
from lanelab.live import LiveGate
from lanelab.matrix.confirm import ConfirmWidget
from lanelab.matrix.picker import DESIGN_CHOICES, MatrixPicker

__all__ = ["MatrixWidget"]

_LABEL = {"description_width": "70px"}


class MatrixWidget:
    """Widgets over a :class:`MatrixPicker`. ``display(widget)`` shows them; tests set the widgets' values and call
    ``send_button.click()``."""

    def __init__(self, picker: MatrixPicker):
        self.picker = picker
        self._syncing = False
        self._sending = False
        self._gate: LiveGate | None = None
        self.profile = w.Dropdown(options=picker.profile_choices, value=picker.profile, description="Profile",
                                  style=_LABEL, layout=w.Layout(width="360px"))
        self.path = w.Text(placeholder="or the path of a capture (.jsonl) or profile (.toml), then Enter",
                           description="File", style=_LABEL, continuous_update=False,
                           layout=w.Layout(width="480px"))
        self.design = w.Dropdown(options=list(DESIGN_CHOICES), value=picker.chosen_design, description="Design",
                                 style=_LABEL, layout=w.Layout(width="360px"))
        self.budget = w.Text(value="" if picker.budget is None else str(picker.budget),
                             placeholder="no cap" if not picker.live else "inference requests",
                             description="Budget", style=_LABEL, continuous_update=False,
                             tooltip="The most inference requests to send, retries included",
                             layout=w.Layout(width="240px"))
        chosen = set(picker.chosen_factors)
        self.factor_boxes = {name: w.Checkbox(value=name in chosen, description=name, indent=False,
                                              tooltip=picker.factor_description(name),
                                              layout=w.Layout(width="auto"))
                             for name in picker.factor_choices}
        self.all_button = w.Button(description="All", layout=w.Layout(width="auto"), tooltip="Tick every factor")
        self.none_button = w.Button(description="None", layout=w.Layout(width="auto"), tooltip="Untick every factor")
        self.factors = w.GridBox(list(self.factor_boxes.values()),
                                 layout=w.Layout(grid_template_columns="repeat(4, minmax(170px, 1fr))",
                                                 grid_gap="0 12px", width="100%"))
        self.cost = w.HTML()
        self.message = w.HTML()
        self.confirm_box = w.VBox()
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane",
                                    layout=w.Layout(width="auto", min_width="110px"))
        self.status = w.HTML()
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Progress", style=_LABEL,
                                      layout=w.Layout(width="480px"))
        self.progress_text = w.Label(value="nothing sent yet")
        self.answer = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto", display="none"))
        for widget, name in ((self.profile, "profile"), (self.path, "path"), (self.design, "design"),
                             (self.budget, "budget"), (self.factors, "factors"), (self.cost, "cost"),
                             (self.message, "message"), (self.send_button, "send"), (self.status, "status"),
                             (self.progress, "progress"), (self.progress_text, "progress-text"),
                             (self.answer, "answer"), (self.chart, "chart")):
            widget.add_class(f"lanelab-matrix-{name}")
        self._wire()
        self.box = w.VBox([
            w.HBox([self.profile, self.path]),
            w.HBox([self.design, self.budget]),
            w.HBox([w.HTML("<b>Factors to vary</b>", layout=w.Layout(width="auto", margin="0 12px 0 4px")),
                    self.all_button, self.none_button]),
            self.factors,
            self.cost,
            self.message,
            self.confirm_box,
            w.HBox([self.send_button, self.status], layout=w.Layout(align_items="center")),
            w.HBox([self.progress, self.progress_text], layout=w.Layout(align_items="center")),
            self.answer,
            self.chart,
        ], layout=w.Layout(width="100%"))
        self.render()

    def _wire(self) -> None:
        def on(widget: w.Widget, choice: Callable[[Any], dict[str, Any]]) -> None:
            widget.observe(lambda change: self._choose(**choice(change["new"])), names="value")

        self.profile.observe(self._profile_picked, names="value")
        on(self.design, lambda v: {"design": v})
        on(self.budget, lambda v: {"budget": v})
        self.path.observe(self._path_entered, names="value")
        for box in self.factor_boxes.values():
            box.observe(lambda _: self._choose(factors=self._ticked()), names="value")
        self.all_button.on_click(lambda _: self._tick_all(True))
        self.none_button.on_click(lambda _: self._tick_all(False))
        self.send_button.on_click(lambda _: self.send())
        self.picker.on_progress = self._progress

    def _ticked(self) -> list[str]:
        return [name for name, box in self.factor_boxes.items() if box.value]

    def _choose(self, **choices: Any) -> None:
        if self._syncing:
            return
        self.picker.choose(**choices)
        self.render()

    def _profile_picked(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        self._syncing = True  # a profile picked from the list: the file box no longer applies
        try:
            if self.path.value and self.path.value.strip() != change["new"]:
                self.path.value = ""
        finally:
            self._syncing = False
        self._choose(profile=change["new"])

    def _path_entered(self, change: dict[str, Any]) -> None:
        value = str(change["new"] or "").strip()
        if value and not self._syncing:
            self._choose(profile=value)

    def _tick_all(self, value: bool) -> None:
        self._syncing = True
        try:
            for box in self.factor_boxes.values():
                box.value = value
        finally:
            self._syncing = False
        self._choose(factors=self._ticked())

    def send(self) -> None:
        """What Send does: send through the picker (which refuses until a live gate is confirmed), then show the
        run's result and first-look chart."""
        self._sending = True
        self.chart.layout.display = "none"
        self.answer.value = ""
        self.render()
        try:
            self.picker.send()
        finally:
            self._sending = False
            self.render()

    def _progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress_text.value = f"{done}/{total} cells"
        self.progress.bar_style = "success" if total and done >= total else ""

    # -- showing ------------------------------------------------------------------------------------------------------
    def render(self) -> None:
        """Refresh every widget from the picker's state."""
        p = self.picker
        self._syncing = True
        try:
            options = p.profile_choices
            if list(self.profile.options) != options:
                self.profile.options = options
            self.profile.value = p.profile if p.profile in {v for _, v in options} else None
            self.design.value = p.chosen_design
            chosen = set(p.chosen_factors)
            for name, box in self.factor_boxes.items():
                box.value = name in chosen
        finally:
            self._syncing = False
        self.cost.value = "<br>".join(f"<b>{html.escape(line)}</b>" if i == 0 else html.escape(line)
                                      for i, line in enumerate(p.cost_lines()))
        self.message.value = (f"<span style='color:#b00'>{html.escape(redact.redact_text(p.message))}</span>"
                              if p.message else "")
        self._render_gate()
        self.send_button.disabled = self._sending or not p.confirmed
        self.send_button.tooltip = ("Sending…" if self._sending else p.message or
                                    ("Confirm the live requests above first" if p.ready and not p.confirmed
                                     else "Send every cell of this plan"))
        self.status.value = html.escape(redact.redact_text(p.status)) if p.status else ""
        done, total = p.progress
        if total:
            self._progress(done, total)
        answer = p.answer()
        self.answer.value = f"<p>{html_inline(redact.redact_text(answer))}</p>" if answer else ""
        png = p.chart_png() if not self._sending else None
        if png:
            if self.chart.value != png:
                self.chart.value = png
            self.chart.layout.display = ""
        else:
            self.chart.layout.display = "none"

    def _render_gate(self) -> None:
        gate = self.picker.gate
        if gate is self._gate:
            return
        self._gate = gate
        if gate is None or not gate.needed:
            self.confirm_box.children = ()
            return
        confirm = ConfirmWidget(gate, after="Now press Send below.")
        n = gate.confirmation.requests if gate.confirmation is not None else 0
        confirm.button.description = f"Confirm {n} live requests"[:40]
        confirm.button.on_click(lambda _: self.render())  # after the gate is confirmed: Send comes on
        self.confirm_box.children = (confirm.box,)

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        """The widgets for Lab, with the picker's lines as the plain-text form (what a headless run records)."""
        bundle = dict(self.box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self.picker)
        return bundle

    def __repr__(self) -> str:
        return repr(self.picker)
