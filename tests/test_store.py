"""The run store: round trip, torn last line, redaction refusal, resume bookkeeping, the tidy table, errors."""

from __future__ import annotations

import json

import pytest
from fast_loop import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.errors import InputError, NotFound
from lanelab.runs import (
    DEFAULT_LEVEL,
    RunWriter,
    completed_cells,
    derive_run_id,
    load_run,
    load_runs,
    make_header,
    run_path,
    run_paths,
    tidy,
)
from lanelab.wire.spec import Observation, RequestSpec

TOKEN = "sk-ant-oat01-" + "A1b2C3d4E5f6G7h8I9j0" * 3


def header(run_id="r1"):
    return make_header(run_id, mode="sim", host="http://127.0.0.1:1", policy="2026-05-25", profile="hermes-0.14.0",
                       design="ofat", factors=["auth", "credential"], credentials=["sim-pkce"])


def write_cell(w: RunWriter, cell_id: str, outcome: str = "served_plan", levels=None, **obs):
    w.cell(cell_id=cell_id, profile="hermes-0.14.0", levels=levels or {"auth": "bearer"}, credential="sim-pkce",
           spec=RequestSpec(headers={"x-app": "cli"}).to_dict(), observation=Observation(status=200, **obs).to_dict(),
           outcome=outcome, lane="plan", rule="served_plan")


def test_round_trip(tmp_path):
    path = run_path(tmp_path, "r1")
    w = RunWriter(path, header())
    write_cell(w, "aaa", request_id="req_1")
    write_cell(w, "bbb", outcome="extra_usage_exhausted")
    run = load_run(path)
    assert run.warnings == []
    assert run.header["run_id"] == "r1" and run.header["policy"] == "2026-05-25"
    assert run.header["kit_version"] and run.header["started_at"]
    assert list(run.cells) == ["aaa", "bbb"]
    assert run.cells["aaa"]["observation"]["request_id"] == "req_1"
    assert Observation.from_dict(run.cells["aaa"]["observation"]).status == 200


def test_the_latest_record_of_a_cell_wins_and_transient_cells_are_not_complete(tmp_path):
    w = RunWriter(run_path(tmp_path, "r1"), header())
    write_cell(w, "aaa", outcome="overloaded")
    write_cell(w, "bbb", outcome="overloaded")
    write_cell(w, "aaa", outcome="served_plan")
    run = load_run(w.path)
    assert run.cells["aaa"]["outcome"] == "served_plan"
    assert completed_cells(run, transient={"overloaded"}) == {"aaa"}


def test_torn_last_line_is_dropped_reported_and_trimmed_before_the_next_append(tmp_path):
    path = run_path(tmp_path, "r1")
    w = RunWriter(path, header())
    write_cell(w, "aaa")
    with path.open("ab") as f:
        f.write(b'{"record": "cell", "cell_id": "bbb", "observ')
    run = load_run(path)
    assert list(run.cells) == ["aaa"]
    assert len(run.warnings) == 1 and "torn" in run.warnings[0].problem and run.warnings[0].line == 3
    w2 = RunWriter(path, header("other"))  # resume: keeps the original header, trims the tear
    assert w2.header["run_id"] == "r1" and w2.resumed is not None
    write_cell(w2, "ccc")
    run = load_run(path)
    assert run.warnings == [] and list(run.cells) == ["aaa", "ccc"]


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = run_path(tmp_path, "r1")
    RunWriter(path, header())
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    w = RunWriter(path, header())
    write_cell(w, "aaa")
    run = load_run(path)
    assert run.warnings == [] and run.header["run_id"] == "r1" and list(run.cells) == ["aaa"]


def test_a_corrupt_middle_line_is_skipped_with_a_warning(tmp_path):
    path = run_path(tmp_path, "r1")
    w = RunWriter(path, header())
    with path.open("ab") as f:
        f.write(b"not json\n")
    write_cell(w, "aaa")
    run = load_run(path)
    assert list(run.cells) == ["aaa"] and "unreadable" in run.warnings[0].problem


def test_secrets_are_redacted_on_the_way_in(tmp_path):
    w = RunWriter(run_path(tmp_path, "r1"), header())
    write_cell(w, "aaa", headers={"authorization": f"Bearer {TOKEN}"}, error_message=f"bad token {TOKEN}")
    text = w.path.read_text()
    assert TOKEN not in text
    assert redact.mask(TOKEN) in text


def test_a_registered_secret_of_unknown_shape_never_reaches_disk(tmp_path):
    secret = "opaque-sim-code-1234567890"
    redact.register_secret(secret)
    try:
        w = RunWriter(run_path(tmp_path, "r1"), header())
        write_cell(w, "aaa", error_message=f"code was {secret}")
        assert secret not in w.path.read_text()
    finally:
        redact.forget_secrets()


def test_writer_refuses_a_record_that_still_holds_a_secret(tmp_path, monkeypatch):
    w = RunWriter(run_path(tmp_path, "r1"), header())
    before = w.path.read_bytes()
    # a redaction bug must not leak: both ways a record is redacted (the walk, and the text of redact_json) do nothing
    monkeypatch.setattr(redact, "redact_obj", lambda obj: obj)
    monkeypatch.setattr(redact, "redact_json", lambda obj: json.dumps(obj, ensure_ascii=False, default=str))
    with pytest.raises(redact.SecretLeak) as info:
        write_cell(w, "aaa", error_message=f"leaked {TOKEN}")
    assert TOKEN not in str(info.value)
    assert w.path.read_bytes() == before


def test_run_ids_are_stable_distinct_and_safe(tmp_path):
    a = derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-05-25", ["b", "a"], "sim-pkce")
    assert a == derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-05-25", ["a", "b"], "sim-pkce")
    assert a != derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-06-18", ["a", "b"], "sim-pkce")
    assert run_path(tmp_path, a).name == a + ".jsonl"
    with pytest.raises(InputError):
        run_path(tmp_path, "../escape")


def test_to_frame_is_one_row_per_cell_with_one_column_per_factor(tmp_path):
    w = RunWriter(run_path(tmp_path, "r1"), header())
    write_cell(w, "aaa", levels={"auth": "x-api-key", "credential": "other", "status": "weird"}, request_id="req_9")
    write_cell(w, "bbb", outcome="extra_usage_exhausted", levels={"auth": "bearer"})
    write_cell(w, "aaa", levels={"auth": "x-api-key", "credential": "other", "status": "weird"}, request_id="req_10")
    df = load_run(w.path).to_frame()
    assert list(df["cell_id"]) == ["aaa", "bbb"]  # a retried cell counts once, with its latest record
    row = df.iloc[0]
    assert row["outcome"] == "served_plan" and row["status"] == 200 and row["request_id"] == "req_10"
    # factors named like a fixed column get one prefix, the same everywhere
    assert df.attrs["factors"] == ["auth", "factor:credential", "factor:status"]
    assert row["auth"] == "x-api-key" and row["factor:credential"] == "other" and row["factor:status"] == "weird"
    assert row["credential"] == "sim-pkce" and df.iloc[1]["factor:status"] == DEFAULT_LEVEL
    assert list(df.columns[:5]) == ["run_id", "policy", "mode", "cell_id", "profile"]
    assert df["outcome"].dtype.ordered and df.attrs["runs"][0]["run_id"] == "r1"
    assert tidy(load_runs([w.path, w.path]))["run_id"].tolist() == ["r1"] * 4


def test_load_runs_and_the_errors_of_a_missing_or_unreadable_file(tmp_path):
    w1 = RunWriter(run_path(tmp_path, "r1"), header("r1"))
    w2 = RunWriter(run_path(tmp_path, "r2"), header("r2"))
    assert [r.run_id for r in load_runs([w1.path, w2.path])] == ["r1", "r2"]
    with pytest.raises(NotFound, match="No run file"):
        load_run(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="cannot be read as a run file"):
        load_run(tmp_path)


def test_run_paths_lists_the_runs_else_the_curated_samples(tmp_path):
    from lanelab.config import Settings

    settings = Settings(mode="sim", out=tmp_path / "out", home=tmp_path / "home")
    samples = run_paths(settings)
    assert len(samples) == 2 and all(p.parent.name == "samples" for p in samples)
    assert all(load_run(p).cells for p in samples)  # the curated samples still load
    assert run_paths(settings, samples=False) == []
    w = RunWriter(run_path(settings.runs_dir, "mine"), header("mine"))
    assert run_paths(settings) == [w.path]


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=6), max_size=6),
       st.integers(min_value=1, max_value=60))
def test_any_truncation_loads_without_crashing(tmp_path_factory, ids, cut):
    path = run_path(tmp_path_factory.mktemp("runs"), "r")
    w = RunWriter(path, header("r"))
    for cid in ids:
        write_cell(w, cid)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) - cut)])
    run = load_run(path)
    assert set(run.cells) <= set(ids)
    assert all(json.dumps(e) for e in run.entries)


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "user", "content": f"my key is {TOKEN}"}]},
    {"metadata": {"token": "opaque-value-not-a-known-shape"}},
    {"tools": [{"name": "x", "input_schema": {"properties": {"code": {"type": "string"}}}}]},
])
def test_spec_bodies_are_redacted_by_either_path(body):
    from lanelab.runs import spec_record
    rec = spec_record(RequestSpec(body=body))
    text = json.dumps(rec)
    assert TOKEN not in text and "opaque-value-not-a-known-shape" not in text
    if "tools" in body:
        assert rec["body"] == body


# Parts of a cell record where redaction has work: token shapes, query pairs, escapes, sensitive keys, non-ASCII.
_PART = st.one_of(st.sampled_from([f"key {TOKEN}", "access_token=abcdefghijkl", 'say "hi"\n', "a\\b", "İ…",
                                   "Bearer zyxwvutsrqponm", "plain words"]), st.text(max_size=20))
_SMALL = st.dictionaries(st.sampled_from(["content", "token", "code", "max_tokens", "name", "text"]), _PART,
                         max_size=4)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.none(), _PART, _SMALL, st.fixed_dictionaries({"messages": st.lists(_SMALL, max_size=3)})),
       headers=st.dictionaries(st.sampled_from(["x-app", "authorization", "user-agent", "cookie"]), _PART,
                               max_size=3),
       message=_PART, obs_body=st.one_of(st.none(), _SMALL), levels=st.dictionaries(_PART, _PART, max_size=2),
       retries=st.lists(_SMALL, max_size=2), sent=st.booleans())
def test_a_cell_line_is_the_record_encoded_whole(monkeypatch, body, headers, message, obs_body, levels, retries,
                                                 sent):
    """cell_line assembles its line from redacted parts (the body as sent, not encoded again); the bytes are those
    encode_record writes for the whole record redacted part by part, so readers see no difference."""
    from lanelab import runs
    from lanelab.runs import encode_record, spec_record

    monkeypatch.setattr(runs, "now_iso", lambda: "2026-11-30T12:00:00Z")
    spec = RequestSpec(headers=headers, body=body)
    obs = Observation(status=400, headers={"request-id": "req_1"}, body=obs_body, error_message=message)
    small = redact.redact_obj({"cell_id": "c1", "profile": "p", "levels": levels, "credential": "sim",
                               "retries": retries})
    whole = {"record": "cell", **{k: small[k] for k in ("cell_id", "profile", "levels", "credential")},
             "spec": spec_record(spec), "observation": obs.to_dict(), "outcome": "served_plan", "lane": "plan",
             "rule": None, "sent_at": "2026-11-30T12:00:00Z", "retries": small["retries"]}
    try:
        expected = encode_record(whole, redacted=True).encode()
    except redact.SecretLeak:
        expected = None
    body_sent = json.dumps(body, ensure_ascii=False) if sent and body is not None else None
    try:
        line = RunWriter.cell_line(cell_id="c1", profile="p", levels=levels, credential="sim", spec=spec,
                                   observation=obs, outcome="served_plan", lane="plan", body_sent=body_sent,
                                   retries=retries)
    except redact.SecretLeak:
        line = None
    assert line == expected
    if line is not None:
        assert TOKEN not in line.decode() and json.loads(line)["spec"]["headers"].keys() == headers.keys()


def test_now_is_stamped_to_the_second_in_utc(monkeypatch):
    """now_iso writes out each second once (a run stamps every cell); the text is the second's, in UTC."""
    import datetime as dt
    import types

    from lanelab import runs

    clock = iter([1796083200.2, 1796083200.9, 1796083201.0, 1796083200.5])
    monkeypatch.setattr(runs, "time", types.SimpleNamespace(time=lambda: next(clock)))
    stamps = [runs.now_iso() for _ in range(4)]
    assert stamps[0] == stamps[1] == "2026-12-01T00:00:00+00:00" == stamps[3]
    assert stamps[2] == "2026-12-01T00:00:01+00:00"
    assert dt.datetime.fromisoformat(stamps[2]).tzinfo == dt.UTC
