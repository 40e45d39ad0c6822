"""The web console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by scripts/install-test-deps.sh) driven by Selenium against the
console the binary serves at `/`.

Shown: the page opens; the editor completes tables, columns and functions; a query typed into
the editor runs and its rows fill the grid; the chart's canvas has drawn pixels of the series'
colours (split by a dimension: one series per value); an SQL error is shown and marked in the
editor; a CSV download holds the rows; the schema browser lists a table and its columns with
types and roles; the status page reads /metrics; with `--require-auth` the login form refuses a
wrong token with a message and a right one works
(kept in sessionStorage, never localStorage); a dashboard built in the browser (two panels) is
saved, reopened from its URL with the same range and drawn, and in live mode (`refresh=1s` in the
URL) shows a row written after it opened; its JSON export imports back as an equal dashboard; the
dashboards API names the field of each invalid body and keeps dashboards across a restart.

Figures printed: the time to the first chart of a 100,000-point query (from the click on Run to
the chart drawn, in the browser) and the console's bundle size as served (gzip).
Screenshots of every page: target/console-screenshots/ (the path is printed).
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest
import requests

from sectest import add_user

REPO_ROOT = Path(__file__).resolve().parents[2]
SHOTS = REPO_ROOT / "target" / "console-screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30
T0_NS = 1_700_000_000_000_000_000
SYMBOLS = ("AAPL", "MSFT", "NVDA")
POINTS = 100_000
# The chart's first three series colours (console/src/chart.js PALETTE).
PALETTE = [(0x2F, 0x6F, 0xDF), (0xE0, 0x62, 0x2B), (0x2A, 0x9D, 0x55)]


def _driver(downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, (f"{missing} missing: run scripts/install-test-deps.sh (Debian's chromium "
                         "and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(WAIT_S)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {SHOTS}")
    return SHOTS


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = _driver(downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _write(url: str, db: str, lines: list[str], headers=None):
    for i in range(0, len(lines), 50_000):
        r = requests.post(f"{url}/api/v3/write_lp", params={"db": db},
                          data="\n".join(lines[i:i + 50_000]).encode(), headers=headers or {},
                          timeout=120)
        assert r.status_code == 204, r.text


def _market_lines() -> list[str]:
    quotes = [f"quotes,sym={s} price={100 + 10 * k + (i % 7)},size={i}i {T0_NS + i * 1_000_000_000}"
              for i in range(60) for k, s in enumerate(SYMBOLS)]
    ticks = [f"ticks v={(i % 1000) / 10} {T0_NS + i * 1_000_000}" for i in range(POINTS)]
    return quotes + ticks


@pytest.fixture(scope="module")
def console(module_server):
    srv = module_server()
    _write(srv.url, "market", _market_lines())
    return srv


def wait(driver, condition, what: str, timeout: float = WAIT_S):
    """Polls `condition(driver)` until truthy; fails naming `what` (with the page's errors)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition(driver)
        except Exception:  # noqa: BLE001 - elements come and go while the page renders
            value = None
        if value:
            return value
        time.sleep(0.05)
    errors = driver.execute_script(
        "return [...document.querySelectorAll('.error')].map(e => e.textContent).join(' | ')")
    pytest.fail(f"timed out after {timeout} s waiting for {what}; page errors: {errors!r}")


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def type_sql(driver, sql: str):
    """Replaces the editor's text by typing (the real editor: keymap, brackets, completion)."""
    from selenium.webdriver.common.keys import Keys

    content = wait(driver, lambda d: css(d, "#editor .cm-content"), "the SQL editor")[0]
    content.click()
    content.send_keys(Keys.CONTROL, "a")
    content.send_keys(Keys.DELETE)
    content.send_keys(sql)
    content.send_keys(Keys.ESCAPE)  # closes a completion popup


def run_sql(driver, sql: str):
    type_sql(driver, sql)
    started = time.monotonic()
    css(driver, "#run")[0].click()
    return started


def grid_rows(driver) -> int:
    grids = css(driver, "#grid")
    return int(grids[0].get_attribute("data-rows")) if grids else -1


COLOURED_PIXELS_JS = """
const canvas = document.querySelector('#chart canvas');
if (!canvas) return null;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const palette = arguments[0];
const counts = palette.map(() => 0);
let opaque = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i + 3] === 0) continue;
  opaque++;
  palette.forEach(([r, g, b], k) => {
    if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) counts[k]++;
  });
}
return {opaque, counts, width: canvas.width, height: canvas.height};
"""


def chart_pixels(driver) -> dict:
    wait(driver, lambda d: css(d, "#chart[data-drawn]"), "the chart to be drawn")
    return driver.execute_script(COLOURED_PIXELS_JS, PALETTE)


def test_query_grid_chart_error_and_download(browser, console, shots):
    browser.get(console.url + "/")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    assert browser.title == "Hourglass console"

    run_sql(browser, "SELECT time, sym, price FROM market.quotes ORDER BY time")
    wait(browser, lambda d: grid_rows(d) == 180, "180 rows in the grid")
    cells = [c.text for c in css(browser, ".grid-row .grid-cell")]
    assert "AAPL" in cells and "MSFT" in cells, cells[:20]
    header = [c.text for c in css(browser, ".grid-header .grid-cell")]
    assert header == ["#", "time", "sym", "price"], header
    pixels = chart_pixels(browser)
    # Split by sym automatically: three series, each drawn in its own colour.
    legend = [e.text for e in css(browser, ".u-legend .u-series")]
    assert len(legend) == 4 and all(any(s in t for t in legend) for s in SYMBOLS), legend
    assert all(n > 50 for n in pixels["counts"]), pixels
    browser.save_screenshot(str(shots / "query-chart.png"))

    # By hand: bars, no split (one series).
    from selenium.webdriver.support.ui import Select

    Select(css(browser, "#chart-split")[0]).select_by_value("")
    Select(css(browser, "#chart-mode")[0]).select_by_value("bars")
    pixels = chart_pixels(browser)
    assert len(css(browser, ".u-legend .u-series")) == 2
    assert pixels["counts"][0] > 500 and pixels["counts"][1] == 0, pixels
    browser.save_screenshot(str(shots / "query-bars.png"))

    # CSV download of the same statement.
    css(browser, "#download-csv")[0].click()
    csv = wait(browser, lambda d: [p for p in d.downloads.glob("*.csv")], "the CSV download")[0]
    lines = wait(browser, lambda d: csv.read_text().splitlines(), "the CSV's content")
    assert lines[0] == "time,sym,price" and len(lines) == 181, lines[:3]

    # An error: shown, and marked in the editor.
    run_sql(browser, "SELECT price FROM market.no_such_table")
    message = wait(browser, lambda d: [e for e in css(d, "#query-error") if e.is_displayed()],
                   "the error")[0].text
    assert "no_such_table" in message, message
    wait(browser, lambda d: css(d, ".cm-lintRange-error"), "the error marked in the editor")
    browser.save_screenshot(str(shots / "query-error.png"))

    # History: the statements run, newest first.
    history = [e.get_attribute("title") for e in css(browser, "#history li")]
    assert history[:2] == ["SELECT price FROM market.no_such_table",
                           "SELECT time, sym, price FROM market.quotes ORDER BY time"], history


def test_completion_of_tables_columns_and_functions(browser, console, shots):
    browser.get(console.url + "/#/query")
    # The schema for completion is loaded with the page: the database list shows it arrived.
    wait(browser, lambda d: css(d, '#db option[value="market"]'), "the schema")

    def offered(text: str) -> list[str]:
        from selenium.webdriver.common.keys import Keys

        content = css(browser, "#editor .cm-content")[0]
        content.click()
        content.send_keys(Keys.CONTROL, "a")
        content.send_keys(Keys.DELETE)
        content.send_keys(text)
        return wait(browser, lambda d: [e.text for e in css(d, ".cm-tooltip-autocomplete li")],
                    f"completions of {text!r}")

    assert any("quotes" in o for o in offered("SELECT * FROM market.quo")), "table"
    assert any("price" in o for o in offered("SELECT market.quotes.pri")), "column"
    assert any("zscore" in o for o in offered("SELECT zsc")), "Hourglass function"
    browser.save_screenshot(str(shots / "query-completion.png"))


def test_first_chart_of_100000_points(browser, console, shots):
    browser.get(console.url + "/#/query")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    started = run_sql(browser, "SELECT time, v FROM market.ticks ORDER BY time")
    wait(browser, lambda d: css(d, "#chart[data-drawn]"), "the chart of 100,000 points", 120)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert grid_rows(browser) == POINTS
    pixels = chart_pixels(browser)
    assert pixels["counts"][0] > 1000, pixels
    in_page_ms = int(css(browser, "#chart")[0].get_attribute("data-ms"))
    # The grid stays fast: jump to the end, the last row is there at once.
    t = time.monotonic()
    browser.execute_script("const v = document.querySelector('.grid-viewport'); v.scrollTop = v.scrollHeight;")
    wait(browser, lambda d: any(c.text == f"{POINTS}" for c in css(d, ".grid-row .grid-num")),
         "the last row after scrolling")
    scroll_ms = (time.monotonic() - t) * 1000
    assert len(css(browser, ".grid-row")) < 200, "the grid must render only the rows in view"
    browser.save_screenshot(str(shots / "query-100k.png"))
    print(f"\nFIGURE console time to first chart, {POINTS:,} points: {in_page_ms} ms in the page "
          f"(Run to chart drawn, query included), {elapsed_ms:.0f} ms seen by the test; "
          f"grid jump to row {POINTS:,}: {scroll_ms:.0f} ms")


def test_schema_browser(browser, console, shots):
    browser.get(console.url + "/#/schema")
    link = wait(browser, lambda d: css(d, 'a.table-link[data-table="market.quotes"]'),
                "market.quotes in the schema tree")[0]
    assert css(browser, 'a.table-link[data-table="market.ticks"]')
    link.click()
    wait(browser, lambda d: css(d, "#table-rows")[0].text == "180", "the row count of quotes")
    columns = {tuple(td.text for td in css(tr, "td")) for tr in css(browser, "#columns tbody tr")}
    names = {c[0]: c for c in columns}
    assert names["time"][2] == "time" and "Timestamp" in names["time"][1], columns
    assert names["sym"][2] == "dimension", columns
    assert names["price"][2] == "measure" and names["price"][1] == "Float64", columns
    assert names["size"][2] == "measure" and names["size"][1] == "Int64", columns
    browser.save_screenshot(str(shots / "schema.png"))


def test_status_page(browser, console, shots):
    browser.get(console.url + "/#/status")
    card = wait(browser, lambda d: css(d, '[data-group="Memory store"] dd'), "the memory store")
    assert card[0].text
    metrics = [e.text for e in css(browser, "#metrics tbody code")]
    assert "hourglass_wal_bytes" in metrics, metrics
    browser.save_screenshot(str(shots / "status.png"))


def test_served_files_headers_and_bundle_size(console):
    page = requests.get(console.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-cache"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text  # no inline script
    # POST / is still the Timestream API (without --require-auth, unsigned requests are served).
    ts = requests.post(console.url + "/", data=b"{}", timeout=30,
                       headers={"X-Amz-Target": "Timestream_20181101.ListDatabases",
                                "Content-Type": "application/x-amz-json-1.0"})
    assert ts.status_code == 200, ts.text[:300]
    assert "market" in [d["DatabaseName"] for d in ts.json()["Databases"]], ts.text[:300]
    raw = gz = 0
    for path in [p.split('"', 1)[0] for p in page.text.split('="/console/')[1:]]:
        r = requests.get(f"{console.url}/console/{path}", headers={"Accept-Encoding": "gzip"},
                         stream=True, timeout=30)
        assert r.status_code == 200, path
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable", path
        body = r.raw.read()
        if r.headers.get("Content-Encoding") == "gzip":
            gz += len(body)
            raw += len(gzip.decompress(body))
        else:
            gz += len(body)
            raw += len(body)
        again = requests.get(f"{console.url}/console/{path}", timeout=30,
                             headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304, path
    assert requests.get(console.url + "/console/assets/nope.js", timeout=30).status_code == 404
    assert raw > gz > 0
    print(f"\nFIGURE console bundle: {raw / 1024:.0f} KiB, {gz / 1024:.0f} KiB gzip "
          "(scripts and styles the page loads)")


def test_login_with_auth_on(hourglass_bin, module_server, tmp_path_factory, shots):
    srv = module_server(args=["--require-auth"])
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    _write(srv.url, "market", _market_lines()[:180],
           headers={"Authorization": f"Token {op['token']}"})
    reader = add_user(hourglass_bin, srv.data_dir, "reader", ("market", "read"))
    driver = _driver(tmp_path_factory.mktemp("downloads-auth"))
    try:
        driver.get(srv.url + "/")
        field = wait(driver, lambda d: css(d, "#login-token"), "the login form")[0]
        assert not css(driver, "#nav-query"), "the pages must wait for the login"
        field.send_keys("hgt_" + "0" * 32)
        css(driver, "#login-submit")[0].click()
        refused = wait(driver, lambda d: css(d, "#login-error")[0].text, "the refusal")
        assert "refused" in refused.lower(), refused
        assert not css(driver, "#nav-query")
        assert driver.execute_script("return sessionStorage.length") == 0
        driver.save_screenshot(str(shots / "login-refused.png"))

        field = css(driver, "#login-token")[0]
        field.clear()
        field.send_keys(reader["token"])
        css(driver, "#login-submit")[0].click()
        wait(driver, lambda d: css(d, "#nav-query.active"), "the query page after login")
        run_sql(driver, "SELECT time, sym, price FROM market.quotes")
        wait(driver, lambda d: grid_rows(d) == 180, "the reader's rows")
        stored = driver.execute_script(
            "return [Object.values(sessionStorage), Object.values(localStorage).join(' ')]")
        assert stored[0] == [reader["token"]], "the token is kept in sessionStorage"
        assert reader["token"] not in stored[1], "the token must never reach localStorage"
        driver.get(srv.url + "/#/schema")
        wait(driver, lambda d: css(d, 'a.table-link[data-table="market.quotes"]'),
             "the schema after login (same tab session)")
        driver.save_screenshot(str(shots / "login-ok-schema.png"))
    finally:
        driver.quit()


# -- Dashboards (console/src/pages/dashboards.js, /api/v3/dashboards) -------------------------

PANEL_PIXELS_JS = """
const canvas = document.querySelector(arguments[0]);
if (!canvas) return null;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const [r, g, b] = arguments[1];
let opaque = 0, coloured = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i + 3] === 0) continue;
  opaque++;
  if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) coloured++;
}
return {opaque, coloured};
"""
QUOTES_FROM = "2023-11-14T22:00:00Z"  # T0_NS is 2023-11-14T22:13:20Z: the quotes are inside
QUOTES_TO = "2023-11-14T23:00:00Z"


def panel(driver, i: int, attr: str):
    boxes = css(driver, f'.dash-panel[data-index="{i}"]')
    return boxes[0].get_attribute(attr) if boxes else None


def panel_pixels(driver, i: int) -> dict:
    wait(driver, lambda d: css(d, f'.dash-panel[data-index="{i}"] .panel-chart[data-drawn]'),
         f"panel {i}'s chart to be drawn")
    return driver.execute_script(PANEL_PIXELS_JS,
                                 f'.dash-panel[data-index="{i}"] .panel-chart canvas', PALETTE[0])


def _live_row(url: str, v: int):
    _write(url, "live", [f"readings v={v} {time.time_ns()}"])


def _fill_panel(editor, title: str, db: str, sql: str, chart: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    editor.find_element(By.CSS_SELECTOR, ".panel-title").send_keys(title)
    editor.find_element(By.CSS_SELECTOR, ".panel-database").send_keys(db)
    editor.find_element(By.CSS_SELECTOR, ".panel-sql").send_keys(sql)
    Select(editor.find_element(By.CSS_SELECTOR, ".panel-chart")).select_by_value(chart)


def test_dashboard_built_in_the_browser_reloads_from_its_url_and_goes_live(browser, console,
                                                                           shots):
    _live_row(console.url, 1)
    _live_row(console.url, 2)
    browser.get(console.url + "/#/dashboards")
    wait(browser, lambda d: css(d, "#dashboard-list[data-loaded]"), "the dashboard list")
    css(browser, "#new-dashboard-id")[0].send_keys("market-live")
    css(browser, "#new-dashboard")[0].click()
    wait(browser, lambda d: [e for e in css(d, "#dash-editor") if e.is_displayed()], "the editor")

    # The range first (absolute, around the quotes), then two panels.
    for field, value in (("#dash-from", QUOTES_FROM), ("#dash-to", QUOTES_TO)):
        css(browser, field)[0].clear()
        css(browser, field)[0].send_keys(value)
    css(browser, "#dash-apply")[0].click()
    title = css(browser, "#dash-title-input")[0]
    title.clear()
    title.send_keys("Market and live")
    css(browser, "#add-panel")[0].click()
    css(browser, "#add-panel")[0].click()
    editors = css(browser, ".panel-editor")
    assert len(editors) == 2
    _fill_panel(editors[0], "Quotes", "market",
                "SELECT time, sym, price FROM quotes WHERE $__timeFilter(time) ORDER BY time",
                "line")
    _fill_panel(editors[1], "Readings", "live", "SELECT time, v FROM readings ORDER BY time",
                "table")
    css(browser, "#dash-save")[0].click()
    wait(browser, lambda d: css(d, "[data-saved]"), "the dashboard saved")

    stored = requests.get(f"{console.url}/api/v3/dashboards/market-live", timeout=10).json()
    assert stored["title"] == "Market and live" and stored["time"] == {
        "from": QUOTES_FROM, "to": QUOTES_TO}, stored
    assert [(p["title"], p["database"], p["chart"]) for p in stored["panels"]] == [
        ("Quotes", "market", "line"), ("Readings", "live", "table")], stored
    pixels = panel_pixels(browser, 0)
    assert pixels["coloured"] > 50, pixels
    wait(browser, lambda d: panel(d, 1, "data-rows") == "2", "the 2 readings in panel 1")
    assert panel(browser, 0, "data-rows") == "180"

    # Reload from the URL (a fresh page load): the same dashboard, the same range, drawn.
    url = browser.current_url
    assert "#/dashboards/market-live?" in url and "from=2023-11-14T22" in url, url
    browser.get(console.url + "/#/query")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    browser.get(url)
    browser.refresh()
    wait(browser, lambda d: css(d, "[data-loaded]"), "the dashboard reloaded")
    assert css(browser, "#dash-title")[0].text == "Market and live"
    assert css(browser, "#dash-from")[0].get_attribute("value") == QUOTES_FROM
    assert panel_pixels(browser, 0)["coloured"] > 50
    wait(browser, lambda d: panel(d, 1, "data-rows") == "2", "panel 1 after the reload")
    browser.save_screenshot(str(shots / "dashboard.png"))

    # Live mode from the URL (refresh every second): a row written now shows up by itself.
    browser.get(url.replace("refresh=off", "refresh=1s"))
    browser.refresh()
    wait(browser, lambda d: css(d, '#dash-panels[data-live="1s"]'), "live mode on")
    wait(browser, lambda d: panel(d, 1, "data-rows") == "2", "panel 1 in live mode")
    runs = int(panel(browser, 1, "data-runs"))
    _live_row(console.url, 3)
    written = time.monotonic()
    wait(browser, lambda d: panel(d, 1, "data-rows") == "3", "the new row picked up by live mode",
         timeout=10)
    print(f"\nlive mode: new row shown {time.monotonic() - written:.2f} s after its write")
    assert int(panel(browser, 1, "data-runs")) > runs
    browser.save_screenshot(str(shots / "dashboard-live.png"))


def test_dashboard_json_export_and_import(browser, console, shots):
    import json

    source = {"title": "Exported", "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
              "panels": [{"title": "Prices", "database": "market", "chart": "bars",
                          "sql": "SELECT sym, avg(price) AS price FROM quotes GROUP BY sym"},
                         {"title": "Ticks", "database": "market", "chart": "auto",
                          "sql": "SELECT date_bin($__interval, time) AS time, avg(v) AS v "
                                 "FROM ticks WHERE $__timeFilter(time) GROUP BY 1",
                          "split_by": "sym"}]}
    r = requests.put(f"{console.url}/api/v3/dashboards/exp-src", json=source, timeout=10)
    assert r.status_code in (200, 201), r.text
    browser.get(console.url + "/#/dashboards/exp-src")
    wait(browser, lambda d: css(d, "[data-loaded]"), "the dashboard")
    css(browser, "#dash-export")[0].click()
    path = wait(browser, lambda d: list(d.downloads.glob("dashboard-exp-src.json")), "the export")[0]
    exported = wait(browser, lambda d: json.loads(path.read_text() or "null"), "the export's JSON")
    served = requests.get(f"{console.url}/api/v3/dashboards/exp-src", timeout=10).json()
    assert exported == served, (exported, served)

    copy = {**exported, "id": "exp-copy", "title": "Imported copy"}
    browser.get(console.url + "/#/dashboards")
    wait(browser, lambda d: css(d, "#dashboard-list[data-loaded]"), "the dashboard list")
    browser.execute_script("document.querySelector('#import-json').value = arguments[0]",
                           json.dumps(copy))
    css(browser, "#import")[0].click()
    wait(browser, lambda d: css(d, "#dash-title")[0].text == "Imported copy", "the imported one")
    imported = requests.get(f"{console.url}/api/v3/dashboards/exp-copy", timeout=10).json()
    for key in ("time", "refresh", "panels"):
        assert imported[key] == source[key], (key, imported[key])
    browser.save_screenshot(str(shots / "dashboard-imported.png"))

    # A bad import is refused with the server's message naming the field.
    browser.get(console.url + "/#/dashboards")
    wait(browser, lambda d: css(d, "#dashboard-list[data-loaded]"), "the dashboard list")
    links = [e.get_attribute("data-id") for e in css(browser, "a.dashboard-link")]
    assert {"exp-src", "exp-copy"} <= set(links), links
    bad = {**copy, "panels": [{**copy["panels"][0], "chart": "pie"}]}
    browser.execute_script("document.querySelector('#import-json').value = arguments[0]",
                           json.dumps(bad))
    css(browser, "#import")[0].click()
    message = wait(browser, lambda d: css(d, "#dash-error")[0].text, "the import's refusal")
    assert "panels[0].chart" in message, message


def test_dashboards_api_validation_and_durability(server):
    srv = server()
    base = f"{srv.url}/api/v3/dashboards"
    body = {"title": "Ops", "time": {"from": "now-15m", "to": "now"}, "refresh": "10s",
            "panels": [{"title": "cpu", "sql": "SELECT 1 AS one", "database": "db1"}]}
    r = requests.put(f"{base}/ops", json=body, timeout=10)
    assert r.status_code == 201, r.text
    assert requests.put(f"{base}/ops", json=body, timeout=10).status_code == 200
    got = requests.get(f"{base}/ops", timeout=10).json()
    assert got["panels"] == [{**body["panels"][0], "chart": "auto"}] and got["refresh"] == "10s"
    assert (srv.data_dir / "dashboards" / "ops.json").exists()

    bad_cases = [
        ({"panels": []}, "title"),
        ({**body, "refresh": "100ms"}, "refresh"),
        ({**body, "time": {"from": "yesterday", "to": "now"}}, "time.from"),
        ({**body, "id": "other"}, "id"),
        ({**body, "colour": "red"}, "colour"),
        ({**body, "panels": [body["panels"][0], {"sql": "SELECT 1", "database": "db1",
                                                  "chart": "pie"}]}, "panels[1].chart"),
        ({**body, "panels": [{"sql": "SELECT 1"}]}, "panels[0].database"),
        ({**body, "panels": [{"database": "db1"}]}, "panels[0].sql"),
    ]
    for bad, field in bad_cases:
        r = requests.put(f"{base}/ops", json=bad, timeout=10)
        assert r.status_code == 400 and r.json()["data"]["field"] == field, (bad, r.text)
        assert field in r.json()["error"], r.text
    r = requests.put(f"{base}/no%20spaces", json=body, timeout=10)
    assert r.status_code == 400 and r.json()["data"]["field"] == "id", r.text
    assert requests.get(f"{base}/ops", timeout=10).json() == got, "a refused PUT changed it"

    # Durable: a restart serves the same dashboard; DELETE removes it and its file.
    srv.restart()
    base = f"{srv.url}/api/v3/dashboards"  # a new port
    assert requests.get(f"{base}/ops", timeout=10).json() == got
    assert [d["id"] for d in requests.get(base, timeout=10).json()["dashboards"]] == ["ops"]
    assert requests.delete(f"{base}/ops", timeout=10).status_code == 204
    r = requests.get(f"{base}/ops", timeout=10)
    assert r.status_code == 404 and r.json()["data"]["field"] == "id", r.text
    assert requests.delete(f"{base}/ops", timeout=10).status_code == 404
    assert not (srv.data_dir / "dashboards" / "ops.json").exists()
