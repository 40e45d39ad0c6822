"""Endpoint discovery with no code change: boto3 clients configured only by the environment
(`AWS_ENDPOINT_URL`, no `endpoint_url` argument). botocore then keeps endpoint discovery on for
timestream-write / timestream-query: it calls DescribeEndpoints on the configured URL, then sends
every operation to the advertised Address, prefixing `https://` unless it starts with `http`.
Hourglass advertises `http://host:port` when serving plain HTTP and `host:port` (AWS's shape)
with TLS, so both work; `--advertised-endpoint` overrides it as given."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from tshelpers import REGION, now_ms, query_all, rec, scalars


@pytest.fixture
def env_only(monkeypatch, tmp_path):
    """An environment where `AWS_ENDPOINT_URL` is the only endpoint setting."""
    for name in ("AWS_ENDPOINT_URL_TIMESTREAM_WRITE", "AWS_ENDPOINT_URL_TIMESTREAM_QUERY",
                 "AWS_ENDPOINT_DISCOVERY_ENABLED", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    def use(url: str, **extra_env):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        for k, v in extra_env.items():
            monkeypatch.setenv(k, v)

    return use


def clients(**config):
    """timestream-write / -query clients from the environment; `sent` records (operation, URL)
    of every request either sends (DescribeEndpoints included: botocore calls it through the
    same client)."""
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, **config)
    sent: list[tuple[str, str]] = []

    def record(request, **_):
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        sent.append((target.removeprefix("Timestream_20181101."), request.url))

    out = []
    for service in ("timestream-write", "timestream-query"):
        client = boto3.client(service, config=cfg)
        client.meta.events.register("before-send", record)
        out.append(client)
    return out[0], out[1], sent


def round_trip(tsw, tsq, db: str) -> None:
    """Create, write, query: every operation through the discovered endpoint."""
    tsw.create_database(DatabaseName=db)
    tsw.create_table(DatabaseName=db, TableName="cpu")
    t = now_ms()
    out = tsw.write_records(DatabaseName=db, TableName="cpu",
                            Records=[rec("h1", 1.5, t), rec("h2", 2.5, t)])
    assert out["RecordsIngested"]["Total"] == 2
    _, rows, _ = query_all(tsq, f'SELECT host, measure_value::double FROM "{db}"."cpu" ORDER BY host')
    assert scalars(rows) == [["h1", "1.5"], ["h2", "2.5"]]


def assert_discovered(sent, base: str) -> None:
    """Each client discovered once (DescribeEndpoints first, then cached for 1440 minutes) and
    every request went to `base` with its scheme (the configured URL is the advertised one)."""
    ops = [op for op, _ in sent]
    assert ops == ["DescribeEndpoints", "CreateDatabase", "CreateTable", "WriteRecords",
                   "DescribeEndpoints", "Query"], sent
    assert all(url.rstrip("/") == base for _, url in sent), sent


def test_describe_endpoints_has_http_scheme_over_plain_http(shared_server, env_only):
    env_only(shared_server.url)
    tsw, tsq, _ = clients()
    for client in (tsw, tsq):
        out = client.describe_endpoints()
        assert out["Endpoints"] == [{"Address": shared_server.url, "CachePeriodInMinutes": 1440}]
        assert out["Endpoints"][0]["Address"].startswith("http://")


def test_env_endpoint_only_write_and_query(shared_server, env_only, db):
    """The default: `AWS_ENDPOINT_URL` alone, discovery 'auto' (on for Timestream)."""
    env_only(shared_server.url)
    tsw, tsq, sent = clients()
    round_trip(tsw, tsq, db)
    assert_discovered(sent, shared_server.url)


def test_discovery_explicitly_enabled(shared_server, env_only, db):
    env_only(shared_server.url)
    tsw, tsq, sent = clients(endpoint_discovery_enabled=True)
    round_trip(tsw, tsq, db)
    assert_discovered(sent, shared_server.url)


def test_discovery_enabled_by_environment_variable(shared_server, env_only, db):
    env_only(shared_server.url, AWS_ENDPOINT_DISCOVERY_ENABLED="true")
    tsw, tsq, sent = clients()
    round_trip(tsw, tsq, db)
    assert_discovered(sent, shared_server.url)


def test_advertised_endpoint_overrides(server, env_only, db):
    """`--advertised-endpoint` is answered as given (here: with the scheme)."""
    srv = server(args=["--advertised-endpoint", "http://localhost:1"])
    env_only(srv.url)
    tsw, _, _ = clients()
    assert tsw.describe_endpoints()["Endpoints"][0]["Address"] == "http://localhost:1"
    srv2 = server(args=["--advertised-endpoint", srv.url])
    env_only(srv2.url)
    tsw, tsq, sent = clients()
    # Discovered through srv2, every operation then goes to srv.
    round_trip(tsw, tsq, db)
    assert [op for op, url in sent if url.rstrip("/") == srv2.url] == ["DescribeEndpoints"] * 2
    assert [d["DatabaseName"] for d in tsw.list_databases()["Databases"]] == [db]


def test_tls_server_advertises_host_port(server, env_only, db, tmp_path):
    """With TLS the Address has no scheme (like AWS); botocore adds https://."""
    from sectest import make_ca_and_cert

    ca, cert, key = make_ca_and_cert(tmp_path)
    srv = server(args=["--tls-cert", str(cert), "--tls-key", str(key)])
    assert srv.url.startswith("https://")
    env_only(srv.url, AWS_CA_BUNDLE=str(ca))
    tsw, _, _ = clients()
    assert tsw.describe_endpoints()["Endpoints"][0]["Address"] == srv.url.removeprefix("https://")
    tsw, tsq, sent = clients()
    round_trip(tsw, tsq, db)
    assert_discovered(sent, srv.url)
