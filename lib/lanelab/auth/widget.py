"""The login step-through as widgets: endpoint and variant pickers, the authorize link, a paste box with its error
beside it, and a save button. All state and logic live in :class:`~lanelab.auth.flow.LoginFlow`."""

from __future__ import annotations

import html

import ipywidgets as w

from lanelab import redact
from lanelab.auth.flow import LoginFlow
from lanelab.errors import UserError

__all__ = ["LoginWidget"]


class LoginWidget:
    """Widgets over a :class:`LoginFlow`. ``display(widget)`` shows them; tests call the buttons' ``click()``.

    Every action catches the flow's :class:`~lanelab.errors.UserError` and shows it beside the paste box, so no
    button raises.
    """

    def __init__(self, flow: LoginFlow):
        self.flow = flow
        self.endpoints = w.Dropdown(options=flow.endpoint_choices, description="Endpoints",
                                    value=flow.endpoints.name if flow.endpoints else flow.endpoint_choices[0])
        self.variant = w.Dropdown(options=flow.variant_choices, value=flow.variant.name, description="Token POST")
        self.link_button = w.Button(description="New link", icon="link")
        self.link = w.HTML()
        # A password box: the code is a secret and must not linger in saved widget state.
        self.paste = w.Password(placeholder="code#state or the callback URL", description="Paste")
        self.submit_button = w.Button(description="Exchange", button_style="primary")
        self.error = w.HTML()
        self.label = w.Text(value=flow.label, description="Label")
        self.save_button = w.Button(description="Save")
        self.steps = w.HTML()
        self.result = w.HTML()
        self.link_button.on_click(lambda _: self.new_link())
        self.submit_button.on_click(lambda _: self.submit())
        self.save_button.on_click(lambda _: self.save())
        self.box = w.VBox([
            self.steps,
            w.HBox([self.endpoints, self.variant, self.link_button]),
            self.link,
            w.HBox([self.paste, self.submit_button, self.error]),
            self.result,
            w.HBox([self.label, self.save_button]),
        ])
        self.render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def _guard(self, action) -> None:  # type: ignore[no-untyped-def]
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
        self._guard(act)

    def submit(self) -> None:
        """The 'Exchange' button: submit the paste box (then cleared), exchange, and probe when a base URL is set."""
        def act() -> None:
            value, self.paste.value = self.paste.value, ""
            self.flow.set_variant(self.variant.value)
            if self.flow.submit(value) and self.flow.settings.base_url:
                self.flow.inspect()
        self._guard(act)

    def save(self) -> None:
        """The 'Save' button: save under the label box's value."""
        self._guard(lambda: self.flow.save(self.label.value.strip()))

    def render(self) -> None:
        """Refresh every widget from the flow's state."""
        flow = self.flow
        self.steps.value = flow._repr_html_()
        url = flow.authorize_url
        self.link.value = (f"<a href='{html.escape(url)}' target='_blank' rel='noopener'>Open the authorize page</a>"
                           if url else "<i>Click 'New link' to generate PKCE material and the authorize link.</i>")
        self.error.value = (f"<span style='color:#b00'>{html.escape(flow.error)}</span>" if flow.error else "")
        parts = []
        summary = flow.summary()
        if summary is not None:
            parts.append(summary._repr_html_())
        if flow.account is not None:
            parts.append(flow.account._repr_html_())
        if flow.saved_path is not None:
            parts.append(f"<p>Saved as <code>{html.escape(flow.label)}</code>.</p>")
        self.result.value = redact.redact_text("".join(parts))
