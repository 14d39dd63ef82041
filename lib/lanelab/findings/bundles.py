"""Findings bundles: one redacted JSON file per run that people can attach to an issue, and the side-by-side
comparison of several bundles from different people (is the verdict the same across accounts, plans and dates?).

A bundle holds the same content as the report's data for one matrix run: the opening answer (:class:`Verdict`), the
verdict per request shape (what each variant changed, its status, outcome and lane), the three answers and what is new
to this kit; plus the kit version, mode, simulator policy or live host, plan type and date. It holds **no account
identifier**: no email, uuid, organisation, request id, token, IP address or home path. Every text is redacted and
scrubbed of identifiers when the bundle is made; the serialized file is scanned again before it is written
(:func:`write_bundle`) and when it is loaded (:func:`load_bundle`), and a bundle that still holds a secret or an
identifier is refused with a message naming what was found (never the value).

The format (``schema = "lanelab-findings-bundle/1"``) is a fixed set of keys; a file with other keys is refused.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lanelab import __version__, redact
from lanelab.errors import InputError, NotFound, Refused
from lanelab.findings import frame as an
from lanelab.findings.render import safe_stem, slug
from lanelab.findings.verdict import Verdict

if TYPE_CHECKING:
    from lanelab.findings.report import Findings

__all__ = ["SCHEMA", "Bundle", "BundleComparison", "BundleRefused", "compare_bundles", "find_identifiers",
           "load_bundle", "load_bundles", "make_bundle", "scrub", "shape_verdict", "shipped_bundles", "write_bundle",
           "write_bundles"]

SCHEMA = "lanelab-findings-bundle/1"
#: Largest bundle file read (bytes); a real one is a few tens of kilobytes.
MAX_BYTES = 2_000_000
#: Request shapes shown as columns of the one-row-per-bundle table (the rest are in the agreement table).
SHOWN_SHAPES = 8
UNKNOWN = "unknown"

#: What counts as an account identifier, by kind. Loopback addresses and version numbers are not identifiers.
IDENTIFIERS: dict[str, re.Pattern[str]] = {
    "an email address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "a uuid": re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    "a request id": re.compile(r"\breq_[A-Za-z0-9]{8,}"),
    "a message id": re.compile(r"\b(?:msg|toolu)_[A-Za-z0-9]{8,}"),
    "an organisation or account id": re.compile(r"\b(?:org|user|acct|account)[-_][A-Za-z0-9]{8,}\b"),
    "an IP address": re.compile(r"\b(?!127\.)(?:\d{1,3}\.){3}\d{1,3}\b"),
    "a home directory": re.compile(r"(?:/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)[^/\\\s\"']+"),
    # an opaque credential in words someone typed (a note, a plan): a long run of token characters mixing upper and
    # lower case and digits, or the prefix of another service's key (an Anthropic token is a secret, see redact)
    "a token-like string": re.compile(
        r"(?<![A-Za-z0-9_-])(?:(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}"
        r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-(?!ant-)[A-Za-z0-9_-]{20,}"
        r"|xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})(?![A-Za-z0-9_-])"),
}
_PLACEHOLDER = {"an email address": "[email]", "a uuid": "[uuid]", "a request id": "[request id]",
                "a message id": "[message id]", "an organisation or account id": "[account id]",
                "an IP address": "[IP address]", "a home directory": "[home]",
                "a token-like string": "[token-like string]"}

#: The keys of a bundle and of its parts (anything else is refused when loading).
_TOP = {"schema": str, "example": bool, "note": str, "kit_version": str, "mode": str, "policy_or_host": str,
        "plan": str, "date": str, "profile": str, "design": str, "verdict": dict, "shapes": list, "answers": list,
        "new_to_this_kit": list}
_VERDICT = {"sentence": str, "evidence": str, "remedy": str, "element": (str, type(None)),
            "before": (str, type(None)), "after": (str, type(None)), "cells": list, "requests": int, "source": str,
            "conclusive": bool}
_SHAPE = {"shape": str, "status": (int, type(None)), "outcome": str, "lane": str, "verdict": str, "message": str}
_ANSWER = {"question": str, "verdict": str, "explanation": str}
_DRIFT = {"element": str, "note": str}


class BundleRefused(Refused):
    """A bundle holds a secret or an account identifier, so the kit will not write or read it."""


def find_identifiers(text: str) -> list[str]:
    """The kinds of account identifier found in ``text`` (never the values).

    Returns:
        Kind names ("an email address", "a uuid", …), each once, in :data:`IDENTIFIERS` order.
    """
    return [kind for kind, pattern in IDENTIFIERS.items() if pattern.search(text)]


def scrub(text: Any) -> str:
    """``text`` redacted, with every account identifier replaced by a placeholder ("[email]", "[uuid]", …)."""
    out = redact.redact_text("" if text is None else str(text))
    for kind, pattern in IDENTIFIERS.items():
        out = pattern.sub(_PLACEHOLDER[kind], out)
    return out


def _check(text: str, where: str, extra: Iterable[str] = ()) -> None:
    found = find_identifiers(text)
    secrets = redact.find_secrets(text, extra=extra)
    if secrets:
        found.append(f"{len(secrets)} secret{'s' if len(secrets) != 1 else ''}")
    if found:
        raise BundleRefused(f"{where} holds {', '.join(found)}, so it is refused.",
                            "A findings bundle must hold no account identifier or secret; make it again with "
                            "'lanelab report --bundle' (which removes them), or remove them by hand.")


def shape_verdict(outcome: Any, lane: Any, status: Any) -> str:
    """A request shape's verdict in a word or three: "plan", "extra usage", or the outcome in words."""
    if an.on_plan(outcome, lane, status):
        return "plan"
    if str(lane) == "extra_usage":
        return "extra usage (served)" if str(outcome) == "served_extra" else "extra usage"
    return an.outcome_label(outcome)


@dataclass
class Bundle:
    """One findings bundle: its data (the JSON object) and the file it was read from (None when made here)."""

    data: dict[str, Any]
    path: Path | None = None
    #: how the label names the file when its name alone is not enough (several bundles called findings.bundle.json)
    shown_as: str | None = None

    @property
    def label(self) -> str:
        """Who and what, in one line: date, mode and policy or host, plan (and the note of a hand-made example)."""
        d = self.data
        name = f" [{self.shown_as or self.path.name}]" if self.path else ""
        example = " (hand-made example)" if d.get("example") else ""
        return f"{d['date']} · {d['mode']} {d['policy_or_host']} · plan {d['plan']}{example}{name}"

    @property
    def verdict(self) -> Verdict:
        """The bundle's opening answer."""
        return Verdict.from_obj(self.data["verdict"], source=self.data["verdict"].get("source") or "analysis")

    def shapes(self) -> dict[str, str]:
        """Request shape → its verdict ("plan", "extra usage", …), in the bundle's order."""
        return {s["shape"]: s["verdict"] for s in self.data["shapes"]}

    def to_json(self) -> str:
        """The bundle as JSON text (stable key order, two-space indent)."""
        return json.dumps(self.data, ensure_ascii=False, indent=2) + "\n"

    def _repr_markdown_(self) -> str:
        from lanelab.findings.render import md_escape

        return f"**{md_escape(self.label)}**\n\n{self.verdict._repr_markdown_()}"

    def __repr__(self) -> str:
        return f"<Bundle {self.label}>"


def make_bundle(findings: Findings, run_id: str | None = None, plan: str | None = None, note: str = "",
                example: bool = False) -> Bundle:
    """A bundle of one matrix run of ``findings``.

    ``plan`` is the plan type (e.g. "max", "pro"); by default the run header's ``plan`` if it recorded one, else
    "unknown" (never guessed). ``note`` is free text shown with the bundle; ``example`` marks a hand-made bundle.

    Returns:
        The :class:`Bundle`, redacted and scrubbed of identifiers.

    Raises:
        NotFound: ``run_id`` is not a matrix run of ``findings``.
        InputError: ``run_id`` is None while the findings hold several matrix runs, or none.
        BundleRefused: an identifier or secret survives scrubbing (nothing is returned).
    """
    runs = findings.matrix_runs
    if run_id is None:
        if len(runs) != 1:
            raise InputError(f"These findings hold {len(runs)} matrix runs; a bundle describes one.",
                             "Name it: " + (", ".join(r.run_id for r in runs) or "(none: send a matrix first)") + ".")
        run = runs[0]
    else:
        named = next((r for r in runs if r.run_id == run_id), None)
        if named is None:
            raise NotFound(f"No matrix run {run_id!r} in these findings.",
                           f"Choose among: {', '.join(r.run_id for r in runs) or '(none)'}.")
        run = named
    one = findings.of_run(run)
    h = run.header
    df = one.df
    fs = an.factors_of(df)
    shapes = [{"shape": an.change_label(r, fs),
               "status": None if pd.isna(r["status"]) else int(r["status"]),
               "outcome": str(r["outcome"]), "lane": str(r["lane"]),
               "verdict": shape_verdict(r["outcome"], r["lane"], r["status"]),
               "message": scrub(r["error_message"] if isinstance(r["error_message"], str) else "")}
              for r in an.records(df)]
    verdict = one.verdict.to_dict()
    for spent in ("tokens", "remedies"):  # a diagnosis' own accounting; the bundle format has the remedy line
        verdict.pop(spent, None)
    verdict = {k: (scrub(v) if isinstance(v, str) else v) for k, v in verdict.items()}
    verdict["cells"] = [scrub(c) for c in verdict["cells"]]
    live = h.get("mode") == "live"
    data = {
        "schema": SCHEMA, "example": bool(example), "note": scrub(note),
        "kit_version": scrub(h.get("kit_version") or __version__), "mode": scrub(h.get("mode") or UNKNOWN),
        "policy_or_host": scrub((h.get("host") if live else h.get("policy")) or UNKNOWN),
        "plan": scrub(plan or h.get("plan") or UNKNOWN), "date": scrub(str(h.get("started_at") or "")[:10] or UNKNOWN),
        "profile": scrub(h.get("profile") or UNKNOWN), "design": scrub(h.get("design") or UNKNOWN),
        "verdict": verdict, "shapes": shapes,
        "answers": [{"question": scrub(a.question), "verdict": scrub(a.headline), "explanation": scrub(a.explanation)}
                    for a in one.answers],
        "new_to_this_kit": [{"element": scrub(d.get("element", "")), "note": scrub(d.get("note", ""))}
                            for d in one.drift],
    }
    bundle = Bundle(data)
    _validate(data, "the new bundle")
    _check(bundle.to_json(), "The new bundle")
    return bundle


def write_bundle(bundle: Bundle, path: str | Path, secrets: Iterable[str] = ()) -> Path:
    """Write ``bundle`` to ``path`` (atomically), after scanning it once more for identifiers and secrets
    (``secrets`` adds values to look for, e.g. the tokens in the kit's credential store).

    Returns:
        The path written.

    Raises:
        BundleRefused: the bundle holds an identifier or a secret (nothing is written).
        OSError: the file cannot be written.
    """
    path = Path(path)
    text = bundle.to_json()
    _check(text, f"Bundle {path.name}", extra=[s for s in secrets if s])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    bundle.path = path
    return path


def write_bundles(findings: Findings, out_dir: str | Path, stem: str = "findings", plan: str | None = None,
                  secrets: Iterable[str] = ()) -> list[Path]:
    """One bundle per matrix run of ``findings``: ``<out_dir>/<stem>.bundle.json`` for one run,
    ``<stem>-<run>.bundle.json`` for several. Every bundle is made and checked before any is written.

    Returns:
        The paths written.

    Raises:
        InputError: there is no matrix run with cells, or ``stem`` is not a plain file name.
        BundleRefused: a bundle holds an identifier or a secret (nothing is written).
        OSError: a file cannot be written.
    """
    stem = safe_stem(stem)
    runs = findings.matrix_runs
    if not runs or findings.df.empty:
        raise InputError("There is no matrix run to bundle.", "A bundle describes a matrix run; send one first.")
    secrets = [s for s in secrets if s]
    made = [(r, make_bundle(findings, run_id=r.run_id, plan=plan)) for r in runs]
    for r, b in made:
        _check(b.to_json(), f"Bundle of {r.run_id}", extra=secrets)
    paths = []
    for r, b in made:
        name = f"{stem}.bundle.json" if len(made) == 1 else f"{stem}-{slug(r.run_id)}.bundle.json"
        paths.append(write_bundle(b, Path(out_dir) / name, secrets=secrets))
    return paths


def shipped_bundles() -> list[Path]:
    """The example bundles shipped with the kit (data/bundles/*.json), sorted by name."""
    from lanelab.config import data_dir

    return sorted((data_dir() / "bundles").glob("*.json"))


def _types(d: Mapping[str, Any], spec: Mapping[str, Any], where: str) -> None:
    extra = sorted(set(d) - set(spec))
    missing = sorted(set(spec) - set(d))
    if extra or missing:
        parts = ([f"unexpected key(s) {', '.join(extra)}"] if extra else []) + \
                ([f"missing key(s) {', '.join(missing)}"] if missing else [])
        raise InputError(f"{where} is not a lanelab findings bundle: {'; '.join(parts)}.")
    for k, t in spec.items():
        v = d[k]
        if not isinstance(v, t) or (t is int and isinstance(v, bool)):
            raise InputError(f"{where}: {k!r} has the wrong type ({type(v).__name__}).")


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _validate(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise InputError(f"{where} is not a lanelab findings bundle (not a JSON object).")
    schema = data.get("schema")
    if schema != SCHEMA:
        family, _, version = str(schema).partition("/")
        if family == SCHEMA.partition("/")[0] and version.isdigit() and int(version) > int(SCHEMA.partition("/")[2]):
            raise InputError(f"{where} was made by a newer lanelab (schema {schema!r}); this kit reads {SCHEMA!r}.",
                             "Update lanelab to read it, or ask for a bundle made with this version.")
        raise InputError(f"{where} is not a lanelab findings bundle (schema {str(schema)[:40]!r}).",
                         f"Bundles say schema {SCHEMA!r}; 'lanelab report --bundle' writes them.")
    _types(data, _TOP, where)
    _types(data["verdict"], _VERDICT, f"{where} (verdict)")
    for i, s in enumerate(data["shapes"]):
        _types(s if isinstance(s, dict) else {}, _SHAPE, f"{where} (shape {i})")
    for i, a in enumerate(data["answers"]):
        _types(a if isinstance(a, dict) else {}, _ANSWER, f"{where} (answer {i})")
    for i, x in enumerate(data["new_to_this_kit"]):
        _types(x if isinstance(x, dict) else {}, _DRIFT, f"{where} (new to this kit, {i})")
    if not data["verdict"]["sentence"].strip():
        raise InputError(f"{where}: the verdict has no sentence.")
    _ranges(data, where)


def _ranges(data: dict[str, Any], where: str) -> None:
    """Values no run can give (a bundle edited by hand): one line naming the first."""
    problems = []
    if data["date"] != UNKNOWN and not _DATE.match(data["date"]):
        problems.append(f"date {data['date'][:20]!r} is not YYYY-MM-DD")
    if data["verdict"]["requests"] < 0:
        problems.append(f"the verdict rests on {data['verdict']['requests']} requests")
    if not data["shapes"]:
        problems.append("it holds no request shape")
    names = [s["shape"] for s in data["shapes"]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"shape {twice[0][:60]!r} is listed {names.count(twice[0])} times")
    bad = next((s for s in data["shapes"] if s["status"] is not None and not 100 <= s["status"] <= 599), None)
    if bad is not None:
        problems.append(f"shape {bad['shape'][:60]!r} has HTTP status {bad['status']}")
    if problems:
        raise InputError(f"{where} holds what no run gives: {problems[0]}"
                         + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "") + ".",
                         "Make the bundle again with 'lanelab report --bundle' rather than editing its numbers.")


def load_bundle(path: str | Path) -> Bundle:
    """Read one bundle: its format checked, then scanned for identifiers and secrets.

    Returns:
        The :class:`Bundle`.

    Raises:
        NotFound: there is no file at ``path``.
        InputError: the file is not a readable findings bundle (not JSON, wrong schema, keys or types, too large).
        BundleRefused: the bundle holds an account identifier or a secret.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a findings bundle.",
                         f"Pass the bundle files in it (e.g. {path}/*.json).")
    if not path.is_file():
        raise NotFound(f"No findings bundle at {path}.", "Bundles are JSON files written by 'lanelab report --bundle'.")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{path} is larger than a findings bundle can be ({MAX_BYTES:,} bytes).")
        text = path.read_bytes().decode("utf-8-sig")  # (an editor's byte-order mark is no reason to refuse it)
    except OSError as exc:
        raise InputError(f"Cannot read the findings bundle {path} ({exc.strerror or type(exc).__name__}).") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text, so not a findings bundle.") from None
    if not text.strip():
        raise InputError(f"{path} is empty, so not a findings bundle.",
                         "Bundles are JSON files written by 'lanelab report --bundle'.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError(f"{path} is JSON nested too deeply to be a findings bundle.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}), so not a "
                         "readable findings bundle.", "A hand edit may have broken it; compare it with the "
                         "bundle as 'lanelab report --bundle' wrote it.") from None
    _validate(data, str(path))
    _check(text, f"Bundle {path}")
    return Bundle(data, path)


def load_bundles(paths: Iterable[str | Path]) -> list[Bundle]:
    """Read several bundles (e.g. everything under data/bundles/), in the order given.

    Returns:
        One :class:`Bundle` per path.

    Raises:
        NotFound, InputError, BundleRefused: as :func:`load_bundle`, for the first path that fails.
        InputError: two paths hold the very same bundle (one person's findings would count twice).
    """
    loaded: list[Bundle] = []
    seen: dict[str, Path | None] = {}
    for p in paths:
        bundle = load_bundle(p)
        key = json.dumps(bundle.data, sort_keys=True)
        if key in seen:
            raise InputError(f"{Path(p)} holds the very same bundle as {seen[key]}, so one person's findings would "
                             "count twice.", "Pass each bundle once.")
        seen[key] = Path(p)
        loaded.append(bundle)
    names = [b.path.name for b in loaded if b.path is not None]
    for b in loaded:  # files of the same name (each findings.bundle.json): named with their folder
        if b.path is not None and names.count(b.path.name) > 1:
            b.shown_as = f"{b.path.parent.name}/{b.path.name}"
    return loaded


@dataclass
class BundleComparison:
    """Several bundles side by side (see :func:`compare_bundles`); displays itself in a notebook."""

    bundles: list[Bundle]

    def _all_shapes(self) -> list[str]:
        return list(dict.fromkeys(s for b in self.bundles for s in b.shapes()))

    def agreement(self) -> pd.DataFrame:
        """One row per request shape: whether every bundle that has it ends the same, and the verdicts seen.

        Returns:
            A DataFrame with shape, bundles (how many have it), agree ("yes", "no", or "only one" when a single
            bundle has it) and verdicts ("plan in 2; extra usage in 1"); shapes where they differ first.
        """
        rows = []
        for shape in self._all_shapes():
            seen = [b.shapes()[shape] for b in self.bundles if shape in b.shapes()]
            counts = pd.Series(seen).value_counts()
            agree = "only one" if len(seen) == 1 else "yes" if len(counts) == 1 else "no"
            rows.append({"shape": shape, "bundles": len(seen), "agree": agree,
                         "verdicts": "; ".join(f"{v} in {n}" for v, n in counts.items())})
        out = pd.DataFrame(rows, columns=["shape", "bundles", "agree", "verdicts"])
        order = {"no": 0, "yes": 1, "only one": 2}
        return out.sort_values("agree", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    def differing(self) -> list[str]:
        """The request shapes on which the bundles that have them disagree."""
        a = self.agreement()
        return list(a.loc[a["agree"] == "no", "shape"])

    def _shown_shapes(self) -> list[str]:
        shapes = self._all_shapes()
        keep = [an.AS_SENT] if an.AS_SENT in shapes else []
        keep += [s for s in self.differing() if s not in keep]
        keep += [s for s in shapes if s not in keep and any(b.shapes().get(s) == "plan" for b in self.bundles)]
        return keep[:SHOWN_SHAPES]

    def to_frame(self) -> pd.DataFrame:
        """One row per bundle: who and what (date, mode, policy or host, plan), then the verdict of the request as
        sent, of each shape on which the bundles differ, and of the shapes any bundle got billed to the plan (at
        most :data:`SHOWN_SHAPES` shape columns; every shape is in :meth:`agreement`)."""
        shapes = self._shown_shapes()
        rows = []
        for b in self.bundles:
            mine = b.shapes()
            rows.append({"bundle": b.label, **{s: mine.get(s, "—") for s in shapes}})
        return pd.DataFrame(rows, columns=["bundle", *shapes])

    def verdicts(self) -> pd.DataFrame:
        """One row per bundle with its opening answer.

        Returns:
            A DataFrame with bundle, kit, profile, note and answer (the verdict sentence).
        """
        return pd.DataFrame([{"bundle": b.label, "kit": b.data["kit_version"], "profile": b.data["profile"],
                              "note": b.data["note"], "answer": b.data["verdict"]["sentence"]}
                             for b in self.bundles], columns=["bundle", "kit", "profile", "note", "answer"])

    def summary(self) -> str:
        """One or two sentences: how many bundles, on how many shapes they agree, where they differ."""
        a = self.agreement()
        shared = a[a["agree"] != "only one"]
        diff = list(shared.loc[shared["agree"] == "no", "shape"])
        n = len(self.bundles)
        if n < 2:
            return f"{n} bundle: nothing to compare it with yet."
        head = (f"{n} bundles; of the {len(shared)} request shapes that more than one of them tried, they agree on "
                f"{len(shared) - len(diff)}")
        if not diff:
            return head + " and differ on none."
        shown = ", ".join(diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
        return f"{head} and differ on {len(diff)}: {shown}.{self._conditions()}"

    def _conditions(self) -> str:
        """When the bundles were made under different policies, hosts or plans: that a difference may follow them."""
        where = sorted({b.data["policy_or_host"] for b in self.bundles})
        plans = sorted({b.data["plan"] for b in self.bundles})
        if len(where) < 2 and len(plans) < 2:
            return ""
        apart = [f"{len(where)} policies or hosts" if len(where) > 1 else "",
                 f"{len(plans)} plans" if len(plans) > 1 else ""]  # (which ones: the table's bundle column)
        return (f" They were made under {' and '.join(a for a in apart if a)}: a difference may follow those, not the "
                "people; compare bundles of the same policy and plan.")

    def __repr__(self) -> str:
        return f"<BundleComparison: {self.summary()}>"

    def _repr_html_(self) -> str:
        from lanelab.findings.render import Table, html_table

        parts = [f"<p>{html.escape(self.summary())}</p>", html_table(Table.from_frame(self.verdicts())),
                 html_table(Table.from_frame(self.to_frame())),
                 "<details><summary>Where they agree and where they differ</summary>",
                 html_table(Table.from_frame(self.agreement())), "</details>"]
        return redact.redact_text("".join(str(p) for p in parts))


def compare_bundles(bundles: Sequence[Bundle]) -> BundleComparison:
    """Several bundles side by side: one row per bundle, the verdict per request shape, where they agree and differ.

    Returns:
        The :class:`BundleComparison` (``to_frame()``, ``agreement()``, ``verdicts()``, ``summary()``).
    """
    return BundleComparison(list(bundles))
