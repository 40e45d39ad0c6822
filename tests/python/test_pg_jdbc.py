"""The PostgreSQL JDBC driver (pgjdbc, Debian's libpostgresql-jdbc-java) against the PostgreSQL
wire endpoint: the DatabaseMetaData calls DBeaver and other JDBC tools make when they open a
connection and browse a table (schemas, tables, columns with their types, keys, indexes), a
PreparedStatement with a parameter, and ResultSetMetaData. The Java program is
tests/jdbc/JdbcMetadata.java, compiled here with javac (no build tool); it prints one JSON object
per line. `scripts/install-test-deps.sh` installs the driver; without it (or a JDK) the test is
skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "tests" / "jdbc" / "JdbcMetadata.java"
JAR = Path(os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar"))

LP = (
    "cpu,host=a,region=us usage=1.5,count=3i 1700000000000000000\n"
    "cpu,host=b,region=eu usage=2.5,count=4i 1700000060000000000\n"
    "cpu,host=a,region=us usage=4.0,count=5i 1700000120000000000\n"
    "mem,host=a free=10i 1700000000000000000\n"
)

# java.sql.Types
VARCHAR, DOUBLE, BIGINT, TIMESTAMP = "12", "8", "-5", "93"


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory) -> Path:
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("no JDK (javac, java)")
    if not JAR.is_file():
        pytest.skip(f"PostgreSQL JDBC driver not found at {JAR}: run scripts/install-test-deps.sh")
    out = tmp_path_factory.mktemp("jdbc")
    subprocess.run(
        ["javac", "-cp", str(JAR), "-d", str(out), str(SOURCE)],
        check=True, capture_output=True, text=True, timeout=180,
    )
    return out


def run_jdbc(classes: Path, server, db: str, host_value: str = "a") -> dict[str, list]:
    """Runs JdbcMetadata; returns its rows by section. Fails on any section's error."""
    host, port = server.pg_addr
    proc = subprocess.run(
        ["java", "-cp", f"{JAR}{os.pathsep}{classes}", "JdbcMetadata", host, str(port), db, host_value],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"java exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    sections: dict[str, list] = defaultdict(list)
    errors = []
    for line in proc.stdout.splitlines():
        obj = json.loads(line)
        if "error" in obj:
            errors.append(f"{obj['section']}: {obj['error']}")
        else:
            sections[obj["section"]].append(obj["row"])
    assert not errors, "\n".join(errors)
    return sections


def test_dbeaver_style_metadata(jdbc_classes, shared_server, db):
    shared_server.write_ok(LP, db=db)
    out = run_jdbc(jdbc_classes, shared_server, db)

    [[product, version, major, _minor]] = out["product"]
    assert product == "PostgreSQL"
    assert version.startswith("16.")
    assert major == "16"
    [[catalog, schema, user, quote, _escape]] = out["connection"]
    assert (catalog, schema, user, quote) == (db, db, "x", '"')
    assert out["catalogs"] == [[db]]

    # getSchemas: the database is a schema (TABLE_CATALOG is NULL in pgjdbc's query).
    schemas = [s for s, _cat in out["schemas"]]
    assert db in schemas and "pg_catalog" in schemas
    assert schemas == sorted(schemas)
    assert "TABLE" in [t for [t] in out["table_types"]]

    # getTables(null, null, "%", {"TABLE"}) may list other tests' databases on the shared
    # server; this database's tables are listed under its schema.
    ours = [row for row in out["tables"] if row[0] == db]
    assert ours == [[db, "cpu", "TABLE", None], [db, "mem", "TABLE", None]]
    assert out["tables_in_db"] == [[db, "cpu", "TABLE"], [db, "mem", "TABLE"]]

    # getColumns(null, db, "cpu", "%"): name, type name, JDBC type, position, nullable, size,
    # decimal digits, autoincrement.
    assert out["columns"] == [
        ["host", "text", VARCHAR, "1", "YES", "2147483647", "0", "NO"],
        ["region", "text", VARCHAR, "2", "YES", "2147483647", "0", "NO"],
        ["measure_name", "text", VARCHAR, "3", "YES", "2147483647", "0", "NO"],
        ["time", "timestamp", TIMESTAMP, "4", "NO", "29", "6", "NO"],
        ["usage", "float8", DOUBLE, "5", "YES", "17", "17", "NO"],
        ["count", "int8", BIGINT, "6", "YES", "19", "0", "NO"],
    ]

    # No keys or indexes; the calls succeed with empty result sets.
    for section in ("primary_keys", "imported_keys", "exported_keys", "index_info"):
        assert out[section] == [], section

    # The prepared statement, executed twice (the second time server-side prepared).
    assert out["prepared"] == [
        ["0", "a", "1.5"], ["0", "a", "4.0"],
        ["1", "a", "1.5"], ["1", "a", "4.0"],
    ]

    # ResultSetMetaData of `SELECT * FROM cpu`: name, type name, JDBC type, Java class,
    # isNullable (2 = columnNullableUnknown: pgjdbc does not look it up without a table OID).
    assert out["result_metadata"] == [
        ["host", "text", VARCHAR, "java.lang.String", "2"],
        ["region", "text", VARCHAR, "java.lang.String", "2"],
        ["measure_name", "text", VARCHAR, "java.lang.String", "2"],
        ["time", "timestamp", TIMESTAMP, "java.sql.Timestamp", "2"],
        ["usage", "float8", DOUBLE, "java.lang.Double", "2"],
        ["count", "int8", BIGINT, "java.lang.Long", "2"],
    ]
    assert out["result_count"] == [["3"]]
    # PreparedStatement.getMetaData before execution (Describe of the statement).
    assert out["prepared_metadata"] == [["time", "timestamp", TIMESTAMP], ["count", "int8", BIGINT]]


def test_prepared_parameter_selects_rows(jdbc_classes, shared_server, db):
    shared_server.write_ok(LP, db=db)
    out = run_jdbc(jdbc_classes, shared_server, db, host_value="b")
    assert out["prepared"] == [["0", "b", "2.5"], ["1", "b", "2.5"]]
    out = run_jdbc(jdbc_classes, shared_server, db, host_value="nope")
    assert out["prepared"] == []
