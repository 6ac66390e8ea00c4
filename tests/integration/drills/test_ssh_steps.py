"""`ssh` + `run` steps through a real OpenSSH server, and the `drill run --json` document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.sshd import SshServer
from tests.unit.drills.helpers import cli, records, write_playbook

pytestmark = pytest.mark.integration


def _book(tmp_path: Path, sshd: SshServer, known_hosts: Path, out: Path) -> Path:
    return write_playbook(
        tmp_path,
        f"""\
        apiVersion: recoveryd/v1
        kind: Drill
        name: over-ssh
        objectives: {{rto: 60s}}
        vars: {{value: plain}}
        hosts:
          db: {{address: 127.0.0.1, port: {sshd.port}, user: root,
               key_file: "{sshd.client_key}", known_hosts: "{known_hosts}"}}
        preflight:
          - {{name: host answers, ssh: db, run: ["true"]}}
        steps:
          - name: write the value remotely
            ssh: db
            run: [sh, -c, 'printf %s "$1" > "$0"', "{out}", "{{{{ value }}}}"]
            marks: fault
          - name: read it back
            ssh: db
            run: [cat, "{out}"]
            expect: "~ ^x; touch"
            marks: recovered
        """,
    )


def test_ssh_steps_pass_a_variable_with_shell_syntax_as_one_argument(
    sshd_server: SshServer, tmp_path: Path
) -> None:
    """A --var full of shell syntax reaches the remote program verbatim; `drill run --json`
    prints only the run's JSON document (README.md, JSON documents)."""
    out = tmp_path / "remote-value"
    pwned = tmp_path / "pwned"
    book = _book(tmp_path, sshd_server, sshd_server.known_hosts, out)
    nasty = f"x; touch {pwned}; $(touch {pwned}) `touch {pwned}` | 'q\""
    state = tmp_path / "state"
    done = cli(
        "--json", "drill", "--state-dir", str(state), "run", str(book), "--var", f"value={nasty}"
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == {
        "run_id", "status", "rto_seconds", "rpo_seconds", "objectives_met", "journal", "report",
    }  # fmt: skip
    assert doc["status"] == "passed"
    assert doc["objectives_met"] is True
    assert isinstance(doc["rto_seconds"], float)
    assert out.read_text() == nasty
    assert not pwned.exists()
    assert records(Path(doc["journal"]), "run_finished")[0]["status"] == "passed"


def test_dry_run_reports_a_host_with_an_unknown_key(sshd_server: SshServer, tmp_path: Path) -> None:
    """A dry run checks each host: an unknown host key is refused and named with its
    fingerprint; nothing runs and the run fails."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    out = tmp_path / "never"
    book = _book(tmp_path, sshd_server, empty, out)
    state = tmp_path / "state"
    done = cli("drill", "--state-dir", str(state), "run", "--dry-run", str(book))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "unknown host key" in done.stdout
    assert "SHA256:" in done.stdout
    assert not out.exists()
