"""The three questions of the seed report (hermes-agent #32243), answered from a run's data with the cells that support
each answer, or with the run that would answer it when the data cannot.

1. Does the client call the API differently from a request that is billed to the plan (endpoint path, beta header,
   client identifier)?  Read from pairs of cells whose only difference on the wire is one of those.
2. Does the credential's source matter?  Read from identical requests sent with different credential labels.
3. Is the traffic billed against the plan or the extra-usage pool?  Read from the lanes of served cells and from what
   the refusals say.

Remedies named here are only those that exist (DESIGN.md, responsible use), read from data/remedies.toml: fix a
malformed request, enable extra usage, use an API key (with the API credits some plans include), or use Anthropic's own
clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lanelab.findings import frame as an
from lanelab.findings import remedies

__all__ = ["CANNOT_TELL", "Answer", "Answers", "answer_all", "billing_lane", "credential_source", "diagnosis",
           "request_shape"]

CANNOT_TELL = "cannot tell"

#: Outcome ids (docs/contracts.md §3) that mean "the extra-usage pool was consulted and said no".
EXTRA_USAGE_REFUSALS = frozenset({"extra_usage_exhausted", "third_party_extra_usage", "monthly_spend_limit"})
#: Served outcome ids and the lane each implies.
SERVED_LANES = {"served_plan": "plan", "served_extra": "extra_usage", "served_api": "api"}
REQUEST_ASPECTS = (an.ASPECT_ENDPOINT, an.ASPECT_BETA, an.ASPECT_CLIENT)
#: How many supporting cell ids an answer lists in prose (the full list stays in ``cells``).
SHOWN_CELLS = 6


@dataclass
class Answer:
    """A verdict, a plain explanation, the supporting cell ids, and the run that would settle it when unsure."""

    key: str
    question: str
    verdict: str
    explanation: str
    cells: list[str] = field(default_factory=list)
    next_run: str | None = None

    @property
    def answered(self) -> bool:
        return self.verdict != CANNOT_TELL

    @property
    def headline(self) -> str:
        """The verdict in one line; when unsure, with the run that would answer it."""
        if not self.answered and self.next_run:
            return f"{CANNOT_TELL}; this run would answer it: {self.next_run}"
        return self.verdict


class Answers(list[Answer]):
    """The answers of a run, in the seed report's order; a notebook shows them as a table."""

    def to_frame(self, shown: int = SHOWN_CELLS) -> pd.DataFrame:
        """The answers as a table.

        Returns:
            A DataFrame with question, verdict, explanation, cells (the first ``shown`` supporting cell ids and how
            many more) and next run (the run that would settle an open question).
        """
        return pd.DataFrame([{
            "question": a.question, "verdict": a.verdict, "explanation": a.explanation,
            "cells": ", ".join(a.cells[:shown]) + (f" (+{len(a.cells) - shown} more)" if len(a.cells) > shown else ""),
            "next run": a.next_run or "",
        } for a in self], columns=["question", "verdict", "explanation", "cells", "next run"])

    def __repr__(self) -> str:
        return "Answers(" + "; ".join(f"{a.key}: {a.verdict.split(':')[0]}" for a in self) + ")"

    def _repr_html_(self) -> str:
        """The answers in full (a pandas table would cut long text off with "…")."""
        from lanelab.findings.render import Table, html_table

        shown = max((len(a.cells) for a in self), default=SHOWN_CELLS)
        return str(html_table(Table.from_frame(self.to_frame(shown=shown))))


def _aspects(s: str) -> set[str]:
    return {a.strip() for a in s.split(",") if a.strip()}


def _cells(pairs: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(c for ab in zip(pairs["cell_a"], pairs["cell_b"]) for c in ab))


def _pair_text(p: pd.Series) -> str:
    return (f"{p['factor']}={p['level_a']} gives {_said(p['status_a'], p['outcome_a'])} (cell {p['cell_a']}) while "
            f"{p['factor']}={p['level_b']} gives {_said(p['status_b'], p['outcome_b'])} (cell {p['cell_b']})")


def _said(status: object, outcome: object) -> str:
    """A status and outcome in words ("400 out of extra usage", "200 · Served, billed to the plan")."""
    return an.status_and_outcome(status, outcome)


def _transitions(pairs: pd.DataFrame, limit: int = 3) -> str:
    """The outcome changes of flipping pairs in words: "400 out of extra usage → 401 OAuth not supported"; …"""
    seen = sorted({f"{an.outcome_label(a)} → {an.outcome_label(b)}"
                   for a, b in zip(pairs["outcome_a"], pairs["outcome_b"])})
    return "; ".join(seen[:limit]) + (f"; and {len(seen) - limit} more" if len(seen) > limit else "")


def request_shape(df: pd.DataFrame, pairs: pd.DataFrame | None = None) -> Answer:
    """Question 1: does changing only the endpoint path, the beta header or the client identifier flip the outcome?

    Returns:
        An :class:`Answer` (verdict "cannot tell" with the run that would settle it when the data cannot).
    """
    q = ("Does the client call the API differently from a request billed to the plan "
         "(endpoint path, beta header, client identifier)?")
    pairs = an.minimal_pairs(df) if pairs is None else pairs
    rel = pairs[[bool(_aspects(a) & set(REQUEST_ASPECTS)) and an.ASPECT_CREDENTIAL not in _aspects(a)
                 for a in pairs["aspects"]]] if len(pairs) else pairs
    tested = sorted({x for a in rel["aspects"] for x in _aspects(a) & set(REQUEST_ASPECTS)}) if len(rel) else []
    untested = [a for a in REQUEST_ASPECTS if a not in tested]
    more = (f"vary {', '.join(untested)} one at a time from the same baseline (a one-factor-at-a-time design)"
            if untested else None)
    if rel.empty:
        return Answer("request_shape", q, CANNOT_TELL,
                      "No two cells in this run differ only in the endpoint path, the anthropic-beta header or the "
                      "client identifier (user-agent, x-app), so the run cannot isolate their effect.",
                      [], more)
    flips = rel[rel["lane_flips"]]
    if not flips.empty:
        which = sorted({x for a in flips["aspects"] for x in _aspects(a) & set(REQUEST_ASPECTS)})
        example = _pair_text(flips.iloc[0])
        return Answer("request_shape", q, f"yes: changing only the {' or the '.join(which)} moves the request "
                      "onto or off the plan",
                      f"{len(flips)} of {len(rel)} pairs of requests that differ only in the {' or the '.join(tested)} "
                      f"land in a different billing lane; for example {example}. So how the request is shaped on the "
                      "wire, not only who sends it, decides the verdict here."
                      + (f" Not yet tested: {', '.join(untested)}." if untested else ""),
                      _cells(flips), more)
    other = rel[rel["flips"]]
    errors = (f" They do change which error comes back ({_transitions(other)}), "
              "but never move a request onto the plan." if len(other) else "")
    return Answer("request_shape", q, f"no: changing only the {' or the '.join(tested)} does not move the request "
                  "onto the plan",
                  f"None of the {len(rel)} pairs of requests that differ only in the {' or the '.join(tested)} changes the "
                  f"billing lane, so these request details are not what separates this traffic from plan-billed "
                  f"traffic here; the chart of what moves the request between lanes shows what does.{errors}"
                  + (f" Not yet tested: {', '.join(untested)}." if untested else ""),
                  _cells(rel), more)


def credential_source(df: pd.DataFrame, pairs: pd.DataFrame | None = None) -> Answer:
    """Question 2: do identical requests with different credentials (labels/sources) end differently?

    Returns:
        An :class:`Answer` (verdict "cannot tell" with the run that would settle it when the data cannot).
    """
    q = "Does the credential's source matter (identical requests, different credentials)?"
    pairs = an.minimal_pairs(df) if pairs is None else pairs
    rel = pairs[[f == "credential" or _aspects(a) == {an.ASPECT_CREDENTIAL}
                 for f, a in zip(pairs["factor"], pairs["aspects"])]] if len(pairs) else pairs
    if rel.empty:
        return Answer("credential_source", q, CANNOT_TELL,
                      "Every request in this run used the same credential, so the run cannot tell whether the "
                      "credential's source (a fresh PKCE login, an imported Claude Code credential, a setup-token) "
                      "matters.", [],
                      "add factor credential with two labels (e.g. the kit's own PKCE login and an imported "
                      "credential) and send the same requests with each")
    flips = rel[rel["flips"]]
    if not flips.empty:
        return Answer("credential_source", q, "yes: the same request ends differently with another credential",
                      f"{len(flips)} of {len(rel)} pairs of identical requests end differently depending only on the "
                      f"credential; for example {_pair_text(flips.iloc[0])}. Check each credential's scopes, plan and "
                      "extra-usage settings before blaming the client.", _cells(flips))
    labels = sorted({str(x) for x in rel["level_a"]} | {str(x) for x in rel["level_b"]})
    return Answer("credential_source", q, "no: identical requests end the same with every credential tried",
                  f"All {len(rel)} pairs of identical requests sent with different credentials ({', '.join(labels)}) "
                  "end with the same outcome, so where the credential came from does not decide the lane here; the "
                  "request itself does.", _cells(rel))


def _pct(x: float | None) -> str:
    return "unknown" if x is None or pd.isna(x) else f"{x:.0%}"


def billing_lane(df: pd.DataFrame) -> Answer:
    """Question 3: is the traffic billed against the plan or the extra-usage pool?

    Returns:
        An :class:`Answer` (verdict "cannot tell" with the run that would settle it when the data cannot).
    """
    q = "Is the traffic billed against the plan or the extra-usage pool?"
    outcome = df["outcome"].astype(str)
    served = df[outcome.isin(list(SERVED_LANES)) | df["status"].between(200, 299).fillna(False).astype(bool)]
    lanes = [SERVED_LANES.get(str(o)) or (l if l in ("plan", "extra_usage", "api") else ul)
             for o, l, ul in zip(served["outcome"].astype(str), served["lane"], served["unified_lane"])]
    served = served.assign(paid_by=lanes)
    plan, extra = served[served["paid_by"] == "plan"], served[served["paid_by"] == "extra_usage"]
    is_served = df.index.isin(served.index)
    refused = df[~is_served & (outcome.isin(list(EXTRA_USAGE_REFUSALS)) | (df["lane"] == "extra_usage"))]
    u5, u7 = df["util_5h"].max(), df["util_7d"].max()
    headroom = f"The plan windows stood at {_pct(u5)} (5-hour) and {_pct(u7)} (7-day) used at most."
    reasons = sorted({str(r) for r in refused["overage_disabled_reason"].dropna()})
    why = f" The server gave the extra-usage pool's state as: {', '.join(reasons)}." if reasons else ""
    refusal_text = ""
    if not refused.empty:
        msgs = sorted({str(m) for m in refused["error_message"].dropna()})[:2]
        refusal_text = (f" {len(refused)} requests were refused by the extra-usage pool"
                        f" ({'; '.join(repr(m) for m in msgs)}): the 400 means the request was routed to extra usage "
                        "and that pool is empty or not enabled, not that the plan is used up.")
    remedy = f" Remedies that exist (data/remedies.toml): {remedies.sentence()}."
    cells = list(dict.fromkeys([*extra["cell_id"], *refused["cell_id"], *plan["cell_id"]]))
    if plan.empty and extra.empty and refused.empty:
        return Answer("billing_lane", q, CANNOT_TELL,
                      "No request in this run was served with lane signals or refused by the extra-usage pool, so "
                      "nothing here says which pool pays.", [],
                      "send at least one request the server serves (a minimal request, e.g. the profile sdk-minimal) and the client's own "
                      "request, recording the anthropic-ratelimit-unified-* headers and the usage endpoint before and "
                      "after")
    if plan.empty:
        verdict = "extra-usage pool"
        body = (f"{len(extra)} served requests were billed to extra usage and none to the plan." if len(extra)
                else "No request was served on the plan.")
    elif extra.empty and refused.empty:
        verdict = "plan"
        body = f"All {len(plan)} served requests were billed to the plan (the unified headers name a plan window)."
    else:
        verdict = "both: it depends on the request"
        body = (f"{len(plan)} requests were billed to the plan while {len(extra) + len(refused)} went to the "
                "extra-usage pool, so the lane follows from what is sent, not from the account alone.")
    return Answer("billing_lane", q, verdict, f"{body}{refusal_text} {headroom}{why}{remedy}", cells)


def answer_all(df: pd.DataFrame) -> Answers:
    """The three questions of the seed report, answered from a tidy run table.

    Returns:
        :class:`Answers` (request shape, credential source, billing lane); ``.to_frame()`` gives the table.
    """
    pairs = an.minimal_pairs(df)
    return Answers([request_shape(df, pairs), credential_source(df, pairs), billing_lane(df)])


def diagnosis(df: pd.DataFrame, effects: pd.DataFrame | None = None) -> list[str]:
    """Plain sentences for a summary: whether the reported problem (HTTP 400 "out of extra usage" while the plan is
    barely used) appears in the run, and which single factor, if any, changes the outcome most often on its own.

    Returns:
        One to two sentences, in reading order (none for an empty table).
    """
    if df.empty:
        return []
    effects = an.factor_effects(df) if effects is None else effects
    outcome = df["outcome"].astype(str)
    refused = df[outcome.isin(list(EXTRA_USAGE_REFUSALS)) & ~df["status"].between(200, 299).fillna(False).astype(bool)]
    lines = []
    if not refused.empty:
        used = max(refused["util_5h"].max(skipna=True), refused["util_7d"].max(skipna=True))
        level = "unknown" if pd.isna(used) else f"at most {used:.0%}"
        said = _said(refused["status"].mode().iloc[0], refused["outcome"].astype(str).mode().iloc[0])
        lines.append(f"The reported problem appears: {len(refused)} of {len(df)} requests were refused by the "
                     f"extra-usage pool ({said}) while the plan windows were {level} used.")
    else:
        lines.append(f"The reported problem does not appear: none of the {len(df)} requests was refused by the "
                     "extra-usage pool.")
    lane = effects[effects["lane_flips"] > 0] if len(effects) else effects
    flipping = effects[effects["flips"] > 0] if len(effects) else effects
    if len(lane):
        top = lane.iloc[0]
        lines.append(f"Changing '{top['factor']}' on its own moves requests onto or off the plan most often "
                     f"({top['lane_flips']} of {top['pairs']} pairs of requests that differ in it alone).")
    elif len(flipping):
        top = flipping.iloc[0]
        lines.append(f"No single change moves a request onto the plan; changing '{top['factor']}' changes the "
                     f"outcome most often ({top['flips']} of {top['pairs']} pairs of requests that differ in it "
                     "alone).")
    elif len(effects):
        lines.append("No single change in this run alters the outcome on its own.")
    return lines
