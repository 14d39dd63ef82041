"""The simulator's model, apart from HTTP: its state, the active policy and fault plan, and how one request is decided.

A request's way: credential → features → the policy's decision → the rendered reply, whose headers carry the account's
unified values. The routes (:mod:`~lanelab.sim.api`, :mod:`~lanelab.sim.oauth_server`, :mod:`~lanelab.sim.control`)
and the per-request middleware (:mod:`~lanelab.sim.middleware`) call into it; :mod:`~lanelab.sim.app` puts them
together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lanelab.config import DEFAULT_POLICY
from lanelab.sim import features, outcomes
from lanelab.sim import policy as policy_mod
from lanelab.sim.account import SimState
from lanelab.sim.faults import FaultPlan
from lanelab.sim.outcomes import Reply
from lanelab.sim.usage_limit import SimClock, UsageLimiter

__all__ = ["Simulator"]


class Simulator:
    """One simulator: its :class:`SimState`, the active :class:`~lanelab.sim.policy.Policy` and its fault plan.

    ``real_hosts``: it answers under the real host names (with TLS for them, the offline rehearsal), so each name
    serves only its own part (the policy's ``[hosts]``); on plain loopback every path stays on one origin.

    Raises ``FaultSpecError`` for a bad ``faults`` spec, ``PolicyNotFound`` for an unknown policy name and
    ``AccountShapeError`` for an account of the wrong shape.
    """

    def __init__(self, policy: str = DEFAULT_POLICY, faults: str | None = None,
                 account: dict[str, Any] | None = None, seed: int = 0, real_hosts: bool = False):
        self.state = SimState(outcomes.default_account())
        if account:
            self.state.update_account(account)
            self.state.set_baseline()
        self.faults = FaultPlan(faults, seed=seed)
        self.clock = SimClock()
        self.usage_reads = UsageLimiter(self.clock)
        self.real_hosts = real_hosts
        self.header_features = features.HeaderFeatures()
        self.set_policy(policy)
        self.initial_policy = policy

    def __repr__(self) -> str:
        return f"<Simulator policy={self.state.policy_name!r} faults={self.faults.spec!r}>"

    def set_policy(self, name: str) -> None:
        """Make ``name`` the active policy, and (re)read the outcome templates with it; ``PolicyNotFound`` if there
        is no such policy (a name, never a path)."""
        if not isinstance(name, str) or name not in policy_mod.list_policies():  # a name, never a path
            raise policy_mod.PolicyNotFound(f"No simulator policy named {name!r}.",
                                            f"Choose one of: {', '.join(policy_mod.list_policies()) or '(none)'}.")
        policy = policy_mod.load_policy(name)
        templates = outcomes.load_outcomes()  # read with the policy, not on every request
        with self.state.lock:
            self.policy, self.templates, self.replies = policy, templates, outcomes.Replies(templates)
            self.state.billing.service = policy.service
            self.state.policy_name = name

    def reset(self) -> None:
        """Everything back to how this simulator started: account, credentials, request log, the simulator's secret
        registry, counters, the clock and the usage reads, the policy it was created with and its fault plan (spec,
        counters, coin)."""
        self.state.reset()
        self.header_features = features.HeaderFeatures()  # (it holds the last headers seen, a credential among them)
        self.faults.reset()
        self.clock.reset()
        self.usage_reads.reset()
        self.set_policy(self.initial_policy)

    def render(self, outcome: str, details: Mapping[str, str] | None = None) -> Reply:
        """The reply for ``outcome`` given the account as it stands (templates as read with the policy); ``details``
        fill the message's placeholders."""
        with self.state.lock:  # render only reads the account: no copy needed while the lock is held
            return self.replies.render(outcome, self.state.billing.account, details)

    def mint_token(self, scopes: list[str] | None = None, kind: str = "pkce", source: str | None = None,
                   expires_in: int | None = None) -> dict[str, Any]:
        """Issue a credential directly (``POST /_sim/tokens``); ``ValueError`` for an unknown kind."""
        return self.state.mint_token(scopes=scopes, kind=kind, source=source, expires_in=expires_in)

    def token_info(self, headers: Mapping[str, str]) -> features.TokenInfo:
        """The presented credential (x-api-key wins over Bearer, as on the real API) as a ``TokenInfo``."""
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        value = headers.get("x-api-key") or bearer
        d = self.state.grants.describe(value)
        return features.TokenInfo(kind=d["kind"], valid=d["valid"], expired=d["expired"],
                                  scopes=tuple(d["scopes"]), source=d["source"])

    def decide(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[features.TokenInfo, policy_mod.Decision, Reply]:
        """Token → features → the policy's decision → the reply (``headers`` with lower-case names)."""
        token = self.token_info(headers)
        feats = features.extract(method, path, query, headers, body, token, self.header_features)
        decision = self.policy.decide(feats)
        return token, decision, self.render(decision.outcome, decision.details)

    def reply_headers(self, reply: Reply) -> dict[str, str]:
        """The headers a reply carries: unified values of the account, per-key limits for API keys, retry-after."""
        headers: dict[str, str] = {}
        if reply.unified:
            headers.update(self.state.billing.unified_headers(reply.lane, reply.status))
        if reply.lane == "api":
            headers.update(self.state.billing.api_key_headers())
        if reply.retry_after:
            headers["retry-after"] = str(reply.retry_after)
        return headers
