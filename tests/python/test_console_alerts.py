"""The console's alerts page (console/src/pages/alerts.js) in headless Chromium, driven by
Selenium as tests/python/test_console.py does (its driver and helpers are reused).

Shown: a rule created through the page's form (POST) goes pending then firing in the rules table,
and its expanded row shows its one instance with the right labels and value; the history section
lists its pending and firing changes from system.alerts, newest first, as SQL reads them, and the
filter by rule name hides the other rule's changes; the API's field error of an invalid rule
(a bad condition, a reserved label) is shown next to that field and no rule is created; a rule
whose query fails shows health err and the server's error text; editing a rule in the form PUTs
it; delete asks for a second click and the API agrees the rule is gone; with `--require-auth` a
reader sees the rules of its database and a clear refusal in place of the operators-only history.
Screenshot: target/console-screenshots/alerts.png.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from sectest import add_user
from test_console import SHOTS, _driver, css, wait

DB = "alerting"
RULES = "/api/v3/alert_rules"


@pytest.fixture(scope="module")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = _driver(tmp_path_factory.mktemp("downloads-alerts"))
    yield driver
    driver.quit()


def _write_prices(url: str, headers=None):
    now = time.time_ns()
    body = f"prices,symbol=AAPL price=150 {now}\nprices,symbol=MSFT price=50 {now}"
    r = requests.post(f"{url}/api/v3/write_lp", params={"db": DB}, data=body,
                      headers=headers or {}, timeout=30)
    assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def alerts_server(module_server):
    srv = module_server()
    _write_prices(srv.url)
    return srv


def row_attr(driver, rule: str, attr: str):
    rows = css(driver, f'tr.alert-rule[data-rule="{rule}"]')
    return rows[0].get_attribute(attr) if rows else None


def click(driver, selector: str, what: str):
    """Clicks the element `selector` names, again if a refresh replaced it meanwhile."""
    def attempt(d):
        css(d, selector)[0].click()
        return True

    wait(driver, attempt, what)


def fill_form(driver, fields: dict[str, str]):
    for field, value in fields.items():
        box = css(driver, f"#alert-{field}")[0]
        box.clear()
        box.send_keys(value)


def shown_field_errors(driver) -> dict[str, str]:
    return {e.get_attribute("data-error-for"): e.text
            for e in css(driver, ".field-error") if e.is_displayed()}


def history_rows(driver) -> list[tuple[str, str]]:
    return [(r.get_attribute("data-rule"), r.get_attribute("data-kind"))
            for r in css(driver, "tr.alert-change")]


def history_times(driver) -> list[str]:
    return [r.get_attribute("data-time") for r in css(driver, "tr.alert-change")]


def sql(url: str, q: str, headers=None) -> list[dict]:
    r = requests.post(f"{url}/api/v3/query_sql", json={"db": "", "q": q, "format": "json"},
                      headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_rule_from_the_form_fires_with_its_instance_and_history(browser, alerts_server, shots):
    url = alerts_server.url
    # A second rule, through the API, so that the history has another rule's changes to filter.
    r = requests.post(url + RULES, json={"name": "LowPrice", "database": DB, "interval": "1s",
                                         "query": "SELECT symbol, max(price) AS value FROM prices GROUP BY symbol",
                                         "condition": "value < 100"}, timeout=10)
    assert r.status_code == 201, r.text

    browser.get(url + "/#/alerts")
    wait(browser, lambda d: css(d, "#nav-alerts.active"), "the alerts page")
    wait(browser, lambda d: css(d, "#alert-rules[data-loaded]"), "the rules table")
    css(browser, "#alert-new")[0].click()
    wait(browser, lambda d: css(d, "#alert-form")[0].is_displayed(), "the rule form")
    fill_form(browser, {
        "name": "HighPrice",
        "database": DB,
        "query": "SELECT symbol, max(price) AS value FROM prices GROUP BY symbol",
        "condition": "value > 100",
        "interval": "1s",
        "for": "2s",
        "labels": "severity=page",
        "annotations": "summary={{ $labels.symbol }} at {{ $value }}",
    })
    css(browser, "#alert-save")[0].click()
    wait(browser, lambda d: not css(d, "#alert-form")[0].is_displayed(), "the form to close")

    # Pending first (for 2s), then firing.
    wait(browser, lambda d: row_attr(d, "HighPrice", "data-state") == "firing",
         "HighPrice to fire in the rules table")
    assert row_attr(browser, "HighPrice", "data-health") == "ok"
    assert css(browser, 'tr.alert-rule[data-rule="HighPrice"] .alert-active')[0].text == "1"
    api = requests.get(f"{url}{RULES}/HighPrice", timeout=10).json()
    assert api["state"] == "firing" and api["for"] == "2s" and api["labels"] == {"severity": "page"}

    click(browser, 'tr.alert-rule[data-rule="HighPrice"] .alert-toggle', "the rule's toggle")
    detail = 'tr.alert-detail[data-rule="HighPrice"]'
    instances = wait(browser, lambda d: css(d, f"{detail} tr.alert-instance"), "the instances")
    assert len(instances) == 1, [i.text for i in instances]
    assert instances[0].get_attribute("data-state") == "firing"
    labels = json.loads(instances[0].get_attribute("data-labels"))
    assert labels == {"alertname": "HighPrice", "symbol": "AAPL", "severity": "page"}, labels
    assert css(browser, f"{detail} .alert-value")[0].text == "150"
    assert "AAPL at 150" in css(browser, detail)[0].text
    assert "max(price)" in css(browser, f"{detail} .alert-query")[0].text

    # The expansion survives the auto refresh.
    before = css(browser, "#alerts-updated")[0].text
    wait(browser, lambda d: css(d, "#alerts-updated")[0].text != before, "an auto refresh")
    assert css(browser, f"{detail} tr.alert-instance")

    # History: both rules' changes, newest first, as system.alerts holds them.
    wait(browser, lambda d: {("HighPrice", "pending"), ("HighPrice", "firing"), ("LowPrice", "firing")}
         <= set(history_rows(d)), "the history of both rules")
    stored = sql(url, "SELECT time, rule, kind FROM system.alerts")
    assert sorted(history_rows(browser)) == sorted((s["rule"], s["kind"]) for s in stored)
    assert sorted(history_times(browser)) == sorted(s["time"] for s in stored)
    times = history_times(browser)
    assert times == sorted(times, reverse=True), times
    # Newest first, also within one evaluation (LowPrice, for 0s: pending and firing at once).
    for rule in ("HighPrice", "LowPrice"):
        kinds = [k for r, k in history_rows(browser) if r == rule]
        assert kinds == ["firing", "pending"], (rule, kinds)
    css(browser, "#alert-history-filter")[0].send_keys("highpr")
    wait(browser, lambda d: {r for r, _ in history_rows(d)} == {"HighPrice"},
         "the history filtered to HighPrice")
    browser.save_screenshot(str(shots / "alerts.png"))


def test_invalid_rule_shows_the_field_error(browser, alerts_server):
    url = alerts_server.url
    browser.get(url + "/#/alerts")
    wait(browser, lambda d: css(d, "#alert-rules[data-loaded]"), "the rules table")
    css(browser, "#alert-new")[0].click()
    fill_form(browser, {"name": "BadCondition", "database": DB,
                        "query": "SELECT max(price) AS value FROM prices", "condition": "value >> 3"})
    css(browser, "#alert-save")[0].click()
    errors = wait(browser, shown_field_errors, "a field error")
    assert list(errors) == ["condition"] and "condition" in errors["condition"], errors
    assert css(browser, "#alert-form")[0].is_displayed()

    # A label the API refuses (`labels.alertname`) is shown next to the labels.
    fill_form(browser, {"condition": "value > 3", "labels": "alertname=mine"})
    css(browser, "#alert-save")[0].click()
    errors = wait(browser, lambda d: shown_field_errors(d).get("labels") and shown_field_errors(d),
                  "the labels' error")
    assert list(errors) == ["labels"] and "alertname" in errors["labels"], errors
    assert requests.get(f"{url}{RULES}/BadCondition", timeout=10).status_code == 404
    css(browser, "#alert-cancel")[0].click()
    assert not css(browser, "#alert-form")[0].is_displayed()


def test_failing_query_shows_health_err_and_the_error(browser, alerts_server):
    url = alerts_server.url
    r = requests.post(url + RULES, json={"name": "BrokenQuery", "database": DB, "interval": "1s",
                                         "query": "SELECT no_such_column AS value FROM prices"},
                      timeout=10)
    assert r.status_code == 201, r.text
    browser.get(url + "/#/alerts")
    wait(browser, lambda d: row_attr(d, "BrokenQuery", "data-health") == "err",
         "BrokenQuery's health err")
    shown = wait(browser, lambda d: css(d, 'tr.alert-rule[data-rule="BrokenQuery"] .alert-last-error')[0].text,
                 "the last error")
    api = requests.get(f"{url}{RULES}/BrokenQuery", timeout=10).json()
    assert api["health"] == "err" and "no_such_column" in shown, shown
    assert shown == api["lastError"], (shown, api["lastError"])


def test_edit_puts_and_delete_needs_a_second_click(browser, alerts_server):
    url = alerts_server.url
    browser.get(url + "/#/alerts")
    wait(browser, lambda d: css(d, 'tr.alert-rule[data-rule="LowPrice"]'), "LowPrice's row")
    click(browser, 'tr.alert-rule[data-rule="LowPrice"] .alert-edit', "LowPrice's Edit")
    assert css(browser, "#alert-name")[0].get_attribute("value") == "LowPrice"
    assert css(browser, "#alert-condition")[0].get_attribute("value") == "value < 100"
    fill_form(browser, {"condition": "value < 10"})
    css(browser, "#alert-save")[0].click()
    wait(browser, lambda d: not css(d, "#alert-form")[0].is_displayed(), "the form to close")
    assert requests.get(f"{url}{RULES}/LowPrice", timeout=10).json()["condition"] == "value < 10"
    wait(browser, lambda d: "value < 10" in css(d, 'tr.alert-rule[data-rule="LowPrice"]')[0].text,
         "the new condition in the table")

    delete = 'tr.alert-rule[data-rule="BrokenQuery"] .alert-delete'
    click(browser, delete, "BrokenQuery's Delete")
    wait(browser, lambda d: css(d, delete)[0].text == "Delete: click again", "the confirmation")
    assert requests.get(f"{url}{RULES}/BrokenQuery", timeout=10).status_code == 200
    click(browser, delete, "the confirmation")
    wait(browser, lambda d: not css(d, 'tr.alert-rule[data-rule="BrokenQuery"]'),
         "BrokenQuery gone from the table")
    assert requests.get(f"{url}{RULES}/BrokenQuery", timeout=10).status_code == 404
    assert css(browser, 'tr.alert-rule[data-rule="HighPrice"]')


def test_reader_sees_rules_and_the_history_refusal(hourglass_bin, module_server,
                                                   tmp_path_factory, shots):
    srv = module_server(args=["--require-auth"])
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    op_headers = {"Authorization": f"Token {op['token']}"}
    _write_prices(srv.url, op_headers)
    r = requests.post(srv.url + RULES, headers=op_headers, timeout=10,
                      json={"name": "OpsRule", "database": DB, "interval": "1s",
                            "query": "SELECT symbol, max(price) AS value FROM prices GROUP BY symbol"})
    assert r.status_code == 201, r.text
    reader = add_user(hourglass_bin, srv.data_dir, "reader", (DB, "read"))
    driver = _driver(tmp_path_factory.mktemp("downloads-alerts-auth"))
    try:
        driver.get(srv.url + "/")
        wait(driver, lambda d: css(d, "#login-token"), "the login form")[0].send_keys(reader["token"])
        css(driver, "#login-submit")[0].click()
        wait(driver, lambda d: css(d, "#nav-alerts"), "the pages after login")
        css(driver, "#nav-alerts")[0].click()
        wait(driver, lambda d: row_attr(d, "OpsRule", "data-health") == "ok",
             "the operator's rule, seen by a reader of its database")
        refusal = wait(driver, lambda d: css(d, '#alert-history-error[data-refused="1"]')[0].text,
                       "the history's refusal")
        assert "operators" in refusal and "system.alerts" in refusal, refusal
        assert not css(driver, "#alert-history")[0].is_displayed()
        driver.save_screenshot(str(shots / "alerts-history-refused.png"))
    finally:
        driver.quit()
