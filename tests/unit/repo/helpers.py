"""Small builders shared by the repository unit tests."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

from recoveryd.errors import SourceError
from recoveryd.repo import ChunkerParams, MasterKey, Repository, SnapshotMeta, write_snapshot
from recoveryd.sources.base import SourceInfo
from recoveryd.stores.memory import MemoryStore

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
TINY_PACKS = 16 * 1024  # the smallest pack size a config allows: many packs from little data
# Both layouts: version 1 (one object per chunk) and version 2 (packs of TINY_PACKS bytes).
LAYOUTS = [None, TINY_PACKS]
CONTENT_PREFIXES = ("data/", "packs/")


class BytesReader:
    """A SnapshotReader over bytes; can fail at `finish()` like a dump tool that died."""

    def __init__(self, data: bytes, *, fail_finish: bool = False, kind: str = "directory") -> None:
        self._buf = io.BytesIO(data)
        self.info = SourceInfo(kind, "raw", engine_version="1.0", consistency={"lsn": "0/1"})
        self.fail_finish = fail_finish
        self.finished = False
        self.aborted = False

    def read(self, size: int = -1, /) -> bytes:
        return self._buf.read(size)

    def finish(self) -> None:
        self.finished = True
        if self.fail_finish:
            raise SourceError("source test: the dump tool exited with status 1")

    def abort(self) -> None:
        self.aborted = True


class Clock:
    """A settable clock for locks, retention and manifests."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def master(seed: int = 1) -> MasterKey:
    return MasterKey(random.Random(seed).randbytes(32), f"test-master-{seed}")


def text_data(n_rows: int, seed: int = 7) -> bytes:
    """Dump-like text: one row per line, realistic enough to compress and to dedup."""
    rnd = random.Random(seed)
    names = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu"]
    rows = [
        f"{i}\t{rnd.choice(names)} {rnd.randrange(10**6):06d}\t"
        f"{rnd.randrange(10**17, 10**18)}\t{rnd.randrange(1950, 2020)}-01-01\n"
        for i in range(n_rows)
    ]
    return "".join(rows).encode()


def new_repo(
    store: MemoryStore | None = None,
    *,
    cipher: str = "aes-256-gcm",
    params: ChunkerParams = SMALL,
    key: MasterKey | None = None,
    **options: object,
) -> Repository:
    return Repository.init(
        store or MemoryStore(),
        key or master(),
        cipher=cipher,
        name="t1",
        chunker_params=params,
        **options,
    )


def snapshot(repo: Repository | list[Repository], data: bytes, source: str = "src") -> str:
    repos = repo if isinstance(repo, list) else [repo]
    infos = write_snapshot(BytesReader(data), repos, SnapshotMeta(source=source))
    return infos[0].id
