"""TLS with real clients (`--tls-cert`/`--tls-key`, a CA and certificate made for the test):
requests and influxdb-client over https, boto3 with `verify` set to the test CA, psql with
`sslmode=require` and `verify-full`, psycopg with a password over TLS. Without TLS the
PostgreSQL port keeps refusing SSL ('N')."""

from __future__ import annotations

import os
import subprocess
import time

import boto3
import psycopg
import pytest
import requests
from botocore.config import Config
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from sectest import add_user, make_ca_and_cert, query_sql, token_headers, write_lp

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def tls(hourglass_bin, module_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_ca_and_cert(base)
    srv = module_server(args=["--require-auth", "--tls-cert", str(cert), "--tls-key", str(key)])
    srv.ca = str(ca)
    srv.user = add_user(hourglass_bin, srv.data_dir, "ops", ("*", "admin"))
    yield srv


def test_https_with_requests_and_influxdb_client(tls):
    assert tls.url.startswith("https://")
    r = requests.get(f"{tls.url}/health", verify=tls.ca, timeout=TIMEOUT_S)
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls.url}/health", timeout=TIMEOUT_S)  # not trusted without the CA
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(tls.url.replace("https://", "http://") + "/health", timeout=TIMEOUT_S)
    h = token_headers(tls.user)
    assert write_lp(tls.url, "tlsdb", "m,t=a v=1i 1700000000000000000", headers=h, verify=tls.ca).status_code == 204
    with InfluxDBClient(url=tls.url, token=tls.user["token"], org="any", ssl_ca_cert=tls.ca,
                        timeout=TIMEOUT_S * 1000) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="tlsdb", record="m,t=b v=2i 1700000001000000000")
    r = query_sql(tls.url, "tlsdb", "SELECT count(*) AS n FROM m", headers=h, verify=tls.ca)
    assert r.json() == [{"n": 2}], r.text


def test_boto3_verifies_the_test_ca(tls):
    kw = dict(endpoint_url=tls.url, region_name="us-east-1",
              aws_access_key_id=tls.user["access_key_id"],
              aws_secret_access_key=tls.user["secret_access_key"],
              config=Config(retries={"max_attempts": 1}), verify=tls.ca)
    write = boto3.client("timestream-write", **kw)
    query = boto3.client("timestream-query", **kw)
    write.create_database(DatabaseName="tlsts")
    write.create_table(DatabaseName="tlsts", TableName="cpu")
    write.write_records(DatabaseName="tlsts", TableName="cpu", Records=[
        {"Dimensions": [{"Name": "host", "Value": "a"}], "MeasureName": "usage",
         "MeasureValue": "1.0", "Time": str(int(time.time() * 1000))}])
    rows = query.query(QueryString='SELECT count(*) FROM "tlsts"."cpu"')["Rows"]
    assert rows[0]["Data"][0]["ScalarValue"] == "1"


def test_postgres_over_tls_with_psql_and_psycopg(tls):
    host, port = tls.pg_addr
    env = {**os.environ, "PGPASSWORD": tls.user["password"], "PGCONNECT_TIMEOUT": "10"}
    for mode in ("sslmode=require", f"sslmode=verify-full sslrootcert={tls.ca}"):
        dsn = f"host=localhost port={port} user=ops dbname=tlsdb {mode}"
        out = subprocess.run(["psql", dsn, "-X", "-A", "-t", "-c", "SELECT count(*) FROM m"],
                             capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "2", out.stdout
    with psycopg.connect(host="localhost", port=port, user="ops", password=tls.user["password"],
                         dbname="tlsdb", sslmode="verify-full", sslrootcert=tls.ca,
                         connect_timeout=10) as conn:
        assert conn.info.pgconn.ssl_in_use
        assert conn.execute("SELECT count(*) FROM m").fetchone()[0] == 2
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="localhost", port=port, user="ops", password="wrong",
                        dbname="tlsdb", sslmode="require", connect_timeout=10).close()


def test_without_tls_postgres_refuses_ssl(server):
    srv = server()
    host, port = srv.pg_addr
    out = subprocess.run(["psql", f"host={host} port={port} user=hg dbname=x sslmode=require",
                          "-X", "-c", "SELECT 1"], capture_output=True, text=True,
                         env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, timeout=TIMEOUT_S)
    assert out.returncode != 0 and "does not support SSL" in out.stderr, out.stderr
