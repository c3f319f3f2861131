// A JDBC tool as a researcher's (DBeaver, any JDBC client) would use the Trino driver: connect
// with the URL given, run one statement, print each row's columns separated by tabs.
// Run with the driver on the class path: java -cp trino-jdbc-476.jar JdbcQuery.java URL SQL
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

public class JdbcQuery {
    public static void main(String[] args) throws Exception {
        try (Connection connection = DriverManager.getConnection(args[0]);
             Statement statement = connection.createStatement();
             ResultSet rows = statement.executeQuery(args[1])) {
            int columns = rows.getMetaData().getColumnCount();
            while (rows.next()) {
                StringBuilder line = new StringBuilder("ROW");
                for (int i = 1; i <= columns; i++) {
                    line.append('\t').append(rows.getString(i));
                }
                System.out.println(line);
            }
        }
    }
}
