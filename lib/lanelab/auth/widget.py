"""The login step-through as widgets: endpoint and variant pickers, the authorize link, a paste box with its error
beside it, and a save button with its own error beside it. All state and logic live in
:class:`~lanelab.auth.flow.LoginFlow`.

After a successful exchange the paste box and Exchange are disabled (a code is single-use: a second exchange would
only get invalid_grant) and say so in their tooltip and in a note beside Exchange; the credential is kept until
'New link' starts again. Every error
appears once, beside the button whose action caused it; buttons keep their labels.

IDs a browser test can use: the buttons' labels ("New link", "Exchange", "Save") never change; the widgets carry the
CSS classes ``lanelab-login-link``, ``lanelab-login-paste``, ``lanelab-login-exchange``, ``lanelab-login-save``,
``lanelab-login-label`` and, for the errors, ``lanelab-login-link-error``, ``lanelab-login-paste-error`` and
``lanelab-login-save-error``; the note beside a disabled Exchange carries ``lanelab-login-exchanged`` and the whole
widget ``lanelab-login``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

from lanelab import redact
from lanelab.auth.flow import STEP_TITLES, STEPS, LoginFlow
from lanelab.errors import UserError

__all__ = ["LoginWidget"]

#: Where an action's error is shown: beside the button that caused it.
ERROR_SLOTS = ("link", "paste", "save")


def _keep() -> w.Layout:
    """A button's layout: never narrower than its label (an error beside it takes the rest of the row and wraps)."""
    return w.Layout(width="auto", min_width="110px", flex="0 0 auto")


def _beside() -> w.Layout:
    """An error's layout: the rest of the row, wrapping."""
    return w.Layout(flex="1 1 auto", min_width="0", margin="0 0 0 8px")


EXCHANGED_TIP = "This link's code was exchanged already; click 'New link' to log in again."


class LoginWidget:
    """Widgets over a :class:`LoginFlow`. ``display(widget)`` shows them; tests call the buttons' ``click()``.

    Every action catches the flow's :class:`~lanelab.errors.UserError` and shows it beside the button that caused it
    (``link_error``, ``error`` beside Exchange, ``save_error``), so no button raises and no error shows twice.
    """

    def __init__(self, flow: LoginFlow):
        self.flow = flow
        self.endpoints = w.Dropdown(options=flow.endpoint_choices, description="Endpoints",
                                    value=flow.endpoints.name if flow.endpoints else flow.endpoint_choices[0])
        self.variant = w.Dropdown(options=flow.variant_choices, value=flow.variant.name, description="Token POST")
        self.link_button = w.Button(description="New link", icon="link", layout=_keep())
        self.link_error = w.HTML(layout=_beside())
        self.link = w.HTML()
        # A password box: the code is a secret and must not linger in saved widget state.
        self.paste = w.Password(placeholder="code#state or the callback URL", description="Paste",
                                layout=w.Layout(width="420px", flex="0 0 auto"))
        self.submit_button = w.Button(description="Exchange", button_style="primary", layout=_keep())
        self.error = w.HTML(layout=_beside())
        self.exchanged = w.HTML(layout=_beside())  # beside the disabled Exchange: why it is off
        self.label = w.Text(value=flow.label, description="Label", layout=w.Layout(width="420px", flex="0 0 auto"))
        self.save_button = w.Button(description="Save", layout=_keep())
        self.save_error = w.HTML(layout=_beside())
        self.steps = w.HTML()
        self.result = w.HTML()
        self._error_at: str | None = None
        for widget, name in ((self.link_button, "link"), (self.paste, "paste"), (self.submit_button, "exchange"),
                             (self.save_button, "save"), (self.label, "label"), (self.link_error, "link-error"),
                             (self.error, "paste-error"), (self.save_error, "save-error"),
                             (self.exchanged, "exchanged")):
            widget.add_class(f"lanelab-login-{name}")
        self.link_button.on_click(lambda _: self.new_link())
        self.submit_button.on_click(lambda _: self.submit())
        self.save_button.on_click(lambda _: self.save())
        self.box = w.VBox([
            self.steps,
            w.HBox([self.endpoints, self.variant, self.link_button, self.link_error]),
            self.link,
            w.HBox([self.paste, self.submit_button, self.error, self.exchanged]),
            self.result,
            w.HBox([self.label, self.save_button, self.save_error]),
        ])
        self.box.add_class("lanelab-login")
        self.render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def _guard(self, slot: str, action: Callable[[], None]) -> None:
        """Run ``action``; a UserError it raises becomes the flow's error, shown in ``slot`` only."""
        self._error_at = slot
        try:
            action()
        except UserError as exc:
            self.flow.error = redact.redact_text(str(exc))
        self.render()

    def new_link(self) -> None:
        """The 'New link' button: apply the pickers and start (or restart) the flow."""
        def act() -> None:
            if not self.flow.endpoints or self.flow.endpoints.name != self.endpoints.value:
                self.flow.choose(self.endpoints.value)
            self.flow.set_variant(self.variant.value)
            self.flow.start()
        self._guard("link", act)

    def submit(self) -> None:
        """The 'Exchange' button: submit the paste box (then cleared), exchange, and probe when a base URL is set.

        After a successful exchange the button is disabled; a click anyway (``click()`` in a test) is refused with
        an explanation and the credential is kept."""
        def act() -> None:
            value, self.paste.value = self.paste.value, ""
            self.flow.set_variant(self.variant.value)
            if self.flow.submit(value) and self.flow.settings.base_url:
                self.flow.inspect()
        self._guard("paste", act)

    def save(self) -> None:
        """The 'Save' button: save under the label box's value."""
        def act() -> None:
            self.flow.error = None
            self.flow.save(self.label.value.strip())
        self._guard("save", act)

    def _steps_html(self) -> str:
        flow = self.flow
        items = []
        for step in STEPS:
            mark = "✓" if step in flow.done else ("→" if step == flow.current_step else "·")
            items.append(f"<li>{mark} {html.escape(STEP_TITLES[step])}</li>")
        return f"<ol style='list-style:none'>{''.join(items)}</ol>"

    def render(self) -> None:
        """Refresh every widget from the flow's state."""
        flow = self.flow
        self.steps.value = self._steps_html()
        url = flow.authorize_url
        self.link.value = (f"<a href='{html.escape(url)}' target='_blank' rel='noopener'>Open the authorize page</a>"
                           if url else "<i>Click 'New link' to generate PKCE material and the authorize link.</i>")
        message = (f"<span style='color:#b00'>{html.escape(flow.error)}</span>" if flow.error else "")
        slot = self._error_at if self._error_at in ERROR_SLOTS else "paste"
        for name, widget in (("link", self.link_error), ("paste", self.error), ("save", self.save_error)):
            widget.value = message if name == slot else ""
        done = flow.exchanged
        self.submit_button.disabled = self.paste.disabled = done
        self.submit_button.tooltip = EXCHANGED_TIP if done else "Exchange the pasted code for tokens"
        self.exchanged.value = ("<span style='color:#060'>✓ Exchanged: the credential is below. To log in again, "
                                "click 'New link'.</span>" if done and not self.error.value else "")
        self.save_button.disabled = not done
        self.save_button.tooltip = "Save the credential under the label" if done else "Exchange a code first"
        parts = []
        summary = flow.summary()
        if summary is not None:
            parts.append(summary._repr_html_())
        if flow.account is not None:
            parts.append(flow.account._repr_html_())
        if done and "save" not in flow.done:
            parts.append("<p>The code was exchanged; Exchange stays off until 'New link'. Save the credential "
                         "below.</p>")
        if flow.saved_path is not None:
            parts.append(f"<p>Saved as <code>{html.escape(flow.label)}</code>.</p>")
        self.result.value = redact.redact_text("".join(parts))
