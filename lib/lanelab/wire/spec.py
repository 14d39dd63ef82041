"""What goes on the wire and what comes back, as data: ``RequestSpec`` in, ``Observation`` out.

Sending is :mod:`lanelab.wire.send`; reading a response into an observation is :mod:`lanelab.wire.observe`.

A spec never holds a secret. It names an auth *style* and a credential *label*; the token is attached at the last
moment, inside :func:`build_request`, and only when the target host is allow-listed. So specs can be stored, diffed,
printed and shared as they are, and the same code path serves the simulator and the live API.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from lanelab import errors, redact
from lanelab.config import host_allowed
from lanelab.errors import HostNotAllowed, InputError
from lanelab.wire import attestation
from lanelab.wire.unified import UnifiedLimits

__all__ = ["AUTH_STYLES", "BODY_SNIPPET", "MAX_JSON_DEPTH", "UNKNOWN_VALUE_MAX", "Observation", "RequestSpec", "Unknown",
           "apply_auth", "build_request", "require_spec"]

AUTH_STYLES = ("bearer", "x-api-key", "both", "none")
#: At most this much of a non-JSON body is kept in an observation.
BODY_SNIPPET = 2000
#: JSON nested deeper than this is not an API response; it is kept as text (deep data would overflow the recursive
#: redaction and serialisation that every writer applies).
MAX_JSON_DEPTH = 64


@dataclass
class RequestSpec:
    """One request, as data. Header names are lower-case; ``path`` excludes the query; no secret inside."""

    method: str = "POST"
    path: str = "/v1/messages"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    auth: str = "bearer"
    credential: str | None = None

    def copy(self) -> RequestSpec:
        """A deep copy (transforms change copies, never the profile's spec)."""
        return copy.deepcopy(self)

    @property
    def target(self) -> str:
        """Path plus query, as it appears on the request line."""
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    @property
    def is_inference(self) -> bool:
        """True when the request spends quota (messages or chat completions, not count_tokens or GETs)."""
        return self.method == "POST" and (
            self.path.rstrip("/").endswith("/messages") or self.path.rstrip("/").endswith("chat/completions")
        )

    @property
    def streams(self) -> bool:
        """True when the body asks for a streamed (SSE) answer."""
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, redacted (safe to store in a run file or a report)."""
        return redact.redact_obj(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RequestSpec:
        """A spec from :meth:`to_dict`'s output (unknown keys ignored, values deep-copied)."""
        return cls(**{k: copy.deepcopy(v) for k, v in d.items() if k in cls.__dataclass_fields__})


#: At most this many characters of an unknown item's value are kept (the whole message stays in the observation).
UNKNOWN_VALUE_MAX = 500


@dataclass(frozen=True)
class Unknown:
    """One thing a response carried that the kit's data files do not know, kept verbatim and never mapped to a guess.

    ``kind`` is one of ``unified_header``, ``unified_value``, ``claim``, ``usage_field``, ``error_type``,
    ``error_code``, ``message``; ``name`` says where it was (a header name, a JSON path such as ``extra_usage.daily``,
    ``error.type``); ``value`` is what it said, verbatim (cut at :data:`UNKNOWN_VALUE_MAX` characters)."""

    kind: str
    name: str
    value: str

    @classmethod
    def of(cls, kind: str, name: str, value: Any) -> Unknown:
        """An item with ``value`` as text: a string as it is, anything else as compact JSON; cut to the bound."""
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > UNKNOWN_VALUE_MAX:
            text = text[:UNKNOWN_VALUE_MAX] + "…"
        return cls(str(kind), str(name), text)

    def to_dict(self) -> dict[str, str]:
        """``{"kind", "name", "value"}``, as run records store it."""
        return {"kind": self.kind, "name": self.name, "value": self.value}

    @classmethod
    def from_dict(cls, d: Any) -> Unknown | None:
        """The item stored in ``d``, or None when ``d`` is not one (a hand-edited or foreign record)."""
        if not isinstance(d, Mapping) or not all(isinstance(d.get(k), str) for k in ("kind", "name", "value")):
            return None
        return cls(d["kind"], d["name"], d["value"])

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.value}"


@dataclass
class Observation:
    """Everything one response said, redacted, plus how the exchange went.

    ``endpoint`` is the request path the response answered (set by :func:`send`; None in records made before it
    existed). ``unknown`` lists what the response carried that the kit's data files do not know (lanelab.wire.drift);
    old run records without it load with an empty list."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    error_type: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    request_id: str | None = None
    unified: UnifiedLimits = field(default_factory=UnifiedLimits)
    latency_ms: float = 0.0
    attempts: int = 1
    transport_error: str | None = None
    stream_events: list[str] | None = None
    endpoint: str | None = None
    unknown: list[Unknown] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A 2xx status with no error in the body (a transport failure is never ok)."""
        return self.status is not None and 200 <= self.status < 300 and self.error_type is None

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (``retry-after-ms`` wins over ``retry-after``)."""
        if "retry-after-ms" in self.headers:
            try:
                return float(self.headers["retry-after-ms"]) / 1000
            except ValueError:
                pass
        try:
            return float(self.headers["retry-after"]) if "retry-after" in self.headers else None
        except ValueError:
            return None

    def plain(self) -> dict[str, Any]:
        """The observation as plain data, as it is held: its headers and body were redacted when it was made, but the
        error's type, message and code and the unified headers' values are as the server sent them. For a writer
        that redacts it with the rest of a record (:meth:`lanelab.runs.RunWriter.cell_line`); :meth:`to_dict` is the
        redacted form. Shares this observation's containers."""
        # no asdict(): redaction returns fresh containers (or text), and this runs once per stored cell
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        d["unified"] = self.unified.to_dict()
        d["unknown"] = [u.to_dict() for u in self.unknown]
        return d

    def to_dict(self) -> dict[str, Any]:
        """The observation as plain data, redacted."""
        return redact.redact_obj(self.plain())

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (what the run store writes; :func:`lanelab.redact.redact_json`)."""
        return redact.redact_json(self.plain())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Observation:
        """An observation from :meth:`to_dict`'s output (unknown keys ignored)."""
        d = dict(d)
        unified = UnifiedLimits.from_dict(d.pop("unified", None))
        stored = d.pop("unknown", None)
        unknown = [u for u in (Unknown.from_dict(x) for x in stored) if u] if isinstance(stored, list) else []
        return cls(unified=unified, unknown=unknown,
                   **{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def __repr__(self) -> str:
        what = self.transport_error or (f"{self.error_type}: {self.error_message}" if self.error_type else "ok")
        new = f" new_to_kit={len(self.unknown)}" if self.unknown else ""
        return (f"<Observation {self.status} {what!s:.80} lane={self.unified.lane} request_id={self.request_id}"
                f"{new}>")


def apply_auth(headers: dict[str, str], style: str, token: str | None) -> dict[str, str]:
    """Headers with the credential attached in the given style (``bearer``, ``x-api-key``, ``both`` or ``none``).

    Any credential header already in ``headers`` is dropped first. Raises ``ValueError`` for an unknown style, and
    :class:`~lanelab.errors.InputError` (never showing the token) for a token that cannot go into a header (a line
    break, a space, a non-ASCII character…: see :func:`lanelab.errors.check_token_shape`).
    """
    if style not in AUTH_STYLES:
        raise ValueError(f"Unknown auth style {style!r}; expected one of {', '.join(AUTH_STYLES)}.")
    out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")}
    if token is None or style == "none":
        return out
    errors.check_token_shape(token, "credential's token")
    redact.register_secret(token)
    if style in ("bearer", "both"):
        out["authorization"] = f"Bearer {token}"
    if style in ("x-api-key", "both"):
        out["x-api-key"] = token
    return out


def require_spec(spec: Any, what: str = "a request") -> None:
    """Raise :class:`~lanelab.errors.InputError`, in a sentence, unless ``spec`` is a :class:`RequestSpec`."""
    if not isinstance(spec, RequestSpec):
        raise InputError(f"{what[0].upper()}{what[1:]} is a RequestSpec; found {type(spec).__name__}.",
                         "A profile's request is lanelab.matrix.profiles.load_profile(name).spec; a capture's, "
                         "lanelab.matrix.from_capture.load_request(path)[1].")


def build_request(spec: RequestSpec, base_url: str, token: str | None) -> httpx.Request:
    """The exact httpx request for ``spec`` at ``base_url``, with ``token`` attached in ``spec.auth``'s style.

    Raises :class:`~lanelab.errors.HostNotAllowed` rather than attach a token for a host that is not allow-listed
    (loopback or Anthropic's), ``ValueError`` for an unknown auth style, :class:`~lanelab.errors.InputError` for
    a token that cannot go into a header, and :class:`~lanelab.wire.attestation.FirstPartyRequest` for a request
    that carries Claude Code's own identification or attestation block (the kit never sends one); an ``InputError``
    too for a ``spec`` that is no :class:`RequestSpec` (a profile's is ``load_profile(name).spec``).
    """
    require_spec(spec)
    attestation.refuse_first_party(spec)
    url = base_url.rstrip("/") + spec.path
    if token is not None and spec.auth != "none" and not host_allowed(url):
        raise HostNotAllowed(
            f"Refusing to send a credential to {httpx.URL(url).host!r}: only loopback and Anthropic's hosts are "
            "allowed. Check LANELAB_BASE_URL for a typo."
        )
    headers = apply_auth(spec.headers, spec.auth, token)
    content = None
    if spec.body is not None:
        content = json.dumps(spec.body, ensure_ascii=False).encode()
        headers.setdefault("content-type", "application/json")
    return httpx.Request(spec.method, url, params=spec.query or None, headers=headers, content=content)
