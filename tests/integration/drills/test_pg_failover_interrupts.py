"""playbooks/pg-failover.yaml interrupted everywhere, on a real PostgreSQL 15 primary and
streaming standby reached through a real OpenSSH server.

Each point interrupts one run: by SIGTERM (sent to this process, whose handler is the one
`recoveryd drill run` installs) or by its stop condition tripping (the `pressure` probe,
answered here as the governor would), at a step boundary (before step N; "before 7" is
after the last step) or in the middle of a step (once it has started). After every run:
at most one node accepts writes, no data directory is half-deleted, and the journal and the
report name the final topology that is really there. The cluster is put back from a
template between points.

`make test` runs a seeded, representative subset (the two moments of the issue plus two
drawn with the seed); `make test-faults` (RECOVERYD_FAULTS=all) runs every point. Set
RECOVERYD_FAULT_LOG=FILE to have each point's outcome appended as a table row.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from recoveryd.cli.cmd_drill import signals_cancel
from recoveryd.drills.api import run_playbook, validate_playbook
from recoveryd.drills.steps import pressure
from recoveryd.reports import render_run_report
from tests.fixtures.pgcluster import PG_BIN, PgCluster, as_postgres, start_cluster
from tests.fixtures.sshd import SshServer
from tests.integration.drills.test_pg_failover import failover_vars
from tests.unit.drills.helpers import REPO, records

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLAYBOOK = REPO / "playbooks" / "pg-failover.yaml"
STEPS = [s.name for s in validate_playbook(PLAYBOOK).steps]
SEED = int(os.environ.get("RECOVERYD_FAULT_SEED", "20261203"))


@dataclass(frozen=True)
class Point:
    cause: str  # signal | stop
    where: str  # before | during
    step: int  # index into STEPS; "before len(STEPS)" is after the last step

    @property
    def id(self) -> str:
        return f"{self.cause}-{self.where}-{self.step + 1}"

    def label(self) -> str:
        if self.step == len(STEPS):
            return "after the last step"
        return f'{self.where} "{STEPS[self.step]}"'


def _points() -> list[Point]:
    every = [
        Point(cause, where, i)
        for cause in ("signal", "stop")
        for where in ("before", "during")
        for i in range(len(STEPS) + (1 if where == "before" else 0))
    ]
    if os.environ.get("RECOVERYD_FAULTS") == "all":
        return every
    promote = STEPS.index("promote the standby")
    remove = STEPS.index("remove the old primary's stale data directory")
    chosen = [Point("signal", "during", promote), Point("stop", "during", remove)]
    rest = [p for p in every if p not in chosen]
    return chosen + random.Random(SEED).sample(rest, 2)


@dataclass
class Template:
    cluster: PgCluster
    copies: Path

    def reset(self) -> None:
        """Both servers stopped, both data directories replaced by the template's, started:
        the primary on its port, the standby streaming from it."""
        for data in (self.cluster.primary_data, self.cluster.standby_data):
            self.cluster.stop(data)
            shutil.rmtree(data, ignore_errors=True)
            subprocess.run(["cp", "-a", str(self.copies / data.name), str(data)], check=True)
        self.cluster.start(self.cluster.primary_data, self.cluster.primary_port)
        self.cluster.start(self.cluster.standby_data, self.cluster.standby_port)
        self.cluster.wait_streaming(self.cluster.standby_port)


def _clean_stop(data: Path) -> None:
    subprocess.run(
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def template() -> Iterator[Template]:
    """A primary + streaming standby of this module's own, with a copy of both data
    directories taken after a clean shutdown (the primary first, so the standby has it all)."""
    root = Path(tempfile.mkdtemp(prefix="recoveryd-pgsweep-"))
    cluster = None
    try:
        cluster = start_cluster(root)
        _clean_stop(cluster.primary_data)
        _clean_stop(cluster.standby_data)
        copies = root / "template"
        copies.mkdir()
        for data in (cluster.primary_data, cluster.standby_data):
            subprocess.run(["cp", "-a", str(data), str(copies / data.name)], check=True)
        yield Template(cluster, copies)
    finally:
        if cluster is not None:
            cluster.stop(cluster.primary_data)
            cluster.stop(cluster.standby_data)
        shutil.rmtree(root, ignore_errors=True)


class Interrupter:
    """A journal listener that interrupts the run at one point and waits until the runner
    has registered the abort, so that the point is exactly where it was meant to be."""

    def __init__(self, point: Point) -> None:
        self.point = point
        self.level = "normal"
        self.registered = threading.Event()
        self.fired = False

    def __call__(self, rec: dict[str, Any]) -> None:
        if rec["type"] == "abort" and rec["status"] == "requested":
            self.registered.set()
            return
        if not self.fired and self._is_the_point(rec):
            self.fired = True
            if self.point.cause == "signal":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                self.level = "critical"
            assert self.registered.wait(30), "the abort was never registered"

    def _is_the_point(self, rec: dict[str, Any]) -> bool:
        i = self.point.step
        if self.point.where == "during":
            return rec["type"] == "step_started" and rec["name"] == STEPS[i]
        if i == 0:
            return rec["type"] == "phase" and (rec["phase"], rec["status"]) == ("steps", "started")
        return rec["type"] == "step" and rec["name"] == STEPS[i - 1]


def _role(cluster: PgCluster, port: int) -> str:
    try:
        with psycopg.connect(cluster.dsn(port), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("select pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return "down"
    return "standby" if row and row[0] else "primary"


_COMPLETE = ("PG_VERSION", "global/pg_control", "base", "pg_wal", "postgresql.conf")


def _whole_or_absent(data: Path) -> bool:
    return not data.exists() or all((data / part).exists() for part in _COMPLETE)


@pytest.mark.parametrize("point", _points(), ids=lambda p: p.id)
def test_pg_failover_interrupted_never_leaves_two_primaries(
    point: Point, template: Template, sshd_server: SshServer, tmp_path: Path
) -> None:
    """Interrupted at this point, the failover drill ends `interrupted` (SIGTERM, exit 130)
    or `aborted` (stop condition, exit 4); at most one node accepts writes; no data
    directory is half-deleted; a destructive step that had started ran to its end; the
    journal's final steady-state probe and the report name the topology that is there."""
    cluster = template.cluster
    template.reset()
    interrupter = Interrupter(point)
    pressure.set_level_source(lambda: interrupter.level)
    cancel, force = threading.Event(), threading.Event()
    try:
        with signals_cancel(cancel, force):
            result = run_playbook(
                None,
                PLAYBOOK,
                yes=True,
                vars=failover_vars(cluster, sshd_server),
                state_dir=tmp_path / "state",
                cancel=cancel,
                force=force,
                listener=interrupter,
            )
    finally:
        pressure.set_level_source(None)
    assert interrupter.fired
    expected = "interrupted" if point.cause == "signal" else "aborted"
    assert result.status == expected, result.error
    assert int(result.exit_code) == (130 if point.cause == "signal" else 4)

    roles = {port: _role(cluster, port) for port in (cluster.primary_port, cluster.standby_port)}
    assert list(roles.values()).count("primary") <= 1, roles
    assert _whole_or_absent(cluster.primary_data)
    assert _whole_or_absent(cluster.standby_data)

    steps = {r["name"]: r for r in records(result.journal, "step")}
    if point.where == "during":
        cut = steps[STEPS[point.step]]
        if cut["destructive"]:
            assert cut["status"] in ("ok", "skipped"), cut
    (topology,) = [
        r
        for r in records(result.journal, "probe")
        if r["phase"] == "steady_state_after" and r["name"] == "exactly one node accepts writes"
    ]
    for port, role in roles.items():
        if role == "primary":
            assert f"127.0.0.1:{port} primary;" in topology["output"], topology
    report = render_run_report(
        tmp_path / "state", result.run_id, fmt="md", out=tmp_path / "report.md"
    ).read_text()
    assert topology["output"].strip().splitlines()[0] in report
    _log(point, result.status, roles, topology["output"], steps, cluster)


def _log(
    point: Point,
    status: str,
    roles: dict[int, str],
    topology: str,
    steps: dict[str, Any],
    cluster: PgCluster,
) -> None:
    """One table row per point into RECOVERYD_FAULT_LOG, for docs/RELIABILITY.md."""
    target = os.environ.get("RECOVERYD_FAULT_LOG")
    if not target:
        return
    ran = ", ".join(f"{i + 1}:{steps[n]['status']}" for i, n in enumerate(STEPS) if n in steps)
    writable = sum(1 for r in roles.values() if r == "primary")
    final = topology.strip().split(";", 1)[-1].strip().rstrip(";")
    final = final.replace(f"127.0.0.1:{cluster.primary_port}", "old primary:")
    final = final.replace(f"127.0.0.1:{cluster.standby_port}", "old standby:")
    ran = ran or "none"
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(f"| {point.cause} | {point.label()} | {status} | {ran} | {writable} | {final} |\n")
