"""Grafana's PostgreSQL data source against the PostgreSQL wire endpoint, with psycopg standing in
for Grafana's backend (pgx): the SQL of a time series panel with its macros expanded exactly as
Grafana expands them (pkg/tsdb/grafana-postgresql-datasource/macros.go), the health check, and
the queries its configuration page and query editor send (postgresMetaQuery.ts, schema.go).

Dashboard time range of every panel query here: 2024-01-01T00:00:00Z to 2024-01-01T01:00:00Z.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

T0 = 1704067200  # 2024-01-01T00:00:00Z


def _lp() -> str:
    """Host a every minute 23:58..01:02 (usage = minute index), host b every 5 minutes from
    00:00 (usage = 100 + minute index); points outside the dashboard range must be filtered."""
    lines = []
    for m in range(-2, 63):
        lines.append(f"cpu,host=a usage={float(m)} {(T0 + 60 * m) * 10**9}")
    for m in range(0, 61, 5):
        lines.append(f"cpu,host=b usage={100.0 + m} {(T0 + 60 * m) * 10**9}")
    return "\n".join(lines) + "\n"


# --- macro expansions, as Grafana writes them ---------------------------------------------------
# $__timeFilter(time): `%s BETWEEN '%s' AND '%s'` with From/To in UTC RFC3339Nano.
TIME_FILTER = "time BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-01T01:00:00Z'"


def time_group(col: str, seconds: int) -> str:
    """$__timeGroup(col, 'Nm') without TimescaleDB: `floor(extract(epoch from %s)/%v)*%v`, the
    interval formatted by Go's %v of a float64 number of seconds (300 → `300`)."""
    return f"floor(extract(epoch from {col})/{seconds})*{seconds}"


def time_group_alias(col: str, seconds: int) -> str:
    """$__timeGroupAlias(col, 'Nm') = $__timeGroup(...) + ` AS "time"`."""
    return time_group(col, seconds) + ' AS "time"'


@pytest.fixture
def grafana(shared_server, db):
    shared_server.write_ok(_lp(), db=db)
    host, port = shared_server.pg_addr
    with psycopg.connect(host=host, port=port, dbname=db, user="grafana", connect_timeout=10,
                         autocommit=True) as conn:
        conn.db = db
        yield conn


def rows(conn, sql, params=None):
    """Runs `sql` as pgx does (extended protocol, a prepared statement) and through the simple
    protocol (psycopg without parameters), expecting the same rows."""
    extended = conn.execute(sql, params, prepare=True).fetchall()
    if params is None:
        assert conn.execute(sql, prepare=False).fetchall() == extended, sql
    return extended


def test_health_check_and_connect_queries(grafana):
    # pgx's Ping (Grafana's CheckHealth) sends `-- ping`; lib/pq's (older Grafana) sends `;`:
    # both are empty queries answered by EmptyQueryResponse.
    for ping in (b"-- ping", b";"):
        res = grafana.pgconn.exec_(ping)
        assert res.status == psycopg.pq.ExecStatus.EMPTY_QUERY, (ping, res.error_message)
    assert rows(grafana, "SELECT 1") == [(1,)]
    # The configuration page's auto-detection (useAutoDetectFeatures / postgresMetaQuery.ts).
    assert rows(grafana, "SELECT current_setting('server_version_num')::int/100 as version") == [(1600,)]
    assert rows(grafana, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") == []


def test_query_editor_lists_schemas_tables_columns(grafana):
    db = grafana.db
    # postgresMetaQuery.ts: showSchemas, showTables (default search path and explicit schema),
    # getSchema (columns of a table).
    schemas = [r[0] for r in rows(grafana, """SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name""")]
    assert db in schemas
    schema_constraint = """
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )"""
    tables = rows(grafana, f"""SELECT
    CASE WHEN {schema_constraint}
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN {schema_constraint} THEN 0 ELSE 1 END, 1""")
    assert tables[0] == ("cpu",)
    assert rows(grafana, f"""SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = '{db}'
      ORDER BY 1""") == [("cpu",)]
    assert rows(grafana, f"""SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('cpu'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('cpu'))[1]
          AND quote_ident(table_name) = (parse_ident('cpu'))[2]
        ELSE quote_ident(table_name) = 'cpu'
          AND {schema_constraint}
      END""") == [("host", "text"), ("measure_name", "text"),
                  ("time", "timestamp without time zone"), ("usage", "double precision")]
    # schema.go (newer Grafana, pgx with bound parameters: extended protocol).
    assert db in [r[0] for r in rows(grafana, """SELECT schema_name FROM information_schema.schemata
		 WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema'
		 ORDER BY schema_name""")]
    assert rows(grafana, """SELECT table_name FROM information_schema.tables
		 WHERE table_schema = %s AND table_type IN ('BASE TABLE', 'VIEW')
		 ORDER BY table_name""", (db,)) == [("cpu",)]
    cols = rows(grafana, """SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = %s AND table_name = %s
		 ORDER BY ordinal_position""", (db, "cpu"))
    assert [(c[0], c[2]) for c in cols] == [("host", "text"), ("measure_name", "text"),
                                            ("time", "timestamp"), ("usage", "float8")]


def test_time_series_panel_time_group_alias(grafana):
    # SELECT $__timeGroupAlias(time, 1m), avg(usage) AS "usage" FROM cpu
    # WHERE $__timeFilter(time) AND host = 'a' GROUP BY 1 ORDER BY 1
    sql = (f'SELECT {time_group_alias("time", 60)}, avg(usage) AS "usage" FROM cpu '
           f"WHERE {TIME_FILTER} AND host = 'a' GROUP BY 1 ORDER BY 1")
    assert sql.startswith('SELECT floor(extract(epoch from time)/60)*60 AS "time", avg(usage)')
    assert rows(grafana, sql) is not None
    cur = grafana.execute(sql)
    assert [d.name for d in cur.description] == ["time", "usage"]
    # BETWEEN is inclusive: 00:00 .. 01:00 is 61 minutes.
    assert [(float(t), u) for t, u in cur.fetchall()] == [(T0 + 60.0 * m, float(m)) for m in range(61)]


def test_time_series_panel_multi_series_time_group(grafana):
    # Long format with a metric column; $__timeGroup in GROUP BY (no alias there).
    sql = (f"SELECT {time_group_alias('time', 300)}, host AS metric, avg(usage) AS value FROM cpu "
           f"WHERE {TIME_FILTER} GROUP BY {time_group('time', 300)}, host ORDER BY 1, 2")
    got = [(float(t), h, v) for t, h, v in rows(grafana, sql)]
    expected = []
    for k in range(13):
        start = 5 * k
        minutes = [m for m in range(start, start + 5) if m <= 60]
        expected.append((T0 + 300.0 * k, "a", sum(minutes) / len(minutes)))
        expected.append((T0 + 300.0 * k, "b", 100.0 + start))
    assert got == expected
    # Pre-5.3 form: `$__timeGroup(time, '5m'),` becomes the alias form, and `as time` after it.
    got = rows(grafana, f"SELECT {time_group('time', 300)} as time, count(*) AS n FROM cpu "
                        f"WHERE {TIME_FILTER} GROUP BY 1 ORDER BY 1")
    assert [(float(t), n) for t, n in got][:2] == [(T0, 6), (T0 + 300.0, 6)]
    assert len(got) == 13


def test_time_series_panel_timestamp_forms(grafana):
    # $__time(time) → `time AS "time"` (raw rows), and the `to_timestamp(...)` forms: Grafana
    # before 5.3 expanded $__timeFrom()/$__timeTo() to `to_timestamp(<unix seconds>)`, and panels
    # wrap the epoch bucket in to_timestamp() to get a timestamp column back.
    sql = (f"SELECT time AS \"time\", usage FROM cpu WHERE host = 'b' AND "
           f"time BETWEEN to_timestamp({T0 + 600}) AND to_timestamp({T0 + 1200}) ORDER BY 1")
    assert rows(grafana, sql) == [
        (dt.datetime(2024, 1, 1, 0, 10), 110.0),
        (dt.datetime(2024, 1, 1, 0, 15), 115.0),
        (dt.datetime(2024, 1, 1, 0, 20), 120.0),
    ]
    sql = (f'SELECT to_timestamp({time_group("time", 1800)}) AS "time", max(usage) AS "max" '
           f"FROM cpu WHERE {TIME_FILTER} GROUP BY 1 ORDER BY 1")
    got = rows(grafana, sql)
    assert [(t.replace(tzinfo=None) if t.tzinfo else t, m) for t, m in got] == [
        (dt.datetime(2024, 1, 1, 0, 0), 125.0),
        (dt.datetime(2024, 1, 1, 0, 30), 155.0),
        (dt.datetime(2024, 1, 1, 1, 0), 160.0),
    ]
