"""Integrity checks of a repository (SPEC §3, `recoveryd verify`).

Structure (always): the config and every data key authenticate under the
master key, every named manifest authenticates and parses, every chunk it
references exists (one listing). With `read_data=True` every referenced chunk
is downloaded, authenticated, decompressed and its keyed id recomputed;
`"sample"` does that for a random tenth of them (at least 16). Every problem
names the snapshot and the object key.
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
from recoveryd.repo.layout import CONFIG_KEY, KEYS_PREFIX, chunk_key, manifest_key
from recoveryd.repo.manifest import Manifest

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
        existing = repo.chunk_ids()
        users: dict[str, list[str]] = {}
        lengths: dict[str, int] = {}
        for m in manifests:
            for c in m.chunks:
                users.setdefault(c.id, []).append(m.id)
                lengths[c.id] = c.length
        for cid, sids in users.items():
            if cid not in existing:
                for sid in dict.fromkeys(sids):
                    problems.append(Problem(sid, chunk_key(cid), "referenced chunk is missing"))
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
                        problems.append(Problem(sid, chunk_key(cid), error))
        return VerifyReport(
            snapshots=tuple(snapshot_ids),
            objects_checked=objects + len(users),
            bytes_read=bytes_read,
            problems=tuple(problems),
        )
