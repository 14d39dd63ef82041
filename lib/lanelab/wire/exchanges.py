"""Reading a capture file: the exchange records ``lanelab capture`` (and ``watch``) wrote, one JSON object a line.

A capture file is the wire as the proxy saw it, already redacted: each ``exchange`` record holds the request (method,
path, raw query, header pairs with duplicates kept, body) and the response (status, headers, body, the observation).
Readers rely on the fields of :data:`EXCHANGE_SCHEMA`; a torn last line or a record without them is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanelab.datafiles import Either, ListOf, MapOf, Str, Table, problems
from lanelab.errors import InputError, NotFound, ServiceError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXCHANGE_COLUMNS", "EXCHANGE_SCHEMA", "Exchanges", "exchanges_frame", "inference_exchange", "load_exchanges"]


#: What readers of a capture file rely on in an exchange record (lanelab.datafiles' vocabulary); the request's headers
#: are [name, value] pairs, duplicates kept.
EXCHANGE_SCHEMA = Table({
    "request": Table({"method": Str(nonempty=True), "path": str, "headers": [ListOf(str)],
                      "query_params?": Either(MapOf(object), None),
                      "body?": Either(Table({"json?": object, "text?": Either(str, None),
                                             "form?": Either(MapOf(object), None)}), None)}),
    "response?": Either(Table({"status?": Either(int, None)}), None),
})


def _usable_exchange(record: Any) -> bool:
    return (isinstance(record, dict) and not problems(record, EXCHANGE_SCHEMA, limit=1)
            and all(len(pair) == 2 for pair in record["request"]["headers"]))


class Exchanges(list[dict[str, Any]]):
    """The exchange records of a capture file (a list), and ``skipped``: a sentence for each line that could not be
    read as one (a torn last line, from an interrupted write), so that whoever reads the file can say so."""

    def __init__(self, records: Iterable[dict[str, Any]] = (), skipped: Iterable[str] = (),
                 path: Path | None = None) -> None:
        super().__init__(records)
        self.skipped = list(skipped)
        self.path = path  # the file they were read from, to name it in a message

    def skipped_note(self) -> str:
        """``""``, or what was skipped in a few words: ``1 line could not be read (line 9: not JSON, a torn last line
        from an interrupted write)``."""
        if not self.skipped:
            return ""
        n = len(self.skipped)
        return f"{n} line{'s' if n > 1 else ''} could not be read ({self.skipped[0]}{'; …' if n > 1 else ''})"


def load_exchanges(path: str | Path) -> Exchanges:
    """The exchange records of a capture file, in order; a torn line, or an exchange record without the fields
    readers rely on (:data:`EXCHANGE_SCHEMA`), is skipped and said in ``skipped`` (records of other kinds are not
    exchanges and are left out silently).

    Returns :class:`Exchanges` (a list of dicts, already redacted). Raises :class:`~lanelab.errors.NotFound` when
    there is no such file, :class:`~lanelab.errors.InputError` when it is not UTF-8 text,
    :class:`~lanelab.errors.ServiceError` when it cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a capture file.",
                         "Pass a .jsonl file written by 'python -m lanelab capture' or 'watch'.")
    if not path.is_file():
        raise NotFound(f"No capture file at {path}.", "Run 'python -m lanelab capture' first, or check the path.")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ServiceError(f"Cannot read the capture file {path} ({exc.strerror or type(exc).__name__}).",
                           "Check the file's permissions and the disk.") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text, so not a capture file.",
                        "Pass a .jsonl file written by 'python -m lanelab capture'.") from None
    out = Exchanges(path=path)
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            torn = number == len(lines) and not text.endswith("\n")
            out.skipped.append(f"line {number}: not JSON" + (", a torn last line from an interrupted write"
                                                              if torn else ""))
            continue
        if isinstance(rec, dict) and rec.get("record") == "exchange":
            if _usable_exchange(rec):
                out.append(rec)
            else:
                out.skipped.append(f"line {number}: an exchange record without the fields readers need")
    return out


def inference_exchange(exchanges: list[dict[str, Any]], index: int = -1) -> dict[str, Any]:
    """The ``index``-th inference request (POST …/messages or …/chat/completions) of a capture.

    Returns that exchange record. Raises :class:`~lanelab.errors.NotFound` when the capture holds none (saying which
    lines could not be read, for :class:`Exchanges`), and :class:`~lanelab.errors.InputError` when ``index`` is out
    of range (saying the range).
    """
    found = [e for e in exchanges if e["request"]["method"] == "POST"
             and e["request"]["path"].rstrip("/").endswith(("/messages", "chat/completions"))]
    if not found:
        note = exchanges.skipped_note() if isinstance(exchanges, Exchanges) else ""
        path = exchanges.path if isinstance(exchanges, Exchanges) else None
        raise NotFound(f"{'The capture' if path is None else path} holds no inference request (POST /v1/messages)"
                       + (f"; {note}" if note else "") + ".",
                       "Send a message through the proxy with the client, then try again.")
    if not isinstance(index, int) or isinstance(index, bool) or not -len(found) <= index < len(found):
        raise InputError(f"Index {index!r} is out of range: the capture holds {len(found)} inference request(s) "
                         f"(0 … {len(found) - 1}, or -1 for the last).")
    return found[index]


#: The columns of :func:`exchanges_frame`.
EXCHANGE_COLUMNS = ("seq", "method", "wire path", "user-agent", "request bytes", "status", "error", "first chunk ms",
                    "total ms")


def exchanges_frame(exchanges: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per recorded exchange: what went on the wire and what came back (already redacted).

    Returns a DataFrame (``seq``, ``method``, ``wire path``, ``user-agent``, sizes, ``status``, ``error``, timings);
    raises nothing for well-formed records.
    """
    import pandas as pd

    rows = []
    for e in exchanges:
        req, resp = e["request"], e.get("response") or {}
        agents = [v for k, v in req["headers"] if k.lower() == "user-agent"]
        obs = resp.get("observation") or {}
        rows.append({"seq": e["seq"], "method": req["method"],
                     "wire path": req["path"] + (f"?{req['query']}" if req["query"] else ""),
                     "user-agent": " + ".join(agents), "request bytes": req["body"]["bytes"],
                     "status": resp.get("status"), "error": obs.get("error_message") or e.get("error") or "",
                     "first chunk ms": (e.get("timing") or {}).get("first_chunk_ms"),
                     "total ms": (e.get("timing") or {}).get("total_ms")})
    return pd.DataFrame(rows, columns=list(EXCHANGE_COLUMNS))  # (the same columns when nothing was recorded)
