"""The spend guard for live runs: a cap on inference requests and on estimated tokens.

A live matrix spends the user's own quota, so the kit refuses to start a plan larger than the budget (saying what it
would cost, the cheaper alternative and how to raise it), reserves every request before it is sent (retries
included) and stops cleanly when the budget is used up: no request is ever sent beyond it. A request that never
reached the server (DNS, refused connection, TLS; :mod:`lanelab.matrix.reach`) is given back: it spent nothing.

The cost of a plan is its inference requests and its worst-case tokens (:func:`estimate_tokens` of each: the body's
size in tokens plus ``max_tokens``). :data:`DEFAULT_LIVE_BUDGET` is the budget a live run gets when none is named
(the CLI and the notebooks alike); the live default plan (:mod:`lanelab.matrix.live_default`) fits it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lanelab.errors import BudgetExceeded
from lanelab.matrix.errors import InvalidOption, found, is_whole
from lanelab.wire.spec import RequestSpec

__all__ = ["CHARS_PER_TOKEN", "DEFAULT_LIVE_BUDGET", "Budget", "BudgetGuard", "Cost", "Spend", "as_budget", "estimate_tokens",
           "mix_cost", "plan_cost"]

#: Characters per token, for estimates only (English text and JSON average about four).
CHARS_PER_TOKEN = 4
#: Inference requests (retries included) a live run may spend when no budget is named: CLI and notebooks alike.
DEFAULT_LIVE_BUDGET = 10


def estimate_tokens(spec: RequestSpec) -> int:
    """Rough tokens one send may cost: the body's size in tokens plus ``max_tokens`` (0 for non-inference)."""
    if not spec.is_inference:
        return 0
    body = spec.body if isinstance(spec.body, dict) else {}
    size = len(json.dumps(body, ensure_ascii=False)) if body else 0
    out = body.get("max_tokens", 0)
    return size // CHARS_PER_TOKEN + (int(out) if isinstance(out, (int, float)) else 0)


@dataclass(frozen=True)
class Cost:
    """What sending a plan once costs: inference requests and worst-case tokens (input estimate + ``max_tokens``)."""

    requests: int = 0
    tokens: int = 0

    def __str__(self) -> str:
        return (f"{self.requests} inference request{'s' if self.requests != 1 else ''}, at most ~{self.tokens:,} "
                "tokens (worst case)")


def plan_cost(specs: Iterable[RequestSpec]) -> Cost:
    """The :class:`Cost` of sending each spec once (non-inference requests cost nothing)."""
    specs = [s for s in specs if s.is_inference]
    return Cost(len(specs), sum(estimate_tokens(s) for s in specs))


def mix_cost(a: RequestSpec, b: RequestSpec, requests: int) -> Cost:
    """The worst-case :class:`Cost` of ``requests`` sends of requests mixing parts of ``a`` and ``b`` (a bisect's
    probes): each at most as large as both together."""
    return Cost(requests, requests * (estimate_tokens(a) + estimate_tokens(b)))


@dataclass(frozen=True)
class Budget:
    """Caps for one run; ``None`` means no cap on that axis."""

    max_requests: int | None = None
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        """Refuse a cap that is not a whole number of 1 or more (:class:`InvalidOption`)."""
        for name in ("max_requests", "max_tokens"):
            value = getattr(self, name)
            if value is not None and not is_whole(value, 1):
                raise InvalidOption(f"A budget's {name} is a whole number of 1 or more (or None: no cap); "
                                    f"found {found(value)}.")

    def describe(self) -> str:
        parts = [f"{self.max_requests} inference requests" if self.max_requests is not None else None,
                 f"{self.max_tokens} estimated tokens" if self.max_tokens is not None else None]
        return " and ".join(p for p in parts if p) or "no limit"


def as_budget(value: Budget | int | None) -> Budget | None:
    """A budget as a notebook gives it: a :class:`Budget`, a number of inference requests, or None (no cap).

    Raises :class:`InvalidOption` for anything else (``"10"``, ``1.5``, ``True``) and for a number below 1."""
    if value is None or isinstance(value, Budget):
        return value
    if is_whole(value):  # (Budget refuses one below 1, saying so)
        return Budget(max_requests=value)
    raise InvalidOption(f"A budget is a number of requests (1 or more) or a Budget; found {type(value).__name__}.")


@dataclass
class Spend:
    """What a run has spent (inference requests, retries included) and what it was refused."""

    requests: int = 0
    tokens: int = 0
    refused: int = 0
    unreached: int = 0  # sends given back: they never reached the server

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "tokens": self.tokens, "refused": self.refused,
                "unreached": self.unreached}


@dataclass
class BudgetGuard:
    """Checks a plan against a :class:`Budget` and reserves each send; thread- and task-safe."""

    budget: Budget = field(default_factory=Budget)
    spent: Spend = field(default_factory=Spend)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_plan(self, specs: Iterable[RequestSpec], how_to_raise: str = "pass a larger budget",
                   cheaper: str = "") -> Cost:
        """Refuse to start when sending each spec once would already exceed the budget; returns the plan's cost.

        Raises :class:`BudgetExceeded` naming the cost (requests and worst-case tokens), the limit, ``cheaper`` (the
        cheaper alternative, when given) and ``how_to_raise``.
        """
        cost = plan_cost(specs)
        n, tokens = cost.requests, cost.tokens
        b = self.budget
        over = []
        if b.max_requests is not None and self.spent.requests + n > b.max_requests:
            over.append(f"{n} inference requests against a limit of {b.max_requests}"
                        + (f" ({self.spent.requests} already spent)" if self.spent.requests else ""))
        if b.max_tokens is not None and self.spent.tokens + tokens > b.max_tokens:
            over.append(f"about {tokens} estimated tokens against a limit of {b.max_tokens}")
        if over:
            hint = f"Cheaper: {cheaper}. Or {how_to_raise}." if cheaper else \
                f"Choose fewer cells or factors, or {how_to_raise}."
            raise BudgetExceeded(
                f"This run needs {' and '.join(over)} (cost: {cost}); nothing was sent.", hint)
        return cost

    def reserve(self, spec: RequestSpec) -> bool:
        """Count one send of ``spec``; False (and nothing counted) when it would exceed the budget."""
        if not spec.is_inference:
            return True
        cost = estimate_tokens(spec)
        b = self.budget
        with self._lock:
            if (b.max_requests is not None and self.spent.requests + 1 > b.max_requests) or (
                    b.max_tokens is not None and self.spent.tokens + cost > b.max_tokens):
                self.spent.refused += 1
                return False
            self.spent.requests += 1
            self.spent.tokens += cost
            return True

    def give_back(self, spec: RequestSpec) -> None:
        """Undo one :meth:`reserve` of ``spec``: the send never reached the server, so it spent nothing."""
        if not spec.is_inference:
            return
        with self._lock:
            self.spent.requests = max(0, self.spent.requests - 1)
            self.spent.tokens = max(0, self.spent.tokens - estimate_tokens(spec))
            self.spent.unreached += 1

    def report(self) -> str:
        """One line for people: what was spent against what limit."""
        s, b = self.spent, self.budget
        req = f"{s.requests}" + (f"/{b.max_requests}" if b.max_requests is not None else "")
        tok = f"~{s.tokens}" + (f"/{b.max_tokens}" if b.max_tokens is not None else "")
        tail = f"; stopped at the budget ({s.refused} sends refused)" if s.refused else ""
        if s.unreached:
            tail += f"; {s.unreached} sends never reached the server and are not counted"
        return f"spent {req} inference requests, {tok} estimated tokens{tail}"
