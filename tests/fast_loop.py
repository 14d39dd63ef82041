"""What the fast loop (``make test-fast``) leaves out or cuts short, decided in one place.

A run is the fast loop when its ``-m`` expression deselects every test marked ``slow`` (``make test-fast`` runs
``-m "not browser and not slow and not rehearsal"``). Such a run

- does not even collect a folder whose every test carries markers the expression deselects (tests/browser,
  tests/rehearsal: conftest's ``pytest_ignore_collect``), and
- runs every property test with a few examples: conftest loads the hypothesis profile :data:`FAST`, which caps the
  default count (100) at :data:`FAST_EXAMPLES`, and a count a test sets itself goes through :func:`examples`
  (``@settings(max_examples=examples(300))``; a bare ``max_examples=300`` would override the profile, so
  tests/test_fast_loop.py refuses one).

Every other run (``make test``, ``make audit``, a single file) keeps hypothesis' default profile and every count as
written. ``--hypothesis-profile NAME`` on the command line wins over both.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import settings

#: The hypothesis profile of the fast loop, and the most examples it lets any property try.
FAST = "fast"
FAST_EXAMPLES = 20

settings.register_profile(FAST, max_examples=FAST_EXAMPLES)


def examples(count: int) -> int:
    """The number of examples for a property test that wants ``count``: ``count``, or at most :data:`FAST_EXAMPLES`
    while the fast profile is loaded. Called when the test module is imported, after conftest chose the profile."""
    return min(count, FAST_EXAMPLES) if settings.get_current_profile_name() == FAST else count


def deselects(markexpr: str, marks: Iterable[str]) -> bool:
    """True when the ``-m`` expression ``markexpr`` deselects any test carrying all of ``marks``, whatever other
    markers it carries too (checked with none and with every other marker present)."""
    if not markexpr:
        return False
    from _pytest.mark.expression import Expression

    carried, compiled = set(marks), Expression.compile(markexpr)
    return not any(compiled.evaluate(lambda name, others=others: name in carried or others)
                   for others in (False, True))


def is_fast_loop(markexpr: str) -> bool:
    """True when a run with this ``-m`` expression deselects every test marked ``slow``."""
    return deselects(markexpr, {"slow"})
