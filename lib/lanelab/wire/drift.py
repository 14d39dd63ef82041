"""Drift made visible: whatever a response carried that the kit has never seen, flagged verbatim, never dropped.

"Known" comes from the data files, not from code: the unified headers, claims and values in data/lanes.toml, the
error types, codes and messages named by data/outcomes.toml (its rules and ``[[known]]`` entries) and the usage body's
keys and fields in data/usage_fields.toml. :func:`scan` lists what one observation carries beyond them (the wire layer
stores the list as ``Observation.unknown``); :func:`new_to_kit` collects it across runs, with the cells where each item
appeared, for the findings' "new to this kit" section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from lanelab.wire import unified
from lanelab.wire.classify import Taxonomy, classify, error_message, load_taxonomy
from lanelab.wire.spec import Observation, Unknown
from lanelab.wire.usage import UsageShape, load_usage_shape, read_usage, usage_path

__all__ = ["COLUMNS", "KINDS", "new_to_kit", "scan"]

#: Kinds of unknown items, in the order the findings list them.
KINDS = (unified.KIND_CLAIM, unified.KIND_HEADER, unified.KIND_VALUE, "error_code", "error_type", "message",
         "usage_field")

#: Error types the kit itself writes (lanelab.wire.spec): not the server's words, so never flagged.
_KIT_ERROR_TYPE = re.compile(r"^(malformed_response|stream_truncated|unknown|http_\d{3})$")

#: Columns of :func:`new_to_kit`.
COLUMNS = ("kind", "name", "value", "count", "cells", "runs", "recorded")


def _error_unknowns(obs: Observation, tax: Taxonomy) -> list[Unknown]:
    out: list[Unknown] = []
    body = obs.body
    oauth_error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
    if obs.error_type is None and oauth_error is None:
        return out
    if obs.error_type and not _KIT_ERROR_TYPE.match(obs.error_type) and not tax.knows_error_type(obs.error_type):
        out.append(Unknown.of("error_type", "error.type", obs.error_type))
    if oauth_error is not None and not tax.knows_error_type(oauth_error):
        out.append(Unknown.of("error_type", "error", oauth_error))
    if obs.error_code and not tax.knows_error_code(obs.error_code):
        out.append(Unknown.of("error_code", "details.error_code", obs.error_code))
    message = error_message(obs)
    kit_text = obs.stream_events is not None and bool(obs.error_type and _KIT_ERROR_TYPE.match(obs.error_type))
    # a bare OAuth `error` is checked above; a known message needs no verdict, and an unknown one is flagged unless
    # the rule that decides takes any message
    if (message.strip() and not kit_text and message != oauth_error and not tax.knows_message(message)
            and not getattr(tax.rule(classify(obs, tax).rule), "any_message", False)):
        where = "error_description" if oauth_error is not None else "error.message"
        out.append(Unknown.of("message", where, message))
    return out


def _is_usage(endpoint: str | None) -> bool:
    return bool(endpoint and endpoint.rstrip("/") == usage_path().rstrip("/"))


def scan(obs: Observation, taxonomy: Taxonomy | None = None, lanes: unified.LaneTable | None = None,
         shape: UsageShape | None = None) -> list[Unknown]:
    """Everything ``obs`` carries that the data files do not know, in the order met, each once.

    Unified headers, claims and enumerated values (data/lanes.toml); the error type, ``details.error_code`` and
    message (data/outcomes.toml: a message decided by a rule marked ``any_message`` is not checked); and, for a served
    response of the usage endpoint (``obs.endpoint``), every key or field data/usage_fields.toml does not list."""
    raw = obs.unified.raw
    out = [Unknown.of(kind, name, value) for kind, name, value in unified.unknown_headers(raw, lanes)] if raw else []
    if obs.status is not None and not obs.transport_error:
        if obs.error_type is not None or isinstance(obs.body, dict) and isinstance(obs.body.get("error"), str):
            out += _error_unknowns(obs, taxonomy or load_taxonomy())
        if obs.ok and isinstance(obs.body, dict) and _is_usage(obs.endpoint):
            out += read_usage(obs.body, shape or load_usage_shape()).unknown
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------ across runs


def _cells(run: Any) -> list[Mapping[str, Any]]:
    cells = getattr(run, "cells", None)
    if isinstance(cells, Mapping):
        cells = list(cells.values())
    return [c for c in cells or [] if isinstance(c, Mapping)]


def _usage_bodies(run: Any) -> list[tuple[str, Any]]:
    usage = getattr(run, "usage", None)
    if isinstance(usage, Mapping):  # lanelab.runs.Run.usage: {when: body}
        return [(str(when), body) for when, body in usage.items()]
    return [(str(e.get("when")), e.get("usage")) for e in getattr(run, "entries", None) or []
            if isinstance(e, Mapping) and e.get("record") == "usage"]


def _cell_unknowns(cell: Mapping[str, Any]) -> tuple[list[Unknown], bool]:
    """The cell's stored flags, or (for a record written before flags existed) the flags of its stored observation
    checked now against the current data files; the bool says which."""
    obs = cell.get("observation")
    if not isinstance(obs, Mapping):
        return [], True
    if isinstance(obs.get("unknown"), list):
        return [u for u in (Unknown.from_dict(x) for x in obs["unknown"]) if u], True
    observation = Observation.from_dict(obs)
    if observation.endpoint is None:
        spec = s if isinstance(s := cell.get("spec"), Mapping) else {}
        observation.endpoint = spec.get("path") if isinstance(spec.get("path"), str) else None
    return scan(observation), False


def _as_runs(runs: Any) -> list[Any]:
    return [runs] if hasattr(runs, "cells") else list(runs)


def new_to_kit(runs: Any) -> pd.DataFrame:
    """What the runs' responses carried that the kit has never seen: one row per distinct item.

    ``runs`` is one loaded run or several (``lanelab.runs.load_run``, ``load_runs``). Columns: ``kind`` (claim, unified_header, unified_value, error_code, error_type, message, usage_field),
    ``name`` (where: the header name, ``error.message``, a JSON path), ``value`` (verbatim), ``count`` (observations
    carrying it), ``cells`` (the cell ids, in run order; a usage snapshot is ``usage:before``/``usage:after``), ``runs``
    (the run ids) and ``recorded`` (True when every flag was stored at send time; False when some was checked now
    against the current data files: records that predate the flags, and usage snapshots). Empty (with these columns)
    when nothing is new.

    """
    found: dict[Unknown, dict[str, Any]] = {}

    def add(items: Iterable[Unknown], run_id: str, cell_id: str, recorded: bool) -> None:
        for u in dict.fromkeys(items):
            row = found.setdefault(u, {"count": 0, "cells": [], "runs": [], "recorded": True})
            row["count"] += 1
            if cell_id not in row["cells"]:
                row["cells"].append(cell_id)
            if run_id not in row["runs"]:
                row["runs"].append(run_id)
            row["recorded"] = row["recorded"] and recorded

    for run in _as_runs(runs):
        run_id = str(getattr(run, "run_id", "") or "")
        for cell in _cells(run):
            items, recorded = _cell_unknowns(cell)
            add(items, run_id, str(cell.get("cell_id") or "?"), recorded)
        for when, body in _usage_bodies(run):
            add(read_usage(body).unknown, run_id, f"usage:{when}", False)
    order = {k: i for i, k in enumerate(KINDS)}
    rows = [{"kind": u.kind, "name": u.name, "value": u.value, **meta} for u, meta in found.items()]
    rows.sort(key=lambda r: (order.get(r["kind"], len(order)), r["name"], r["value"]))
    return pd.DataFrame(rows, columns=list(COLUMNS))
