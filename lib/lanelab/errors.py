"""Errors a user can act on. Each message says what went wrong and what to do next, and never holds a secret.

Every error a user can cause is a :class:`UserError`; the CLI prints its message (one line, exit 2) and a notebook
shows it, never a traceback. Each also inherits the builtin that matches its kind, so ``except ValueError`` and
friends keep working. The whole hierarchy, with the module each class lives in (tests/test_error_hierarchy.py
checks it against the code)::

    UserError(Exception)                          something the user can fix; str() is already redacted
    ├── InputError(UserError, ValueError)         a value the user gave is wrong
    │   ├── ConfigError                           a LANELAB_* setting                          (here)
    │   ├── InvalidLabel                          a credential label                           (lanelab.auth.credential)
    │   ├── PasteError                            the pasted code#state                        (lanelab.auth.paste)
    │   │   └── EmptyPaste, MissingState, StateMismatch, TokenPasted, UnrecognisedPaste        (lanelab.auth.paste)
    │   ├── NoPaste                               standard input ended, or too many bad pastes (lanelab.commands.login)
    │   ├── InvalidOption                         a plan or run option; also a TypeError       (lanelab.matrix.errors)
    │   ├── AccountShapeError                     a simulator account override (lanelab.sim.account_shape)
    │   ├── FaultSpecError                        a fault-injection spec                       (lanelab.sim.faults)
    │   ├── DumpError                             not a readable client request dump (lanelab.walkthrough.dumps)
    │   ├── LintInputError                        not a capture, profile or request dump (lanelab.walkthrough.lint)
    │   └── DataFileError                         a data file is missing, unreadable or invalid (lanelab.datafiles)
    │       ├── EndpointSetError                  data/oauth.toml                              (lanelab.auth.oauth)
    │       ├── RemediesError                     data/remedies.toml (lanelab.findings.remedies)
    │       ├── LiveDefaultError                  data/live_default.toml (lanelab.matrix.live_default)
    │       ├── BadProfile                        data/profiles/*.toml                         (lanelab.matrix.profiles)
    │       ├── OutcomeFileError                  data/sim_outcomes.toml                       (lanelab.sim.outcomes)
    │       ├── PolicyError                       data/policies/*.toml                         (lanelab.sim.policy)
    │       ├── GateError                         data/version_gate.toml                       (lanelab.version_gate)
    │       ├── CatalogueError                    data/triggers.toml (lanelab.walkthrough.lint)
    │       ├── TaxonomyError                     data/outcomes.toml                           (lanelab.wire.classify)
    │       ├── LaneFileError                     data/lanes.toml                              (lanelab.wire.unified)
    │       └── UsageShapeError                   data/usage_fields.toml                       (lanelab.wire.usage)
    ├── NotFound(UserError, LookupError)          a named thing does not exist
    │   ├── CredentialNotFound                    a credential label                           (lanelab.auth.store)
    │   ├── UnknownFactor                         a factor or level name                       (lanelab.matrix.factors)
    │   ├── UnknownProfile                        a profile name                               (lanelab.matrix.profiles)
    │   ├── UnknownTransform                      a level's kind of transformation (lanelab.matrix.transforms)
    │   ├── UnknownOutcome                        an outcome id of the simulator               (lanelab.sim.outcomes)
    │   └── PolicyNotFound                        a simulator policy name                      (lanelab.sim.policy)
    ├── Refused(UserError, PermissionError)       the kit will not do this, by design
    │   ├── BudgetExceeded                        a live run over its budget                   (here)
    │   ├── HostNotAllowed                        a credential would leave its allowed hosts   (here)
    │   ├── LiveNotOptedIn                        live mode without the opt-in                 (here)
    │   ├── NotConfirmed                          live requests not confirmed; nothing sent    (lanelab.live)
    │   ├── WrongIssuer                           a credential sent other than to its issuer   (lanelab.auth.issuer)
    │   ├── RefreshRefused                        refreshing an imported credential            (lanelab.auth.oauth)
    │   ├── UnsafeHost                            a token endpoint off the allow-list          (lanelab.auth.oauth)
    │   ├── BundleRefused                         a bundle would hold a secret or identifier (lanelab.findings.bundles)
    │   ├── ProfileExists                         a profile file of that name exists (lanelab.matrix.from_capture)
    │   ├── SecretInCapture                       a capture holds a secret (lanelab.matrix.from_capture)
    │   ├── ReferenceOnlyProfile                  Claude Code's request: diffs and lints only  (lanelab.matrix.profiles)
    │   ├── CaptureRefused                        a capture upstream off the allow-list (lanelab.walkthrough.capture)
    │   └── FirstPartyRequest                     a request with Claude Code's own block (lanelab.wire.attestation)
    ├── ServiceError(UserError, ConnectionError)  a server, process or file system the kit relies on failed
    │   ├── TokenEndpointError                    the token endpoint refused or failed         (lanelab.auth.oauth)
    │   ├── StoreNotWritable                      the credential store is full or read-only    (lanelab.auth.store)
    │   │   └── CredentialLost                    a new credential could not be saved          (lanelab.commands.login)
    │   ├── LabFailed                             JupyterLab did not start                     (lanelab.devtools.lab)
    │   ├── NotebookFailed                        a notebook raised, run headless (lanelab.devtools.notebook_exec)
    │   ├── ServerStartError                      a loopback server (simulator, proxy)         (lanelab.serve)
    │   └── NamespaceUnavailable                  no private network namespace here (lanelab.walkthrough.namespace)
    └── StateError(UserError, RuntimeError)       steps taken in the wrong order, or a stored file is damaged
        ├── FlowOrderError                        a login step before the steps it needs       (lanelab.auth.flow)
        ├── CredentialFileError                   another client's credential file             (lanelab.auth.importers)
        │   └── CredentialEnvError                a credential environment variable            (lanelab.auth.importers)
        ├── CorruptCredential                     a file in the kit's store cannot be read     (lanelab.auth.store)
        ├── RunnerError                           a matrix run cannot start as asked           (lanelab.matrix.errors)
        └── RunLocked                             another runner is writing this run           (lanelab.runs)

``SecretLeak`` (lanelab.redact) is deliberately *not* a UserError: it is the last guard against a bug, and stops a
writer before a secret reaches disk.
"""

from __future__ import annotations

import errno
import re
from typing import Any

from lanelab import redact


class UserError(Exception):
    """Something the user can fix. ``str(err)`` is already redacted."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint if hint is not None else self.hint
        full = message if not self.hint else f"{message} {self.hint}"
        super().__init__(redact.redact_text(full))

    def _render_traceback_(self) -> list[str]:
        """In a notebook, IPython shows this instead of a traceback: the one line the CLI would print."""
        return [f"{type(self).__name__}: {self}"]


class InputError(UserError, ValueError):
    """A value the user gave (an argument, a paste, a file) is wrong."""


class NotFound(UserError, LookupError):
    """A named thing (profile, credential, policy, run) does not exist."""


class Refused(UserError, PermissionError):
    """The kit will not do this, by design (a credential would leave its hosts, live without opt-in, over budget)."""


class StateError(UserError, RuntimeError):
    """Steps were taken in the wrong order, or something stored is damaged."""


class ServiceError(UserError, ConnectionError):
    """A server, process or file system the kit relies on failed."""


class ConfigError(InputError):
    """A setting is missing or wrong; the message says which and how to fix it."""


class HostNotAllowed(Refused):
    """A credential would have been sent to a host that is neither loopback nor Anthropic's."""


class LiveNotOptedIn(Refused):
    """Live mode spends the user's own account and needs the explicit opt-in."""


class BudgetExceeded(Refused):
    """A live run would spend, or has spent, more than its budget allows."""


def check_token_shape(value: Any, what: str = "token", error: type[Exception] | None = None,
                      hint: str | None = None) -> str:
    """Return ``value`` when it can be used as a token; otherwise register every piece of it as a secret and raise.

    Raises ``error`` (default :class:`InputError`) saying what is wrong and where (``what`` names the
    value: ``"access token"``, ``"CLAUDE_CODE_OAUTH_TOKEN"``…), never the value itself; ``hint`` replaces the default
    advice for a :class:`UserError`. The pieces between the bad characters are registered first, so a
    tail after a line break stays masked wherever it turns up later.
    """
    problem = redact.token_shape_problem(value)
    if problem is None:
        return value
    if isinstance(value, str):
        redact.register_secret(value[:redact.TOKEN_MAX_CHARS * 4])
        for piece in re.split(r"[^\x21-\x7e]+", value[:redact.TOKEN_MAX_CHARS * 4]):
            redact.register_secret(piece)
    cls = error or InputError
    message = f"The {what} {problem}; a token is one line of printable ASCII without spaces."
    if issubclass(cls, UserError):
        if hint is None and not cls.hint:  # an error class with its own advice keeps it
            hint = "Copy it again, alone: no quotes, spaces or line breaks around or inside it."
        raise cls(message, hint)
    raise cls(message)


#: What the system's own words mean where the kit meets them (making or opening a folder or file).
_PLAIN_REASONS = {errno.EEXIST: "a file is in the way: it exists and is not a folder",
                  errno.ENOTDIR: "a part of that path is a file, not a folder"}


def os_reason(exc: OSError) -> str:
    """Why a file-system call failed, in words a user can act on (the system's own for most errors)."""
    return _PLAIN_REASONS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
