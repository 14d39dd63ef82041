"""The notebooks as a person meets them: JupyterLab in Chromium, widgets clicked, against the simulator."""

import re
import shutil

from lanelab.config import data_dir

MASKED = re.compile(r"sk-ant-oat01-…")
FULL_TOKEN = re.compile(r"sk-ant-(?:oat|ort)01-[A-Za-z0-9_\-]{12,}")
CAPTURE = "hermes-0.19.0.jsonl"  # a stored capture of a real client (data/captures)


def token_posts(sim) -> int:
    return sum(1 for e in sim.state.requests() if e["path"] == "/v1/oauth/token")


def test_01_oauth_flow_by_clicking(lab_env, lab_page, chromium):
    lab_page.open_notebook("01_oauth_flow.ipynb")
    lab_page.run_all()
    assert not lab_page.errors()
    page = lab_page.page
    link = page.locator("a", has_text="Open the authorize page").first
    link.wait_for(timeout=30_000)
    lab_page.show(page.locator(".lanelab-login").first)
    lab_page.screenshot("01_a_authorize_link")
    href = link.get_attribute("href")
    assert href.startswith(lab_env["sim"].base_url + "/oauth/authorize")

    # The authorize page (served by the simulator) approves at once and shows the value to paste.
    callback = page.context.new_page()
    callback.goto(href)
    paste_value = callback.inner_text("#paste-value").strip()
    callback.screenshot(path=str(lab_page.shots / "01_b_callback_page.png"))
    callback.close()
    assert "#" in paste_value

    # A bad paste is refused beside the box, in plain words, and loses nothing.
    box = page.locator("input[type=password]").first
    box.fill("this is not a code")
    page.locator("button.widget-button", has_text="Exchange").first.click()
    error = page.locator(".widget-html span[style*='color']").first
    error.wait_for(timeout=15_000)
    assert "code#state" in error.inner_text() or "paste" in error.inner_text().lower()
    lab_page.show(page.locator(".lanelab-login").first)
    lab_page.screenshot("01_c_bad_paste")

    box.fill(paste_value)
    page.locator("button.widget-button", has_text="Exchange").first.click()
    # the exchange is done when the widget says so (the masked tokens of the credentials table further down the
    # notebook are on the page already, so they prove nothing)
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html')].some(e =>"
                           " /Exchange stays off until 'New link'/.test(e.textContent))", timeout=30_000)
    page.wait_for_function("() => /rate-limit tier/i.test(document.body.textContent)", timeout=30_000)
    # A second Exchange is refused: the button is off, the result says why, no second token request goes out and the
    # credential stays (a forced click on the disabled button does nothing).
    exchange = page.locator(".lanelab-login-exchange").first
    assert exchange.is_disabled() and exchange.inner_text().strip() == "Exchange"
    posts = token_posts(lab_env["sim"])
    exchange.click(force=True)
    page.wait_for_timeout(1_000)
    assert token_posts(lab_env["sim"]) == posts, "a second token request was sent"
    lab_page.show(exchange)
    beside_exchange = page.locator(".lanelab-login-exchanged").first
    assert beside_exchange.is_visible() and "click 'New link'" in beside_exchange.inner_text()
    assert page.locator(".lanelab-login-paste-error").first.inner_text().strip() == ""
    assert MASKED.search(page.locator(".lanelab-login").first.inner_text()), "the credential is kept, masked"
    assert "lanelab-login-exchange" in (exchange.get_attribute("class") or "")
    assert "New link" in (exchange.get_attribute("title") or ""), "the tooltip explains the disabled button"
    lab_page.screenshot("01_d_second_exchange_refused")

    # Save's error appears beside Save (once), and a good label then saves.
    label = page.locator(".lanelab-login-label input").first
    label.fill("not a label/..")
    save = page.locator(".lanelab-login-save").first
    save.click()
    beside = page.locator(".lanelab-login-save-error").first
    page.wait_for_function("() => /not a valid credential label/.test("
                           "document.querySelector('.lanelab-login-save-error')?.innerText || '')", timeout=15_000)
    assert page.locator(".lanelab-login-paste-error").first.inner_text().strip() == ""
    assert page.inner_text("body").count("is not a valid credential label") == 1, "each error appears once"
    lab_page.show(beside, "center")
    lab_page.screenshot("01_e_save_error_beside_save")
    label.fill("sim-pkce")
    save.click()
    page.wait_for_function("() => /Saved as/.test(document.body.innerText)", timeout=15_000)
    assert beside.inner_text().strip() == ""
    assert [b.inner_text().strip() for b in page.locator(".lanelab-login-link, .lanelab-login-exchange, "
                                                         ".lanelab-login-save").all()] == ["New link", "Exchange",
                                                                                           "Save"]
    lab_page.screenshot("01_f_masked_credential_and_profile")
    body = page.inner_text("body")
    assert MASKED.search(body), "the masked credential should be shown"
    assert not FULL_TOKEN.search(page.content()), "a full token reached the page"
    assert list((lab_env["root"] / "home").rglob("*.json")), "the credential was saved in LANELAB_HOME"


def test_02_request_matrix_run_then_pickers(lab_env, lab_page):
    captures = lab_env["root"] / "out" / "captures"  # what `lanelab capture` would have written
    captures.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir() / "captures" / CAPTURE, captures / CAPTURE)
    lab_page.open_notebook("02_request_matrix.ipynb")
    lab_page.run_all()
    assert not lab_page.errors()
    page = lab_page.page
    # tqdm.auto renders an ipywidgets progress bar; it must reach its end (n/n cells).
    bar_text = page.locator(".widget-hprogress, .widget-progress").first
    bar_text.wait_for(state="attached", timeout=30_000)
    bar_text.scroll_into_view_if_needed()
    lab_page.screenshot("02_a_progress_complete")
    counts = page.evaluate(  # textContent: Lab does not render cells scrolled out of view, innerText would be empty
        "() => [...document.querySelectorAll('.widget-hprogress')].map(e => e.parentElement.textContent)"
        ".filter(t => /\\d+\\/\\d+/.test(t))")
    assert counts, "no progress bar text found"
    done, total = map(int, re.search(r"(\d+)/(\d+)", counts[-1]).groups())
    assert done == total and total > 10
    # The heatmap is the last image output; it must have loaded (non-zero natural size).
    img = page.locator(".jp-RenderedImage img").last
    img.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const imgs = document.querySelectorAll('.jp-RenderedImage img');"
        " const i = imgs[imgs.length - 1]; return i && i.complete && i.naturalWidth > 300; }", timeout=30_000)
    lab_page.screenshot("02_b_heatmap")
    assert list((lab_env["root"] / "out" / "runs").glob("*.jsonl")), "the run was written under LANELAB_OUT"
    pickers_choose_and_send(lab_env, lab_page)


def cost_text(page) -> str:
    return page.locator(".lanelab-matrix-cost").first.inner_text()


def wait_cost_change(page, before: str) -> str:
    page.wait_for_function("([b]) => { const e = document.querySelector('.lanelab-matrix-cost');"
                           " return e && e.innerText.trim() && e.innerText !== b; }", arg=[before], timeout=30_000)
    return cost_text(page)


def factor_box(page, name: str):
    return (page.locator(".lanelab-matrix-factors .widget-checkbox")
            .filter(has=page.get_by_text(name, exact=True)).locator("input[type=checkbox]"))


def pickers_choose_and_send(lab_env, lab_page):
    """The pickers of notebook 02, once the notebook has run: a capture as the profile, a subset of factors, the
    count and cost following each choice, Send, the progress bar to its end, the chart."""
    page = lab_page.page
    profile = page.locator(".lanelab-matrix-profile select").first
    lab_page.show(profile)
    page.locator(".lanelab-matrix-cost").first.wait_for(timeout=30_000)
    assert not page.locator(".lanelab-matrix-send").first.is_disabled(), "sim mode: Send is ready at once"
    start = cost_text(page)
    assert re.match(r"\d+ cells: \d+ inference requests", start), start
    lab_page.screenshot("02_c_pickers_from_the_parameters")

    profile.select_option(label=f"capture: {CAPTURE}")
    after_profile = wait_cost_change(page, start)
    page.locator(".lanelab-matrix-factors").first.scroll_into_view_if_needed()
    page.locator("button.widget-button", has_text="None").first.click()
    page.wait_for_function("() => /No factor chosen/.test("
                           "document.querySelector('.lanelab-matrix-message')?.innerText || '')", timeout=30_000)
    assert page.locator(".lanelab-matrix-send").first.is_disabled(), "nothing to send without a factor"
    factor_box(page, "tools").check()
    one = wait_cost_change(page, after_profile)
    factor_box(page, "x_app").check()
    two = wait_cost_change(page, one)
    cells = [int(re.match(r"(\d+) cells", t).group(1)) for t in (start, one, two)]
    assert cells[0] > cells[2] > cells[1] > 1, cells
    assert page.locator(".lanelab-matrix-message").first.inner_text().strip() == ""
    lab_page.show(profile)
    lab_page.screenshot("02_d_capture_and_two_factors_chosen")

    send = page.locator(".lanelab-matrix-send").first
    send.scroll_into_view_if_needed()
    send.click()
    total = cells[2]
    page.wait_for_function("([n]) => (document.querySelector('.lanelab-matrix-progress-text')?.innerText || '')"
                           ".trim() === `${n}/${n} cells`", arg=[total], timeout=120_000)
    page.wait_for_function("() => { const i = document.querySelector('.lanelab-matrix-chart');"
                           " return i && i.complete && i.naturalWidth > 300 && i.offsetHeight > 100; }",
                           timeout=60_000)
    status = page.locator(".lanelab-matrix-status").first.inner_text()
    assert f"Sent {total} cells" in status
    lab_page.show(profile)
    lab_page.screenshot("02_e_sent_progress_complete")
    lab_page.show(page.locator(".lanelab-matrix-answer").first)
    lab_page.screenshot("02_f_first_look_chart")
    assert not lab_page.errors()
    runs = list((lab_env["root"] / "out" / "runs").glob(f"{CAPTURE.removesuffix('.jsonl')}-*.jsonl"))
    assert runs, "the capture's run was written under LANELAB_OUT/runs"


def test_03_explorer_shows_a_cell(lab_env, lab_page):
    lab_page.open_notebook("03_findings.ipynb")
    lab_page.run_all()
    assert not lab_page.errors()
    page = lab_page.page
    picker = page.locator(".lanelab-explorer-cell select").first
    picker.scroll_into_view_if_needed()
    title = page.locator(".lanelab-explorer-view .lanelab-explorer-title").first
    first = title.inner_text().strip()
    # option texts are "<run>: <change> · <status>", spaces as no-break spaces
    labels = [o.replace("\xa0", " ").strip() for o in picker.locator("option").all_inner_texts()]
    changes = [lbl.split(" · ")[0].split(": ")[-1] for lbl in labels]
    wanted = changes.index("tools=mcp__") if "tools=mcp__" in changes else 1
    picker.select_option(index=wanted)
    change = changes[wanted]
    page.wait_for_function("([c]) => (document.querySelector('.lanelab-explorer-view .lanelab-explorer-title')"
                           "?.innerText || '').trim() === c", arg=[change], timeout=30_000)
    assert change != first
    view = page.locator(".lanelab-explorer-view").first
    text = view.inner_text()
    assert "difference" in text and "The response" in text and "message (verbatim)" in text
    assert view.locator("table").count() >= 2, "the diff and the response tables"
    lab_page.show(picker)
    lab_page.screenshot("03_a_explorer_cell")
    lab_page.show(view.locator("h5", has_text="The response").first)
    lab_page.screenshot("03_b_explorer_response")
