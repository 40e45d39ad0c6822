import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

/**
 * Reads timestamps through pgjdbc with the session's hourglass.timestamp_precision set to the
 * value given (args[3]): prints one line per row, "epochSeconds nanos" of getTimestamp(1), so the
 * test can compare them with what it wrote. Used by tests/python/test_pg_timestamps.py.
 */
public class JdbcNanos {
    public static void main(String[] args) throws Exception {
        String host = args[0], port = args[1], db = args[2], precision = args[3];
        Properties props = new Properties();
        props.setProperty("user", "hg");
        props.setProperty("sslmode", "disable");
        // Text results (pgjdbc reads text unless a statement has been prepared five times).
        props.setProperty("binaryTransfer", "false");
        String url = "jdbc:postgresql://" + host + ":" + port + "/" + db;
        try (Connection c = DriverManager.getConnection(url, props);
             Statement st = c.createStatement()) {
            st.execute("SET hourglass.timestamp_precision = '" + precision + "'");
            try (ResultSet rs = st.executeQuery("SELECT time FROM ts ORDER BY time")) {
                while (rs.next()) {
                    java.sql.Timestamp t = rs.getTimestamp(1, java.util.Calendar.getInstance(java.util.TimeZone.getTimeZone("UTC")));
                    System.out.println(Math.floorDiv(t.getTime(), 1000L) + " " + t.getNanos());
                }
            }
        }
    }
}
