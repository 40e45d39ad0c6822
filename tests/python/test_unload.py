"""UNLOAD (SELECT ...) TO 's3://...' WITH (...) through the Timestream Query API (to moto's S3),
/api/v3/query_sql and the PostgreSQL wire (to a bucket mapped to a local directory with
--unload-buckets): the manifest and metadata read as AWS's sample UnloadUtil reads them, every
data file read back with pyarrow and DuckDB and compared with the same SELECT through SQL."""

import gzip
import io
import json
import os
import time
from pathlib import Path
from urllib.parse import unquote

import boto3
import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import MotoS3, moto_server

REGION = "us-east-1"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)
DB = "ul"
T = "metrics"
BUCKET = "unload-out"
LOCAL = "local-out"
N = 90
COLUMNS = "host, region, measure_name, CAST(time AS BIGINT) AS t, cpu, mem, status"


@pytest.fixture(scope="module")
def env(module_server, tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        s3 = MotoS3(endpoint, BUCKET)
        s3.client.create_bucket(Bucket=BUCKET)
        local = tmp_path_factory.mktemp("local-bucket")
        srv = module_server(args=["--unload-buckets", f"{LOCAL}={local}"], env=dict(s3.env))
        kw = dict(endpoint_url=srv.url, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing", config=NO_RETRY)
        tsw = boto3.client("timestream-write", **kw)
        tsq = boto3.client("timestream-query", **kw)
        tsw.create_database(DatabaseName=DB)
        tsw.create_table(DatabaseName=DB, TableName=T)
        now_ns = time.time_ns() - 3600 * 10**9
        records = []
        for i in range(N):
            measures = [{"Name": "cpu", "Value": repr(i * 1.25), "Type": "DOUBLE"},
                        {"Name": "mem", "Value": str(i * 1000), "Type": "BIGINT"},
                        {"Name": "status", "Value": ["ok", "a,b \"q\"", "é/x=1"][i % 3],
                         "Type": "VARCHAR"}]
            if i % 7 == 0:
                measures = measures[1:]  # cpu NULL
            records.append({
                "Dimensions": [{"Name": "host", "Value": f"h{i % 4}"},
                               {"Name": "region", "Value": ["eu/west", "us-east", "ap=1"][i % 3]}],
                "MeasureName": "m", "MeasureValueType": "MULTI", "MeasureValues": measures,
                "Time": str(now_ns + i * 1_000_000_007), "TimeUnit": "NANOSECONDS"})
        for k in range(0, N, 100):
            tsw.write_records(DatabaseName=DB, TableName=T, Records=records[k:k + 100])
        yield srv, s3, tsq, local


def sql_rows(srv):
    rows = srv.rows(f"SELECT {COLUMNS} FROM {T} ORDER BY t", db=DB)
    assert len(rows) == N
    return rows


def unload_util(s3, manifest_url, metadata_url):
    """As AWS's UnloadUtil: the manifest's result_files[].url, the metadata's ColumnInfo."""
    def get(url):
        bucket, key = url[len("s3://"):].split("/", 1)
        return s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    manifest = json.loads(get(manifest_url))
    metadata = json.loads(get(metadata_url))
    files = [(f["url"], get(f["url"]), f["file_metadata"]) for f in manifest["result_files"]]
    return manifest, metadata, files


def test_parquet_to_s3_through_the_query_api(env, tmp_path):
    srv, s3, tsq, _ = env
    r = tsq.query(QueryString=f"""UNLOAD (SELECT * FROM "{DB}"."{T}") TO 's3://{BUCKET}/pq/'
                                  WITH (format = 'PARQUET', compression = 'GZIP')""")
    assert [c["Name"] for c in r["ColumnInfo"]] == ["rows", "metadataFile", "manifestFile"]
    assert r["ColumnInfo"][0]["Type"] == {"ScalarType": "BIGINT"}
    rows, metadata_url, manifest_url = [d["ScalarValue"] for d in r["Rows"][0]["Data"]]
    assert int(rows) == N
    manifest, metadata, files = unload_util(s3, manifest_url, metadata_url)
    assert manifest["query_metadata"]["total_row_count"] == N
    assert manifest["query_metadata"]["result_format"] == "PARQUET"
    # The metadata's ColumnInfo is the Query API's ColumnInfo of the same SELECT.
    plain = tsq.query(QueryString=f'SELECT * FROM "{DB}"."{T}"')
    assert metadata["ColumnInfo"] == plain["ColumnInfo"]
    assert all(url.startswith(f"s3://{BUCKET}/pq/results/") for url, _, _ in files)
    tables = []
    for i, (url, body, meta) in enumerate(files):
        assert meta["content_length_in_bytes"] == len(body)
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == meta["row_count"]
        assert table.schema.field("time").type == pa.timestamp("ns")
        path = tmp_path / f"f{i}.parquet"
        path.write_bytes(body)
        n, ns = duckdb.sql(f"SELECT count(*), min(epoch_ns(time)) FROM read_parquet('{path}')").fetchall()[0]
        assert n == meta["row_count"]
        tables.append(table)
    got = pa.concat_tables(tables).to_pylist()
    got.sort(key=lambda row: row["time"].value if hasattr(row["time"], "value") else 0)
    ns_times = sorted(pa.concat_tables(tables).column("time").cast(pa.int64()).to_pylist())
    want = sql_rows(srv)
    assert ns_times == [w["t"] for w in want]
    by_time = {}
    for t in tables:
        for row, tns in zip(t.to_pylist(), t.column("time").cast(pa.int64()).to_pylist()):
            by_time[tns] = row
    for w in want:
        g = by_time[w["t"]]
        assert (g["host"], g["region"], g["measure_name"], g["mem"], g["status"]) == \
            (w["host"], w["region"], w["measure_name"], w["mem"], w["status"])
        assert g["cpu"] == w.get("cpu")  # NULLs kept
    assert sum(1 for w in want if w.get("cpu") is None) == len(range(0, N, 7))


def test_gzip_csv_partitioned_to_s3(env, tmp_path):
    srv, s3, tsq, _ = env
    r = tsq.query(QueryString=f"""
        -- partitioned export
        unload (SELECT host, region, time, cpu, mem, status FROM "{DB}"."{T}")
        to 's3://{BUCKET}/csv' with (format = 'CSV', compression = 'GZIP',
                                     partitioned_by = ARRAY['region'], include_header = 'true')""")
    rows, metadata_url, manifest_url = [d["ScalarValue"] for d in r["Rows"][0]["Data"]]
    assert int(rows) == N
    manifest, metadata, files = unload_util(s3, manifest_url, metadata_url)
    assert manifest["query_metadata"]["result_format"] == "CSV"
    assert [c["Name"] for c in metadata["ColumnInfo"]] == ["host", "region", "time", "cpu", "mem", "status"]
    want = sql_rows(srv)
    got = []
    regions = set()
    for i, (url, body, meta) in enumerate(files):
        assert url.endswith(".csv.gz")
        folder = url.rsplit("/", 2)[1]
        assert folder.startswith("region=")
        region = unquote(folder[len("region="):])
        regions.add(region)
        text = gzip.decompress(body)
        table = pacsv.read_csv(
            io.BytesIO(text),
            parse_options=pacsv.ParseOptions(escape_char="\\", double_quote=False),
            convert_options=pacsv.ConvertOptions(
                column_types={"time": pa.timestamp("ns"), "cpu": pa.float64(), "mem": pa.int64(),
                              "status": pa.string()},
                strings_can_be_null=True, quoted_strings_can_be_null=False))
        assert table.column_names == ["host", "time", "cpu", "mem", "status"]  # region left out
        assert table.num_rows == meta["row_count"]
        path = tmp_path / f"p{i}.csv"
        path.write_bytes(text)
        n, nulls = duckdb.sql(
            f"SELECT count(*), count(*) - count(cpu) FROM read_csv('{path}', header = true, "
            f"escape = '\\', quote = '\"')").fetchall()[0]
        assert n == meta["row_count"]
        for row, tns in zip(table.to_pylist(), table.column("time").cast(pa.int64()).to_pylist()):
            got.append((row["host"], region, tns, row["cpu"], row["mem"], row["status"]))
    assert regions == {"eu/west", "us-east", "ap=1"}
    expect = [(w["host"], w["region"], w["t"], w.get("cpu"), w["mem"], w["status"]) for w in want]
    assert sorted(got, key=lambda x: x[2]) == expect


def test_http_and_postgres_to_a_mapped_bucket(env):
    srv, _, _, local = env
    r = srv.query(f"UNLOAD (SELECT host, cpu, time FROM {T}) TO 's3://{LOCAL}/http/' "
                  f"WITH (format = 'CSV', compression = 'NONE')", db=DB)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["rows"] == N
    assert row["manifestFile"].startswith(f"s3://{LOCAL}/http/")
    manifest = json.loads((Path(local) / row["manifestFile"][len(f"s3://{LOCAL}/"):]).read_text())
    total = 0
    for f in manifest["result_files"]:
        path = Path(local) / f["url"][len(f"s3://{LOCAL}/"):]
        assert path.stat().st_size == f["file_metadata"]["content_length_in_bytes"]
        total += duckdb.sql(f"SELECT count(*) FROM read_csv('{path}', header = false)").fetchall()[0][0]
    assert total == N

    import psycopg
    host, port = srv.pg_addr
    with psycopg.connect(host=host, port=port, dbname=DB, user="hg", connect_timeout=10) as conn:
        cur = conn.execute(f"UNLOAD (SELECT * FROM {T} WHERE mem >= %s) TO 's3://{LOCAL}/pg' "
                           "WITH (compression = 'ZSTD')", (45000,))
        rows, metadata_url, manifest_url = cur.fetchone()
        assert [d.name for d in cur.description] == ["rows", "metadataFile", "manifestFile"]
    assert rows == N - 45
    manifest = json.loads((Path(local) / manifest_url[len(f"s3://{LOCAL}/"):]).read_text())
    tables = [pq.read_table(Path(local) / f["url"][len(f"s3://{LOCAL}/"):])
              for f in manifest["result_files"]]
    assert sum(t.num_rows for t in tables) == N - 45
    assert json.loads((Path(local) / metadata_url[len(f"s3://{LOCAL}/"):]).read_text())["ColumnInfo"]


def test_errors(env, server):
    srv, _, tsq, _ = env
    with pytest.raises(ClientError) as e:
        tsq.query(QueryString=f"UNLOAD (SELECT 1) TO 's3://{BUCKET}/x' WITH (format = 'JSON')")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "format" in e.value.response["Error"]["Message"]
    for sql, needle in [
        (f"UNLOAD (SELECT 1 AS a) TO 's3://{LOCAL}/x' WITH (colour = 'red')", "colour"),
        (f"UNLOAD (SELECT 1 AS a) TO 's3://{LOCAL}/x' WITH (max_file_size = '1KB')", "max_file_size"),
        (f"UNLOAD (SELECT 1 AS a) TO 's3://{LOCAL}/x' WITH (format='CSV', format='CSV')", "more than once"),
        ("UNLOAD (SELECT 1 AS a) TO 'file:///tmp/x'", "file:// destinations are refused"),
        (f"UNLOAD (SELECT 1 AS a) TO 's3://{LOCAL}/x' WITH (partitioned_by = ARRAY['b'])", "partitioned_by"),
    ]:
        r = srv.query(sql, db=DB)
        assert r.status_code == 400 and needle in r.text, (sql, r.status_code, r.text)
    # 'unload' in a literal is a plain query.
    assert srv.rows("SELECT 'UNLOAD (SELECT 1) TO ''s3://x/y''' AS s", db=DB)[0]["s"].startswith("UNLOAD")
    import psycopg
    host, port = srv.pg_addr
    with psycopg.connect(host=host, port=port, dbname=DB, user="hg", connect_timeout=10) as conn:
        with pytest.raises(psycopg.Error, match="compression"):
            conn.execute(f"UNLOAD (SELECT 1) TO 's3://{LOCAL}/x' WITH (format = 'CSV', compression = 'SNAPPY')")
    if any(os.environ.get(v) for v in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ACCESS_KEY_ID")):
        pytest.skip("the test environment configures S3 for every server")
    bare = server()
    started = time.monotonic()
    r = bare.query("UNLOAD (SELECT 1 AS a) TO 's3://nowhere/x'", db=None)
    assert r.status_code == 400 and "not mapped" in r.text, r.text
    assert time.monotonic() - started < 10


def test_a_query_failing_mid_unload_leaves_no_unfinished_upload(env):
    """The query fails after ~30 MB of CSV (past the 10 MB part buffer: a multipart upload is
    under way): UNLOAD answers the error, and the upload is aborted, not left in the bucket."""
    srv, s3, _tsq, _local = env
    sql = ("UNLOAD (SELECT repeat('x', 1000) AS pad, 1 / (value - 30000) AS boom "
           "FROM generate_series(1, 40000) AS g(value)) "
           f"TO 's3://{BUCKET}/failing/' WITH (format = 'CSV', compression = 'NONE')")
    r = srv.query(sql, db=DB, method="POST")
    assert r.status_code >= 400, r.text[:500]
    assert "zero" in r.text.lower(), r.text[:500]
    uploads = s3.client.list_multipart_uploads(Bucket=BUCKET, Prefix="failing/").get("Uploads", [])
    assert uploads == [], uploads
