"""``python -m lanelab bisect --pass A --fail B``: the smallest difference that flips a request's verdict."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from lanelab.commands import count
from lanelab.config import DEFAULT_POLICY, Settings
from lanelab.errors import BudgetExceeded
from lanelab.live import require_live_opt_in

NAME = "bisect"
HELP = "delta-debug between a passing and a failing request to find the smallest difference that flips it"
DESCRIPTION = (
    "A and B are profile names or capture files. Without LANELAB_BASE_URL an embedded simulator is started; with a "
    "simulator URL a fresh simulator credential is minted. Live mode (LANELAB_MODE=live) needs LANELAB_LIVE_OPT_IN=1, "
    "--credential and --budget. Every probe is stored as a cell of a run under LANELAB_OUT/runs."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pass", dest="passing", required=True, help="the request billed to the plan")
    parser.add_argument("--fail", dest="failing", required=True, help="the request that fails")
    parser.add_argument("--strategy", default="binary", choices=("binary", "ddmin", "one_at_a_time", "exhaustive"))
    parser.add_argument("--budget", type=count(1), default=None, help="most requests to send")
    parser.add_argument("--repeats", type=count(0, 100), default=0,
                        help="confirm each verdict and, on disagreement, re-send up to N more times (flaky servers)")
    parser.add_argument("--pass-outcome", action="append", default=None,
                        help="outcome id(s) that count as passing (default: served_plan)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="embedded simulator policy (default: %(default)s)")
    parser.add_argument("--credential", default=None, help="live mode: the credential label to use")
    parser.add_argument("--prompt", default=None, help="replace the user prompt of both requests")


@contextlib.contextmanager
def _target(args: argparse.Namespace, settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(base_url, token, host label) for the probes."""
    if settings.mode == "live":
        require_live_opt_in(settings, "Live bisect spends your real account")
        if not args.credential or not args.budget:
            raise BudgetExceeded("Live bisect needs --credential LABEL and --budget N.",
                                 "Choose a small budget; each probe is one real request.")
        from lanelab.auth.resolve import resolve_token

        yield str(settings.base_url), resolve_token(args.credential, settings), "live"
        return
    if settings.base_url:
        from lanelab.matrix.sim_client import sim_token

        yield settings.base_url, sim_token(settings.base_url), settings.base_url
        return
    from lanelab.sim.server import running_simulator

    with running_simulator(policy=args.policy) as sim:
        yield sim.base_url, sim.mint_token()["access_token"], f"sim:{args.policy}"


def run(args: argparse.Namespace) -> int:
    from lanelab.walkthrough.bisect import DEFAULT_PASS_OUTCOMES, bisect_to_run
    from lanelab.walkthrough.to_profile import load_request

    settings = Settings.from_env()
    fail_label, failing = load_request(args.failing, args.prompt)
    pass_label, passing = load_request(args.passing, args.prompt)
    with _target(args, settings) as (base_url, token, host):
        result = bisect_to_run(failing, passing, base_url, token, settings=settings, failing_label=fail_label,
                               passing_label=pass_label, credential=args.credential, host=host, policy=args.policy,
                               strategy=args.strategy, budget=args.budget, repeats=args.repeats,
                               pass_outcomes=tuple(args.pass_outcome or DEFAULT_PASS_OUTCOMES))
    print(f"bisect {fail_label} (fails) → {pass_label} (passes): {len(result.differences)} difference(s)")
    print(result.summary())
    if result.cause:
        print(result.to_frame().to_markdown(index=False))
    print(f"probes stored in {result.path}")
    return 0 if result.found else 1
