"""The runner: retries honouring retry-after, the budget guard, the concurrency bound, resume, and the done criterion."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter

import httpx
import pytest
from lanelab import redact
from lanelab.config import Settings
from lanelab.errors import BudgetExceeded, LiveNotOptedIn
from lanelab.matrix.budget import Budget, BudgetGuard, estimate_tokens
from lanelab.matrix.plan import MatrixPlan, PlannedCell
from lanelab.matrix.runner import RunnerError, RunOptions, run_matrix
from lanelab.matrix.sender import RetryPolicy, run_sync
from lanelab.matrix.sim_client import sim_token
from lanelab.matrix.tokens import TokenSource
from lanelab.runs import load_run
from lanelab.sim.server import SimHandle
from lanelab.wire.spec import Observation, RequestSpec

TOKEN = "sk-ant-oat01-" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3" * 2
BASE = "http://127.0.0.1:9"  # never contacted: tests with a MockTransport client


def cells(n: int, path: str = "/v1/messages") -> list[PlannedCell]:
    return [PlannedCell(cell_id=f"{i:012x}", profile="p", levels={"n": str(i)},
                        spec=RequestSpec(path=path, body={"model": "m", "max_tokens": 1,
                                                          "messages": [{"role": "user", "content": "hi"}]}))
            for i in range(n)]


def settings(tmp_path, **kw) -> Settings:
    return Settings(mode=kw.pop("mode", "sim"), base_url=BASE, home=tmp_path / "home", out=tmp_path / "out", **kw)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"type": "message", "content": []}, headers={"request-id": "req_1"})


def run(tmp_path, planned, handler, **kw):
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    kw.setdefault("progress", False)
    return run_matrix(planned, profile="p", design="test", settings=kw.pop("settings", settings(tmp_path)),
                      token=TOKEN, credential="t", client=client, **kw)


# ------------------------------------------------------------------------------------------------ retries
def test_retries_honour_retry_after_and_retry_after_ms(tmp_path, sleeps):
    script = [httpx.Response(429, headers={"retry-after": "7"},
                             json={"type": "error", "error": {"type": "rate_limit_error",
                                                              "message": "Number of requests exceeded your rate limit"}}),
              httpx.Response(529, headers={"retry-after-ms": "1500", "retry-after": "9"},
                             json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
              ok(None)]
    sleep = sleeps()
    result = run(tmp_path, cells(1), lambda r: script.pop(0), sleep=sleep,
                 retry=RetryPolicy(max_attempts=5, max_delay=10))
    assert sleep.delays == [7.0, 1.5]
    rec = load_run(result.path).cells["000000000000"]
    assert rec["observation"]["attempts"] == 3 and rec["outcome"] == "served_no_lane"
    assert [r["status"] for r in rec["retries"]] == [429, 529]
    assert result.requests == 3 and result.sent == 1 and result.failed == 0


def test_backoff_without_retry_after_is_exponential_jittered_and_capped():
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=5.0, jitter=0.5)
    rng = random.Random(3)
    delays = [policy.delay(Observation(status=500), a, rng) for a in range(1, 6)]
    for attempt, d in enumerate(delays, start=1):
        raw = 2 ** (attempt - 1)
        assert min(5.0, raw) <= d <= min(5.0, raw * 1.5)
    assert delays[-1] == 5.0
    assert policy.delay(Observation(status=500), 10, rng) is None


def test_a_retry_after_beyond_the_cap_is_not_retried(tmp_path, sleeps):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(429, headers={"retry-after": "3600"},
                              json={"type": "error", "error": {"type": "rate_limit_error", "message": "Error"}})
    sleep = sleeps()
    result = run(tmp_path, cells(1), handler, sleep=sleep, retry=RetryPolicy(max_delay=60))
    assert len(calls) == 1 and sleep.delays == [] and result.failed == 1


@pytest.mark.parametrize("status,message", [
    (400, "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."),
    (400, "Third-party apps now draw from your extra usage, not your plan limits."),
    (401, "OAuth authentication is currently not supported."),
    (403, "OAuth token does not meet scope requirement user:profile"),
    (429, "This request would exceed your account's monthly spend limit. Please try again later."),
])
def test_verdicts_are_not_retried(tmp_path, status, message, sleeps):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(status, json={"type": "error", "error": {"type": "x", "message": message}})
    sleep = sleeps()
    result = run(tmp_path, cells(1), handler, sleep=sleep)
    assert len(calls) == 1 and sleep.delays == [] and result.failed == 0


def test_transport_errors_are_retried_then_recorded(tmp_path, sleeps):
    def handler(request):
        raise httpx.ConnectError("connection refused")
    sleep = sleeps()
    result = run(tmp_path, cells(1), handler, sleep=sleep, retry=RetryPolicy(max_attempts=3), rng=random.Random(0))
    assert len(sleep.delays) == 2 and sleep.delays[1] > sleep.delays[0]
    rec = load_run(result.path).cells["000000000000"]
    assert rec["outcome"] == "transport_error" and rec["observation"]["attempts"] == 3
    assert result.failed == 1


# ------------------------------------------------------------------------------------------------ budget
def test_budget_refuses_a_plan_that_exceeds_it_and_names_the_numbers(tmp_path):
    calls = []
    with pytest.raises(BudgetExceeded) as info:
        run(tmp_path, cells(5), lambda r: calls.append(1) or ok(r), budget=Budget(max_requests=4))
    assert "5 inference requests" in str(info.value) and "limit of 4" in str(info.value)
    assert "budget" in str(info.value).lower() and calls == []
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").iterdir())


def test_budget_stops_exactly_at_its_limit_counting_retries(tmp_path, sleeps):
    sent = []

    def handler(request):
        sent.append(1)
        if len(sent) <= 2:  # the first two sends are transient failures, retried
            return httpx.Response(500, json={"type": "error", "error": {"type": "api_error", "message": "x"}})
        return ok(request)
    result = run(tmp_path, cells(5), handler, budget=Budget(max_requests=5), sleep=sleeps(), concurrency=1)
    assert len(sent) == 5 == result.requests
    assert result.spend.requests == 5 and result.not_sent == 2 and result.sent == 3
    assert "5/5" in result.budget_report
    assert len(load_run(result.path).cells) == 3


def test_token_budget_counts_estimates():
    spec = cells(1)[0].spec
    cost = estimate_tokens(spec)
    assert cost == len(json.dumps(spec.body)) // 4 + 1
    guard = BudgetGuard(Budget(max_tokens=2 * cost))
    assert guard.reserve(spec) and guard.reserve(spec) and not guard.reserve(spec)
    assert guard.spent.requests == 2 and guard.spent.refused == 1
    assert estimate_tokens(RequestSpec(method="GET", path="/v1/models")) == 0


def test_live_mode_needs_opt_in_and_a_budget(tmp_path):
    with pytest.raises(LiveNotOptedIn, match="opt-in"):
        run(tmp_path, cells(1), ok, settings=settings(tmp_path, mode="live"))
    with pytest.raises(RunnerError, match="budget"):
        run(tmp_path, cells(1), ok, settings=settings(tmp_path, mode="live", live_opt_in=True))


# ------------------------------------------------------------------------------------------------ concurrency
@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_bound_is_respected(tmp_path, limit):
    state = {"now": 0, "peak": 0}

    async def handler(request):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.005)
        state["now"] -= 1
        return ok(request)
    result = run(tmp_path, cells(12), handler, concurrency=limit)
    assert state["peak"] == limit and result.sent == 12


@pytest.mark.parametrize("durable", [True, False])
def test_a_slot_is_held_until_the_record_is_stored(tmp_path, monkeypatch, durable):
    """A kill can leave at most `concurrency` cells sent but unrecorded: a slow store holds back the next sends.
    Durable (fsync'd on the writer thread, live mode's default): the other slot keeps sending meanwhile, so the
    bound is reached. Not durable (written on the event loop, the simulator's default): the write holds the loop."""
    import time

    from lanelab.runs import RunWriter

    state = {"sent": 0, "stored": 0, "unrecorded": 0, "synced": []}
    store = RunWriter.append_lines

    def slow_store(self, lines, sync=True):
        time.sleep(0.01)
        store(self, lines, sync)
        cells = sum(line.startswith(b'{"record": "cell"') for line in lines)
        state["stored"] += cells
        if cells:
            state["synced"].append(sync)

    def handler(request):
        state["sent"] += 1
        state["unrecorded"] = max(state["unrecorded"], state["sent"] - state["stored"])
        return ok(request)
    monkeypatch.setattr(RunWriter, "append_lines", slow_store)
    result = run(tmp_path, cells(10), handler, concurrency=2, durable=durable)
    assert result.sent == 10 and state["unrecorded"] == (2 if durable else 1)
    assert set(state["synced"]) == {durable}
    assert len(load_run(result.path).cells) == 10


def test_run_sync_works_inside_a_running_event_loop():
    async def inner():
        return run_sync(lambda: asyncio.sleep(0, result=42))
    assert asyncio.run(inner()) == 42


@pytest.mark.parametrize("inside_a_loop", [False, True])
def test_a_run_reads_each_data_file_once_so_an_edit_during_it_applies_to_the_next_run(tmp_path, monkeypatch,
                                                                                      inside_a_loop):
    import shutil

    from lanelab.config import data_dir

    data = tmp_path / "data"
    shutil.copytree(data_dir(), data)
    monkeypatch.setenv("LANELAB_DATA", str(data))
    sent = []

    def handler(request):
        sent.append(request)
        if len(sent) == 2:  # after the first cell was read: the lane table and the taxonomy break
            (data / "lanes.toml").write_text("not = [toml\n")
            (data / "outcomes.toml").write_text("not = [toml\n")
        return httpx.Response(400, json={"type": "error", "error": {
            "type": "invalid_request_error", "message": "You're out of extra usage. Add more at claude.ai/settings/usage "
                                                        "and keep going."}},
                              headers={"anthropic-ratelimit-unified-status": "rejected"})

    def go():
        return run(tmp_path, cells(4), handler, concurrency=1)

    if inside_a_loop:  # as in a notebook: the run goes to a worker thread, and its data files with it
        async def in_loop():
            return go()
        result = asyncio.run(in_loop())
    else:
        result = go()
    assert result.sent == 4 and set(result.outcomes) == {"extra_usage_exhausted"}
    with pytest.raises(Exception, match="lanes.toml|outcomes.toml"):  # the next run reads the edited files
        go()


# ------------------------------------------------------------------------------------------------ secrets
def test_the_token_goes_out_but_never_into_the_run_file(tmp_path):
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"type": "error", "error": {"type": "authentication_error",
                                                                    "message": f"Invalid bearer token {TOKEN}"}})
    result = run(tmp_path, cells(1), handler)
    assert seen == [f"Bearer {TOKEN}"]
    text = result.path.read_text()
    assert TOKEN not in text and redact.mask(TOKEN) in text


def test_a_token_is_never_sent_to_a_foreign_host(tmp_path):
    s = Settings(mode="sim", base_url=None, home=tmp_path, out=tmp_path)
    with pytest.raises(RunnerError, match="Refusing"):
        run_matrix(cells(1), profile="p", design="d", settings=s, base_url="https://evil.example.com",
                   token=TOKEN, credential="t", progress=False)


# ------------------------------------------------------------------------------------------------ the simulator
@pytest.fixture
def sim_url(sim: SimHandle) -> str:
    """The base URL of the session's simulator (reset, default policy)."""
    return sim.base_url


def request_log(url: str) -> list[dict]:
    return httpx.get(url + "/_sim/requests").json()


def ofat_from_hermes():
    plan = MatrixPlan.build("hermes-0.14.0", "ofat", None, Settings(mode="sim"))
    assert "credential" not in plan.factors and plan.cells[0].cell_id == plan.baseline_cell_id
    return plan.planned(), plan.factors


def test_done_criterion_ofat_from_hermes_finds_flips_and_the_rerun_sends_nothing(tmp_path, sim_url):
    planned, factors = ofat_from_hermes()
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "h", out=tmp_path / "o")
    token = sim_token(sim_url)
    httpx.delete(sim_url + "/_sim/requests")
    first = run_matrix(planned, profile="hermes-0.14.0", design="ofat", factors=factors, settings=s, token=token,
                       credential="sim-pkce", progress=False, concurrency=4)
    assert first.policy == "2026-05-25" and first.sent == len(planned) and first.resumed == 0
    run = load_run(first.path)
    assert run.header["policy"] == "2026-05-25" and run.header["profile"] == "hermes-0.14.0"
    baseline = next(c for c in run.cells.values() if c["cell_id"] == planned[0].cell_id)
    assert baseline["outcome"] == "extra_usage_exhausted" and baseline["observation"]["status"] == 400
    flips = [c for c in run.cells.values() if c["outcome"] == "served_plan" and c["lane"] == "plan"]
    assert flips, Counter(c["outcome"] for c in run.cells.values())
    assert all(c["observation"]["status"] == 200 for c in flips)
    sent_first = len(request_log(sim_url))
    assert sent_first == first.requests >= len(planned)

    again = run_matrix(planned, profile="hermes-0.14.0", design="ofat", factors=factors, settings=s, token=token,
                       credential="sim-pkce", progress=False)
    assert again.run_id == first.run_id
    assert again.sent == 0 and again.resumed == len(planned) and again.requests == 0
    assert len(request_log(sim_url)) == sent_first


def test_an_interrupted_run_resumes_only_the_missing_cells(tmp_path, sim_url):
    planned, _factors = ofat_from_hermes()
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "h", out=tmp_path / "o")
    token = sim_token(sim_url)
    part = run_matrix(planned[:3], profile="hermes-0.14.0", design="ofat", run_id="interrupted", settings=s,
                      token=token, progress=False)
    httpx.delete(sim_url + "/_sim/requests")
    rest = run_matrix(planned, profile="hermes-0.14.0", design="ofat", run_id="interrupted", settings=s,
                      token=token, progress=False)
    assert part.sent == 3 and rest.resumed == 3 and rest.sent == len(planned) - 3
    assert len(httpx.get(sim_url + "/_sim/requests").json()) == len(planned) - 3
    assert len(load_run(rest.path).cells) == len(planned)


def test_live_minimal_spend_caps_max_tokens_and_stops_streaming():
    plan = MatrixPlan.build("hermes-0.14.0", "ofat", ["x_app"], Settings(mode="live"))
    bodies = [p.spec.body for p in plan.planned()]
    assert all(b["max_tokens"] == 1 and not b.get("stream") for b in bodies)
    assert MatrixPlan.build("hermes-0.14.0", "ofat", ["x_app"], Settings(mode="sim")).planned()[0].spec.body[
        "max_tokens"] > 1


def test_unknown_factor_is_a_user_error():
    with pytest.raises(RunnerError, match="Choose from"):
        MatrixPlan.build("hermes-0.14.0", "ofat", ["nope"], Settings(mode="sim"))


@pytest.mark.parametrize("issued,why", [
    (("sim", "http://127.0.0.1:1"), "was issued by another simulator session"),
    (("sim", None), "was issued by another simulator session"),  # this simulator's address, restarted since
    (("live", "https://platform.claude.com"), "is a live credential, never sent to the simulator"),
    ((None, None), "does not record who issued it"),
])
def test_token_source_mints_instead_of_a_saved_credential_this_simulator_did_not_issue(tmp_path, sim_url, issued,
                                                                                        why):
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CredentialStore
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "home", out=tmp_path / "out")
    stale = "sk-ant-oat01-" + "Q" * 36 + "Wxyz"
    mode, issuer = issued
    CredentialStore(s.home).save(Credential(label="sim-pkce", access_token=stale, scopes=("user:inference",),
                                            mode=mode, issuer=issuer or (sim_url if mode else None)))
    httpx.delete(sim_url + "/_sim/requests")
    source = TokenSource(s, sim_url, "sim-pkce")
    token = source("sim-pkce")
    assert token != stale and why in source.where and "minted a fresh pkce token" in source.where
    assert source("sim-pkce") == token
    sent = [r["headers"].get("authorization", "") for r in request_log(sim_url)]
    assert mode == "sim" and issuer is None or not any(a.endswith("Wxyz") for a in sent), \
        "a credential the simulator did not issue is never sent there (only probed when it claims to be its own)"


def test_token_source_uses_a_saved_credential_this_simulator_issued(tmp_path, sim_url):
    from lanelab.auth.credential import Credential
    from lanelab.auth.store import CredentialStore
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "home", out=tmp_path / "out")
    minted = sim_token(sim_url)
    CredentialStore(s.home).save(Credential(label="sim-pkce", access_token=minted, mode="sim", issuer=sim_url))
    source = TokenSource(s, sim_url, "sim-pkce")
    assert source("sim-pkce") == minted and source.where == "credential 'sim-pkce' from the kit's store"


def test_token_source_in_live_mode_refuses_a_simulator_credential_and_names_the_live_one(tmp_path):
    from lanelab.auth.credential import Credential
    from lanelab.auth.issuer import WrongIssuer
    from lanelab.auth.store import CredentialStore
    s = Settings(mode="live", base_url="https://api.anthropic.com", home=tmp_path / "home", out=tmp_path / "out",
                 live_opt_in=True)
    store = CredentialStore(s.home)
    store.save(Credential(label="sim-pkce", access_token="sk-ant-oat01-" + "S" * 40, mode="sim",
                          issuer="http://127.0.0.1:5555"))
    store.save(Credential(label="live-pkce", access_token=TOKEN, mode="live", issuer="https://platform.claude.com"))
    with pytest.raises(WrongIssuer) as info:
        TokenSource(s, s.base_url, "sim-pkce").token()
    assert "'sim-pkce'" in str(info.value) and "'live-pkce'" in str(info.value)
    assert "api.anthropic.com" in str(info.value) and "S" * 20 not in str(info.value)
    source = TokenSource(s, s.base_url, "live-pkce")
    assert source.token() == TOKEN and redact.mask(TOKEN) in source.where and TOKEN not in source.where
    assert TokenSource(s, s.base_url, "live-pkce").masked() == redact.mask(TOKEN)


def test_usage_snapshots_before_and_after_are_stored_and_reported(tmp_path, sim):
    from lanelab.findings.frame import usage_snapshots

    token = sim.mint_token()["access_token"]
    settings = Settings(mode="sim", base_url=sim.base_url, out=tmp_path, home=tmp_path / "home")
    plan = MatrixPlan.build("sdk-minimal", "ofat", ["tools"], settings)
    result = plan.run(settings=settings, token=token, credential="t", progress=False, usage_snapshots=True)
    again = plan.run(settings=settings, token=token, credential="t", progress=False, usage_snapshots=True)
    snaps = usage_snapshots(load_run(result.path))
    five = snaps[snaps["field"] == "five_hour.utilization"].iloc[0]
    assert five["after"] > five["before"], "served cells moved the plan's 5-hour window"
    assert again.sent == 0 and again.path == result.path
    assert sum(1 for line in result.path.read_text().splitlines() if '"record": "usage"' in line) == 2, \
        "a resume with nothing to send probes nothing"


# ------------------------------------------------------------------------------------------------ the notebook API
def test_plan_run_looks_the_credential_up_itself_and_says_where_it_came_from(tmp_path, sim_url):
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "home", out=tmp_path / "out")
    plan = MatrixPlan.build("sdk-minimal", "ofat", ["tools"], s)
    httpx.delete(sim_url + "/_sim/requests")
    result = plan.run(credential="sim-pkce", progress=False)
    assert "minted a fresh pkce token" in result.credential_note and result.sent == len(plan.cells)
    sent = request_log(sim_url)
    bearer = {r["headers"].get("authorization", "") for r in sent if r["path"] == "/v1/messages"}
    assert len(bearer) == 1 and next(iter(bearer)).startswith("Bearer "), "every cell carried the one minted token"
    assert load_run(result.path).header["credentials"] == ["sim-pkce"]
    frame = result.to_frame()
    assert dict(zip(frame["outcome"], frame["cells"], strict=True)) == dict(result.outcomes)
    assert frame["cells"].sum() == result.sent


def test_plan_run_takes_a_budget_as_a_number_and_refuses_before_sending(tmp_path):
    calls = []
    s = settings(tmp_path)
    plan = MatrixPlan.build("sdk-minimal", "ofat", ["tools"], s)
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: calls.append(1) or ok(r)))
    with pytest.raises(BudgetExceeded, match=f"{len(plan.cells)} inference requests against a limit of 1"):
        plan.run(credential="t", budget=1, token=TOKEN, client=client, progress=False)
    assert calls == []
    result = plan.run(credential="t", budget=len(plan.cells), token=TOKEN, client=client, progress=False)
    assert result.spend.requests == len(calls) == len(plan.cells) and result.credential_note is None


def test_run_options_refuse_a_keyword_that_is_not_an_option(tmp_path):
    plan = MatrixPlan.build("sdk-minimal", "ofat", ["tools"], settings(tmp_path))
    with pytest.raises(TypeError, match="concurency"):
        plan.run(credential="t", token=TOKEN, concurency=2)
    assert RunOptions().with_(concurrency=2).concurrency == 2 and RunOptions().with_() == RunOptions()


@pytest.mark.parametrize("durable", [True, False])
def test_what_a_run_fsyncs(tmp_path, monkeypatch, durable):
    """Durable: every cell's line is fsync'd before its slot is freed (groups of lines may share one fsync). Not
    durable: the lines are written at once and the run's closing note fsyncs them all. Either way the file holds
    every cell, and nothing written is left unsynced when the run returns."""
    import os

    from lanelab.runs import RunWriter

    log: list[str] = []
    real_fsync, real_store = os.fsync, RunWriter.append_lines

    def store(self, lines, sync=True):
        log.extend("cell" if line.startswith(b'{"record": "cell"') else "other" for line in lines)
        real_store(self, lines, sync)

    def fsync(fd):
        log.append("fsync")
        real_fsync(fd)
    monkeypatch.setattr(RunWriter, "append_lines", store)
    monkeypatch.setattr(os, "fsync", fsync)
    result = run(tmp_path, cells(6), ok, concurrency=3, durable=durable)
    assert len(load_run(result.path).cells) == 6
    assert log[-1] == "fsync", "the run ends synced"
    assert log.count("cell") == 6
    # what directly follows each group of cell lines: their own fsync (durable), or the next write (not durable)
    after_cells = [log[i + 1] for i, entry in enumerate(log[:-1]) if entry == "cell" and log[i + 1] != "cell"]
    if durable:
        assert set(after_cells) == {"fsync"}
    else:
        assert after_cells and "fsync" not in after_cells


def test_a_group_commit_writes_what_waited_in_one_append_and_fails_a_group_together():
    """Lines that arrive while an fsync runs go out together; a failed write fails every line of its group (none is
    on disk) and the next group is tried again."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from lanelab.matrix.sender import GroupCommit

    class Writer:
        def __init__(self):
            self.appends: list[list[bytes]] = []
            self.release = threading.Event()
            self.fail_next = False

        def append_lines(self, lines, sync=True):
            self.release.wait(5)
            if self.fail_next:
                self.fail_next = False
                raise OSError(28, "No space left on device")
            self.appends.append(list(lines))

    async def scenario(writer, io):
        commit = GroupCommit(writer, io)
        first = asyncio.ensure_future(commit.put(b"a\n"))
        await asyncio.sleep(0.05)  # "a" is being written; these wait for the next group
        rest = [asyncio.ensure_future(commit.put(x)) for x in (b"b\n", b"c\n", b"d\n")]
        await asyncio.sleep(0.05)
        writer.release.set()
        await asyncio.gather(first, *rest)
        writer.release.clear()
        writer.fail_next = True
        failing = [asyncio.ensure_future(commit.put(x)) for x in (b"e\n", b"f\n")]
        await asyncio.sleep(0.05)
        writer.release.set()
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        await commit.put(b"g\n")
        return commit.groups, outcomes

    writer = Writer()
    with ThreadPoolExecutor(max_workers=1) as io:
        groups, outcomes = asyncio.run(scenario(writer, io))
    assert writer.appends == [[b"a\n"], [b"b\n", b"c\n", b"d\n"], [b"g\n"]]
    assert groups == 3
    assert [type(o) for o in outcomes] == [OSError, OSError]


@pytest.mark.parametrize("pasted", [TOKEN, "Qm7" * 30], ids=["anthropic-token", "opaque-token"])
def test_a_token_passed_where_the_credential_label_goes_is_refused_unquoted_before_anything_is_written(
        tmp_path, sim: SimHandle, pasted):
    from lanelab.auth.credential import InvalidLabel

    plan = MatrixPlan.build("sdk-minimal", "ofat", ["stream"],
                            Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home", out=tmp_path / "out"))
    with pytest.raises(InvalidLabel) as caught:
        plan.run(credential=pasted, run_id="pasted", progress=False)
    message = str(caught.value)
    assert "looks like a token" in message and pasted[13:33] not in message and pasted[-8:] not in message
    assert redact.redact_text(f"echoed: {pasted}") != f"echoed: {pasted}"  # registered: masked wherever it shows
    assert not list(tmp_path.rglob("pasted*")) and not sim.state.requests()  # nothing written, nothing sent


def test_a_run_id_holding_another_experiment_is_left_alone_and_the_run_goes_to_the_next_free_id(tmp_path, sim_url):
    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "h", out=tmp_path / "o")
    first = MatrixPlan.build("hermes-0.14.0", "ofat", ["tools"], s).run(credential="sim-pkce", run_id="shared",
                                                                      progress=False)
    kept = first.path.read_bytes()
    other = MatrixPlan.build("pi-0.73.1", "full", ["auth", "stream"], s)
    moved = other.run(credential="sim-pkce", run_id="shared", progress=False)
    assert first.path.read_bytes() == kept  # the first experiment is as it was: nothing appended, nothing replaced
    assert moved.run_id == "shared-2" and moved.path.name == "shared-2.jsonl" and moved.sent == len(other.cells)
    assert any("already holds another experiment (hermes-0.14.0, ofat over tools" in w and "'shared-2'" in w
               for w in moved.warnings), moved.warnings
    assert "'shared-2'" in moved.summary() and load_run(moved.path).header["run_id"] == "shared-2"
    again = other.run(credential="sim-pkce", run_id="shared", progress=False)  # the same question: it resumes
    assert again.path == moved.path and again.resumed == len(other.cells) and again.sent == 0
    assert sorted(p.name for p in (tmp_path / "o" / "runs").iterdir()) == ["shared-2.jsonl", "shared.jsonl"]


@pytest.mark.parametrize("option,value,says", [
    ("concurrency", "4", "concurrency takes a whole number of 1 or more; found str"),
    ("concurrency", 0, "concurrency takes a whole number of 1 or more; found 0"),
    ("budget", "10", "A budget is a number of requests (1 or more) or a Budget; found str"),
    ("budget", 1.5, "found float"),
    ("budget", True, "found bool"),
    ("budget", -3, "max_requests is a whole number of 1 or more (or None: no cap); found -3"),
    ("run_id", 5, "run_id takes text"),
    ("progress", "no", "progress takes True or False"),
    ("concurency", 2, "No run option named concurency"),
])
def test_a_run_option_of_the_wrong_name_type_or_range_is_refused_before_anything_is_written(tmp_path, sim_url, option,
                                                                                           value, says):
    from lanelab.matrix.errors import InvalidOption

    plan = MatrixPlan.build("sdk-minimal", "ofat", ["stream"],
                            Settings(mode="sim", base_url=sim_url, home=tmp_path / "h", out=tmp_path / "o"))
    with pytest.raises(InvalidOption, match=re.escape(says)) as caught:
        plan.run(credential="sim-pkce", **{"progress": False, option: value})
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)  # as Python's own would be
    assert not (tmp_path / "o").exists()  # no run file, not even a header


def test_a_plan_takes_one_name_as_a_string_and_refuses_arguments_of_the_wrong_type(tmp_path):
    from lanelab.matrix.errors import InvalidOption

    s = settings(tmp_path)
    one = MatrixPlan.build("hermes-0.14.0", "ofat", "tools", s, levels={"tools": "none"})
    assert one.factors == ["tools"] and {c.levels["tools"] for c in one.cells} <= {"none", one.catalog["tools"].baseline}
    assert one.cells == MatrixPlan.build("hermes-0.14.0", "ofat", ["tools"], s, levels={"tools": ["none"]}).cells
    for args, says in [((None,), "profile is a profile name or a Profile; found NoneType"),
                       ((42,), "found int"),
                       (("hermes-0.14.0", "ofat", ["tools"], "sim"), "settings takes a lanelab.config.Settings"),
                       (("hermes-0.14.0", "ofat", 7, s), "factors takes a list of names; found int")]:
        with pytest.raises(InvalidOption, match=re.escape(says)):
            MatrixPlan.build(*args)
    # an empty selection plans nothing but the request as sent: said, not silently a one-cell plan
    with pytest.raises(InvalidOption, match=re.escape("No level named for tools")):
        MatrixPlan.build("hermes-0.14.0", "ofat", None, s, levels={"tools": []})
    with pytest.raises(InvalidOption, match="The credential factor needs the labels to compare"):
        MatrixPlan.build("hermes-0.14.0", "ofat", ["credential"], s)
    assert len(MatrixPlan.build("hermes-0.14.0", "ofat", ["credential"], s, credential_labels=["a", "b"]).cells) > 1


def test_the_objects_a_notebook_shows_have_a_readable_one_line_repr(tmp_path, sim_url):
    from IPython.lib.pretty import pretty
    from lanelab.findings import report

    s = Settings(mode="sim", base_url=sim_url, home=tmp_path / "h", out=tmp_path / "o")
    plan = MatrixPlan.build("hermes-0.14.0", "ofat", ["tools"], s)
    result = plan.run(credential="sim-pkce", run_id="shown", progress=False)
    run = load_run(result.path)
    findings = report.collect(run)
    source = TokenSource(s, sim_url, "sim-pkce")
    shown = {
        "plan": (repr(plan), f"<MatrixPlan hermes-0.14.0, ofat over tools: {len(plan.cells)} cells, sim>"),
        "result": (repr(result), f"<RunResult shown: {result.sent} sent, 0 resumed, 0 failed, 0 not sent>"),
        "run": (repr(run), f"<Run shown (hermes-0.14.0, ofat, sim, 2026-05-25): {len(plan.cells)} cells; "),
        "findings": (repr(findings), f"<Findings of 1 run(s), {len(plan.cells)} matrix request(s): "),
        "token source": (repr(source), f"<TokenSource 'sim-pkce' for {sim_url}: not looked up yet>"),
    }
    for name, (text, starts) in shown.items():
        assert text.startswith(starts) and len(text) < 400 and "\n" not in text, (name, text)
    assert pretty(result) == result.summary()  # a result on a cell's last line shows its report
    token = source.token()
    assert token[-12:] not in repr(source) and ("minted" in repr(source) or "store" in repr(source))
