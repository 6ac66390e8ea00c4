"""Integrity checks of a repository (docs/FORMAT.md, `recoveryd verify`).

Structure (always): the config and every data key authenticate under the
master key, every index object authenticates and parses, every named manifest
authenticates and parses, every chunk it references exists — loose (one
listing of `data/`) or in an indexed pack that exists (one listing of `packs/`).
With `read_data=True` every referenced chunk is downloaded (a ranged read from
its pack), authenticated, decompressed and its keyed id recomputed, and the
header of every pack holding one is read and compared with the index;
`"sample"` does that for a random tenth of the chunks (at least 16). Every
problem names the snapshot and the object key.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

from recoveryd.errors import IntegrityError, NotFoundError, RecoverydError
from recoveryd.flow import NO_TALLY, Tally
from recoveryd.model import Problem, VerifyReport
from recoveryd.repo import keys
from recoveryd.repo.crypto import EnvelopeError, ObjectType
from recoveryd.repo.layout import (
    CONFIG_KEY,
    DATA_PREFIX,
    KEYS_PREFIX,
    PACKS_PREFIX,
    chunk_key,
    manifest_key,
)
from recoveryd.repo.manifest import Manifest
from recoveryd.repo.packs import PackIndex

if TYPE_CHECKING:
    from recoveryd.repo.repository import Repository

SAMPLE_FRACTION = 0.1
SAMPLE_MIN = 16


def _check_keys_and_config(repo: Repository) -> list[Problem]:
    problems = []
    for obj in repo.store.list(KEYS_PREFIX):
        try:
            keys.unwrap(repo.store.get(obj.key), obj.key, repo.master)
        except (EnvelopeError, keys.WrongMasterKey, NotFoundError) as exc:
            problems.append(Problem(None, obj.key, f"key object failed authentication ({exc})"))
    try:
        repo.get_object(CONFIG_KEY, ObjectType.CONFIG)
    except NotFoundError:
        problems.append(Problem(None, CONFIG_KEY, "repository config is missing"))
    except IntegrityError as exc:
        problems.append(Problem(None, CONFIG_KEY, str(exc)))
    return problems


def verify(
    repo: Repository,
    ids: Sequence[str] = (),
    read_data: bool | Literal["sample"] = False,
    tally: Tally = NO_TALLY,
) -> VerifyReport:
    """Verify the named snapshots (ids or unique prefixes; all when empty).

    With `read_data`, the plaintext bytes of the chunks to read are added to `tally`'s
    total, and each chunk read is counted as it completes."""
    with repo.lock(operation="verify"):
        problems = _check_keys_and_config(repo)
        objects = 1 + len(repo.data_keys)
        snapshot_ids = [repo.resolve(i) for i in ids] if ids else repo.snapshot_ids()
        manifests: list[Manifest] = []
        for sid in snapshot_ids:
            objects += 1
            try:
                manifests.append(repo.manifest(sid))
            except IntegrityError as exc:
                problems.append(Problem(sid, manifest_key(sid), str(exc)))
        index = repo.chunks.load_index(
            on_damaged=lambda exc: problems.append(Problem(None, exc.obj or "index/", str(exc)))
        )
        objects += len(index.index_ids)
        packs = {o.key.rsplit("/", 1)[-1]: o.size for o in repo.store.list(PACKS_PREFIX)}
        existing = {o.key.rsplit("/", 1)[-1] for o in repo.store.list(DATA_PREFIX)}
        existing |= {cid for cid, loc in index.locations.items() if loc.pack in packs}
        users: dict[str, list[str]] = {}
        lengths: dict[str, int] = {}
        for m in manifests:
            for c in m.chunks:
                users.setdefault(c.id, []).append(m.id)
                lengths[c.id] = c.length
        for cid, sids in users.items():
            if cid not in existing:
                for sid in dict.fromkeys(sids):
                    problems.append(Problem(sid, _where(index, cid), "referenced chunk is missing"))
        to_read = [c for c in users if c in existing]
        if read_data == "sample":
            k = min(len(to_read), max(SAMPLE_MIN, int(len(to_read) * SAMPLE_FRACTION)))
            to_read = random.sample(to_read, k)
        elif not read_data:
            to_read = []
        bytes_read = 0
        tally.plan(sum(lengths[c] for c in to_read))

        def check(cid: str) -> tuple[str, int, str | None]:
            try:
                data = repo.read_chunk(cid, lengths[cid])
            except RecoverydError as exc:
                return cid, 0, str(exc)
            return cid, len(data), None

        with ThreadPoolExecutor(max_workers=repo.concurrency) as pool:
            for cid, n, error in pool.map(check, to_read):
                objects += 1
                bytes_read += n
                tally.add(lengths[cid])
                if error is not None:
                    for sid in dict.fromkeys(users[cid]):
                        problems.append(Problem(sid, _where(index, cid), error))
            held = {
                loc.pack for c in to_read if (loc := index.get(c)) is not None and loc.pack in packs
            }
            for pid, problem in pool.map(lambda p: _check_header(repo, index, p, packs[p]), held):
                objects += 1
                if problem is not None:
                    problems.append(Problem(None, pid, problem))
        return VerifyReport(
            snapshots=tuple(snapshot_ids),
            objects_checked=objects + len(users),
            bytes_read=bytes_read,
            problems=tuple(problems),
        )


def _where(index: PackIndex, chunk_id: str) -> str:
    loc = index.get(chunk_id)
    return chunk_key(chunk_id) if loc is None else loc.key


def _check_header(
    repo: Repository, index: PackIndex, pack_id: str, size: int
) -> tuple[str, str | None]:
    """(pack key, problem or None): the pack's own header lists what the index says."""
    key = f"{PACKS_PREFIX}{pack_id[:2]}/{pack_id}"
    try:
        blobs = repo.chunks.read_header(pack_id, size)
    except RecoverydError as exc:
        return key, str(exc)
    if sorted(blobs, key=lambda b: b.offset) != sorted(
        index.packs[pack_id], key=lambda b: b.offset
    ):
        return key, "pack header does not match the index; the index or the pack was altered"
    return key, None
