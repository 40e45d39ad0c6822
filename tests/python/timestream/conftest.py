"""Fixtures of the Timestream API tests: boto3 `timestream-write` / `timestream-query` clients
pointed at a server of tests/python/conftest.py (`endpoint_url` = the server, region us-east-1,
dummy credentials; with a custom endpoint botocore skips endpoint discovery). Helpers are in
tshelpers.py."""

from __future__ import annotations

import pytest

from tshelpers import ts_clients


@pytest.fixture(scope="module")
def clients(shared_server):
    return ts_clients(shared_server.url)


@pytest.fixture
def tsw(clients):
    return clients[0]


@pytest.fixture
def tsq(clients):
    return clients[1]


@pytest.fixture
def tsdb(db, tsw):
    """A Timestream database unique to the test (its name is the `db` fixture's)."""
    tsw.create_database(DatabaseName=db)
    return db


