"""Requests to a correct verdict: diagnose vs whole-field bisect vs one-factor-at-a-time, over planted causes.

The corpus: a request that differs from diagnose's own reference (the request cut down to its model, messages and
identification) in k = 4 … 64 fine-grained elements (extra headers, beta tokens, system sentences, tools, body
fields). One or two of them are planted as the cause, through an oracle that refuses the request while the cause is
present: one cause lint knows (a single-underscore ``mcp_`` tool name, the ``context-1m`` beta, the old
SKILLS_GUIDANCE sentence), one cause it does not, two causes that trip it only together, two that each trip it.

Each method starts from nothing and its count includes the request as sent:
- diagnose: :func:`lanelab.walkthrough.diagnose.diagnose` (lint first, then the fine search, the alone check and,
  for interacting causes, the partner search);
- whole-field bisect: :func:`lanelab.walkthrough.bisect.bisect` (binary) between the same two requests at field
  grain (the tools, the system prompt and the beta header are one difference each);
- one-factor-at-a-time: each fine difference applied alone until one flips the verdict.

A verdict is correct when what it names really flips the verdict and holds a planted element; exact when it names
the planted element(s) and nothing else (both of two interacting ones). Run: ``.venv/bin/python
bench/bench_diagnose.py [--cases N] [--sim]``. Exits 1 when an aim is missed (diagnose, one cause: mean at most
ceil(log2 k) + 3; lint knows the cause: 2; exact 100 %).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from lanelab.matrix.profiles import load_profile
from lanelab.walkthrough.bisect import ProbeSession, _default_verdict, bisect, search
from lanelab.walkthrough.diagnose import diagnose
from lanelab.walkthrough.items import reference_requests
from lanelab.wire.diff import MISSING, Difference, apply_differences, differences
from lanelab.wire.spec import RequestSpec

KS = (4, 8, 16, 32, 64)
KINDS = ("one, lint knows it", "one, lint does not", "two, only together", "two, each alone")
SKILLS = ("After completing a complex task (5+ tool calls), fixing a tricky error, or discovering a non-trivial "
          "workflow, save the approach as a skill with skill_manage so that it can be reused next time.")
FAIL, PASS = "extra_usage_exhausted", "served_plan"

Element = tuple[str, str]  # (kind, value): ("header", name), ("beta", token), ("sentence", text), ("tool", name), …


@dataclass
class Case:
    kind: str
    k: int
    spec: RequestSpec
    planted: set[Element]
    rule: Callable[[RequestSpec], bool]


def _elements(k: int) -> list[Element]:
    """k neutral elements spread over headers, beta tokens, sentences, tools and body fields."""
    kinds = ["header", "beta", "sentence", "tool", "body"]
    out = []
    for i in range(k):
        kind = kinds[i % len(kinds)]
        value = {"header": f"x-bench-{i:02d}", "beta": f"bench-feature-{i:02d}",
                 "sentence": f"Plain sentence number {i} says nothing in particular.", "tool": f"tool_{i:02d}",
                 "body": f"bench_field_{i:02d}"}[kind]
        out.append((kind, value))
    return out


def _build(elements: list[Element]) -> RequestSpec:
    """sdk-minimal's request with only what the reference keeps, plus the elements: k differences exactly."""
    spec = load_profile("sdk-minimal").spec
    spec.headers = {k: v for k, v in spec.headers.items() if not k.startswith("x-stainless-")}
    betas = ["oauth-2025-04-20"] + [v for kind, v in elements if kind == "beta"]
    spec.headers["anthropic-beta"] = ",".join(betas)
    spec.headers.update({v: "1" for kind, v in elements if kind == "header"})
    sentences = [v for kind, v in elements if kind == "sentence"]
    if sentences:
        spec.body["system"] = "You help with code. " + " ".join(sentences)
    tools = [v for kind, v in elements if kind == "tool"]
    if tools:
        spec.body["tools"] = [{"name": v, "input_schema": {"type": "object"}} for v in tools]
    spec.body.update({v: 1 for kind, v in elements if kind == "body"})
    return spec


def present(spec: RequestSpec, element: Element) -> bool:
    kind, value = element
    body = spec.body if isinstance(spec.body, dict) else {}
    if kind == "header":
        return value in spec.headers
    if kind == "beta":
        return value in [b.strip() for b in spec.headers.get("anthropic-beta", "").split(",")]
    if kind == "sentence":
        return value in str(body.get("system", ""))
    if kind == "tool":
        return any(t.get("name") == value for t in body.get("tools", []))
    return value in body


def _lint_known(rnd: random.Random, elements: list[Element]) -> tuple[list[Element], Element, Callable]:
    """Replace one neutral element by one lint knows; the oracle refuses while any element of its class is there."""
    choice = rnd.choice(["tool", "beta", "sentence"])
    slots = [i for i, (kind, _) in enumerate(elements) if kind == choice] or [0]
    i = rnd.choice(slots)
    if choice == "tool":
        planted: Element = ("tool", f"mcp_{elements[i][1]}")
        def rule(s: RequestSpec) -> bool:
            return any(t.get("name", "").startswith("mcp_") and not t["name"].startswith("mcp__")
                       for t in (s.body or {}).get("tools", []))
    elif choice == "beta":
        planted = ("beta", "context-1m-2025-08-07")
        def rule(s: RequestSpec) -> bool:
            return "context-1m-" in s.headers.get("anthropic-beta", "")
    else:
        planted = ("sentence", SKILLS)
        def rule(s: RequestSpec) -> bool:
            return "After completing a complex task (5+ tool calls)" in str((s.body or {}).get("system", ""))
    elements = list(elements)
    elements[i] = planted
    return elements, planted, rule


def corpus(cases_per: int, seed: int) -> list[Case]:
    rnd = random.Random(seed)
    out = []
    for kind in KINDS:
        for k in KS:
            for _ in range(cases_per):
                elements = _elements(k)
                if kind == KINDS[0]:
                    elements, planted, rule = _lint_known(rnd, elements)
                    out.append(Case(kind, k, _build(elements), {planted}, rule))
                    continue
                picked = rnd.sample(elements, 1 if kind == KINDS[1] else 2)
                if kind == KINDS[2]:
                    def rule(s: RequestSpec, p=tuple(picked)) -> bool:
                        return all(present(s, e) for e in p)
                else:
                    def rule(s: RequestSpec, p=tuple(picked)) -> bool:
                        return any(present(s, e) for e in p)
                out.append(Case(kind, k, _build(elements), set(picked), rule))
    for case in out:  # the corpus is what it says: k fine differences to diagnose's reference
        assert len(differences(case.spec, reference_requests(case.spec)[0][2], grain="fine")) == case.k
    return out


# ------------------------------------------------------------------------------------------------- naming

def named(d: Difference) -> set[Element]:
    """The elements a difference names (a whole field names none exactly)."""
    if d.part == "header" and d.loc[-1:] and isinstance(d.loc[-1], tuple):
        return {("beta", d.loc[-1][1])}
    if d.part == "header" and d.key != "anthropic-beta":
        return {("header", d.key)}
    if d.part == "system" and "sentence" in d.key:
        return {("sentence", d.a if d.a is not MISSING else d.b)}
    if d.part == "tools" and len(d.loc) == 3 and isinstance(d.a, dict):
        return {("tool", d.a.get("name"))}
    if d.part == "tools" and d.key.endswith(".name"):
        return {("tool", d.a)}
    if d.part == "body" and d.loc == ("body", d.key):
        return {("body", d.key)}
    return {("field", d.key)}


def _probe(rule: Callable[[RequestSpec], bool]) -> Callable[[RequestSpec], str]:
    return lambda spec: FAIL if rule(spec) else PASS


def run_diagnose(case: Case) -> tuple[int, bool, bool]:
    d = diagnose(case.spec, _probe(case.rule), label=case.kind)
    items = {e for c in d.cause for e in _cause_elements(case, c)}
    partners = {e for c in d.partners for e in _cause_elements(case, c)}
    found = d.status in ("lint", "found")
    correct = found and bool((items | partners) & case.planted)
    if case.kind == KINDS[2]:
        exact = found and items | partners == case.planted
    else:
        exact = found and items == case.planted and not partners
    return d.requests, correct, exact


def _cause_elements(case: Case, cause) -> set[Element]:
    if cause.lint:  # a lint fix: the elements its edits touch
        if cause.lint == "mcp-single-underscore-tools":
            return {e for e in case.planted if e[0] == "tool"}
        if cause.lint == "context-1m-beta-oauth":
            return {("beta", "context-1m-2025-08-07")}
        if cause.lint == "skills-guidance-sentence":
            return {("sentence", SKILLS)}
        return {("lint", cause.lint)}
    kind = cause.element
    for e in _elements(case.k) + list(case.planted):
        if e[1] and (e[1] == cause.before or (e[0] == "tool" and f"`{e[1]}`" in cause.what)
                     or (e[0] == "header" and kind == e[1]) or (e[0] == "beta" and kind.endswith(f": {e[1]}"))
                     or (e[0] == "body" and kind == e[1])):
            return {e}
    return {("other", kind)}


def run_whole_field(case: Case) -> tuple[int, bool, bool]:
    ref = reference_requests(case.spec)[0][2]
    result = bisect(case.spec, ref, lambda s: FAIL if case.rule(s) else PASS, strategy="binary", pass_outcomes=(PASS,))
    names = set().union(*(named(d) for d in result.cause_differences)) if result.found else set()
    correct = result.found and not case.rule(apply_differences(case.spec, result.cause_differences))
    exact = correct and names == case.planted
    return result.requests + 1, correct, exact


def run_ofat(case: Case) -> tuple[int, bool, bool]:
    ref = reference_requests(case.spec)[0][2]
    diffs = differences(case.spec, ref, grain="fine")
    session = ProbeSession(lambda applied: not case.rule(apply_differences(case.spec, [diffs[i] for i in applied])),
                           _default_verdict(()))
    result = search(len(diffs), session, "one_at_a_time")
    names = set().union(*(named(diffs[i]) for i in result.cause)) if result.found else set()
    correct = result.found and bool(names & case.planted)
    exact = correct and names == case.planted
    return result.requests + 1, correct, exact


METHODS = {"diagnose": run_diagnose, "whole-field bisect": run_whole_field, "one-factor-at-a-time": run_ofat}


def in_simulator() -> list[dict]:
    """The done-when cases against the simulator: requests spent and the verdict's first words."""
    from lanelab.sim.server import running_simulator
    from lanelab.walkthrough.bisect import http_probe

    rows = []
    for policy, name in (("2026-05-25", "hermes-0.14.0"), ("2026-08", "hermes-0.14.0"), ("2026-05-25", "hermes-0.19.0")):
        with running_simulator(policy=policy) as sim:
            probe = http_probe(sim.base_url, sim.mint_token()["access_token"])
            d = diagnose(load_profile(name).spec, probe, label=name)
        rows.append({"case": f"{name} under {policy}", "requests": d.requests, "status": d.status,
                     "verdict": d.verdict.sentence[:110] + ("…" if len(d.verdict.sentence) > 110 else "")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20, help="planted cases per (kind, k)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sim", action="store_true", help="also run the done-when cases in the simulator")
    args = parser.parse_args(argv)
    cases = corpus(args.cases, args.seed)
    print(f"{'causes':<20} {'k':>3} {'method':<21} {'mean':>6} {'worst':>5} {'correct':>8} {'exact':>6} {'aim':>5}")
    missed = []
    for kind in KINDS:
        for k in KS:
            group = [c for c in cases if c.kind == kind and c.k == k]
            for method, fn in METHODS.items():
                spent, correct, exact = zip(*(fn(c) for c in group), strict=True)
                mean = statistics.mean(spent)
                aim = ""
                if method == "diagnose" and kind == KINDS[0]:
                    aim = "2"
                elif method == "diagnose" and kind == KINDS[1]:
                    aim = str(math.ceil(math.log2(k)) + 3)
                if aim and (mean > float(aim) or sum(exact) < len(exact)):
                    missed.append(f"{kind}, k={k}: mean {mean:.2f} vs {aim}, exact {sum(exact)}/{len(exact)}")
                if method == "diagnose" and sum(exact) < len(exact):
                    missed.append(f"{kind}, k={k}: diagnose exact {sum(exact)}/{len(exact)}")
                print(f"{kind:<20} {k:>3} {method:<21} {mean:>6.2f} {max(spent):>5} {sum(correct) / len(group):>7.0%} "
                      f"{sum(exact) / len(group):>6.0%} {aim:>5}")
    if args.sim:
        print()
        for row in in_simulator():
            print(f"{row['case']:<30} {row['requests']:>3} request(s)  {row['status']:<6} {row['verdict']}")
    print()
    print("aims met" if not missed else "aims missed:\n  " + "\n  ".join(dict.fromkeys(missed)))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
