"""Sources: PostgreSQL, MySQL/MariaDB, SQLite and directories as byte streams."""
