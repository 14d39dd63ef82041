"""The notebooks as a person meets them: JupyterLab in Chromium, widgets clicked, against the simulator."""

import re

import pytest

MASKED = re.compile(r"sk-ant-oat01-…")
FULL_TOKEN = re.compile(r"sk-ant-(?:oat|ort)01-[A-Za-z0-9_\-]{12,}")


@pytest.fixture(scope="module")
def shots():
    return []


def test_01_oauth_flow_by_clicking(lab_env, lab_page, chromium):
    lab_page.open_notebook("01_oauth_flow.ipynb")
    lab_page.run_all()
    assert not lab_page.errors()
    page = lab_page.page
    link = page.locator("a", has_text="Open the authorize page").first
    link.wait_for(timeout=30_000)
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
    lab_page.screenshot("01_c_bad_paste")

    box.fill(paste_value)
    page.locator("button.widget-button", has_text="Exchange").first.click()
    page.wait_for_function("() => /sk-ant-oat01-…/.test(document.body.innerText)", timeout=30_000)
    page.wait_for_function("() => /max|plan/i.test(document.body.innerText)", timeout=30_000)
    page.locator("button.widget-button", has_text="Save").first.click()
    page.wait_for_function("() => /Saved as/.test(document.body.innerText)", timeout=15_000)
    lab_page.screenshot("01_d_masked_credential_and_profile")
    body = page.inner_text("body")
    assert MASKED.search(body), "the masked credential should be shown"
    assert not FULL_TOKEN.search(page.content()), "a full token reached the page"
    assert list((lab_env["root"] / "home").rglob("*.json")), "the credential was saved in LANELAB_HOME"


def test_02_request_matrix_progress_and_heatmap(lab_env, lab_page):
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
