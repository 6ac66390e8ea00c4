"""Connection strings: libpq keyword strings and URIs, and `mysql://` URIs.

Passwords found inside a DSN are split off, so that the rest can be given to a
tool on its command line while the password travels through a 0600 file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from recoveryd.errors import SourceError

_PG_SCHEMES = ("postgresql://", "postgres://")


def parse_pg_dsn(dsn: str) -> dict[str, str]:
    """libpq keyword string (`host=db1 dbname=x`) or URI (`postgresql://u@h:5432/x`) -> keywords.

    Raises SourceError (without echoing the DSN, which may hold a password) when malformed.
    """
    if dsn.startswith(_PG_SCHEMES):
        return _parse_pg_uri(dsn)
    return _parse_pg_keywords(dsn)


def _parse_pg_uri(dsn: str) -> dict[str, str]:
    parts = urlsplit(dsn)
    out: dict[str, str] = {}
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    netloc = parts.netloc.rpartition("@")[2]
    host, port = _split_hostport(netloc)
    if host:
        out["host"] = unquote(host)
    if port:
        out["port"] = port
    db = unquote(parts.path.lstrip("/"))
    if db:
        out["dbname"] = db
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        out[key] = value
    return out


def _split_hostport(netloc: str) -> tuple[str, str]:
    if netloc.startswith("["):  # [::1]:5432
        host, _, rest = netloc[1:].partition("]")
        return host, rest.lstrip(":")
    host, _, port = netloc.partition(":")
    return host, port


def _parse_pg_keywords(dsn: str) -> dict[str, str]:
    out: dict[str, str] = {}
    i, n = 0, len(dsn)
    while True:
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n:
            return out
        eq = dsn.find("=", i)
        if eq < 0:
            raise SourceError("malformed PostgreSQL DSN: expected key=value pairs")
        key = dsn[i:eq].strip()
        i = eq + 1
        while i < n and dsn[i].isspace():
            i += 1
        value, i = _read_value(dsn, i)
        if not key:
            raise SourceError("malformed PostgreSQL DSN: empty keyword")
        out[key] = value


def _read_value(dsn: str, i: int) -> tuple[str, int]:
    n = len(dsn)
    buf: list[str] = []
    if i < n and dsn[i] == "'":
        i += 1
        while i < n and dsn[i] != "'":
            if dsn[i] == "\\" and i + 1 < n:
                i += 1
            buf.append(dsn[i])
            i += 1
        if i >= n:
            raise SourceError("malformed PostgreSQL DSN: unterminated quoted value")
        return "".join(buf), i + 1
    while i < n and not dsn[i].isspace():
        if dsn[i] == "\\" and i + 1 < n:
            i += 1
        buf.append(dsn[i])
        i += 1
    return "".join(buf), i


def format_pg_dsn(params: dict[str, str]) -> str:
    """Keywords -> a libpq keyword string, every value quoted."""
    return " ".join(f"{k}={_quote(v)}" for k, v in params.items())


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def split_pg_password(dsn: str) -> tuple[dict[str, str], str | None]:
    """(keywords without `password`, the password found in the DSN or None)."""
    params = parse_pg_dsn(dsn)
    return params, params.pop("password", None)


@dataclass(frozen=True)
class MysqlDsn:
    """`mysql://user[:password]@host[:port]/database[?socket=/path]`."""

    user: str | None
    host: str | None
    port: int | None
    database: str | None
    password: str | None = None
    socket: str | None = None

    def without_password(self) -> MysqlDsn:
        return replace(self, password=None)

    def with_database(self, database: str) -> MysqlDsn:
        return replace(self, database=database)

    def client_args(self) -> list[str]:
        """Connection options for mariadb/mysql tools (never the password)."""
        args: list[str] = []
        if self.host:
            args.append(f"--host={self.host}")
        if self.port:
            args.append(f"--port={self.port}")
        if self.socket:
            args.append(f"--socket={self.socket}")
        if self.user:
            args.append(f"--user={self.user}")
        return args


def parse_mysql_dsn(dsn: str) -> MysqlDsn:
    """Parse a `mysql://` (or `mariadb://`) URI; SourceError when malformed."""
    if not dsn.startswith(("mysql://", "mariadb://")):
        raise SourceError("MySQL DSN must look like mysql://user@host:3306/database")
    parts = urlsplit(dsn)
    try:
        port = parts.port
    except ValueError as exc:
        raise SourceError("MySQL DSN has an invalid port") from exc
    query = dict(parse_qsl(parts.query))
    db = unquote(parts.path.lstrip("/")) or None
    return MysqlDsn(
        user=unquote(parts.username) if parts.username else None,
        host=parts.hostname,
        port=port,
        database=db,
        password=unquote(parts.password) if parts.password else None,
        socket=query.get("socket"),
    )
