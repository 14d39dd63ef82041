"""diagnose: the verdict in a sentence for a handful of requests, against the simulator and planted causes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from lanelab import http as lanelab_http
from lanelab import redact
from lanelab.cli import main as cli_main
from lanelab.config import Settings
from lanelab.errors import BudgetExceeded, LiveNotOptedIn
from lanelab.findings.remedies import load_remedies
from lanelab.matrix.profiles import ReferenceOnlyProfile, list_profiles, load_profile
from lanelab.runs import load_run
from lanelab.walkthrough.bisect import binary_worst_case, http_probe
from lanelab.walkthrough.capture import running_capture
from lanelab.walkthrough.diagnose import DESIGN, diagnose, live_gate, load_source, plan_requests, run_diagnose
from lanelab.walkthrough.items import apply_items, lint_items, reference_requests
from lanelab.walkthrough.lint import lint, lint_file
from lanelab.wire.diff import MISSING, differences
from lanelab.wire.spec import RequestSpec, build_request

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
HERMES_IDENTITY = "You are Claude Code, an intelligent AI assistant created by Anthropic."
SKILLS = ("After completing a complex task (5+ tool calls), fixing a tricky error, or discovering a non-trivial "
          "workflow, save the approach as a skill with skill_manage so that it can be reused next time.")


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(mode=kw.pop("mode", "sim"), out=tmp_path / "out", home=tmp_path / "home", **kw)


# ------------------------------------------------------------------------------------------------- done-when cases

def test_hermes_0_14_under_2026_05_25_names_the_mcp_prefix_and_the_mcp__fix(tmp_path):
    d = run_diagnose(profile="hermes-0.14.0", policy="2026-05-25", settings=_settings(tmp_path))
    assert d.requests <= 4 and d.requests == 2
    assert d.status == "lint" and d.verdict.conclusive
    s = d.verdict.sentence
    assert s.startswith("16 tool names use the single-underscore `mcp_` prefix; the same request with `mcp__`")
    assert "is billed to the plan (2 requests confirm it)" in s
    assert "Without changing the client: enable extra usage" in d.verdict.remedy  # running prose, as findings say it
    assert d.verdict.remedy.endswith("; or use Anthropic's own clients.")
    assert [x.outcome for x in d.sent] == ["extra_usage_exhausted", "served_plan"]
    assert d.cause[0].lint == "mcp-single-underscore-tools"
    # the 16 tools listed whole, as many as fit, then how many more: never one cut in the middle
    for listed in (d.cause[0].before, d.cause[0].after):
        shown, _, more = listed.partition("; … and ")
        assert more.endswith(" more") and len(shown.split("; ")) + int(more.split()[0]) == 16, listed
        assert all(part.startswith("tools[") and ": " in part for part in shown.split("; ")), listed
    # the run: design diagnose, one cell per request, the verdict as a note the findings report reads
    run = load_run(d.run_path)
    assert run.header["design"] == DESIGN and len(run.cells) == 2
    note = next(n for n in run.of_kind("note") if "verdict" in n)
    assert note["verdict"]["sentence"] == s and note["verdict"]["requests"] == 2
    assert set(note["verdict"]["cells"]) == {x.cell_id for x in d.sent}
    assert not any("An earlier diagnosis" in n for n in d.notes)
    again = run_diagnose(profile="hermes-0.14.0", policy="2026-05-25", settings=_settings(tmp_path))
    assert again.run_path != d.run_path and d.run_path.exists()  # a new run beside the earlier one, said so
    assert any(n.startswith(f"An earlier diagnosis of this request is kept in {d.run_path.name}; this one sent its "
                            f"requests anew, as {again.run_path.name}") for n in again.notes)
    # the short report, redacted, verdict first
    report = d.report_path.read_text()
    assert report.splitlines()[2] == f"**{s}**" and "## Remedies" in report
    assert "API credits" in report and "not Claude Code" in report


def test_lint_on_a_capture_of_the_same_request_names_it_with_no_request(tmp_path, sim):
    capture = tmp_path / "hermes.jsonl"
    spec = load_profile("hermes-0.14.0").spec
    with running_capture(sim.base_url, capture) as proxy:
        token = sim.mint_token()["access_token"]
        with lanelab_http.client(proxy.base_url) as http:
            http.send(build_request(spec, proxy.base_url, token)).read()
        deadline = time.monotonic() + 10
        while not proxy.exchanges() and time.monotonic() < deadline:  # the record lands just after the reply
            time.sleep(0.02)
        before = len(sim.state.requests())
        result = lint_file(capture)
        assert len(sim.state.requests()) == before  # lint sent nothing
    finding = result.find("mcp-single-underscore-tools")
    assert finding is not None and len(finding.elements) == 16 and result.exit_code == 1
    assert "mcp__" in finding.fix_text()
    # and diagnose reads the same capture
    d = run_diagnose(capture=capture, policy="2026-05-25", settings=_settings(tmp_path))
    assert d.status == "lint" and d.requests == 2 and "`mcp__`" in d.verdict.sentence


def test_2026_08_names_the_sentences_not_system(tmp_path):
    d = run_diagnose(profile="hermes-0.14.0", policy="2026-08", settings=_settings(tmp_path))
    assert d.verdict.conclusive
    assert f"`{HERMES_IDENTITY}`" in d.verdict.sentence
    assert "`After completing a complex task (5+ tool calls)" in d.verdict.sentence
    assert {c.lint for c in d.cause} == {"mcp-single-underscore-tools", "memory-session-search-tools",
                                        "hermes-identity-block", "skills-guidance-sentence"}


def test_2026_08_fine_search_without_lint_names_the_sentence(tmp_path, sim_with):
    """A request whose only trigger under 2026-08 is the Hermes identity sentence, found by the fine search."""
    spec = load_profile("sdk-minimal").spec
    spec.headers.update({"user-agent": "claude-cli/2.1.74 (external, cli)", "x-app": "cli",
                         "x-stainless-retry-count": "0"})
    spec.body["system"] = [{"type": "text", "text": IDENTITY},
                           {"type": "text", "text": f"Be brief. {HERMES_IDENTITY} Use tools well.\n\nAnswer in "
                                                    "English."}]
    spec.body["tools"] = [{"name": n, "input_schema": {"type": "object"}} for n in ("read", "write", "grep")]
    spec.body["tool_choice"] = {"type": "auto"}
    sim = sim_with(policy="2026-08")
    probe = http_probe(sim.base_url, sim.mint_token()["access_token"])
    d = diagnose(spec, probe, label="hermes-like", use_lint=False)
    assert d.status == "found"
    assert len(d.cause) == 1 and d.cause[0].element == "system[1] sentence 2"
    assert d.cause[0].before == HERMES_IDENTITY
    assert d.verdict.sentence.startswith(f"The system sentence `{HERMES_IDENTITY}` (system[1] sentence 2) keeps the "
                                         "request off the plan")
    assert "`system`" not in d.verdict.sentence
    assert "without that sentence is billed to the plan" in d.verdict.sentence
    k = len(differences(spec, reference_requests(spec)[0][2], grain="fine"))
    assert d.requests <= 1 + binary_worst_case(k, 1) + 1  # as sent + the search + the alone check


# ------------------------------------------------------------------------------------------------- planted causes

def _planted(k: int) -> RequestSpec:
    spec = load_profile("sdk-minimal").spec
    spec.headers.update({f"x-bench-{i}": "v" for i in range(k // 3)})
    spec.body["system"] = " ".join(f"Plain sentence number {i} says little." for i in range(k // 3))
    spec.body["tools"] = [{"name": f"tool_{i:02d}", "input_schema": {"type": "object"}}
                          for i in range(k - 2 * (k // 3))]
    return spec


def _oracle(rule):
    def probe(spec: RequestSpec) -> str:
        return "extra_usage_exhausted" if rule(spec) else "served_plan"
    return probe


def _has_tool(spec: RequestSpec, name: str) -> bool:
    return any(t.get("name") == name for t in (spec.body or {}).get("tools", []))


def _has_sentence(spec: RequestSpec, n: int) -> bool:
    return f"Plain sentence number {n} says" in str((spec.body or {}).get("system", ""))


def test_one_planted_cause_is_named_exactly_within_the_bound():
    spec = _planted(24)
    k = len(differences(spec, reference_requests(spec)[0][2], grain="fine"))
    for rule, element in ((lambda s: _has_tool(s, "tool_05"), "tools[5]"),
                          (lambda s: _has_sentence(s, 3), "system sentence 4"),
                          (lambda s: "x-bench-6" in s.headers, "x-bench-6")):
        d = diagnose(spec, _oracle(rule), use_lint=False)
        assert d.status == "found" and [c.element for c in d.cause] == [element] and not d.partners
        assert d.requests <= 1 + binary_worst_case(k, 1) + 1, d.requests


def test_interacting_causes_are_named_together():
    spec = _planted(24)
    both = diagnose(spec, _oracle(lambda s: _has_tool(s, "tool_02") and _has_sentence(s, 5)), use_lint=False)
    named = {c.element for c in both.cause} | {p.element for p in both.partners}
    assert both.status == "found" and named == {"tools[2]", "system sentence 6"}
    assert len(both.cause) == 1 and "together with" in both.verdict.sentence
    either = diagnose(spec, _oracle(lambda s: _has_tool(s, "tool_02") or "x-bench-1" in s.headers), use_lint=False)
    assert {c.element for c in either.cause} == {"tools[2]", "x-bench-1"} and not either.partners
    assert "2 elements together keep the request off the plan, each needed" in either.verdict.sentence


def test_lint_known_cause_costs_two_requests():
    spec = _planted(16)
    spec.body["tools"][3]["name"] = "mcp_thing"
    d = diagnose(spec, _oracle(lambda s: any(re.match(r"^mcp_(?!_)", t["name"]) for t in s.body.get("tools", []))))
    assert d.requests == 2 and d.status == "lint" and "`mcp__` instead of `mcp_`" in d.verdict.sentence
    shown = d._repr_html_()  # in a notebook, code is shown as code, as the report shows it
    assert "<code>mcp__</code> instead of <code>mcp_</code>" in shown and "`" not in shown
    assert shown.startswith("<p><b>") and "&lt;" not in shown  # HTML, not escaped HTML


def test_no_reference_on_the_plan_is_said_plainly_with_remedies():
    spec = _planted(8)
    d = diagnose(spec, _oracle(lambda s: True), use_lint=False)
    assert d.status == "no_reference" and not d.verdict.conclusive
    assert "no request built from its own elements by removal is billed to the plan" in d.verdict.sentence
    assert any("API credits" in r for r in d.verdict.remedies)
    assert not any(r.startswith("Fix the request") for r in d.verdict.remedies)


def test_budget_stops_the_search_and_says_where_the_cause_is():
    spec = _planted(32)
    d = diagnose(spec, _oracle(lambda s: _has_tool(s, "tool_07")), use_lint=False, budget=3)
    assert d.requests == 3 and d.status == "budget" and not d.verdict.conclusive
    assert "budget ran out" in d.verdict.sentence


def test_two_credentials_say_whether_the_source_matters():
    spec = _planted(8)
    same = diagnose(spec, _oracle(lambda s: False), credential="a", first_source="lanelab:pkce",
                    second=("b", "claude_code", _oracle(lambda s: False)))
    assert not same.credential_check.matters and "does not matter" in same.credential_check.sentence()
    differ = diagnose(spec, _oracle(lambda s: False), credential="a",
                      second=("b", "claude_code", _oracle(lambda s: True)))
    assert differ.credential_check.matters and "matters here" in differ.credential_check.sentence()
    assert [x.credential for x in differ.sent] == ["a", "b"]


# ------------------------------------------------------------------------------------------------- responsible use

def test_the_claude_code_profile_is_refused(tmp_path):
    with pytest.raises(ReferenceOnlyProfile):
        run_diagnose(profile="claude-code-2.1.332", settings=_settings(tmp_path))
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize("name", [n for n in list_profiles() if not load_profile(n).reference_only])
def test_references_only_remove_what_the_client_sends(name):
    spec = load_profile(name).spec
    for _, _, ref in reference_requests(spec):
        for key, value in ref.headers.items():
            if key == "anthropic-beta":
                assert set(value.split(",")) <= set(spec.headers[key].split(","))
            else:
                assert spec.headers.get(key) == value
        for d in differences(spec, ref, grain="fine"):
            assert d.b is MISSING or d.part == "request", d  # every difference removes (auth: Bearer only)
        text = json.dumps(ref.body)
        assert "x-anthropic-billing-header" not in text
        assert ("Claude Code" not in text) or ("Claude Code" in json.dumps(spec.body))


def test_lint_fixes_never_add_first_party_identification():
    for name in ("hermes-0.14.0", "hermes-0.19.0", "pi-0.73.1", "openclaw-2026.9.6"):
        spec = load_profile(name).spec
        for item in lint_items(spec, lint(spec)):
            fixed = apply_items(spec, [item])
            assert fixed.headers.get("user-agent") == spec.headers.get("user-agent")
            added = [d for d in differences(spec, fixed, grain="fine") if d.a is MISSING]
            assert all(d.b == "oauth-2025-04-20" for d in added), added


def test_live_needs_the_opt_in_and_a_budget_that_covers_the_worst_case(tmp_path):
    def never(_label):
        raise AssertionError("no credential may be looked up before the budget check")

    with pytest.raises(LiveNotOptedIn):
        run_diagnose(profile="hermes-0.14.0", live=True, budget=500, settings=_settings(tmp_path), token_for=never)
    live = _settings(tmp_path, live_opt_in=True)
    with pytest.raises(BudgetExceeded, match="needs a budget"):
        run_diagnose(profile="hermes-0.14.0", live=True, settings=live, token_for=never)
    worst = plan_requests(load_profile("hermes-0.14.0").spec, lint(load_profile("hermes-0.14.0").spec)).worst
    with pytest.raises(BudgetExceeded, match=f"up to {worst} requests"):
        run_diagnose(profile="hermes-0.14.0", live=True, budget=worst - 1, settings=live, token_for=never)
    assert not (tmp_path / "out" / "runs").exists()


def test_the_notebook_gate_refuses_a_budget_below_the_worst_case_before_the_credential_is_looked_up(tmp_path):
    # no credential is stored: a lookup would fail with another error, so the budget is checked first
    from lanelab.matrix.profiles import minimal_spend

    live = _settings(tmp_path, mode="live", live_opt_in=True, base_url="https://api.anthropic.com")
    source = load_source(profile="hermes-0.14.0")
    worst = plan_requests(minimal_spend(source.spec), lint(source.lint_input)).worst
    with pytest.raises(BudgetExceeded, match="needs a budget"):
        live_gate(profile="hermes-0.14.0", settings=live, confirmed=True)
    with pytest.raises(BudgetExceeded, match=f"up to {worst} requests.*budget of {worst - 1}.*BUDGET = {worst}"):
        live_gate(profile="hermes-0.14.0", budget=worst - 1, settings=live, confirmed=True)
    assert not live_gate(profile="hermes-0.14.0", settings=_settings(tmp_path), budget=1).needed, "sim: no gate"


def test_nothing_secret_reaches_the_run_or_the_report(tmp_path):
    d = run_diagnose(profile="hermes-0.14.0", policy="2026-05-25", settings=_settings(tmp_path))
    for path in (d.run_path, d.report_path):
        text = path.read_text()
        assert not redact.find_secrets(text) and not re.search(r"sk-ant-oat01-[A-Za-z0-9_-]{12,}", text)


def test_remedies_are_data_with_sources():
    remedies = load_remedies()
    assert [r.id for r in remedies][:1] == ["fix"] and all(r.source and r.caveat for r in remedies)
    api = next(r for r in remedies if r.id == "api_key")
    assert "not Claude Code" in api.caveat and "references/autumn-2026.md §2.6" in api.source


# ------------------------------------------------------------------------------------------------- the CLI

def test_cli_prints_the_verdict_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANELAB_BASE_URL", raising=False)
    monkeypatch.delenv("LANELAB_MODE", raising=False)
    assert cli_main(["diagnose", "--profile", "hermes-0.14.0", "--policy", "2026-05-25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("16 tool names use the single-underscore `mcp_` prefix")
    assert "Remedies:" in out and "spent 2 request(s)" in out
    table = out.split("Requests:\n")[1].split("\n\n")[0].splitlines()  # one column under each heading
    assert len(table) == 4 and table[0].startswith("|   # | step") and len({len(row) for row in table}) == 1
    assert cli_main(["diagnose", "--profile", "claude-code-2.1.332"]) == 2
    assert cli_main(["diagnose", "--profile", "no-such-profile"]) == 2
    err = capsys.readouterr().err
    assert "first-party reference" in err and "No profile named" in err and "Traceback" not in err


def test_cli_dry_run_sends_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.delenv("LANELAB_BASE_URL", raising=False)
    assert cli_main(["diagnose", "--profile", "hermes-0.14.0", "--live", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Responsible use" in out and "nothing was sent" in out and "POST https://api.anthropic.com/v1/messages" in out
    assert not (tmp_path / "out" / "runs").exists()


def test_a_diagnose_run_is_found_by_a_client_of_the_sdk(tmp_path, sim):
    """The run's cells hold the requests as sent: the SDK-shaped sdk-minimal is billed to the plan as sent."""
    import anthropic  # here: importing the SDK costs seconds, which the other tests should not pay

    token = sim.mint_token()["access_token"]
    client = anthropic.Anthropic(auth_token=token, base_url=sim.base_url, max_retries=0,
                                 default_headers={"anthropic-beta": "oauth-2025-04-20"},
                                 http_client=lanelab_http.sdk_client(sim.base_url))
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=1,
                                  messages=[{"role": "user", "content": "ping"}]).usage.output_tokens >= 0
    d = diagnose(load_profile("sdk-minimal").spec, http_probe(sim.base_url, token), label="sdk-minimal")
    assert d.status == "plan" and d.requests == 1 and "billed to the plan as sent" in d.verdict.sentence


def test_binary_worst_case_bounds_the_search():
    import random

    from lanelab.walkthrough.bisect import ProbeSession, _default_verdict, search

    rnd = random.Random(5)
    tight = 0
    for _ in range(400):
        n = rnd.randint(1, 70)
        causes = set(rnd.sample(range(n), rnd.randint(1, min(3, n))))
        session = ProbeSession(lambda applied, c=causes: c <= applied, _default_verdict(()))
        result = search(n, session, "binary")
        assert set(result.cause) == causes
        assert result.requests <= binary_worst_case(n, len(causes))
        tight += result.requests == binary_worst_case(n, len(causes))
    assert tight  # the bound is reached, not just respected


@pytest.mark.parametrize("budget,says", [(-1, "found -1"), (0, "found 0"), ("3", "found str"), (2.5, "found float")])
def test_a_diagnose_budget_that_is_not_a_number_of_requests_is_refused_before_any_file(tmp_path, budget, says):
    from lanelab.matrix.errors import InvalidOption

    with pytest.raises(InvalidOption, match=re.escape(says)):
        run_diagnose(profile="hermes-0.14.0", policy="2026-05-25", settings=_settings(tmp_path), budget=budget)
    assert not list(tmp_path.rglob("*.jsonl"))


def test_diagnose_takes_its_credential_labels_as_one_string_too(tmp_path):
    d = run_diagnose(profile="hermes-0.14.0", policy="2026-05-25", settings=_settings(tmp_path),
                     credentials="sim-pkce")
    assert d.verdict.sentence and load_run(d.run_path).header["credentials"] == ["sim-pkce"]


@pytest.mark.parametrize("budget,tries,said", [(1, 1, "after 1 try, all the budget allowed"), (None, 2, "after 2 tries")])
def test_a_transient_answer_with_no_budget_left_to_retry_is_unclear_and_counted_not_nothing_sent(budget, tries, said):
    """The request as sent came back 429: with a budget of 1 there is no second try. It was sent: the diagnosis says
    the answer is unclear after the tries it made (it used to say "nothing was sent")."""
    sent = []

    def probe(spec: RequestSpec) -> str:
        sent.append(spec)
        return "rate_limited"

    spec = RequestSpec(body={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user",
                                                                                         "content": "hi"}]})
    d = diagnose(spec, probe, label="client", use_lint=False, budget=budget)
    assert d.status == "unclear" and len(sent) == tries and said in d.verdict.sentence, d.verdict.sentence
