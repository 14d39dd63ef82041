"""The confirmation before live requests, as a widget: the notice, host, credential (masked) and cost, and one button.

All state lives in the :class:`lanelab.live.LiveGate` it drives (tested without a browser); the widget only shows
it and calls :meth:`~lanelab.live.LiveGate.confirm` when the button is pressed. In sim mode it shows one line and no
button. Self-contained: it displays nothing but itself and touches no other widget.

:func:`gate_for` builds the gate for requests that are not a matrix plan (notebook 04's captures and bisect probes,
the ``bisect`` command); :meth:`lanelab.matrix.plan.MatrixPlan.gate` builds a matrix's.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import ipywidgets as w

from lanelab import redact
from lanelab.config import Settings
from lanelab.live import Confirmation, LiveGate
from lanelab.matrix.budget import Cost, mix_cost, plan_cost
from lanelab.wire.spec import RequestSpec

__all__ = ["ConfirmWidget", "gate_for"]


def gate_for(settings: Settings, base_url: str, label: str, token: str, *, once: Iterable[RequestSpec] = (),
             mixed: tuple[RequestSpec, RequestSpec] | None = None, probes: int = 0, budget: int | None = None,
             confirmed: bool = False, what: str = "requests", extra: Iterable[str] = ()) -> LiveGate:
    """The confirmation state for live requests that are not a matrix: ``once`` sent once each, plus ``probes``
    requests mixing parts of the two ``mixed`` requests (a bisect), within ``budget`` inference requests.

    Returns a :class:`LiveGate` (sim mode: one that needs nothing; live: confirmed when ``confirmed``, the
    ``CONFIRM_LIVE`` parameter). The token is only shown masked. Raises nothing.
    """
    if settings.mode != "live":
        return LiveGate(None)
    first = plan_cost(once)
    rest = mix_cost(*mixed, probes) if mixed is not None and probes > 0 else Cost()
    cost = Cost(first.requests + rest.requests, first.tokens + rest.tokens)
    confirmation = Confirmation(base_url=base_url.rstrip("/"), label=label, masked=redact.mask(token),
                                requests=cost.requests, tokens=cost.tokens, what=what,
                                budget=f"{budget} inference requests, retries included" if budget else "",
                                extra=tuple(extra))
    return LiveGate(confirmation, confirmed=confirmed)


class ConfirmWidget:
    """A button over a :class:`LiveGate`. ``display(widget)`` shows it; tests call ``button.click()``.

    ``after`` is the line shown once confirmed (what to run next).
    """

    def __init__(self, gate: LiveGate,
                 after: str = "Now run the next cell (or Run ▸ Run Selected Cell and All Below)."):
        self.gate = gate
        self.after = after
        self.details = w.HTML()
        self.status = w.HTML()
        what = gate.confirmation.what if gate.confirmation else "requests"
        n = gate.confirmation.requests if gate.confirmation else 0
        self.button = w.Button(description=f"Send {n} {what}"[:40], button_style="warning", icon="check",
                               tooltip="Confirm the notice, host, credential and cost above")
        self.button.on_click(lambda _: self.confirm())
        children = [self.details, self.button, self.status] if gate.needed else [self.status]
        self.box = w.VBox(children)
        self.render()

    def confirm(self) -> None:
        """What the button does: confirm the gate, disable the button, say what to run next."""
        self.gate.confirm("the button")
        self.render()

    def render(self) -> None:
        if self.gate.confirmation is not None:
            self.details.value = self.gate.confirmation._repr_html_()
        self.button.disabled = self.gate.confirmed
        text = self.gate.status() + (f" {self.after}" if self.gate.needed and self.gate.confirmed else "")
        self.status.value = f"<b>{html.escape(text)}</b>"

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        """The widget for Lab, with the confirmation as its plain-text form (what a headless run records)."""
        bundle = dict(self.box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self.gate)
        return bundle

    def __repr__(self) -> str:
        return repr(self.gate)
