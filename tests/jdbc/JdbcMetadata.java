// What DBeaver (and other JDBC tools) ask the PostgreSQL JDBC driver when they open a
// connection and browse a table, against Hourglass's PostgreSQL wire endpoint. No build tool:
//
//   javac -cp /usr/share/java/postgresql.jar -d OUT tests/jdbc/JdbcMetadata.java
//   java -cp /usr/share/java/postgresql.jar:OUT JdbcMetadata HOST PORT DB [HOST_VALUE]
//
// Prints one JSON object per line: {"section": NAME, "row": [values...]} for each result row,
// or {"section": NAME, "error": MESSAGE} when a call fails (later sections still run). Values
// are strings or null. Test: tests/python/test_pg_jdbc.py.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;

public class JdbcMetadata {
    interface Body {
        void run() throws SQLException;
    }

    static String json(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    static void row(String section, Object... values) {
        StringBuilder b = new StringBuilder("{\"section\": ").append(json(section)).append(", \"row\": [");
        for (int i = 0; i < values.length; i++) {
            if (i > 0) {
                b.append(", ");
            }
            b.append(json(values[i] == null ? null : String.valueOf(values[i])));
        }
        System.out.println(b.append("]}"));
    }

    static void section(String name, Body body) {
        try {
            body.run();
        } catch (Exception e) {
            String msg = e.getClass().getSimpleName() + ": " + e.getMessage();
            System.out.println("{\"section\": " + json(name) + ", \"error\": " + json(msg) + "}");
        }
    }

    /** Prints the named columns of every row of `rs`. */
    static void rows(String section, ResultSet rs, String... columns) throws SQLException {
        try (rs) {
            while (rs.next()) {
                Object[] values = new Object[columns.length];
                for (int i = 0; i < columns.length; i++) {
                    values[i] = rs.getString(columns[i]);
                }
                row(section, values);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String host = args[0], port = args[1], db = args[2];
        String hostValue = args.length > 3 ? args[3] : "a";
        String url = "jdbc:postgresql://" + host + ":" + port + "/" + db + "?sslmode=disable";
        Properties props = new Properties();
        props.setProperty("user", "x");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        props.setProperty("ApplicationName", "JdbcMetadata");
        // `java -DloggerLevel=TRACE ...` logs the SQL the driver sends (on stderr).
        String level = System.getProperty("loggerLevel");
        if (level != null) {
            props.setProperty("loggerLevel", level);
        }
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = conn.getMetaData();
            section("product", () -> row("product", md.getDatabaseProductName(), md.getDatabaseProductVersion(),
                    md.getDatabaseMajorVersion(), md.getDatabaseMinorVersion()));
            section("driver", () -> row("driver", md.getDriverName(), md.getDriverVersion()));
            section("connection", () -> row("connection", conn.getCatalog(), conn.getSchema(),
                    md.getUserName(), md.getIdentifierQuoteString(), md.getSearchStringEscape()));
            section("catalogs", () -> rows("catalogs", md.getCatalogs(), "TABLE_CAT"));
            section("schemas", () -> rows("schemas", md.getSchemas(), "TABLE_SCHEM", "TABLE_CATALOG"));
            section("table_types", () -> rows("table_types", md.getTableTypes(), "TABLE_TYPE"));
            section("tables", () -> rows("tables", md.getTables(null, null, "%", new String[] {"TABLE"}),
                    "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS"));
            section("tables_in_db", () -> rows("tables_in_db", md.getTables(null, db, "%", null),
                    "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"));
            section("columns", () -> rows("columns", md.getColumns(null, db, "cpu", "%"),
                    "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "ORDINAL_POSITION", "IS_NULLABLE",
                    "COLUMN_SIZE", "DECIMAL_DIGITS", "IS_AUTOINCREMENT"));
            section("primary_keys", () -> rows("primary_keys", md.getPrimaryKeys(null, db, "cpu"),
                    "COLUMN_NAME", "KEY_SEQ", "PK_NAME"));
            section("imported_keys", () -> rows("imported_keys", md.getImportedKeys(null, db, "cpu"),
                    "PKTABLE_NAME", "FKCOLUMN_NAME"));
            section("exported_keys", () -> rows("exported_keys", md.getExportedKeys(null, db, "cpu"),
                    "FKTABLE_NAME", "FKCOLUMN_NAME"));
            section("index_info", () -> rows("index_info", md.getIndexInfo(null, db, "cpu", false, true),
                    "INDEX_NAME", "COLUMN_NAME"));
            section("prepared", () -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT host, usage FROM cpu WHERE host = ? ORDER BY time")) {
                    ps.setString(1, hostValue);
                    // Twice: the driver switches to a server-side prepared statement on reuse.
                    for (int round = 0; round < 2; round++) {
                        try (ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                row("prepared", round, rs.getString(1), rs.getDouble(2));
                            }
                        }
                    }
                }
            });
            section("result_metadata", () -> {
                try (Statement st = conn.createStatement();
                     ResultSet rs = st.executeQuery("SELECT * FROM cpu ORDER BY time LIMIT 200")) {
                    ResultSetMetaData m = rs.getMetaData();
                    for (int i = 1; i <= m.getColumnCount(); i++) {
                        row("result_metadata", m.getColumnName(i), m.getColumnTypeName(i), m.getColumnType(i),
                                m.getColumnClassName(i), m.isNullable(i));
                    }
                    int n = 0;
                    while (rs.next()) {
                        n++;
                    }
                    row("result_count", n);
                }
            });
            section("prepared_metadata", () -> {
                try (PreparedStatement ps = conn.prepareStatement("SELECT time, count FROM cpu WHERE host = ?")) {
                    ResultSetMetaData m = ps.getMetaData();
                    for (int i = 1; i <= m.getColumnCount(); i++) {
                        row("prepared_metadata", m.getColumnName(i), m.getColumnTypeName(i), m.getColumnType(i));
                    }
                }
            });
        }
    }
}
