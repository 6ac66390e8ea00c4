"""kill -9 of `backup`, `prune`, `copy`, `restore` and the daemon at seeded points.

Each command is first run once to completion to measure how long it takes; each
kill point is then a seeded moment within that time after the process started, so
the points fall on start-up, lock taking, uploads, the manifest and exit alike
(points that fall after the process ended are drawn again, until KILLS kills). After every kill:

- no committed snapshot is lost (every snapshot listed before is still listed,
  except those the retention policy drops on purpose, and the newest always stays);
- every listed snapshot passes `verify --read-data`;
- the next run of the same command is not blocked and succeeds.

`make test` kills each command at a few points; `make test-faults` at 20 or more.
tests/e2e/test_crash.py keeps the issue-2 acceptance (backups killed as chunks land).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Deployment, fs_target
from tests.faults.conftest import Tally, points
from tests.integration.daemon.proc import DaemonProcess

pytestmark = pytest.mark.integration

KILLS = points(20, 3)


@dataclass
class Site:
    """A deployment with a directory source, a local and an off-site filesystem target."""

    d: Deployment
    src: Path
    rng: random.Random
    round: int = 0

    def grow(self) -> None:
        """New incompressible content, so every backup uploads new chunks."""
        self.round += 1
        (self.src / f"batch-{self.round:03d}.bin").write_bytes(self.rng.randbytes(768 * 1024))

    def listed(self, target: str = "local") -> list[str]:
        return [s["id"] for s in self.d.snapshots("--target", target)]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    d = tmp_path / "deploy"
    d.mkdir()
    src = tmp_path / "files"
    src.mkdir()
    dep = Deployment(d).configure(
        targets={
            "local": fs_target(tmp_path / "store"),
            "offsite": fs_target(tmp_path / "offsite"),
        },
        sources={
            "files": {
                "kind": "directory",
                "path": str(src),
                "targets": ["local"],
                "retention": {"keep_last": 3},
            }
        },
    )
    yield Site(dep, src, random.Random(0))


def _spawn(site: Site, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recoveryd", "--config", str(site.d.config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _measure(site: Site, *args: str) -> float:
    """Seconds one uninterrupted run of the command takes (it must succeed)."""
    started = time.monotonic()
    proc = _spawn(site, *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - started


def _kill_after(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL the process `seconds` after it started; False when it had already ended."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return True
    proc.communicate(timeout=60)
    return False


def _check(site: Site, before: dict[str, list[str]], *, keep_newest: int = 0) -> None:
    """No committed snapshot lost; every listed one verifies with its data."""
    for target, ids in before.items():
        now = set(site.listed(target))
        must = set(ids[-keep_newest:]) if keep_newest else set(ids)
        assert must <= now, f"{target}: committed snapshots lost: {sorted(must - now)}"
        if now:
            site.d.cli("verify", "--read-data", "--target", target).expect(0)


def _campaign(
    site: Site,
    campaign: Tally,
    name: str,
    args: tuple[str, ...],
    prepare: Callable[[], None],
    after: Callable[[], None],
    *,
    keep_newest: int = 0,
) -> None:
    prepare()
    duration = _measure(site, *args)
    after()
    rng = random.Random(f"kill-{name}")
    killed = point = 0
    while killed < KILLS and point < 3 * KILLS:  # a point after the end kills nothing
        prepare()
        before = {t: site.listed(t) for t in ("local", "offsite")}
        at = rng.uniform(0.0, duration)
        if _kill_after(_spawn(site, *args), at):
            killed += 1
            campaign.add(f"killed:{name}")
        try:
            _check(site, before, keep_newest=keep_newest)
            after()  # the next run is not blocked
        except AssertionError as exc:
            raise AssertionError(f"{name} killed at point {point} ({at:.3f} s): {exc}") from exc
        point += 1
    assert killed == KILLS, f"only {killed} of {point} {name} runs were still running"


def test_backup_killed_at_seeded_points(site: Site, campaign: Tally) -> None:
    """kill -9 of `backup`: nothing committed is lost, what is listed verifies, and the
    next backup succeeds."""
    _campaign(site, campaign, "backup", ("backup",), site.grow, lambda: site.d.backup() and None)


def test_prune_killed_at_seeded_points(site: Site, campaign: Tally) -> None:
    """kill -9 of `prune` (keep_last: 3, so each prune forgets two snapshots and deletes
    their chunks): the three newest stay, what is listed verifies, the next prune succeeds."""

    def prepare() -> None:
        for _ in range(2):
            site.grow()
            site.d.backup()

    _campaign(
        site,
        campaign,
        "prune",
        ("prune",),
        prepare,
        lambda: site.d.cli("prune").expect(0) and None,
        keep_newest=3,
    )


def test_copy_killed_at_seeded_points(site: Site, campaign: Tally) -> None:
    """kill -9 of `copy --from local --to offsite`: nothing committed on either side is
    lost, what is listed verifies, and the next copy succeeds."""

    def prepare() -> None:
        site.grow()
        site.d.backup()

    def after() -> None:
        site.d.cli("copy", "--from", "local", "--to", "offsite").expect(0)
        assert set(site.listed("local")) <= set(site.listed("offsite"))

    _campaign(
        site, campaign, "copy", ("copy", "--from", "local", "--to", "offsite"), prepare, after
    )


def test_restore_killed_at_seeded_points(site: Site, campaign: Tally, tmp_path: Path) -> None:
    """kill -9 of `restore`: the snapshot stays listed and verifies, and the next restore
    (to a fresh folder) returns every file."""
    for _ in range(6):
        site.grow()
    (snap,) = site.d.backup()
    runs = iter(range(10_000))

    def dest() -> str:
        return str(tmp_path / f"restored-{next(runs)}")

    def after() -> None:
        out = Path(dest())
        site.d.cli("restore", snap["id"], "--to", str(out)).expect(0)
        for f in site.src.iterdir():
            assert (out / f.name).read_bytes() == f.read_bytes()

    holder: list[str] = []

    def prepare() -> None:
        holder[:] = [dest()]

    prepare()
    duration = _measure(site, "restore", snap["id"], "--to", holder[0])
    rng = random.Random("kill-restore")
    killed = point = 0
    while killed < KILLS and point < 3 * KILLS:
        prepare()
        at = rng.uniform(0.0, duration)
        if _kill_after(_spawn(site, "restore", snap["id"], "--to", holder[0]), at):
            killed += 1
            campaign.add("killed:restore")
        try:
            _check(site, {"local": [snap["id"]], "offsite": []})
            after()
        except AssertionError as exc:
            raise AssertionError(f"restore killed at point {point} ({at:.3f} s): {exc}") from exc
        point += 1
    assert killed == KILLS


def test_daemon_killed_at_seeded_points(site: Site, campaign: Tally) -> None:
    """kill -9 of the daemon while it backs up every second: nothing committed is lost,
    what is listed verifies, and the restarted daemon (not blocked by the dead one's
    lock) finishes a backup and stops cleanly."""
    doc = yaml.safe_load(site.d.config.read_text())
    doc["sources"]["files"].update(schedule="every 1s", rpo="1h")
    doc["daemon"] = {"prune_schedule": None, "shutdown_grace": "5s"}
    site.d.config.write_text(yaml.safe_dump(doc))
    rng = random.Random("kill-daemon")
    killed = 0
    for point in range(KILLS):
        site.grow()
        before = {"local": site.listed("local")}
        daemon = DaemonProcess(site.d.config, site.d.state_dir).start()
        try:
            daemon.wait_logged("daemon_ready")
            at = rng.uniform(0.0, 3.0)
            if _kill_after(daemon.proc, at):
                killed += 1
                campaign.add("killed:daemon")
        finally:
            daemon.kill()
        try:
            _check(site, before)
            again = DaemonProcess(site.d.config, site.d.state_dir).start()
            try:
                done = again.wait_logged("job_finished")
                assert done[0]["result"] == "ok", done
            finally:
                assert again.stop() == 0
        except AssertionError as exc:
            raise AssertionError(f"daemon killed at point {point} ({at:.3f} s): {exc}") from exc
    assert killed == KILLS
