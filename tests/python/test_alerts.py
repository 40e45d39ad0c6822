"""Alert rules (`/api/v3/alert_rules`, docs/alerts.md) against a real Alertmanager (Debian's
prometheus-alertmanager, started here on a free 127.0.0.1 port with its own config and storage,
stopped at the end) whose receiver is a small webhook server of this test: a rule on a price
series goes pending, fires after `for`, reaches Alertmanager (its /api/v2/alerts and its
webhook), survives a restart of Hourglass with its state, and resolves when the price drops; the
plain webhook target (`--alert-webhook-url`) receives Alertmanager's webhook JSON; a rule whose
query fails shows health `err` and its error; every state change is a row of `system.alerts`;
validation errors name the field."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
WAIT_S = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float = WAIT_S, interval: float = 0.2):
    """Calls `check` until it returns a truthy value (returned) or `timeout` passes (fails with
    the last value seen)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


class Receiver:
    """An HTTP server recording every JSON body POSTed to it, by path."""

    def __init__(self):
        self.messages: list[tuple[str, dict]] = []
        lock = self.lock = threading.Lock()
        messages = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    messages.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict]:
        with self.lock:
            return [m for p, m in self.messages if p == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    """One Alertmanager process sending every alert to `receiver_url` (group_wait and
    group_interval 1 s, resolved alerts sent)."""

    def __init__(self, base: Path, receiver_url: str):
        if not os.access(ALERTMANAGER, os.X_OK):
            pytest.fail(f"{ALERTMANAGER} not installed: run scripts/install-test-deps.sh")
        base.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = base / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: test\n"
            "  group_by: ['alertname']\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "- name: test\n"
            "  webhook_configs:\n"
            f"  - url: {receiver_url}\n"
            "    send_resolved: true\n"
        )
        self.log = base / "alertmanager.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [ALERTMANAGER, f"--config.file={config}", f"--storage.path={base / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"alertmanager exited: {self.log.read_text()[-3000:]}")
            try:
                return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for("alertmanager to be ready", ready)

    def alerts(self) -> list[dict]:
        r = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return r.json()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def alertmanager(tmp_path, receiver):
    am = Alertmanager(tmp_path / "alertmanager", f"{receiver.url}/am")
    try:
        yield am
    finally:
        am.stop()


def rules_url(s, name: str = "") -> str:
    return f"{s.url}/api/v3/alert_rules" + (f"/{name}" if name else "")


def get_rule(s, name: str) -> dict:
    r = requests.get(rules_url(s, name), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def write_price(s, db: str, symbol: str, price: float):
    s.write_ok(f"price,symbol={symbol} price={price} {time.time_ns()}", db=db)


HIGH_PRICE = {
    "name": "HighPrice",
    "database": "market",
    # The latest price per symbol: the condition stops holding when a lower price is written.
    "query": "SELECT symbol, last_value(price ORDER BY time) AS value FROM price GROUP BY symbol",
    "condition": "value > 100",
    "interval": "1s",
    "for": "2s",
    "labels": {"severity": "page"},
    "annotations": {"summary": "{{ $labels.symbol }} at {{ $value }}"},
}


def _alert(rule: dict) -> dict | None:
    alerts = rule["alerts"]
    return alerts[0] if len(alerts) == 1 else None


def test_rule_pends_fires_reaches_alertmanager_survives_restart_and_resolves(
        server, alertmanager, receiver):
    s = server(args=["--alertmanager-url", alertmanager.url,
                     "--alert-webhook-url", f"{receiver.url}/direct"])
    write_price(s, "market", "AAPL", 150.0)
    r = requests.post(rules_url(s), json=HIGH_PRICE, timeout=10)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "HighPrice" and r.json()["health"] == "unknown", r.json()

    # Pending first (for = 2 s), with the row's labels and value.
    pending = wait_for("the rule to be pending", lambda: (
        (a := _alert(get_rule(s, "HighPrice"))) and a["state"] == "pending" and a))
    assert pending["labels"] == {"alertname": "HighPrice", "symbol": "AAPL", "severity": "page"}
    assert pending["value"] == 150.0
    assert pending["annotations"] == {"summary": "AAPL at 150"}
    assert not requests.get(rules_url(s, "HighPrice"), timeout=10).json()["lastError"]

    firing = wait_for("the rule to fire", lambda: (
        (a := _alert(get_rule(s, "HighPrice"))) and a["state"] == "firing" and a))
    assert firing["activeAt"] == pending["activeAt"]
    rule = get_rule(s, "HighPrice")
    assert rule["state"] == "firing" and rule["health"] == "ok" and rule["lastEvaluation"], rule
    listed = requests.get(rules_url(s), timeout=10).json()
    assert [x["name"] for x in listed["rules"]] == ["HighPrice"]
    assert listed["rules"][0]["alerts"][0]["state"] == "firing"

    # Alertmanager has it (API v2), and sent it to its receiver.
    am_alert = wait_for("the alert in Alertmanager", lambda: [
        a for a in alertmanager.alerts() if a["labels"].get("alertname") == "HighPrice"])[0]
    assert am_alert["labels"] == {"alertname": "HighPrice", "symbol": "AAPL", "severity": "page"}
    assert am_alert["status"]["state"] == "active", am_alert
    assert am_alert["annotations"]["summary"] == "AAPL at 150"
    assert am_alert["generatorURL"].endswith("/api/v3/alert_rules/HighPrice"), am_alert
    am_firing = wait_for("Alertmanager's webhook (firing)", lambda: [
        m for m in receiver.at("/am") if m["status"] == "firing"])[0]
    assert am_firing["alerts"][0]["labels"]["symbol"] == "AAPL"

    # The plain webhook target: Alertmanager's webhook JSON, straight from Hourglass.
    direct = wait_for("the plain webhook (firing)", lambda: [
        m for m in receiver.at("/direct") if m["status"] == "firing"])[0]
    assert direct["version"] == "4" and direct["receiver"] == "hourglass", direct
    assert direct["groupKey"] == '{}:{alertname="HighPrice"}', direct
    assert direct["groupLabels"] == {"alertname": "HighPrice"}
    assert direct["commonLabels"]["symbol"] == "AAPL"
    assert direct["alerts"][0]["status"] == "firing"
    assert len(direct["alerts"][0]["fingerprint"]) == 16
    # Alertmanager computes the same fingerprint.
    assert direct["alerts"][0]["fingerprint"] == am_alert["fingerprint"]

    # A restart keeps the rule and the instance's state (activeAt, firing).
    s.restart()
    after = get_rule(s, "HighPrice")
    assert after["query"] == HIGH_PRICE["query"] and after["for"] == "2s", after
    kept = _alert(after)
    assert kept and kept["state"] == "firing", after
    assert kept["activeAt"] == firing["activeAt"] and kept["firedAt"] == firing["firedAt"]

    # The price drops: the alert resolves, in Hourglass, Alertmanager and both webhooks.
    write_price(s, "market", "AAPL", 90.0)
    resolved = wait_for("the alert to resolve", lambda: (
        (a := _alert(get_rule(s, "HighPrice"))) and a["resolvedAt"] and a))
    assert resolved["state"] == "inactive"
    am_resolved = wait_for("Alertmanager's webhook (resolved)", lambda: [
        m for m in receiver.at("/am") if m["status"] == "resolved"])[0]
    ends_at = am_resolved["alerts"][0]["endsAt"]
    assert ends_at.startswith(resolved["resolvedAt"][:19]), (ends_at, resolved)
    assert not [a for a in alertmanager.alerts()
                if a["labels"].get("alertname") == "HighPrice" and a["status"]["state"] == "active"]
    direct_resolved = wait_for("the plain webhook (resolved)", lambda: [
        m for m in receiver.at("/direct") if m["status"] == "resolved"])[0]
    assert direct_resolved["alerts"][0]["endsAt"] == resolved["resolvedAt"]
    assert get_rule(s, "HighPrice")["state"] == "inactive"

    # system.alerts: one row per state change, across the restart.
    history = s.rows("SELECT rule, kind, labels, value FROM system.alerts ORDER BY time", db="")
    assert [(h["rule"], h["kind"]) for h in history] == [
        ("HighPrice", "pending"), ("HighPrice", "firing"), ("HighPrice", "resolved")], history
    assert json.loads(history[0]["labels"])["symbol"] == "AAPL"
    assert history[0]["value"] == 150.0


def test_failing_query_is_reported_not_quiet(server):
    s = server()
    rule = {**HIGH_PRICE, "name": "Broken", "database": "nowhere",
            "query": "SELECT symbol, price AS value FROM no_such_table", "for": "0s"}
    r = requests.post(rules_url(s), json=rule, timeout=10)
    assert r.status_code == 201, r.text
    failed = wait_for("the rule's error", lambda: (
        (x := get_rule(s, "Broken"))["health"] == "err" and x))
    assert "no_such_table" in failed["lastError"] or "nowhere" in failed["lastError"], failed
    assert failed["lastEvaluation"] and failed["alerts"] == []
    listed = requests.get(rules_url(s), timeout=10).json()["rules"]
    assert listed[0]["health"] == "err" and listed[0]["lastError"] == failed["lastError"]


def test_validation_errors_name_the_field_and_crud(server):
    s = server()

    def refused(method, path, body, status, field):
        r = requests.request(method, rules_url(s, path), json=body, timeout=10)
        assert r.status_code == status, (body, r.status_code, r.text)
        answer = r.json()
        assert answer["data"]["field"] == field, answer
        assert answer["error"], answer
        return answer

    base = {**HIGH_PRICE, "name": "Valid"}
    refused("POST", "", {**base, "interval": "10"}, 400, "interval")
    refused("POST", "", {**base, "interval": "500ms"}, 400, "interval")
    refused("POST", "", {**base, "condition": "value >> 1"}, 400, "condition")
    refused("POST", "", {**base, "labels": {"a-b": "x"}}, 400, "labels.a-b")
    refused("POST", "", {k: v for k, v in base.items() if k != "database"}, 400, "database")
    refused("POST", "", {**base, "database": "a/b"}, 400, "database")
    refused("POST", "", {**base, "expr": "x"}, 400, "expr")
    refused("POST", "", {**base, "owner": "mallory"}, 400, "owner")
    refused("POST", "", {k: v for k, v in base.items() if k != "query"}, 400, "query")
    assert requests.get(rules_url(s), timeout=10).json()["rules"] == []

    assert requests.post(rules_url(s), json=base, timeout=10).status_code == 201
    refused("POST", "", base, 409, "name")
    refused("PUT", "Valid", {**base, "name": "Other"}, 400, "name")
    # PUT replaces (200) or creates (201); the name may come from the path only.
    changed = {k: v for k, v in base.items() if k != "name"} | {"interval": "5s"}
    r = requests.put(rules_url(s, "Valid"), json=changed, timeout=10)
    assert r.status_code == 200 and r.json()["interval"] == "5s", r.text
    r = requests.put(rules_url(s, "Second"), json=changed, timeout=10)
    assert r.status_code == 201 and r.json()["name"] == "Second", r.text
    assert [x["name"] for x in requests.get(rules_url(s), timeout=10).json()["rules"]] == [
        "Second", "Valid"]
    assert requests.delete(rules_url(s, "Valid"), timeout=10).status_code == 204
    refused("GET", "Valid", None, 404, "name")
    refused("DELETE", "Valid", None, 404, "name")
    # Deleted for good: not back after a restart.
    s.restart()
    assert [x["name"] for x in requests.get(rules_url(s), timeout=10).json()["rules"]] == [
        "Second"]


def test_rules_run_as_their_owner(server, hourglass_bin):
    """With --require-auth a rule runs with its creator's grants: an owner who may read the
    database gets results, a write-only owner's rule fails (health err) instead of seeing data."""
    from sectest import add_user, token_headers

    s = server(args=["--require-auth"])
    ops = token_headers(add_user(hourglass_bin, s.data_dir, "ops", ("*", "admin")))
    analyst = token_headers(add_user(hourglass_bin, s.data_dir, "analyst", ("market", "admin")))
    ingest = token_headers(add_user(hourglass_bin, s.data_dir, "ingest", ("market", "write")))
    r = requests.post(f"{s.url}/api/v3/write_lp", params={"db": "market"}, headers=ops,
                      data=f"price,symbol=AAPL price=150 {time.time_ns()}", timeout=10)
    assert r.status_code == 204, r.text
    assert requests.get(rules_url(s), timeout=10).status_code == 401

    def post(headers, name):
        r = requests.post(rules_url(s), headers=headers, timeout=10,
                          json={**HIGH_PRICE, "name": name, "for": "0s"})
        assert r.status_code == 201, r.text
        return r.json()

    assert post(analyst, "AnalystRule")["owner"] == "analyst"
    assert post(ingest, "IngestRule")["owner"] == "ingest"

    def rule_as(headers, name):
        r = requests.get(rules_url(s, name), headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    ok = wait_for("the analyst's rule to fire", lambda: (
        (x := rule_as(ops, "AnalystRule"))["state"] == "firing" and x))
    assert ok["health"] == "ok" and ok["alerts"][0]["value"] == 150.0, ok
    failed = wait_for("the write-only owner's rule to fail", lambda: (
        (x := rule_as(ops, "IngestRule"))["health"] == "err" and x))
    assert failed["lastError"] and failed["alerts"] == [], failed
    # Visibility: the write-only user sees only their own rule.
    seen = requests.get(rules_url(s), headers=ingest, timeout=10).json()["rules"]
    assert [x["name"] for x in seen] == ["IngestRule"]
    assert requests.get(rules_url(s, "AnalystRule"), headers=ingest, timeout=10).status_code == 404
