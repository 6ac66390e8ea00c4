"""`recoveryd restore` of a PostgreSQL snapshot in parts whose table the target rejects,
against a real PostgreSQL 15 server on loopback and a filesystem repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, fs_target

pytestmark = pytest.mark.integration

_SCHEMA = """
CREATE TABLE citizen (id bigint PRIMARY KEY, note text);
CREATE TABLE pledge (id int PRIMARY KEY, v text NOT NULL
    CHECK (v NOT LIKE 'row-of-%' OR current_database() = 'e2e_parts_src'));
INSERT INTO citizen SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
INSERT INTO pledge SELECT g, CASE WHEN g = 3 THEN 'row-of-citizen-3' ELSE 'ok' END
    FROM generate_series(1, 10) g;
ANALYZE;
"""


def test_a_rejected_table_fails_the_restore_in_one_sentence(
    deployment: Deployment, tmp_path: Path, pg_server: Any
) -> None:
    """The restore exits 1 with one line on stderr (no traceback) naming the table, the
    worker and the database, quoting no row, and saying what to do with the database."""
    db = pg_server.create_database("e2e_parts_src")
    pg_server.psql(db, _SCHEMA)
    deployment.configure(
        targets={"local": fs_target(tmp_path / "store")},
        sources={
            "population": {
                "kind": "postgresql",
                "dsn": pg_server.dsn(db),
                "password_file": str(pg_server.password_file),
                "targets": ["local"],
                "jobs": 2,
            }
        },
    )
    sid = deployment.backup()[0]["id"]
    pg_server.drop_database("e2e_parts_dest")
    result = deployment.cli("restore", sid, "--to", pg_server.admin_dsn("e2e_parts_dest"))
    result.expect(1)
    (line,) = result.err.strip().splitlines()
    assert "pg_restore worker" in line and "could not restore table public.pledge" in line
    assert "into database e2e_parts_dest" in line and "row-of-citizen-3" not in line
    assert line.endswith("drop it and restore again")
    assert pg_server.psql("e2e_parts_dest", "SELECT count(*) FROM pledge") == [(0,)]
    pg_server.drop_database("e2e_parts_dest")
