"""Two first backups racing to create a repository on a store without conditional writes
(Swift) never leave a committed snapshot that fails to restore."""

from __future__ import annotations

from typing import Any

import pytest

from recoveryd.errors import RecoverydError
from recoveryd.repo import Repository, SnapshotMeta, write_snapshot
from recoveryd.repo.repository import CONFIG_KEY
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import SMALL, BytesReader, master, text_data


def _restore(repo: Repository, snapshot_id: str) -> bytes:
    with repo.restore_stream(snapshot_id) as reader:
        return reader.read()


class RacingStore(MemoryStore):
    """A store without conditional writes where another process's first backup
    writes its own repository right after ours: its `config` lands last."""

    def __init__(self, rival: MemoryStore) -> None:
        super().__init__("swift", conditional_put=False)
        self.rival = rival
        self.raced = False

    def put(self, key: str, data: bytes, **kw: Any) -> None:
        super().put(key, data, **kw)
        if key == CONFIG_KEY and not self.raced:
            self.raced = True
            for obj in self.rival.list():
                super().put(obj.key, self.rival.get(obj.key))


def test_the_loser_of_a_concurrent_init_adopts_the_winners_repository() -> None:
    """Both processes saw an empty location; the one whose config was overwritten
    drops its own key and writes into the winner's repository."""
    key = master()
    rival = MemoryStore("rival")
    winner = Repository.init(rival, key, name="swift", chunker_params=SMALL)
    store = RacingStore(rival)

    adopted = Repository.init(store, key, name="swift", chunker_params=SMALL)

    assert adopted.config.id == winner.config.id
    assert [o.key for o in store.list("keys/")] == [o.key for o in rival.list("keys/")]
    data = text_data(300)
    [info] = write_snapshot(BytesReader(data), [adopted], SnapshotMeta(source="s"))
    assert _restore(Repository.open(store, key, name="swift"), info.id) == data


def test_a_snapshot_made_under_a_replaced_config_is_not_committed() -> None:
    """A process that believed it created the repository, whose config was then
    overwritten by a racing process, refuses to write its manifest: nothing is
    listed, and the winner's snapshots restore."""
    store = MemoryStore("swift", conditional_put=False)
    key = master()
    first = Repository.init(store, key, name="swift", chunker_params=SMALL)
    store.delete(CONFIG_KEY)
    second = Repository.init(store, key, name="swift", chunker_params=SMALL)
    assert first.config.id != second.config.id

    with pytest.raises(RecoverydError, match="initialised by another process"):
        write_snapshot(BytesReader(text_data(200)), [first], SnapshotMeta(source="s"))
    assert Repository.open(store, key, name="swift").snapshots() == []

    data = text_data(250, seed=3)
    [info] = write_snapshot(BytesReader(data), [second], SnapshotMeta(source="s"))
    assert _restore(Repository.open(store, key, name="swift"), info.id) == data


def test_a_leftover_key_of_a_losing_init_does_not_break_chunk_ids() -> None:
    """Chunk ids are checked with the key that seals the config, so a stray data key
    (a loser that crashed before removing its key) cannot make snapshots unreadable."""
    store = MemoryStore("swift", conditional_put=False)
    key = master()
    repo = Repository.init(store, key, name="swift", chunker_params=SMALL)
    data = text_data(300)
    [info] = write_snapshot(BytesReader(data), [repo], SnapshotMeta(source="s"))
    config_blob = store.get(CONFIG_KEY)
    store.delete(CONFIG_KEY)
    Repository.init(store, key, name="swift", chunker_params=SMALL)  # leaves keys/<its id>
    store.put(CONFIG_KEY, config_blob)

    reopened = Repository.open(store, key, name="swift")
    assert len(reopened.data_keys) == 2
    assert _restore(reopened, info.id) == data
    assert reopened.verify([info.id], read_data=True).ok
