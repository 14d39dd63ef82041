"""Configure the test session's one simulator (``shared_sim`` in conftest.py) as if it had been started with other
settings, and put it back; for fixtures that cannot use ``sim``/``sim_with`` (module-scoped ones)."""

from __future__ import annotations

from typing import Any

from lanelab.config import DEFAULT_POLICY
from lanelab.sim import outcomes
from lanelab.sim.faults import FaultPlan
from lanelab.sim.server import SimHandle

__all__ = ["configure_sim", "default_simulator"]


def configure_sim(handle: SimHandle, policy: str = DEFAULT_POLICY, faults: str | None = None,
                  account: dict[str, Any] | None = None, seed: int = 0) -> SimHandle:
    """Make ``handle`` what ``running_simulator(policy=, faults=, account=, seed=)`` would start, reset included: a
    later ``reset()`` returns to this policy, fault plan (re-seeded) and account. Raises as the simulator does for an
    unknown policy, a bad fault spec or an account of the wrong shape (and leaves the simulator at its default)."""
    default_simulator(handle)
    simulator = handle.simulator
    try:
        plan = FaultPlan(faults, seed=seed)
        if account:
            handle.state.update_account(account)
            handle.state.set_baseline()
        simulator.set_policy(policy)
    except Exception:
        default_simulator(handle)
        raise
    simulator.faults, simulator.initial_policy = plan, policy
    return handle


def default_simulator(handle: SimHandle) -> None:
    """Put the shared simulator back to how the session started it, and reset it."""
    simulator, state = handle.simulator, handle.state
    simulator.faults = FaultPlan(None)
    simulator.initial_policy = DEFAULT_POLICY
    with state.lock:
        state.billing.account = outcomes.default_account()
        state.set_baseline()
    handle.reset()
