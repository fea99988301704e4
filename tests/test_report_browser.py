"""The generated report in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

No console errors, every figure drawn (2-D: SVG with traces; 3-D: a WebGL canvas), every claim in the table, the
selectors and claim links switch figures, the counts per source and the extension groups visible, no network
requests. Screenshot: ``test-artifacts/report.png``.
Install the browser with ``scripts/install_browser.sh``. Without it the test skips, or fails when ``CI`` is set.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from innerworks.report.html import render_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser

# A figure counts as drawn when Plotly built it (_fullData) and painted something: cartesian traces or heatmap
# images in its SVG for 2-D, a non-empty WebGL canvas for 3-D; and Plotly's "WebGL is not supported" note is absent.
_DRAWN_JS = """
const v = document.getElementById(arguments[0]);
const p = v && v.querySelector('.plot');
if (!p || p.dataset.rendered !== '1') return {ok: false, why: 'not rendered: ' + (p && p.dataset.rendered)};
const r = p.getBoundingClientRect();
const out = {w: r.width, h: r.height, traces: (p._fullData || []).length,
             svg: p.querySelectorAll('svg.main-svg').length,
             marks: p.querySelectorAll('.cartesianlayer g.trace, .cartesianlayer image, g.hm image').length,
             canvases: Array.from(p.querySelectorAll('.gl-container canvas')).filter(c => c.width > 0 && c.height > 0)
                         .length,
             nowebgl: /WebGL is not supported/i.test(p.textContent), is3d: p.classList.contains('gl3d')};
out.ok = out.w > 100 && out.h > 100 && out.traces > 0 && out.svg > 0 && !out.nowebgl &&
         (out.is3d ? out.canvases > 0 : out.marks > 0);
return out;
"""


def _browser_or_skip() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    msg = f"{', '.join(missing)} not found: run scripts/install_browser.sh (Debian chromium + chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def driver():
    _browser_or_skip()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # selenium is a dev dependency
        if os.environ.get("CI"):
            pytest.fail("selenium is not installed (pip install -e '.[dev]')")
        pytest.skip("selenium is not installed")
    profile = tempfile.mkdtemp(prefix="innerworks-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                # 3-D figures need WebGL; with no GPU that is SwiftShader, which Chromium now wants asked for.
                "--enable-unsafe-swiftshader", f"--user-data-dir={profile}", "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def loaded(driver, tmp_path_factory):
    from selenium.webdriver.support.ui import WebDriverWait
    from test_report import build_fake_run

    run, ids = build_fake_run(tmp_path_factory.mktemp("browser"))
    page = render_report(run)
    driver.get(page.as_uri())
    count_js = "return document.querySelectorAll('.plot[data-rendered=\"1\"]').length"
    try:  # the 4 figures shown at load: pca3d_gru, eigenspectrum, attention_copy_gru, loglog_ntk
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(count_js) == 4)
    except Exception:
        drawn = driver.execute_script(count_js)
        pytest.fail(f"{drawn} of 4 figures drawn at load; console: {driver.get_log('browser')}")
    return driver, run, ids


def _wait_drawn(driver, variant_id: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    state: dict = {}

    def drawn(d) -> bool:
        state.update(d.execute_script(_DRAWN_JS, variant_id))
        return bool(state["ok"])

    try:
        WebDriverWait(driver, 20, poll_frequency=0.1).until(drawn)
    except Exception:
        pytest.fail(f"figure {variant_id} not drawn: {state}")
    return state


def _severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_report_in_chromium(loaded) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, run, ids = loaded
    assert _severe(driver) == []

    # The claims table lists every claim, paper-grounded first in each stage.
    rows = driver.find_elements(By.CSS_SELECTOR, "#claims-table tr.claim-row")
    assert [r.get_attribute("data-claim-id") for r in rows] == ids

    # The headline shows the counts per source, the extensions apart; the extension groups are visible and labelled.
    counts = driver.find_elements(By.CSS_SELECTOR, "#verdict .count")
    assert [c.text for c in counts] == ["2/2 paper", "1/1 predecessor", "0/1 author code", "1/2 extension"]
    assert all(c.is_displayed() for c in counts)
    groups = driver.find_elements(By.CSS_SELECTOR, "#claims-table tr.source-group.extension")
    assert len(groups) == 2 and all(g.is_displayed() for g in groups)
    assert groups[0].text.startswith("Extensions: not part of the paper's count")
    table = driver.find_element(By.ID, "thresholds-integration")
    assert table.is_displayed() and "issue: '>= 90% of the variance in 2 PCs'" in table.text

    # Every figure: the shown ones directly, the others through their group's selector.
    variants = driver.find_elements(By.CSS_SELECTOR, ".fig-variant")
    plotted = [v.get_attribute("id") for v in variants if v.find_elements(By.CSS_SELECTOR, ".plot")]
    assert len(plotted) == 8  # 2 PCA, eigenspectrum, 4 heatmaps, log-log; broken one and PNG-only have no .plot
    seen = set()
    for group in driver.find_elements(By.CSS_SELECTOR, ".fig-group"):
        selects = group.find_elements(By.CSS_SELECTOR, "select.fig-select")
        if not selects:
            vid = group.find_element(By.CSS_SELECTOR, ".fig-variant").get_attribute("id")
            if vid in plotted:
                _wait_drawn(driver, vid)
                seen.add(vid)
            continue
        driver.execute_script("arguments[0].scrollIntoView()", group)
        select = Select(selects[0])
        values = [o.get_attribute("value") for o in select.options]
        for vid in values:
            select.select_by_value(vid)
            state = _wait_drawn(driver, vid)
            seen.add(vid)
            # Switching purges the previous plot: one drawn figure per group.
            shown = group.find_elements(By.CSS_SELECTOR, ".fig-variant:not([hidden])")
            assert [e.get_attribute("id") for e in shown] == [vid], state
        select.select_by_index(0)
    assert seen == set(plotted)

    # A claim's figure link selects that variant in its group and draws it.
    link = driver.find_element(By.CSS_SELECTOR, 'tr[data-claim-id="temporal_dominates"] a.figlink')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    _wait_drawn(driver, "fig-attention-attention_copy_lstm")
    assert Select(driver.find_element(By.CSS_SELECTOR, 'select[data-group="group-attention-attention"]')) \
        .first_selected_option.get_attribute("value") == "fig-attention-attention_copy_lstm"

    # The broken figure is a visible note; the failed stage shows its error.
    note = driver.find_element(By.CSS_SELECTOR, "#fig-attention-broken .fig-error")
    assert note.is_displayed() and "invalid JSON" in note.text
    assert "kernel diverged <script>" in driver.find_element(By.CSS_SELECTOR, "#stage-wide .error-box").text

    # Nothing was fetched from a network: every resource is the file itself or inline data.
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in urls if not u.startswith(("file:", "data:", "blob:"))] == []
    assert _severe(driver) == []

    # Screenshot of the whole page, as a test artefact.
    driver.execute_script("window.scrollTo(0, 0)")
    _wait_drawn(driver, "fig-integration-pca3d_gru")
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1},
    })
    out = ARTIFACTS / "report.png"
    out.write_bytes(base64.b64decode(shot["data"]))
    assert out.stat().st_size > 50_000
