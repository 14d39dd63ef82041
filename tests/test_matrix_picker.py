"""Notebook 02's pickers without a browser (issue 16): every choice updates the cell count and cost, a choice that
cannot be sent gives a message instead of an exception, captures are offered and sendable, live mode sends nothing
until the gate is confirmed, sim mode sends and keeps the result, and the widget is a thin layer over the picker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from lanelab.auth.credential import Credential
from lanelab.auth.store import CredentialStore
from lanelab.config import LIVE_API_BASE, Settings, data_dir
from lanelab.matrix.budget import DEFAULT_LIVE_BUDGET
from lanelab.matrix.picker import MAX_CELLS, MatrixPicker, capture_files, profile_for
from lanelab.matrix.plan import MatrixPlan
from lanelab.matrix.profiles import profiles_dir
from lanelab.matrix.widget import MatrixWidget
from lanelab.runs import load_run

TOKEN = "sk-ant-oat01-" + "Pk4Rw8Tz2Xc6Vb1Nm3Lq" * 2 + "wxyz"
PROFILE = "hermes-0.14.0"
CAPTURE = data_dir() / "captures" / "hermes-0.19.0.jsonl"
REFERENCE_CAPTURE = data_dir() / "captures" / "claude-code-2.1.332.jsonl"


def sim_settings(tmp_path: Path, base_url: str | None = None) -> Settings:
    return Settings(mode="sim", base_url=base_url, home=tmp_path / "home", out=tmp_path / "out")


def live_settings(tmp_path: Path) -> Settings:
    s = Settings(mode="live", base_url=LIVE_API_BASE, home=tmp_path / "home", out=tmp_path / "out", live_opt_in=True)
    CredentialStore(s.home).save(Credential(label="live-pkce", access_token=TOKEN, mode="live",
                                            issuer="https://platform.claude.com"))
    return s


class Calls:
    """A mock API for live mode: records every request and answers the extra-usage 400."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(400, json={"type": "error", "error": {
            "type": "invalid_request_error", "message": "You're out of extra usage. Add more at claude.ai."}})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def same_as_plan(picker: MatrixPicker, plan: MatrixPlan) -> None:
    assert [c.cell_id for c in picker.plan.cells] == [c.cell_id for c in plan.cells]
    assert picker.cells == len(plan.cells) and picker.cost == plan.cost()


# ------------------------------------------------------------------------------------------------ choices and cost
def test_it_starts_from_the_parameters(tmp_path):
    s = sim_settings(tmp_path)
    picker = MatrixPicker(PROFILE, None, None, s)
    same_as_plan(picker, MatrixPlan.build(PROFILE, None, None, s))
    assert picker.ready and picker.confirmed and not picker.message, "sim mode needs no confirmation"
    levels = {"tools": ["none", "mcp__"]}
    narrowed = MatrixPicker(PROFILE, "ofat", None, s, levels=levels)
    same_as_plan(narrowed, MatrixPlan.build(PROFILE, "ofat", None, s, levels=levels))
    assert narrowed.chosen_factors == ["tools"] and narrowed.cells == 3


def test_every_choice_updates_the_count_and_the_cost(tmp_path):
    s = sim_settings(tmp_path)
    picker = MatrixPicker(PROFILE, None, None, s)
    seen = [(picker.cells, picker.cost)]
    steps = [({"factors": ["tools", "betas"]}, (PROFILE, "ofat", ["tools", "betas"])),
             ({"design": "pairwise"}, (PROFILE, "pairwise", ["tools", "betas"])),
             ({"design": "full", "factors": ["tools", "x_app"]}, (PROFILE, "full", ["tools", "x_app"])),
             ({"profile": "sdk-minimal"}, ("sdk-minimal", "full", ["tools", "x_app"])),
             ({"design": "ofat", "factors": ["max_tokens"]}, ("sdk-minimal", "ofat", ["max_tokens"]))]
    for choice, (profile, design, factors) in steps:
        picker.choose(**choice)
        assert not picker.message, choice
        same_as_plan(picker, MatrixPlan.build(profile, design, factors, s))
        assert picker.cost_lines() == [f"{picker.cells} cells: {picker.cost}"]
        seen.append((picker.cells, picker.cost))
    assert len(set(seen)) == len(seen), "each choice changed the count or the cost"
    picker.choose(budget=picker.cost.requests)
    assert picker.ready and picker.cells == seen[-1][0], "a budget that fits changes nothing"
    assert f"budget: {picker.cost.requests} inference requests" in repr(picker)


@pytest.mark.parametrize("choice,expected", [
    ({"factors": []}, "No factor chosen"),
    ({"profile": "no-such-client"}, "No profile named 'no-such-client'"),
    ({"profile": "claude-code-2.1.332"}, "first-party reference"),
    ({"profile": str(REFERENCE_CAPTURE)}, "first-party reference"),
    ({"profile": str(data_dir() / "factors.toml")}, "request"),  # no [request] table, or no inference request
    ({"profile": str(Path(__file__))}, "neither a capture"),
    ({"design": "full", "factors": None}, f"more than {MAX_CELLS:,}"),
    ({"design": "latin-square"}, "No design named 'latin-square'"),
    ({"budget": "ten"}, "not a whole number"),
    ({"budget": 0}, "not a whole number"),
    ({"factors": ["tools", "betas"], "budget": 3}, "against a limit of 3"),
])
def test_a_choice_that_cannot_be_sent_gives_a_message(tmp_path, choice, expected):
    picker = MatrixPicker(PROFILE, None, None, sim_settings(tmp_path, "http://127.0.0.1:9"))
    picker.choose(**choice)
    assert expected in picker.message and not picker.ready and not picker.confirmed
    assert f"cannot send: {picker.message}" in repr(picker)
    assert picker.send() is None and picker.status.startswith("Not sent") and picker.result is None
    assert not (picker.settings.out / "runs").exists(), "nothing was written"
    picker.choose(profile=PROFILE, design="ofat", factors=["x_app"], budget=None)
    assert picker.ready and not picker.message, "a good choice after a bad one is sendable again"


def test_a_plan_over_budget_still_shows_its_count_and_cost(tmp_path):
    picker = MatrixPicker(PROFILE, "ofat", ["tools"], sim_settings(tmp_path), budget=2)
    assert "against a limit of 2" in picker.message and picker.cells == 7 and picker.cost.requests == 7


def test_captures_are_offered_and_sent_as_their_own_profile(tmp_path, sim):
    s = sim_settings(tmp_path, sim.base_url)
    (s.out / "captures").mkdir(parents=True)
    shutil.copy(CAPTURE, s.out / "captures" / "mine.jsonl")
    picker = MatrixPicker(PROFILE, None, ["x_app"], s)
    values = {v: k for k, v in picker.profile_choices}
    assert capture_files(s) and all(str(p) in values for p in capture_files(s))
    assert values[str(s.out / "captures" / "mine.jsonl")] == "capture: mine.jsonl"
    assert "claude-code-2.1.332" not in values, "a first-party reference profile is not offered"
    picker.choose(profile=str(s.out / "captures" / "mine.jsonl"))
    assert picker.ready and picker.plan.profile.startswith("mine-") and picker.cells == 3
    result = picker.send()
    assert result is not None and result.sent == 3
    assert load_run(result.path).header["profile"] == picker.plan.profile
    picker.choose(profile=str(REFERENCE_CAPTURE))
    assert "first-party reference" in picker.message and picker.send() is None
    # the same file name elsewhere, another request: another profile name, so another run
    other = tmp_path / "elsewhere" / "mine.jsonl"
    other.parent.mkdir()
    lines = CAPTURE.read_text().splitlines()
    other.write_text("\n".join(line.replace('"claude-sonnet-4-6"', '"claude-haiku-4-5"') for line in lines) + "\n")
    picker.choose(profile=str(other))
    assert picker.ready and picker.plan.profile.startswith("mine-") and picker.plan.profile != result.header["profile"]
    assert str(other) in [v for _, v in picker.profile_choices], "a file chosen by path stays offered"


def test_a_capture_named_like_a_shipped_profile_is_still_its_own_profile(tmp_path):
    """The browser test's case: data/captures/openclaw-2026.9.6.jsonl is named like the shipped profile; chosen as a
    file it is that capture's request under its own digest name, and the shipped profile's own file is the profile."""
    copy = tmp_path / "hermes-0.14.0.jsonl"
    shutil.copy(CAPTURE, copy)
    prof = profile_for(str(copy))
    assert prof.name.startswith("hermes-0.14.0-") and prof.name != "hermes-0.14.0"
    shipped = profile_for(str(profiles_dir() / "hermes-0.14.0.toml"))
    assert shipped.name == "hermes-0.14.0"


# ------------------------------------------------------------------------------------------------ sending
def test_sim_mode_sends_and_keeps_the_result_the_progress_and_the_findings(tmp_path, sim):
    picker = MatrixPicker(PROFILE, None, ["tools", "x_app"], sim_settings(tmp_path, sim.base_url))
    seen: list[tuple[int, int]] = []
    picker.on_progress = lambda done, total: seen.append((done, total))
    result = picker.send()
    n = picker.cells
    assert result is not None and result.sent == n and picker.result is result
    assert seen[0] == (0, n) and seen[-1] == (n, n) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= n, "one step per cell"
    assert picker.progress == (n, n) and f"Sent {n} cells" in picker.status
    assert picker.findings is not None and len(picker.findings.df) == n
    assert picker.chart_png().startswith(b"\x89PNG") and picker.answer() == picker.findings.verdict.sentence
    again = picker.send()  # the same choice resumes: nothing is sent twice
    assert again.sent == 0 and again.resumed == n and picker.progress == (n, n)
    assert picker.status.startswith(f"Sent 0 cells ({n} already in the run)")


def test_sim_mode_without_a_server_says_so_in_one_line(tmp_path):
    picker = MatrixPicker(PROFILE, None, ["x_app"], sim_settings(tmp_path))
    assert picker.ready and picker.send() is None
    assert picker.status.startswith("Not sent: No server to send to") and picker.result is None


def test_live_mode_sends_nothing_until_the_gate_is_confirmed(tmp_path):
    s = live_settings(tmp_path)
    picker = MatrixPicker(PROFILE, None, None, s, budget=DEFAULT_LIVE_BUDGET)
    same_as_plan(picker, MatrixPlan.build(PROFILE, None, None, s))
    assert picker.ready and picker.gate.needed and not picker.confirmed
    assert picker.gate.confirmation.requests == picker.cost.requests
    calls = Calls()
    assert picker.send(client=calls.client()) is None
    assert "waiting for your confirmation" in picker.status and calls.requests == [] and picker.result is None
    picker.gate.confirm("the test")
    result = picker.send(client=calls.client())
    assert result is not None and len(calls.requests) == result.spend.requests == picker.cells
    assert all(json.loads(r.content)["max_tokens"] == 1 for r in calls.requests)
    assert TOKEN not in repr(picker) + picker.status


def test_live_mode_a_changed_choice_asks_again(tmp_path):
    s = live_settings(tmp_path)
    picker = MatrixPicker(PROFILE, None, None, s, budget=DEFAULT_LIVE_BUDGET, confirmed=True)
    assert picker.confirmed, "CONFIRM_LIVE confirms the plan of the parameters"
    picker.choose(factors=["x_app"])
    assert picker.ready and not picker.confirmed and picker.gate.confirmation.requests == picker.cells
    calls = Calls()
    assert picker.send(client=calls.client()) is None and calls.requests == []
    picker.choose(budget="")
    assert "Live mode needs a budget" in picker.message and picker.gate is None
    picker.choose(budget=DEFAULT_LIVE_BUDGET, factors=["max_tokens", "x_app"])
    assert picker.ready and "left out (they raise the cost): max_tokens=128000" in picker.cost_lines()[1]
    missing = MatrixPicker(PROFILE, None, None, s, budget=DEFAULT_LIVE_BUDGET, credential="nobody")
    assert "nobody" in missing.message and not missing.ready


# ------------------------------------------------------------------------------------------------ the widget
def test_the_widget_is_a_thin_layer_over_the_picker(tmp_path, sim):
    picker = MatrixPicker(PROFILE, None, None, sim_settings(tmp_path, sim.base_url))
    ui = MatrixWidget(picker)
    assert ui.profile.value == PROFILE and ui.design.value == "ofat" and not ui.send_button.disabled
    assert f"{picker.cells} cells" in ui.cost.value and ui.confirm_box.children == ()
    ui.none_button.click()
    assert picker.factors == [] and "No factor chosen" in ui.message.value and ui.send_button.disabled
    ui.factor_boxes["tools"].value = True
    ui.factor_boxes["x_app"].value = True
    assert set(picker.factors) == {"tools", "x_app"}
    assert ui.message.value == "" and f"{picker.cells} cells" in ui.cost.value and picker.cells == 9
    ui.budget.value = "nine"
    assert "not a whole number" in ui.message.value and ui.send_button.disabled
    ui.budget.value = ""
    ui.design.value = "pairwise"
    assert picker.chosen_design == "pairwise" and f"{picker.cells} cells" in ui.cost.value
    ui.path.value = str(CAPTURE)
    assert picker.profile == str(CAPTURE) and ui.profile.value == str(CAPTURE)
    ui.profile.value = PROFILE
    assert picker.profile == PROFILE and ui.path.value == "", "a profile picked from the list clears the file box"
    ui.design.value = "ofat"
    ui.send_button.click()
    assert picker.result is not None and ui.progress.value == ui.progress.max == picker.cells
    assert ui.progress_text.value == f"{picker.cells}/{picker.cells} cells"
    assert bytes(ui.chart.value).startswith(b"\x89PNG") and ui.chart.layout.display != "none"
    assert "Sent" in ui.status.value and ui.answer.value
    assert "text/plain" in ui._repr_mimebundle_() and "cells" in ui._repr_mimebundle_()["text/plain"]


def test_the_live_widget_keeps_send_off_until_confirmed(tmp_path):
    picker = MatrixPicker(PROFILE, None, None, live_settings(tmp_path), budget=DEFAULT_LIVE_BUDGET)
    ui = MatrixWidget(picker)
    assert ui.send_button.disabled and len(ui.confirm_box.children) == 1
    confirm = ui.confirm_box.children[0]
    button = next(c for c in confirm.children if hasattr(c, "on_click"))
    assert button.description.startswith("Confirm") and TOKEN not in str(confirm.children[0].value)
    calls = Calls()
    picker.run_options["client"] = calls.client()
    ui.send_button.click()  # click() ignores disabled: the picker refuses anyway
    assert calls.requests == [] and "waiting for your confirmation" in picker.status
    button.click()
    assert picker.confirmed and not ui.send_button.disabled
    ui.none_button.click()
    ui.factor_boxes["x_app"].value = True
    assert picker.factors == ["x_app"] and picker.ready and not picker.confirmed
    assert ui.send_button.disabled and ui.confirm_box.children[0] is not confirm, "a new choice, a new confirmation"
