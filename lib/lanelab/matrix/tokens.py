"""Where a run's credentials come from: a label is looked up only when the run needs it, and never shown.

A :class:`TokenSource` answers ``token_for(label)``: the kit's credential store first, then the read-only importers
(:func:`lanelab.auth.resolve.resolve_token`). In sim mode, when nothing holds the run's own label (or the saved
token was issued by another simulator session), it mints a fresh token from the simulator instead, so a notebook
runs with no login step. Tests pass a plain token through :func:`fixed_token`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lanelab import redact
from lanelab.config import Settings
from lanelab.matrix.errors import RunnerError
from lanelab.matrix.sim_client import sim_knows, sim_token

__all__ = ["TokenFor", "TokenSource", "fixed_token", "resolve_tokens", "token_source"]

#: ``token_for(label) -> token``: how a run obtains the secret behind a credential label.
TokenFor = Callable[[str], str]


class TokenSource:
    """``token_for(label)`` for a run, resolved lazily (so budget and plan checks come before any credential lookup).

    ``label`` is the run's own credential (None: cells name their own); ``where`` says afterwards where it came from
    (None until it was needed).
    """

    def __init__(self, settings: Settings, base_url: str, label: str | None):
        self.settings, self.base_url, self.label = settings, base_url, label
        self.where: str | None = None
        self._token: str | None = None

    def __call__(self, wanted: str) -> str:
        """The token for label ``wanted``, registered as a secret.

        Returns the token. Raises :class:`lanelab.auth.store.CredentialNotFound` when no store or importer
        has ``wanted`` (in sim mode the run's own label is minted instead), :class:`RunnerError` when minting fails.
        """
        from lanelab.auth.resolve import resolve_token

        if wanted != self.label:
            return resolve_token(wanted, self.settings)
        return self.token()

    def token(self) -> str:
        """The token of the run's own label (see :meth:`__call__` for what it returns and raises)."""
        from lanelab.auth.resolve import resolve_token
        from lanelab.auth.store import CredentialNotFound

        if self.label is None:
            raise RunnerError("No credential label to look up.", "Pass credential=LABEL (notebook 01 saves one).")
        if self._token is None:
            try:
                self._token = resolve_token(self.label, self.settings)
                self.where = f"credential {self.label!r} from the kit's store"
            except CredentialNotFound:
                if self.settings.mode != "sim":
                    raise
                self.where = f"no saved credential {self.label!r}: minted a fresh pkce token from the simulator"
            else:
                if self.settings.mode == "sim" and not sim_knows(self.base_url, self._token):
                    self._token = None
                    self.where = (f"saved credential {self.label!r} was issued by another simulator session: "
                                  "minted a fresh pkce token from this one")
            if self._token is None:
                self._token = sim_token(self.base_url, source=f"lanelab:{self.label}")
            redact.register_secret(self._token)
        return self._token


def token_source(settings: Settings, base_url: str, credential: str | None, *, token: str | None = None,
                 token_for: TokenFor | None = None) -> TokenFor:
    """How a run gets its tokens: a plain ``token`` for every label (tests), a caller's ``token_for``, or by default
    a :class:`TokenSource` for ``credential``. Returns the ``token_for`` to use; raises nothing (lookups are lazy)."""
    if token is not None:
        return fixed_token(token)
    return token_for or TokenSource(settings, base_url, credential)


def fixed_token(token: str) -> TokenFor:
    """``token_for`` that answers ``token`` for every label (tests, benchmarks); registers it as a secret first."""
    redact.register_secret(token)

    def token_for(_label: str) -> str:
        return token
    return token_for


def resolve_tokens(labels: Iterable[str | None], token_for: TokenFor | None) -> dict[str | None, str | None]:
    """label → token for each distinct label (None, or no ``token_for``: no token); every token registered as a
    secret. Raises whatever ``token_for`` raises for a label it cannot resolve."""
    tokens: dict[str | None, str | None] = {}
    for label in set(labels):
        if label is None or token_for is None:
            tokens[label] = None
            continue
        value = token_for(label)
        redact.register_secret(value)
        tokens[label] = value
    return tokens
