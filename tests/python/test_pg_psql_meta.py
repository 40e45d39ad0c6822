"""psql's meta-commands against a database holding one `cpu` table: each answers what
PostgreSQL would for a database with Hourglass's tables and no functions, types or roles of its
own beyond what `pg_catalog` lists (`\\l+` with the database's size, `\\db`, `\\dC`, `\\dconfig`,
...), lists nothing for the objects Hourglass has none of (`\\df`, `\\do`, `\\dL`, ...), or fails
with a clear error (never an empty answer where rows exist).

psql 15's `\\du`/`\\dg`, `\\dp`/`\\z`, `\\dD` and `\\dy` send `ARRAY(SELECT ...)`, which
DataFusion cannot plan: Hourglass's `array_subquery` rule rewrites it (an aggregated subquery,
the empty array for no rows), and `\\dp` lists the tables with no privileges or policies.
`\\dX` casts to `regnamespace` (the schema's name). Both psql 15's and 16's `\\du` list the
roles (`hourglass`, and with `--require-auth` the users of `hourglass user`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from hgtest import pg_connector
from sectest import add_user

LP = "cpu,hostname=h1,region=r1 usage_user=1.5,usage_system=2 1709251200000000000\n"


@pytest.fixture
def pg(shared_server, db):
    if shutil.which("psql") is None:
        pytest.skip("psql not installed")
    return pg_connector(shared_server, db, LP)


def run_psql(host, port, db, command: str, user: str = "hg", password: str | None = None):
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        ["psql", "-X", "-h", host, "-p", str(port), "-U", user, "-d", db,
         "-v", "ON_ERROR_STOP=1", "-A", "-F", "|", "-c", command],
        capture_output=True, text=True, timeout=60, env=env,
    )


def psql(pg, command: str) -> list[str]:
    """The lines psql prints for `command`, which must succeed."""
    out = run_psql(pg.host, pg.port, pg.db, command)
    assert out.returncode == 0 and "ERROR" not in out.stderr, (command, out.stderr)
    return out.stdout.splitlines()


def psql_error(pg, command: str) -> str:
    out = run_psql(pg.host, pg.port, pg.db, command)
    assert out.returncode != 0 and "ERROR" in out.stderr, (command, out.stdout)
    assert out.stdout.strip() == "", (command, out.stdout)
    return out.stderr


def psql_major() -> int:
    out = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=True)
    return int(re.search(r"\(PostgreSQL\) (\d+)", out.stdout).group(1))


def table(lines: list[str], title: str, header: str) -> list[str]:
    """The rows of a psql table titled `title` with the columns `header` (unaligned output)."""
    assert lines[:2] == [title, header], lines
    footer = lines[-1]
    m = re.fullmatch(r"\((\d+) rows?\)", footer)
    assert m, lines
    rows = lines[2:-1]
    assert int(m.group(1)) == len(rows), lines
    return rows


def test_list_databases_with_size_and_tablespace(pg):
    rows = table(
        psql(pg, "\\l+"),
        "List of databases",
        "Name|Owner|Encoding|Collate|Ctype|ICU Locale|Locale Provider|Access privileges|Size"
        "|Tablespace|Description",
    )
    mine = [r for r in rows if r.startswith(f"{pg.db}|")]
    assert len(mine) == 1, rows
    fields = mine[0].split("|")
    assert fields[:8] == [pg.db, "hourglass", "UTF8", "C", "C", "", "libc", ""], fields
    # The row just written is held in memory: the database is not empty.
    size = re.fullmatch(r"(\d+) (bytes|kB|MB)", fields[8])
    assert size and int(size.group(1)) > 0, fields
    assert fields[9:] == ["pg_default", ""], fields


def test_list_schemas_with_privileges(pg):
    rows = table(psql(pg, "\\dn+"), "List of schemas", "Name|Owner|Access privileges|Description")
    assert f"{pg.db}|hourglass||" in rows, rows


def test_functions_and_aggregates_none_of_its_own(pg):
    assert table(psql(pg, "\\df"), "List of functions",
                 "Schema|Name|Result data type|Argument data types|Type") == []
    assert table(psql(pg, "\\da"), "List of aggregate functions",
                 "Schema|Name|Result data type|Argument data types|Description") == []


def test_roles(pg):
    # The query psql 16's \du sends (psql 15's adds an ARRAY(subquery) of memberships).
    rows = psql(pg, "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,"
                    " r.rolcanlogin, r.rolconnlimit, r.rolvaliduntil, r.rolreplication,"
                    " r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname !~ '^pg_'"
                    " ORDER BY 1")
    assert rows[1:] == ["hourglass|t|t|t|t|t|-1||f|t", "(1 row)"], rows
    assert psql(pg, "SELECT usename, usesysid, usesuper FROM pg_catalog.pg_user")[1:2] == [
        "hourglass|10|t"]
    assert psql(pg, "SELECT count(*) FROM pg_catalog.pg_auth_members")[1:2] == ["0"]
    for command in ("\\du", "\\dg"):
        if psql_major() >= 16:
            rows = table(psql(pg, command), "List of roles", "Role name|Attributes")
            assert rows == ["hourglass|Superuser, Create role, Create DB, Bypass RLS"], rows
        else:
            # psql 15 adds "Member of": ARRAY(SELECT ...) of no memberships, the empty array.
            lines = psql(pg, command)
            assert lines[:2] == ["List of roles", "Role name|Attributes|Member of"], lines
            assert lines[2:] == ["hourglass|Superuser, Create role, Create DB, Bypass RLS|{}"], lines


def test_array_of_a_subquery_holds_the_rows_in_order(pg):
    """`ARRAY(SELECT ...)`: the subquery's rows, in its order, correlated or not; `{}` for none."""
    names = psql(pg, "SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c"
                     " ON c.oid = a.attrelid WHERE c.relname = 'cpu'"
                     " AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY a.attnum DESC")
    names = names[1:-1]
    assert "usage_user" in names and "hostname" in names, names
    rows = psql(pg, "SELECT c.relname, ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a"
                    " WHERE a.attrelid = c.oid ORDER BY a.attnum DESC) AS cols,"
                    " ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a"
                    " WHERE a.attrelid = c.oid AND a.attname = 'nothing') AS none"
                    " FROM pg_catalog.pg_class c WHERE c.relname = 'cpu'"
                    " AND pg_catalog.pg_table_is_visible(c.oid)")
    assert rows[0] == "relname|cols|none", rows
    assert rows[1:] == ["cpu|{" + ",".join(names) + "}|{}", "(1 row)"], rows
    rows = psql(pg, "SELECT array_length(ARRAY(SELECT 1 FROM pg_catalog.pg_class), 1)"
                    " = (SELECT count(*) FROM pg_catalog.pg_class) AS same,"
                    " cardinality(ARRAY(SELECT relname FROM pg_catalog.pg_class WHERE false)) AS n")
    assert rows[1] == "t|0", rows
    # Switched off, the statement is refused as before, never answered differently.
    out = run_psql(pg.host, pg.port, pg.db, "SET hourglass.disabled_rules = 'array_subquery';"
                   " SELECT ARRAY(SELECT 1)")
    assert out.returncode != 0 and "ARRAY(subquery) is not supported" in out.stderr, out


def test_privileges_list_the_tables(pg):
    for command in ("\\dp", "\\z"):
        rows = table(psql(pg, command), "Access privileges",
                     "Schema|Name|Type|Access privileges|Column privileges|Policies")
        assert f"{pg.db}|cpu|table|||" in rows, rows
        assert all(r.startswith(f"{pg.db}|") for r in rows), rows
    rows = table(psql(pg, "\\dp cpu"), "Access privileges",
                 "Schema|Name|Type|Access privileges|Column privileges|Policies")
    assert rows == [f"{pg.db}|cpu|table|||"], rows


def test_domains_event_triggers_and_extended_statistics_none(pg):
    assert table(psql(pg, "\\dD"), "List of domains",
                 "Schema|Name|Type|Collation|Nullable|Default|Check") == []
    assert table(psql(pg, "\\dy"), "List of event triggers",
                 "Name|Event|Owner|Enabled|Function|Tags") == []
    assert table(psql(pg, "\\dX"), "List of extended statistics",
                 "Schema|Name|Definition|Ndistinct|Dependencies|MCV") == []
    rows = psql(pg, "SELECT n.oid::pg_catalog.regnamespace::pg_catalog.text AS a,"
                    " 11::regnamespace AS b, 123456789::regnamespace::text AS c"
                    " FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pg_catalog'")
    assert rows[1] == "pg_catalog|pg_catalog|123456789", rows


def test_roles_are_the_users_with_require_auth(server, hourglass_bin):
    if shutil.which("psql") is None:
        pytest.skip("psql not installed")
    srv = server(args=["--require-auth"])
    op = add_user(hourglass_bin, srv.data_dir, "op", ("*", "admin"))
    add_user(hourglass_bin, srv.data_dir, "reader", ("metrics", "read"))
    add_user(hourglass_bin, srv.data_dir, "loader", ("*", "write"))
    r = srv.write_v3(LP, db="metrics", headers={"Authorization": f"Token {op['token']}"})
    assert r.status_code == 204, r.text
    host, port = srv.pg_addr
    out = run_psql(host, port, "metrics",
                   "SELECT rolname, rolsuper, rolcreatedb, rolcanlogin, rolbypassrls,"
                   " oid = 10 FROM pg_catalog.pg_roles ORDER BY 1",
                   user="op", password=op["password"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == [
        "hourglass|t|t|f|t|t",
        "loader|f|t|t|f|f",
        "op|t|t|t|t|f",
        "reader|f|f|t|f|f",
        "(4 rows)",
    ], out.stdout
    out = run_psql(host, port, "metrics", "SELECT usename FROM pg_catalog.pg_user ORDER BY 1",
                   user="op", password=op["password"])
    assert out.stdout.splitlines()[1:] == ["loader", "op", "reader", "(3 rows)"], out.stdout


def test_tablespaces(pg):
    rows = table(psql(pg, "\\db"), "List of tablespaces", "Name|Owner|Location")
    assert rows == ["pg_default|hourglass|", "pg_global|hourglass|"], rows


def test_casts_between_the_listed_types(pg):
    rows = table(psql(pg, "\\dC"), "List of casts", "Source type|Target type|Function|Implicit?")
    assert "bigint|double precision||yes" in rows, rows
    assert "double precision|bigint||in assignment" in rows, rows
    assert "timestamp without time zone|timestamp with time zone||yes" in rows, rows
    assert "boolean|integer||no" in rows, rows


def test_objects_hourglass_has_none_of(pg):
    empty = {
        "\\dc": ("List of conversions", "Schema|Name|Source|Destination|Default?"),
        "\\do": ("List of operators",
                 "Schema|Name|Left arg type|Right arg type|Result type|Description"),
        "\\des": ("List of foreign servers", "Name|Owner|Foreign-data wrapper"),
        "\\dew": ("List of foreign-data wrappers", "Name|Owner|Handler|Validator"),
        "\\deu": ("List of user mappings", "Server|User name"),
        "\\dL": ("List of languages", "Name|Owner|Trusted|Description"),
        "\\dF": ("List of text search configurations", "Schema|Name|Description"),
        "\\dRs": ("List of subscriptions", "Name|Owner|Enabled|Publication"),
        "\\dl": ("Large objects", "ID|Owner|Description"),
        "\\dd": ("Object descriptions", "Schema|Name|Object|Description"),
        "\\dO": ("List of collations",
                 "Schema|Name|Collate|Ctype|ICU Locale|Provider|Deterministic?"),
    }
    for command, (title, header) in empty.items():
        assert table(psql(pg, command), title, header) == [], command
    out = run_psql(pg.host, pg.port, pg.db, "\\drds")
    assert out.returncode == 0 and out.stderr.strip() == "Did not find any settings.", out


def test_builtin_languages_and_collations(pg):
    rows = table(psql(pg, "\\dLS"), "List of languages", "Name|Owner|Trusted|Description")
    assert rows == ["c|hourglass|f|", "internal|hourglass|f|", "sql|hourglass|t|"], rows
    rows = table(psql(pg, "\\dOS"), "List of collations",
                 "Schema|Name|Collate|Ctype|ICU Locale|Provider|Deterministic?")
    assert "pg_catalog|C|C|C||libc|yes" in rows and "pg_catalog|POSIX|POSIX|POSIX||libc|yes" in rows


def test_non_default_settings(pg):
    rows = table(psql(pg, "\\dconfig"), "List of non-default configuration parameters",
                 "Parameter|Value")
    assert "application_name|psql" in rows, rows
    assert f"search_path|{pg.db}" in rows, rows
    assert "timezone|UTC" in rows, rows
    assert not any(r.startswith(("datestyle|", "server_version|")) for r in rows), rows
    rows = table(psql(pg, "\\dconfig+"), "List of non-default configuration parameters",
                 "Parameter|Value|Type|Context|Access privileges")
    assert f"search_path|{pg.db}|string|user|" in rows, rows


def test_encoding_functions(pg):
    rows = psql(pg, "SELECT pg_catalog.pg_encoding_to_char(6), pg_catalog.pg_encoding_to_char(8),"
                    " pg_catalog.pg_char_to_encoding('utf8'), pg_catalog.getdatabaseencoding(),"
                    " pg_catalog.pg_tablespace_location(1663)")
    assert rows[1] == "UTF8|LATIN1|6|UTF8|", rows


def test_commands_that_fail_fail_clearly(pg):
    # pg_proc lists no functions: psql cannot show one.
    psql_error(pg, "\\sf now")


#: Every meta-command above: "rows" (must list something), "none" (Hourglass has none of those
#: objects: psql's empty table or "Did not find"), "error" (a clear error, no output).
EVERY_COMMAND = {
    "\\l": "rows", "\\l+": "rows", "\\dn": "rows", "\\dn+": "rows", "\\dt": "rows",
    "\\dt+": "rows", "\\d cpu": "rows", "\\db": "rows", "\\dC": "rows", "\\dconfig": "rows",
    "\\dconfig+": "rows", "\\dA": "rows", "\\dLS": "rows", "\\dOS": "rows",
    "\\df": "none", "\\da": "none", "\\dc": "none", "\\do": "none", "\\des": "none",
    "\\dew": "none", "\\deu": "none", "\\dL": "none", "\\dF": "none", "\\drds": "none",
    "\\dRs": "none", "\\dRp": "none", "\\dl": "none", "\\dd": "none", "\\dO": "none",
    "\\dx": "none", "\\dv": "none", "\\ds": "none", "\\di": "none",
    "\\dy": "none", "\\dD": "none", "\\dX": "none", "\\dp": "rows", "\\z": "rows",
    "\\sf now": "error",
}


def test_every_command_answers_or_fails_clearly(pg):
    commands = dict(EVERY_COMMAND, **{"\\du": "rows", "\\dg": "rows"})
    for command, expected in commands.items():
        out = run_psql(pg.host, pg.port, pg.db, command)
        lines = out.stdout.splitlines()
        if expected == "error":
            assert out.returncode != 0 and "ERROR" in out.stderr, (command, out.stdout)
            assert lines == [], (command, lines)
            continue
        assert out.returncode == 0 and "ERROR" not in out.stderr, (command, out.stderr)
        empty = "(0 rows)" in lines or any(
            l.startswith("Did not find") for l in lines + out.stderr.splitlines())
        if expected == "rows":
            assert lines and not empty, (command, lines)
            if command.startswith(("\\l", "\\dn", "\\dt", "\\d cpu", "\\dp", "\\z")):
                assert any(pg.db in l for l in lines), (command, lines)
        else:
            assert empty, (command, lines)
