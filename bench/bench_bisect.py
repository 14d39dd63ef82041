"""Requests spent to find the cause of a flip: bisect (binary reduction) vs classic ddmin, one-factor-at-a-time and
exhaustive search, over generated cases with 4 to 64 differing fields and one or two responsible ones.

Run: ``.venv/bin/python bench/bench_bisect.py [--sim]``. Synthetic oracle by default (a planted cause among k header
edits); ``--sim`` adds a few cases in the simulator (single-underscore ``mcp_`` tool names among harmless headers).
Asserts that for a single cause bisect's mean is at most ceil(log2 k) + 2.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys

from lanelab.walkthrough.bisect import ProbeSession, _default_verdict, search

KS = (4, 8, 16, 32, 64)
STRATEGIES = ("binary", "ddmin", "one_at_a_time", "exhaustive")
#: exhaustive search over pairs gets slow in CPU (not in requests); cap the sizes it is run for
EXHAUSTIVE_MAX_K = {1: 64, 2: 64}


def run_case(k: int, causes: set[int], strategy: str) -> tuple[int, bool]:
    """Requests spent and whether the strategy named exactly the planted causes."""
    session = ProbeSession(lambda applied: causes <= applied, _default_verdict(()))
    result = search(k, session, strategy)
    return result.requests, set(result.cause) == causes


def synthetic(cases_per_k: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for ncause in (1, 2):
        for k in KS:
            cases = [set(rnd.sample(range(k), ncause)) for _ in range(cases_per_k)]
            for strategy in STRATEGIES:
                if strategy == "exhaustive" and k > EXHAUSTIVE_MAX_K[ncause]:
                    continue
                spent, right = zip(*(run_case(k, c, strategy) for c in cases))
                rows.append({"causes": ncause, "k": k, "strategy": strategy, "mean": statistics.mean(spent),
                             "worst": max(spent), "found": sum(right) / len(right)})
    return rows


def in_simulator(ks: tuple[int, ...] = (4, 16)) -> list[dict]:
    from lanelab.matrix.profiles import load_profile
    from lanelab.sim.server import running_simulator
    from lanelab.walkthrough.bisect import bisect, http_probe

    rows = []
    with running_simulator() as sim:
        probe = http_probe(sim.base_url, sim.mint_token()["access_token"])
        for k in ks:
            spent = []
            for _ in range(2):  # the tool edit always sorts last (the worst case for bisect's prefix search)
                failing, passing = load_profile("sdk-minimal").spec, load_profile("sdk-minimal").spec
                for i in range(k - 1):
                    failing.headers[f"x-lanelab-bench-{i:02d}"] = "a"
                names = ["tool0"]
                failing.body["tools"] = [{"name": "mcp_" + n, "input_schema": {"type": "object"}} for n in names]
                passing.body["tools"] = [{"name": "mcp__" + n, "input_schema": {"type": "object"}} for n in names]
                result = bisect(failing, passing, probe)
                assert [d.key for d in result.cause_differences] == ["tools[0].name"], result
                spent.append(result.requests)
            rows.append({"causes": 1, "k": k, "strategy": "binary (sim)", "mean": statistics.mean(spent),
                         "worst": max(spent), "found": 1.0})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="generated cases per (k, causes)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sim", action="store_true", help="also run a few cases in the simulator")
    args = parser.parse_args(argv)
    rows = synthetic(args.cases, args.seed) + (in_simulator() if args.sim else [])
    print(f"{'causes':>6} {'k':>4} {'strategy':<14} {'mean':>8} {'worst':>6} {'found':>6} {'bound':>6}")
    ok = True
    for r in rows:
        bound = math.ceil(math.log2(r["k"])) + 2
        print(f"{r['causes']:>6} {r['k']:>4} {r['strategy']:<14} {r['mean']:>8.2f} {r['worst']:>6} "
              f"{r['found']:>6.0%} {bound if r['causes'] == 1 else '':>6}")
        if r["causes"] == 1 and r["strategy"].startswith("binary") and r["mean"] > bound:
            ok = False
    print("single-cause bound mean <= ceil(log2 k) + 2:", "holds" if ok else "VIOLATED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
