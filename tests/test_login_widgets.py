"""The login step-through without a browser: LoginFlow's steps, messages and errors, and the widgets over it."""

import html
import stat

import pytest
from lanelab.auth import oauth
from lanelab.auth.flow import STEPS, FlowOrderError, LoginFlow
from lanelab.auth.oauth import EndpointSetError
from lanelab.auth.widget import LoginWidget
from lanelab.config import Settings


def make_flow(sim, tmp_path, **kw):
    return LoginFlow(Settings(mode="sim", base_url=sim.base_url, home=tmp_path / "home"), **kw)


def test_flow_walks_every_step_in_order(sim, tmp_path):
    flow = make_flow(sim, tmp_path, variant="axios-form")
    assert flow.current_step == "choose"
    url = flow.start()
    assert flow.current_step == "paste" and url == flow.authorize_url
    assert flow.submit(flow.headless_paste(auto=True)) and flow.error is None
    assert flow.current_step == "inspect"
    account = flow.inspect()
    assert account.rate_limit_tier and not account.errors
    path = flow.save("my-label")
    assert flow.current_step is None and flow.done == set(STEPS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.name == "my-label.json"
    assert (flow.credential.mode, flow.credential.issuer) == ("sim", sim.base_url.rstrip("/"))
    text = repr(flow) + flow._repr_html_() + " ".join(m.text for m in flow.messages)
    assert flow.credential.access_token not in text and flow.credential.refresh_token not in text


@pytest.mark.parametrize("mode,label", [("sim", "sim-pkce"), ("live", "live-pkce")])
def test_the_default_label_follows_the_mode(tmp_path, mode, label):
    flow = LoginFlow(Settings.from_env({"LANELAB_MODE": mode, "LANELAB_HOME": str(tmp_path)}))
    assert flow.label == label and flow.credential is None
    assert LoginFlow(Settings(mode=mode, home=tmp_path), label="mine").label == "mine"


def test_steps_out_of_order_say_what_comes_first(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    with pytest.raises(FlowOrderError, match="open the authorize link"):
        flow.submit_paste("abc#def")
    flow.start()
    with pytest.raises(FlowOrderError, match="paste the code"):
        flow.exchange()
    with pytest.raises(FlowOrderError, match="exchange the code"):
        flow.save()


def test_bad_paste_keeps_the_step_and_shows_the_error(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    flow.start()
    assert not flow.submit("sk-ant-ort01-" + "k" * 40)
    assert flow.current_step == "paste" and "refresh token" in flow.error and "k" * 40 not in flow.error
    assert flow.messages[-1].level == "error"


def test_stale_paste_after_restart_is_a_state_mismatch(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    flow.start()
    stale = flow.headless_paste(auto=True)
    flow.start()  # restart: new PKCE and state
    assert not flow.submit(stale)
    assert "forged callback" in flow.error and stale.split("#")[0] not in flow.error
    assert flow.submit(flow.headless_paste(auto=True))


def test_exchange_failure_is_shown_and_paste_must_be_redone(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    flow.start()
    value = flow.headless_paste(auto=True)
    assert flow.submit(value)
    flow._reset_from("paste")
    assert not flow.submit(value)  # the code was single-use
    assert "HTTP 400" in flow.error and flow.current_step == "paste"


def test_endpoint_set_must_match_mode(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    assert flow.endpoint_choices == oauth.list_endpoint_sets("sim")
    with pytest.raises(EndpointSetError, match="LANELAB_MODE=live"):
        flow.choose("live-claude-ai")


def test_live_mode_never_fakes_a_paste(tmp_path):
    flow = LoginFlow(Settings(mode="live", base_url="https://api.anthropic.com", home=tmp_path))
    assert flow.endpoints is None and flow.endpoint_choices[0].startswith("live-")
    flow.start()
    assert "claude" in flow.authorize_url
    assert flow.headless_paste(auto=True) is None
    assert flow.headless_paste("given#value") == "given#value"


def test_widgets_drive_the_flow(sim, tmp_path):
    flow = make_flow(sim, tmp_path, label="from-widget")
    ui = LoginWidget(flow)
    assert "New link" in ui.link.value
    ui.variant.value = "axios-form"
    ui.link_button.click()
    assert flow.authorize_url and flow.authorize_url.replace("&", "&amp;") in ui.link.value
    ui.paste.value = "   "
    ui.submit_button.click()
    assert "Nothing was pasted" in ui.error.value and flow.current_step == "paste"
    value = flow.headless_paste(auto=True)
    ui.paste.value = value
    ui.submit_button.click()
    assert ui.paste.value == "" and ui.error.value == ""  # the code does not linger in widget state
    assert flow.variant.name == "axios-form" and flow.account is not None
    assert "oauth_access" in ui.result.value and "claude_max" in ui.result.value
    ui.label.value = " bad label "
    ui.save_button.click()
    assert "not a valid credential label" in ui.save_error.value and ui.error.value == ""  # beside Save, once
    ui.label.value = "from-widget"
    ui.save_button.click()
    assert (tmp_path / "home" / "credentials" / "from-widget.json").exists() and "Saved as" in ui.result.value
    everything = " ".join(str(getattr(ui, n).value) for n in ("steps", "link", "error", "result", "paste"))
    for secret in (flow.credential.access_token, flow.credential.refresh_token, value.split("#")[0]):
        assert secret not in everything


def test_widget_endpoint_choice_is_applied(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    ui = LoginWidget(flow)
    ui.endpoints.value = "sim-full-scopes"
    ui.link_button.click()
    assert flow.endpoints.name == "sim-full-scopes" and "user%3Amcp_servers" in flow.authorize_url


def _token_posts(sim) -> int:
    return sum(1 for e in sim.state.requests() if e["path"] == "/v1/oauth/token")


def test_a_second_exchange_keeps_the_credential(sim, tmp_path):
    """Issue 16: a second Exchange after a success used to spend the single-use code again (invalid_grant), drop the
    credential and leave Save refusing. Now the flow refuses without calling the server and keeps the credential."""
    flow = make_flow(sim, tmp_path)
    flow.start()
    value = flow.headless_paste(auto=True)
    assert flow.submit(value) and flow.exchanged
    credential, posts = flow.credential, _token_posts(sim)
    with pytest.raises(FlowOrderError, match="already exchanged; the credential it gave is kept"):
        flow.submit(value)
    with pytest.raises(FlowOrderError, match="already exchanged"):
        flow.exchange()
    assert _token_posts(sim) == posts, "no second token request"
    assert flow.credential is credential and {"paste", "exchange"} <= flow.done
    assert flow.save("kept").name == "kept.json"
    flow.start()  # a new link starts over: exchanging is possible again
    assert not flow.exchanged and flow.submit(flow.headless_paste(auto=True))


def test_the_widget_disables_and_explains_a_second_exchange(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    ui = LoginWidget(flow)
    labels = {b: b.description for b in (ui.link_button, ui.submit_button, ui.save_button)}
    assert ui.save_button.disabled and not ui.submit_button.disabled
    ui.link_button.click()
    value = flow.headless_paste(auto=True)
    ui.paste.value = value
    ui.submit_button.click()
    assert flow.exchanged and ui.submit_button.disabled and ui.paste.disabled and not ui.save_button.disabled
    assert "New link" in ui.submit_button.tooltip and "Exchange stays off until 'New link'" in ui.result.value
    posts = _token_posts(sim)
    ui.paste.value = value
    ui.submit_button.click()  # a click that gets through anyway (click() ignores disabled)
    assert _token_posts(sim) == posts and flow.credential is not None
    assert "already exchanged" in ui.error.value and ui.save_error.value == "" and ui.link_error.value == ""
    assert "already exchanged" not in ui.steps.value, "each error appears once"
    ui.label.value = "after-second-click"
    ui.save_button.click()
    assert (tmp_path / "home" / "credentials" / "after-second-click.json").exists()
    assert ui.error.value == "" and ui.save_error.value == ""
    ui.link_button.click()
    assert not ui.submit_button.disabled and not ui.paste.disabled
    assert {b: b.description for b in labels} == labels, "buttons keep their labels"


def test_each_error_appears_once_beside_its_button(sim, tmp_path):
    flow = make_flow(sim, tmp_path)
    ui = LoginWidget(flow)
    ui.save_button.click()  # before any exchange: refused beside Save
    assert "exchange the code" in ui.save_error.value.lower() and ui.error.value == "" and ui.link_error.value == ""
    ui.endpoints.value = flow.endpoint_choices[0]
    ui.link_button.click()
    assert ui.save_error.value == "", "a later action clears an earlier error"
    ui.paste.value = "not a code"
    ui.submit_button.click()
    shown = [w.value for w in (ui.link_error, ui.error, ui.save_error, ui.steps, ui.result)]
    message = html.escape(flow.error)
    assert flow.error and sum(message in v for v in shown) == 1 and message in ui.error.value
