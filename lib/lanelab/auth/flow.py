"""The login step-through as a plain object: steps, the current step, messages, and the error shown by the input.

The notebook widgets, the CLI and the tests drive the same :class:`LoginFlow`, so the interactive path is tested
without a browser and every front end reports the same errors.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import httpx

from lanelab import redact
from lanelab.auth import oauth
from lanelab.auth.credential import Credential, validate_label
from lanelab.auth.introspect import AccountSummary, CredentialSummary, UsageCache, describe, inspect_account
from lanelab.auth.issuer import default_label
from lanelab.auth.paste import PastedCode, PasteError, StateMismatch, parse_paste
from lanelab.auth.store import CredentialStore, StoreNotWritable
from lanelab.config import Settings
from lanelab.errors import StateError, UserError

__all__ = ["STEPS", "STEP_TITLES", "FlowOrderError", "LoginFlow", "Message"]

STEPS = ("choose", "authorize", "paste", "exchange", "inspect", "save")
STEP_TITLES = {
    "choose": "Choose the endpoint set",
    "authorize": "Open the authorize link",
    "paste": "Paste the code from the callback page",
    "exchange": "Exchange the code for tokens",
    "inspect": "Probe profile and usage",
    "save": "Save under a label",
}


class FlowOrderError(StateError):
    """A step was asked for before the steps it depends on."""


@dataclass
class Message:
    """One line of the flow's log: the step it belongs to, ``info`` or ``error``, and the (redacted) text."""

    step: str
    level: str  # "info" | "error"
    text: str


class LoginFlow:
    """One OAuth login, one visible step at a time.

    ``settings`` defaults to :meth:`Settings.from_env`; ``label`` to the mode's default (``sim-pkce`` or
    ``live-pkce``, :func:`lanelab.auth.issuer.default_label`); ``store`` to the store in ``settings.home``. With
    ``endpoints`` the first step is taken at once. Raises :class:`~lanelab.auth.oauth.EndpointSetError` for an
    unknown ``variant`` or an ``endpoints`` set not usable in this mode, and
    :class:`~lanelab.auth.credential.InvalidLabel` for a ``label`` the store could not take (found now, not after
    the single-use code was exchanged).
    """

    def __init__(self, settings: Settings | None = None, *, endpoints: str | None = None,
                 variant: str = "axios-json", label: str | None = None, store: CredentialStore | None = None,
                 client: httpx.Client | None = None):
        self.settings = settings or Settings.from_env()
        self.store = store or CredentialStore(self.settings.home)
        self.client = client
        self.label = validate_label(label or default_label(self.settings.mode))  # before the single-use code is spent
        self.endpoint_choices = oauth.list_endpoint_sets(self.settings.mode)
        self.variant_choices = list(oauth.load_client_variants())
        self.variant = oauth.client_variant(variant)
        self.endpoints: oauth.EndpointSet | None = None
        self.authorization: oauth.Authorization | None = None
        self.pasted: PastedCode | None = None
        self.credential: Credential | None = None
        self.account: AccountSummary | None = None
        self.saved_path: Path | None = None
        self.messages: list[Message] = []
        self.error: str | None = None
        self.done: set[str] = set()
        if endpoints is not None:
            self.choose(endpoints)

    # -- state ----------------------------------------------------------------------------------------------------
    @property
    def current_step(self) -> str | None:
        """The first step not done yet (None when the flow is complete)."""
        return next((s for s in STEPS if s not in self.done), None)

    def _info(self, step: str, text: str) -> None:
        self.messages.append(Message(step, "info", redact.redact_text(text)))

    def _fail(self, step: str, exc: Exception) -> None:
        self.error = redact.redact_text(str(exc))
        self.messages.append(Message(step, "error", self.error))

    def _require(self, step: str, needed: str) -> None:
        if needed not in self.done:
            raise FlowOrderError(f"Cannot {STEP_TITLES[step].lower()} yet.",
                                 f"First: {STEP_TITLES[needed].lower()}.")

    @property
    def exchanged(self) -> bool:
        """True once this link's code has been exchanged for a credential (it is single-use: a second exchange would
        only get invalid_grant, so the flow refuses it and keeps the credential)."""
        return self.credential is not None and "exchange" in self.done

    def _refuse_second_exchange(self) -> None:
        if self.exchanged:
            raise FlowOrderError("This link's code was already exchanged; the credential it gave is kept.",
                                 "Save it, or click 'New link' (flow.start()) to log in again.")

    def _reset_from(self, step: str) -> None:
        for s in STEPS[STEPS.index(step):]:
            self.done.discard(s)

    # -- steps ----------------------------------------------------------------------------------------------------
    def choose(self, name: str | None = None) -> oauth.EndpointSet:
        """Pick the endpoint set (default: the first one for this mode) and return it, resolved.

        Raises :class:`~lanelab.auth.oauth.EndpointSetError` for an unknown set or one of the other mode (saying
        which mode it belongs to), or a simulator set when no ``LANELAB_BASE_URL`` is known.
        """
        name = name or oauth.default_endpoint_set_name(self.settings)
        if name not in self.endpoint_choices:
            other = "live" if self.settings.mode == "sim" else "sim"
            known = oauth.list_endpoint_sets()
            raise oauth.EndpointSetError(
                f"Endpoint set {name!r} is not available in {self.settings.mode} mode"
                + (f" (it belongs to {other} mode)." if name in known else "."),
                f"Choose one of: {', '.join(self.endpoint_choices)}"
                + (f", or set LANELAB_MODE={other}." if name in known else "."))
        self.endpoints = oauth.endpoint_set(name, self.settings.base_url)
        self._reset_from("choose")
        self.authorization = self.pasted = self.credential = self.account = None
        self.done.add("choose")
        self._info("choose", f"Endpoint set {name!r}: {self.endpoints.description}")
        return self.endpoints

    def set_variant(self, name: str) -> oauth.ClientVariant:
        """Choose how the token POST is shaped (JSON or form body, user agent); returns the variant.

        Raises :class:`~lanelab.auth.oauth.EndpointSetError` for an unknown name."""
        self.variant = oauth.client_variant(name)
        return self.variant

    def start(self) -> str:
        """Fresh PKCE material and state; returns the authorize URL. Also how the flow restarts.

        Chooses the default endpoint set first if none was chosen (and raises what :meth:`choose` raises)."""
        if "choose" not in self.done:
            self.choose()
        assert self.endpoints is not None
        self._reset_from("authorize")
        self.pasted = self.credential = self.account = None
        self.error = None
        self.authorization = oauth.start(self.endpoints)
        self.done.add("authorize")
        self._info("authorize", "Open the link, approve, and copy the value the callback page shows.")
        return self.authorization.url

    @property
    def authorize_url(self) -> str | None:
        """The authorize URL of the current attempt (None before :meth:`start`)."""
        return self.authorization.url if self.authorization else None

    def submit_paste(self, text: str | None) -> bool:
        """Parse and check a pasted value; returns True when accepted.

        On a bad paste returns False, ``self.error`` says why and the step stays current (nothing raised). Raises
        :class:`FlowOrderError` before :meth:`start`, and once this link's code was exchanged (the credential is
        kept; a code is single-use).
        """
        self._require("paste", "authorize")
        assert self.authorization is not None
        self._refuse_second_exchange()
        try:
            self.pasted = parse_paste(text, expected_state=self.authorization.pkce.state)
        except PasteError as exc:
            self.pasted = None
            self._fail("paste", exc)
            if isinstance(exc, StateMismatch):
                self._info("paste", "Click 'New link' (or call flow.start()) to restart the flow.")
            return False
        self.error = None
        self.done.add("paste")
        self._info("paste", f"Code accepted ({redact.mask(self.pasted.code)}); state matches.")
        return True

    def exchange(self) -> Credential:
        """Exchange the accepted code for tokens; returns the credential, labelled and stamped with its issuer.

        Raises :class:`FlowOrderError` before an accepted paste or after a successful exchange (the credential is
        kept), :class:`~lanelab.auth.store.StoreNotWritable` when the store cannot be written (checked before the
        single-use code is sent, so the same paste works once the folder is fixed), and the token endpoint's errors
        (:class:`~lanelab.auth.oauth.TokenEndpointError`, :class:`~lanelab.auth.oauth.UnsafeHost`).
        """
        self._require("exchange", "paste")
        self._refuse_second_exchange()
        assert self.authorization is not None and self.pasted is not None and self.endpoints is not None
        self.credential = oauth.exchange(self.endpoints, self.pasted, self.authorization.pkce.verifier, self.variant,
                                         label=self.label, client=self.client, store=self.store)
        self.done.add("exchange")
        self._info("exchange", f"Token endpoint answered ({self.variant.body} body): {self.credential!r}")
        return self.credential

    def submit(self, text: str | None) -> bool:
        """Paste then exchange, as the widget's button does; returns True when a credential came back.

        Any user-facing failure lands in ``self.error`` and returns False; raises :class:`FlowOrderError` before
        :meth:`start`, and after a successful exchange of this link's code (the credential is kept)."""
        if not self.submit_paste(text):
            return False
        try:
            self.exchange()
        except UserError as exc:
            self._fail("exchange", exc)
            self._reset_from("paste")
            return False
        return True

    def inspect(self) -> AccountSummary:
        """Probe profile and usage with the new credential; returns the :class:`AccountSummary` (probe failures are
        listed in it, not raised). Raises :class:`FlowOrderError` before :meth:`exchange` or without a base URL.
        """
        self._require("inspect", "exchange")
        assert self.credential is not None
        base = self.settings.base_url
        if not base:
            raise FlowOrderError("No API base URL is set.", "Set LANELAB_BASE_URL (the simulator's address).")
        self.account = inspect_account(self.credential.access_token, base, self.client,
                                       cache=UsageCache.in_home(self.settings.home))
        self.done.add("inspect")
        self._info("inspect", "Profile and usage probed." + (" Errors: " + "; ".join(self.account.errors)
                                                            if self.account.errors else ""))
        return self.account

    def save(self, label: str | None = None) -> Path:
        """Save the credential (under ``label`` if given, else the flow's label) in the store; returns the file.

        Raises :class:`FlowOrderError` before :meth:`exchange`,
        :class:`~lanelab.auth.credential.InvalidLabel` for an unusable label (nothing is written then), and
        :class:`~lanelab.auth.store.StoreNotWritable` when the folder cannot be written: the credential then stays
        in this flow (``flow.credential``, usable in this session), the message says how to save it, and calling
        :meth:`save` again once the folder is fixed saves it.
        """
        self._require("save", "exchange")
        assert self.credential is not None
        self.label = validate_label(label or self.label)
        try:
            self.saved_path = self.store.save(self.credential, self.label)
        except StoreNotWritable as exc:
            self.saved_path = None
            err = StoreNotWritable(
                f"Could not save the credential {self.label!r} in {exc.folder} ({exc.reason}). It is kept in this "
                "login (flow.credential) and works for this session.",
                "Free some space or make the folder writable, then save again: flow.save(), or the Save button.",
                folder=exc.folder, reason=exc.reason)
            self._fail("save", err)
            raise err from None
        self.error = None
        self.done.add("save")
        self._info("save", f"Saved as {self.label!r} in {self.saved_path} (mode 0600).")
        return self.saved_path

    # -- headless helpers -----------------------------------------------------------------------------------------
    def headless_paste(self, paste: str | None = None, auto: bool = False) -> str | None:
        """The value to submit without a person: ``paste`` if given, else the simulator's page when ``auto``.

        Returns None when a real person must paste (live mode with nothing given): never fakes a live paste.
        Raises what :func:`~lanelab.auth.oauth.sim_paste_value` raises when the simulator cannot be read.
        """
        if paste:
            return paste
        if auto and self.authorization is not None and self.settings.mode == "sim":
            return oauth.sim_paste_value(self.authorization.url, self.client)
        return None

    # -- display --------------------------------------------------------------------------------------------------
    def summary(self) -> CredentialSummary | None:
        """The new credential described (masked; displays itself), or None before :meth:`exchange`."""
        return describe(self.credential) if self.credential else None

    def __repr__(self) -> str:
        name = self.endpoints.name if self.endpoints else None
        lines = [f"LoginFlow(endpoints={name!r}, variant={self.variant.name!r}, current={self.current_step!r})"]
        for step in STEPS:
            mark = "✓" if step in self.done else ("→" if step == self.current_step else " ")
            lines.append(f"  {mark} {STEP_TITLES[step]}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return redact.redact_text("\n".join(lines))

    def _repr_html_(self) -> str:
        items = []
        for step in STEPS:
            mark = "✓" if step in self.done else ("→" if step == self.current_step else "·")
            items.append(f"<li>{mark} {html.escape(STEP_TITLES[step])}</li>")
        err = f"<p style='color:#b00'>{html.escape(self.error)}</p>" if self.error else ""
        return redact.redact_text(f"<ol style='list-style:none'>{''.join(items)}</ol>{err}")
