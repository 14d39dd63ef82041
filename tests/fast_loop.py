"""What the fast loop (``make test-fast``) leaves out or cuts short, decided in one place.

A run is the fast loop when its ``-m`` expression deselects every test marked ``slow`` (``make test-fast`` runs
``-m "not browser and not slow and not rehearsal"``). Such a run

- does not even collect a folder whose every test carries markers the expression deselects (tests/browser,
  tests/rehearsal: conftest's ``pytest_ignore_collect``), and
- runs every property test with a few examples: conftest loads the hypothesis profile :data:`FAST`, which caps the
  default count (100) at :data:`FAST_EXAMPLES`, and a count a test sets itself goes through :func:`examples`
  (``@settings(max_examples=examples(300))``; a bare ``max_examples=300`` would override the profile, so
  tests/test_fast_loop.py refuses one), and
- runs a seeded sweep (a test's own loop over generated cases, the same cases every run) over its first share
  :data:`FAST_SWEEP_SHARE` only, through :func:`sweep` (``for i in range(sweep(3000))``).

Every other run (``make test``, ``make audit``, a single file) keeps hypothesis' default profile and every count as
written. ``--hypothesis-profile NAME`` on the command line wins over both.

``make test-fast`` also hands the tests to its workers a file at a time (``--dist loadfile``): a module's fixtures
and imports are then paid for by one worker, not by both. The test files that import the official ``anthropic``
SDK (seconds to import) go to one worker together (:func:`make_scheduler`, conftest's
``pytest_xdist_make_scheduler``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

#: The hypothesis profile of the fast loop, and the most examples it lets any property try.
FAST = "fast"
FAST_EXAMPLES = 20

settings.register_profile(FAST, max_examples=FAST_EXAMPLES)


def examples(count: int) -> int:
    """The number of examples for a property test that wants ``count``: ``count``, or at most :data:`FAST_EXAMPLES`
    while the fast profile is loaded. Called when the test module is imported, after conftest chose the profile."""
    return min(count, FAST_EXAMPLES) if settings.get_current_profile_name() == FAST else count


#: The part of a seeded sweep the fast loop runs: its first cases, in the same order as the whole sweep.
FAST_SWEEP_SHARE = 1 / 3


def sweep(count: int) -> int:
    """The number of cases of a seeded sweep that wants ``count``: ``count``, or the first :data:`FAST_SWEEP_SHARE`
    of them (at least one) while the fast profile is loaded. Called inside the test, after conftest chose the
    profile. A sweep that asserts it reached everything (every rule held, say) must reach it within that share too,
    with room to spare; the full suite still runs every case."""
    return max(1, int(count * FAST_SWEEP_SHARE)) if settings.get_current_profile_name() == FAST else count


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


#: How a test file imports the official SDK: ``import anthropic`` (at any indent) or ``importorskip("anthropic")``.
_SDK_IMPORT = re.compile(r"^\s*import anthropic\b|importorskip\(\s*[\"']anthropic[\"']", re.MULTILINE)
#: The one unit of work the files importing the SDK make together.
SDK_SCOPE = "the test files that import the anthropic SDK"


def sdk_files(root: Path, tests: Path) -> frozenset[str]:
    """The test files under ``tests`` that import the ``anthropic`` SDK, named as pytest names them (relative to the
    rootdir ``root``, with forward slashes)."""
    return frozenset(path.relative_to(root).as_posix() for path in sorted(tests.rglob("test_*.py"))
                     if _SDK_IMPORT.search(path.read_text(encoding="utf-8")))


def scope(nodeid: str, sdk: frozenset[str]) -> str:
    """The unit of work a worker gets test ``nodeid`` in: its file, as ``--dist loadfile`` has it, or
    :data:`SDK_SCOPE` for every file in ``sdk``."""
    path = nodeid.split("::", 1)[0]
    return SDK_SCOPE if path in sdk else path


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadfile``: pytest-xdist's file-at-a-time scheduler with the files that import the SDK as one
    unit (see :func:`scope`); under any other ``--dist``: None (pytest-xdist's own scheduler)."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    sdk = sdk_files(config.rootpath, Path(__file__).resolve().parent)

    class SDKTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid, sdk)

    return SDKTogether(config, log)
