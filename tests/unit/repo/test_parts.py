"""Snapshots made of several named streams (parts): written at once, listed in a version-2
manifest, each part read back on its own; version-1 manifests stay readable."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recoveryd.errors import SourceError
from recoveryd.repo import SnapshotMeta, write_snapshot
from recoveryd.repo.manifest import ChunkRef, Manifest, StreamPart, decode_manifest
from recoveryd.sources.base import MultiStream, SourceInfo
from tests.unit.repo.helpers import BytesReader, new_repo, text_data

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class _Released:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, ok: bool) -> None:
        self.calls.append(ok)


def _multi(parts: dict[str, BytesReader], release: _Released) -> MultiStream:
    info = SourceInfo("postgresql", "pg_dump-custom", consistency={"lsn": "0/5"})
    return MultiStream(info, list(parts.items()), release)


def test_parts_are_written_at_once_and_read_back_each_alone() -> None:
    """Every part of a MultiStream is stored, the manifest (version 2) lists the parts in
    order with their sizes, each part reads back byte for byte, the whole snapshot verifies,
    and the consistency point is released (ok) once every part has finished."""
    repo = new_repo()
    data = {"pre-data": b"schema" * 100, "data-1": text_data(3000), "data-2": text_data(2000, 9),
            "post-data": b""}  # fmt: skip
    readers = {name: BytesReader(d) for name, d in data.items()}
    release = _Released()
    (info,) = write_snapshot(_multi(readers, release), [repo], SnapshotMeta(source="db"))
    m = repo.manifest(info.id)
    assert [(p.name, p.size) for p in m.parts] == [(n, len(d)) for n, d in data.items()]
    assert m.size == sum(map(len, data.values())) == info.size
    assert m.to_json()["version"] == 2 and "chunks" not in m.to_json()
    for name, expected in data.items():
        with repo.restore_stream(info.id, part=name) as r:
            assert r.read() == expected
    assert all(r.finished for r in readers.values())
    assert release.calls == [True]
    assert repo.verify(read_data=True).ok


def test_a_failing_part_stops_the_others_and_commits_nothing() -> None:
    """When one part's dump fails, its error is raised, every part is aborted, the
    consistency point is released (not ok) and no snapshot is listed."""
    repo = new_repo()

    class Endless(BytesReader):
        """A part that would never end unless aborted."""

        def read(self, size: int = -1, /) -> bytes:
            if self.aborted:
                return b""
            return b"x" * min(max(size, 1), 4096)

    readers = {"pre-data": BytesReader(b"s" * 5000, fail_finish=True), "data-1": Endless(b"")}
    release = _Released()
    with pytest.raises(SourceError, match="exited with status 1"):
        write_snapshot(_multi(readers, release), [repo], SnapshotMeta(source="db"))
    assert readers["data-1"].aborted
    assert release.calls == [False]
    assert repo.snapshot_ids() == []


def _manifest(parts: tuple[StreamPart, ...], chunks: tuple[ChunkRef, ...]) -> Manifest:
    return Manifest(
        id="00" * 8, source="db", kind="postgresql", stream_format="pg_dump-custom",
        start_time=T0, end_time=T0, size=sum(c.length for c in chunks), stored_size=0,
        chunks=chunks, parts=parts,
    )  # fmt: skip


def test_manifest_versions_round_trip() -> None:
    """A manifest without parts is written as version 1 (`chunks`), with parts as version 2
    (`parts`, each with its own chunk list); both decode to the same in-memory form."""
    chunks = (ChunkRef("a" * 64, 3), ChunkRef("b" * 64, 4), ChunkRef("c" * 64, 5))
    single = _manifest((), chunks)
    assert decode_manifest(single.to_bytes()) == single
    assert json.loads(single.to_bytes())["version"] == 1
    parts = (StreamPart("pre-data", 0, 1, 3), StreamPart("data-1", 1, 2, 9))
    multi = _manifest(parts, chunks)
    doc = json.loads(multi.to_bytes())
    assert doc["version"] == 2
    assert doc["parts"][1] == {
        "name": "data-1",
        "size": 9,
        "chunks": [["b" * 64, 4], ["c" * 64, 5]],
    }
    assert decode_manifest(multi.to_bytes()) == multi


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["parts"][0].update(size=99), "do not add up to its size"),
        (lambda d: d["parts"][1].update(name="pre-data"), "appears twice"),
        (lambda d: d.update(parts=[]), "non-empty list"),
        (lambda d: d.update(version=3), "unsupported manifest version 3"),
    ],
)
def test_malformed_parts_are_refused(change: object, message: str) -> None:
    """A version-2 manifest whose parts do not add up, repeat a name or are missing is
    refused, as is an unknown version."""
    chunks = (ChunkRef("a" * 64, 3), ChunkRef("b" * 64, 4))
    doc = json.loads(_manifest((StreamPart("pre-data", 0, 1, 3), StreamPart("d", 1, 1, 4)),
                               chunks).to_bytes())  # fmt: skip
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        decode_manifest(json.dumps(doc).encode())
