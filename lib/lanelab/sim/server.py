"""Run the simulator as a real HTTP server on loopback: in a background thread for tests and notebooks, or in the
foreground for ``python -m lanelab sim``.

The socket is bound before uvicorn starts (port 0 picks a free port), so the base URL is known at once and a client
that connects early simply waits in the listen backlog.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from lanelab.errors import UserError
from lanelab.sim.account import SimState
from lanelab.sim.app import Simulator, create_app

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 10.0


class SimulatorStartError(UserError):
    """The simulator could not start (port taken, bad policy…)."""


@dataclass
class SimHandle:
    """A running simulator: where it is, its live state, and a shortcut to mint credentials."""

    base_url: str
    port: int
    app: Simulator

    @property
    def state(self) -> SimState:
        return self.app.state

    def mint_token(self, scopes: list[str] | None = None, kind: str = "pkce", source: str | None = None,
                   expires_in: int | None = None) -> dict[str, Any]:
        return self.app.mint_token(scopes=scopes, kind=kind, source=source, expires_in=expires_in)

    def __repr__(self) -> str:
        return f"<SimHandle {self.base_url} policy={self.app.state.policy_name!r}>"


def bind_socket(port: int = 0, host: str = HOST) -> socket.socket:
    """A listening TCP socket on loopback (``port=0``: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SimulatorStartError(f"Cannot listen on {host}:{port} ({exc.strerror}).",
                                  "Pick another --port, or use --port 0 for a free one.") from None
    sock.listen(128)
    return sock


def _server(app: Simulator) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2, timeout_keep_alive=5)
    return uvicorn.Server(config)


@contextmanager
def running_simulator(policy: str = "2026-05-25", faults: str | None = None, account: dict[str, Any] | None = None,
                      port: int = 0, seed: int = 0) -> Iterator[SimHandle]:
    """Start the simulator in a background thread; stop it (thread joined, port closed) on exit."""
    app = create_app(policy=policy, faults=faults, account=account, seed=seed)
    sock = bind_socket(port)
    bound = sock.getsockname()[1]
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"lanelab-sim:{bound}",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SimulatorStartError(f"The simulator did not start on {HOST}:{bound}.",
                                          "Run 'python -m lanelab sim' to see its error output.")
            time.sleep(0.005)
        yield SimHandle(base_url=f"http://{HOST}:{bound}", port=bound, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()


def serve_forever(policy: str = "2026-05-25", port: int = 0, faults: str | None = None,
                  account: dict[str, Any] | None = None,
                  on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(base_url)`` runs once the socket listens."""
    app = create_app(policy=policy, faults=faults, account=account)
    sock = bind_socket(port)
    try:
        base_url = f"http://{HOST}:{sock.getsockname()[1]}"
        if on_ready is not None:
            on_ready(base_url)
        _server(app).run(sockets=[sock])
    finally:
        sock.close()
