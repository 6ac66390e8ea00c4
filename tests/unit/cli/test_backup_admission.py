"""Backups obey the load governor's admission (docs/PERFORMANCE.md, load shedding) and stop
cleanly when cancelled."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from recoveryd import app
from recoveryd.config import LoadedConfig, load_config
from recoveryd.demo import data as demo_data
from recoveryd.errors import ExitCode, InterruptedOperation, RefusedError
from recoveryd.flow import Gate, OpenGate
from recoveryd.governor.core import Governor
from recoveryd.governor.decide import Band, Hold
from tests.initrepo import init_repositories


class CountingGate(OpenGate):
    def __init__(self) -> None:
        super().__init__()
        self.checkpoints = 0
        self.throttled = 0

    def checkpoint(self) -> None:
        self.checkpoints += 1

    def throttle(self, nbytes: int) -> None:
        self.throttled += nbytes


class FakeAdmission:
    """Answers `decision` and hands out one gate; remembers what it was asked."""

    def __init__(self, decision: str) -> None:
        self.decision = decision
        self.asked: list[tuple[str, str, bool]] = []
        self.the_gate = CountingGate()

    def admit(self, priority: str, *, job: str, due_soon: bool = False) -> str:
        self.asked.append((priority, job, due_soon))
        return self.decision

    def gate(self, priority: str, *, cancel: threading.Event | None = None) -> Gate:
        return self.the_gate

    def level(self) -> str:
        return "critical"


@pytest.fixture
def cfg(tmp_path: Path) -> LoadedConfig:
    """A SQLite registry with a 4h RPO backed up to a filesystem store."""
    demo_data.create_sqlite(tmp_path / "reg.db", 2000)
    (tmp_path / "c.yaml").write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        "targets: {local: {kind: filesystem, path: ./store}}\n"
        "sources:\n  reg: {kind: sqlite, path: ./reg.db, targets: [local], rpo: 4h,"
        " priority: low}\n"
    )
    loaded = load_config(tmp_path / "c.yaml")
    app.generate_key(loaded)
    init_repositories(tmp_path / "c.yaml")
    return loaded


def test_wait_refuses_with_exit_5_and_writes_nothing(cfg: LoadedConfig) -> None:
    """When the admission says wait, the backup is refused (exit 5) and nothing is written;
    recording the deferral is the admission's business, not the backup's."""
    adm = FakeAdmission("wait")
    with pytest.raises(RefusedError, match="deferred, load shedding") as info:
        app.backup(cfg, admission=adm)
    assert info.value.exit_code == ExitCode.REFUSED
    assert adm.asked == [("low", "backup:reg", True)]  # never backed up: its RPO is at stake
    assert app.list_snapshots(cfg) == []
    st = app.state(cfg)
    assert [e.kind for e in st.events()] == []
    st.close()


def test_a_backup_deferred_by_the_governor_is_recorded_once(cfg: LoadedConfig) -> None:
    """A backup the governor defers at `critical` is one `deferred` event in the state store,
    so reports and `status` do not count it twice."""
    app.backup(cfg)  # a recent snapshot: the RPO is not at stake, the governor may defer
    st = app.state(cfg)
    gov = Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=st)
    gov.tick({"cpu": 95}, now=0)
    with pytest.raises(RefusedError, match="deferred, load shedding"):
        app.backup(cfg, admission=gov)
    deferred = [e for e in st.events() if e.kind == "deferred"]
    assert len(deferred) == 1
    assert deferred[0].data["job"] == "backup:reg"
    st.close()


def test_running_work_passes_the_governors_gate(cfg: LoadedConfig) -> None:
    """Admitted work passes the governor's gate at chunk boundaries and before uploads; the
    next backup is no longer due soon."""
    adm = FakeAdmission("throttled")
    [result] = app.backup(cfg, admission=adm)
    assert adm.the_gate.checkpoints >= 1
    assert adm.the_gate.throttled > 0
    app.backup(cfg, admission=adm)
    assert [a[2] for a in adm.asked] == [True, False]
    assert app.list_snapshots(cfg)[0].id == result.id


def test_cancel_stops_before_committing(cfg: LoadedConfig) -> None:
    """A set cancel event (SIGINT/SIGTERM) stops the backup; nothing is listed; the run is
    recorded as aborted."""
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InterruptedOperation):
        app.backup(cfg, cancel=cancel)
    assert app.list_snapshots(cfg) == []
    st = app.state(cfg)
    assert st.runs(kind="backup")[0].result == "aborted"
    st.close()
