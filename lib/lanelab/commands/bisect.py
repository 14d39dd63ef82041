"""``python -m lanelab bisect --pass A --fail B``: the smallest difference that flips a request's verdict."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lanelab.auth.issuer import DEFAULT_LABELS, default_label
from lanelab.commands import HelpParagraphs, answers_progress, count
from lanelab.config import DEFAULT_POLICY, Settings
from lanelab.errors import InputError
from lanelab.live import confirm_cli, require_live_opt_in
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET

if TYPE_CHECKING:
    import pandas as pd

    from lanelab.walkthrough.bisect import BisectResult

NAME = "bisect"
HELP = "delta-debug between a passing and a failing request to find the smallest difference that flips it"
DESCRIPTION = (
    "--fail REQUEST and --pass REQUEST each name a profile (data/profiles), a profile file (.toml), a Hermes "
    "request_dump_*.json (what it does not record is said) or a capture file (its last inference request; --index "
    "picks another, and the command says which one it took); a first-party "
    "reference profile is never probed. Every difference between the two is listed (part, field, both values); then "
    "subsets of them are applied to the --fail request and sent, narrowing to the smallest set that gets it billed "
    "to the plan. Without LANELAB_BASE_URL an embedded simulator is started (--policy); with a simulator URL the "
    "saved credential is used when that simulator issued it, else a fresh one is minted. Live mode "
    "(LANELAB_MODE=live) needs LANELAB_LIVE_OPT_IN=1, sends the cheapest probes (max_tokens 1, no streaming) within "
    f"--budget (default {DEFAULT_LIVE_BUDGET}), and asks before sending (--yes without a terminal).\n\n"
    "Every probe is stored as a cell of a run under LANELAB_OUT/runs (--run-id, default derived from the question). "
    "Running the same command again resumes: stored probes are read back and none is sent twice. A run id that "
    "holds another experiment is never replaced: the bisect is stored under the next free name, and the command "
    "says so.\n\n"
    "Exit status: 0 a cause was found; 1 none (no flip, the budget ran out); 2 bad input."
)
#: Differences listed in full before "and N more".
SHOWN_DIFFERENCES = 60


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpParagraphs
    parser.add_argument("--fail", dest="failing", required=True, metavar="REQUEST",
                        help="the request that fails: a profile name, a profile file, a capture file "
                        "or a Hermes request_dump_*.json")
    parser.add_argument("--pass", dest="passing", required=True, metavar="REQUEST",
                        help="the request billed to the plan: a profile name, a profile file, a capture file "
                        "or a Hermes request_dump_*.json")
    parser.add_argument("--index", type=int, action="append", default=None, metavar="N",
                        help="which inference request of a capture (0 the first, -1 the last; default -1): once for "
                        "every capture, or twice (--fail's, then --pass's)")
    parser.add_argument("--strategy", default="binary", choices=("binary", "ddmin", "one_at_a_time", "exhaustive"),
                        help="how subsets are chosen (default: %(default)s, about log2(N)+1 probes per cause)")
    parser.add_argument("--budget", type=count(1), default=None, metavar="N",
                        help=f"most requests to send (default: none in sim mode, {DEFAULT_LIVE_BUDGET} live)")
    parser.add_argument("--repeats", type=count(0, 100), default=0, metavar="N",
                        help="confirm each verdict and, on disagreement, re-send up to N more times (flaky servers)")
    parser.add_argument("--pass-outcome", action="append", default=None, metavar="OUTCOME",
                        help="outcome id(s) that count as passing (repeatable; default: served_plan)")
    parser.add_argument("--policy", default=DEFAULT_POLICY, help="embedded simulator policy (default: %(default)s)")
    parser.add_argument("--credential", default=None, metavar="LABEL", help="the credential label to use (default: "
                        + ", ".join(f"{lbl} in {m} mode" for m, lbl in DEFAULT_LABELS.items()) + ")")
    parser.add_argument("--run-id", default=None, metavar="ID",
                        help="run id for the probes (default: derived from the question, so the same command resumes)")
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
    from lanelab.matrix.from_capture import indexes_for, is_capture_ref, pick_request
    from lanelab.matrix.profiles import minimal_spend
    from lanelab.walkthrough.bisect import DEFAULT_PASS_OUTCOMES, bisect_to_run
    from lanelab.walkthrough.dumps import load_request_or_dump
    from lanelab.wire.diff import diff_specs

    settings = Settings.from_env()
    live = settings.mode == "live"
    require_live_opt_in(settings, "Live bisect spends your real account")
    if args.budget is not None and args.budget < 1:
        raise InputError(f"--budget must be at least 1, not {args.budget}.")
    budget = args.budget if args.budget is not None else (DEFAULT_LIVE_BUDGET if live else None)
    label = args.credential or default_label(settings.mode)
    i_fail, i_pass = indexes_for([args.failing, args.passing], args.index, names=("--fail", "--pass"))
    fail_label, failing, fail_notes = load_request_or_dump(args.failing, args.prompt, index=i_fail)
    pass_label, passing, pass_notes = load_request_or_dump(args.passing, args.prompt, index=i_pass)
    for flag, ref, index, notes in (("--fail", args.failing, i_fail, fail_notes),
                                    ("--pass", args.passing, i_pass, pass_notes)):
        for note in notes:  # (a dump always says what it does not record)
            print(f"{flag} (a Hermes request dump): {note}")
        if is_capture_ref(ref) and not notes:
            print(f"{flag}: {pick_request(ref, index).describe(ref)}")
    if not diff_specs(failing, passing, grain="field").rows:  # (what bisect_to_run would find: one line, no run)
        raise InputError(f"{fail_label} and {pass_label} are the same request: there is no difference to bisect, "
                         "and nothing was sent.", "Pass a request that fails and a different one that passes.")
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
                               pass_outcomes=tuple(args.pass_outcome or DEFAULT_PASS_OUTCOMES), confirmed=live,
                               run_id=args.run_id, on_sent=answers_progress("probe"))
    _print_result(result, fail_label, pass_label)
    return 0 if result.found else 1


def _cut(frame: pd.DataFrame, width: int = 30) -> pd.DataFrame:
    """The table with every text cell cut to ``width`` characters, for a terminal (the run file keeps it whole)."""
    return frame.map(lambda v: v if not isinstance(v, str) or len(v) <= width else v[: width - 1] + "…")


def _print_result(result: BisectResult, fail_label: str, pass_label: str) -> None:
    """Every difference (or the first :data:`SHOWN_DIFFERENCES` and how many more), the answer, the cause, where
    the probes are."""
    every = result.differences_frame()
    print(f"bisect {fail_label} (fails) → {pass_label} (passes): {len(every)} difference(s)")
    if len(every):
        shown = every.drop(columns=["what reports say", "sources"]).head(SHOWN_DIFFERENCES)
        print(_cut(shown).to_markdown(index=False))
        if len(every) > SHOWN_DIFFERENCES:
            print(f"… and {len(every) - SHOWN_DIFFERENCES} more (every one: python -m lanelab diff {fail_label} "
                  f"{pass_label}, or the run file below).")
    print(result.summary())
    if result.cause:
        print(_cut(result.to_frame(), 40).to_markdown(index=False))
    for note in result.notes:
        print(f"note: {note}")
    print(f"probes stored in {result.path}")
