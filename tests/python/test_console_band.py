"""The console's anomaly band (issue 21: "the console can overlay the band on a chart"): a result
with a pair of numeric columns named as a band (`lower`/`upper`, `<measure>_lower`/`_upper`,
`lo`/`hi`, any case) is drawn as a translucent fill around its measure, with the measure's points
outside the band marked in red (console/src/chart.js; docs/anomaly.md, "In the console").

Shown, in headless Chromium through Selenium (the helpers of test_console.py), on a price series
with injected jumps and an `ewma ± 3 · ewm_stddev` band (the previous row's, through `lag`):
the query page's chart declares the band (`data-band="lower,upper"`), its canvas has pixels of
the band's fill colour and of the red marks, and the number of points it marks outside the band
(`data-outside`) is the number of rows the same SQL finds outside (`price < lower OR price >
upper`, asked over the HTTP API); choosing "no band" by hand removes the band (the fill's pixels,
the attributes) and draws `lower` and `upper` as ordinary series; any two numeric columns can be
chosen as a band by hand; `PRICE_LO`/`price_HI` are detected as a band around `Price`; a
dashboard panel of the same SQL gets the same band; split by a dimension, each value gets its own
band and the marks of all are counted. The detection rule itself is checked on
column lists by running chart.js's `detectBand` in Node.js (the console's build needs it).
Screenshot: target/console-screenshots/band.png.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from test_console import SHOTS, _driver, _write, css, run_sql, wait

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_JS = REPO_ROOT / "console" / "src" / "chart.js"
DB = "bandtest"
T0_NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
POINTS = 300
# The first series' colour (chart.js PALETTE[0]); the band's fill is it at alpha 0x30 (BAND_ALPHA),
# the marks outside the band are OUTSIDE_COLOUR.
MEASURE_RGB = (0x2F, 0x6F, 0xDF)
BAND_ALPHA = 0x30
OUTSIDE_RGB = (0xE5, 0x17, 0x1F)
# ewma ± 3 ewm_stddev of the rows before each row (lag): a row is tested against its past only.
BAND_SQL = (
    "SELECT time, price, lag(m) OVER w - 3 * lag(s) OVER w AS lower, "
    "lag(m) OVER w + 3 * lag(s) OVER w AS upper FROM (SELECT time, price, "
    "ewma(price, 0.1) OVER w AS m, ewm_stddev(price, 0.1) OVER w AS s "
    f"FROM {DB}.prices WINDOW w AS (ORDER BY time)) WINDOW w AS (ORDER BY time) ORDER BY time"
)

BAND_PIXELS_JS = """
const canvas = document.querySelector(arguments[0]);
if (!canvas) return null;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const [fill, fillAlpha, red] = [arguments[1], arguments[2], arguments[3]];
const near = (i, [r, g, b]) =>
  Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40;
let band = 0, outside = 0;
for (let i = 0; i < data.length; i += 4) {
  if (Math.abs(data[i + 3] - fillAlpha) <= 8 && near(i, fill)) band++;
  if (data[i + 3] > 200 && near(i, red)) outside++;
}
return {band, outside};
"""


def _price_lines(series: str = "prices", seed: int = 21, level: float = 100.0) -> list[str]:
    """A noisy price around `level` with spikes and a level shift (seeded: the same every run)."""
    rng = random.Random(seed)
    jumps = {60: 4.0, 120: -5.0, 121: -4.5, 200: 6.0, 260: -3.5}
    lines = []
    for i in range(POINTS):
        if i == 170:
            level += 3.0  # a lasting shift: the band follows it after a few rows
        price = level + rng.gauss(0, 0.25) + jumps.get(i if seed == 21 else (i + 37) % POINTS, 0.0)
        lines.append(f"{series} price={price:.4f} {T0_NS + i * 1_000_000_000}")
    return lines


@pytest.fixture(scope="module")
def band_server(module_server):
    srv = module_server()
    _write(srv.url, DB, _price_lines())
    _write(srv.url, DB, _price_lines("pairs,sym=A", 21, 100.0) + _price_lines("pairs,sym=B", 22, 90.0))
    return srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _driver(tmp_path_factory.mktemp("downloads-band"))
    yield driver
    driver.quit()


def _sql_rows(url: str, sql: str) -> list[dict]:
    r = requests.get(f"{url}/api/v3/query_sql", params={"db": DB, "q": sql, "format": "json"},
                     timeout=30)
    assert r.status_code == 200, f"query {sql!r}: {r.status_code} {r.text[:1000]}"
    return r.json()


def _outside_by_sql(url: str) -> int:
    rows = _sql_rows(url, "SELECT count(*) AS n FROM (" + BAND_SQL +
                     ") WHERE price < lower OR price > upper")
    return rows[0]["n"]


def _pixels(driver, canvas: str) -> dict:
    return driver.execute_script(BAND_PIXELS_JS, canvas, MEASURE_RGB, BAND_ALPHA, OUTSIDE_RGB)


def _header(driver) -> list[str]:
    return [c.text for c in css(driver, ".grid-header .grid-cell")][1:]


def _chart(driver, attr: str):
    boxes = css(driver, "#chart")
    return boxes[0].get_attribute(attr) if boxes else None


def _select(driver, selector: str, value: str):
    from selenium.webdriver.support.ui import Select

    Select(css(driver, selector)[0]).select_by_value(value)


def _legend(driver) -> list[str]:
    return [e.text for e in css(driver, "#chart .u-legend .u-series .u-label")]


def test_detection_rule_in_node():
    """chart.js's detectBand on column lists (its imports, uPlot and CSS, left out)."""
    node = shutil.which("node")
    assert node, "node missing: the console's build needs Node.js (scripts/install-test-deps.sh)"
    source = CHART_JS.read_text()
    body = "\n".join(line for line in source.splitlines() if not line.startswith("import "))
    cases = [
        (["price", "lower", "upper"], ["lower", "upper", "price"]),
        (["Price", "PRICE_LO", "price_HI", "other"], ["PRICE_LO", "price_HI", "Price"]),
        (["other", "price", "price_lower", "price_upper"], ["price_lower", "price_upper", "price"]),
        (["v", "hi", "lo"], ["lo", "hi", "v"]),
        (["LOWER", "Upper", "v"], ["LOWER", "Upper", "v"]),
        (["a_lower", "a_upper", "x"], ["a_lower", "a_upper", "x"]),  # no column `a`: the first other
        (["lower", "upper"], ["lower", "upper", None]),  # a band with no measure
        (["x", "lower", "upper", "x_lo", "x_hi"], ["x_lo", "x_hi", "x"]),  # prefixed pair first
        (["lower", "hi", "v"], None),  # not a pair
        (["flower", "upper", "v"], None),
        (["v", "v_lower", "w_upper"], None),  # different prefixes
        (["v", "lowest", "highest"], None),
    ]
    script = body + "\nconst cases = " + json.dumps([c for c, _ in cases]) + ";\n" + (
        "console.log(JSON.stringify(cases.map((c) => { const b = detectBand(c); "
        "return b && [b.lower, b.upper, b.measure]; })));\n"
        "console.log(JSON.stringify(outsideBand([1, 5, null, 0, 3, 2], [0, 0, 0, 1, null, 2], "
        "[2, 2, 2, 2, 2, 2])));\n")
    out = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    detected, outside = [json.loads(line) for line in out.stdout.splitlines()]
    assert detected == [want for _, want in cases], list(zip(cases, detected))
    # Strictly outside; the band's edges are inside; a null edge or value is not outside.
    assert outside == {"values": [None, 5, None, 0, None, None], "count": 2}, outside


def test_band_on_the_query_chart_matches_the_sql(browser, band_server):
    expected = _outside_by_sql(band_server.url)
    # The injected spikes are beyond 3 sigma of their past (5 of them, two adjacent).
    assert expected >= 4, f"only {expected} rows outside the band: the jumps are too small"
    SHOTS.mkdir(parents=True, exist_ok=True)

    browser.get(band_server.url + "/#/query")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    run_sql(browser, BAND_SQL)
    wait(browser, lambda d: _header(d) == ["time", "price", "lower", "upper"], "the band's result")
    wait(browser, lambda d: css(d, "#chart[data-drawn]"), "the chart")
    assert _chart(browser, "data-band") == "lower,upper"
    assert _chart(browser, "data-band-measure") == "price"
    outside = int(_chart(browser, "data-outside"))
    assert outside == expected, f"chart marks {outside} points outside, SQL counts {expected}"
    # lower and upper are the band's edges, not measures of their own.
    assert _legend(browser)[1:] == ["price", "lower", "upper", "outside band"], _legend(browser)
    chosen = css(browser, "#chart-band option:checked")[0]
    assert chosen.get_attribute("value") == '["lower","upper"]', chosen.text
    with_band = _pixels(browser, "#chart canvas")
    assert with_band["band"] > 5000, f"too few pixels of the band's fill: {with_band}"
    assert with_band["outside"] > 10 * expected, f"too few red marks: {with_band}"
    browser.save_screenshot(str(SHOTS / "band.png"))

    # By hand: no band. lower and upper become ordinary series; no fill, no marks.
    _select(browser, "#chart-band", "none")
    wait(browser, lambda d: _chart(d, "data-band") is None, "the band to go")
    wait(browser, lambda d: css(d, "#chart[data-drawn]"), "the chart without a band")
    assert _chart(browser, "data-outside") is None
    assert _legend(browser)[1:] == ["price", "lower", "upper"], _legend(browser)
    without = _pixels(browser, "#chart canvas")
    assert without["band"] < with_band["band"] / 20, (with_band, without)
    assert without["outside"] < with_band["outside"] / 20, (with_band, without)
    browser.save_screenshot(str(SHOTS / "band-none.png"))
    print(f"\nband: {expected} points outside; pixels with the band {with_band}, without {without}")

    # By hand: any two numeric columns, here price as the lower edge and upper as the upper one,
    # around the remaining column (lower): its points beyond [price, upper] are marked.
    _select(browser, "#chart-band", '["price","upper"]')
    wait(browser, lambda d: _chart(d, "data-band") == "price,upper", "the hand-chosen band")
    assert _chart(browser, "data-band-measure") == "lower"
    rows = _sql_rows(band_server.url, "SELECT count(*) AS n FROM (" + BAND_SQL +
                     ") WHERE lower < price OR lower > upper")
    assert int(_chart(browser, "data-outside")) == rows[0]["n"]

    # Back to the detected pair.
    _select(browser, "#chart-band", '["lower","upper"]')
    wait(browser, lambda d: _chart(d, "data-band") == "lower,upper", "the detected band again")
    assert int(_chart(browser, "data-outside")) == expected


def test_band_names_in_any_case_and_with_the_measure_prefix(browser, band_server):
    browser.get(band_server.url + "/#/query")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    sql = (f'SELECT time, price AS "Price", price - 1 AS "PRICE_LO", price + 1 AS "price_HI", '
           f"price * 2 AS other FROM {DB}.prices ORDER BY time")
    run_sql(browser, sql)
    wait(browser, lambda d: _header(d) == ["time", "Price", "PRICE_LO", "price_HI", "other"],
         "the result")
    assert _chart(browser, "data-band") == "PRICE_LO,price_HI"
    assert _chart(browser, "data-band-measure") == "Price"
    assert _chart(browser, "data-outside") == "0"  # price ± 1 holds every price

    # No pair: no band, every numeric column a series.
    run_sql(browser, f"SELECT time, price, price - 1 AS lower FROM {DB}.prices ORDER BY time")
    wait(browser, lambda d: _header(d) == ["time", "price", "lower"], "the result without a band")
    assert _chart(browser, "data-band") is None
    assert css(browser, "#chart-band option:checked")[0].get_attribute("value") == "none"


def test_dashboard_panel_gets_the_band(browser, band_server):
    body = {"title": "Band", "time": {"from": "now-1h", "to": "now"}, "refresh": "off",
            "panels": [{"title": "price and its band", "database": DB, "sql": BAND_SQL}]}
    r = requests.put(f"{band_server.url}/api/v3/dashboards/band", json=body, timeout=10)
    assert r.status_code in (200, 201), r.text
    browser.get(band_server.url + "/#/dashboards/band")
    box = '.dash-panel[data-index="0"] .panel-chart'
    wait(browser, lambda d: css(d, f"{box}[data-drawn]"), "the panel's chart")
    chart = css(browser, box)[0]
    assert chart.get_attribute("data-band") == "lower,upper"
    assert int(chart.get_attribute("data-outside")) == _outside_by_sql(band_server.url)
    pixels = _pixels(browser, f"{box} canvas")
    assert pixels["band"] > 2000 and pixels["outside"] > 0, pixels
    browser.save_screenshot(str(SHOTS / "band-dashboard.png"))


def test_band_per_split_value(browser, band_server):
    """Split by a dimension: one band per value, the marks of both counted."""
    sql = ("SELECT time, sym, price, lag(m) OVER w - 3 * lag(s) OVER w AS lower, "
           "lag(m) OVER w + 3 * lag(s) OVER w AS upper FROM (SELECT time, sym, price, "
           "ewma(price, 0.1) OVER w AS m, ewm_stddev(price, 0.1) OVER w AS s "
           f"FROM {DB}.pairs WINDOW w AS (PARTITION BY sym ORDER BY time)) "
           "WINDOW w AS (PARTITION BY sym ORDER BY time) ORDER BY time")
    counts = _sql_rows(band_server.url, f"SELECT sym, count(*) AS n FROM ({sql}) "
                       "WHERE price < lower OR price > upper GROUP BY sym ORDER BY sym")
    assert [r["sym"] for r in counts] == ["A", "B"] and all(r["n"] > 0 for r in counts), counts
    browser.get(band_server.url + "/#/query")
    wait(browser, lambda d: css(d, "#nav-query.active"), "the query page")
    run_sql(browser, sql)
    wait(browser, lambda d: _header(d) == ["time", "sym", "price", "lower", "upper"], "the result")
    wait(browser, lambda d: css(d, "#chart[data-drawn]"), "the chart")
    assert _chart(browser, "data-band") == "lower,upper"
    assert int(_chart(browser, "data-outside")) == sum(r["n"] for r in counts)
    assert _legend(browser)[1:] == ["A", "B", "A lower", "A upper", "A outside band",
                                    "B lower", "B upper", "B outside band"], _legend(browser)
    pixels = _pixels(browser, "#chart canvas")
    assert pixels["band"] > 2000 and pixels["outside"] > 0, pixels
    browser.save_screenshot(str(SHOTS / "band-split.png"))
