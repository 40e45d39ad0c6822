"""MQTT subscriptions against a real broker (Debian's mosquitto, started by these tests on free
127.0.0.1 ports with its own config file and persistence, stopped at the end): line protocol and
JSON mappings (topic templates, payload paths, arrays of readings), TLS with a test CA, a bad
message that is counted in /metrics and dead-lettered while the subscription goes on, a broker
that is down when Hourglass starts, and SIGKILL of Hourglass under a QoS 1 publisher: every
message the broker acknowledged is present after the restart. Subscriptions are configured with
`hourglass serve --config FILE` ([[mqtt]] sections). Also prints a throughput figure."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests

from sectest import make_ca_and_cert, make_client_cert

TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mosquitto_bin() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("mosquitto not installed: run scripts/install-test-deps.sh")


class Broker:
    """One mosquitto process: a plain listener (and a TLS one when given a certificate),
    persistence on so QoS 1 sessions and queued messages survive a broker restart."""

    def __init__(self, base: Path, tls: tuple[Path, Path, Path] | None = None,
                 password_file: Path | None = None, require_certificate: bool = False):
        self.dir = base
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.tls_port = _free_port() if tls else None
        self.proc: subprocess.Popen | None = None
        lines = [
            "user root",
            "per_listener_settings false",
            "allow_anonymous false" if password_file else "allow_anonymous true",
            *([f"password_file {password_file}"] if password_file else []),
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            # Many messages in flight to a subscriber (big batches); nothing dropped while queued.
            "max_inflight_messages 1000",
            "max_queued_messages 0",
            f"log_dest file {self.dir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} 127.0.0.1",
        ]
        if tls:
            ca, cert, key = tls
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {ca}", f"certfile {cert}",
                      f"keyfile {key}"]
            if require_certificate:
                lines += ["require_certificate true"]
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Broker":
        assert self.proc is None
        log = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen([_mosquitto_bin(), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "stderr.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        pytest.fail("mosquitto did not listen within 10 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def client(self, client_id: str = "", **kw) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311, **kw)
        c.max_inflight_messages_set(100)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", self.port, keepalive=30)
        c.loop_start()
        return c


def publish_all(broker: Broker, messages: list[tuple[str, str | bytes]]) -> None:
    """Publishes at QoS 1 and waits for the broker's PUBACK of every message."""
    c = broker.client()
    try:
        infos = [c.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=TIMEOUT_S)
            assert info.is_published()
    finally:
        c.loop_stop()
        c.disconnect()


def wait_until(what: str, check, timeout: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def metric(srv, name: str, subscription: str) -> float:
    text = requests.get(f"{srv.url}/metrics", timeout=TIMEOUT_S).text
    m = re.search(rf'^{name}{{subscription="{re.escape(subscription)}"}} (\S+)$', text, re.M)
    assert m, f"{name} for {subscription} not in /metrics:\n{text[-3000:]}"
    return float(m.group(1))


def count(srv, table: str, db: str) -> int:
    r = srv.query(f'SELECT COUNT(*) AS n FROM "{table}"', db=db)
    if r.status_code != 200:
        return 0  # the table does not exist yet
    return r.json()[0]["n"]


def config_file(path: Path, sections: list[str]) -> Path:
    path.write_text("\n".join(sections))
    return path


def lp_section(name, url, topics, db, extra="") -> str:
    return (f'[[mqtt]]\nname = "{name}"\nurl = "{url}"\ntopics = {json.dumps(topics)}\n'
            f'database = "{db}"\nclient_id = "hg-{name}-{os.getpid()}"\nreconnect_max_secs = 1\n{extra}\n')


def start_hg(factory, conf: Path):
    """A server configured by `conf` ([[mqtt]] sections)."""
    return factory(args=["--config", str(conf)])


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    base = tmp_path_factory.mktemp("mosquitto")
    ca, cert, key = make_ca_and_cert(base)
    b = Broker(base / "broker", tls=(ca, cert, key))
    b.ca = ca
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def hg(module_server, broker, tmp_path_factory):
    """One server with the subscriptions of the mapping, dead-letter and TLS tests."""
    base = tmp_path_factory.mktemp("hgconf")
    tls_url = f"mqtts://localhost:{broker.tls_port}"
    conf = config_file(base / "hourglass.toml", [
        lp_section("lp", broker.url, ["lp/#"], "mq_lp"),
        lp_section("factory", broker.url, ["factory/+/+/telemetry"], "mq_json",
                   'format = "json"\ndead_letter_topic = "hourglass/dead"\n'
                   '[mqtt.json]\ntable = "telemetry"\n'
                   'topic_template = "factory/{site}/{device}/telemetry"\n'
                   'time_path = "ts"\ntime_unit = "ms"\n'
                   '[mqtt.json.dimensions]\nline = "meta.line"\n'),
        lp_section("bulk", broker.url, ["bulk/+"], "mq_json",
                   'format = "json"\n[mqtt.json]\ntable = "readings"\ntopic_template = "bulk/{gateway}"\n'
                   'records_path = "readings"\ntime_path = "ts"\ntime_unit = "rfc3339"\n'
                   'numbers = "infer"\n[mqtt.json.dimensions]\ndevice = "$.device"\nsensor = "sensor"\n'
                   '[mqtt.json.measures]\nvalue = "v"\nbattery = "battery"\n'),
        lp_section("secure", tls_url, ["secure/#"], "mq_tls",
                   f'[mqtt.tls]\nca_file = "{broker.ca}"\n'),
        # No CA given: the system roots do not know the test CA, so this one never connects.
        lp_section("untrusted", tls_url, ["secure/#"], "mq_untrusted"),
    ])
    srv = start_hg(module_server, conf)
    for name in ("lp", "factory", "bulk", "secure"):
        wait_until(f"subscription {name} connected", lambda n=name: metric(srv, "hourglass_mqtt_connected", n) == 1)
    return srv


def test_line_protocol_payloads(hg, broker):
    t = 1_700_000_000_000_000_000
    publish_all(broker, [
        ("lp/a", f"cpu,host=a usage=1.5 {t}\ncpu,host=b usage=2.5 {t}"),
        ("lp/b/c", f"cpu,host=c usage=3.5,ok=true {t + 1}\n"),
    ])
    wait_until("3 cpu rows", lambda: count(hg, "cpu", "mq_lp") == 3)
    rows = hg.rows("SELECT host, usage FROM cpu ORDER BY host", db="mq_lp")
    assert rows == [{"host": "a", "usage": 1.5}, {"host": "b", "usage": 2.5}, {"host": "c", "usage": 3.5}]
    assert metric(hg, "hourglass_mqtt_messages_total", "lp") == 2
    assert metric(hg, "hourglass_mqtt_rows_total", "lp") == 3


def test_json_topic_template_and_payload_paths(hg, broker):
    ms = 1_700_000_000_123
    publish_all(broker, [
        ("factory/berlin/press7/telemetry",
         json.dumps({"ts": ms, "temp": 21.5, "hum": 40, "running": True, "meta": {"line": "L1"}})),
        ("factory/paris/lathe2/telemetry",
         json.dumps({"ts": ms + 1000, "temp": 19, "mode": "idle", "meta": {"line": "L2"}})),
    ])
    wait_until("2 telemetry rows", lambda: count(hg, "telemetry", "mq_json") == 2)
    rows = hg.rows("SELECT site, device, line, temp, hum, running, mode, "
                   "CAST(time AS BIGINT) AS t FROM telemetry ORDER BY site", db="mq_json")
    # `time` cast to BIGINT gives nanoseconds; the JSON answer leaves NULLs out.
    keys = ("site", "device", "line", "temp", "hum", "running", "mode", "t")
    rows = [{k: r.get(k) for k in keys} for r in rows]
    assert rows == [
        {"site": "berlin", "device": "press7", "line": "L1", "temp": 21.5, "hum": 40.0, "running": True,
         "mode": None, "t": ms * 1_000_000},
        {"site": "paris", "device": "lathe2", "line": "L2", "temp": 19.0, "hum": None, "running": None,
         "mode": "idle", "t": (ms + 1000) * 1_000_000},
    ], rows


def test_json_arrays_of_readings(hg, broker):
    payload = {"device": "d9", "battery": 3, "readings": [
        {"sensor": "s1", "ts": "2024-05-01T00:00:00Z", "v": 1},
        {"sensor": "s2", "ts": "2024-05-01T00:00:00.250Z", "v": 2},
        {"sensor": "s1", "ts": "2024-05-01T00:00:01+00:00", "v": -3},
    ]}
    publish_all(broker, [("bulk/gw1", json.dumps(payload))])
    wait_until("3 readings", lambda: count(hg, "readings", "mq_json") == 3)
    rows = hg.rows("SELECT gateway, device, sensor, value, battery, CAST(time AS BIGINT) AS t "
                   "FROM readings ORDER BY time, sensor", db="mq_json")
    base = 1_714_521_600_000_000_000
    assert rows == [
        {"gateway": "gw1", "device": "d9", "sensor": "s1", "value": 1, "battery": 3, "t": base},
        {"gateway": "gw1", "device": "d9", "sensor": "s2", "value": 2, "battery": 3, "t": base + 250_000_000},
        {"gateway": "gw1", "device": "d9", "sensor": "s1", "value": -3, "battery": 3, "t": base + 1_000_000_000},
    ], rows
    # numbers = "infer": integers are BIGINT.
    cols = hg.rows("SELECT column_name, data_type FROM information_schema.columns "
                   "WHERE table_name = 'readings' AND column_name = 'value'", db="mq_json")
    assert cols and cols[0]["data_type"] == "Int64", cols


def test_bad_message_is_counted_dead_lettered_and_does_not_stop(hg, broker):
    dead: list[dict] = []
    got = threading.Event()
    sub = broker.client()

    def on_message(_c, _u, msg):
        dead.append(json.loads(msg.payload))
        got.set()

    sub.on_message = on_message
    sub.subscribe("hourglass/dead", qos=1)
    time.sleep(0.3)
    before = metric(hg, "hourglass_mqtt_rejected_messages_total", "factory")
    ms = 1_700_000_100_000
    try:
        publish_all(broker, [
            ("factory/rome/bad1/telemetry", "this is not json"),
            ("factory/rome/ok1/telemetry", json.dumps({"ts": ms, "temp": 1.0})),
            ("factory/rome/bad2/telemetry", json.dumps({"temp": 2.0})),  # no time
            ("factory/rome/ok2/telemetry", json.dumps({"ts": ms, "temp": 3.0})),
        ])
        wait_until("the good messages after the bad ones",
                   lambda: hg.rows("SELECT COUNT(*) AS n FROM telemetry WHERE site = 'rome'",
                                   db="mq_json")[0]["n"] == 2)
        wait_until("2 dead letters", lambda: len(dead) >= 2)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert metric(hg, "hourglass_mqtt_rejected_messages_total", "factory") == before + 2
    assert metric(hg, "hourglass_mqtt_dead_letters_total", "factory") >= 2
    by_topic = {d["topic"]: d for d in dead}
    assert by_topic["factory/rome/bad1/telemetry"]["payload"] == "this is not json"
    assert "not JSON" in by_topic["factory/rome/bad1/telemetry"]["reason"]
    assert "time_path 'ts' not found" in by_topic["factory/rome/bad2/telemetry"]["reason"]
    assert by_topic["factory/rome/bad2/telemetry"]["subscription"] == "factory"
    # Logged with topic and reason.
    log = Path(hg.stderr_path).read_text(errors="replace")
    assert "MQTT message rejected" in log and "factory/rome/bad1/telemetry" in log


def test_tls_with_a_test_ca(hg, broker):
    publish_all(broker, [("secure/x", "door,room=a open=true 1700000000000000000")])
    wait_until("the row over TLS", lambda: count(hg, "door", "mq_tls") == 1)
    assert metric(hg, "hourglass_mqtt_connected", "secure") == 1
    # The same broker without the CA: the certificate is refused, retried, nothing written.
    assert metric(hg, "hourglass_mqtt_connected", "untrusted") == 0
    assert metric(hg, "hourglass_mqtt_connection_errors_total", "untrusted") >= 1
    assert count(hg, "door", "mq_untrusted") == 0


def test_broker_down_at_start(server, tmp_path):
    b = Broker(tmp_path / "late")
    conf = config_file(tmp_path / "late.toml", [lp_section("late", b.url, ["late/#"], "mq_late")])
    srv = start_hg(server, conf)
    try:
        wait_until("connection errors", lambda: metric(srv, "hourglass_mqtt_connection_errors_total", "late") >= 1)
        assert metric(srv, "hourglass_mqtt_connected", "late") == 0
        assert srv.running
        b.start()
        wait_until("connected", lambda: metric(srv, "hourglass_mqtt_connected", "late") == 1, timeout=15)
        publish_all(b, [("late/1", "m v=1 1700000000000000000")])
        wait_until("the row", lambda: count(srv, "m", "mq_late") == 1)
        srv.stop()  # ordered shutdown with a subscription: exit code 0
    finally:
        b.stop()


def connected_and_refused(srv, accepted: str, refused: str) -> None:
    """Waits until subscription `accepted` is connected and `refused` has been refused by the
    broker (and retried) at least twice; `refused` is not connected."""
    wait_until(f"{accepted} connected", lambda: metric(srv, "hourglass_mqtt_connected", accepted) == 1)
    wait_until(f"{refused} refused twice",
               lambda: metric(srv, "hourglass_mqtt_connection_errors_total", refused) >= 2)
    assert metric(srv, "hourglass_mqtt_connected", refused) == 0


def test_username_and_password(server, tmp_path):
    """A broker that refuses anonymous clients (mosquitto's password file): the subscription with
    the right `username`/`password` connects and writes; one with a wrong password is refused by
    the broker, counted as connection errors and retried, and writes nothing."""
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "hourglass", "s3cret pass"], check=True,
                   timeout=30, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "publisher", "pub"], check=True,
                   timeout=30, capture_output=True)
    passwords.chmod(0o600)
    b = Broker(tmp_path / "auth", password_file=passwords).start()
    conf = config_file(tmp_path / "auth.toml", [
        lp_section("auth-ok", b.url, ["auth/#"], "mq_auth",
                   'username = "hourglass"\npassword = "s3cret pass"'),
        lp_section("auth-bad", b.url, ["auth/#"], "mq_auth_bad",
                   'username = "hourglass"\npassword = "wrong"'),
    ])
    try:
        srv = start_hg(server, conf)
        connected_and_refused(srv, "auth-ok", "auth-bad")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        pub.username_pw_set("publisher", "pub")
        pub.connect("127.0.0.1", b.port, keepalive=30)
        pub.loop_start()
        try:
            info = pub.publish("auth/1", "lock,door=front closed=true 1700000000000000000", qos=1)
            info.wait_for_publish(timeout=TIMEOUT_S)
            assert info.is_published()
        finally:
            pub.loop_stop()
            pub.disconnect()
        wait_until("the row", lambda: count(srv, "lock", "mq_auth") == 1)
        assert count(srv, "lock", "mq_auth_bad") == 0
        # The password never reaches the log.
        assert "s3cret" not in Path(srv.stderr_path).read_text(errors="replace")
    finally:
        b.stop()


def test_client_certificate(server, tmp_path):
    """A TLS listener that requires a client certificate signed by its CA: the subscription
    with `tls.cert_file`/`tls.key_file` connects and writes; one with only the CA is refused."""
    ca, cert, key = make_ca_and_cert(tmp_path)
    client_cert, client_key = make_client_cert(tmp_path, "hourglass-client")
    b = Broker(tmp_path / "mtls", tls=(ca, cert, key), require_certificate=True).start()
    url = f"mqtts://localhost:{b.tls_port}"
    conf = config_file(tmp_path / "mtls.toml", [
        lp_section("mtls-ok", url, ["mtls/#"], "mq_mtls",
                   f'[mqtt.tls]\nca_file = "{ca}"\ncert_file = "{client_cert}"\nkey_file = "{client_key}"\n'),
        lp_section("mtls-none", url, ["mtls/#"], "mq_mtls_none", f'[mqtt.tls]\nca_file = "{ca}"\n'),
    ])
    try:
        srv = start_hg(server, conf)
        connected_and_refused(srv, "mtls-ok", "mtls-none")
        publish_all(b, [("mtls/1", "gate,site=x open=false 1700000000000000000")])
        wait_until("the row", lambda: count(srv, "gate", "mq_mtls") == 1)
        assert count(srv, "gate", "mq_mtls_none") == 0
    finally:
        b.stop()


def test_sigkill_under_a_qos1_publisher(server, tmp_path):
    """Hourglass is SIGKILLed while a publisher sends at QoS 1 and restarted; every message the
    broker acknowledged to the publisher is present afterwards, with its value."""
    b = Broker(tmp_path / "crash").start()
    conf = config_file(tmp_path / "crash.toml", [
        lp_section("crash", b.url, ["crash/#"], "mq_crash",
                   'format = "json"\n[mqtt.json]\ntable = "events"\ntopic_template = "crash/{dev}"\n'
                   'time_path = "t"\ntime_unit = "ms"\nnumbers = "infer"\n')])
    try:
        srv = start_hg(server, conf)
        wait_until("connected", lambda: metric(srv, "hourglass_mqtt_connected", "crash") == 1)
        total, base_ms = 4000, 1_700_000_000_000
        acked: dict[int, int] = {}
        progress = [0]

        def publish():
            c = b.client(client_id="crash-publisher")
            try:
                pending = []
                for i in range(total):
                    dev = f"d{i % 7}"
                    info = c.publish(f"crash/{dev}", json.dumps({"t": base_ms + i, "seq": i, "v": i * 3}), qos=1)
                    pending.append((i, info))
                    progress[0] = i
                    if i % 100 == 99:
                        time.sleep(0.06)  # ~1600 messages/s: the kill lands mid-stream
                for i, info in pending:
                    info.wait_for_publish(timeout=TIMEOUT_S)
                    if info.is_published():
                        acked[i] = i * 3
            finally:
                c.loop_stop()
                c.disconnect()

        publisher = threading.Thread(target=publish)
        publisher.start()
        time.sleep(0.8)
        srv.kill()
        killed_at = progress[0]
        time.sleep(0.5)
        srv.start()
        publisher.join(timeout=60)
        assert not publisher.is_alive()
        assert 0 < killed_at < total - 1, f"the kill did not land mid-stream ({killed_at})"
        assert len(acked) == total
        wait_until("every acknowledged message", lambda: count(srv, "events", "mq_crash") >= len(acked), timeout=45)
        rows = srv.rows("SELECT seq, v FROM events ORDER BY seq", db="mq_crash")
        assert len(rows) == len(acked), "duplicates must be upserts"
        assert {r["seq"]: r["v"] for r in rows} == acked
        print(f"\nSIGKILL at message {killed_at} of {total}; all {len(acked)} acknowledged messages present")
    finally:
        b.stop()


def test_throughput_figure(server, tmp_path):
    """Drain rate of one subscription: messages of 100 JSON readings (HOURGLASS_MQTT_BENCH_READINGS)
    queued at the broker for the persistent session while Hourglass is down, then timed until
    every row is written. Prints the
    figure (debug builds are far slower than release; the floor is checked on release builds
    only, with HOURGLASS_MQTT_MIN_ROWS_PER_S)."""
    b = Broker(tmp_path / "bench").start()
    messages = int(os.environ.get("HOURGLASS_MQTT_BENCH_MESSAGES", "300"))
    per = int(os.environ.get("HOURGLASS_MQTT_BENCH_READINGS", "100"))
    conf = config_file(tmp_path / "bench.toml", [
        lp_section("bench", b.url, ["bench/#"], "mq_bench",
                   'format = "json"\nbatch_max_messages = 1000\n[mqtt.json]\ntable = "r"\n'
                   'topic_template = "bench/{gateway}"\nrecords_path = "readings"\n'
                   'time_path = "ts"\ntime_unit = "ms"\n[mqtt.json.dimensions]\nsensor = "sensor"\n')])
    try:
        srv = start_hg(server, conf)
        wait_until("connected", lambda: metric(srv, "hourglass_mqtt_connected", "bench") == 1)
        srv.stop()  # the session (and its subscription) stays at the broker
        base = 1_700_000_000_000
        payloads = []
        for m in range(messages):
            readings = [{"sensor": f"s{k}", "ts": base + m, "temp": 20.0 + k / 10, "hum": float(m % 50),
                         "ok": True} for k in range(per)]
            payloads.append((f"bench/gw{m % 4}", json.dumps({"readings": readings})))
        publish_all(b, payloads)
        srv.start()
        start = time.monotonic()
        wait_until("every row", lambda: metric(srv, "hourglass_mqtt_rows_total", "bench") >= messages * per,
                   timeout=120)
        elapsed = time.monotonic() - start
        assert count(srv, "r", "mq_bench") == messages * per
        rate = messages * per / elapsed
        print(f"\nMQTT drain: {messages} messages x {per} readings in {elapsed:.2f} s: "
              f"{messages / elapsed:,.0f} messages/s, {rate:,.0f} rows/s (includes the reconnect)")
        floor = float(os.environ.get("HOURGLASS_MQTT_MIN_ROWS_PER_S", "0"))
        assert rate >= floor
    finally:
        b.stop()


def test_bad_sections_stop_the_start_naming_the_key(hourglass_bin, tmp_path):
    cases = [
        ('url = "http://127.0.0.1:1"\n', "mqtt[bad].url"),
        ('url = "mqtt://127.0.0.1:1"\nformat = "json"\n[mqtt.json]\ntable = "{site}"\n', "mqtt[bad].json.table"),
        # serde's refusals name the line (9: time_unit) and the value.
        ('url = "mqtt://127.0.0.1:1"\nformat = "json"\n[mqtt.json]\ntable = "t"\ntime_unit = "hours"\n',
         "bad.toml:9: unknown variant `hours`"),
        ('url = "mqtt://127.0.0.1:1"\ncolour = "red"\n', "colour"),
    ]
    for extra, key in cases:
        conf = tmp_path / "bad.toml"
        conf.write_text(f'[[mqtt]]\nname = "bad"\ntopics = ["t"]\ndatabase = "d"\n{extra}')
        out = subprocess.run([str(hourglass_bin), "serve", "--config", str(conf), "--data-dir",
                              str(tmp_path / "data"), "--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0"],
                             capture_output=True, text=True, timeout=TIMEOUT_S,
                             env={k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_")})
        assert out.returncode == 2, (extra, out.returncode, out.stderr)
        assert "bad.toml" in out.stderr and key in out.stderr, (extra, out.stderr)
    example = subprocess.run([str(hourglass_bin), "config", "example"], capture_output=True, text=True,
                             timeout=TIMEOUT_S)
    assert example.returncode == 0 and "[[mqtt]]" in example.stdout and "topic_template" in example.stdout
