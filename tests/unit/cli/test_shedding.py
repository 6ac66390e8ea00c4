"""CLI commands that start work respect the load-shedding level the daemon's governor
recorded (docs/PERFORMANCE.md, load shedding): refused with exit 5 and the reason, unless
`--force`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from recoveryd.cli.main import main
from recoveryd.demo import data as demo_data
from recoveryd.governor.core import Governor
from recoveryd.governor.decide import Band, Hold
from recoveryd.state import StateStore
from tests.initrepo import init_repositories

CONFIG = """\
state_dir: ./state
encryption: {key_file: ./k}
targets:
  local: {kind: filesystem, path: ./store}
  offsite: {kind: filesystem, path: ./offsite}
sources:
  registry: {kind: sqlite, path: ./reg.db, targets: [local], priority: low}
  population: {kind: sqlite, path: ./pop.db, targets: [local], priority: critical}
"""


class Deployment:
    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys
        demo_data.create_sqlite(root / "reg.db", 200)
        demo_data.create_sqlite(root / "pop.db", 200)
        (root / "c.yaml").write_text(CONFIG)

    def cli(self, *args: str) -> tuple[int, str, str]:
        code = main(["--config", str(self.root / "c.yaml"), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def shed(self, *cpu: float) -> None:
        """Record level changes in the state store exactly as the daemon's governor does,
        feeding it these CPU readings in turn."""
        state = StateStore(self.root / "state")
        try:
            gov = Governor(dict, {"cpu": Band(70, 90)}, hold=Hold(0, 0), events=state)
            for at, value in enumerate(cpu):
                gov.tick({"cpu": value}, now=float(at))
        finally:
            state.close()

    def snapshots(self) -> int:
        code, out, _ = self.cli("snapshots")
        assert code == 0
        return sum(1 for line in out.splitlines() if "sqlite" in line)


@pytest.fixture
def d(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Deployment:
    dep = Deployment(tmp_path, capsys)
    assert dep.cli("key", "generate")[0] == 0
    init_repositories(dep.root / "c.yaml")
    assert dep.cli("backup")[0] == 0
    return dep


def test_work_is_refused_at_critical_with_the_reason(d: Deployment) -> None:
    """At `critical`, backup (of a low-priority source), verify, prune and copy are refused
    with exit 5 and one sentence naming the level and --force; nothing is started."""
    before = d.snapshots()
    d.shed(95)
    for args, job in [
        (("backup",), "backup of registry"),
        (("backup", "registry"), "backup of registry"),
        (("verify",), "verify"),
        (("prune",), "prune"),
        (("copy", "--from", "local", "--to", "offsite"), "copy"),
    ]:
        code, _, err = d.cli(*args)
        assert code == 5, (args, err)
        assert f"{job}: load shedding is in force (level critical)" in err
        assert "--force" in err
    assert d.snapshots() == before
    copied = d.root / "offsite" / "snapshots"
    assert not copied.exists() or not any(copied.iterdir())


def test_force_runs_the_work_anyway(d: Deployment) -> None:
    """`--force` runs refused work at `critical` (an operator's explicit decision)."""
    before = d.snapshots()
    d.shed(95)
    assert d.cli("backup", "--force", "registry")[0] == 0
    assert d.snapshots() == before + 1
    assert d.cli("verify", "--force")[0] == 0
    assert d.cli("prune", "--force")[0] == 0
    assert d.cli("copy", "--force", "--from", "local", "--to", "offsite")[0] == 0


def test_critical_sources_still_back_up_and_restore_at_critical(d: Deployment) -> None:
    """Only work whose priority must wait is refused: a critical source backs up and
    restores at `critical`; a low-priority source's restore needs --force."""
    d.shed(95)
    assert d.cli("backup", "population")[0] == 0
    code, out, _ = d.cli("--json", "snapshots")
    assert code == 0
    ids = {s["source"]: s["id"] for s in json.loads(out)}
    dest = d.root / "pop-restored.db"
    assert d.cli("restore", ids["population"], "--to", str(dest))[0] == 0
    assert sqlite3.connect(dest).execute("select count(*) from sqlite_master").fetchone()[0] > 0
    low_dest = d.root / "reg-restored.db"
    code, _, err = d.cli("restore", ids["registry"], "--to", str(low_dest))
    assert code == 5 and "restore of registry: load shedding is in force" in err
    assert not low_dest.exists()
    assert d.cli("restore", "--force", ids["registry"], "--to", str(low_dest))[0] == 0


def test_elevated_holds_back_low_work_only(d: Deployment) -> None:
    """At `elevated`, low-priority work waits (verify refused) while a normal-or-higher
    backup runs; after the return to normal nothing is refused."""
    d.shed(75)
    assert d.cli("verify")[0] == 5
    assert d.cli("backup", "population")[0] == 0
    d.shed(95, 10)  # the surge passes: the governor records the return to normal
    assert d.cli("verify")[0] == 0
    assert d.cli("backup", "registry")[0] == 0
