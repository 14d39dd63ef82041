"""What a policy snapshot says about the service besides its rules: which plans and rate-limit windows exist, the
shape and rate limit of the usage endpoint, which host names serve which part (``[hosts]``), and the model list.

A policy file holds these as optional tables (``[service]``, ``[hosts]``, ``[[model]]``); a key left out keeps the
behaviour of the oldest snapshot, so older files stay as they were. Every value names its source in a sibling key
``<key>_source`` (``[hosts]`` and each ``[[model]]`` in ``source``). Parsing checks every type and says which key and
what it expected (:class:`ServiceShapeError`, turned into a ``PolicyError`` naming the file by :mod:`lanelab.sim.policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lanelab.datafiles import kind_of

__all__ = ["EXTRA_WINDOWS", "HOST_ROLES", "USAGE_SHAPES", "Hosts", "ModelEntry", "Redirect", "Service",
           "ServiceShapeError", "parse_hosts", "parse_models", "parse_service"]

#: Usage-endpoint body shapes the simulator can serve (lanelab.sim.views): the older one and the current one.
USAGE_SHAPES = ("2026-05", "2026-11")
#: Unified-header windows beyond 5h, 7d and overage that a snapshot may emit.
EXTRA_WINDOWS = ("7d_oi", "slow", "grace")
#: What a host name can serve when the simulator answers under the real names.
HOST_ROLES = ("api", "token", "authorize", "callback")


class ServiceShapeError(Exception):
    """A ``[service]``, ``[hosts]`` or ``[[model]]`` value of the wrong shape: the message names the key and what it
    expected (the policy loader adds the file)."""



def _strs(value: Any, key: str, choices: tuple[str, ...] = ()) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ServiceShapeError(f"{key} must be a list of non-empty strings (found {kind_of(value)}).")
    if choices:
        bad = [v for v in value if v not in choices]
        if bad:
            raise ServiceShapeError(f"{key} has {bad}; allowed: {list(choices)}.")
    return tuple(value)


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceShapeError(f"{key} must be a non-empty string (found {kind_of(value)}).")
    return value


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ServiceShapeError(f"{key} must be a table (found {kind_of(value)}).")
    return value


# ------------------------------------------------------------------------------------------------------ [service]
#: ``[service]`` keys and their kinds (each needs ``<key>_source`` beside it).
SERVICE_KEYS: dict[str, str] = {
    "plans": "strs",
    "no_five_hour_window": "strs",
    "unified_windows": "windows",
    "usage_shape": "shape",
    "usage_reads_per_hour": "positive int",
}


@dataclass(frozen=True)
class Service:
    """The service as one snapshot describes it (defaults: the oldest snapshot's behaviour)."""

    plans: tuple[str, ...] = ()
    no_five_hour_window: tuple[str, ...] = ()
    unified_windows: tuple[str, ...] = ()
    usage_shape: str = "2026-05"
    usage_reads_per_hour: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def has_five_hour(self, plan: Any) -> bool:
        """Whether an account on ``plan`` has a 5-hour window (and its ``5h-*`` headers) in this snapshot."""
        return plan not in self.no_five_hour_window

    def summary(self) -> dict[str, Any]:
        return {"plans": list(self.plans), "no_five_hour_window": list(self.no_five_hour_window),
                "unified_windows": list(self.unified_windows), "usage_shape": self.usage_shape,
                "usage_reads_per_hour": self.usage_reads_per_hour, "sources": dict(self.sources)}


def parse_service(raw: Any) -> Service:
    """The ``[service]`` table (may be empty). Raises :class:`ServiceShapeError` naming the key and what it expected."""
    table = _table(raw, "service")
    known = set(SERVICE_KEYS) | {f"{k}_source" for k in SERVICE_KEYS} | {f"{k}_note" for k in SERVICE_KEYS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ServiceShapeError(f"service has unknown key(s) {unknown}; known: {', '.join(SERVICE_KEYS)} (each with "
                         "<key>_source).")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, kind in SERVICE_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        where = f"service.{key}"
        if kind == "strs":
            values[key] = _strs(value, where)
        elif kind == "windows":
            values[key] = _strs(value, where, EXTRA_WINDOWS)
        elif kind == "shape":
            if value not in USAGE_SHAPES:
                raise ServiceShapeError(f"{where} must be one of {list(USAGE_SHAPES)} (found {kind_of(value)}).")
            values[key] = value
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ServiceShapeError(f"{where} must be a positive integer (found {kind_of(value)}).")
        else:
            values[key] = value
        sources[key] = _text(table.get(f"{key}_source"), f"service.{key}_source")
    return Service(**values, sources=sources)


# ------------------------------------------------------------------------------------------------------ [hosts]
@dataclass(frozen=True)
class Redirect:
    """A path on a host that only redirects (``claude.com/cai/oauth/authorize`` → ``claude.ai/oauth/authorize``)."""

    host: str
    path: str
    to: str
    status: int
    source: str


@dataclass(frozen=True)
class Hosts:
    """Which real host names serve which part: checked only when the simulator serves under the real names."""

    api: tuple[str, ...]
    token: tuple[str, ...]
    authorize: tuple[str, ...]
    callback: tuple[str, ...]
    redirects: tuple[Redirect, ...]
    source: str

    def serves(self, role: str, host: str) -> bool:
        """Whether ``host`` serves ``role`` (one of :data:`HOST_ROLES`)."""
        return host in getattr(self, role)

    @property
    def names(self) -> frozenset[str]:
        """Every host name this table mentions."""
        return frozenset((*self.api, *self.token, *self.authorize, *self.callback,
                          *(r.host for r in self.redirects)))

    def redirect(self, host: str, path: str) -> Redirect | None:
        """The redirect served at ``host`` + ``path``, if any."""
        return next((r for r in self.redirects if r.host == host and r.path == path), None)

    def redirect_for_path(self, path: str) -> Redirect | None:
        """The redirect served at ``path`` on any host (one origin on plain loopback)."""
        return next((r for r in self.redirects if r.path == path), None)

    def summary(self) -> dict[str, Any]:
        return {"api": list(self.api), "token": list(self.token), "authorize": list(self.authorize),
                "callback": list(self.callback), "source": self.source,
                "redirects": [{"host": r.host, "path": r.path, "to": r.to, "status": r.status, "source": r.source}
                              for r in self.redirects]}


def parse_hosts(raw: Any) -> Hosts:
    """The ``[hosts]`` table. Raises :class:`ServiceShapeError` naming the key and what it expected."""
    table = _table(raw, "hosts")
    unknown = sorted(set(table) - {*HOST_ROLES, "redirect", "source", "note"})
    if unknown:
        raise ServiceShapeError(f"hosts has unknown key(s) {unknown}; known: {', '.join(HOST_ROLES)}, redirect, source, note.")
    roles = {role: _strs(table.get(role), f"hosts.{role}") for role in HOST_ROLES}
    redirects = []
    entries = table.get("redirect", [])
    if not isinstance(entries, list):
        raise ServiceShapeError(f"hosts.redirect must be an array of tables ([[hosts.redirect]]) (found {kind_of(entries)}).")
    for i, entry in enumerate(entries):
        where = f"hosts.redirect[{i}]"
        entry = _table(entry, where)
        status = entry.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or status not in (301, 302, 303, 307, 308):
            raise ServiceShapeError(f"{where}.status must be a redirect status (301, 302, 303, 307 or 308).")
        path = _text(entry.get("path"), f"{where}.path")
        to = _text(entry.get("to"), f"{where}.to")
        if not path.startswith("/") or not to.startswith("https://"):
            raise ServiceShapeError(f"{where}: path must start with / and to must be an https URL.")
        redirects.append(Redirect(_text(entry.get("host"), f"{where}.host"), path, to, status,
                                  _text(entry.get("source"), f"{where}.source")))
    return Hosts(**roles, redirects=tuple(redirects), source=_text(table.get("source"), "hosts.source"))


# ------------------------------------------------------------------------------------------------------ [[model]]
@dataclass(frozen=True)
class ModelEntry:
    """One model ``GET /v1/models`` lists in a snapshot."""

    id: str
    display_name: str
    source: str
    created_at: str = "2026-01-01T00:00:00Z"

    def summary(self) -> dict[str, str]:
        return {"id": self.id, "display_name": self.display_name, "created_at": self.created_at,
                "source": self.source}


def parse_models(raw: Any) -> tuple[ModelEntry, ...]:
    """The ``[[model]]`` array (may be empty). Raises :class:`ServiceShapeError` naming the entry, key and what it expected."""
    if not isinstance(raw, list):
        raise ServiceShapeError(f"model must be an array of tables ([[model]]) (found {kind_of(raw)}).")
    out = []
    for i, entry in enumerate(raw):
        where = f"model[{i}]"
        entry = _table(entry, where)
        unknown = sorted(set(entry) - {"id", "display_name", "source", "created_at", "note"})
        if unknown:
            raise ServiceShapeError(f"{where} has unknown key(s) {unknown}; known: id, display_name, created_at, source.")
        created = entry.get("created_at", ModelEntry.created_at)
        out.append(ModelEntry(_text(entry.get("id"), f"{where}.id"),
                              _text(entry.get("display_name"), f"{where}.display_name"),
                              _text(entry.get("source"), f"{where}.source"), _text(created, f"{where}.created_at")))
    ids = [m.id for m in out]
    if len(set(ids)) != len(ids):
        raise ServiceShapeError("model ids must be unique.")
    return tuple(out)
