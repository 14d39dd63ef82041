"""Findings bundles: made without account identifiers, checked before writing and again when loading, compared side
by side (one row per bundle, the verdict per request shape, where they agree and differ), from the CLI too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lanelab import cli
from lanelab.config import data_dir
from lanelab.errors import InputError, NotFound
from lanelab.findings import bundles, report
from lanelab.runs import load_run, load_runs
from test_analysis import make_cell, write_run

SAMPLES = data_dir() / "runs" / "samples"
SAMPLE = SAMPLES / "sim-sample-hermes-0.14.0-ofat-2026-05-25.jsonl"
EMAIL, UUID = "someone@example.org", "0f8fad5b-d9cb-469f-a165-70867728950e"


def sample_bundle(**kw) -> bundles.Bundle:
    return bundles.make_bundle(report.collect(load_run(SAMPLE)), **kw)


def test_a_bundle_holds_the_reports_data_and_no_identifier() -> None:
    b = sample_bundle(plan="max")
    d = b.data
    assert (d["schema"], d["mode"], d["policy_or_host"], d["plan"], d["date"]) == \
        (bundles.SCHEMA, "sim", "2026-05-25", "max", "2026-11-24")
    assert d["kit_version"] and d["profile"] == "hermes-0.14.0" and d["new_to_this_kit"] == []
    assert "`mcp__`" in d["verdict"]["sentence"] and d["verdict"]["after"] == "mcp__"
    shapes = b.shapes()
    assert shapes["as sent"] == "extra usage" and shapes["tools=mcp__"] == "plan" and len(shapes) == 22
    assert [a["question"][:8] for a in d["answers"]] == ["Does the", "Does the", "Is the t"]
    text = b.to_json()
    assert bundles.find_identifiers(text) == [] and "req_" not in text and "127.0.0.1" not in text
    assert sample_bundle().data["plan"] == "unknown"  # never guessed


def test_identifiers_in_run_data_are_scrubbed_when_a_bundle_is_made(tmp_path: Path) -> None:
    cells = [make_cell({"tools": "profile"}, "extra_usage_exhausted", 400, "extra_usage",
                       message=f"Org {UUID} of {EMAIL} is out of extra usage (req_011abcdefghijk)")]
    b = bundles.make_bundle(report.collect(load_run(write_run(tmp_path / "r.jsonl", cells))))
    msg = b.data["shapes"][0]["message"]
    assert msg == "Org [uuid] of [email] is out of extra usage ([request id])"
    assert EMAIL not in b.to_json() and UUID not in b.to_json()


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    b = sample_bundle(plan="pro", note="mine")
    path = bundles.write_bundle(b, tmp_path / "b.json")
    again = bundles.load_bundle(path)
    assert again.data == b.data and again.path == path and "plan pro" in again.label
    with pytest.raises(bundles.BundleRefused, match="1 secret"):
        bundles.write_bundle(b, tmp_path / "c.json", secrets=["hermes-0.14.0"])
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("planted,kind", [
    (EMAIL, "an email address"), (UUID, "a uuid"), ("req_011CSHnA9bbh5Gv4kqhSVuJr", "a request id"),
    ("org-8Fq2LmZp0aXy", "an organisation or account id"), ("203.0.113.42", "an IP address"),
    ("/home/alice/.config", "a home directory"), ("sk-ant-oat01-" + "A" * 40, "1 secret"),
    ("my access token is Xq7Lm2Pz9Rt4Vb8Nk3Wj6Hs1Df5Gy0CaQQ", "a token-like string"),  # opaque: no prefix, no key
    ("ghp_" + "a1B2c3D4" * 5, "a token-like string"), ("sk-proj-" + "abc123" * 5, "a token-like string"),
])
def test_a_bundle_with_an_identifier_is_refused_when_loaded(tmp_path: Path, planted: str, kind: str) -> None:
    data = sample_bundle().data
    data["note"] = f"sent by {planted}"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    with pytest.raises(bundles.BundleRefused) as err:
        bundles.load_bundle(path)
    assert kind in str(err.value) and "evil.json" in str(err.value) and planted not in str(err.value)


def test_malformed_bundles_are_input_errors(tmp_path: Path) -> None:
    data = sample_bundle().data
    cases = {"notjson.json": "{", "other.json": json.dumps({"schema": "something else"}),
             "extra.json": json.dumps({**data, "account": "x"}),
             "types.json": json.dumps({**data, "shapes": [{"shape": 1}]})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError):
            bundles.load_bundle(tmp_path / name)
    with pytest.raises(NotFound):
        bundles.load_bundle(tmp_path / "missing.json")


def test_what_a_bundle_holds_is_no_token_like_string_and_no_nan() -> None:
    """The check for typed-in credentials finds nothing in what the kit itself writes (shape names, model ids,
    run ids), and a served shape's message is empty, not pandas' "nan"."""
    made = sample_bundle(plan="my token Xq7Lm2Pz9Rt4Vb8Nk3Wj6Hs1Df5Gy0CaQQ")
    assert made.data["plan"] == "my token [token-like string]"
    text = json.dumps(made.data)
    for path in [*bundles.shipped_bundles()]:
        text += path.read_text()
    assert bundles.find_identifiers(text) == []
    assert '"message": "nan"' not in text
    served = [s for s in made.data["shapes"] if s["status"] == 200]
    assert served and all(s["message"] == "" for s in served)


def test_the_same_bundle_twice_is_refused_not_counted_twice(tmp_path: Path) -> None:
    one = bundles.shipped_bundles()[1]
    copy = tmp_path / "copy.json"
    copy.write_text(one.read_text())
    with pytest.raises(InputError, match="very same bundle"):
        bundles.load_bundles([one, bundles.shipped_bundles()[2], copy])


def test_a_report_of_other_peoples_bundles_alone_says_so_and_reads_no_sample(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A maintainer with no run of their own: the report opens with the pooled bundles, and the kit's sample runs
    (which the report reads by default when there is nothing else) are not mixed in as if they were evidence."""
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    shipped = [str(p) for p in bundles.shipped_bundles()[1:]]
    assert cli.main(["report", "--compare", *shipped]) == 0
    md = (tmp_path / "out" / "findings.md").read_text()
    assert md.split("\n")[2].startswith("**Pooled from 2 findings bundles of other people (no run of yours): 2 bundles")
    assert "sim-sample" not in md.split("### Findings from other people")[0]
    assert "2 findings bundles of other people" in md
    assert "| run | kind |" not in md  # no empty table of runs
    capsys.readouterr()
    assert cli.main(["report"]) == 0  # nothing at all of the user's: the samples, and a note that says so
    err = capsys.readouterr().err
    assert "built from the kit's 2 sample runs" in err and "not from requests of yours" in err


def test_a_bundle_file_that_cannot_be_read_says_why_and_one_edited_in_notepad_is_read(tmp_path: Path) -> None:
    data = sample_bundle().data
    text = json.dumps(data)
    cases = {"empty.json": ("", "is empty, so not a findings bundle"),
             "cut.json": (text[:200], "is not valid JSON (line 1, column "),
             "newer.json": (json.dumps({**data, "schema": "lanelab-findings-bundle/2"}),
                            "was made by a newer lanelab (schema 'lanelab-findings-bundle/2')")}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(InputError, match=re.escape(message)) as err:
            bundles.load_bundle(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)  # the whole path: every bundle may be findings.bundle.json
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert bundles.load_bundle(tmp_path / "bom.json").data == data


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(date="not a date"), "date 'not a date' is not YYYY-MM-DD"),
    (lambda d: d["verdict"].update(requests=-5), "the verdict rests on -5 requests"),
    (lambda d: d["shapes"][0].update(status=999), "has HTTP status 999"),
    (lambda d: d.update(shapes=[]), "it holds no request shape"),
    (lambda d: d["shapes"].append({**d["shapes"][0], "verdict": "plan"}), "is listed 2 times"),
])
def test_a_bundle_holding_what_no_run_gives_is_refused(tmp_path: Path, edit, message: str) -> None:
    data = sample_bundle().data
    edit(data)
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=re.escape(message)):
        bundles.load_bundle(tmp_path / "edited.json")


def test_bundles_of_the_same_file_name_are_told_apart_by_their_folder(tmp_path: Path) -> None:
    paths = []
    for who, shipped in (("alice", bundles.shipped_bundles()[1]), ("bob", bundles.shipped_bundles()[2])):
        (tmp_path / who).mkdir()
        paths.append(tmp_path / who / "findings.bundle.json")
        paths[-1].write_text(shipped.read_text())
    labels = [b.label for b in bundles.load_bundles(paths)]
    assert labels[0].endswith("[alice/findings.bundle.json]") and labels[1].endswith("[bob/findings.bundle.json]")


def test_the_shipped_bundles_load_and_compare() -> None:
    paths = bundles.shipped_bundles()
    assert [p.name for p in paths] == ["hand-made-example-pro.json", "sim-2026-05-25-hermes-0.14.0.json",
                                       "sim-2026-08-hermes-0.14.0.json"]
    loaded = bundles.load_bundles(paths)
    hand = loaded[0]
    assert hand.data["example"] and "HAND-MADE" in hand.data["note"] and "(hand-made example)" in hand.label
    cmp = bundles.compare_bundles(loaded)
    table = cmp.to_frame()
    assert len(table) == 3 and list(table.columns)[:2] == ["bundle", "as sent"]  # one row per bundle
    assert set(table["as sent"]) == {"extra usage"}
    assert sorted(table["tools=mcp__"]) == ["extra usage", "extra usage", "plan"]
    agree = cmp.agreement().set_index("shape")
    assert agree.loc["as sent", "agree"] == "yes" and agree.loc["tools=mcp__", "agree"] == "no"
    assert agree.loc["tools=mcp__", "verdicts"] == "extra usage in 2; plan in 1"
    assert "tools=mcp__" in cmp.differing() and "differ on" in cmp.summary()
    assert cmp.summary().endswith("They were made under 3 policies or hosts and 2 plans: a difference may follow "
                                  "those, not the people; compare bundles of the same policy and plan.")
    same = bundles.compare_bundles([loaded[1], loaded[1]])  # (one bundle twice: the same conditions)
    assert "made under" not in same.summary()
    assert list(cmp.verdicts().columns) == ["bundle", "kit", "profile", "note", "answer"]
    assert "<table>" in cmp._repr_html_() and "hand-made example" in cmp._repr_html_()


def test_the_shipped_sim_bundles_match_the_sample_runs() -> None:
    """The two simulator bundles are what the kit makes of the curated samples today (regenerate both together)."""
    for policy in ("2026-05-25", "2026-08"):
        shipped = bundles.load_bundle(data_dir() / "bundles" / f"sim-{policy}-hermes-0.14.0.json")
        run = load_run(SAMPLES / f"sim-sample-hermes-0.14.0-ofat-{policy}.jsonl")
        made = bundles.make_bundle(report.collect([run]), plan=shipped.data["plan"], note=shipped.data["note"])
        assert made.data == shipped.data


def test_a_bundle_describes_one_matrix_run() -> None:
    findings = report.collect(load_runs(sorted(SAMPLES.glob("*.jsonl"))))
    with pytest.raises(InputError, match="2 matrix runs"):
        bundles.make_bundle(findings)
    with pytest.raises(NotFound, match="No matrix run 'nope'"):
        bundles.make_bundle(findings, run_id="nope")
    b = bundles.make_bundle(findings, run_id="sim-sample-hermes-0.14.0-ofat-2026-08")
    assert b.data["policy_or_host"] == "2026-08" and "no single change" in b.data["verdict"]["sentence"]


@pytest.mark.slow  # builds whole reports (figures, the timeline): seconds
def test_cli_writes_bundles_and_compares_others(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    out = tmp_path / "rep"
    assert cli.main(["report", str(SAMPLE), "--out", str(out), "--bundle", "--plan", "max",
                     "--compare", *map(str, bundles.shipped_bundles())]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[-1] == str(out / "findings.bundle.json")
    mine = bundles.load_bundle(out / "findings.bundle.json")
    assert mine.data["plan"] == "max"
    page = (out / "findings.html").read_text()
    assert 'id="compare-people"' in page and "hand-made example" in page
    md = (out / "findings.md").read_text()
    assert "### Findings from other people, side by side" in md and "4 bundles" in md
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({**mine.data, "note": EMAIL}))
    assert cli.main(["report", str(SAMPLE), "--out", str(tmp_path / "x"), "--compare", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "an email address" in err and EMAIL not in err
    assert not (tmp_path / "x").exists()
