"""The Iceberg lake: the shared JDBC catalog and the file IO that reaches the object store."""
