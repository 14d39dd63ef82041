"""The request-taking commands agree (issue 16): matrix, diff and bisect take a profile name, a profile file or a
capture; diff and bisect pick a capture's request with --index and say which one they took; bisect resumes, lists
every difference and names its options as they are spelled; capture --to-profile never overwrites a profile."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
from lanelab import cli
from lanelab.commands import bisect as bisect_cmd
from lanelab.config import repo_root
from lanelab.matrix.from_capture import ProfileExists, load_request, profile_for, profile_from_capture
from lanelab.matrix.profiles import ReferenceOnlyProfile, ensure_sendable, profiles_dir
from lanelab.runs import load_run
from lanelab.sim.server import SimHandle, running_simulator
from lanelab.walkthrough.capture import running_capture
from lanelab.wire.send import send


@pytest.fixture(scope="module")
def two_requests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture holding two inference requests: sdk-minimal's, then hermes-0.14.0's."""
    out = tmp_path_factory.mktemp("capture") / "two.jsonl"
    with running_simulator() as sim, running_capture(sim.base_url, out) as proxy:
        token = sim.mint_token()["access_token"]
        for name in ("sdk-minimal", "hermes-0.14.0"):
            send(ensure_sendable(name).spec, proxy.base_url, token)
    return out


@pytest.fixture
def env(sim: SimHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimHandle:
    monkeypatch.setenv("LANELAB_MODE", "sim")
    monkeypatch.setenv("LANELAB_BASE_URL", sim.base_url)
    monkeypatch.setenv("LANELAB_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("LANELAB_HOME", str(tmp_path / "home"))
    return sim


def inference_sent(sim: SimHandle) -> int:
    return sum(1 for e in sim.state.requests() if e["path"].startswith("/v1/messages"))


# ------------------------------------------------------------------------------------------------ matrix --profile
def test_profile_for_reads_what_diff_and_bisect_read(two_requests: Path, tmp_path: Path) -> None:
    assert profile_for("hermes-0.14.0") == ensure_sendable("hermes-0.14.0")
    shipped = profile_for(str(profiles_dir() / "openclaw-2026.9.6.toml"))
    assert shipped.name == "openclaw-2026.9.6" and shipped.caveats == ensure_sendable("openclaw-2026.9.6").caveats
    copy = tmp_path / "my-hermes.toml"
    shutil.copyfile(profiles_dir() / "hermes-0.14.0.toml", copy)
    from_file = profile_for(str(copy))
    assert from_file.spec == load_request(str(copy))[1] and from_file.data["ref"] == str(copy)
    first, last = profile_for(str(two_requests), index=0), profile_for(str(two_requests))
    assert first.name == "two-request0" and last.name == "two"
    assert first.spec == load_request(str(two_requests), index=0)[1]
    assert last.spec.headers["user-agent"] == ensure_sendable("hermes-0.14.0").spec.headers["user-agent"]
    with pytest.raises(ReferenceOnlyProfile):
        profile_for(str(repo_root() / "data" / "captures" / "claude-code-2.1.332.jsonl"))


def test_a_capture_of_an_attestation_client_keeps_its_caveat() -> None:
    prof = profile_for(str(repo_root() / "data" / "captures" / "openclaw-2026.9.6.jsonl"))
    assert prof.attestation_positions and any("without the block" in c for c in prof.caveats)
    assert "x-anthropic-billing-header" not in json.dumps(prof.spec.to_dict())


def test_matrix_runs_from_a_capture_and_a_profile_file(env: SimHandle, two_requests: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = ["matrix", "--factors", "x_app", "--no-progress"]
    assert cli.main([*args, "--profile", str(two_requests), "--index", "0"]) == 0
    out = capsys.readouterr().out
    assert "request: two.jsonl: inference request 0 of 2, counting from 0 (exchange #" in out
    run = load_run(next((tmp_path / "out" / "runs").glob("two-request0_*.jsonl")))
    assert run.header["profile"] == "two-request0" and len(run.cells) == 3
    sent = {c["spec"]["headers"].get("user-agent") for c in run.cells.values()}
    assert sent == {ensure_sendable("sdk-minimal").spec.headers["user-agent"]}, "the request at index 0"
    copy = tmp_path / "mine.toml"
    shutil.copyfile(profiles_dir() / "openclaw-2026.9.6.toml", copy)
    assert cli.main([*args, "--profile", str(copy)]) == 0
    run = load_run(next((tmp_path / "out" / "runs").glob("openclaw-2026.9.6_*.jsonl")))
    assert any("without the block" in c for c in run.header["profile_caveats"])
    assert cli.main([*args, "--profile", str(tmp_path / "missing.jsonl")]) == 2
    assert "No file at" in capsys.readouterr().err
    assert cli.main([*args, "--profile", "hermes-0.14.0", "--index", "0"]) == 2
    assert "--index picks a request of a capture file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ diff --index
def test_diff_says_which_request_it_took_and_index_picks_another(two_requests: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", str(two_requests), "hermes-0.14.0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A: two.jsonl: inference request 1 of 2, counting from 0, the last (the default)")
    # the last request is hermes-0.14.0's: only the content-type the HTTP client added on the wire differs
    assert "\n1 difference(s) between two and hermes-0.14.0." in out and "| content-type |" in out
    assert cli.main(["diff", str(two_requests), "hermes-0.14.0", "--index", "0"]) == 0
    out = capsys.readouterr().out
    assert "A: two.jsonl: inference request 0 of 2" in out and "user-agent" in out
    assert cli.main(["diff", str(two_requests), str(two_requests), "--index", "0", "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "A: two.jsonl: inference request 0 of 2" in out and "B: two.jsonl: inference request 1 of 2" in out
    for bad, said in ((["--index", "5"], "--index 5 is out of range: two.jsonl holds 2 inference request(s)"),
                      (["--index", "0", "--index", "1", "--index", "0"], "--index was given 3 times")):
        assert cli.main(["diff", str(two_requests), "sdk-minimal", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1
    assert cli.main(["diff", "hermes-0.14.0", "sdk-minimal", "--index", "0"]) == 2
    assert "--index picks a request of a capture file; 'hermes-0.14.0' and 'sdk-minimal' are not one" in \
        capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ bisect
def test_bisect_takes_a_capture_request_and_resumes(env: SimHandle, two_requests: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bisect", "--fail", str(two_requests), "--pass", "sdk-minimal"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "--fail: two.jsonl: inference request 1 of 2, counting from 0, the last (the default)" in out
    first_sent = inference_sent(env)
    spent = int(re.search(r"; (\d+) request\(s\) spent", out).group(1))
    assert spent == first_sent > 0
    assert cli.main(args) == 0
    again = capsys.readouterr().out
    assert inference_sent(env) == first_sent, "a rerun sends no probe twice"
    assert f"0 request(s) spent; {spent} probe answer(s) read back from the earlier run" in again
    assert re.findall(r"probes stored in (\S+)", again) == re.findall(r"probes stored in (\S+)", out)
    assert cli.main([*args, "--index", "0"]) == 1, "sdk-minimal's own request: billed to the plan already"
    out = capsys.readouterr().out
    assert "--fail: two.jsonl: inference request 0 of 2" in out and "the failing request passed unchanged" in out


def test_bisect_lists_every_difference_or_says_how_many_more(env: SimHandle, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["bisect", "--fail", "hermes-0.14.0", "--pass", "sdk-minimal"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"\): (\d+) difference\(s\)", out).group(1))
    table = [line for line in out.splitlines() if re.match(r"\|\s+\d+ \|", line)]
    assert len(table) == total > 5
    assert "| tools " in out and "in the cause" in out
    monkeypatch.setattr(bisect_cmd, "SHOWN_DIFFERENCES", 4)
    assert cli.main(["bisect", "--fail", "hermes-0.14.0", "--pass", "sdk-minimal"]) == 0
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if re.match(r"\|\s+\d+ \|", line)]) == 4
    assert f"… and {total - 4} more" in out


def test_bisect_help_names_its_options_as_they_are_spelled() -> None:
    parser = argparse.ArgumentParser(prog="bisect")
    bisect_cmd.configure(parser)
    spelled = {s for a in parser._actions for s in a.option_strings}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", bisect_cmd.DESCRIPTION))
    assert named and named <= spelled, named - spelled
    assert {"--fail", "--pass", "--index", "--run-id", "--budget"} <= named
    assert " A and B " not in bisect_cmd.DESCRIPTION
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} has no help"


# ------------------------------------------------------------------------------------------------ capture --to-profile
def test_to_profile_never_overwrites_a_shipped_profile(two_requests: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    shipped = profiles_dir() / "hermes-0.14.0.toml"
    before = shipped.read_bytes()
    assert cli.main(["capture", "--to-profile", "hermes-0.14.0", str(two_requests)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a profile the kit ships" in err and "nothing was written" in err and len(err.splitlines()) == 1
    assert shipped.read_bytes() == before
    with pytest.raises(ProfileExists):
        profile_from_capture(two_requests, "hermes-0.14.0")
    assert shipped.read_bytes() == before


def test_to_profile_refuses_an_existing_file_and_writes_a_new_name(two_requests: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "profiles"
    assert cli.main(["capture", "--to-profile", "mine", str(two_requests), "--profiles-dir", str(out),
                     "--index", "0"]) == 0
    said = capsys.readouterr().out
    assert "request: two.jsonl: inference request 0 of 2" in said
    made = out / "mine.toml"
    kept = made.read_bytes()
    assert b"Anthropic/Python" in kept, "the request at index 0 (the SDK's)"
    assert cli.main(["capture", "--to-profile", "mine", str(two_requests), "--profiles-dir", str(out)]) == 2
    assert "already there" in capsys.readouterr().err and made.read_bytes() == kept
    assert cli.main(["capture", "--to-profile", "mine-2", str(two_requests), "--profiles-dir", str(out)]) == 0
    assert (out / "mine-2.toml").is_file() and made.read_bytes() == kept
    capsys.readouterr()
