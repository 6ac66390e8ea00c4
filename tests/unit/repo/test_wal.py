"""The WAL archive format: one sealed, compressed object per WAL file, pushed idempotently."""

from __future__ import annotations

import random

import pytest

from recoveryd.errors import IntegrityError, NotFoundError, UsageError
from recoveryd.repo.wal import WalArchive, WalConflictError
from recoveryd.stores.memory import MemoryStore
from tests.unit.repo.helpers import new_repo

SEGMENT = "000000010000000000000003"


def _segment(seed: int = 1) -> bytes:
    """A WAL-like 1 MiB file: mostly zeros after some records, as a switched segment is."""
    return random.Random(seed).randbytes(64 * 1024) + bytes(960 * 1024)


@pytest.mark.parametrize("conditional", [True, False])
def test_a_pushed_segment_comes_back_byte_for_byte(conditional: bool) -> None:
    """A pushed segment is stored under wal/<source>/<name> and read back identical, on
    stores with and without conditional writes."""
    repo = new_repo(MemoryStore(conditional_put=conditional))
    archive = WalArchive(repo, "registry")
    result = archive.push(SEGMENT, _segment())
    assert result.outcome == "stored"
    assert result.stored_size < result.size  # compressed
    assert archive.get(SEGMENT) == _segment()
    assert archive.names() == [SEGMENT]
    assert f"wal/registry/{SEGMENT}" in repo.store.objects  # type: ignore[attr-defined]


@pytest.mark.parametrize("conditional", [True, False])
def test_pushing_the_same_segment_again_succeeds_and_other_content_is_refused(
    conditional: bool,
) -> None:
    """PostgreSQL retries an archive command whose answer it lost: the same content is a
    success; different content under the same name is a conflict, and the archive keeps
    the first."""
    repo = new_repo(MemoryStore(conditional_put=conditional))
    archive = WalArchive(repo, "registry")
    archive.push(SEGMENT, _segment(1))
    assert archive.push(SEGMENT, _segment(1)).outcome == "already archived"
    with pytest.raises(WalConflictError, match="already archived with other content"):
        archive.push(SEGMENT, _segment(2))
    assert archive.get(SEGMENT) == _segment(1)


def test_a_tampered_or_renamed_wal_object_is_an_integrity_error() -> None:
    """A flipped byte, or an object copied under another segment's name, fails
    authentication (exit 3) instead of feeding wrong WAL to a recovering server."""
    store = MemoryStore()
    repo = new_repo(store)
    archive = WalArchive(repo, "registry")
    archive.push(SEGMENT, _segment())
    name = f"wal/registry/{SEGMENT}"
    other = "000000010000000000000004"
    store.objects[f"wal/registry/{other}"] = store.objects[name]
    with pytest.raises(IntegrityError):
        archive.get(other)
    blob = bytearray(store.objects[name])
    blob[-20] ^= 1
    store.objects[name] = bytes(blob)
    with pytest.raises(IntegrityError):
        archive.get(SEGMENT)


def test_a_missing_segment_is_not_found() -> None:
    """Asking for a segment never archived is NotFoundError: recovery ends there."""
    archive = WalArchive(new_repo(), "registry")
    with pytest.raises(NotFoundError):
        archive.get(SEGMENT)


@pytest.mark.parametrize(
    "name",
    ["../config", "00000001000000000000000", "RECOVERYXLOG", "000000010000000000000003/../x", ""],
)
def test_only_names_postgresql_gives_wal_files_are_accepted(name: str) -> None:
    """A path or any other name is refused before anything is stored (no way to write
    outside wal/<source>/)."""
    archive = WalArchive(new_repo(), "registry")
    with pytest.raises(UsageError, match="is not the name of a WAL file"):
        archive.push(name, b"x")


@pytest.mark.parametrize(
    "name",
    [SEGMENT, "00000002.history", f"{SEGMENT}.partial", f"{SEGMENT}.00000028.backup"],
)
def test_history_backup_and_partial_files_are_archived_too(name: str) -> None:
    """Timeline history files, backup labels and partial segments round-trip like segments."""
    archive = WalArchive(new_repo(), "registry")
    archive.push(name, b"timeline history\n")
    assert archive.get(name) == b"timeline history\n"


def test_the_segment_of_a_position() -> None:
    """A WAL position names its 16 MiB segment on a timeline (as pg_walfile_name does)."""
    from recoveryd.repo.wal import segment_of

    assert segment_of("0/3000060", 1) == "000000010000000000000003"
    assert segment_of("16/B374D848", 2) == "0000000200000016000000B3"


def test_gaps_name_every_missing_segment_and_follow_a_promotion() -> None:
    """From a base backup's first segment to the newest archived one, every segment is
    archived on that timeline or a later one; the missing ones are named."""
    from recoveryd.repo.wal import gaps

    names = [
        "000000010000000000000003",
        "000000010000000000000004",
        "000000010000000000000006",
        "000000010000000000000007.partial",
        "00000002.history",
        "000000020000000000000007",
        "000000020000000000000008",
    ]
    assert gaps(names, "000000010000000000000003") == ["000000010000000000000005"]
    assert gaps(names, "000000010000000000000006") == []
    assert gaps(names[:2], "000000010000000000000002") == ["000000010000000000000002"]
    assert gaps([], "000000010000000000000002") == []
