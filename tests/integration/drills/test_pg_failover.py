"""playbooks/pg-failover.yaml against a real PostgreSQL 15 primary + streaming standby,
reached through a real OpenSSH server."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoveryd.app.reporting import report_writer
from recoveryd.drills.api import run_playbook
from recoveryd.state import parse_iso
from tests.fixtures.pgcluster import PgCluster
from tests.fixtures.sshd import SshServer
from tests.unit.drills.helpers import REPO, cli, records

pytestmark = pytest.mark.integration


def failover_vars(cluster: PgCluster, sshd: SshServer) -> dict[str, str]:
    return {
        "ssh_port": str(sshd.port),
        "ssh_key": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "primary_port": str(cluster.primary_port),
        "standby_port": str(cluster.standby_port),
        "primary_data": str(cluster.primary_data),
        "standby_data": str(cluster.standby_data),
        "socket_dir": str(cluster.sockets),
        "log_dir": str(cluster.root),
    }


def test_pg_failover_dry_run_probes_and_shows_steps_without_failing_over(
    pg_cluster: PgCluster, sshd_server: SshServer, tmp_path: Path
) -> None:
    """`drill run --dry-run` runs the read-only probes for real, prints every step with its
    variables resolved and its hosts reachable, and changes nothing (runs before the failover)."""
    args = [f"{k}={v}" for k, v in failover_vars(pg_cluster, sshd_server).items()]
    done = cli(
        "drill", "--state-dir", str(tmp_path / "state"), "run", "--dry-run",
        str(REPO / "playbooks" / "pg-failover.yaml"), *[a for v in args for a in ("--var", v)],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"-D {pg_cluster.primary_data} -m immediate" in done.stdout
    assert "host primary reachable" in done.stdout
    assert pg_cluster.query(pg_cluster.primary_port, "select pg_is_in_recovery()") == [(False,)]
    assert pg_cluster.query(pg_cluster.standby_port, "select pg_is_in_recovery()") == [(True,)]


def test_pg_failover_meets_objectives_and_keeps_canary_rows(
    pg_cluster: PgCluster, sshd_server: SshServer, tmp_path: Path
) -> None:
    """The shipped failover drill stops the primary, promotes the standby, measures RTO and
    canary RPO within the objectives, rebuilds the old primary as a standby, and finds
    steady state again; the canary rows written before the fault are on the promoted standby."""
    result = run_playbook(
        None,
        REPO / "playbooks" / "pg-failover.yaml",
        yes=True,
        vars=failover_vars(pg_cluster, sshd_server),
        state_dir=tmp_path / "state",
        report=report_writer(None),
    )
    assert result.status == "passed", result.error
    assert result.objectives_met
    assert result.rto_seconds is not None
    assert 0 < result.rto_seconds <= 60
    assert result.rpo_seconds is not None
    assert result.rpo_seconds <= 5

    fault_at = parse_iso(
        next(r for r in records(result.journal, "mark") if r["mark"] == "fault")["time"]
    )
    rows = pg_cluster.query(
        pg_cluster.standby_port,
        f"select count(*), max(written_at) from recoveryd_canary where run_id = '{result.run_id}' "
        f"and written_at <= '{fault_at.isoformat()}'",
    )
    count, newest = rows[0]
    assert isinstance(count, int)
    assert count > 0
    assert newest is not None
    # the roles are swapped and healthy again: the old primary streams from the new one
    recovering = pg_cluster.query(pg_cluster.primary_port, "select pg_is_in_recovery()")
    assert recovering == [(True,)]
    phases = [(r["phase"], r["status"]) for r in records(result.journal, "phase")]
    assert ("steady_state_after", "passed") in phases
    assert result.report is not None and result.report.exists()
