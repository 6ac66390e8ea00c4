"""A stop reaches a backup's uploads that wait for bandwidth (`max_bandwidth`): the wait
ends at once, nothing is committed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from recoveryd import app
from recoveryd.app import wiring
from recoveryd.config import LoadedConfig, load_config
from recoveryd.errors import ExitCode, InterruptedOperation
from recoveryd.repo.repository import Repository
from tests.unit.repo.helpers import SMALL

PACK = 1 << 20
RATE = 4096  # bytes per second: the second pack waits PACK / RATE = 256 s for the first
LONG = 120.0  # a wait longer than this test may run (its timeout)


class StopWhileWaiting(threading.Event):
    """The backup's cancel event: set by the stop that arrives as soon as something starts
    a wait on it longer than LONG; remembers the threads that did."""

    def __init__(self) -> None:
        super().__init__()
        self.long_waits: list[str] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None or timeout > LONG:
            self.long_waits.append(threading.current_thread().name)
            self.set()
        return super().wait(timeout)


@pytest.fixture
def cfg(tmp_path: Path) -> LoadedConfig:
    """A directory of 2 MiB and a bit of random bytes, backed up to a filesystem store at
    4 KiB/s, one upload at a time, in packs of 1 MiB: the repository's metadata is read
    and written in a fraction of a second, the first full pack goes up at once and the
    second one waits 256 s for it."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "blob").write_bytes(os.urandom(2 * PACK + (64 << 10)))
    (tmp_path / "c.yaml").write_text(
        "state_dir: ./state\nencryption: {key_file: ./k}\n"
        f"targets: {{local: {{kind: filesystem, path: ./store, max_bandwidth: {RATE},"
        " upload_concurrency: 1}}\n"
        "sources: {files: {kind: directory, path: ./files, targets: [local]}}\n"
    )
    loaded = load_config(tmp_path / "c.yaml")
    app.generate_key(loaded)
    store = wiring.open_store(loaded, "local")
    Repository.init(store, wiring.master_key(loaded), name="local", chunker_params=SMALL,
                    pack_size=PACK, concurrency=1)  # fmt: skip
    store.close()
    return loaded


@pytest.mark.timeout(60)
def test_a_stop_ends_the_bandwidth_wait_of_an_upload_in_flight(cfg: LoadedConfig) -> None:
    """The stop comes while the upload thread waits 256 s for bandwidth to store the second
    pack: the wait is on the backup's cancel event and ends at once (the test's timeout is
    shorter than that wait), the backup ends InterruptedOperation (exit 130), no snapshot
    is committed and the run is recorded as aborted."""
    stop = StopWhileWaiting()
    with pytest.raises(InterruptedOperation) as info:
        app.backup(cfg, cancel=stop)
    assert info.value.exit_code == ExitCode.INTERRUPTED
    assert stop.long_waits and all(t.startswith("upload") for t in stop.long_waits)
    assert app.list_snapshots(cfg) == []
    st = app.state(cfg)
    assert [r.result for r in st.runs(kind="backup")] == ["aborted"]
    st.close()
