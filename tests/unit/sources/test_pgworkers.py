"""What a failed PostgreSQL restore worker is reported as: the entry it was on, the
server's words without row contents, and the tools it runs."""

from __future__ import annotations

from recoveryd.sources.local import LocalRunner
from recoveryd.sources.pgworkers import RestoreCommand, clean_stderr, pg_restore_entry

COPY_FAILED = """pg_restore: connecting to database for restore
pg_restore: processing data for table "public.region"
pg_restore: processing data for table "public.pledge"
pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 3350; 0 16420 TABLE DATA public pledge backup
pg_restore: error: COPY failed for table "pledge": ERROR:  new row for relation "pledge" \
violates check constraint "pledge_v_check"
DETAIL:  Failing row contains (3, 110101199003077777, Zhang San).
CONTEXT:  COPY pledge, line 3: "3	110101199003077777	Zhang San"
"""


def test_the_entry_in_flight_is_named() -> None:
    """The last entry pg_restore --verbose announced is the one it failed on: a table's
    data, large objects, or another entry; None before any."""
    assert pg_restore_entry(COPY_FAILED, 1) == "table public.pledge"
    assert pg_restore_entry("pg_restore: processing BLOBS\n", 1) == "large objects"
    assert (
        pg_restore_entry('pg_restore: creating INDEX "public.citizen_name"\n', 1)
        == 'INDEX "public.citizen_name"'
    )
    assert pg_restore_entry("pg_restore: executing SEQUENCE SET certificate_no\n", 1) == (
        "SEQUENCE SET certificate_no"
    )
    assert pg_restore_entry("pg_restore: error: connection failed\n", 1) is None


def test_errors_keep_the_servers_words_but_no_row() -> None:
    """Progress lines go; the error stays; the failing row, a COPY line's contents and key
    values the server quotes are replaced (a registry's rows stay out of logs)."""
    cleaned = clean_stderr(COPY_FAILED)
    assert "processing data" not in cleaned and "connecting" not in cleaned
    assert 'violates check constraint "pledge_v_check"' in cleaned
    assert "from TOC entry 3350" in cleaned
    assert "Zhang San" not in cleaned and "110101199003077777" not in cleaned
    assert "Failing row contains (…)." in cleaned
    assert cleaned.endswith("CONTEXT:  COPY pledge, line 3")
    key = 'DETAIL:  Key (region_id)=(99) is not present in table "region".'
    assert clean_stderr(key) == 'DETAIL:  Key (region_id)=(…) is not present in table "region".'


def test_psql_is_taken_beside_pg_restore() -> None:
    """psql runs from pg_restore's directory (it reads that version's scripts); a bare
    pg_restore (over SSH) means a bare psql. Every session carries the restore's tag."""
    cmd = RestoreCommand(
        source="s", runner=LocalRunner(), pg_restore="/usr/lib/postgresql/15/bin/pg_restore",
        dsn="dbname=x", env={}, secrets=(), database="x",
    )  # fmt: skip
    assert cmd.psql_argv()[0] == "/usr/lib/postgresql/15/bin/psql"
    assert cmd.restore_argv("--verbose")[-3:] == ["--verbose", "--dbname", "dbname=x"]
    bare = RestoreCommand("s", LocalRunner(), "pg_restore", "dbname=x", {}, (), "x")
    assert bare.psql_argv()[0] == "psql"
    assert bare.tool_env["PGAPPNAME"].startswith("recoveryd-restore-")
    assert bare.tag != cmd.tag
