"""``python -m lanelab bisect --pass A --fail B``: the smallest difference that flips a request's verdict."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from lanelab.auth.issuer import DEFAULT_LABELS, default_label
from lanelab.commands import count
from lanelab.config import DEFAULT_POLICY, Settings
from lanelab.errors import InputError
from lanelab.live import confirm_cli, require_live_opt_in
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET

NAME = "bisect"
HELP = "delta-debug between a passing and a failing request to find the smallest difference that flips it"
DESCRIPTION = (
    "A and B are profile names or capture files (a first-party reference profile is never probed). Without "
    "LANELAB_BASE_URL an embedded simulator is started; with a simulator URL the saved credential is used when that "
    "simulator issued it, else a fresh one is minted. Live mode (LANELAB_MODE=live) needs LANELAB_LIVE_OPT_IN=1, "
    f"sends the cheapest probes (max_tokens 1, no streaming) within a budget (default {DEFAULT_LIVE_BUDGET}), and asks "
    "before sending (--yes without a terminal). Every probe is stored as a cell of a run under LANELAB_OUT/runs."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pass", dest="passing", required=True, help="the request billed to the plan")
    parser.add_argument("--fail", dest="failing", required=True, help="the request that fails")
    parser.add_argument("--strategy", default="binary", choices=("binary", "ddmin", "one_at_a_time", "exhaustive"))
    parser.add_argument("--budget", type=count(1), default=None,
                        help=f"most requests to send (default: none in sim mode, {DEFAULT_LIVE_BUDGET} live)")
    parser.add_argument("--repeats", type=count(0, 100), default=0,
                        help="confirm each verdict and, on disagreement, re-send up to N more times (flaky servers)")
    parser.add_argument("--pass-outcome", action="append", default=None,
                        help="outcome id(s) that count as passing (default: served_plan)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="embedded simulator policy (default: %(default)s)")
    parser.add_argument("--credential", default=None, help="the credential label to use (default: "
                        + ", ".join(f"{lbl} in {m} mode" for m, lbl in DEFAULT_LABELS.items()) + ")")
    parser.add_argument("--prompt", default=None, help="replace the user prompt of both requests")
    parser.add_argument("--yes", action="store_true",
                        help="live: confirm the notice, host, credential and cost without being asked")


@contextlib.contextmanager
def _target(args: argparse.Namespace, settings: Settings, label: str) -> Iterator[tuple[str, str, str, str]]:
    """(base_url, token, host label for the run, where the token came from) for the probes."""
    from lanelab.matrix.tokens import TokenSource

    if settings.base_url:
        source = TokenSource(settings, settings.base_url, label)
        token = source.token()  # live: the saved credential, checked against the host; sim: saved or minted
        yield settings.base_url, token, "live" if settings.mode == "live" else settings.base_url, source.where or ""
        return
    from lanelab.sim.server import running_simulator

    with running_simulator(policy=args.policy) as sim:
        yield sim.base_url, sim.mint_token()["access_token"], f"sim:{args.policy}", "a fresh simulator token"


def run(args: argparse.Namespace) -> int:
    """Load both requests, look the credential up (checked against the host), confirm in live mode, bisect.
    Returns 0 when a cause was found, 1 otherwise; user errors are raised before anything is sent."""
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.walkthrough.bisect import DEFAULT_PASS_OUTCOMES, bisect_to_run
    from lanelab.walkthrough.to_profile import load_request

    settings = Settings.from_env()
    live = settings.mode == "live"
    require_live_opt_in(settings, "Live bisect spends your real account")
    if args.budget is not None and args.budget < 1:
        raise InputError(f"--budget must be at least 1, not {args.budget}.")
    budget = args.budget if args.budget is not None else (DEFAULT_LIVE_BUDGET if live else None)
    label = args.credential or default_label(settings.mode)
    fail_label, failing = load_request(args.failing, args.prompt)
    pass_label, passing = load_request(args.passing, args.prompt)
    if live:  # the cheapest probes with the same shape
        failing, passing = minimal_spend(failing), minimal_spend(passing)
    with _target(args, settings, label) as (base_url, token, host, where):
        if live:
            from lanelab.matrix.confirm import gate_for

            gate = gate_for(settings, base_url, label, token, mixed=(failing, passing), probes=int(budget or 0),
                            budget=budget, what="probes (at most)",
                            extra=(f"bisect: {fail_label} (fails) against {pass_label} (passes), max_tokens 1, no "
                                   "streaming" + ("" if args.budget is not None else
                                                  f"; the default budget ({budget}): --budget N to change"),))
            assert gate.confirmation is not None
            confirm_cli(gate.confirmation, args.yes)
        elif where:
            print(f"credential: {where}")
        result = bisect_to_run(failing, passing, base_url, token, settings=settings, failing_label=fail_label,
                               passing_label=pass_label, credential=label, host=host, policy=None if live else
                               args.policy, strategy=args.strategy, budget=budget, repeats=args.repeats,
                               pass_outcomes=tuple(args.pass_outcome or DEFAULT_PASS_OUTCOMES), confirmed=live)
    print(f"bisect {fail_label} (fails) → {pass_label} (passes): {len(result.differences)} difference(s)")
    print(result.summary())
    if result.cause:
        print(result.to_frame().to_markdown(index=False))
    print(f"probes stored in {result.path}")
    return 0 if result.found else 1
