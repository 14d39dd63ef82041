"""The run store: one append-only JSON Lines file per run, so an interrupted run loses nothing and resumes.

Layout (docs/contracts.md §3.1): ``<out>/runs/<run_id>.jsonl``; line 1 is the header, then one ``cell`` record per
sent cell, keyed by ``cell_id`` (the last record of a cell wins), plus optional ``usage`` and ``note`` records.
Every record passes through :mod:`lanelab.redact` and is refused if a registered secret survives; every append is
fsync'd, so a crash can at worst tear the last line, which :func:`load_run` drops and reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lanelab import __version__, redact
from lanelab.errors import InputError
from lanelab.wire.spec import Observation, RequestSpec

#: Cell fields turned into plain columns by :func:`records`, in order.
OBSERVATION_COLUMNS = ("status", "error_type", "error_message", "error_code", "request_id", "latency_ms", "attempts",
                       "transport_error")
UNIFIED_COLUMNS = ("status", "representative_claim", "overage_status", "overage_disabled_reason")


class RunStoreError(InputError):
    """A run file cannot be used as asked."""


@dataclass(frozen=True)
class LoadWarning:
    """Something :func:`load_run` skipped instead of crashing (a torn or corrupt line)."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


@dataclass
class Run:
    """One loaded run: its header, its records in file order, and what loading had to skip."""

    path: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id") or self.path.stem)

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        """cell_id → its latest cell record (a resumed run may have retried a cell)."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.entries:
            if e.get("record") == "cell" and e.get("cell_id"):
                out[e["cell_id"]] = e
        return out

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("record") == kind]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def derive_run_id(profile: str, design: str, mode: str, policy_or_host: str | None,
                  factors: Iterable[str] = (), credential: str | None = None) -> str:
    """A readable, filename-safe run id, stable for the same question (so running it again resumes)."""
    key = json.dumps([profile, design, mode, policy_or_host, sorted(factors), credential])
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{_slug(profile)}_{_slug(design)}_{_slug(mode)}-{_slug(policy_or_host or 'default')}_{digest}"


def run_path(runs_dir: Path, run_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id) or run_id.startswith("."):
        raise RunStoreError(f"Run id {run_id!r} is not a safe file name.",
                            "Use letters, digits, '.', '_' and '-' only.")
    return runs_dir / f"{run_id}.jsonl"


def make_header(run_id: str, *, mode: str, host: str | None, policy: str | None, profile: str, design: str,
                factors: Iterable[str], credentials: Iterable[str], **extra: Any) -> dict[str, Any]:
    """The header record of contracts §3.1 (extra keys allowed)."""
    return {"record": "header", "run_id": run_id, "kit_version": __version__, "mode": mode, "host": host,
            "policy": policy, "profile": profile, "design": design, "factors": list(factors),
            "credentials": sorted(set(credentials)), "started_at": now_iso(), **extra}


def encode_record(record: Mapping[str, Any], extra_secrets: Iterable[str] = (), redacted: bool = False) -> str:
    """One JSON line for ``record``, redacted (unless the caller already did); raises :class:`redact.SecretLeak` if a
    secret survives either way."""
    line = json.dumps(dict(record) if redacted else redact.redact_obj(dict(record)), ensure_ascii=False,
                      default=str)
    redact.assert_clean(line, where="a run record", extra=extra_secrets)
    return line + "\n"


#: Every key whose value is a JSON string (``"key": "…"``), found in serialized text by one simple regex pass.
_STRING_VALUED_KEY_RE = re.compile(r'"([^"\\]{1,40})"\s*:\s*"')


def _has_sensitive_string(text: str) -> bool:
    return any(redact.is_sensitive_key(k) for k in _STRING_VALUED_KEY_RE.findall(text))


def _redact_body(body: Any) -> Any:
    """A request body, redacted. Bodies are large (system prompts, tool schemas) and hold no secret by construction,
    so they are scanned as one JSON text; a body with a string under a sensitive key goes field by field instead."""
    if body is None or isinstance(body, (str, int, float, bool)):
        return redact.redact_obj(body)
    text = json.dumps(body, ensure_ascii=False)
    if _has_sensitive_string(text):
        return redact.redact_obj(body)
    clean = redact.redact_text(text)
    if clean == text:
        return body
    try:
        return json.loads(clean)
    except ValueError:
        return redact.redact_obj(body)


def spec_record(spec: RequestSpec | Mapping[str, Any]) -> dict[str, Any]:
    """A request spec as stored in a cell record (``RequestSpec.to_dict`` shape), redacted."""
    d = dict(spec) if isinstance(spec, Mapping) else {f: getattr(spec, f) for f in RequestSpec.__dataclass_fields__}
    out = {k: redact.redact_obj(v) for k, v in d.items() if k != "body"}
    if isinstance(out.get("headers"), dict):
        out["headers"] = redact.redact_headers(d["headers"])
    out["body"] = _redact_body(d.get("body"))
    return out


def _parse_lines(path: Path, text: str) -> tuple[list[dict[str, Any]], list[LoadWarning], int]:
    """Records, warnings, and the byte length of the intact prefix (everything up to the last good newline)."""
    entries: list[dict[str, Any]] = []
    warnings: list[LoadWarning] = []
    lines = text.split("\n")
    torn = lines[-1] != ""  # no newline after the last line: a torn append
    good_len = len(text.encode()) - (len(lines[-1].encode()) if torn else 0)
    for i, raw in enumerate(lines[:-1] if not torn else lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as exc:
            last = torn and i == len(lines)
            what = "torn last line (an interrupted write); dropped" if last else f"unreadable line ({exc}); skipped"
            warnings.append(LoadWarning(str(path), i, what))
            continue
        entries.append(rec)
        if torn and i == len(lines):
            # a complete JSON object that only lacks its newline is intact
            good_len = len(text.encode())
    return entries, warnings, good_len


def load_run(path: str | Path) -> Run:
    """Load a run file; a torn last line is dropped and reported in ``run.warnings``, never raised."""
    path = Path(path)
    if not path.exists():
        raise RunStoreError(f"No run file at {path}.", "Check the run id, or LANELAB_OUT.")
    text = path.read_bytes().decode("utf-8", errors="replace")
    entries, warnings, _ = _parse_lines(path, text)
    headers = [e for e in entries if e.get("record") == "header"]
    header = headers[0] if headers else {"record": "header", "run_id": path.stem}
    if not headers:
        warnings.append(LoadWarning(str(path), 1, "no header record; using the file name as run id"))
    return Run(path=path, header=header, entries=[e for e in entries if e is not header], warnings=warnings)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Load several runs (e.g. every file under ``<out>/runs``)."""
    return [load_run(p) for p in paths]


def completed_cells(run: Run, transient: Iterable[str] = ()) -> set[str]:
    """Cell ids a resumed run must not send again: every recorded cell whose outcome is not transient."""
    skip = set(transient)
    return {cid for cid, rec in run.cells.items() if rec.get("outcome") not in skip}


class RunWriter:
    """Appends records to one run file: redacted, leak-checked, fsync'd, thread-safe.

    Opening an existing run keeps its header (so ``run_id`` resumes) and trims a torn last line first, so the
    next append starts on a clean line.
    """

    def __init__(self, path: Path, header: Mapping[str, Any]):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.resumed: Run | None = None
        if path.exists() and path.stat().st_size:
            text = path.read_bytes().decode("utf-8", errors="replace")
            _, _, good_len = _parse_lines(path, text)
            if good_len < path.stat().st_size:
                with path.open("r+b") as f:
                    f.truncate(good_len)
                    os.fsync(f.fileno())
            if good_len and not text.encode()[:good_len].endswith(b"\n"):
                with path.open("ab") as f:
                    f.write(b"\n")
            self.resumed = load_run(path)
            self.header = self.resumed.header
        else:
            self.header = dict(header)
            self.append(self.header)

    def append(self, record: Mapping[str, Any], redacted: bool = False) -> None:
        line = encode_record(record, redacted=redacted).encode()
        with self._lock, self.path.open("ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def cell(self, *, cell_id: str, profile: str, levels: Mapping[str, str], credential: str | None,
             spec: RequestSpec | Mapping[str, Any], observation: Observation | Mapping[str, Any], outcome: str,
             lane: str, rule: str | None = None, **extra: Any) -> None:
        """Append one cell record (contracts §3.1); every part is redacted once, the whole line leak-checked."""
        obs = observation.to_dict() if isinstance(observation, Observation) else redact.redact_obj(dict(observation))
        small = redact.redact_obj({"cell_id": cell_id, "profile": profile, "levels": dict(levels),
                                   "credential": credential, **extra})
        record = {"record": "cell", **{k: small[k] for k in ("cell_id", "profile", "levels", "credential")},
                  "spec": spec_record(spec), "observation": obs, "outcome": outcome, "lane": lane, "rule": rule,
                  "sent_at": now_iso(), **{k: small[k] for k in extra}}
        self.append(record, redacted=True)

    def note(self, **fields: Any) -> None:
        self.append({"record": "note", "at": now_iso(), **fields})


def records(run: Run) -> list[dict[str, Any]]:
    """The run's cells as flat dicts for a pandas DataFrame: one row per cell, one column per factor.

    Fixed columns: run_id, cell_id, profile, credential, outcome, lane, rule, sent_at, the observation's status,
    error type/message/code, request id, latency, attempts, transport error, and the unified status, representative
    claim, overage status and overage-disabled reason (prefixed ``unified_``). Factor levels follow under the factor's
    name (``factor_<name>`` if that name is already a fixed column).
    """
    rows = []
    for rec in run.cells.values():
        obs = rec.get("observation") or {}
        uni = obs.get("unified") or {}
        row: dict[str, Any] = {"run_id": run.run_id, "cell_id": rec.get("cell_id"), "profile": rec.get("profile"),
                               "credential": rec.get("credential"), "outcome": rec.get("outcome"),
                               "lane": rec.get("lane"), "rule": rec.get("rule"), "sent_at": rec.get("sent_at")}
        row.update({k: obs.get(k) for k in OBSERVATION_COLUMNS})
        row.update({f"unified_{k}": uni.get(k) for k in UNIFIED_COLUMNS})
        for factor, level in (rec.get("levels") or {}).items():
            row["factor_" + factor if factor in row else factor] = level
        rows.append(row)
    return rows


def single_changes(run: Run, baseline_cell_id: str) -> list[dict[str, Any]]:
    """Cells that differ from the baseline cell in exactly one factor level (an OFAT run's answer sheet).

    Each row: factor, level (the changed one), baseline_level, outcome, status, lane, baseline_outcome, cell_id.
    """
    cells = run.cells
    base = cells.get(baseline_cell_id)
    if base is None:
        raise RunStoreError(f"Run {run.run_id} has no cell {baseline_cell_id!r}.", "Was the baseline cell sent?")
    base_levels = base.get("levels") or {}
    out = []
    for cid, rec in cells.items():
        levels = rec.get("levels") or {}
        diff = [f for f in set(levels) | set(base_levels) if levels.get(f) != base_levels.get(f)]
        if len(diff) != 1:
            continue
        f = diff[0]
        obs = rec.get("observation") or {}
        out.append({"factor": f, "level": levels.get(f), "baseline_level": base_levels.get(f),
                    "outcome": rec.get("outcome"), "status": obs.get("status"), "lane": rec.get("lane"),
                    "baseline_outcome": base.get("outcome"), "cell_id": cid})
    return sorted(out, key=lambda r: (r["factor"], str(r["level"])))
