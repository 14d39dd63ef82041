"""Bisect finds planted causes (single, needed together, each sufficient), keeps its budget, survives flaky servers."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest
from lanelab.cli import main
from lanelab.config import Settings
from lanelab.matrix.profiles import load_profile
from lanelab.runs import RunWriter, load_run, make_header
from lanelab.walkthrough.bisect import (
    ALREADY_PASSES,
    BUDGET,
    FOUND,
    NO_FLIP,
    ProbeSession,
    _default_verdict,
    bisect,
    bisect_run_id,
    bisect_to_run,
    http_probe,
    search,
)
from lanelab.wire.diff import MISSING
from lanelab.wire.spec import RequestSpec


def planted(k: int, causes: set[int], together: bool = True) -> tuple[RequestSpec, RequestSpec, callable]:
    """Specs differing in k headers, and an oracle: the failing value of a cause header makes the request fail.

    together=True: every cause must be fixed to pass (each alone is enough to fail);
    together=False: the request fails only while all causes keep their failing value (fixing any one passes).
    """
    failing = RequestSpec(headers={f"h{i:02d}": "bad" for i in range(k)}, body={"model": "m"})
    passing = RequestSpec(headers={f"h{i:02d}": "good" for i in range(k)}, body={"model": "m"})
    sent: list[RequestSpec] = []

    def probe(spec: RequestSpec) -> bool:
        sent.append(spec)
        fixed = [spec.headers[f"h{i:02d}"] == "good" for i in sorted(causes)]
        return all(fixed) if together else any(fixed)
    probe.sent = sent  # type: ignore[attr-defined]
    return failing, passing, probe


@pytest.mark.parametrize("k", [1, 2, 4, 7, 16, 64])
def test_single_cause_found_within_log_bound(k: int) -> None:
    for cause in {0, k // 2, k - 1}:
        failing, passing, probe = planted(k, {cause})
        result = bisect(failing, passing, probe)
        assert result.status == FOUND
        assert [d.key for d in result.cause_differences] == [f"h{cause:02d}"]
        assert result.requests == len(probe.sent) <= math.ceil(math.log2(k)) + 2


@pytest.mark.parametrize("pair", [(0, 1), (2, 13), (0, 15)])
def test_causes_needed_together_come_out_as_a_pair(pair: tuple[int, int]) -> None:
    failing, passing, probe = planted(16, set(pair))
    result = bisect(failing, passing, probe)
    assert result.status == FOUND
    assert sorted(d.key for d in result.cause_differences) == [f"h{i:02d}" for i in pair]
    from lanelab.wire.diff import apply_differences
    for drop in result.cause_differences:  # 1-minimal: dropping either edit no longer flips
        rest = [d for d in result.cause_differences if d is not drop]
        assert not probe(apply_differences(failing, rest))
    assert probe(apply_differences(failing, result.cause_differences))


def test_each_sufficient_cause_gives_one_edit() -> None:
    failing, passing, probe = planted(16, {3, 11}, together=False)
    result = bisect(failing, passing, probe)
    assert result.status == FOUND and len(result.cause) == 1
    assert result.cause_differences[0].key in ("h03", "h11")


def test_result_is_one_minimal_for_every_small_case() -> None:
    for k in range(1, 7):
        for size in (1, 2, 3):
            for causes in itertools.combinations(range(k), size):
                failing, passing, probe = planted(k, set(causes))
                result = bisect(failing, passing, probe)
                assert sorted(result.cause) == sorted(causes)


def test_other_strategies_agree_on_a_single_cause() -> None:
    for strategy in ("ddmin", "one_at_a_time", "exhaustive"):
        failing, passing, probe = planted(8, {5})
        result = bisect(failing, passing, probe, strategy=strategy)
        assert [d.key for d in result.cause_differences] == ["h05"], strategy
    failing, passing, probe = planted(6, {1, 4})
    assert bisect(failing, passing, probe, strategy="one_at_a_time").status == "not_isolated"
    failing, passing, probe = planted(6, {1, 4})
    assert bisect(failing, passing, probe, strategy="ddmin").cause == [1, 4]


def test_budget_is_respected_and_reported() -> None:
    failing, passing, probe = planted(64, {1, 40})
    result = bisect(failing, passing, probe, budget=5)
    assert result.status == BUDGET
    assert result.requests == len(probe.sent) == 5
    assert {1, 40} <= set(result.suspects) and len(result.suspects) < 64
    assert "budget ran out" in result.summary()


def test_ends_are_checked() -> None:
    failing, passing, _ = planted(8, {2})
    assert bisect(failing, passing, lambda s: True).status == ALREADY_PASSES
    assert bisect(failing, passing, lambda s: False).status == NO_FLIP
    failing, passing, probe = planted(8, {2})
    result = bisect(failing, passing, probe, check_ends=True)
    assert result.found and result.ends_confirmed
    failing, passing, probe = planted(8, {2})
    cheap = bisect(failing, passing, probe, known_outcomes=(False, True))
    assert cheap.cause == [2] and cheap.requests < result.requests


def test_flaky_server_handled_by_repeats() -> None:
    """A server that answers wrongly on every third request: repeats with a majority vote still find the cause."""
    k, cause = 32, 21
    counter = itertools.count(1)

    def flaky(spec: RequestSpec) -> bool:
        truth = spec.headers[f"h{cause:02d}"] == "good"
        return (not truth) if next(counter) % 3 == 0 else truth
    failing, passing, _ = planted(k, {cause})
    naive = bisect(failing, passing, flaky)
    counter = itertools.count(1)
    robust = bisect(failing, passing, flaky, repeats=2)
    assert robust.cause == [cause]
    assert naive.cause != [cause]  # without repeats the lie misleads the search
    assert any(p.requests > 2 for p in robust.probes)  # disagreements were settled by extra sends


def test_transient_outcomes_are_retried() -> None:
    answers = iter(["overloaded", "served_plan"] * 100)
    failing, passing, _ = planted(1, {0})
    seen = []

    def probe(spec: RequestSpec) -> str:
        if spec.headers["h00"] == "good":
            seen.append(1)
            return next(answers)
        return "third_party_extra_usage"
    result = bisect(failing, passing, probe)
    assert result.found and result.cause == [0]
    retried = [p for p in result.probes if p.outcomes == ["overloaded", "served_plan"]]
    assert retried and retried[0].verdict == "pass"
    no_retry = bisect(failing, passing, lambda s: "overloaded" if s.headers["h00"] == "good" else "x",
                      retries_unclear=0)
    # every difference applied stays unclear: the failing request alone is probed too (does it pass as it is?)
    assert no_retry.status == NO_FLIP and no_retry.requests == 2


def test_attestation_edits_are_never_applied() -> None:
    block = {"type": "text", "text": "x-anthropic-billing-header: test-fixture;"}
    failing = RequestSpec(headers={"h": "bad"}, body={"system": [{"type": "text", "text": "hi"}]})
    passing = RequestSpec(headers={"h": "good"}, body={"system": [block, {"type": "text", "text": "hi"}]})
    sent: list[RequestSpec] = []

    def probe(spec: RequestSpec) -> bool:
        sent.append(spec)
        return spec.headers["h"] == "good"
    result = bisect(failing, passing, probe)
    assert result.found and [d.key for d in result.cause_differences] == ["h"]
    assert len(result.excluded) == 1 and "attestation" in result.summary()
    assert all("x-anthropic-billing-header" not in json.dumps(s.body) for s in sent)


def _mcp_pair(extra: int, names_fail: list[str], names_pass: list[str]) -> tuple[RequestSpec, RequestSpec]:
    base = load_profile("sdk-minimal").spec
    failing, passing = base.copy(), base.copy()
    for i in range(extra):
        failing.headers[f"x-lanelab-probe-{i}"] = "a"
    schema = {"type": "object", "properties": {}}
    failing.body["tools"] = [{"name": n, "description": "d", "input_schema": schema} for n in names_fail]
    passing.body["tools"] = [{"name": n, "description": "d", "input_schema": schema} for n in names_pass]
    return failing, passing


def test_single_mcp_cause_in_the_simulator(sim, tmp_path) -> None:
    failing, passing = _mcp_pair(6, ["Bash", "mcp_read_file"], ["Bash", "mcp__read_file"])
    token = sim.mint_token()["access_token"]
    writer = RunWriter(tmp_path / "b.jsonl", make_header("b", mode="sim", host=sim.base_url, policy="2026-05-25",
                                                          profile="t", design="bisect", factors=[], credentials=[]))
    result = bisect(failing, passing, http_probe(sim.base_url, token), store=writer, profile="t")
    assert result.status == FOUND
    assert [d.key for d in result.cause_differences] == ["tools[1].name"]
    assert result.requests <= math.ceil(math.log2(7)) + 2
    cells = load_run(tmp_path / "b.jsonl").cells
    assert len(cells) == result.requests
    assert {c["outcome"] for c in cells.values()} >= {"served_plan"}
    assert token not in (tmp_path / "b.jsonl").read_text()


def test_paired_mcp_cause_in_the_simulator(sim) -> None:
    failing, passing = _mcp_pair(3, ["mcp_a", "Bash", "mcp_b"], ["mcp__a", "Bash", "mcp__b"])
    result = bisect(failing, passing, http_probe(sim.base_url, sim.mint_token()["access_token"]))
    assert sorted(d.key for d in result.cause_differences) == ["tools[0].name", "tools[2].name"]


def test_cli_bisect_and_diff_run(sim, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LANELAB_BASE_URL", sim.base_url)
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path))
    assert main(["bisect", "--pass", "sdk-minimal", "--fail", "hermes-0.14.0"]) == 0
    out = capsys.readouterr().out
    assert "smallest difference" in out and "tools" in out
    tables = [line for line in out.splitlines() if line.startswith("|")]  # cells cut for a terminal (were 430 wide)
    assert tables and max(map(len, tables)) <= 180 and any("…" in line for line in tables)
    assert list((tmp_path / "runs").glob("bisect_*.jsonl"))
    assert main(["diff", "hermes-0.14.0", "sdk-minimal"]) == 0
    assert "user-agent" in capsys.readouterr().out
    assert main(["bisect", "--pass", "no-such-profile", "--fail", "hermes-0.14.0"]) == 2
    assert "No profile named" in capsys.readouterr().err
    before = sorted((tmp_path / "runs").iterdir())
    assert main(["bisect", "--pass", "hermes-0.14.0", "--fail", "hermes-0.14.0"]) == 2  # bad input: one line
    captured = capsys.readouterr()
    assert "are the same request: there is no difference to bisect, and nothing was sent" in captured.err
    assert "credential:" not in captured.out and sorted((tmp_path / "runs").iterdir()) == before  # no run file


def test_cli_diff_and_bisect_read_a_hermes_request_dump(sim, tmp_path, monkeypatch, capsys) -> None:
    """A Hermes request dump is a request as lint and diagnose --dump read it, for diff and bisect too: with what
    the dump does not record said, not refused as a capture holding nothing."""
    from pathlib import Path

    dump = Path(__file__).parent / "fixtures" / "request_dump_20260525_101500_fake01_20260525_101512_345678.json"
    monkeypatch.setenv("LANELAB_BASE_URL", sim.base_url)
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path))
    assert main(["diff", str(dump), "sdk-minimal"]) == 0
    out = capsys.readouterr().out
    assert "A (a Hermes request dump): The dump's URL says /chat/completions" in out
    assert f"difference(s) between {dump.name} and sdk-minimal" in out
    assert main(["bisect", "--fail", str(dump), "--pass", "sdk-minimal"]) == 0
    out = capsys.readouterr().out
    assert "--fail (a Hermes request dump): A dump does not record the auth header style" in out
    assert "smallest difference" in out and "mcp_" in out
    assert main(["diff", str(dump), "sdk-minimal", "--index", "0"]) == 2
    assert "is a Hermes request dump, which holds one request" in capsys.readouterr().err


def test_bisect_to_run_stores_every_probe_in_a_run(sim, tmp_path) -> None:
    from lanelab.config import Settings

    failing, passing = _mcp_pair(4, ["Bash", "mcp_read_file"], ["Bash", "mcp__read_file"])
    token = sim.mint_token()["access_token"]
    settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out")
    first = bisect_to_run(failing, passing, sim.base_url, token, settings=settings, failing_label="hermes x",
                          passing_label="sdk/min", credential="sim-pkce", policy="2026-05-25")
    assert first.status == FOUND and [d.key for d in first.cause_differences] == ["tools[1].name"]
    assert first.path.parent == settings.runs_dir and first.path.name.startswith("bisect_hermes-x_vs_sdk-min_")
    run = load_run(first.path)
    assert run.header["design"] == "bisect" and run.header["profile"] == "hermes x"
    assert run.header["passing"] == "sdk/min" and run.header["credentials"] == ["sim-pkce"]
    assert run.header["host"] == sim.base_url and run.header["policy"] == "2026-05-25"
    assert first.path.stem == bisect_run_id("hermes x", "sdk/min", sim.base_url, question=run.header["question"])
    assert len(run.cells) == first.requests and {c["credential"] for c in run.cells.values()} == {"sim-pkce"}
    assert token not in first.path.read_text()


def test_a_rerun_resumes_and_sends_no_probe_twice(sim, tmp_path) -> None:
    from lanelab.config import Settings

    failing, passing = _mcp_pair(8, ["Bash", "mcp_read_file"], ["Bash", "mcp__read_file"])
    token = sim.mint_token()["access_token"]
    settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out")
    kw = {"settings": settings, "failing_label": "f", "passing_label": "p", "credential": "sim-pkce"}

    def sent() -> int:
        return sum(1 for e in sim.state.requests() if e["path"].startswith("/v1/messages"))
    cut = bisect_to_run(failing, passing, sim.base_url, token, budget=2, **kw)  # stopped by its budget
    assert cut.status == BUDGET and cut.requests == 2 and sent() == 2
    before = sent()
    done = bisect_to_run(failing, passing, sim.base_url, token, **kw)
    assert done.path == cut.path, "the same question resumes the same run"
    assert done.status == FOUND and [d.key for d in done.cause_differences] == ["tools[1].name"]
    assert done.reused == 2 and sent() - before == done.requests, "the two stored probes were not sent again"
    assert "read back from the earlier run" in done.summary()
    again_before = sent()
    again = bisect_to_run(failing, passing, sim.base_url, token, **kw)
    assert again.requests == 0 and sent() == again_before and again.reused == done.reused + done.requests
    assert again.cause == done.cause
    run = load_run(again.path)
    assert run.path.read_text().count('"record": "header"') == 1
    assert len(run.of_kind("cell")) == cut.requests + done.requests, "every probe stored once"
    assert [n["event"] for n in run.of_kind("note")].count("resumed") == 2


def test_a_run_id_holding_another_experiment_is_never_replaced(sim, tmp_path) -> None:
    from lanelab.config import Settings

    failing, passing = _mcp_pair(4, ["Bash", "mcp_read_file"], ["Bash", "mcp__read_file"])
    token = sim.mint_token()["access_token"]
    settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out")
    first = bisect_to_run(failing, passing, sim.base_url, token, settings=settings, run_id="fixed", budget=1,
                          check_ends=True)
    assert first.status == BUDGET and first.path == settings.runs_dir / "fixed.jsonl" and not first.notes
    kept = first.path.read_bytes()
    other = _mcp_pair(4, ["mcp_a", "Bash"], ["mcp__a", "Bash"])
    second = bisect_to_run(*other, sim.base_url, token, settings=settings, run_id="fixed", budget=1)
    assert second.path == settings.runs_dir / "fixed-2.jsonl" and first.path.read_bytes() == kept
    assert second.notes and "fixed-2" in second.notes[0] and "left as it is" in second.notes[0]
    matrix = settings.runs_dir / "m.jsonl"
    matrix.write_text(json.dumps(make_header("m", mode="sim", host=None, policy=None, profile="x", design="ofat",
                                             factors=[], credentials=[])) + "\n")
    third = bisect_to_run(failing, passing, sim.base_url, token, settings=settings, run_id="m", budget=1)
    assert third.path.name == "m-2.jsonl" and load_run(matrix).header["design"] == "ofat"


def test_tester_never_exceeds_budget_with_repeats() -> None:
    tester = ProbeSession(lambda s: "overloaded", _default_verdict(("served_plan",)), budget=7, repeats=3,
                    retries_unclear=5)
    result = search(10, tester)
    assert result.status == BUDGET and tester.requests == 7
    assert MISSING is not None


@pytest.mark.parametrize("options,says", [
    ({"strategy": "linear"}, "Unknown strategy 'linear'"),
    ({"grain": "ultra"}, "Unknown grain 'ultra'"),
    ({"budget": 0}, "found 0"),
    ({"budget": "5"}, "found str"),
    ({"stratgy": "binary"}, "No bisect option named stratgy"),
    ({"pass_outcomes": ["served_plan", "nosuch"]}, "Unknown outcome(s) to count as passing: nosuch."),
])
def test_a_bisect_option_of_the_wrong_name_or_value_is_refused_before_any_file_or_request(tmp_path, options, says):
    from lanelab.matrix.errors import InvalidOption

    settings = Settings(mode="sim", base_url="http://127.0.0.1:9", home=tmp_path / "home", out=tmp_path / "out")
    failing = RequestSpec(body={"model": "m", "max_tokens": 1, "messages": []})
    passing = RequestSpec(body={"model": "m", "max_tokens": 2, "messages": []})
    with pytest.raises(InvalidOption, match=re.escape(says)):
        bisect_to_run(failing, passing, "http://127.0.0.1:9", None, settings=settings, policy="2026-05-25",
                      run_id="refused", **options)
    assert not (tmp_path / "out").exists()


def test_a_bisect_result_shows_in_a_notebook_as_html_with_its_probes() -> None:
    failing = RequestSpec(body={"model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "mcp_a"}]})
    passing = RequestSpec(body={"model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "mcp__a"}]})
    result = bisect(failing, passing,
                    lambda s: "served_plan" if s.body["tools"][0]["name"] == "mcp__a" else "extra_usage_exhausted")
    shown = result._repr_html_()
    assert shown.startswith("<p><b>bisect (binary):</b> the smallest difference") and "&lt;" not in shown
    assert "<table" in shown and "tools[0].name" in shown


def test_two_identical_requests_are_said_to_be_the_same_not_a_flaky_server() -> None:
    spec = RequestSpec(body={"model": "m", "max_tokens": 1, "messages": []})
    sent = []
    result = bisect(spec, spec.copy(), lambda s: sent.append(s) or "extra_usage_exhausted")
    assert result.status == NO_FLIP and not sent
    assert result.summary().startswith("the two requests are the same (no difference to apply): nothing to bisect")


def test_each_probe_sent_is_told_as_it_comes_and_a_terminal_gets_a_line_each(sim, tmp_path, monkeypatch) -> None:
    """bisect_to_run tells ``on_sent`` every answer as it comes (none for a probe read back from the run), and the
    commands' callback prints one line per answer on a terminal only."""
    import io

    from lanelab import commands

    failing, passing = _mcp_pair(4, ["Bash", "mcp_read_file"], ["Bash", "mcp__read_file"])
    settings = Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out")
    told: list = []
    first = bisect_to_run(failing, passing, sim.base_url, sim.mint_token()["access_token"], settings=settings,
                          on_sent=told.append)
    assert len(told) == first.requests > 0 and {o.status for o in told} <= {200, 400}
    again: list = []
    second = bisect_to_run(failing, passing, sim.base_url, sim.mint_token()["access_token"], settings=settings,
                           on_sent=again.append)
    assert second.reused and len(again) == second.requests  # read back from the run: not sent, not told

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stderr, lines in ((Terminal(), 2), (io.StringIO(), 0)):
        monkeypatch.setattr("sys.stderr", stderr)
        callback = commands.answers_progress("probe")
        for obs in told[:2]:
            callback(obs)
        printed = stderr.getvalue().splitlines()
        assert len(printed) == lines
        if lines:
            assert printed[0].startswith("probe 1: HTTP ") and printed[1].startswith("probe 2: HTTP ")


def test_swapped_requests_are_said_to_be_swapped_not_a_flaky_server() -> None:
    """--fail names the request that passes and --pass the one that fails: the search sees every difference applied
    fail, probes the failing request as it is, finds it passing and says so (it used to end "did not flip …, or a
    flaky server"); when both fail, the summary says how each ended."""
    failing, passing, _ = planted(4, {1})
    oracle = lambda s: "served_plan" if s.headers["h01"] == "good" else "extra_usage_exhausted"
    swapped = bisect(passing, failing, oracle)
    assert swapped.status == ALREADY_PASSES and swapped.probes[-1].applied == () and swapped.requests <= 4
    assert "are --fail and --pass the right way round?" in swapped.summary()
    both = bisect(failing, passing, lambda s: "extra_usage_exhausted")
    assert both.status == NO_FLIP
    assert both.summary().startswith("applying every difference did not flip the verdict (the passing request may "
                                     "fail now, or a flaky server): the failing request unchanged ended "
                                     "extra_usage_exhausted and the passing one ended extra_usage_exhausted")
