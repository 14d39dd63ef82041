"""Shared fixtures: a running simulator (default policy) per test, or one per session for read-only tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lanelab.sim.server import SimHandle, running_simulator

DEFAULT_POLICY = "2026-05-25"


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A fresh simulator on a free loopback port, stopped after the test."""
    with running_simulator(policy=DEFAULT_POLICY) as handle:
        yield handle


@pytest.fixture(scope="session")
def sim_session() -> Iterator[SimHandle]:
    """One simulator for the whole session: only for tests that do not depend on account state."""
    with running_simulator(policy=DEFAULT_POLICY) as handle:
        yield handle


@pytest.fixture
def oauth_headers() -> Callable[..., dict[str, str]]:
    """Headers for an OAuth Bearer request the way a well-behaved client sends them (beta on by default)."""

    def build(token: str, beta: str | None = "oauth-2025-04-20", **extra: str) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
        if beta:
            headers["anthropic-beta"] = beta
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    return build
