"""The run store and the one run model: one append-only JSON Lines file per run, so an interrupted run loses nothing
and resumes, and one tidy table that every question, figure and report reads.

Layout (docs/contracts.md §3.1): ``<out>/runs/<run_id>.jsonl``; line 1 is the header, then one ``cell`` record per
sent cell, keyed by ``cell_id`` (the last record of a cell wins), plus optional ``usage`` and ``note`` records.
Every record passes through :mod:`lanelab.redact` and is refused if a registered secret survives; every append is
fsync'd, so a crash can at worst tear the last line, which :func:`load_run` drops and reports.

:func:`tidy` (or :meth:`Run.to_frame`) flattens runs into a pandas DataFrame: one row per cell, the factor levels as
columns, the outcome as an ordered categorical in the taxonomy's order (data/outcomes.toml). The questions asked of
that table live in :mod:`lanelab.findings.frame`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from lanelab import __version__, redact
from lanelab.config import Settings, data_dir
from lanelab.datafiles import Either, Int, MapOf, Str, Table, problems
from lanelab.errors import InputError, NotFound, StateError
from lanelab.wire.classify import load_taxonomy
from lanelab.wire.spec import Observation, RequestSpec

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BASE_COLUMNS", "BISECT_DESIGN", "DEFAULT_LEVEL", "DIAGNOSE_DESIGN", "LoadWarning", "Run", "RunLocked",
    "RunWriter", "completed_cells", "derive_run_id", "encode_record", "free_run_path", "load_run", "load_runs",
    "lock_path", "make_header", "run_path", "run_paths", "spec_record", "split_runs", "tidy",
]

#: The header design of a run of bisect probes (notebook 04, ``lanelab bisect``): counted apart from matrix cells.
BISECT_DESIGN = "bisect"
#: The header design of a diagnose run (``lanelab diagnose``): its verdict is recorded; its probes are not matrix cells.
DIAGNOSE_DESIGN = "diagnose"

#: Shown where a cell does not set a factor (designs that list only the levels they change).
DEFAULT_LEVEL = "(default)"

#: Columns every tidy table has, in display order; the factor columns follow ``profile``. A factor whose name is one
#: of these is shown as ``factor:<name>``.
BASE_COLUMNS = (
    "run_id", "policy", "mode", "cell_id", "profile", "credential", "status", "outcome", "lane",
    "error_type", "error_message", "error_code", "request_id", "latency_ms", "unified_status", "unified_lane", "claim",
    "util_5h", "util_7d", "overage_status", "overage_disabled_reason", "transport_error", "method", "target",
    "sent_at", "spec",
)
FACTOR_PREFIX = "factor:"

_NO_RUN_HINT = ("Check the run id or LANELAB_OUT; run files are runs/<run_id>.jsonl, written by notebook 02 or "
                "'lanelab matrix'.")


@dataclass(frozen=True)
class LoadWarning:
    """Something :func:`load_run` skipped instead of crashing (a torn or corrupt line)."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


_TEXT = Either(str, None)
_NUMBER = Either(float, None)
_WINDOW = Either(Table({"status?": _TEXT, "utilization?": _NUMBER}), None)

#: The parts of each record kind that readers (the tidy table, resume, reports) rely on; a record that does not match
#: is skipped by :func:`load_run` with a warning naming the line and the key (lanelab.datafiles' vocabulary).
RECORD_SCHEMAS = {
    "header": Table({"run_id?": _TEXT, "mode?": _TEXT, "host?": _TEXT, "policy?": _TEXT, "profile?": _TEXT,
                     "design?": _TEXT, "factors?": Either([Either(str, Table({"name?": _TEXT}))], None)}),
    "cell": Table({
        "cell_id": Str(nonempty=True), "profile?": _TEXT, "credential?": _TEXT, "outcome?": _TEXT, "lane?": _TEXT,
        "rule?": _TEXT, "sent_at?": _TEXT,
        "levels?": Either(MapOf(Either(str, int, float, bool, None)), None),
        "spec?": Either(Table({"method?": _TEXT, "path?": _TEXT, "query?": Either(MapOf(object), None),
                               "headers?": Either(MapOf(object), None), "credential?": _TEXT}), None),
        "observation?": Either(Table({
            "status?": Either(Int(0, 999), None), "latency_ms?": _NUMBER, "error_type?": _TEXT, "error_message?": _TEXT,
            "error_code?": _TEXT, "request_id?": _TEXT, "transport_error?": _TEXT,
            "unified?": Either(Table({"status?": _TEXT, "lane?": _TEXT, "representative_claim?": _TEXT,
                                      "five_hour?": _WINDOW, "seven_day?": _WINDOW, "overage_status?": _TEXT,
                                      "overage_disabled_reason?": _TEXT}), None)}), None),
    }),
    "usage": Table({"when?": _TEXT}),
}


def _record_problem(record: Mapping[str, Any]) -> str | None:
    """What is wrong with a record's types (the first problem), or None."""
    kind = record.get("record")
    if not isinstance(kind, str):
        return "its `record` kind is not a string"
    schema = RECORD_SCHEMAS.get(kind)
    found = problems(record, schema, limit=1) if schema is not None else []
    return f"{kind} record: {found[0]}" if found else None


def _record_lines(content: str | bytes) -> list[int]:
    """The line numbers (from 1) of the lines that hold a JSON object, in order: the k-th loaded record's line."""
    lines: list[str | bytes] = list(content.split(b"\n") if isinstance(content, bytes) else content.split("\n"))
    out = []
    for i, raw in enumerate(lines, start=1):
        if raw.strip():
            try:
                if isinstance(json.loads(raw), dict):
                    out.append(i)
            except (ValueError, RecursionError):
                continue
    return out


def _assemble(path: Path, entries: list[dict[str, Any]], warnings: list[LoadWarning], content: str | bytes) -> Run:
    """The run from its parsed records: the first header (or one holding the file name as run id), then every other
    record whose types readers can use. A record that does not match :data:`RECORD_SCHEMAS` is skipped with a warning
    naming its line and key, never raised: a damaged cell is not counted as completed (a resumed run sends it again)
    and stays in the file."""
    found = [(i, _record_problem(e)) for i, e in enumerate(entries)]
    if any(problem for _, problem in found):
        numbers = _record_lines(content)
        for i, problem in found:
            if problem:
                line = numbers[i] if i < len(numbers) else 0
                warnings.append(LoadWarning(str(path), line, f"{problem}; skipped"))
    usable = [e for (_, problem), e in zip(found, entries, strict=True) if not problem]
    headers = [e for e in usable if e.get("record") == "header"]
    header = headers[0] if headers else {"record": "header", "run_id": path.stem}
    if not headers:
        warnings.append(LoadWarning(str(path), 1, "no usable header record; using the file name as run id"))
    return Run(path=path, header=header, entries=[e for e in usable if e is not header], warnings=warnings)


@dataclass(repr=False)
class Run:
    """One loaded run: its header, its records in file order, and what loading had to skip."""

    path: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)

    def __repr__(self) -> str:
        """A line a notebook can read (the records themselves: :meth:`to_frame`)."""
        h = self.header
        what = ", ".join(str(x) for x in (h.get("profile"), h.get("design"), h.get("mode"), h.get("policy")) if x)
        dropped = f", {len(self.warnings)} line(s) skipped" if self.warnings else ""
        return f"<Run {self.run_id} ({what or 'no header'}): {len(self.cells)} cells{dropped}; {self.path}>"

    @property
    def run_id(self) -> str:
        """The header's run id (the file name when the header is missing)."""
        return str(self.header.get("run_id") or self.path.stem)

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        """cell_id → its latest cell record (a resumed run may have retried a cell), in first-sent order."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.entries:
            if e.get("record") == "cell" and e.get("cell_id"):
                out[e["cell_id"]] = e
        return out

    @property
    def usage(self) -> dict[str, dict[str, Any]]:
        """Usage-endpoint snapshots by ``when`` ("before", "after"); the last of each wins; empty if none."""
        return {str(e.get("when")): e["usage"] for e in self.of_kind("usage") if isinstance(e.get("usage"), dict)}

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The records of one kind ("cell", "usage", "note"), in file order."""
        return [e for e in self.entries if e.get("record") == kind]

    def to_frame(self) -> pd.DataFrame:
        """This run as the tidy table.

        Returns:
            The DataFrame of :func:`tidy`: one row per cell, one column per factor.

        Raises:
            DataFileError: the outcome taxonomy (data/outcomes.toml) cannot be read.
        """
        return tidy(self)


#: The last second :func:`now_iso` wrote out, and its text (a run stamps every cell; most share their second).
_last_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """Now, in UTC, to the second: ``2026-11-30T12:00:00+00:00``."""
    global _last_second
    second = int(time.time())
    last = _last_second
    if last[0] != second:
        last = _last_second = (second, datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds"))
    return last[1]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def derive_run_id(profile: str, design: str, mode: str, policy_or_host: str | None,
                  factors: Iterable[str] = (), credential: str | None = None) -> str:
    """A readable, filename-safe run id, stable for the same question (so running it again resumes)."""
    key = json.dumps([profile, design, mode, policy_or_host, sorted(factors), credential])
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{_slug(profile)}_{_slug(design)}_{_slug(mode)}-{_slug(policy_or_host or 'default')}_{digest}"


def run_path(runs_dir: Path, run_id: str) -> Path:
    """The file of run ``run_id`` under ``runs_dir``.

    Raises:
        InputError: the run id is not a safe file name (it could leave ``runs_dir``).
    """
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id) or run_id.startswith("."):
        raise InputError(f"Run id {run_id!r} is not a safe file name.", "Use letters, digits, '.', '_' and '-' only.")
    return runs_dir / f"{run_id}.jsonl"


def free_run_path(runs_dir: Path, run_id: str, resumes: Callable[[Path], bool] | None = None) -> Path:
    """The file a new run ``run_id`` may write: ``run_id``'s own when it is free (absent or empty) or ``resumes``
    accepts it (it holds the same experiment), else the first free ``<run_id>-N``. Nothing is deleted or replaced.

    Raises:
        InputError: the run id is not a safe file name (see :func:`run_path`).
    """
    path = run_path(runs_dir, run_id)
    for n in itertools.count(2):
        if not path.exists() or not path.stat().st_size or (resumes is not None and resumes(path)):
            return path
        path = run_path(runs_dir, f"{run_id}-{n}")
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count never ends


def run_paths(settings: Settings | None = None, samples: bool = True) -> list[Path]:
    """The run files a notebook or report reads by default.

    Returns:
        The ``*.jsonl`` files under ``settings.runs_dir`` (LANELAB_OUT/runs), oldest first; when there are none and
        ``samples`` is true, the curated sample runs in data/runs/samples; possibly an empty list.
    """
    settings = settings or Settings.from_env()
    runs_dir = settings.runs_dir
    found = sorted(runs_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime) if runs_dir.is_dir() else []
    if not found and samples:
        found = sorted((data_dir() / "runs" / "samples").glob("*.jsonl"))
    return found


def make_header(run_id: str, *, mode: str, host: str | None, policy: str | None, profile: str, design: str,
                factors: Iterable[str], credentials: Iterable[str], **extra: Any) -> dict[str, Any]:
    """The header record of contracts §3.1 (extra keys are kept as given).

    Returns:
        A dict to pass to :class:`RunWriter`; ``started_at`` is now, ``kit_version`` this kit's.
    """
    return {"record": "header", "run_id": run_id, "kit_version": __version__, "mode": mode, "host": host,
            "policy": policy, "profile": profile, "design": design, "factors": list(factors),
            "credentials": sorted(set(credentials)), "started_at": now_iso(), **extra}


def encode_record(record: Mapping[str, Any], extra_secrets: Iterable[str] = (), redacted: bool = False) -> str:
    """One JSON line for ``record``, redacted (unless the caller already did).

    Returns:
        The line, ending in a newline.

    Raises:
        SecretLeak: a secret survives redaction (a bug, never a user error).
    """
    line = json.dumps(dict(record) if redacted else redact.redact_obj(dict(record)), ensure_ascii=False,
                      default=str)
    redact.assert_clean(line, where="a run record", extra=extra_secrets)
    return line + "\n"


#: Every key whose value is a JSON string (``"key": "…"``), found in serialized text by one simple regex pass.
_STRING_VALUED_KEY_RE = re.compile(r'"([^"\\]{1,40})"\s*:\s*"')
#: Body texts known to hold no string under a sensitive key (a fact of the text alone, so it never goes stale):
#: cells that send the same body (header-only factors, retries, resumed runs) are not scanned again. At most
#: :data:`_SCANNED_CHARS_MAX` characters are remembered; then the memory starts over.
_scanned_bodies: set[str] = set()
_scanned_chars = 0
_SCANNED_CHARS_MAX = 4 * 1024 * 1024


def _has_sensitive_string(text: str) -> bool:
    global _scanned_chars
    if text in _scanned_bodies:
        return False
    if any(redact.is_sensitive_key(k) for k in _STRING_VALUED_KEY_RE.findall(text)):
        return True
    if _scanned_chars + len(text) > _SCANNED_CHARS_MAX:
        _scanned_bodies.clear()
        _scanned_chars = 0
    _scanned_bodies.add(text)
    _scanned_chars += len(text)
    return False


def _body_text(body: Any, sent: str | None = None) -> str:
    """A request body as JSON text, redacted. Bodies are large (system prompts, tool schemas) and hold no secret by
    construction, so they are scanned as one JSON text; a body with a string under a sensitive key goes field by
    field instead. ``sent`` is the body's text as :func:`lanelab.wire.spec.build_request` sent it (the same
    encoding): given, it is not encoded again."""
    if body is None or isinstance(body, (str, int, float, bool)):
        return redact.redact_json(body)
    text = sent if sent is not None else json.dumps(body, ensure_ascii=False)
    if _has_sensitive_string(text):
        return redact.redact_json(body)
    clean = redact.redact_text(text)
    if clean == text:
        return text
    try:
        return json.dumps(json.loads(clean), ensure_ascii=False, default=str)
    except ValueError:
        return redact.redact_json(body)


def _spec_fields(spec: RequestSpec | Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """A spec's fields but its body, and its body, both as they are."""
    d = dict(spec) if isinstance(spec, Mapping) else {f: getattr(spec, f) for f in RequestSpec.__dataclass_fields__}
    return d, d.pop("body", None)


def _redacted_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A spec's fields (its body left out), redacted: headers by name, the rest as data."""
    return {k: redact.redact_headers(v) if k == "headers" and isinstance(v, dict) else redact.redact_obj(v)
            for k, v in fields.items()}


def spec_record(spec: RequestSpec | Mapping[str, Any]) -> dict[str, Any]:
    """A request spec as stored in a cell record.

    Returns:
        The ``RequestSpec.to_dict`` shape, redacted (headers by name, the body as one scanned text).
    """
    fields, body = _spec_fields(spec)
    return {**_redacted_fields(fields), "body": json.loads(_body_text(body))}


def _spec_opening(fields: Mapping[str, Any], encoded: str = "") -> str:
    """The JSON text of a spec record before its body (``{"method": …, "body": ``): ``encoded`` (the fields' text
    when :func:`lanelab.redact.clean_json` found them clean), or else the redacted fields encoded."""
    text = encoded or json.dumps(_redacted_fields(fields), ensure_ascii=False, default=str)
    return f"{text[:-1]}{', ' if fields else ''}\"body\": "


def _parse_lines(path: Path, data: bytes) -> tuple[list[dict[str, Any]], list[LoadWarning], int]:
    """Records, warnings, and the byte length of the intact prefix (everything up to the last good newline).

    Works on the bytes as stored: each line is decoded on its own (bytes that are not UTF-8 become U+FFFD in that
    line only), so the offset of a torn last line is exact whatever bytes came before it or are in it."""
    entries: list[dict[str, Any]] = []
    warnings: list[LoadWarning] = []
    lines = data.split(b"\n")
    torn = lines[-1] != b""  # no newline after the last line: a torn append
    good_len = len(data) - (len(lines[-1]) if torn else 0)
    for i, raw in enumerate(lines[:-1] if not torn else lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8", errors="replace"))
            if not isinstance(rec, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError, RecursionError) as exc:
            last = torn and i == len(lines)
            what = "torn last line (an interrupted write); dropped" if last else f"unreadable line ({exc}); skipped"
            warnings.append(LoadWarning(str(path), i, what))
            continue
        entries.append(rec)
        if torn and i == len(lines):
            # a complete JSON object that only lacks its newline is intact
            good_len = len(data)
    return entries, warnings, good_len


def load_run(path: str | Path) -> Run:
    """Load one run file. A torn last line (an interrupted write), a corrupt line or a record whose types readers
    cannot use (:data:`RECORD_SCHEMAS`) is skipped and reported in ``run.warnings``, never raised; a file without a
    usable header takes its file name as run id (also reported). The file itself is never changed.

    Returns:
        The :class:`Run`.

    Raises:
        NotFound: there is no file at ``path``.
        InputError: ``path`` is not a path, or not a readable file (e.g. a directory).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_run takes a run file's path; found {type(path).__name__}.", _NO_RUN_HINT)
    path = Path(path)
    if not path.exists():
        raise NotFound(f"No run file at {path}.", _NO_RUN_HINT)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path} cannot be read as a run file ({type(exc).__name__}).", _NO_RUN_HINT) from None
    entries, warnings, _ = _parse_lines(path, data)
    return _assemble(path, entries, warnings, data)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Load several run files (e.g. :func:`run_paths`), in the order given.

    Returns:
        One :class:`Run` per path.

    Raises:
        NotFound, InputError: as :func:`load_run`, for the first path that fails.
    """
    return [load_run(p) for p in paths]


def completed_cells(run: Run, transient: Iterable[str] = ()) -> set[str]:
    """Cell ids a resumed run must not send again.

    Returns:
        Every recorded cell id whose latest outcome is not in ``transient``.
    """
    skip = set(transient)
    return {cid for cid, rec in run.cells.items() if rec.get("outcome") not in skip}


class RunLocked(StateError):
    """Another writer (another runner) has this run file open: two writers would send every pending cell twice."""


def lock_path(path: Path) -> Path:
    """The sidecar naming who holds the lock on run file ``path`` (``<run_id>.jsonl.lock``; advisory text only:
    the lock itself is an ``flock`` on the run file, which the system releases when its holder exits or dies)."""
    return path.with_name(path.name + ".lock")


def _holder_text(path: Path) -> str:
    """Who holds ``path``'s lock, from its sidecar, in a few words (or why that is not known)."""
    try:
        info = json.loads(lock_path(path).read_text(encoding="utf-8"))
        pid, since, host = int(info["pid"]), str(info["started_at"]), str(info.get("host") or "")
    except (OSError, ValueError, TypeError, KeyError):
        return "another process (its details are not readable)"
    where = f" on {host}" if host and host != socket.gethostname() else ""
    this = " (this process)" if pid == os.getpid() and not where else ""
    return f"process {pid}{where}{this}, which opened it at {since}"


#: Writers open in this process, by the real path of their run file (see RunWriter on reopening in one process).
_open_writers: dict[str, weakref.ReferenceType[RunWriter]] = {}
_open_writers_lock = threading.RLock()


def _release(fd: int, sidecar: Path, holder: str) -> None:
    """Close a writer's file (which releases its lock), removing its sidecar first if it is still its own."""
    try:
        if sidecar.read_text(encoding="utf-8") == holder:
            sidecar.unlink()
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


class RunWriter:
    """Appends records to one run file: redacted, leak-checked, fsync'd, thread-safe, and the only writer.

    Opening a new file writes ``header`` as its first line. Opening an existing run keeps its header (so ``run_id``
    resumes; ``resumed`` holds the run as it was, read under the lock) and trims a torn last line first, so the next
    append starts on a clean line. Every append raises :class:`lanelab.redact.SecretLeak` (and writes nothing) if a
    secret survives redaction, and ``OSError`` if the file cannot be written (a partly written line is then cut off
    again, so the file never keeps half a record).

    The writer holds an exclusive lock on the run file from opening until :meth:`close` (or until it is garbage
    collected, or its process ends or is killed: the system drops the lock then). A second writer in another process
    raises :class:`RunLocked` naming the first one's pid and start time, before anything is sent. A second writer in
    the same process (re-running a notebook cell, a run interrupted earlier) takes the file over: the older writer
    is closed, and any later append through it raises :class:`~lanelab.errors.StateError`.

    Raises:
        RunLocked: another process is writing this run.
        OSError: the file cannot be opened or repaired.
    """

    def __init__(self, path: Path, header: Mapping[str, Any]):
        self.path = path
        self._lock = threading.Lock()
        self._closed_because: str | None = None
        self._unsynced = False  # lines written without fsync since the last one (append_lines with sync=False)
        self.resumed: Run | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(path)
        with _open_writers_lock:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                self._take_over(key, fd)
                self._acquire(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd: int | None = fd
            self.opened_at = now_iso()
            self._holder = json.dumps({"pid": os.getpid(), "started_at": self.opened_at,
                                       "host": socket.gethostname()})
            self._finalizer = weakref.finalize(self, _release, fd, lock_path(path), self._holder)
            _open_writers[key] = weakref.ref(self)
        try:
            lock_path(path).write_text(self._holder, encoding="utf-8")
        except OSError:
            pass  # only the message naming the holder needs it; the lock holds without it
        try:
            self._open_contents(header)
        except BaseException:
            self.close()
            raise

    # -- the lock -------------------------------------------------------------------------------------------------
    def _take_over(self, key: str, fd: int) -> None:
        ref = _open_writers.get(key)
        old = ref() if ref is not None else None
        if old is None or old._fd is None:
            return
        try:
            same = os.path.samestat(os.fstat(old._fd), os.fstat(fd))
        except OSError:
            same = False
        if same:
            old._close(f"run file {self.path} was opened again in this process at {now_iso()}; "
                       "this older writer stopped")

    def _acquire(self, fd: int) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(
                f"Run {self.path.stem} is already being written by {_holder_text(self.path)}; two runners on one "
                "run would send every pending cell twice.",
                "Wait for that run to finish (or stop it), then run the same command again: it resumes where the "
                "file ends. Or choose another run id.") from None
        except OSError:  # pragma: no cover - a file system without flock (some network mounts): no lock
            return

    # -- the file -------------------------------------------------------------------------------------------------
    def _open_contents(self, header: Mapping[str, Any]) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        good_len = 0
        if size:
            data = os.pread(self._fd, size, 0)
            _, _, good_len = _parse_lines(self.path, data)
            if good_len < size:
                os.ftruncate(self._fd, good_len)
                os.fsync(self._fd)
            if good_len and not data[:good_len].endswith(b"\n"):
                self._write(b"\n")
        if good_len:
            self.resumed = load_run(self.path)
            self.header = self.resumed.header
        else:  # a new file, or one that held only a torn line
            self.header = dict(header)
            self.append(self.header)

    def _write(self, data: bytes, sync: bool = True) -> None:
        """Append ``data`` (and fsync, with every earlier unsynced line, when ``sync``); on failure cut the file back
        to where it was, then raise."""
        if self._fd is None:
            raise StateError(f"This run writer is closed ({self._closed_because or 'closed'}).",
                             "Open a new RunWriter for the run (it resumes) if more must be written.")
        start = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if sync:
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass  # the loader drops the torn line, and the next writer trims it
            raise
        self._unsynced = not sync

    def append(self, record: Mapping[str, Any], redacted: bool = False) -> None:
        """Append one record as a line (redacted unless ``redacted`` says the caller did) and fsync; see the class
        for raises, and :class:`~lanelab.errors.StateError` after :meth:`close`."""
        self.append_lines([encode_record(record, redacted=redacted).encode()])

    def append_lines(self, lines: Sequence[bytes], sync: bool = True) -> None:
        """Append lines made by :meth:`cell_line` (or :func:`encode_record`) with one write and one fsync: all of
        them are on disk when this returns, or none is (the file is cut back, and ``OSError`` raised). A group
        commit: the sender hands over every line that waited while the previous fsync ran.

        With ``sync`` False the lines are written but not fsync'd: in the file for every reader, and kept if the
        process is killed, but not sure to survive a power cut until the next synced append (a note) or
        :meth:`close`.

        Raises:
            StateError: the writer is closed.
            OSError: the lines could not be written.
        """
        if lines:
            with self._lock:
                self._write(b"".join(lines), sync=sync)

    def _close(self, because: str) -> None:
        with self._lock:
            if self._fd is None:
                return
            if self._unsynced:
                with contextlib.suppress(OSError):  # what was written stays written; only the fsync failed
                    os.fsync(self._fd)
            self._fd = None
            self._closed_because = because
            self._finalizer()
        with _open_writers_lock, contextlib.suppress(KeyError):
            key = os.path.realpath(self.path)
            if _open_writers[key]() in (self, None):
                del _open_writers[key]

    def close(self) -> None:
        """Release the run file (and its lock). Idempotent; later appends raise ``StateError``."""
        self._close("closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or another writer in this process took the file over)."""
        return self._fd is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cell(self, *, cell_id: str, profile: str, levels: Mapping[str, str], credential: str | None,
             spec: RequestSpec | Mapping[str, Any], observation: Observation | Mapping[str, Any], outcome: str,
             lane: str, rule: str | None = None, body_sent: str | None = None, **extra: Any) -> None:
        """Append one cell record (contracts §3.1); every part is redacted once, the whole line leak-checked."""
        self.append_lines([self.cell_line(cell_id=cell_id, profile=profile, levels=levels, credential=credential,
                                          spec=spec, observation=observation, outcome=outcome, lane=lane, rule=rule,
                                          body_sent=body_sent, **extra)])

    @staticmethod
    def cell_line(*, cell_id: str, profile: str, levels: Mapping[str, str], credential: str | None,
                  spec: RequestSpec | Mapping[str, Any], observation: Observation | Mapping[str, Any], outcome: str,
                  lane: str, rule: str | None = None, body_sent: str | None = None, **extra: Any) -> bytes:
        """The line :meth:`cell` appends, encoded but not written (for :meth:`append_lines`). ``body_sent`` is the
        spec's body as the request carried it (its JSON text): the record then holds exactly that text, not encoded
        again. The line is what :func:`encode_record` writes for the record.

        Raises:
            SecretLeak: a secret survives redaction (a bug, never a user error).
        """
        kind = extra.pop("record", "cell")
        head = {"record": kind, "cell_id": cell_id, "profile": profile, "levels": dict(levels),
                "credential": credential}
        obs = observation.plain() if isinstance(observation, Observation) else dict(observation)
        tail = {"outcome": outcome, "lane": lane, "rule": rule, "sent_at": now_iso(), **extra}
        fields, body = _spec_fields(spec)
        # the parts with nothing to redact (most cells' every part) are found so with one scan; else one by one
        texts = redact.clean_json_all([head, obs, tail, fields]) or [
            redact.redact_json(head), redact.redact_json(obs), redact.redact_json(tail), redact.clean_json(fields) or ""]
        # cut between whole JSON values, where no secret's pattern can cross (redact.assert_clean_parts); an object's
        # members without its braces are what was found clean, so they are not scanned again
        parts = ("{", texts[0][1:-1], ', "spec": ', _spec_opening(fields, texts[3]), _body_text(body, body_sent), "}",
                 ', "observation": {', texts[1][1:-1], "}, ", texts[2][1:-1], "}")
        redact.assert_clean_parts(parts, where="a run record")
        line = "".join(parts)
        return (line + "\n").encode()

    def note(self, **fields: Any) -> None:
        """Append a ``note`` record (``at`` is now) with ``fields``; see the class for raises."""
        self.append({"record": "note", "at": now_iso(), **fields})


# --------------------------------------------------------------------------------------------------------------------
# The tidy table


def _factor_names(runs: Iterable[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for f in run.header.get("factors") or []:
            name = f if isinstance(f, str) else (f.get("name") if isinstance(f, dict) else None)
            if name and name not in names:
                names.append(str(name))
        for cell in run.cells.values():
            for f in cell.get("levels") or {}:
                if f not in names:
                    names.append(str(f))
    return names


def _row(run: Run, cell: Mapping[str, Any], factors: Iterable[str], columns: Mapping[str, str]) -> dict[str, Any]:
    obs = cell.get("observation") or {}
    uni = obs.get("unified") or {}
    spec = cell.get("spec") or {}
    levels = cell.get("levels") or {}
    query = spec.get("query") or {}
    target = (spec.get("path") or "") + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    row = {
        "run_id": run.run_id, "policy": run.header.get("policy"), "mode": run.header.get("mode"),
        "cell_id": cell.get("cell_id"), "profile": cell.get("profile") or run.header.get("profile"),
        "credential": cell.get("credential") or spec.get("credential") or DEFAULT_LEVEL,
        "status": obs.get("status"), "outcome": cell.get("outcome") or "unclassified",
        "lane": cell.get("lane") or "unknown",
        "error_type": obs.get("error_type"), "error_message": obs.get("error_message"),
        "error_code": obs.get("error_code"), "request_id": obs.get("request_id"),
        "latency_ms": obs.get("latency_ms"), "unified_status": uni.get("status"), "unified_lane": uni.get("lane"),
        "claim": uni.get("representative_claim"),
        "util_5h": (uni.get("five_hour") or {}).get("utilization"),
        "util_7d": (uni.get("seven_day") or {}).get("utilization"),
        "overage_status": uni.get("overage_status"), "overage_disabled_reason": uni.get("overage_disabled_reason"),
        "transport_error": obs.get("transport_error"), "method": spec.get("method"), "target": target,
        "sent_at": cell.get("sent_at"), "spec": redact.redact_obj(spec),
    }
    for f in factors:
        row[columns[f]] = str(levels[f]) if f in levels else DEFAULT_LEVEL
    return row


def _outcome_order(observed: Iterable[Any]) -> list[str]:
    """Category order for the outcome column: the taxonomy's, then any outcome the data has that it lacks."""
    order = [c.id for c in load_taxonomy().classes]
    for o in observed:
        if isinstance(o, str) and o not in order:
            order.append(o)
    return order


def tidy(runs: Run | Iterable[Run]) -> pd.DataFrame:
    """One or more runs as one tidy table: one row per cell (its latest record).

    Columns, in order: run_id, policy, mode, cell_id, profile, then one column per factor holding its level
    (:data:`DEFAULT_LEVEL` where a cell does not set it; a factor named like a fixed column is ``factor:<name>``),
    then credential, status (nullable int), outcome (ordered categorical, taxonomy order), lane, the error's type,
    message and code, request_id, latency_ms, the unified-header fields (unified_status, unified_lane, claim, util_5h,
    util_7d, overage_status, overage_disabled_reason), transport_error, method, target, sent_at and the redacted spec.

    ``df.attrs["factors"]`` names the factor columns (``credential`` joins them when it varies and no factor already
    names it); ``df.attrs["runs"]`` holds the redacted run headers.

    Returns:
        The DataFrame (with no rows when the runs hold no cells).

    Raises:
        DataFileError: the outcome taxonomy (data/outcomes.toml) cannot be read.
    """
    import pandas as pd

    runs = [runs] if isinstance(runs, Run) else list(runs)
    factors = _factor_names(runs)
    columns = {f: (f"{FACTOR_PREFIX}{f}" if f in BASE_COLUMNS else f) for f in factors}
    rows = [_row(run, cell, factors, columns) for run in runs for cell in run.cells.values()]
    factor_cols = [columns[f] for f in factors]
    df = pd.DataFrame(rows, columns=[*BASE_COLUMNS[:5], *factor_cols, *BASE_COLUMNS[5:]])
    df["status"] = df["status"].astype("Int64")
    for col in ("util_5h", "util_7d", "latency_ms"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["outcome"] = pd.Categorical(df["outcome"], categories=_outcome_order(df["outcome"].unique()), ordered=True)
    if "credential" not in factors and df["credential"].nunique() > 1:
        factor_cols.append("credential")
    df.attrs["factors"] = factor_cols
    df.attrs["runs"] = [redact.redact_obj(r.header) for r in runs]
    return df


def split_runs(runs: Iterable[Run]) -> tuple[list[Run], list[Run], list[Run]]:
    """Runs by kind, each in the order given.

    Returns:
        (matrix runs, bisect runs, diagnose runs), by the header's ``design`` ("bisect", "diagnose", anything else).
    """
    matrix: list[Run] = []
    bisect: list[Run] = []
    diagnose: list[Run] = []
    for run in runs:
        design = run.header.get("design")
        (bisect if design == BISECT_DESIGN else diagnose if design == DIAGNOSE_DESIGN else matrix).append(run)
    return matrix, bisect, diagnose
