"""Requests that never reached the server: how to tell, what to tell the user, and when to stop trying.

A send that failed before any byte reached the server (the host name did not resolve, the connection was refused or
timed out, the TLS handshake failed) spent nothing: the budget gives it back, the run summary names the cause and
what to check, and after :data:`STOP_AFTER` such failures in a row the run stops instead of going through the
whole plan. A send that reached the server and then failed (a read timeout, a dropped connection) may have been
billed, so it still counts.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field

from lanelab.wire.spec import Observation

__all__ = ["STOP_AFTER", "UNREACHED_ERRORS", "Reachability", "advice", "cause", "never_reached"]

#: Consecutive sends that never reached the server after which a run stops.
STOP_AFTER = 3
#: httpx errors raised before the request reached the server (the type name starts ``transport_error``).
UNREACHED_ERRORS = ("ConnectError", "ConnectTimeout", "ProxyError", "UnsupportedProtocol")

#: (pattern in the error text, what to check); first match wins.
_ADVICE = (
    ((r"name or service not known|nodename nor servname|temporary failure in name resolution|getaddrinfo|"
      r"no address associated|name resolution"), "check your network / DNS (the host name did not resolve)"),
    (r"certificate|ssl|tls|handshake", ("check LANELAB_CA_BUNDLE (a TLS-inspecting proxy needs its CA) and the "
                                        "system clock (the TLS handshake failed)")),
    (r"connection refused", "check your network, a firewall, or LANELAB_PROXY (the connection was refused)"),
    (r"network is unreachable|no route to host", "check your network connection (no route to the host)"),
    (r"timed out|timeout", "check your network, a firewall, or LANELAB_PROXY (the connection timed out)"),
)


def never_reached(obs: Observation) -> bool:
    """Whether ``obs`` is a send that failed before reaching the server (no status, a connect-stage error)."""
    if obs.status is not None or not obs.transport_error:
        return False
    return obs.transport_error.split(":", 1)[0].strip() in UNREACHED_ERRORS


def cause(obs: Observation) -> str:
    """The failure in a few words: the system's message without the error type and errno (``Name or service not
    known``); empty for an observation that has no transport error."""
    text = (obs.transport_error or "").split(":", 1)[-1].strip()
    text = re.sub(r"\[Errno [-\d]+\]\s*", "", text)
    return text or (obs.transport_error or "").split(":", 1)[0]


def advice(text: str) -> str:
    """What to check for a failure described by ``text`` (see :func:`cause`)."""
    low = text.lower()
    for pattern, what in _ADVICE:
        if re.search(pattern, low):
            return what
    return "check your network connection"


@dataclass
class Reachability:
    """Counts sends that never reached the server, in a row and by cause; says when a run should stop."""

    stop_after: int = STOP_AFTER
    in_a_row: int = 0
    unreached: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, obs: Observation) -> bool:
        """Note one send's observation; returns whether it never reached the server."""
        missed = never_reached(obs)
        with self._lock:
            if not missed:
                self.in_a_row = 0
                return False
            self.unreached += 1
            self.in_a_row += 1
            self.causes[cause(obs)] += 1
            if self.stop_after and self.in_a_row >= self.stop_after and self.stopped is None:
                self.stopped = (f"stopped after {self.in_a_row} sends in a row never reached the server "
                                f"({self.top_cause()})")
        return True

    def top_cause(self) -> str:
        """The most frequent cause with what to check, e.g. ``Name or service not known: check your network /
        DNS (…)``; empty when every send arrived."""
        if not self.causes:
            return ""
        text = self.causes.most_common(1)[0][0]
        return f"{text}: {advice(text)}"

    def summary(self) -> str:
        """One line for the run summary (empty when every send arrived)."""
        if not self.unreached:
            return ""
        return (f"{self.unreached} send{'s' if self.unreached != 1 else ''} never reached the server (not counted "
                f"as spend): {self.top_cause()}")
