"""What stands between a user and a live run: the responsible-use notice, and a dry run that shows every request.

Live mode spends the user's own plan or extra usage, so before anything is sent the kit says what it is for (it
diagnoses, it does not evade; DESIGN.md "Responsible use"), where the requests go and what the budget is. A dry run
renders each request exactly as :func:`lanelab.wire.spec.build_request` would send it (the same code path, so the host
allow-list applies), with the credential masked, and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from lanelab import redact
from lanelab.errors import BudgetExceeded
from lanelab.live import NOTICE
from lanelab.matrix.budget import Budget, BudgetGuard
from lanelab.wire.spec import RequestSpec, build_request

__all__ = ["LATER", "banner", "budget_verdict", "render_request", "render_requests"]

#: Stands in for a credential that is only obtained when the run starts (sim mode mints one from the simulator).
LATER = "<attached when the run starts>"


def banner(host: str, budget: Budget | None) -> str:
    """The notice, the host and the budget: printed before a live run or a live dry run."""
    return "\n".join([NOTICE, f"host: {host}", f"budget: {budget.describe() if budget else 'none'}"])


def budget_verdict(specs: Iterable[RequestSpec], budget: Budget | None) -> str:
    """One line: would the real run start within ``budget``?"""
    if budget is None:
        return "budget: none set (a live run refuses to start without --budget N)"
    try:
        BudgetGuard(budget).check_plan(specs, how_to_raise="raise the budget (--budget N)")
    except BudgetExceeded as exc:
        return f"budget check: the real run would be refused: {exc}"
    return f"budget check: the plan fits within {budget.describe()}"


def render_request(spec: RequestSpec, base_url: str, token: str | None) -> str:
    """The request ``spec`` becomes, as text: method, URL, headers (credential masked), body; nothing is sent."""
    request = build_request(spec, base_url, token)
    headers = redact.redact_headers(request.headers)
    if token is None and spec.auth != "none":  # the credential is attached later: say where it will go
        if spec.auth in ("bearer", "both"):
            headers["authorization"] = f"Bearer {LATER}"
        if spec.auth in ("x-api-key", "both"):
            headers["x-api-key"] = LATER
    lines = [f"{request.method} {request.url}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    body = request.content.decode("utf-8", errors="replace") if request.content else ""
    lines += ["", body] if body else []
    return redact.redact_text("\n".join(lines))


def render_requests(items: Iterable[tuple[str, RequestSpec]], base_url: str,
                    token_for: Callable[[str | None], str | None]) -> Iterator[str]:
    """Each ``(cell_id, spec)`` rendered, headed by its cell id and numbered."""
    for n, (cell_id, spec) in enumerate(items, 1):
        yield f"--- request {n} (cell {cell_id}) ---\n{render_request(spec, base_url, token_for(spec.credential))}"
