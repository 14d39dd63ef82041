"""Designs: which combinations of factor levels a run sends, as a list of cells.

A cell is a profile plus one level per chosen factor, with a stable id (so a resumed run recognises cells it has
already sent, whatever process or dict order produced them). Four designs: an explicit list; one factor at a time from
a baseline (answers "which single change flips the verdict?"); the full factorial; and a pairwise covering design
(every pair of levels of every two factors in at least one cell, in far fewer cells than the full factorial).
:func:`describe` says what a design will cost before anything is sent: its inference requests and worst-case tokens
(:class:`lanelab.matrix.budget.Cost`). Building a cell's request refuses a reference-only profile
(:func:`lanelab.matrix.profiles.ensure_sendable`): the kit never sends a first-party client's request.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lanelab.errors import UserError
from lanelab.matrix.budget import CHARS_PER_TOKEN, Cost, estimate_tokens
from lanelab.matrix.factors import Factor, apply_levels, baseline_levels, context_for, resolve
from lanelab.matrix.profiles import Profile, ensure_sendable, minimal_spend
from lanelab.wire.spec import RequestSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DESIGNS", "SUMMARY_COLUMNS", "Cell", "DesignSummary", "build_spec", "cell_id_for", "describe",
           "design", "explicit", "full_factorial", "make_cell", "one_factor_at_a_time", "pairwise"]

#: The columns of :meth:`DesignSummary.to_frame`, one row per cell.
SUMMARY_COLUMNS = ("cell_id", "changes", "request", "input_tokens≈", "max_output")


def cell_id_for(profile: str, levels: Mapping[str, str]) -> str:
    """A stable 12-hex id of ``profile`` and its ``{factor: level}`` choices (independent of order and process)."""
    canonical = json.dumps([profile, sorted((str(k), str(v)) for k, v in levels.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Cell:
    """One request to send: a profile and its factor levels. Build with :func:`make_cell` so the id is right."""

    profile: str
    levels: dict[str, str]
    cell_id: str

    def label(self, catalog: Mapping[str, Factor] | None = None) -> str:
        """The non-baseline levels, e.g. ``tools=mcp__ user_agent=none`` (``baseline`` when there are none)."""
        diffs = [f"{k}={v}" for k, v in sorted(self.levels.items())
                 if catalog is None or k not in catalog or v != catalog[k].baseline]
        return " ".join(diffs) or "baseline"


def make_cell(profile: str, levels: Mapping[str, str]) -> Cell:
    levels = {str(k): str(v) for k, v in levels.items()}
    return Cell(profile=profile, levels=levels, cell_id=cell_id_for(profile, levels))


def _check(catalog: Mapping[str, Factor] | None, levels: Mapping[str, str]) -> None:
    if catalog is not None:
        for f, lv in levels.items():
            resolve(catalog, f, lv)


def _dedupe(cells: Iterable[Cell]) -> list[Cell]:
    seen: set[str] = set()
    out = []
    for c in cells:
        if c.cell_id not in seen:
            seen.add(c.cell_id)
            out.append(c)
    return out


def _level_lists(catalog: Mapping[str, Factor], factors: Sequence[str],
                 levels: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    if not factors:
        raise UserError("A design needs at least one factor.", hint=f"Choose from: {', '.join(catalog)}.")
    out: dict[str, list[str]] = {}
    for f in factors:
        chosen = list((levels or {}).get(f) or (catalog[f].levels if f in catalog else []))
        for lv in chosen:
            resolve(catalog, f, lv)
        if not chosen:
            resolve(catalog, f, "")  # raises: unknown factor
        out[f] = chosen
    return out


# ----------------------------------------------------------------------------------------------- designs


def explicit(profile: str, rows: Iterable[Mapping[str, str]],
             catalog: Mapping[str, Factor] | None = None) -> list[Cell]:
    """Exactly the given ``{factor: level}`` rows (duplicates dropped), checked against ``catalog`` when given."""
    cells = []
    for row in rows:
        _check(catalog, row)
        cells.append(make_cell(profile, row))
    return _dedupe(cells)


def one_factor_at_a_time(profile: str, catalog: Mapping[str, Factor], factors: Sequence[str],
                         baseline: Mapping[str, str] | None = None,
                         levels: Mapping[str, Sequence[str]] | None = None) -> list[Cell]:
    """The baseline cell, then one cell per other level of each factor with every other factor at baseline.

    ``baseline`` overrides the per-factor baselines from data (e.g. to start from a passing request).
    """
    lists = _level_lists(catalog, factors, levels)
    base = {**baseline_levels(catalog, factors), **{k: v for k, v in (baseline or {}).items() if k in lists}}
    _check(catalog, base)
    cells = [make_cell(profile, base)]
    for f in factors:
        for lv in lists[f]:
            if lv != base[f]:
                cells.append(make_cell(profile, {**base, f: lv}))
    return _dedupe(cells)


def full_factorial(profile: str, catalog: Mapping[str, Factor], factors: Sequence[str],
                   levels: Mapping[str, Sequence[str]] | None = None) -> list[Cell]:
    """Every combination of the chosen levels (all of each factor's levels unless ``levels`` narrows them)."""
    lists = _level_lists(catalog, factors, levels)
    names = list(lists)
    return [make_cell(profile, dict(zip(names, combo))) for combo in itertools.product(*lists.values())]


def pairwise(profile: str, catalog: Mapping[str, Factor], factors: Sequence[str],
             levels: Mapping[str, Sequence[str]] | None = None, seed: int = 0, candidates: int = 20) -> list[Cell]:
    """A pairwise covering design: every level pair of every two factors appears in at least one cell.

    Greedy, AETG-style: each new cell starts from a still-uncovered pair and fills the other factors one at a time with
    the level that covers most uncovered pairs; the best of ``candidates`` tries is kept. Deterministic for a seed.
    """
    lists = _level_lists(catalog, factors, levels)
    names = list(lists)
    rows = [[lv for lv in lists[n]] for n in names]
    k = len(names)
    if k == 1:
        return [make_cell(profile, {names[0]: lv}) for lv in rows[0]]
    uncovered = {(i, a, j, b) for i, j in itertools.combinations(range(k), 2)
                 for a in range(len(rows[i])) for b in range(len(rows[j]))}
    rng = random.Random(seed)
    chosen: list[list[int]] = []
    while uncovered:
        ordered = sorted(uncovered)
        best: list[int] | None = None
        best_gain = -1
        for attempt in range(candidates):
            i, a, j, b = ordered[0] if attempt == 0 else rng.choice(ordered)
            row: list[int | None] = [None] * k
            row[i], row[j] = a, b
            rest = [f for f in range(k) if row[f] is None]
            rng.shuffle(rest)
            for f in rest:
                scores = []
                for lv in range(len(rows[f])):
                    gain = sum(1 for g in range(k) if row[g] is not None
                               and ((min(f, g), lv if f < g else row[g], max(f, g), row[g] if f < g else lv)
                                    in uncovered))
                    scores.append(gain)
                top = max(scores)
                row[f] = rng.choice([lv for lv, s in enumerate(scores) if s == top])
            full = [int(v) for v in row if v is not None]
            gain = sum(1 for x, y in itertools.combinations(range(k), 2) if (x, full[x], y, full[y]) in uncovered)
            if gain > best_gain:
                best, best_gain = full, gain
        assert best is not None
        chosen.append(best)
        uncovered -= {(x, best[x], y, best[y]) for x, y in itertools.combinations(range(k), 2)}
    return _dedupe(make_cell(profile, {names[f]: rows[f][lv] for f, lv in enumerate(r)}) for r in chosen)


DESIGNS: dict[str, Callable[..., list[Cell]]] = {"explicit": explicit, "ofat": one_factor_at_a_time, "one_factor_at_a_time": one_factor_at_a_time,
           "full": full_factorial, "full_factorial": full_factorial, "pairwise": pairwise}


def design(name: str, profile: str, catalog: Mapping[str, Factor], factors: Sequence[str], **kwargs: Any) -> list[Cell]:
    """A design by name (``ofat``, ``full``, ``pairwise``), as the CLI and notebook pick it."""
    if name not in DESIGNS or name == "explicit":
        raise UserError(f"No design named {name!r}.",
                        hint="Use ofat, full or pairwise (or designs.explicit(...) from Python).")
    return DESIGNS[name](profile, catalog, factors, **kwargs)


# ----------------------------------------------------------------------------------------------- building and cost


def _profile(profiles: Mapping[str, Profile] | None, name: str) -> Profile:
    if profiles is not None and name in profiles:
        return ensure_sendable(profiles[name])
    return ensure_sendable(name)


def build_spec(cell: Cell, profiles: Mapping[str, Profile] | None, factors: Mapping[str, Factor]) -> RequestSpec:
    """The request a cell stands for: the profile's spec with the cell's levels applied in canonical order.

    Raises :class:`lanelab.matrix.profiles.ReferenceOnlyProfile` for a reference-only profile (never sent)."""
    profile = _profile(profiles, cell.profile)
    return apply_levels(profile.spec, cell.levels, factors, context_for(profile.spec))


@dataclass
class DesignSummary:
    """What a design will send and roughly what it costs (tokens are estimates: characters / 4, max_tokens)."""

    cells: int
    inference_requests: int
    input_tokens: int
    output_tokens: int
    minimal_spend: bool
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: worst-case tokens of the inference requests (input estimate + max_tokens of each)
    worst_case_tokens: int = 0
    #: what the plan is (e.g. "the live default plan"), shown above the cost
    origin: str = ""
    #: levels a live plan left out because they raise the cost (text with their cost) and how to include them
    left_out: list[str] = field(default_factory=list)
    include_hint: str = ""

    @property
    def cost(self) -> Cost:
        """Inference requests and worst-case tokens of sending every cell once."""
        return Cost(self.inference_requests, self.worst_case_tokens)

    def lines(self) -> list[str]:
        """The summary line, the cost, and what a live plan left out (with how to include it)."""
        out = [(f"{self.cells} cells, {self.inference_requests} inference requests, about {self.input_tokens} input "
                f"and at most {self.output_tokens} output tokens"
                f"{' (live minimal spend)' if self.minimal_spend else ''}")]
        out.append(f"cost: {self.cost}" + (f" ({self.origin})" if self.origin else ""))
        if self.left_out:
            out.append(f"left out (they raise the cost): {', '.join(self.left_out)}"
                       + (f"; {self.include_hint}" if self.include_hint else ""))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_frame(self) -> pd.DataFrame:
        """One row per cell: its id, what it changes, the request line and its estimated tokens."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(SUMMARY_COLUMNS))

    def _repr_html_(self, limit: int = 60) -> str:
        more = f"<p>… and {len(self.rows) - limit} more cells</p>" if len(self.rows) > limit else ""
        table = self.to_frame().head(limit).to_html(index=False, escape=True)
        head = "<br>".join(html.escape(line) for line in self.lines())
        return f"<p><b>{head}</b></p>{table}{more}"


def describe(cells: Sequence[Cell], profiles: Mapping[str, Profile] | None, factors: Mapping[str, Factor],
             minimal: bool = False) -> DesignSummary:
    """Cell count, inference requests and estimated tokens; ``minimal`` estimates what a live run sends
    (:func:`lanelab.matrix.profiles.minimal_spend` applied, as the runner does in live mode)."""
    rows: list[dict[str, Any]] = []
    inference = tokens_in = tokens_out = worst = 0
    for cell in cells:
        spec = build_spec(cell, profiles, factors)
        if minimal:
            spec = minimal_spend(spec, cell.levels, factors)
        body = spec.body if isinstance(spec.body, dict) else {}
        est_in = len(json.dumps(spec.body, ensure_ascii=False)) // CHARS_PER_TOKEN if spec.body is not None else 0
        est_out = int(body.get("max_tokens", 0) or 0) if spec.is_inference else 0
        inference += int(spec.is_inference)
        worst += estimate_tokens(spec)
        tokens_in += est_in
        tokens_out += est_out
        rows.append(dict(zip(SUMMARY_COLUMNS, (cell.cell_id, cell.label(factors), f"{spec.method} {spec.target}",
                                               est_in, est_out), strict=True)))
    return DesignSummary(cells=len(cells), inference_requests=inference, input_tokens=tokens_in,
                         output_tokens=tokens_out, minimal_spend=minimal, rows=rows, worst_case_tokens=worst)
