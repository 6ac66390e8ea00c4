"""`sql`, `http` and `wait` probes against real SQLite, MariaDB, PostgreSQL and HTTP servers."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recoveryd.drills.api import run_playbook
from tests.fixtures.mariadb import MariadbServer
from tests.fixtures.postgres import PgServer
from tests.unit.drills.helpers import records, write_playbook

pytestmark = pytest.mark.integration
HEAD = "apiVersion: recoveryd/v1\nkind: Drill\nname: probes\n"


@pytest.fixture
def health() -> Iterator[tuple[str, dict[str, object]]]:
    """A JSON health endpoint whose answer the test changes."""
    state: dict[str, object] = {"code": 503, "doc": {"status": "starting", "nodes": []}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(state["doc"]).encode()
            self.send_response(int(str(state["code"])))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            del args

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/healthz", state
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_sql_probes_on_sqlite_mariadb_and_postgresql(
    tmp_path: Path, mariadb_server: MariadbServer, pg_server: PgServer
) -> None:
    """A `sql` step queries SQLite by path, MariaDB by mysql:// DSN and PostgreSQL by libpq DSN,
    passwords from files, and compares the first value with `expect`."""
    db = tmp_path / "cache.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t(x)")
        conn.executemany("insert into t values (?)", [(i,) for i in range(1500)])
    maria_db = mariadb_server.create_database("drill_probe")
    mariadb_server.sql(maria_db, "create table t (x int)")
    mariadb_server.sql(maria_db, "insert into t values (1), (2), (3)")
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - {{name: sqlite rows, sql: "select count(*) from t", on: "{db}", expect: ">= 1000"}}
  - name: mariadb rows
    sql: select sum(x) from t
    on: "{mariadb_server.dsn(maria_db)}"
    password_file: "{mariadb_server.password_file}"
    expect: 6
  - name: postgresql is primary
    sql: select not pg_is_in_recovery()
    on: "{pg_server.dsn("postgres")}"
    password_file: "{pg_server.password_file}"
    expect: true
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "passed", result.error
    assert [r["output"] for r in records(result.journal, "step")] == ["1500", "6", "t"]
    text = result.journal.read_text()
    assert mariadb_server.password not in text
    assert pg_server.password not in text


def test_wait_polls_http_until_json_says_ready(
    tmp_path: Path, health: tuple[str, dict[str, object]]
) -> None:
    """`wait` polls an HTTP probe until status and JSON paths match, then marks recovery."""
    url, state = health
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: service breaks
    run: ["true"]
    marks: fault
  - name: service answers again
    wait:
      http: {{url: "{url}"}}
      expect: {{status: 200, json: {{"$.status": up, "$.nodes[0].lag": "< 1"}}}}
    interval: 50ms
    timeout: 30s
    marks: recovered
""",
    )

    def recover() -> None:
        state["doc"] = {"status": "up", "nodes": [{"lag": 0.2}]}
        state["code"] = 200

    timer = threading.Timer(0.5, recover)
    timer.start()
    try:
        result = run_playbook(None, book, state_dir=tmp_path / "state")
    finally:
        timer.cancel()
    assert result.status == "passed", result.error
    assert result.rto_seconds is not None
    wait = records(result.journal, "step")[1]
    assert '"status": "up"' in wait["output"]


def test_wait_times_out_with_the_last_mismatch(
    tmp_path: Path, health: tuple[str, dict[str, object]]
) -> None:
    """A `wait` that never matches fails with status timeout and says what it last saw."""
    url, _ = health
    book = write_playbook(
        tmp_path,
        HEAD
        + f"""
steps:
  - name: never ready
    wait: {{http: {{url: "{url}"}}, expect: {{status: 200}}}}
    interval: 50ms
    timeout: 1s
""",
    )
    result = run_playbook(None, book, state_dir=tmp_path / "state")
    assert result.status == "failed"
    step = records(result.journal, "step")[0]
    assert step["status"] == "timeout"
    assert "got '503'" in step["error"]
