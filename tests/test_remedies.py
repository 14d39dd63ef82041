"""Remedies as data (data/remedies.toml): one reader, the current facts with sources, and lint and the findings name them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest
from lanelab.config import data_dir
from lanelab.findings import remedies
from lanelab.findings.answers import billing_lane
from lanelab.findings.remedies import RemediesError, load_remedies
from lanelab.walkthrough.lint import lint, load_catalogue, load_input


def by_id() -> dict[str, remedies.Remedy]:
    return {r.id: r for r in load_remedies()}


def test_the_remedies_that_exist_with_sources() -> None:
    found = by_id()
    assert list(found) == ["fix", "extra_usage", "api_key", "own_clients"]
    assert all(r.source and r.caveat for r in found.values())
    assert all("references/" in r.source for r in found.values())


def test_the_api_key_remedy_names_the_subscriber_credits_and_their_limits() -> None:
    key = by_id()["api_key"]
    for fact in ("$100", "$200", "$500", "Max", "Ultra", "Team"):
        assert fact in key.text
    for caveat in ("Console organisation", "not Claude Code", "not extra usage", "expire"):
        assert caveat in key.caveat
    assert key.since == "2026-10-07" and "autumn-2026.md §2.6" in key.source


def test_a_fix_is_named_only_as_removing_or_correcting() -> None:
    fix = by_id()["fix"]
    assert fix.render("rename mcp_read_file to mcp__read_file").startswith("Fix the request: rename mcp_read_file")
    assert "{fix}" not in fix.render() and fix.render().startswith(fix.generic)
    for r in load_remedies():  # responsible use: nothing recommends posing as Claude Code
        assert "attestation" not in r.text.lower() and "user agent" not in r.text.lower()


def test_lint_prints_them_from_the_data_file() -> None:
    catalogue = load_catalogue()
    assert catalogue.remedies == tuple(r.line for r in load_remedies())
    assert "remedies" not in tomllib.loads((data_dir() / "triggers.toml").read_text(encoding="utf-8")), \
        "one list: the catalogue no longer carries its own"
    text = " ".join(lint(load_input("sdk-minimal")).to_text().split())  # its observations print the remedies
    for remedy in load_remedies():
        assert " ".join(remedy.line.split()) in text


def test_the_billing_answer_names_them() -> None:
    df = pd.DataFrame([{"cell_id": "c1", "outcome": "extra_usage_exhausted", "lane": "extra_usage", "status": 400,
                        "unified_lane": "unknown", "util_5h": 0.03, "util_7d": 0.0,
                        "overage_disabled_reason": "out_of_credits",
                        "error_message": "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."}])
    df["outcome"] = df["outcome"].astype("category")
    answer = billing_lane(df)
    assert remedies.sentence() in answer.explanation
    assert "API credits" in answer.explanation


@pytest.mark.parametrize(("text", "says"), [
    ("", "remedy must be an array of tables"),
    ('[[remedy]]\nid = "a"\ntext = "t"\ncaveat = "c"\n', "remedy[0].source must be a non-empty string"),
    ('[[remedy]]\nid = "a"\ntext = "t"\ncaveat = "c"\nsource = 3\n', "remedy[0].source must be a non-empty string"),
    ('[[remedy]]\nid = "a"\ntext = "Fix {fix}"\ncaveat = "c"\nsource = "s"\n', "remedy[0].generic is missing"),
    ('[[remedy]]\nid = "a"\ntext = "t"\ncaveat = "c"\nsource = "s"\ncolour = "red"\n', "unknown key(s) ['colour']"),
    (('[[remedy]]\nid = "a"\ntext = "t"\ncaveat = "c"\nsource = "s"\n[[remedy]]\nid = "a"\ntext = "t"\ncaveat = "c"\n'
     'source = "s"\n'), "used twice"),
])
def test_a_bad_remedies_file_names_the_file_and_the_key(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "remedies.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RemediesError) as err:
        load_remedies(path)
    assert str(path) in str(err.value) and says in str(err.value)
