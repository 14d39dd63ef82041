"""Designs produce the cells they promise: OFAT, full factorial, pairwise coverage; stable cell ids; cost summary."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import pytest
from fast_loop import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab.errors import UserError
from lanelab.matrix.designs import (
    Cell,
    build_spec,
    cell_id_for,
    describe,
    design,
    explicit,
    full_factorial,
    make_cell,
    one_factor_at_a_time,
    pairwise,
)
from lanelab.matrix.factors import Factor, Level, apply_levels, load_factors
from lanelab.matrix.profiles import load_profiles

CATALOG = load_factors()
PROFILES = load_profiles()
REAL = [f for f in CATALOG if f != "credential"]


def synthetic(counts: list[int]) -> dict[str, Factor]:
    """A catalogue of factors f0, f1 … with the given level counts (levels l0 … , baseline l0)."""
    return {
        f"f{i}": Factor(name=f"f{i}", description="", baseline="l0",
                        levels={f"l{j}": Level(name=f"l{j}", kind="keep") for j in range(n)})
        for i, n in enumerate(counts)
    }


def uncovered_pairs(cells: list[Cell], catalog: dict[str, Factor], factors: list[str]) -> set[tuple[str, ...]]:
    need = {(f, a, g, b) for f, g in itertools.combinations(factors, 2)
            for a in catalog[f].levels for b in catalog[g].levels}
    seen = {(f, c.levels[f], g, c.levels[g]) for c in cells for f, g in itertools.combinations(factors, 2)}
    return need - seen


@pytest.mark.parametrize("counts", [[2, 2, 2], [3, 3, 3, 3], [7, 2, 5, 3, 1, 4], [2] * 10, [6, 6, 2, 2, 2, 2, 2]])
def test_pairwise_covers_every_pair_in_fewer_cells(counts: list[int]) -> None:
    catalog = synthetic(counts)
    factors = list(catalog)
    cells = pairwise("p", catalog, factors, seed=3)
    assert uncovered_pairs(cells, catalog, factors) == set()
    largest = sorted(counts)[-2:]
    assert len(cells) >= largest[0] * largest[1]
    assert len(cells) <= math.prod(counts)
    if len(counts) >= 4 and max(counts) > 1:
        assert len(cells) < math.prod(counts) / 2


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=6), st.integers(0, 1000))
def test_pairwise_property(counts: list[int], seed: int) -> None:
    catalog = synthetic(counts)
    cells = pairwise("p", catalog, list(catalog), seed=seed)
    assert uncovered_pairs(cells, catalog, list(catalog)) == set()
    assert len({c.cell_id for c in cells}) == len(cells)


@pytest.mark.slow  # covers every pair of the real catalogue, twice; test_pairwise_property stays in the fast loop
def test_pairwise_on_the_real_catalogue_is_small_and_deterministic() -> None:
    cells = pairwise("hermes-0.14.0", CATALOG, REAL, seed=7)
    assert uncovered_pairs(cells, CATALOG, REAL) == set()
    full = math.prod(len(CATALOG[f].levels) for f in REAL)
    assert len(cells) * 1000 < full
    again = pairwise("hermes-0.14.0", CATALOG, REAL, seed=7)
    assert [c.cell_id for c in again] == [c.cell_id for c in cells]


def test_one_factor_at_a_time_changes_one_factor_per_cell() -> None:
    factors = ["user_agent", "tools", "identity", "x_app"]
    cells = one_factor_at_a_time("hermes-0.14.0", CATALOG, factors)
    base = cells[0].levels
    assert base == {f: CATALOG[f].baseline for f in factors}
    assert len(cells) == 1 + sum(len(CATALOG[f].levels) - 1 for f in factors)
    for cell in cells[1:]:
        changed = [f for f in factors if cell.levels[f] != base[f]]
        assert len(changed) == 1
    assert {(f, c.levels[f]) for c in cells for f in factors} == {
        (f, lv) for f in factors for lv in CATALOG[f].levels}


def test_one_factor_at_a_time_from_another_baseline() -> None:
    cells = one_factor_at_a_time("hermes-0.14.0", CATALOG, ["tools", "x_app"], baseline={"tools": "mcp__"})
    assert cells[0].levels == {"tools": "mcp__", "x_app": "profile"}
    assert any(c.levels == {"tools": "profile", "x_app": "profile"} for c in cells)


def test_full_factorial_is_every_combination() -> None:
    factors = ["x_app", "stream", "model"]
    cells = full_factorial("sdk-minimal", CATALOG, factors)
    assert len(cells) == math.prod(len(CATALOG[f].levels) for f in factors)
    assert len({tuple(sorted(c.levels.items())) for c in cells}) == len(cells)
    narrowed = full_factorial("sdk-minimal", CATALOG, factors, levels={"model": ["haiku", "opus"]})
    assert len(narrowed) == 3 * 3 * 2 and {c.levels["model"] for c in narrowed} == {"haiku", "opus"}


def test_explicit_checks_levels_and_drops_duplicates() -> None:
    rows = [{"tools": "none"}, {"tools": "none"}, {"tools": "mcp__", "x_app": "off"}]
    cells = explicit("hermes-0.14.0", rows, CATALOG)
    assert [c.levels for c in cells] == rows[1:]
    with pytest.raises(UserError, match="mcp__"):
        explicit("hermes-0.14.0", [{"tools": "mcp___"}], CATALOG)


def test_design_by_name_and_errors() -> None:
    assert design("ofat", "sdk-minimal", CATALOG, ["x_app"]) == one_factor_at_a_time("sdk-minimal", CATALOG, ["x_app"])
    with pytest.raises(UserError, match="pairwise"):
        design("latin-square", "sdk-minimal", CATALOG, ["x_app"])
    with pytest.raises(UserError, match="factor"):
        full_factorial("sdk-minimal", CATALOG, [])
    with pytest.raises(UserError, match="x_app"):
        full_factorial("sdk-minimal", CATALOG, ["x-app"])


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["1", "2", "x"]), min_size=1))
def test_cell_id_ignores_dict_order(levels: dict[str, str]) -> None:
    reordered = dict(reversed(list(levels.items())))
    assert make_cell("p", levels).cell_id == make_cell("p", reordered).cell_id
    assert len(make_cell("p", levels).cell_id) == 12 and int(make_cell("p", levels).cell_id, 16) >= 0
    assert make_cell("q", levels).cell_id != make_cell("p", levels).cell_id


@pytest.mark.slow  # a second Python process
def test_cell_id_differs_per_level_and_is_stable_across_processes() -> None:
    levels = {"tools": "mcp__", "user_agent": "none"}
    assert cell_id_for("p", levels) != cell_id_for("p", {**levels, "tools": "mcp_"})
    code = ("from lanelab.matrix.designs import cell_id_for; import json,sys; "
            "print(cell_id_for('p', json.loads(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(dict(reversed(list(levels.items()))))],
                         capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == cell_id_for("p", levels)


def test_build_spec_applies_the_cell_levels() -> None:
    cell = make_cell("hermes-0.14.0", {"tools": "mcp__", "endpoint": "messages_beta"})
    spec = build_spec(cell, PROFILES, CATALOG)
    profile = PROFILES["hermes-0.14.0"].spec
    assert spec == apply_levels(profile, cell.levels, CATALOG, profile)
    assert spec.query == {"beta": "true"} and spec.body["tools"][0]["name"].startswith("mcp__")
    assert build_spec(cell, None, CATALOG) == spec  # loads the profile itself when not given


def test_describe_counts_requests_and_tokens() -> None:
    cells = one_factor_at_a_time("hermes-0.14.0", CATALOG, ["endpoint", "max_tokens"])
    summary = describe(cells, PROFILES, CATALOG)
    non_inference = sum(1 for c in cells if c.levels["endpoint"] == "count_tokens")
    assert summary.cells == len(cells) and summary.inference_requests == len(cells) - non_inference
    specs = [build_spec(c, PROFILES, CATALOG) for c in cells]
    assert summary.output_tokens == sum(s.body.get("max_tokens", 0) for s in specs if s.is_inference)
    assert summary.input_tokens == sum(len(json.dumps(s.body, ensure_ascii=False)) // 4 for s in specs)
    live = describe(cells, PROFILES, CATALOG, minimal=True)
    asked = [c for c in cells if c.levels["max_tokens"] != "profile" and c.levels["endpoint"] != "count_tokens"]
    expected = sum(s.body["max_tokens"] for c, s in zip(cells, specs) if c in asked) + \
        (live.inference_requests - len(asked))
    assert live.output_tokens == expected < summary.output_tokens
    html = summary._repr_html_()
    assert html.count("<tr") == len(cells) + 1 and str(summary.cells) in str(summary)
    frame = summary.to_frame()
    assert list(frame["cell_id"]) == [c.cell_id for c in cells] and frame["max_output"].sum() == summary.output_tokens
