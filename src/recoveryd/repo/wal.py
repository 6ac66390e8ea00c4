"""The WAL archive of a PostgreSQL source inside a repository (docs/FORMAT.md, "WAL").

Each file PostgreSQL hands to `archive_command` (a 16 MiB segment, a timeline
`.history` file, a `.backup` label, a `.partial` segment) is one object
`wal/<source>/<file name>`: its bytes as a chunk payload (zstd), sealed in the
repository's AEAD envelope (type WAL) bound to the object name, like every
other object. Renaming, swapping or altering an archived file is detected when
it is read.

Pushing is idempotent: a file already archived with the same content is a
success (PostgreSQL retries an archive command whose answer it did not see);
with other content it is refused, since two clusters writing into one
archive, or a damaged `pg_wal`, must not silently replace history.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from recoveryd.errors import (
    IntegrityError,
    NotFoundError,
    PreconditionFailedError,
    RecoverydError,
    UsageError,
)
from recoveryd.repo.chunker import PayloadError, compress, decompress
from recoveryd.repo.crypto import ObjectType
from recoveryd.repo.layout import BINLOG_PREFIX, WAL_PREFIX
from recoveryd.repo.repository import Repository

WAL_FILE = re.compile(
    r"^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$"
)
"""The names PostgreSQL gives the files it archives."""
DEFAULT_SEGMENT_SIZE = 16 << 20
SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
"""A complete segment's name: timeline, log and segment, 8 hex digits each."""

SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MAX_FILE = 1 << 30
"""The largest WAL segment PostgreSQL can be configured with (`--wal-segsize` 1 GiB)."""


class WalConflictError(RecoverydError):
    """A WAL file of that name is already archived with different content."""


@dataclass(frozen=True)
class PushResult:
    name: str
    outcome: Literal["stored", "already archived"]
    size: int
    stored_size: int


def check_name(file_name: str) -> str:
    """`file_name` when PostgreSQL could have named a WAL file so; UsageError otherwise."""
    if not WAL_FILE.match(file_name):
        raise UsageError(
            f'"{file_name}" is not the name of a WAL file (a 24-hex-digit segment, '
            "a .history, .backup or .partial file); pass %f or %p from PostgreSQL"
        )
    return file_name


class WalArchive:
    """The archived WAL files of one source in one repository."""

    prefix = WAL_PREFIX

    def __init__(self, repo: Repository, source: str) -> None:
        if not SOURCE_NAME.match(source):
            raise UsageError(f'"{source}" cannot name a log archive: use the source\'s name')
        self.repo = repo
        self.source = source

    def check(self, file_name: str) -> str:
        """`file_name` when it can name a file of this archive; UsageError otherwise."""
        return check_name(file_name)

    def is_complete_name(self, file_name: str) -> bool:
        """Whether `file_name` names a complete file (one that a partial one can precede)."""
        return bool(SEGMENT.match(file_name))

    def key(self, file_name: str) -> str:
        return f"{self.prefix}{self.source}/{file_name}"

    def push(self, file_name: str, data: bytes) -> PushResult:
        """Archive one file; idempotent for identical content (see the module's docstring)."""
        name = self.key(self.check(file_name))
        if len(data) > MAX_FILE:
            raise UsageError(f"{file_name} is larger than any WAL file ({len(data)} bytes)")
        sealed = self.repo.seal(name, ObjectType.WAL, compress(data))
        conditional = self.repo.capabilities().conditional_put
        if not conditional and self._same_as_archived(file_name, data):
            return PushResult(file_name, "already archived", len(data), 0)
        try:
            self.repo.store.put(
                name, sealed, if_absent=conditional, retention=self.repo.retention()
            )
        except PreconditionFailedError:
            if self._same_as_archived(file_name, data):
                return PushResult(file_name, "already archived", len(data), 0)
            raise self._conflict(file_name) from None
        return PushResult(file_name, "stored", len(data), len(sealed))

    def put_partial(self, segment: str, data: bytes) -> int:
        """Store the segment being streamed as `<segment>.partial`, replacing an older
        copy of it (it grows until the segment is complete); returns the stored size."""
        if not self.is_complete_name(self.check(segment)):
            raise UsageError(f'"{segment}" is not the name of a complete log file')
        name = self.key(f"{segment}.partial")
        sealed = self.repo.seal(name, ObjectType.WAL, compress(data))
        self.repo.store.put(name, sealed, retention=self.repo.retention())
        return len(sealed)

    def get(self, file_name: str) -> bytes:
        """The archived file's bytes, authenticated; NotFoundError when not archived,
        IntegrityError when the stored object is damaged or was tampered with."""
        name = self.key(self.check(file_name))
        blob = self.repo.store.get(name)
        plain = self.repo.open_blob(name, blob, ObjectType.WAL)
        try:
            return decompress(plain, max_size=MAX_FILE)
        except PayloadError as exc:
            raise IntegrityError(f"WAL object {name}: {exc}", obj=name) from None

    def names(self) -> list[str]:
        """The archived file names, sorted (segments in WAL order within a timeline)."""
        prefix = self.key("")
        return sorted(info.key[len(prefix) :] for info in self.repo.store.list(prefix))

    def _same_as_archived(self, file_name: str, data: bytes) -> bool:
        try:
            archived = self.get(file_name)
        except NotFoundError:
            return False
        if hashlib.sha256(archived).digest() == hashlib.sha256(data).digest():
            return True
        raise self._conflict(file_name)

    def _conflict(self, file_name: str) -> WalConflictError:
        return WalConflictError(
            f"WAL file {file_name} of source {self.source} is already archived with other "
            "content: another cluster may be archiving into this source, or pg_wal is damaged; "
            "give each cluster its own source and check the server's log"
        )


BINLOG_FILE = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.[0-9]{6,}(?:\.partial)?$")
"""Binary log names: `<basename>.<6+ digit number>` (as `log_bin` makes them)."""


class BinlogArchive(WalArchive):
    """The archived binary logs of one MariaDB/MySQL source: `binlog/<source>/<file>`,
    sealed and pushed exactly like WAL files."""

    prefix = BINLOG_PREFIX

    def check(self, file_name: str) -> str:
        if not BINLOG_FILE.match(file_name):
            raise UsageError(f'"{file_name}" is not the name of a binary log (<basename>.<number>)')
        return file_name

    def is_complete_name(self, file_name: str) -> bool:
        return not file_name.endswith(".partial")

    def names(self) -> list[str]:
        """Archived binary logs in log order (by number)."""
        return sorted(super().names(), key=binlog_order)


def binlog_order(name: str) -> tuple[int, str]:
    stem = name.removesuffix(".partial")
    return int(stem.rsplit(".", 1)[1]), name


def lsn_value(lsn: str) -> int:
    """`16/B374D848` as an integer position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def segment_of(lsn: str, timeline: int, seg_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The name of the WAL segment holding position `lsn` on `timeline`."""
    per_id = 0x100000000 // seg_size
    segno = lsn_value(lsn) // seg_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def _segno(name: str, seg_size: int) -> tuple[int, int] | None:
    m = SEGMENT.match(name)
    if not m:
        return None
    per_id = 0x100000000 // seg_size
    return int(m.group(1), 16), int(m.group(2), 16) * per_id + int(m.group(3), 16)


def segment_number(name: str, seg_size: int = DEFAULT_SEGMENT_SIZE) -> int | None:
    """The segment number of a segment, `.partial` or `.backup` file; None for others
    (timeline history files)."""
    parsed = _segno(name[:24], seg_size) if WAL_FILE.match(name) else None
    return None if parsed is None else parsed[1]


def gaps(names: list[str], start: str, seg_size: int = DEFAULT_SEGMENT_SIZE) -> list[str]:
    """The segments missing between `start` and the newest archived segment: every
    segment number in that range must be archived on the start's timeline or a later
    one (a promotion continues the same numbers on the next timeline)."""
    first = _segno(start, seg_size)
    if first is None:
        raise ValueError(f"{start} is not a segment name")
    timeline, low = first
    have: set[int] = set()
    for name in names:
        parsed = _segno(name, seg_size)
        if parsed is not None and parsed[0] >= timeline:
            have.add(parsed[1])
    high = max(have, default=low - 1)
    per_id = 0x100000000 // seg_size
    return [
        f"{timeline:08X}{n // per_id:08X}{n % per_id:08X}"
        for n in range(low, high + 1)
        if n not in have
    ]
