"""What a backup spends on chunks the repository already holds: their ids, not their
compression (half of a backup's CPU goes to compressing what is new)."""

from __future__ import annotations

from collections import Counter

import pytest

from recoveryd.repo import chunker
from recoveryd.repo.repository import Repository
from tests.unit.repo.helpers import new_repo, snapshot, text_data


def _counting_compressions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every plaintext compressed from now on (chunks, and the run's own objects)."""
    calls: list[bytes] = []
    real = chunker.compress_parts

    def counted(
        data: bytes | memoryview, compression: chunker.Compression = chunker.DEFAULT_COMPRESSION
    ) -> chunker.Parts:
        calls.append(bytes(data))
        return real(data, compression)

    monkeypatch.setattr(chunker, "compress_parts", counted)
    return calls


def _chunks(repo: Repository, sid: str, data: bytes) -> list[bytes]:
    """The snapshot's chunk plaintexts, cut from `data` by the manifest's lengths."""
    out, at = [], 0
    for ref in repo.manifest(sid).chunks:
        out.append(data[at : at + ref.length])
        at += ref.length
    return out


def test_a_chunk_every_repository_already_holds_is_not_compressed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first backup compresses each chunk once; a second backup of the same data
    compresses none of them (every one is deduplicated) and restores byte for byte."""
    repo = new_repo(concurrency=3)
    data = text_data(20000)
    calls = _counting_compressions(monkeypatch)
    first = snapshot(repo, data)
    chunks = _chunks(repo, first, data)
    assert len(chunks) > 20 and all(Counter(calls)[c] == 1 for c in chunks)
    calls.clear()
    second = snapshot(repo, data)
    assert not set(calls) & set(chunks)
    assert repo.restore_stream(second).read() == data


def test_a_chunk_new_to_one_repository_is_compressed_once_for_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With two repositories, a chunk only one of them holds is compressed once, for the
    other; the snapshot restores from both."""
    old, new = new_repo(concurrency=2), new_repo(concurrency=2)
    data = text_data(20000)
    snapshot(old, data)
    calls = _counting_compressions(monkeypatch)
    sid = snapshot([old, new], data)
    assert all(Counter(calls)[c] == 1 for c in _chunks(new, sid, data))
    assert old.restore_stream(sid).read() == data == new.restore_stream(sid).read()
