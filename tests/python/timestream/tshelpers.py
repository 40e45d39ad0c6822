"""Helpers of the Timestream API tests: boto3 clients for a server, records, query loops."""

from __future__ import annotations

import re
import time

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "000000000000"
# One attempt: a test sees the first answer (botocore would retry throttling and 5xx).
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)


def ts_clients(url: str):
    kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
              aws_secret_access_key="testing", config=NO_RETRY)
    return boto3.client("timestream-write", **kw), boto3.client("timestream-query", **kw)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rec(host: str, value, t_ms: int, measure: str = "cpu", vtype: str | None = None, **extra) -> dict:
    r = {"Dimensions": [{"Name": "host", "Value": host}], "MeasureName": measure,
         "MeasureValue": str(value), "Time": str(t_ms)}
    if vtype:
        r["MeasureValueType"] = vtype
    r.update(extra)
    return r


def error_of(excinfo) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a botocore ClientError."""
    resp = excinfo.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"].get("Message", "")


def query_all(tsq, sql: str, **kw) -> tuple[list, list, int]:
    """Every row of a query following NextToken; returns (column info, rows, pages)."""
    rows, pages, token, columns = [], 0, None, None
    while True:
        args = dict(QueryString=sql, **kw)
        if token:
            args["NextToken"] = token
        page = tsq.query(**args)
        pages += 1
        columns = page["ColumnInfo"]
        rows.extend(page["Rows"])
        token = page.get("NextToken")
        if not token:
            return columns, rows, pages


def scalars(rows) -> list[list]:
    """Rows as lists of ScalarValue strings (None for NullValue)."""
    return [[d.get("ScalarValue") if not d.get("NullValue") else None for d in r["Data"]] for r in rows]


WINDOW_RE = re.compile(
    r"^The record timestamp is outside the time range "
    r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z), (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\) "
    r"of the (memory store|data ingestion window)\.$"
)
