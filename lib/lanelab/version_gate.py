"""The model-version gate as data: which models a subscription (OAuth) request may use only when it identifies as a
recent enough Claude Code, and what the refusal looks like (``data/version_gate.toml``).

One reader for everyone who needs the floors: lint reports a request that would meet the gate, and the simulator's
November policy refuses it, so the two can never disagree. The gate is read from the user agent only
(``claude-cli/X`` or ``claude-code/X``); the public record also says it might read ``cc_version`` inside the billing
attestation block instead (``reads_conflict`` in the file), which the kit never parses or produces.

Versions compare numerically part by part (2.1.251 < 2.1.280 < 2.1.1000).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanelab.config import data_dir
from lanelab.datafiles import DataFileError, Str, Table, load_cached, read_toml

__all__ = ["GateError", "GateHit", "GatedModel", "VersionGate", "gate_path", "load_version_gate", "version_key"]

_DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class GateError(DataFileError):
    """``data/version_gate.toml`` is missing or malformed; the message names the file and the key."""

    hint = "Fix data/version_gate.toml (its header comment describes the format)."


@dataclass(frozen=True)
class GatedModel:
    """One gated model: the API id, the regex that recognises it, the lowest Claude Code version accepted, since when."""

    id: str
    match: str
    floor: str
    since: str
    sources: tuple[str, ...]
    confidence: str = ""


@dataclass(frozen=True)
class GateHit:
    """A request that meets the gate: the model entry, the version its user agent claims and that user agent."""

    model: GatedModel
    claimed: str
    user_agent: str

    @property
    def details(self) -> dict[str, str]:
        """What the refusal message names: ``claimed`` and ``floor`` (plus the model id)."""
        return {"claimed": self.claimed, "floor": self.model.floor, "model": self.model.id}


@dataclass(frozen=True)
class VersionGate:
    """``data/version_gate.toml``: the gated models and the refusal they get."""

    models: tuple[GatedModel, ...]
    version_pattern: str
    status: int = 400
    error_type: str = "invalid_request_error"
    error_code: str = "claude_code_version_too_old"
    message: str = ""
    message_source: str = ""
    reads: str = "user-agent"
    reads_conflict: str = ""
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def floor_for(self, model: str) -> GatedModel | None:
        """The gate entry for ``model`` (matched by each entry's regex), or None when the model is not gated."""
        if not isinstance(model, str):
            return None
        return next((m for m in self.models if re.search(m.match, model)), None)

    def claimed_version(self, user_agent: str) -> str | None:
        """The Claude Code version a user agent claims (``claude-cli/2.1.74 (…)`` → ``2.1.74``), or None."""
        if not isinstance(user_agent, str):
            return None
        m = re.search(self.version_pattern, user_agent.strip())
        return m.group("version") if m else None

    def hits(self, model: Any, user_agents: Iterable[str]) -> list[GateHit]:
        """Every user agent that claims a Claude Code version below ``model``'s floor (empty: not gated)."""
        gated = self.floor_for(model) if isinstance(model, str) else None
        if gated is None:
            return []
        out = []
        for ua in user_agents:
            claimed = self.claimed_version(ua)
            if claimed is not None and version_key(claimed) < version_key(gated.floor):
                out.append(GateHit(gated, claimed, ua))
        return out

    def check(self, model: Any, user_agents: Iterable[str]) -> GateHit | None:
        """The first :class:`GateHit` of the request (``model`` and its user-agent values), or None."""
        found = self.hits(model, user_agents)
        return found[0] if found else None

    def refusal_message(self, hit: GateHit) -> str:
        """The refusal text for ``hit`` (the file's template with both versions filled in)."""
        return self.message.format(**hit.details)


def version_key(version: str) -> tuple[int, ...]:
    """``"2.1.251"`` → ``(2, 1, 251)`` for numeric comparison."""
    return tuple(int(p) for p in version.split("."))


def _strs(value: Any, where: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GateError(f"{path}: {where} must be a list of strings.")
    return tuple(value)


#: The shape of data/version_gate.toml (the vocabulary is lanelab.datafiles'); the reader's checks go further.
GATE_SCHEMA = Table({
    "gate": Table({"version_pattern": Str(regex=True)}),
    "model?": [Table({"id": Str(nonempty=True), "match": Str(regex=True), "floor": Str(nonempty=True),
                      "since": Str(nonempty=True), "sources": [str], "confidence?": str})],
})


def _parse_gate(path: Path) -> VersionGate:
    raw = read_toml(path, "version gate", error=GateError, schema=GATE_SCHEMA)
    gate = raw.get("gate")
    if not isinstance(gate, dict) or not isinstance(gate.get("version_pattern"), str):
        raise GateError(f"{path}: [gate] must be a table with version_pattern (a string).")
    try:
        if "version" not in re.compile(gate["version_pattern"]).groupindex:
            raise GateError(f"{path}: gate.version_pattern needs a group named 'version'.")
    except re.error as exc:
        raise GateError(f"{path}: gate.version_pattern is not a valid regular expression ({exc}).") from None
    for key, kind, name in (("status", int, "an integer"), ("error_type", str, "a string"),
                            ("error_code", str, "a string"), ("message", str, "a string")):
        value = gate.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise GateError(f"{path}: gate.{key} must be {name}.")
    if "{claimed}" not in gate["message"] or "{floor}" not in gate["message"]:
        raise GateError(f"{path}: gate.message must name {{claimed}} and {{floor}}.")
    models = []
    entries = raw.get("model", [])
    if not isinstance(entries, list):
        raise GateError(f"{path}: [[model]] must be an array of tables.")
    for i, m in enumerate(entries):
        where = f"model[{i}]"
        if not isinstance(m, dict):
            raise GateError(f"{path}: {where} must be a table.")
        for key in ("id", "match", "floor", "since"):
            if not isinstance(m.get(key), str) or not m[key]:
                raise GateError(f"{path}: {where}.{key} must be a non-empty string.")
        if not _VERSION.match(m["floor"]):
            raise GateError(f"{path}: {where}.floor must be a version X.Y.Z.")
        if not _DATE.match(m["since"]):
            raise GateError(f"{path}: {where}.since must be a date YYYY-MM[-DD].")
        try:
            re.compile(m["match"])
        except re.error as exc:
            raise GateError(f"{path}: {where}.match is not a valid regular expression ({exc}).") from None
        sources = _strs(m.get("sources"), f"{where}.sources", path)
        if not sources:
            raise GateError(f"{path}: {where}.sources names no public source.")
        models.append(GatedModel(id=m["id"], match=m["match"], floor=m["floor"], since=m["since"], sources=sources,
                                 confidence=str(m.get("confidence", ""))))
    return VersionGate(models=tuple(models), version_pattern=gate["version_pattern"], status=gate["status"],
                       error_type=gate["error_type"], error_code=gate["error_code"], message=gate["message"],
                       message_source=str(gate.get("message_source", "")), reads=str(gate.get("reads", "")),
                       reads_conflict=str(gate.get("reads_conflict", "")), raw=raw)


def gate_path() -> Path:
    """Where the gate lives: ``data/version_gate.toml`` (under ``LANELAB_DATA`` when set)."""
    return data_dir() / "version_gate.toml"


def load_version_gate(path: str | Path | None = None) -> VersionGate:
    """The model-version gate (``data/version_gate.toml`` unless ``path``), parsed once per file version.

    Returns a :class:`VersionGate`. Raises :class:`GateError` when the file is missing or malformed.
    """
    return load_cached(Path(path) if path else gate_path(), _parse_gate, "version gate", GateError)
