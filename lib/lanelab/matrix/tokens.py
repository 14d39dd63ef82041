"""Where a run's credentials come from: a label is looked up only when the run needs it, checked, and never shown.

A :class:`TokenSource` answers ``token_for(label)``: the kit's credential store first, then the read-only importers
(:func:`lanelab.auth.resolve.resolve_credential`), and every credential found is checked against the run's base URL
by :func:`lanelab.auth.issuer.check_destination` (a credential reaches only its issuer's API; the refusal names a
stored credential that may go there, or how to get one).

In sim mode, when the run's own label is not held by anything, or holds a credential this simulator did not issue
(another, earlier simulator; a live credential, which never goes to the simulator; one of unknown origin), it mints a
fresh token from the simulator instead and says so in :attr:`TokenSource.where`, so a notebook runs with no login
step. In live mode nothing is ever minted: a missing or misdirected credential is an error. Tests pass a plain token
through :func:`fixed_token`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lanelab import redact
from lanelab.auth.credential import Credential
from lanelab.config import Settings
from lanelab.matrix.errors import RunnerError
from lanelab.matrix.sim_client import sim_knows, sim_token

__all__ = ["TokenFor", "TokenSource", "checked_credential", "fixed_token", "resolve_tokens", "token_source"]

#: ``token_for(label) -> token``: how a run obtains the secret behind a credential label.
TokenFor = Callable[[str], str]


def _others(settings: Settings) -> list[Credential]:
    """Every credential the kit could use (saved, then importable), for a refusal to name the right one."""
    from lanelab.auth.resolve import available

    found = available(settings)
    return [*found.saved, *found.imported]


def checked_credential(label: str, settings: Settings, base_url: str) -> Credential:
    """The credential called ``label`` when it may be sent to ``base_url``.

    Returns the :class:`~lanelab.auth.credential.Credential` (its secrets registered). Raises
    :class:`~lanelab.auth.store.CredentialNotFound` when nothing holds ``label`` and
    :class:`~lanelab.auth.issuer.WrongIssuer` when it may not go to ``base_url`` (the message names a stored
    credential that may, or the login command). Sends nothing.
    """
    from lanelab.auth.issuer import WrongIssuer, check_destination
    from lanelab.auth.resolve import resolve_credential

    cred = resolve_credential(label, settings)
    try:
        return check_destination(cred, base_url)
    except WrongIssuer:
        return check_destination(cred, base_url, others=_others(settings))  # raises again, naming the right one


def _why_not_this_simulator(cred: Credential) -> str:
    if cred.issuer_mode == "live":
        return "is a live credential, never sent to the simulator"
    if cred.issuer_mode is None:
        return "does not record who issued it"
    return "was issued by another simulator session"


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

        Returns the token. Raises :class:`lanelab.auth.store.CredentialNotFound` when no store or importer has
        ``wanted`` and :class:`lanelab.auth.issuer.WrongIssuer` when it may not go to the base URL (in sim mode the
        run's own label is minted instead in both cases), :class:`RunnerError` when minting fails.
        """
        if wanted != self.label:
            return checked_credential(wanted, self.settings, self.base_url).access_token
        return self.token()

    def __repr__(self) -> str:  # never the token: only the label, where it goes and where it came from
        return (f"<TokenSource {self.label!r} for {self.base_url}: "
                f"{self.where or 'not looked up yet'}>")

    @property
    def sim(self) -> bool:
        return self.settings.mode == "sim"

    def lookup(self) -> str | None:
        """The token of the run's own label when it is stored and may go to the base URL; None when sim mode would
        mint one when the run starts. Sends nothing (no minting, no probe). Raises as :meth:`__call__` in live mode.
        """
        from lanelab.auth.issuer import WrongIssuer
        from lanelab.auth.store import CredentialNotFound

        if self._token is not None:
            return self._token
        if self.label is None:
            raise RunnerError("No credential label to look up.", "Pass credential=LABEL (notebook 01 saves one).")
        try:
            cred = checked_credential(self.label, self.settings, self.base_url)
        except (CredentialNotFound, WrongIssuer):
            if not self.sim:
                raise
            return None
        return cred.access_token

    def token(self) -> str:
        """The token of the run's own label (see :meth:`__call__` for what it returns and raises)."""
        from lanelab.auth.issuer import WrongIssuer, check_destination
        from lanelab.auth.resolve import resolve_credential
        from lanelab.auth.store import CredentialNotFound

        if self.label is None:
            raise RunnerError("No credential label to look up.", "Pass credential=LABEL (notebook 01 saves one).")
        if self._token is not None:
            return self._token
        if not self.sim:
            cred = checked_credential(self.label, self.settings, self.base_url)
            self._token = cred.access_token
            self.where = (f"credential {self.label!r} ({redact.mask(cred.access_token)}), "
                          f"issued by {cred.issued_by}")
            return self._token
        try:
            cred = resolve_credential(self.label, self.settings)
        except CredentialNotFound:
            self.where = f"no saved credential {self.label!r}: minted a fresh pkce token from the simulator"
        else:
            try:
                check_destination(cred, self.base_url)
            except WrongIssuer:
                self.where = (f"saved credential {self.label!r} {_why_not_this_simulator(cred)}: minted a fresh "
                              "pkce token from this simulator")
            else:
                if sim_knows(self.base_url, cred.access_token):
                    self._token = cred.access_token
                    self.where = f"credential {self.label!r} from the kit's store"
                else:
                    self.where = (f"saved credential {self.label!r} was issued by another simulator session: "
                                  "minted a fresh pkce token from this one")
        if self._token is None:
            self._token = sim_token(self.base_url, source=f"lanelab:{self.label}")
        redact.register_secret(self._token)
        return self._token

    def masked(self) -> str:
        """The run's own token masked (``sk-ant-oat01-…abcd``), looked up without sending anything; in sim mode,
        when one would be minted at the start, says so instead."""
        token = self.lookup()
        return redact.mask(token) if token else "a fresh simulator token, minted when the run starts"


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
