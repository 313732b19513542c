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
from tests.report.test_html import build_run

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
    n_figures = report_html.count("<figure>") + report_html.count("<figure class=")
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


#: Per figure (and the overview): text elements whose box leaves the SVG's box, and pairs of text boxes
#: that overlap (tick labels run together, a legend over a label). Boxes as laid out by the browser.
TEXT_BOXES = """(() => {
  const out = [];
  for (const svg of document.querySelectorAll('figure svg')) {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => [t, t.getBoundingClientRect()])
      .filter(([t, r]) => r.width > 0 && r.height > 0 && t.textContent.trim());
    const outside = texts.filter(([t, r]) => r.left < box.left - 1 || r.right > box.right + 1 ||
                                          r.top < box.top - 1 || r.bottom > box.bottom + 1)
      .map(([t, r]) => t.textContent.trim());
    const overlaps = [];
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i][1], b = texts[j][1];
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0 && h > 0 && w * h > 0.3 * Math.min(a.width * a.height, b.width * b.height)) {
          overlaps.push([texts[i][0].textContent.trim(), texts[j][0].textContent.trim()]);
        }
      }
    }
    const fig = svg.closest('figure');
    const title = fig && fig.querySelector('figcaption b') ? fig.querySelector('figcaption b').textContent : '';
    out.push({title: title, n: texts.length, outside: outside, overlaps: overlaps});
  }
  return out;
})()"""


def _text_problems(html_text: str, tmp_path, name: str) -> list[dict]:
    browser, page, _ = open_report(html_text, tmp_path, name)
    with browser:
        boxes = page.evaluate(TEXT_BOXES)
    assert boxes and all(b["n"] > 0 for b in boxes)  # the check saw text in every figure
    return [b for b in boxes if b["outside"] or b["overlaps"]]


def test_no_figure_text_leaves_its_box_or_overlaps(report_html, tmp_path):
    assert _text_problems(report_html, tmp_path, "text.html") == []


def test_every_kind_figure_keeps_its_text_inside(tmp_path):
    from tests.claims.test_kinds import FIGURE_SUITE, fake_kind_record  # every quantity-based kind
    from claimbench.store.rundir import RunStore
    from claimbench.suite import expand, parse_suite
    suite = parse_suite(FIGURE_SUITE, "kinds.toml", "default")
    store = RunStore(tmp_path / "kinds")
    store.init(suite, "claimbench run kinds.toml", {"python": "3", "git_sha": "x", "packages": {}})
    for spec in expand(suite):
        store.append(fake_kind_record(spec))
    assert _text_problems(render_html(evaluate_run(store.dir)), tmp_path, "kinds.html") == []


def test_text_check_catches_a_label_outside_the_figure(report_html, tmp_path):
    """The check above can fail: a tick label moved beyond the SVG's edge, and one drawn over another."""
    import re
    svg = re.search(r"<svg\b.*?</svg>", report_html[report_html.index('id="B2"'):], re.S).group(0)
    moved = svg.replace("</svg>", '<text x="-400" y="20" style="font-size:12px">outside</text>'
                                  '<text x="60" y="40" style="font-size:12px">twin</text>'
                                  '<text x="62" y="41" style="font-size:12px">twin</text></svg>')
    problems = _text_problems(report_html.replace(svg, moved), tmp_path, "moved.html")
    assert any("outside" in p["outside"] for p in problems)
    assert any(["twin", "twin"] in p["overlaps"] for p in problems)


def test_published_batch_scaling_figures_keep_their_text_inside(tmp_path):
    """The real B1, B4 and B5 figures (the published 8-seed frames): B4's batch-size ticks once ran together."""
    from pathlib import Path

    import pandas as pd

    from claimbench.evaluation import Evaluation
    from claimbench.claims import evaluate_claims
    from claimbench.suite import load_suite, suites_dir
    root = Path(__file__).resolve().parents[2] / "reports" / "batch_scaling-default"
    evaluations = []
    for name in ("steps_to_target", "linear_scaling", "throughput"):
        suite = load_suite(str(suites_dir() / "batch_scaling" / f"{name}.toml"), "default")
        frame = pd.read_parquet(root / suite.name / "trials.parquet")
        evaluations.append(Evaluation(suite=suite, frame=frame, command="", environment={}, created="",
                                      results=evaluate_claims(suite.claims, frame, suite.design())))
    assert _text_problems(render_html(evaluations), tmp_path, "batch_scaling.html") == []
