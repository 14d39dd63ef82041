"""The simulator's memory: one account (who it is, its billing, the credentials issued for it), the request log, and
the simulator's own redactor, all behind one lock.

The parts live in their own modules (:mod:`~lanelab.sim.billing`, :mod:`~lanelab.sim.grants`,
:mod:`~lanelab.sim.requestlog`; what is shown of them in :mod:`~lanelab.sim.views`); :class:`SimState` holds them
together and returns all of them to their initial state at once (:meth:`SimState.reset`).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from lanelab.redact import Redactor
from lanelab.sim.account_shape import check_account
from lanelab.sim.billing import Billing, iso
from lanelab.sim.grants import Grants
from lanelab.sim.requestlog import RequestLog

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["SimState", "new_identity"]


def new_identity(now: float) -> dict[str, str]:
    """A made-up account identity (random uuids; created 400 days and subscribed 90 days before ``now``)."""
    seed = uuid.uuid4()
    return {
        "account_uuid": str(uuid.uuid5(seed, "account")),
        "organization_uuid": str(uuid.uuid5(seed, "organization")),
        "email": "sim.user@example.com",
        "display_name": "Sim User",
        "organization_name": "Sim User's Organization",
        "created_at": iso(now - 400 * 86400),
        "subscription_created_at": iso(now - 90 * 86400),
    }


class SimState:
    """Everything the simulator remembers. Thread-safe: the app runs in its own thread, tests read from theirs.

    ``billing`` (the account's numbers), ``grants`` (issued credentials), ``log`` (the request log) and ``redactor``
    (the simulator's own secret registry: it never registers anything with the client's) share ``lock``.
    """

    def __init__(self, account: dict[str, Any], policy_name: str = "") -> None:
        self.lock = threading.RLock()
        self.redactor = Redactor()
        self.billing = Billing(account, self.lock)
        self.grants = Grants(self.redactor, self.lock)
        self.log = RequestLog(self.lock)
        self.policy_name = policy_name
        self.identity = new_identity(self.billing.window_start)
        self.counters: dict[str, int] = {}
        #: the last answer /v1/messages served as JSON (kept by reference; ``/_sim/ping?like=messages`` repeats it)
        self.last_served: Response | None = None

    def __repr__(self) -> str:
        return f"<SimState policy={self.policy_name!r} tokens={len(self.grants.tokens)} requests={len(self.log)}>"

    def reset(self) -> None:
        """Back to the start: the baseline account with nothing spent, no credentials, codes or planted values, an
        empty request log numbered from 1, no counters, and nothing in the simulator's secret registry."""
        with self.lock:
            self.billing.reset()
            self.grants.clear()
            self.log.reset()
            self.counters.clear()
            self.last_served = None
            self.redactor.forget_secrets()

    def count(self, name: str) -> None:
        """Add one to the counter ``name`` (shown by ``/_sim/account``)."""
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    # ---- shortcuts for tests and notebooks (docs/contracts.md §1) ------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the account as it stands."""
        return self.billing.snapshot()

    def update_account(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge a partial account (nested dicts merge too) into the live one; returns a copy of the result.

        Raises :class:`~lanelab.sim.account_shape.AccountShapeError` (and changes nothing) for a patch of the wrong
        shape."""
        return self.billing.update(check_account(patch))

    def set_baseline(self) -> None:
        """Make the current account the one :meth:`reset` returns to."""
        self.billing.set_baseline()

    def mint_token(self, scopes: list[str] | tuple[str, ...] | None = None, kind: str = "pkce",
                   source: str | None = None, expires_in: int | None = None) -> dict[str, Any]:
        """Issue a credential directly (see :meth:`Grants.mint`)."""
        return self.grants.mint(scopes=scopes, kind=kind, source=source, expires_in=expires_in)

    def plant(self, access: str, refresh: str | None = None) -> None:
        """Make the next OAuth issue hand out these values (the caller registers them where it needs them)."""
        self.grants.plant(access, refresh)

    def issued_secrets(self) -> list[str]:
        """Every secret this simulator handed out since its start or last reset (tokens, refresh tokens, codes)."""
        return self.grants.issued_secrets()

    def expire_token(self, value: str) -> None:
        """Make an issued access token expired (tests of the expiry path)."""
        self.grants.expire(value)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The request log after sequence number ``since`` (redacted copies)."""
        return self.log.since(since)
