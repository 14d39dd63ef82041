"""The fast loop's rules (tests/fast_loop.py): which runs count as the fast loop, and that every property test's
example count goes through the one cap, so the full suite keeps its counts and the fast loop tries a few."""

from __future__ import annotations

import re
from pathlib import Path

import fast_loop
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parent
MAKE_TEST_FAST = "not browser and not slow and not rehearsal"


@pytest.mark.parametrize("markexpr, fast", [
    (MAKE_TEST_FAST, True), ("not slow", True), ("not slow and hardening", True), ("", False), ("slow", False),
    ("hardening", False), ("not browser", False), ("not notebook", False), ("not slow or hardening", False),
])
def test_the_fast_loop_is_a_run_that_deselects_every_slow_test(markexpr: str, fast: bool) -> None:
    assert fast_loop.is_fast_loop(markexpr) is fast


@pytest.mark.parametrize("markexpr, marks, deselected", [
    (MAKE_TEST_FAST, {"browser", "slow"}, True), (MAKE_TEST_FAST, {"rehearsal", "slow"}, True),
    ("not browser", {"browser", "slow"}, True), ("hardening", {"browser", "slow"}, False),
    ("not rehearsal", {"browser", "slow"}, False), ("", {"browser", "slow"}, False),
], ids=lambda value: "+".join(sorted(value)) if isinstance(value, set) else None)
def test_a_folder_is_left_uncollected_only_when_no_test_in_it_can_be_selected(markexpr: str, marks: set[str],
                                                                              deselected: bool) -> None:
    assert fast_loop.deselects(markexpr, marks) is deselected


def test_the_cap_applies_only_under_the_fast_profile() -> None:
    before = settings.get_current_profile_name()
    try:
        settings.load_profile(fast_loop.FAST)
        assert settings.default.max_examples == fast_loop.FAST_EXAMPLES
        assert fast_loop.examples(300) == fast_loop.FAST_EXAMPLES and fast_loop.examples(5) == 5
        assert fast_loop.sweep(3000) == 1000 and fast_loop.sweep(2) == 1
        settings.load_profile("default")
        assert fast_loop.examples(300) == 300 and settings.default.max_examples == 100
        assert fast_loop.sweep(3000) == 3000 and fast_loop.sweep(2) == 2
    finally:
        settings.load_profile(before)


def test_this_run_uses_the_profile_its_marker_expression_asks_for(request: pytest.FixtureRequest) -> None:
    chosen = request.config.getoption("hypothesis_profile", None)
    fast = fast_loop.is_fast_loop(request.config.getoption("markexpr", ""))
    # hypothesis itself starts from its "ci" profile where the CI variable is set (as on CI), else from "default"
    expected = {chosen} if chosen else ({fast_loop.FAST} if fast else {"default", "ci"})
    assert settings.get_current_profile_name() in expected
    calls: list[int] = []

    @settings(max_examples=fast_loop.examples(60), database=None, deadline=None)
    @given(st.integers())
    def prop(x: int) -> None:
        calls.append(x)

    prop()
    if not chosen:
        assert 0 < len(calls) <= (fast_loop.FAST_EXAMPLES if fast else 60)
        assert fast_loop.examples(60) == (fast_loop.FAST_EXAMPLES if fast else 60)
        assert fast_loop.sweep(3000) == (1000 if fast else 3000)


def test_no_property_test_sets_its_count_around_the_cap() -> None:
    """``max_examples=N`` written directly would override the fast profile: every count goes through examples()."""
    bare = re.compile(r"max_examples\s*=\s*(?!examples\()")
    mine = {"fast_loop.py", Path(__file__).name}
    offenders = [f"{path.relative_to(TESTS)}:{n}" for path in sorted(TESTS.rglob("*.py")) if path.name not in mine
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if bare.search(line)]
    assert not offenders, f"use max_examples=examples(N) (tests/fast_loop.py): {offenders}"


def test_the_files_that_import_the_sdk_are_found_and_go_to_one_worker_together(
        request: pytest.FixtureRequest) -> None:
    root = request.config.rootpath
    sdk = fast_loop.sdk_files(root, TESTS)
    assert {"tests/test_sim_sdk.py", "tests/test_watch.py"} <= sdk and "tests/test_pkce.py" not in sdk
    for name in sdk:  # each really uses the SDK: the grouping is not a guess
        assert "anthropic." in (root / name).read_text(encoding="utf-8"), name
    assert fast_loop.scope("tests/test_sim_sdk.py::test_x[a]", sdk) == fast_loop.SDK_SCOPE
    assert fast_loop.scope("tests/test_watch.py::test_y", sdk) == fast_loop.SDK_SCOPE
    assert fast_loop.scope("tests/test_pkce.py::test_z", sdk) == "tests/test_pkce.py"
