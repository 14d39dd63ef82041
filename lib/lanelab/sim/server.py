"""Run the simulator as a real HTTP server on loopback: in a background thread for tests and notebooks, or in the
foreground for ``python -m lanelab sim``.

Serving itself (binding, start-up, shutdown, TLS) is :mod:`lanelab.serve`'s, shared with the capture proxy.

This module is the one door into the simulator for the rest of the kit (tests/test_layers.py holds it so): besides
running it, the kit may read which dated policies exist (:func:`list_policies`, :func:`load_policy`,
:class:`PolicyNotFound`), which credential kinds it mints (:data:`MINT_KINDS`) and check an account override
(:func:`check_account`) or say one in words (:func:`account_summary`). Everything else of ``lanelab.sim`` is the
simulator's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lanelab import serve
from lanelab.config import DEFAULT_POLICY, LIVE_HOSTS
from lanelab.serve import TLS, running_server
from lanelab.sim.account import SimState
from lanelab.sim.account_shape import check_account
from lanelab.sim.app import SimApp, create_app
from lanelab.sim.grants import MINT_KINDS
from lanelab.sim.outcomes import extra_usage_state, normalized_account
from lanelab.sim.policy import PolicyNotFound, list_policies, load_policy
from lanelab.sim.simulator import Simulator

__all__ = ["MINT_KINDS", "PolicyNotFound", "SimHandle", "account_summary", "check_account", "list_policies",
           "load_policy", "running_simulator", "serve_forever"]


def account_summary(account: Mapping[str, Any] | None) -> str:
    """A simulator account in a few words, over the default account ("plan max_5x, extra usage on, with no credit
    left")."""
    acc = normalized_account(account)
    extra = {"available": "on, with credit left", "exhausted": "on, with no credit left",
             "disabled": "off"}[extra_usage_state(acc)]
    return f"plan {acc.get('plan')}, extra usage {extra}"


@dataclass
class SimHandle:
    """A running simulator: where it is, its ASGI app, its model and live state, and shortcuts for tests."""

    base_url: str
    port: int
    app: SimApp

    @property
    def simulator(self) -> Simulator:
        return self.app.simulator

    @property
    def state(self) -> SimState:
        return self.app.simulator.state

    def mint_token(self, scopes: list[str] | None = None, kind: str = "pkce", source: str | None = None,
                   expires_in: int | None = None) -> dict[str, Any]:
        """Issue a credential directly (as ``POST /_sim/tokens``); ``ValueError`` for an unknown kind."""
        return self.app.simulator.mint_token(scopes=scopes, kind=kind, source=source, expires_in=expires_in)

    def reset(self) -> None:
        """Everything back to how the simulator started (as ``POST /_sim/reset``)."""
        self.app.simulator.reset()

    def __repr__(self) -> str:
        return f"<SimHandle {self.base_url} policy={self.state.policy_name!r}>"


@contextmanager
def running_simulator(policy: str = DEFAULT_POLICY, faults: str | None = None, account: dict[str, Any] | None = None,
                      port: int = 0, seed: int = 0, tls: TLS | None = None) -> Iterator[SimHandle]:
    """Start the simulator in a background thread; stop it (thread joined, port closed) on exit.

    ``tls`` serves https under the certificate's host name (the offline rehearsal of live mode); when that is a real
    host name, each real name serves only its own part (:mod:`lanelab.sim.hostmap`).
    """
    app = create_app(policy=policy, faults=faults, account=account, seed=seed, real_hosts=_real_names(tls))
    with running_server(app, port, tls=tls, name="lanelab-sim") as served:
        yield SimHandle(base_url=served.base_url, port=served.port, app=app)


def serve_forever(policy: str = DEFAULT_POLICY, port: int = 0, faults: str | None = None,
                  account: dict[str, Any] | None = None,
                  on_ready: Callable[[str], None] | None = None, tls: TLS | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(base_url)`` runs once the socket listens."""
    app = create_app(policy=policy, faults=faults, account=account, real_hosts=_real_names(tls))
    serve.serve_forever(app, port, tls=tls, on_ready=(lambda served: on_ready(served.base_url)) if on_ready else None)


def _real_names(tls: TLS | None) -> bool:
    """Whether the simulator serves under the real host names: TLS for one of them."""
    return tls is not None and tls.hostname in LIVE_HOSTS
