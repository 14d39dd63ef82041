"""The run store: round trip, torn last line, redaction refusal, resume bookkeeping, flat records."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lanelab import redact
from lanelab.runs import (
    RunStoreError,
    RunWriter,
    completed_cells,
    derive_run_id,
    load_run,
    load_runs,
    make_header,
    records,
    run_path,
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
    monkeypatch.setattr(redact, "redact_obj", lambda obj: obj)  # a redaction bug must not leak
    with pytest.raises(redact.SecretLeak) as info:
        write_cell(w, "aaa", error_message=f"leaked {TOKEN}")
    assert TOKEN not in str(info.value)
    assert w.path.read_bytes() == before


def test_run_ids_are_stable_distinct_and_safe(tmp_path):
    a = derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-05-25", ["b", "a"], "sim-pkce")
    assert a == derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-05-25", ["a", "b"], "sim-pkce")
    assert a != derive_run_id("hermes-0.14.0", "ofat", "sim", "2026-06-18", ["a", "b"], "sim-pkce")
    assert run_path(tmp_path, a).name == a + ".jsonl"
    with pytest.raises(RunStoreError):
        run_path(tmp_path, "../escape")


def test_records_flatten_cells_for_pandas(tmp_path):
    w = RunWriter(run_path(tmp_path, "r1"), header())
    write_cell(w, "aaa", levels={"auth": "x-api-key", "credential": "other", "status": "weird"}, request_id="req_9")
    (row,) = records(load_run(w.path))
    assert row["cell_id"] == "aaa" and row["outcome"] == "served_plan" and row["status"] == 200
    assert row["auth"] == "x-api-key" and row["factor_credential"] == "other" and row["factor_status"] == "weird"
    assert row["credential"] == "sim-pkce" and row["request_id"] == "req_9"
    assert all(not isinstance(v, (dict, list)) for v in row.values())


def test_load_runs_and_missing_file(tmp_path):
    w1 = RunWriter(run_path(tmp_path, "r1"), header("r1"))
    w2 = RunWriter(run_path(tmp_path, "r2"), header("r2"))
    assert [r.run_id for r in load_runs([w1.path, w2.path])] == ["r1", "r2"]
    with pytest.raises(RunStoreError, match="No run file"):
        load_run(tmp_path / "nope.jsonl")


@settings(max_examples=40, deadline=None)
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


def test_single_changes_lists_the_one_factor_neighbours_of_the_baseline(tmp_path):
    from lanelab.runs import single_changes
    w = RunWriter(run_path(tmp_path, "r1"), header())
    write_cell(w, "base", outcome="extra_usage_exhausted", levels={"tools": "profile", "ua": "profile"})
    write_cell(w, "one", outcome="served_plan", levels={"tools": "mcp__", "ua": "profile"})
    write_cell(w, "two", outcome="served_plan", levels={"tools": "mcp__", "ua": "none"})
    rows = single_changes(load_run(w.path), "base")
    assert [(r["factor"], r["level"], r["outcome"], r["baseline_outcome"]) for r in rows] == [
        ("tools", "mcp__", "served_plan", "extra_usage_exhausted")]
    with pytest.raises(RunStoreError):
        single_changes(load_run(w.path), "missing")
