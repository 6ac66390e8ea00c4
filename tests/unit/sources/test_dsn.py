"""Connection strings: libpq keyword strings and URIs, mysql:// URIs."""

from __future__ import annotations

import pytest

from recoveryd.errors import SourceError
from recoveryd.sources.dsn import (
    format_pg_dsn,
    parse_mysql_dsn,
    parse_pg_dsn,
    split_pg_password,
)


def test_keyword_dsn_with_quotes_and_escapes() -> None:
    """libpq keyword strings parse with spaces around `=`, quoted values and escapes."""
    dsn = r"host=db1 port = 5432 dbname='pop registry' user=backup password='it\'s \\ secret'"
    assert parse_pg_dsn(dsn) == {
        "host": "db1",
        "port": "5432",
        "dbname": "pop registry",
        "user": "backup",
        "password": "it's \\ secret",
    }


def test_uri_dsn_with_percent_encoding_and_parameters() -> None:
    """postgresql:// URIs give the same keywords, decoded, with query parameters."""
    dsn = "postgresql://back%40up:p%3Ass@[::1]:6543/pop%20db?sslmode=require"
    assert parse_pg_dsn(dsn) == {
        "user": "back@up",
        "password": "p:ss",
        "host": "::1",
        "port": "6543",
        "dbname": "pop db",
        "sslmode": "require",
    }


def test_format_round_trips_and_password_is_split_off() -> None:
    """A formatted keyword string parses back to the same keywords; the password is
    separated so the rest can go on a command line."""
    params, password = split_pg_password("host=h dbname=x password='a b' user=u")
    assert password == "a b"
    assert "password" not in params
    weird = {"dbname": "it's \\ odd", "host": "h"}
    assert parse_pg_dsn(format_pg_dsn(weird)) == weird


@pytest.mark.parametrize("dsn", ["host", "host='unterminated", "=x"])
def test_malformed_keyword_dsn_is_an_error_without_echo(dsn: str) -> None:
    """A malformed DSN raises SourceError that does not echo the DSN (it may hold a secret)."""
    with pytest.raises(SourceError) as err:
        parse_pg_dsn(dsn)
    assert dsn not in str(err.value)


def test_mysql_uri() -> None:
    """mysql:// URIs give user, host, port, database, socket; password kept apart."""
    dsn = parse_mysql_dsn("mysql://backup:s%23cret@db2:3307/legal_entities?socket=/run/m.sock")
    assert (dsn.user, dsn.host, dsn.port, dsn.database) == ("backup", "db2", 3307, "legal_entities")
    assert dsn.password == "s#cret"
    assert dsn.socket == "/run/m.sock"
    assert "s#cret" not in " ".join(dsn.client_args())
    assert dsn.without_password().password is None


@pytest.mark.parametrize("dsn", ["host=db2 dbname=x", "mysql://u@h:notaport/db"])
def test_bad_mysql_dsn_is_an_error(dsn: str) -> None:
    """Something that is not a mysql:// URI with a valid port is refused clearly."""
    with pytest.raises(SourceError, match="MySQL DSN"):
        parse_mysql_dsn(dsn)
