"""The HTML report fits a 1280-pixel window in a real Chromium: no page-wide horizontal scroll, no table or figure
wider than its column. The screenshot lands in reports/screenshots/report-1280.png."""

from __future__ import annotations

from lanelab.config import data_dir, repo_root
from lanelab.findings import bundles, report
from lanelab.runs import load_runs


def test_the_report_fits_1280_pixels(chromium, tmp_path):
    runs = load_runs(sorted((data_dir() / "runs" / "samples").glob("*.jsonl")))
    findings = report.collect(runs, bundles=bundles.load_bundles(bundles.shipped_bundles()))
    html_path, _ = report.write_reports(findings, tmp_path)
    context = chromium.new_context(viewport={"width": 1280, "height": 2000})
    page = context.new_page()
    try:
        page.goto(html_path.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        too_wide = page.evaluate("""[...document.querySelectorAll('div.table')]
            .filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.querySelector('th')?.innerText)""")
        assert too_wide == [], f"tables wider than the page: {too_wide}"
        images = page.evaluate("[...document.querySelectorAll('img')].map(i => i.getBoundingClientRect().right)")
        assert images and max(images) <= 1280
        assert page.inner_text("#answer").startswith("hermes-0.14.0's request, as sent")
        shots = repo_root() / "reports" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "report-1280.png"))
    finally:
        context.close()
