"""The marker secret of test_secret_marker, through the commands that test does not run:
WAL archiving and streaming, binary log streaming, signed approvals and incident actions.

Real servers: PostgreSQL (a replication role whose password is the marker, given by
password file; another role whose wrong password is the marker, given by env), MariaDB
(a REPLICATION SLAVE user, password by credential, and the same wrongly), Ceph RGW (an S3
target by credentials file). Every command runs as its own process, as an operator runs
it: the streams and the waiting drill as fresh interpreters (they run until SIGTERM or
their end), the others forked from an interpreter that imported the command line and read
nothing else (tests/forkcli.py, as test_secret_marker does). The approvers' private
keys are secrets too: their bytes must appear nowhere either.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_secret_marker import (
    PREFIX,
    Secrets,
    _secret_file,
    assert_nowhere,
    deployment_env,
    deployment_haystacks,
)
from tests.fixtures.mariadb import MariadbServer
from tests.fixtures.objectstores import TargetSpec
from tests.fixtures.web import poll
from tests.forkcli import run_recoveryd

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Deployment:
    """A configuration in `d` and every output of the commands run against it."""

    d: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)

    @property
    def cli(self) -> list[str]:
        return [sys.executable, "-m", "recoveryd", "--config", str(self.d / "recoveryd.yaml")]

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        proc = run_recoveryd(
            ["--config", str(self.d / "recoveryd.yaml"), *args], env=self.env, timeout=300
        )
        self.outputs.append(f"{proc.stdout}\n{proc.stderr}")
        assert proc.returncode in ok, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.cli, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def until(self, proc: subprocess.Popen[str], text: str) -> None:
        """Read the process's stderr until a line holds `text` (kept with its output)."""
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if text in line:
                break
        self.outputs.append("".join(seen))
        assert text in "".join(seen), "".join(seen)

    def stop(
        self, proc: subprocess.Popen[str], *, ok: tuple[int, ...] = (0,), term: bool = True
    ) -> None:
        """SIGTERM (as systemd stops a stream) or let it end; its whole output is kept."""
        if term and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
        self.outputs.append(f"{out}\n{err}")  # not the arguments: the test gives secrets
        assert proc.returncode in ok, f"exit {proc.returncode}\n{err}"
        assert "Traceback" not in err, err


def _pg_replication_role(pg_server: Any, role: str, password: str) -> None:
    pg_server.psql("postgres", f"DROP ROLE IF EXISTS {role}")  # a rerun starts clean
    pg_server.psql("postgres", f"CREATE ROLE {role} LOGIN REPLICATION PASSWORD '{password}'")


def _mariadb_replication_user(srv: MariadbServer, user: str, password: str, db: str) -> None:
    """The user is made outside the binary log: `CREATE USER ... IDENTIFIED BY` is logged
    with its password as written, and the stream copies the log (that is the database's
    data, not a secret recoveryd handles)."""
    with srv.connect() as conn, conn.cursor() as cur:
        cur.execute("SET sql_log_bin = 0")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL ON {db}.* TO '{user}'@'%'")
        cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'")


def _drop_slot(pg_server: Any, slot: str) -> None:
    """The stream's slot would keep the shared server's WAL for the rest of the session."""
    pg_server.psql(
        "postgres",
        f"select pg_drop_replication_slot(slot_name) from pg_replication_slots "
        f"where slot_name = '{slot}'",
    )


def _journal_event(state: Path, kind: str) -> str | None:
    """The run id of the drill whose journal holds an event of `kind`."""
    for journal in (state / "drills").glob("*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("type") == "event" and rec.get("kind") == kind:
                return journal.parent.name
    return None


@pytest.mark.timeout(900)
def test_the_marker_never_appears_through_streams_archiving_approvals_or_incident_actions(
    tmp_path: Path,
    pg_server: Any,
    mariadb_server: MariadbServer,
    target_factory: Callable[..., TargetSpec],
) -> None:
    """wal-push, wal-get (found and not found), wal-stream and binlog-stream (each once
    working, until SIGTERM, and once with a wrong password that is itself the marker),
    approver keygen, drill run waiting for approvals, drill approve (into the run, and
    handed over with --out then --import), incident action and the reports: the marker
    and the approvers' private keys are in no output, log, journal, report, state file or
    store object."""
    s = Secrets()
    d = tmp_path / "deploy"
    creds = d / "credentials"
    env = deployment_env(creds, MK_BAD=s("wrong-pw"))
    _pg_replication_role(pg_server, "mk_wal", s("wal-pw"))
    _secret_file(d / "wal.pw", s("wal-pw") + "\n")
    db = mariadb_server.create_database("mk_binlog")
    _mariadb_replication_user(mariadb_server, "mk_bin", s("binlog-pw"), db)
    _secret_file(creds / "binlogpw", s("binlog-pw"))
    offsite = target_factory("ceph")
    assert offsite.server is not None
    pg_dsn = f"host=127.0.0.1 port={pg_server.port} dbname=postgres user=mk_wal"
    my_dsn = f"mysql://mk_bin@127.0.0.1:{mariadb_server.port}/{db}"

    def pg(**more: Any) -> dict[str, Any]:
        return {"kind": "postgresql", "dsn": pg_dsn, "targets": ["local", "offsite"], **more}

    def my(**more: Any) -> dict[str, Any]:
        return {"kind": "mysql", "dsn": my_dsn, "targets": ["local", "offsite"], **more}

    keys = d / "keys"
    config = {
        "state_dir": str(d / "state"),
        "encryption": {"key_file": str(d / "keys" / "master.key")},
        "targets": {
            "local": {"kind": "filesystem", "path": str(d / "store")},
            "offsite": offsite.yaml(),
        },
        "sources": {
            "wal": pg(mode="physical", password_file=str(d / "wal.pw")),
            "wal_wrong": pg(mode="physical", password="env:MK_BAD"),
            "binlog": my(password="credential:binlogpw"),
            "binlog_wrong": my(password="env:MK_BAD"),
        },
        "approvers": {
            "alice": {"public_key_file": str(keys / "alice.pub")},
            "bob": {"public_key_file": str(keys / "bob.pub")},
        },
    }
    (d / "recoveryd.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    dep = Deployment(d, env)
    dep.run("key", "generate")
    dep.run("init")
    for name in ("alice", "bob"):
        dep.run("approver", "keygen", name, "--out", str(keys))
    private = [
        line
        for name in ("alice", "bob")
        for line in (keys / f"{name}.key").read_text().splitlines()
        if not line.startswith("-----")
    ]

    try:
        _streams(dep, pg_server, mariadb_server, db)
    finally:
        _drop_slot(pg_server, "recoveryd_wal")
    _approvals(dep, keys, s)
    incident = json.loads(dep.run("--json", "incident", "open", "db down"))
    dep.run(
        "incident",
        "action",
        incident["id"],
        f"rotate the password={s('action')} and Authorization: Bearer {s('bearer')}",
        "--owner",
        "ops",
        "--due",
        "2026-12-31",
    )
    dep.run("incident", "close", incident["id"], "--summary", "service restored")
    dep.run("report", incident["id"], "--format", "md")
    dep.run("audit", "show")

    places = [("command output", "\n".join(dep.outputs).encode())]
    assert_nowhere(
        [PREFIX, offsite.server.secret_key, *private],
        [*places, *deployment_haystacks(d, offsite)],
    )


def _streams(dep: Deployment, pg_server: Any, srv: MariadbServer, db: str) -> None:
    """WAL pushed and fetched back, both streams run and stopped, and the wrong ones fail."""
    ((segment,),) = pg_server.psql("postgres", "select pg_walfile_name(pg_switch_wal())")
    wal = dep.d / "pg_wal" / str(segment)
    wal.parent.mkdir()
    wal.write_bytes((pg_server.root / "data" / "pg_wal" / str(segment)).read_bytes())
    dep.run("wal-push", "wal", str(wal))
    dep.run("wal-get", "wal", str(segment), str(dep.d / "fetched"))
    assert (dep.d / "fetched").read_bytes() == wal.read_bytes()
    dep.run("wal-get", "wal", "0000000100000099000000FF", str(dep.d / "absent"), ok=(1,))

    stream = dep.start("wal-stream", "wal")
    try:
        partials = dep.d / "store" / "wal" / "wal"
        pg_server.psql("postgres", "select pg_switch_wal()")
        assert poll(lambda: any(partials.glob("*.partial")), 120), "nothing was streamed"
    finally:
        dep.stop(stream)
    wrong = dep.start("wal-stream", "wal_wrong")
    dep.until(wrong, "wal_stream_failed")
    dep.stop(wrong)

    srv.sql(db, "create table citizens (id int primary key)")
    srv.sql(db, "insert into citizens select seq from seq_1_to_50")
    stream = dep.start("binlog-stream", "binlog")
    try:
        logs = dep.d / "store" / "binlog" / "binlog"
        assert poll(lambda: any(logs.glob("*")), timeout=120), "no binary log was streamed"
    finally:
        dep.stop(stream)
    wrong = dep.start("binlog-stream", "binlog_wrong")
    dep.until(wrong, "binlog_stream_failed")
    dep.stop(wrong)


def _approvals(dep: Deployment, keys: Path, s: Secrets) -> None:
    """A drill that needs two approvals waits; alice approves into the run, bob hands his
    approval over (--out, then --import); the drill then runs with a secret variable."""
    book = dep.d / "approve.yaml"
    book.write_text(_PLAYBOOK)
    state = dep.d / "state"
    drill = dep.start("--json", "drill", "run", str(book), "--var", f"api_token={s('var')}")
    try:
        assert poll(lambda: _journal_event(state, "approval_requested") is not None, 120)
        run_id = _journal_event(state, "approval_requested")
        assert run_id is not None
        dep.run("drill", "approve", run_id, "--key", str(keys / "alice.key"))
        sha = next(
            json.loads(line)["playbook"]["sha256"]
            for line in (state / "drills" / run_id / "journal.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "run_started"
        )
        handed = dep.d / "bob.approval"
        dep.run(
            "drill",
            "approve",
            run_id,
            "--key",
            str(keys / "bob.key"),
            "--playbook-sha256",
            sha,
            "--out",
            str(handed),
        )
        dep.run("drill", "approve", "--import", str(handed))
    finally:
        dep.stop(drill, term=False)
    dep.run("report", run_id, "--format", "md")
    dep.run("drill", "list", "--verify")


_PLAYBOOK = """\
apiVersion: recoveryd/v1
kind: Drill
name: approved
vars:
  api_token: "placeholder-value"
approvals: {required: 2, timeout: 10m}
steps:
  - name: a destructive change that prints the token
    run: [sh, -c, 'echo "token is $0"; env | grep TOKEN', "{{ api_token }}"]
    env: {API_TOKEN: "{{ api_token }}"}
    destructive: true
"""
