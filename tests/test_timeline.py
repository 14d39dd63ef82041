"""The timeline: the same request under every dated snapshot, over the simulator's real HTTP path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from lanelab.config import data_dir, repo_root
from lanelab.findings.plots import Chart
from lanelab.findings.timeline import COLUMNS, Timeline, snapshots, timeline
from lanelab.matrix.profiles import ReferenceOnlyProfile
from lanelab.sim.policy import PolicyNotFound, list_policies

OLD_CC = "claude-cli/2.1.74 (external, cli)"


@pytest.fixture(scope="module")
def minimal_and_hermes() -> Timeline:
    return timeline(["sdk-minimal", "hermes-0.14.0"])


def test_every_snapshot_in_date_order(minimal_and_hermes: Timeline) -> None:
    assert [s.name for s in minimal_and_hermes.snapshots] == [s.name for s in snapshots()]
    dates = [s.date for s in snapshots()]
    assert dates == sorted(dates) and {s.name for s in snapshots()} == set(list_policies())
    df = minimal_and_hermes.to_frame()
    assert list(df.columns) == list(COLUMNS) and len(df) == 2 * len(list_policies())
    assert list(df["request"]) == ["sdk-minimal"] * 3 + ["hermes-0.14.0"] * 3


def test_the_seed_report_under_may_and_the_service_side_move_in_august(minimal_and_hermes: Timeline) -> None:
    df = minimal_and_hermes.to_frame().set_index(["request", "policy"])
    may_minimal, may_hermes = df.loc[("sdk-minimal", "2026-05-25")], df.loc[("hermes-0.14.0", "2026-05-25")]
    assert (may_minimal["status"], may_minimal["outcome"], may_minimal["lane"]) == (200, "served_plan", "plan")
    assert (may_hermes["status"], may_hermes["outcome"]) == (400, "extra_usage_exhausted")
    assert may_hermes["sim_rule"] == "mcp_single_underscore_tool" and "#26430" in may_hermes["rule_source"]
    assert "out of extra usage" in may_hermes["message"]
    aug = df.loc[("sdk-minimal", "2026-08")]
    assert aug["changed"] and aug["outcome"] != "served_plan" and aug["sim_rule"] == "identity_required_non_haiku"
    moved = minimal_and_hermes.changes()
    assert list(moved["request"]) == ["sdk-minimal"]
    assert moved.iloc[0][["from_policy", "to_policy"]].tolist() == ["2026-05-25", "2026-08"]
    assert "#47692" in moved.iloc[0]["rule_source"]
    assert not df.loc[("hermes-0.14.0", "2026-08"), "changed"]


def test_the_chart_and_the_display(minimal_and_hermes: Timeline) -> None:
    chart = minimal_and_hermes.chart()
    assert isinstance(chart, Chart) and chart._repr_png_().startswith(b"\x89PNG")
    text = str(minimal_and_hermes)
    assert "sdk-minimal: 2026-05-25 → 2026-08" in text and "Simulated" in text
    assert "<img" in minimal_and_hermes._repr_html_()


def test_a_gated_request_moves_in_november(tmp_path: Path) -> None:
    """sdk-minimal's request, asking for Fable and claiming an old Claude Code: only November's gate refuses it."""
    source = (data_dir() / "profiles" / "sdk-minimal.toml").read_text(encoding="utf-8")
    edits = {'model = "claude-sonnet-4-6"': 'model = "claude-fable-5-1"', 'name = "sdk-minimal"': 'name = "gated"',
             '"user-agent" = "Anthropic/Python 0.86.0"': f'"user-agent" = "{OLD_CC}"'}
    for old, new in edits.items():
        assert old in source
        source = source.replace(old, new)
    profile = tmp_path / "gated.toml"
    profile.write_text(source, encoding="utf-8")
    df = timeline(str(profile)).to_frame().set_index("policy")
    assert df.loc["2026-11", "outcome"] == "version_too_old" and df.loc["2026-11", "changed"]
    assert df.loc["2026-11", "error_code"] == "claude_code_version_too_old"
    assert df.loc["2026-11", "sim_rule"] == "claude_code_version_gate"
    assert df.loc["2026-08", "outcome"] != "version_too_old"


def test_an_ultra_account_and_drift_show_in_the_table() -> None:
    df = timeline("openclaw-2026.9.6", account={"plan": "ultra", "unified_claim": "seven_day_moonlight"}).to_frame()
    assert set(df["lane"]) == {"unknown"} and set(df["claim"]) == {"seven_day_moonlight"}
    assert all("seven_day_moonlight" in n for n in df["new_to_kit"])


def test_a_capture_and_its_caveat() -> None:
    t = timeline(str(data_dir() / "captures" / "openclaw-2026.9.6.jsonl"), ["2026-05-25"])
    assert len(t.to_frame()) == 1 and t.requests[0].source.startswith("capture")
    assert any("without the block" in c for c in t.caveats)
    assert "cch=" not in str(t.requests[0].spec.body)


def test_a_profile_with_an_attestation_marker_carries_the_caveat() -> None:
    t = timeline("openclaw-2026.9.6", ["2026-05-25"])
    assert any("for the request without the block" in c for c in t.caveats)


def test_refusals_before_anything_is_sent() -> None:
    with pytest.raises(ReferenceOnlyProfile):
        timeline("claude-code-2.1.332")
    with pytest.raises(PolicyNotFound):
        timeline("sdk-minimal", ["1999-01-01"])
    with pytest.raises(PolicyNotFound):
        timeline("sdk-minimal", ["../2026-11"])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lanelab", "timeline", *args], capture_output=True, text=True,
                          timeout=240, check=False, cwd=repo_root(),
                          env={"PYTHONPATH": str(repo_root() / "lib"), "PATH": "/usr/bin:/bin",
                               "LANELAB_HOME": "/nonexistent-home"})


@pytest.mark.slow  # a CLI process each
def test_the_cli(tmp_path: Path) -> None:
    out_csv, out_png = tmp_path / "t.csv", tmp_path / "t.png"
    done = cli("--profile", "sdk-minimal", "--policy", "2026-05-25", "--policy", "2026-08", "--csv", str(out_csv),
               "--png", str(out_png))
    assert done.returncode == 0, done.stderr
    assert "sdk-minimal: 2026-05-25 → 2026-08" in done.stdout
    assert list(pd.read_csv(out_csv)["policy"]) == ["2026-05-25", "2026-08"]
    assert out_png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow  # a CLI process each
@pytest.mark.parametrize(("args", "says"), [
    ((), "Name a request"),
    (("--profile", "claude-code-2.1.332"), "first-party reference"),
    (("--profile", "no-such-profile"), "no-such-profile"),
    (("--capture", "/no/such.jsonl"), "no such file"),
    (("--capture", "/tmp"), "is a folder, not a capture file"),
    (("--profile", "sdk-minimal", "--account", '{"plan": 3}'), "plan must be one of"),
])
def test_the_cli_refuses_bad_input_in_one_line(args: tuple[str, ...], says: str) -> None:
    done = cli(*args)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
