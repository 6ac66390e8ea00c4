"""A marker secret given in every place a secret can be given never shows anywhere.

Real servers: PostgreSQL (four login roles, each with its password given another way),
Ceph RGW (an S3 target by credentials file, another by env/credential references), an
HTTP server (webhook with URL credentials and a token in its query, drill steps sending
secret headers) and an SMTP server with AUTH. Every command runs as its own process, as
an operator runs it (forked from an interpreter that imported the command line and read
nothing else, tests/forkcli.py: it knows only the secrets it resolves itself); every
output, log, journal, report, state file and the store's objects are searched for the
marker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.objectstores import TargetSpec
from tests.fixtures.web import HttpRecorder, poll
from tests.forkcli import run_recoveryd

PREFIX = f"Mk{uuid.uuid4().hex[:6]}"


def marker(place: str) -> str:
    """The marker secret given in one place: a common prefix that no output should hold."""
    return f"{PREFIX}-{place}-{uuid.uuid4().hex[:8]}"


@dataclass
class Secrets:
    """The marker values, by place."""

    values: dict[str, str] = field(default_factory=dict)

    def __call__(self, place: str) -> str:
        self.values.setdefault(place, marker(place))
        return self.values[place]


@dataclass
class Smtp:
    """aiosmtpd with AUTH LOGIN/PLAIN on loopback (plain text: loopback only)."""

    user: str
    password: str
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def start(self) -> tuple[str, Any]:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        from tests.fixtures.web import _free_port

        srv = self

        class Handler:
            async def handle_DATA(self, _s: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                srv.messages.append(bytes(envelope.content))
                return "250 OK"

        def auth(_s: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
            ok = data.login.decode() == srv.user and data.password.decode() == srv.password
            if ok:
                srv.logins.append(srv.user)
            return AuthResult(success=ok)

        port = _free_port()
        ctl = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=port,
            authenticator=auth,
            auth_require_tls=False,
        )
        ctl.start()
        return f"127.0.0.1:{port}", ctl


def _pg_role(pg_server: Any, role: str, password: str, db: str, *, fill: bool = True) -> None:
    pg_server.psql("postgres", f"DROP ROLE IF EXISTS {role}")  # a rerun starts clean
    pg_server.psql("postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    pg_server.create_database(db, owner=role)
    if not fill:
        return
    from psycopg import connect

    dsn = f"host=127.0.0.1 port={pg_server.port} dbname={db} user={role} password={password}"
    with connect(dsn, autocommit=True) as conn:
        conn.execute("create table people (id int primary key, name text)")
        conn.execute("insert into people select g, 'p' || g from generate_series(1, 50) g")


@pytest.fixture
def smtp_auth() -> Iterator[Smtp]:
    smtp = Smtp(user="alerts", password=marker("smtp"))
    address, ctl = smtp.start()
    smtp.address = address  # type: ignore[attr-defined]
    yield smtp
    ctl.stop()


@pytest.mark.integration
def test_a_marker_secret_never_appears_in_any_output_log_journal_report_state_or_store(
    tmp_path: Path,
    pg_server: Any,
    target_factory: Callable[..., TargetSpec],
    http_recorder: HttpRecorder,
    smtp_auth: Smtp,
) -> None:
    """Every command (backup, snapshots, verify, copy, restore, prune, key rotate, config
    check, status, drill validate/run/list, report, incident, audit verify/show, daemon
    --once) runs with a marker secret in every place a secret can be given; the marker
    is found in no stdout, stderr, log line, journal, report, state file (state.db, audit
    log, spool), store object, alert or mail."""
    s = Secrets()
    d = tmp_path / "deploy"
    creds = d / "credentials"
    env = deployment_env(creds, MK_PG_ENV=s("pg-env"), MK_BAD=s("pg-wrong"))
    _pg_role(pg_server, "mk_file", s("pg-file"), "mk_file")
    _pg_role(pg_server, "mk_dsn", s("pg-dsn"), "mk_dsn")
    _pg_role(pg_server, "mk_env", s("pg-env"), "mk_env")
    _pg_role(pg_server, "mk_cred", s("pg-cred"), "mk_cred")
    _pg_role(pg_server, "mk_restore", s("restore-pw"), "mk_restore", fill=False)
    _secret_file(d / "pg.pw", s("pg-file") + "\n")
    _secret_file(creds / "pgpw", s("pg-cred"))
    _secret_file(d / "restore.pw", s("restore-pw") + "\n")
    _secret_file(creds / "smtp", smtp_auth.password)

    offsite = target_factory("ceph")
    spare = target_factory("ceph")
    assert offsite.server is not None
    store_secret = offsite.server.secret_key
    spare_settings = spare.yaml()
    spare_settings.pop("credentials_file")
    spare_settings["access_key_id"] = "env:MK_S3_ID"
    spare_settings["secret_access_key"] = "credential:s3secret"
    env["MK_S3_ID"] = offsite.server.access_key
    _secret_file(creds / "s3secret", store_secret)

    def pg(user: str, **more: Any) -> dict[str, Any]:
        return {
            "kind": "postgresql",
            "dsn": f"host=127.0.0.1 port={pg_server.port} dbname={user} user={user}",
            "targets": ["local", "offsite"],
            **more,
        }

    hook = http_recorder.url.replace("://", f"://hook:{s('hook-pw')}@", 1)
    config = {
        "state_dir": str(d / "state"),
        "encryption": {"key_file": str(d / "keys" / "master.key")},
        "targets": {
            "local": {"kind": "filesystem", "path": str(d / "store")},
            "offsite": offsite.yaml(),
            "spare": spare_settings,
        },
        "sources": {
            "by_file": pg("mk_file", password_file=str(d / "pg.pw")),
            "by_dsn": {
                **pg("mk_dsn"),
                "dsn": f"postgresql://mk_dsn:{s('pg-dsn')}@127.0.0.1:{pg_server.port}/mk_dsn",
            },
            "by_env": pg("mk_env", password="env:MK_PG_ENV"),
            "by_cred": pg("mk_cred", password="credential:pgpw"),
            "broken": pg("mk_env", password="env:MK_BAD", schedule="* * * * *"),
        },
        "notify": [
            {"kind": "webhook", "url": f"{hook}/hook?key={s('hook-key')}", "on": ["failure"]},
            {
                "kind": "email",
                "to": ["ops@example.org"],
                "smtp": smtp_auth.address,  # type: ignore[attr-defined]
                "user": "alerts",
                "password": "credential:smtp",
                "on": ["failure"],
            },
        ],
    }
    cfg_path = d / "recoveryd.yaml"
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
    book = d / "leak.yaml"
    book.write_text(_PLAYBOOK.format(url=http_recorder.url, header=s("header")))

    outputs: list[str] = []

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        proc = run_recoveryd(["--config", str(cfg_path), *args], env=env, timeout=300)
        outputs.append(f"{proc.stdout}\n{proc.stderr}")
        assert proc.returncode in ok, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        assert "debug" in args or "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout

    run("key", "generate")
    run("init")
    run("config", "check", ok=(0, 1, 2))
    good = ["by_file", "by_dsn", "by_env", "by_cred"]
    run("backup", *good)
    run("backup", "broken", ok=(1,))
    run("--log-level", "debug", "backup", "broken", ok=(1,))
    snaps = yaml.safe_load(run("--json", "snapshots"))
    run("verify", "--read-data")
    run("copy", "--from", "local", "--to", "spare")
    first = next(x for x in snaps if x["source"] == "by_file")["id"]
    restore_dsn = f"host=127.0.0.1 port={pg_server.port} dbname=mk_restore user=mk_restore"
    run("restore", first, "--to", restore_dsn, "--password-file", str(d / "restore.pw"), "--force")
    run("--json", "restore", "nonexistent", "--to", str(d / "x"), ok=(1, 2))
    run("prune", "--dry-run")
    run("prune")
    run("status")
    run("--json", "status")
    run("drill", "validate", str(book), "--var", f"api_token={s('var')}")
    drill = run(
        "--json", "drill", "run", str(book), "--yes", "--var", f"api_token={s('var')}", ok=(1, 4)
    )
    run_id = yaml.safe_load(drill)["run_id"]
    run("drill", "list", "--verify")
    run("report", run_id, "--format", "md")
    run("report", run_id, "--format", "html")
    incident = yaml.safe_load(run("--json", "incident", "open", f"db down, token={s('inc')}"))
    iid = incident["id"]
    run("incident", "note", iid, f"tried password={s('note')}")
    run("incident", "close", iid, "--summary", f"Authorization: Bearer {s('close')}")
    run("incident", "list")
    run("report", iid, "--format", "md")
    run("daemon", "--once", ok=(0, 1))
    poll(lambda: _hooked(http_recorder) and bool(smtp_auth.messages), timeout=20)
    run("key", "rotate")
    run("audit", "verify")
    run("audit", "show")

    assert _hooked(http_recorder), "the webhook got the failure alert"
    assert smtp_auth.logins == ["alerts"] and smtp_auth.messages, "the mail was sent with AUTH"
    places = _haystacks(d, outputs, http_recorder, smtp_auth, offsite, spare)
    assert_nowhere([PREFIX, store_secret], places)


def _secret_file(path: Path, text: str) -> None:
    """A secret file as systemd hands credentials over: readable by its owner only."""
    path.write_text(text)
    path.chmod(0o400)


def _hooked(rec: HttpRecorder) -> bool:
    return any(r.path.startswith("/hook") for r in rec.received())


def _around(blob: bytes, needle: bytes) -> str:
    i = blob.index(needle)
    return blob[max(0, i - 80) : i + 40].decode(errors="replace")


def deployment_env(creds: Path, **variables: str) -> dict[str, str]:
    """The environment of every command: systemd's credentials folder (made here) and the
    variables that `env:` references read."""
    creds.mkdir(parents=True)
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CREDENTIALS_DIRECTORY": str(creds),
        **variables,
    }


def assert_nowhere(needles: list[str], places: Iterable[tuple[str, bytes]]) -> None:
    """No needle is in any place; otherwise each find is named with its surroundings."""
    found = [
        (name, _around(blob, n.encode()))
        for name, blob in places
        for n in needles
        if n.encode() in blob
    ]
    assert not found, f"a secret leaked into: {found}"


def _haystacks(
    d: Path,
    outputs: list[str],
    rec: HttpRecorder,
    smtp: Smtp,
    *stores: TargetSpec,
) -> Iterator[tuple[str, bytes]]:
    yield "command output", "\n".join(outputs).encode()
    for req in rec.received():
        yield f"webhook body {req.path.split('?')[0]}", req.body
    for msg in smtp.messages:
        yield "mail", msg
    yield from deployment_haystacks(d, *stores)


def deployment_haystacks(d: Path, *stores: TargetSpec) -> Iterator[tuple[str, bytes]]:
    """Every file of the state directory and the filesystem store under `d`, and every
    object (key and body) of the S3 stores."""
    for path in sorted((d / "state").rglob("*")) + sorted((d / "store").rglob("*")):
        if path.is_file():
            yield str(path.relative_to(d)), path.read_bytes()
    for spec in stores:
        assert spec.server is not None
        client = spec.server.client()
        bucket = spec.yaml()["bucket"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                yield f"s3 {obj['Key']}", obj["Key"].encode() + body


_PLAYBOOK = """\
apiVersion: recoveryd/v1
kind: Drill
name: leak
vars:
  api_token: "placeholder-value"
steps:
  - name: call with headers
    http:
      url: "{url}/api"
      headers:
        Authorization: "Bearer {header}"
        Cookie: "session={header}"
    expect: {{status: 200}}
  - name: print the token and fail
    run: [sh, -c, 'echo "token is $0; Authorization: $1" >&2; env | grep TOKEN; exit 4',
          "{{{{ api_token }}}}", "Bearer {header}"]
    env: {{API_TOKEN: "{{{{ api_token }}}}"}}
"""
