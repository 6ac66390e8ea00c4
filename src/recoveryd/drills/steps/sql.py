"""The `sql` kind: one query against PostgreSQL (psycopg), MySQL/MariaDB (the `mariadb`/`mysql`
client) or SQLite (`sqlite3`). The result is the first column of the first row,
as text (`t`/`f` for PostgreSQL booleans), compared with `expect`."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from pydantic import model_validator

from recoveryd.drills.expect import matches
from recoveryd.drills.steps.base import DEFAULT_TIMEOUT, Outcome, StepContext
from recoveryd.drills.steps.schema import StepBase, StepKind
from recoveryd.errors import SourceError
from recoveryd.secrets import resolve_secret
from recoveryd.sources.dsn import parse_mysql_dsn


def engine_of(on: str, engine: str | None = None) -> str:
    """`engine`, else guessed from the DSN: mysql:// -> mysql; a path or sqlite: -> sqlite."""
    if engine:
        return engine
    if on.startswith(("mysql://", "mariadb://")):
        return "mysql"
    if on.startswith("sqlite:") or on.endswith((".db", ".sqlite", ".sqlite3")) or on[:1] in "/.":
        return "sqlite"
    return "postgresql"


def query(
    on: str,
    sql: str,
    *,
    engine: str | None = None,
    timeout: float = 30.0,
    password: str | None = None,
) -> str:
    """Run `sql`; the first column of the first row as text ('' when no row).

    Raises SourceError naming the engine (never the DSN, which may hold a password).
    """
    kind = engine_of(on, engine)
    if kind == "postgresql":
        return _pg(on, sql, timeout, password)
    if kind == "mysql":
        return _mysql(on, sql, timeout, password)
    return _sqlite(on, sql, timeout)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _pg(dsn: str, sql: str, timeout: float, password: str | None = None) -> str:
    extra: dict[str, Any] = {"password": password} if password else {}
    try:
        with psycopg.connect(
            dsn,
            **extra,
            connect_timeout=max(1, int(min(timeout, 30))),
            autocommit=True,
            options=f"-c statement_timeout={int(timeout * 1000)}",
        ) as conn:
            cur = conn.execute(sql.encode())
            row = cur.fetchone() if cur.description else None
            return _text(row[0]) if row else ""
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"postgresql: {first}") from None


def _mysql(dsn: str, sql: str, timeout: float, password: str | None = None) -> str:
    parsed = parse_mysql_dsn(dsn)
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        raise SourceError("mysql: the mariadb/mysql client is not installed")
    argv = [client, *parsed.client_args(), "--batch", "--skip-column-names", "-e", sql]
    if parsed.database:
        argv.append(parsed.database)
    env = {"PATH": "/usr/bin:/bin"}
    if password or parsed.password:
        env["MYSQL_PWD"] = str(password or parsed.password)
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"mysql: no answer within {timeout:g}s") from None
    if done.returncode != 0:
        raise SourceError(f"mysql: {done.stderr.decode(errors='replace').strip()}")
    first = done.stdout.decode(errors="replace").splitlines()[:1]
    return first[0].split("\t")[0] if first else ""


def _sqlite(on: str, sql: str, timeout: float) -> str:
    path = on.removeprefix("sqlite:///").removeprefix("sqlite:")
    if not Path(path).exists():
        raise SourceError(f"sqlite: {path} does not exist")
    try:
        with sqlite3.connect(path, timeout=timeout) as conn:
            row = conn.execute(sql).fetchone()
    except sqlite3.Error as exc:
        raise SourceError(f"sqlite: {exc}") from None
    return _text(row[0]) if row else ""


def run_sql(
    ctx: StepContext,
    *,
    on: str,
    sql: str,
    engine: str | None,
    expect: object,
    timeout: float,
    password: str | None = None,
) -> Outcome:
    del ctx
    try:
        value = query(on, sql, engine=engine, timeout=timeout, password=password)
    except SourceError as exc:
        return Outcome("failed", "", exc.message)
    verdict = matches(expect, value)
    return Outcome("ok", value) if verdict.ok else Outcome("failed", value, verdict.detail)


class SqlStep(StepBase):
    """`sql` against `on` (a DSN or SQLite path), `password_file` authenticating to it."""

    kind: ClassVar[str] = "sql"
    sql: str

    @model_validator(mode="after")
    def _needs_on(self) -> SqlStep:
        if not self.on:
            raise ValueError("sql needs on: the DSN or database path to query")
        return self


def run_step(step: SqlStep, ctx: StepContext, timeout: float | None) -> Outcome:
    password = None
    if step.password_file:
        password = resolve_secret(step.password_file, ctx.base_dir, setting="password_file")
    return run_sql(
        ctx,
        on=str(step.on),
        sql=step.sql,
        engine=step.engine,
        expect=step.expect,
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        password=password,
    )


def describe_step(step: SqlStep) -> str:
    return f"sql on {step.on}: {step.sql}"


KIND = StepKind(SqlStep, run_step, describe_step, probe=True)
