"""The scratch database of a restore drill: it must not exist before, it is dropped after.

A restore drill only drops a database it created itself: `into` naming a
database that already exists (the live one by mistake, or any other) is
refused before anything is restored, so that the drop can never hit it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from recoveryd.errors import RecoverydError
from recoveryd.sources.dsn import format_pg_dsn, parse_mysql_dsn, parse_pg_dsn


def scratch_exists(dsn: str, engine: str, password: str | None = None) -> bool:
    """Whether the database `dsn` names exists; RecoverydError when that cannot be told."""
    try:
        if engine == "postgresql":
            params = parse_pg_dsn(dsn)
            name = params.get("dbname")
            if not name:
                raise RecoverydError("the scratch DSN names no dbname; add dbname=...")
            admin = format_pg_dsn({**params, "dbname": "postgres"})
            extra: dict[str, Any] = {"password": password} if password else {}
            with psycopg.connect(admin, autocommit=True, connect_timeout=10, **extra) as conn:
                row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                return row.fetchone() is not None
        if engine == "mysql":
            parsed = parse_mysql_dsn(dsn)
            client = shutil.which("mariadb") or shutil.which("mysql")
            if client is None or not parsed.database:
                raise RecoverydError("cannot check the MySQL scratch database (client or name)")
            secret = password or parsed.password
            literal = "'" + parsed.database.replace("\\", "\\\\").replace("'", "''") + "'"
            done = subprocess.run(
                [
                    client,
                    *parsed.client_args(),
                    "-N",
                    "-e",
                    "SELECT COUNT(*) FROM information_schema.schemata "
                    f"WHERE schema_name = {literal}",
                ],
                env={"PATH": "/usr/bin:/bin", **({"MYSQL_PWD": secret} if secret else {})},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return done.stdout.strip() not in ("", "0")
        if engine == "sqlite":
            return Path(dsn.removeprefix("sqlite:///").removeprefix("sqlite:")).exists()
    except (psycopg.Error, OSError, subprocess.SubprocessError) as exc:
        raise RecoverydError(
            f"cannot tell whether the scratch database exists ({type(exc).__name__}); "
            "check the restore drill's into and password_file"
        ) from None
    return False


def drop_database(dsn: str, engine: str, password: str | None = None) -> str | None:
    """Drop the database `dsn` names; returns an error sentence or None. Never raises."""
    try:
        if engine == "postgresql":
            params = parse_pg_dsn(dsn)
            name = params.get("dbname")
            if not name:
                return "the scratch DSN names no dbname"
            admin = format_pg_dsn({**params, "dbname": "postgres"})
            extra: dict[str, Any] = {"password": password} if password else {}
            with psycopg.connect(admin, autocommit=True, connect_timeout=10, **extra) as conn:
                conn.execute(
                    pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        pgsql.Identifier(name)
                    )
                )
        elif engine == "mysql":
            parsed = parse_mysql_dsn(dsn)
            client = shutil.which("mariadb") or shutil.which("mysql")
            if client is None or not parsed.database:
                return "cannot drop the MySQL scratch database (client or name missing)"
            secret = password or parsed.password
            env = {"MYSQL_PWD": secret} if secret else {}
            ident = "`" + parsed.database.replace("`", "``") + "`"
            subprocess.run(
                [client, *parsed.client_args(), "-e", f"DROP DATABASE IF EXISTS {ident}"],
                env={"PATH": "/usr/bin:/bin", **env},
                capture_output=True,
                timeout=60,
                check=True,
            )
        elif engine == "sqlite":
            with contextlib.suppress(FileNotFoundError):
                Path(dsn.removeprefix("sqlite:///").removeprefix("sqlite:")).unlink()
    except (psycopg.Error, OSError, subprocess.SubprocessError, RecoverydError) as exc:
        return f"dropping the scratch database failed: {type(exc).__name__}"
    return None
