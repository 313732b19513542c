"""The report in a real browser: headless Chromium, driven over the DevTools protocol (tests/cdp.py).

Fails on any network request other than the report file itself, on any console
error, uncaught exception or error log entry (a CSP violation is one), and
checks that the verdict table and every figure are laid out with a visible size.
Skipped where no Chromium is installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import pytest

from claimbench.api import evaluate_run
from claimbench.report import render_html
from tests.cdp import Browser, find_chromium
from tests.test_report import build_run

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

LAYOUT = """(() => {
  const table = document.querySelector('#cb-verdicts table.verdicts');
  const rows = table ? table.querySelectorAll('tbody tr:not(.section):not(.stratum)') : [];
  const figs = [...document.querySelectorAll('figure svg')].map(s => {
    const r = s.getBoundingClientRect();
    return [r.width, r.height, s.querySelectorAll('path, rect, line, text, use').length];
  });
  const tr = table ? table.getBoundingClientRect() : {width: 0, height: 0};
  return {rows: rows.length, table: [tr.width, tr.height], figs: figs,
          sections: document.querySelectorAll('section.claim').length,
          scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth};
})()"""


def open_report(html_text: str, tmp_path, name: str = "report.html"):
    path = tmp_path / name
    path.write_text(html_text, encoding="utf-8")
    browser = Browser(CHROMIUM)
    page = browser.open(path.as_uri())
    return browser, page, path


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("run")
    build_run(run)
    return render_html(evaluate_run(run))


def test_report_renders_offline_without_errors(report_html, tmp_path):
    browser, page, path = open_report(report_html, tmp_path)
    with browser:
        log = page.log()
        layout = page.evaluate(LAYOUT)
        page.screenshot(str(tmp_path / "report.png"))
    # inline data: URLs (a figure's embedded raster) are not requests; anything else is
    fetched = [u for u in log.requests if u != path.as_uri() and not u.startswith("data:")]
    assert fetched == [], "the report must make no network request"
    assert log.errors() == []
    n_claims = report_html.count('<section class="claim')
    assert layout["sections"] == n_claims >= 2
    assert layout["rows"] == n_claims and layout["table"][0] > 300 and layout["table"][1] > 50
    n_figures = report_html.count("<figure>")
    assert len(layout["figs"]) == n_figures >= 4
    for width, height, marks in layout["figs"]:
        assert width > 200 and height > 100 and marks > 10  # laid out, visible, and actually drawn
    assert layout["scrollWidth"] <= layout["width"] + 1  # nothing overflows the page sideways
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_harness_catches_requests_and_errors(report_html, tmp_path):
    """The checks above can fail: a report that fetches something or logs an error is caught."""
    bad = report_html.replace("</body>", '<img src="http://example.invalid/pixel.png">'
                                         "<script>console.error('boom')</script></body>")
    browser, page, path = open_report(bad, tmp_path, "bad.html")
    with browser:
        log = page.log()
    # the CSP blocks both: the blocked image and the blocked inline script are logged as errors
    assert any("example.invalid" in e or "Content Security Policy" in e for e in log.errors()), log
    no_csp = bad.replace('<meta http-equiv="Content-Security-Policy"', '<meta name="x-disabled"')
    browser, page, path = open_report(no_csp, tmp_path, "no_csp.html")
    with browser:
        log = page.log()
    assert "http://example.invalid/pixel.png" in log.requests
    assert ("error", "boom") in log.console
