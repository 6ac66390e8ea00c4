"""The real daemon process: systemd notify protocol, lock, reload, stop, --once.

A SQLite source into a filesystem store keeps these fast; the acceptance test
(`test_acceptance.py`) does the same against PostgreSQL, MariaDB and S3.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.web import HttpRecorder, poll
from tests.initrepo import init_repositories
from tests.integration.daemon.proc import DaemonProcess, daemon_json, events, recoveryd, runs

pytestmark = pytest.mark.integration


def make_site(tmp: Path, schedule: str, *, extra: str = "", notify: str = "") -> Path:
    """A config with one SQLite source `reg` into a filesystem store, and its master key."""
    db = tmp / "reg.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table if not exists citizen(id integer primary key, name text)")
        conn.executemany("insert into citizen(name) values (?)", [(f"n{i}",) for i in range(200)])
    config = tmp / "recoveryd.yaml"
    config.write_text(
        f"state_dir: {tmp / 'state'}\n"
        f"encryption: {{key_file: {tmp / 'master.key'}}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp / 'store'}}}}}\n"
        "sources:\n"
        f"  reg: {{kind: sqlite, path: {db}, schedule: '{schedule}', rpo: 1h, targets: [local]}}\n"
        f"{extra}"
        "daemon: {prune_schedule: null, shutdown_grace: 5s}\n"
        f"{notify}"
    )
    assert recoveryd(config, "key", "generate").returncode == 0
    init_repositories(config)
    return config


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    s.bind(path)
    s.settimeout(60)
    yield s, path
    s.close()


def _messages_until(sock: socket.socket, wanted: str, seen: list[str]) -> list[str]:
    while not any(m.startswith(wanted) for m in seen):
        seen.extend(sock.recv(4096).decode().split("\n"))
    return seen


def test_daemon_speaks_sd_notify(tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    """Playing systemd: READY=1 after start-up with a STATUS, WATCHDOG=1 pings at half the
    WATCHDOG_USEC period, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, exit 0."""
    sock, path = notify_socket
    config = make_site(tmp_path, "0 0 1 1 *")
    daemon = DaemonProcess(
        config, tmp_path / "state", env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    ).start()
    try:
        seen: list[str] = []
        _messages_until(sock, "READY=1", seen)
        assert any(m.startswith("STATUS=") for m in seen)
        assert f"MAINPID={daemon.proc.pid}" in seen
        seen.clear()
        _messages_until(sock, "WATCHDOG=1", seen)
        daemon.signal(signal.SIGHUP)
        seen.clear()
        _messages_until(sock, "RELOADING=1", seen)
        assert any(m.startswith("MONOTONIC_USEC=") for m in seen)
        _messages_until(sock, "READY=1", seen)
        daemon.signal(signal.SIGTERM)
        seen.clear()
        _messages_until(sock, "STOPPING=1", seen)
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_second_daemon_is_refused_and_reload_handles_good_and_bad_configs(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """One daemon per state_dir (the second exits 5); SIGHUP with a changed schedule takes
    effect (snapshots start appearing); SIGHUP with a broken file is refused with an error
    event and an alert while the old configuration keeps running; SIGTERM exits 0."""
    hook = f"notify:\n  - {{kind: webhook, url: '{http_recorder.url}/hook', on: [failure]}}\n"
    config = make_site(tmp_path, "0 0 1 1 *", notify=hook)
    state = tmp_path / "state"
    # a snapshot exists, so no catch-up: the yearly schedule alone would never run now
    assert recoveryd(config, "backup", "reg").returncode == 0
    daemon = DaemonProcess(config, state).start()
    try:
        daemon.wait_logged("daemon_ready")
        second = recoveryd(config, "daemon")
        assert second.returncode == 5
        assert f"pid {daemon.proc.pid}" in second.stderr
        assert runs(state) == []
        config.write_text(config.read_text().replace("0 0 1 1 *", "every 1s"))
        daemon.signal(signal.SIGHUP)
        daemon.wait_logged("config_reloaded")
        assert poll(lambda: len([r for r in runs(state) if r[1] == "ok"]) >= 2, 60)
        assert poll(lambda: daemon_json(state).get("next_runs", {}).get("backup:reg") is not None)
        good = config.read_text()
        config.write_text(good.replace("sources:", "sources:\n  broken: [", 1))
        daemon.signal(signal.SIGHUP)
        daemon.wait_logged("config_reload_refused")
        assert events(state, "config_reload_refused")[0]["error"]
        before = len(runs(state))
        assert poll(lambda: len(runs(state)) > before + 1, 60)  # the old schedule still runs
        (alert,) = http_recorder.wait_for(1, "/hook")
        assert alert.json()["subject"] == "configuration reload refused"
        config.write_text(good)
        status = recoveryd(config, "--json", "status")
        assert '"running": true' in status.stdout
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert daemon_json(state)["state"] == "stopped"
    assert recoveryd(config, "audit", "verify").returncode == 0
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    reloads = [(r["origin"], r["result"]) for r in audit if r["command"] == "reload"]
    assert reloads == [("daemon", "ok"), ("daemon", "refused")]


def test_once_runs_what_is_due_and_returns_the_worst_exit_code(tmp_path: Path) -> None:
    """`daemon --once` snapshots what is due and exits 0; with a failing source it exits 1;
    run again right away, nothing is due any more and it exits 0 without a new snapshot."""
    extra = (
        "  gone: {kind: sqlite, path: /nonexistent/x.db, schedule: '0 0 1 1 *', targets: [local]}\n"
    )
    # a yearly schedule: a new slot cannot begin between the two runs (with */5 one did,
    # when the runs straddled a five-minute mark, and the second rightly ran it)
    config = make_site(tmp_path, "0 0 1 1 *", extra=extra)
    state = tmp_path / "state"
    first = recoveryd(config, "daemon", "--once")
    assert first.returncode == 1, first.stdout + first.stderr
    assert sorted((s, r) for s, r, _ in runs(state)) == [("gone", "failed"), ("reg", "ok")]
    again = recoveryd(config, "daemon", "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(runs(state)) == 2


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - http on loopback
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_overdue_source_alerts_fails_health_and_recovers(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    """A source past its RPO raises an `overdue` alert and turns /healthz to 503; once a
    new snapshot lands (a reload made its schedule frequent) a `recovery` alert follows
    and /healthz answers 200 again."""
    hook = (
        f"notify:\n  - {{kind: webhook, url: '{http_recorder.url}/hook', "
        "on: [overdue, recovery]}\n"
        "metrics: {listen: '127.0.0.1:0'}\n"
    )
    config = make_site(tmp_path, "0 0 1 1 *", notify=hook)
    config.write_text(config.read_text().replace("rpo: 1h", "rpo: 3s"))
    state = tmp_path / "state"
    daemon = DaemonProcess(config, state).start()
    try:
        daemon.wait_logged("daemon_ready")
        health = f"http://{daemon_json(state)['metrics']}/healthz"

        def kinds() -> list[str]:
            return [r.json()["event"] for r in http_recorder.received("/hook")]

        assert poll(lambda: "overdue" in kinds(), 60), kinds()
        assert _get(health) == 503
        config.write_text(config.read_text().replace("0 0 1 1 *", "every 1s"))
        daemon.signal(signal.SIGHUP)
        assert poll(lambda: "recovery" in kinds(), 60), kinds()
        assert poll(lambda: _get(health) == 200, 30)
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_once_runs_verify_restore_drill_playbook_and_prune(tmp_path: Path) -> None:
    """Every job kind runs through the daemon: backup, verify, a restore drill with its
    checks, a drill playbook and the prune; status then shows the verify and the drill."""
    (tmp_path / "smoke.yaml").write_text(
        "apiVersion: recoveryd/v1\nkind: Drill\nname: smoke\n"
        "steps:\n  - {name: say hello, run: [echo, hello]}\n"
    )
    config = make_site(tmp_path, "0 3 * * *")  # the key, the database
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        f"encryption: {{key_file: {tmp_path / 'master.key'}}}\n"
        f"targets: {{local: {{kind: filesystem, path: {tmp_path / 'store'}}}}}\n"
        "sources:\n"
        "  reg:\n"
        "    kind: sqlite\n"
        f"    path: {tmp_path / 'reg.db'}\n"
        "    schedule: '0 3 * * *'\n"
        "    targets: [local]\n"
        "    verify: {schedule: '30 3 * * *'}\n"
        "    restore_drill:\n"
        "      schedule: '0 4 * * 0'\n"
        f"      into: {tmp_path / 'drill.db'}\n"
        "      checks: [{sql: 'select count(*) from citizen', expect: '>= 200'}]\n"
        "drills:\n  - {playbook: smoke.yaml, schedule: '0 4 1 * *'}\n"
        "daemon: {max_concurrent_jobs: 1}\n"  # in plan order: the backup before the drill
    )
    once = recoveryd(config, "daemon", "--once")
    assert once.returncode == 0, once.stdout + once.stderr
    state = tmp_path / "state"
    for kind in ("daemon_backup", "daemon_verify", "daemon_restore_drill", "daemon_drill"):
        assert [r[1] for r in runs(state, kind)] == ["ok"], (kind, runs(state, kind))
    assert [r[1] for r in runs(state, "daemon_prune")] == ["ok"]
    status = json.loads(recoveryd(config, "--json", "status").stdout)
    reg = status["sources"]["reg"]
    assert reg["last_verify"]["result"] == "ok"
    assert reg["last_restore_drill"]["result"] == "ok" and reg["last_restore_drill"]["run_id"]
